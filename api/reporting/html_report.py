"""The HTML rendering: one self-contained page (inline CSS, inline SVG, no script, no external asset)."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from api.reporting.charts import bar_chart, series_chart, to_svg
from api.reporting.signing import Signature
from api.reporting.view import report_view
from kpi.certification_models import CertificationReport, Language


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("api.reporting", "templates"),
        autoescape=select_autoescape(("html",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: CertificationReport, language: Language, signature: Signature | None = None) -> str:
    """The report as one HTML page in ``language``; ``signature`` (of the signed file) adds its fingerprint."""
    view = report_view(report, language, signature)
    charts = {
        rule.rule.id: (
            to_svg(series_chart(rule.rule, language), f"{rule.indicator}: {view.t('series')}"),
            to_svg(bar_chart(rule.rule, language), f"{rule.indicator}: {rule.bars_title}"),
        )
        for rule in view.rules
    }
    return _environment().get_template("report.html").render(view=view, charts=charts, lang=language)
