"""The PDF rendering (fpdf2): tables, simple charts and every verdict as text, in one embedded CJK font.

The font is Debian's Noto Sans CJK SC (``api.reporting.fonts``), embedded as a subset, so the file
looks the same on any reader. Charts are drawn with fpdf2's vector primitives from the same geometry
as the HTML's SVG (``api.reporting.charts``).
"""

from __future__ import annotations

from collections.abc import Iterable

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from api.reporting import labels as L
from api.reporting.canonical import canonical_report
from api.reporting.charts import (
    ASSESSMENT_COLOUR,
    AXIS_COLOUR,
    BASELINE_COLOUR,
    GRID_COLOUR,
    TARGET_COLOUR,
    ChartGeometry,
    bar_chart,
    series_chart,
)
from api.reporting.fonts import FontChoice, font_for
from api.reporting.signing import Signature
from api.reporting.view import ReportView, RuleView, report_view
from kpi.certification_models import CertificationReport, Language

FONT = "cjk"
VERDICT_COLOURS = {"pass": "#17692e", "fail": "#a4281c", "insufficient_evidence": "#8a5a00"}
VERDICT_FILLS = {"pass": "#dff3e4", "fail": "#fbe3e1", "insufficient_evidence": "#fdf1d6"}
_FORMATTING = "0123456789,.%+−—–×≥≤()（）: ·/=²₂ "


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _characters(report: CertificationReport, language: Language) -> set[str]:
    """Every character the document can contain: the report's text, the words around it, number forms."""
    chars = set(canonical_report(report).decode("utf-8")) | set(_FORMATTING)
    index = 1 if language == "zh" else 0
    tables: list[Iterable[tuple[str, str]]] = [
        L.TEXT.values(),
        L.METRIC_LABELS.values(),
        L.DEFINITION_LABELS.values(),
        L.UNIT_LABELS.values(),
        L.VERDICT_LABELS.values(),
        L.COMPARISON_LABELS.values(),
        L.SCOPE_KIND_LABELS.values(),
        L.STATUS_LABELS.values(),
    ]
    for pairs in tables:
        for pair in pairs:
            chars.update(pair[index])
    return chars


class _ReportPdf(FPDF):
    def __init__(self, view: ReportView):
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.view = view
        self._char_widths: dict[float, dict[str, float]] = {}
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=15)
        self.set_creator("smart-factory-platform")
        self.set_title(f"{view.title}: {view.report.scope_name}")
        self.set_lang("zh-CN" if view.language == "zh" else "en")
        # The report's own time, not the clock: the same report renders to the same bytes.
        self.set_creation_date(view.report.provenance.generated_at)

    def char_widths(self, size: float) -> dict[str, float]:
        """Width (mm) of each character at ``size``, measured once per document."""
        return self._char_widths.setdefault(size, {})

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT, size=7)
        self.set_text_color(120, 120, 120)
        self.cell(0, 4, f"{self.view.report.report_id} · SHA-256 {self.view.report_sha256[:16]}… · {self.page_no()}")
        self.set_text_color(0, 0, 0)


def _line(pdf: _ReportPdf, text: str, size: float = 9, height: float = 5) -> None:
    """A paragraph, wrapped to the page width."""
    pdf.set_font(FONT, size=size)
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for line in _wrap(pdf, text, width, pdf.char_widths(size)):
        if pdf.get_y() + height > pdf.page_break_trigger:
            pdf.add_page()
        pdf.text(pdf.l_margin, pdf.get_y() + height * 0.75, line)
        pdf.set_xy(pdf.l_margin, pdf.get_y() + height)


