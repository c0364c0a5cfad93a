"""The CSV rendering: a header block (scope, scheme, periods, overall verdict), then one row per rule.

RFC 4180: CRLF line ends, fields quoted where needed, every record with the same number of fields
(the header block is padded). The text starts with U+FEFF, so written as UTF-8 it begins with the
byte-order mark Excel needs to read Chinese correctly. Numbers are plain decimals in the form of the
canonical JSON (``0.853``, a ratio as a fraction, not a percentage) so a spreadsheet can compute
with them; words (indicator, comparison, verdict) are in the report's language.
"""

from __future__ import annotations

import csv
import io

from api.reporting.canonical import format_number as json_number
from api.reporting.signing import Signature
from api.reporting.view import report_view
from kpi.certification_models import CertificationReport, Language

BOM = "\ufeff"
COLUMNS = (
    "id",
    "indicator",
    "definition",
    "unit",
    "comparison",
    "threshold",
    "baseline",
    "assessment",
    "change",
    "target",
    "verdict",
    "coverage",
    "baseline_coverage",
    "reason",
)
_COLUMN_TEXT = {
    "id": "id",
    "indicator": "indicator",
    "definition": "definition",
    "unit": "unit",
    "comparison": "comparison",
    "threshold": "threshold",
    "baseline": "baseline_value",
    "assessment": "assessment_value",
    "change": "change",
    "target": "target",
    "verdict": "rule_verdict",
    "coverage": "coverage",
    "baseline_coverage": "coverage",
    "reason": "reason",
}


def _number(value: float | None) -> str:
    return "" if value is None else json_number(value)


def render_csv(report: CertificationReport, language: Language, signature: Signature | None = None) -> str:
    view = report_view(report, language, signature)
    width = len(COLUMNS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def header(key: str, value: str) -> None:
        writer.writerow([view.t(key), value, *[""] * (width - 2)])

    header("title", report.report_id)
    header("scope", view.scope)
    header("scheme", view.scheme)
    header("baseline", view.baseline)
    header("assessment", view.assessment)
    header("verdict", view.verdict)
    header("generated_at", report.provenance.generated_at.isoformat())
    header("report_sha256", view.report_sha256)
    if signature is not None:
        header("key_id", signature.key_id)
    writer.writerow([""] * width)
    # Machine names first, then the words in the report's language, so the table reads either way.
    writer.writerow(list(COLUMNS))
    writer.writerow(
        [
            view.t(_COLUMN_TEXT[c]) + (f" ({view.t('baseline_value')})" if c == "baseline_coverage" else "")
            for c in COLUMNS
        ]
    )
    for rule in view.rules:
        r = rule.rule
        writer.writerow(
            [
                r.id,
                rule.indicator,
                rule.definition,
                r.unit,
                rule.threshold,
                _number(r.threshold),
                _number(r.baseline.value if r.baseline is not None else None),
                _number(r.assessment.value),
                _number(r.change),
                _number(r.target),
                rule.verdict,
                _number(r.assessment.coverage),
                _number(r.baseline.coverage if r.baseline is not None else None),
                rule.reason,
            ]
        )
    return BOM + buffer.getvalue()
