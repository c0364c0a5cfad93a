"""Benchmark: a full certification report, signed and rendered in every format, in under 1 s.

Issue 7's target: "Full report (two six-month periods, a 40-machine workshop, all formats, signed)
in under 1 s." One full report is: evaluate the scheme over the scope (see below), sign it
(canonical JSON, SHA-256, Ed25519), verify the signed file, and render CSV, HTML and PDF in the
report's language.

Steps:

1. the four schemes of spec kpi.md section 7 (every rule of each: pilot targets, Chongqing digital
   workshop, Chongqing smart factory, MIIT 2015 pilot), a report per scheme with the monthly series
   of a baseline and an assessment period of six months each, the evidence (base quantities,
   coverage) and the business inputs behind the rules that need them (monthly operating cost,
   development projects);
2. warm-up: one full report of each scheme in each language (this also cuts the PDF's cached font
   face on a machine that has none yet, about 10 s once);
3. **value**: for each scheme and language, the median of ``--repeat`` (7) full reports; the value
   is the slowest of these medians;
4. **baseline**, in the same run: the same full report embedding the complete Noto CJK face instead
   of the cached working face (what a plain fpdf2 report costs); ``ratio`` = baseline / value.

EVALUATION: until the certification evaluator (``kpi.certification.Certifier``) lands, step 1
builds the reports by hand (``tests.reporting_fixtures``) and the time of a full report is signing,
verification and rendering only. Evaluation over a 40-machine history is added at the one place
marked ``EVALUATION`` in ``evaluate``: write the history of ``config/scenarios/plant.yaml`` (40 CNC
machines in ``ws-machining``) into SQLite with ``simulators.history`` as ``bench_kpi_report.py``
does, backfill the rollups, and time ``Certifier.evaluate`` inside ``full_report``.

Run: ``.venv/bin/python bench/bench_certification_report.py`` (``--help`` for the knobs). The last
line printed is the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from api.reporting import render_csv, render_html, render_pdf, signed_report_bytes, verify_report_bytes  # noqa: E402
from api.reporting.fonts import CJK_FACE, CJK_FONT, FontChoice  # noqa: E402
from kpi.certification_models import CertificationReport, InputUsed, Language  # noqa: E402
from tests.reporting_fixtures import RuleSpec, business_input, rule_result, sample_report  # noqa: E402

WORKSHOP = "ws-machining"
COST = "10k CNY/part"

# Every rule of the schemes of spec kpi.md section 7, with values a 40-machine workshop could have.
SCHEMES: dict[str, tuple[RuleSpec, ...]] = {
    "cq-pilot-targets": (
        RuleSpec("efficiency", "efficiency", "increase_by", 0.20, "ratio", 0.58, 0.72, definition="oee"),
        RuleSpec("operating-cost", "operating_cost", "reduce_by", 0.20, COST, 0.0412, 0.0318, definition="per_unit"),
        RuleSpec("development-cycle", "development_cycle", "reduce_by", 0.30, "days", 212.0, 141.0),
        RuleSpec("defect-rate", "defect_rate", "reduce_by", 0.20, "ratio", 0.031, 0.0232),
    ),
    "cq-digital-workshop": (
        RuleSpec("nc-equipment", "nc_equipment_share", "at_least", 0.50, "ratio", None, 0.8),
        RuleSpec("networking", "networking_rate", "at_least", 0.90, "ratio", None, 0.95),
        RuleSpec("upload", "upload_rate", "at_least", 0.90, "ratio", None, 0.974, gap_months=("2026-02",)),
    ),
    "cq-smart-factory": (
        RuleSpec("nc-equipment", "nc_equipment_share", "at_least", 0.65, "ratio", None, 0.8),
        RuleSpec("digital-workshops", "recognised_digital_workshops", "at_least", 2, "count", None, 2),
        RuleSpec("digital-rd-tools", "digital_rd_tool_rate", "at_least", 0.80, "ratio", None, 0.86),
        RuleSpec("operating-cost", "operating_cost", "reduce_by", 0.15, COST, 0.0412, 0.0318, definition="per_unit"),
        RuleSpec("efficiency", "efficiency", "increase_by", 0.10, "ratio", 0.58, 0.72, definition="oee"),
    ),
    "miit-2015-pilot": (
        RuleSpec("operating-cost", "operating_cost", "reduce_by", 0.20, COST, 0.0412, 0.0318, definition="per_unit"),
        RuleSpec("development-cycle", "development_cycle", "reduce_by", 0.20, "days", 212.0, 141.0),
        RuleSpec("efficiency", "efficiency", "increase_by", 0.20, "ratio", 0.58, 0.72, definition="oee"),
        RuleSpec("defect-rate", "defect_rate", "reduce_by", 0.10, "ratio", 0.031, 0.0232),
        RuleSpec("energy-utilisation", "energy_utilisation", "increase_by", 0.04, "ratio", 0.61, 0.645),
    ),
}


TITLES = {
    "cq-pilot-targets": ("Chongqing 13th FYP pilot targets", "重庆市“十三五”试点目标"),
    "cq-digital-workshop": ("Chongqing digital workshop", "重庆市数字化车间"),
    "cq-smart-factory": ("Chongqing smart factory", "重庆市智能工厂"),
    "miit-2015-pilot": ("MIIT smart-manufacturing pilot (2015)", "工业和信息化部智能制造试点示范（2015）"),
}


def _inputs(spec: RuleSpec) -> list[InputUsed]:
    """The business inputs a rule rests on: monthly operating cost, or the development projects."""
    if spec.metric == "operating_cost":
        return [
            business_input(f"cost-{year}-{month:02d}", "operating_cost", 1180.0 + 13 * month, "10k CNY")
            for year, months in ((2025, range(7, 13)), (2026, range(1, 7)))
            for month in months
        ]
    if spec.metric == "development_cycle":
        return [business_input(f"project-{n:03d}", "dev_project", 120.0 + 11 * n, "days") for n in range(1, 11)]
    if spec.metric in ("digital_rd_tool_rate", "recognised_digital_workshops"):
        return [business_input(f"{spec.metric}-2026", spec.metric, spec.assessment or 0.0, "ratio")]
    return []


def build_report(scheme_id: str, language: Language) -> CertificationReport:
    skeleton = sample_report(language, SCHEMES[scheme_id][:1], scope=WORKSHOP, scheme_id=scheme_id)
    title_en, title_zh = TITLES[scheme_id]
    scheme = skeleton.scheme.model_copy(update={"title_en": title_en, "title_zh": title_zh})
    rules = [rule_result(spec, _inputs(spec)) for spec in SCHEMES[scheme_id]]
    from kpi.certification_models import overall_verdict

    versions = sorted(
        {(i.entry_id, i.version) for r in rules for m in (r.baseline, r.assessment) if m for i in m.inputs}
    )
    return skeleton.model_copy(
        update={
            "rules": rules,
            "scheme": scheme,
            "verdict": overall_verdict([r.verdict for r in rules]),
            "provenance": skeleton.provenance.model_copy(update={"input_versions": versions}),
        }
    )


def evaluate(scheme_id: str, language: Language) -> CertificationReport:
    # EVALUATION: replace with `await certifier.evaluate(WORKSHOP, scheme_id, assessment=(2026-01-01,
    # 2026-07-01), baseline=(2025-07-01, 2026-01-01), language=language, query=...)` over the SQLite
    # history of the 40-machine plant once kpi.certification lands (see the module docstring).
    return build_report(scheme_id, language)


def full_report(
    scheme_id: str, language: Language, key: Ed25519PrivateKey, font: FontChoice | None = None
) -> dict[str, int]:
    """One full report: evaluated, signed, verified, rendered in every format. Returns the sizes."""
    report = evaluate(scheme_id, language)
    signed = signed_report_bytes(report, key)
    verification = verify_report_bytes(signed, key.public_key())
    if not verification.ok:
        raise AssertionError(f"the signed report does not verify: {verification.reason}")
    csv_text = render_csv(report, language, verification.signature)
    html = render_html(report, language, verification.signature)
    pdf = render_pdf(report, language, verification.signature, font=font)
    return {"json": len(signed), "csv": len(csv_text.encode()), "html": len(html.encode()), "pdf": len(pdf)}


def _median_s(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="full reports per scheme and language (median)")
    parser.add_argument("--baseline-repeat", type=int, default=3, help="reports with the full font face (median)")
    args = parser.parse_args(argv)
    key = Ed25519PrivateKey.generate()
    languages: tuple[Language, ...] = ("zh", "en")

    started = time.perf_counter()
    sizes = {(s, lang): full_report(s, lang, key) for s in SCHEMES for lang in languages}
    print(f"warm-up: {len(sizes)} full reports in {time.perf_counter() - started:.1f} s", flush=True)

    medians: dict[tuple[str, Language], float] = {}
    for scheme_id in SCHEMES:
        for language in languages:
            run = lambda s=scheme_id, lang=language: full_report(s, lang, key)  # noqa: E731
            median = medians[scheme_id, language] = _median_s(run, args.repeat)
            size = sizes[scheme_id, language]
            print(
                f"{scheme_id} ({len(SCHEMES[scheme_id])} rules, {language}): {median * 1000:.0f} ms"
                f" - json {size['json']:,} B, csv {size['csv']:,} B, html {size['html']:,} B, pdf {size['pdf']:,} B",
                flush=True,
            )
    (slowest_scheme, slowest_language), value = max(medians.items(), key=lambda item: item[1])

    # Baseline: the same report, embedding the complete CJK face (a plain fpdf2 report).
    complete = FontChoice(CJK_FONT, CJK_FACE)
    baseline = _median_s(
        lambda: full_report(slowest_scheme, slowest_language, key, font=complete), args.baseline_repeat
    )
    print(
        f"slowest: {slowest_scheme} ({slowest_language}) {value * 1000:.0f} ms;"
        f" with the complete CJK face {baseline * 1000:.0f} ms",
        flush=True,
    )
    result = {
        "bench": "certification_report",
        "value": round(value, 3),
        "unit": "s",
        "baseline": round(baseline, 3),
        "ratio": round(baseline / value, 2),
        "target_s": 1.0,
        "slowest": f"{slowest_scheme}/{slowest_language}",
        "per_report_ms": {f"{s}/{lang}": round(t * 1000, 1) for (s, lang), t in medians.items()},
        "evaluation": "not yet timed (kpi.certification pending): sign, verify, render only",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "period": f"{date(2025, 7, 1)}/{date(2026, 7, 1)}",
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