def _heading(pdf: FPDF, text: str, size: float = 13) -> None:
    pdf.ln(2)
    pdf.set_font(FONT, size=size)
    pdf.set_text_color(30, 50, 80)
    pdf.multi_cell(0, size * 0.55, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(200, 200, 200)
    pdf.line(pdf.l_margin, pdf.get_y() + 0.5, pdf.w - pdf.r_margin, pdf.get_y() + 0.5)
    pdf.ln(2)


def _verdict_badge(pdf: FPDF, verdict: str, word: str, size: float = 10) -> None:
    pdf.set_font(FONT, size=size)
    pdf.set_fill_color(*_rgb(VERDICT_FILLS[verdict]))
    pdf.set_text_color(*_rgb(VERDICT_COLOURS[verdict]))
    pdf.cell(pdf.get_string_width(word) + 4, size * 0.6, word, fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)


_PADDING = 1.0
_BREAK_AFTER = frozenset(" ;/")  # not ",": it separates thousands


def _is_wide(ch: str) -> bool:
    return ch >= "\u2e80"  # CJK and full-width forms: a line may break before or after any of them


def _wrap(pdf: FPDF, text: str, width: float, widths: dict[str, float]) -> list[str]:
    """Greedy line breaking in one pass (fpdf2's breaker measures a line anew per character)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        start, used, last_break = 0, 0.0, -1
        n = 0
        while n < len(paragraph):
            ch = paragraph[n]
            w = widths.get(ch)
            if w is None:
                w = widths[ch] = pdf.get_string_width(ch)
            if used + w > width and n > start:
                cut = last_break + 1 if last_break >= start else n
                lines.append(paragraph[start:cut].rstrip())
                start = cut
                while start < len(paragraph) and paragraph[start] == " ":
                    start += 1
                used, last_break = 0.0, -1
                n = start
                continue
            used += w
            if ch in _BREAK_AFTER or _is_wide(ch) or (n + 1 < len(paragraph) and _is_wide(paragraph[n + 1])):
                last_break = n
            n += 1
        lines.append(paragraph[start:].rstrip())
    return lines


def _table(
    pdf: _ReportPdf, header: list[str] | None, rows: Iterable[list[str]], widths: tuple[float, ...], size: float = 8
) -> None:
    """A bordered table; cells wrap; the header row is repeated after a page break."""
    pdf.set_font(FONT, size=size)
    pdf.set_draw_color(208, 208, 208)
    pdf.set_line_width(0.2)
    pdf.set_text_color(0, 0, 0)
    available = pdf.w - pdf.l_margin - pdf.r_margin
    scale = available / sum(widths)
    columns = [w * scale for w in widths]
    line_height = size * 0.45
    char_widths = pdf.char_widths(size)

    def draw(values: list[str], heading: bool) -> None:
        wrapped = [_wrap(pdf, value, w - 2 * _PADDING, char_widths) for value, w in zip(values, columns, strict=True)]
        height = max(len(lines) for lines in wrapped) * line_height + 2 * _PADDING
        if pdf.get_y() + height > pdf.page_break_trigger:
            pdf.add_page()
            if header is not None and not heading:
                draw(header, True)
        x, y = pdf.l_margin, pdf.get_y()
        for lines, w in zip(wrapped, columns, strict=True):
            if heading:
                pdf.set_fill_color(243, 245, 248)
                pdf.rect(x, y, w, height, style="DF")
            else:
                pdf.rect(x, y, w, height, style="D")
            for n, line in enumerate(lines):
                pdf.text(x + _PADDING, y + _PADDING + (n + 0.78) * line_height, line)
            x += w
        pdf.set_xy(pdf.l_margin, y + height)

    if header is not None:
        draw(header, True)
    for values in rows:
        draw(values, False)
    pdf.ln(1)


def _draw_chart(pdf: FPDF, chart: ChartGeometry, x0: float, y0: float, width_mm: float) -> None:
    s = width_mm / chart.width
    left, top, right, bottom = chart.plot

    def X(x: float) -> float:
        return x0 + x * s

    def Y(y: float) -> float:
        return y0 + y * s

    pdf.set_line_width(0.15)
    pdf.set_font(FONT, size=6)
    pdf.set_draw_color(*_rgb(GRID_COLOUR))
    pdf.set_text_color(*_rgb(AXIS_COLOUR))
    for y, label in chart.y_ticks:
        pdf.line(X(left), Y(y), X(right), Y(y))
        pdf.text(X(left) - pdf.get_string_width(label) - 1, Y(y) + 1, label)
    pdf.set_draw_color(*_rgb(AXIS_COLOUR))
    pdf.line(X(left), Y(top), X(left), Y(bottom))
    pdf.line(X(left), Y(bottom), X(right), Y(bottom))
    if chart.divider is not None:
        pdf.set_dash_pattern(dash=0.6, gap=0.9)
        pdf.line(X(chart.divider), Y(top), X(chart.divider), Y(bottom))
        pdf.set_dash_pattern()
    for x, y, w, h, period, label in chart.bars:
        colour = BASELINE_COLOUR if period == "baseline" else ASSESSMENT_COLOUR
        pdf.set_fill_color(*_rgb(colour))
        pdf.rect(X(x), Y(y), w * s, max(h * s, 0.01), style="F")
        pdf.set_text_color(0, 0, 0)
        pdf.text(X(x + w / 2) - pdf.get_string_width(label) / 2, Y(y) - 1, label)
    pdf.set_line_width(0.5)
    for period, points in chart.lines:
        pdf.set_draw_color(*_rgb(BASELINE_COLOUR if period == "baseline" else ASSESSMENT_COLOUR))
        if len(points) > 1:
            pdf.polyline([(X(x), Y(y)) for x, y in points])
    for x, y, period in chart.points:
        pdf.set_fill_color(*_rgb(BASELINE_COLOUR if period == "baseline" else ASSESSMENT_COLOUR))
        pdf.circle(X(x), Y(y), 0.7, style="F")
    pdf.set_draw_color(*_rgb(TARGET_COLOUR))
    pdf.set_line_width(0.3)
    for x in chart.gaps:
        pdf.line(X(x - 4), Y(bottom - 4), X(x + 4), Y(bottom + 4))
        pdf.line(X(x + 4), Y(bottom - 4), X(x - 4), Y(bottom + 4))
    if chart.target is not None:
        y, label = chart.target
        pdf.set_dash_pattern(dash=1.5, gap=1)
        pdf.line(X(left), Y(y), X(right), Y(y))
        pdf.set_dash_pattern()
        pdf.set_text_color(*_rgb(TARGET_COLOUR))
        pdf.text(X(left) + 1, Y(y) - 0.8, label)
    pdf.set_text_color(*_rgb(AXIS_COLOUR))
    for x, label in chart.x_labels:
        pdf.text(X(x) - pdf.get_string_width(label) / 2, Y(bottom + 13), label)
    lx = left
    for colour, label in chart.legend:
        pdf.set_fill_color(*_rgb(colour))
        pdf.rect(X(lx), Y(chart.height - 11), 10 * s, 4 * s, style="F")
        pdf.text(X(lx + 14), Y(chart.height - 6), label)
        lx += 110
    pdf.set_text_color(0, 0, 0)
    pdf.set_line_width(0.2)


def _rule_section(pdf: _ReportPdf, rule: RuleView) -> None:
    view = pdf.view
    if pdf.get_y() > pdf.h - 110:
        pdf.add_page()
    _heading(pdf, f"{rule.indicator}  ({rule.rule.id})", size=11)
    _verdict_badge(pdf, rule.rule.verdict, rule.verdict)
    details = f"{view.t('threshold')}: {rule.threshold}"
    if rule.definition:
        details += f" · {view.t('definition')}: {rule.definition}"
    _line(pdf, details)
    _line(
        pdf,
        f"{view.t('baseline_value')}: {rule.baseline} · {view.t('assessment_value')}: {rule.assessment}"
        f" · {view.t('change')}: {rule.change} · {view.t('target')}: {rule.target}",
    )
    if rule.reason:
        _line(pdf, f"{view.t('reason')}: {rule.reason}")
    y = pdf.get_y() + 1
    series, bars = series_chart(rule.rule, view.language), bar_chart(rule.rule, view.language)
    width = pdf.w - pdf.l_margin - pdf.r_margin
    series_mm = width * 0.68
    bars_mm = width * 0.30
    _draw_chart(pdf, series, pdf.l_margin, y, series_mm)
    _draw_chart(pdf, bars, pdf.l_margin + width - bars_mm, y, bars_mm)
    pdf.set_y(y + series.height * series_mm / series.width + 2)
    rows = [
        [
            view.t(m.which),
            m.value,
            m.status,
            m.coverage,
            "; ".join(f"{name} = {amount}" for name, amount in m.base),
            m.reason,
        ]
        for m in rule.metrics
    ]
    header = [view.t("evidence"), view.t("value"), view.t("status"), view.t("coverage")]
    _table(pdf, [*header, view.t("base_quantities"), view.t("reason")], rows, (22, 24, 18, 18, 60, 38), size=7)
    used = rule.inputs
    if used:
        _table(
            pdf,
            [view.t("inputs"), view.t("version"), view.t("period"), view.t("value"), view.t("entered_by")],
            (
                [
                    f"{item.entry_id} ({item.kind})",
                    str(item.version),
                    f"{item.period_start} – {item.period_end}",
                    value,
                    f"{item.entered_by}, {item.entered_at.isoformat()}",
                ]
                for item, value in used
            ),
            (40, 14, 40, 30, 56),
            size=7,
        )


def render_pdf(
    report: CertificationReport,
    language: Language,
    signature: Signature | None = None,
    *,
    font: FontChoice | None = None,
) -> bytes:
    """The report as a PDF in ``language``; every verdict is text (searchable, extractable).

    ``font`` overrides the choice of font file (the benchmark's baseline embeds the complete face).
    """
    view = report_view(report, language, signature)
    font = font or font_for(_characters(report, language))
    pdf = _ReportPdf(view)
    pdf.add_font(FONT, fname=font.path, collection_font_number=font.face)
    pdf.add_page()
    pdf.set_font(FONT, size=18)
    pdf.cell(0, 10, view.title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=12)
    pdf.cell(pdf.get_string_width(view.t("verdict") + ": ") + 1, 7, view.t("verdict") + ": ")
    _verdict_badge(pdf, report.verdict, view.verdict, size=12)
    pdf.ln(2)
    _table(
        pdf,
        None,
        [
            [view.t("scope"), view.scope],
            [view.t("sites"), ", ".join(report.sites)],
            [view.t("scheme"), view.scheme],
            [view.t("baseline"), view.baseline],
            [view.t("assessment"), view.assessment],
            [view.t("report_id"), report.report_id],
        ],
        (40, 140),
        size=9,
    )
    _heading(pdf, view.t("rules"))
    _table(
        pdf,
        [
            view.t("indicator"),
            view.t("threshold"),
            view.t("baseline_value"),
            view.t("assessment_value"),
            view.t("change"),
            view.t("target"),
            view.t("rule_verdict"),
            view.t("coverage"),
        ],
        (
            [
                rule.indicator + (f" ({rule.definition})" if rule.definition else ""),
                rule.threshold,
                rule.baseline,
                rule.assessment,
                rule.change,
                rule.target,
                rule.verdict,
                rule.coverage,
            ]
            for rule in view.rules
        ),
        (34, 44, 17, 17, 15, 17, 18, 18),
        size=7.5,
    )
    if view.has_relative_rules:
        _line(pdf, view.t("relative_meaning"), size=7.5)
    for rule in view.rules:
        _rule_section(pdf, rule)
    if pdf.get_y() > pdf.h - 80:
        pdf.add_page()
    provenance = report.provenance
    _heading(pdf, view.t("provenance"))
    _table(
        pdf,
        None,
        [
            [view.t("software_version"), provenance.software_version],
            [view.t("scheme_version"), provenance.scheme_version],
            [view.t("scheme_sha256"), report.scheme.sha256],
            [view.t("asset_model_sha256"), provenance.asset_model_sha256],
            [
                view.t("input_versions"),
                ", ".join(f"{entry} v{version}" for entry, version in provenance.input_versions),
            ],
            [view.t("query"), "; ".join(f"{k}={v}" for k, v in sorted(provenance.query.items()))],
            [view.t("generated_at"), provenance.generated_at.isoformat()],
        ],
        (50, 130),
    )
    _heading(pdf, view.t("signature"))
    rows = [[view.t("report_sha256"), view.report_sha256]]
    if signature is not None:
        rows += [[view.t("signer"), f"{signature.site} ({signature.algorithm})"], [view.t("key_id"), signature.key_id]]
    _table(pdf, None, rows, (50, 130))
    _line(pdf, view.t("signed_note") if signature is not None else view.t("unsigned"), size=8)
    return bytes(pdf.output())
