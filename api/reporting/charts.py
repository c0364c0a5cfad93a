"""Charts of a rule, drawn server-side: geometry once, then SVG (HTML) or fpdf2 drawing (PDF).

Two charts per rule: the metric month by month over the baseline and the assessment period, with
the target as a dashed line; and a bar pair, baseline against assessment (the assessment alone
against its threshold for an absolute rule). Months without a value leave a gap and a cross on the
axis, never a zero. The value axis starts at zero so that bar heights compare honestly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from api.reporting.labels import text
from api.reporting.view import format_number, tick_label
from kpi.certification_models import Language, RuleResult

BASELINE_COLOUR = "#8a9bb0"
ASSESSMENT_COLOUR = "#1f6fb2"
TARGET_COLOUR = "#c0392b"
AXIS_COLOUR = "#555555"
GRID_COLOUR = "#e2e2e2"


@dataclass(slots=True)
class ChartGeometry:
    """A chart in pixels of a ``width`` x ``height`` box, y growing downwards."""

    width: float
    height: float
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    lines: list[tuple[str, list[tuple[float, float]]]] = field(default_factory=list)  # (period, points)
    points: list[tuple[float, float, str]] = field(default_factory=list)  # x, y, period
    gaps: list[float] = field(default_factory=list)  # x of months without a value
    bars: list[tuple[float, float, float, float, str, str]] = field(default_factory=list)  # x, y, w, h, period, label
    target: tuple[float, str] | None = None  # y, label
    divider: float | None = None  # x between baseline and assessment months
    legend: list[tuple[str, str]] = field(default_factory=list)  # colour, text


def _nice_step(span: float) -> float:
    raw = span / 4
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _scale(lo: float, hi: float, top: float, bottom: float):  # type: ignore[no-untyped-def]
    return lambda v: bottom - (v - lo) / (hi - lo) * (bottom - top)


def _axis(values: list[float], unit: str, top: float, bottom: float):  # type: ignore[no-untyped-def]
    highest = max([*values, 0.0])
    lowest = min([*values, 0.0])
    if unit == "ratio" and lowest >= 0 and 0.5 < highest <= 1:
        lo, hi, step = 0.0, 1.0, 0.25  # a share near the top: the whole 0-100 % scale
    else:
        span = (highest - lowest) or 1.0
        step = _nice_step(span * 1.1)
        lo = math.floor(lowest / step) * step
        hi = max(math.ceil((lowest + span * 1.1) / step) * step, lo + step)
    y = _scale(lo, hi, top, bottom)
    ticks = []
    for n in range(round((hi - lo) / step) + 1):
        value = lo + n * step
        ticks.append((y(value), tick_label(value, unit)))
    return y, ticks


def _target_label(rule: RuleResult, language: Language) -> str:
    return f"{text('legend_target', language)} {format_number(rule.target, rule.unit)}"


def series_chart(rule: RuleResult, language: Language, width: float = 560, height: float = 190) -> ChartGeometry:
    left, top, right, bottom = 56.0, 18.0, width - 12.0, height - 34.0
    chart = ChartGeometry(width, height, (left, top, right, bottom))
    values = [p.value for p in rule.series if p.value is not None]
    if rule.target is not None:
        values.append(rule.target)
    y, chart.y_ticks = _axis(values, rule.unit, top, bottom)
    count = max(len(rule.series), 1)
    slot = (right - left) / count
    segment: list[tuple[float, float]] = []
    current = None
    for n, point in enumerate(rule.series):
        x = left + slot * (n + 0.5)
        chart.x_labels.append((x, point.key))
        if current is not None and point.period != current:
            chart.divider = left + slot * n
            if segment:
                chart.lines.append((current, segment))
            segment = []
        current = point.period
        if point.value is None:
            chart.gaps.append(x)
            if segment:
                chart.lines.append((point.period, segment))
            segment = []
            continue
        segment.append((x, y(point.value)))
        chart.points.append((x, y(point.value), point.period))
    if segment and current is not None:
        chart.lines.append((current, segment))
    if rule.target is not None:
        chart.target = (y(rule.target), _target_label(rule, language))
    periods = {p.period for p in rule.series}
    if "baseline" in periods:
        chart.legend.append((BASELINE_COLOUR, text("legend_baseline", language)))
    chart.legend.append((ASSESSMENT_COLOUR, text("legend_assessment", language)))
    return chart


def bar_chart(rule: RuleResult, language: Language, width: float = 240, height: float = 190) -> ChartGeometry:
    left, top, right, bottom = 56.0, 18.0, width - 10.0, height - 34.0
    chart = ChartGeometry(width, height, (left, top, right, bottom))
    pairs = []
    if rule.baseline is not None:
        pairs.append(("baseline", rule.baseline.value))
    pairs.append(("assessment", rule.assessment.value))
    values = [v for _, v in pairs if v is not None]
    if rule.target is not None:
        values.append(rule.target)
    y, chart.y_ticks = _axis(values, rule.unit, top, bottom)
    slot = (right - left) / len(pairs)
    zero = y(0.0)
    for n, (period, value) in enumerate(pairs):
        x = left + slot * n + slot * 0.2
        w = slot * 0.6
        chart.x_labels.append((x + w / 2, text(f"legend_{period}", language)))
        if value is None:
            chart.gaps.append(x + w / 2)
            continue
        top_y = min(y(value), zero)
        chart.bars.append((x, top_y, w, abs(zero - y(value)), period, format_number(value, rule.unit)))
    if rule.target is not None:
        chart.target = (y(rule.target), _target_label(rule, language))
    return chart


def _f(v: float) -> str:
    return f"{v:.1f}"


def to_svg(chart: ChartGeometry, title: str) -> Markup:
    """The chart as an inline ``<svg>`` element (every text escaped)."""
    left, top, right, bottom = chart.plot
    out = [
        f'<svg class="chart" viewBox="0 0 {_f(chart.width)} {_f(chart.height)}" width="{_f(chart.width)}"'
        f' height="{_f(chart.height)}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for y, label in chart.y_ticks:
        out.append(f'<line x1="{_f(left)}" y1="{_f(y)}" x2="{_f(right)}" y2="{_f(y)}" stroke="{GRID_COLOUR}"/>')
        out.append(
            f'<text x="{_f(left - 4)}" y="{_f(y + 3)}" text-anchor="end" font-size="9" fill="{AXIS_COLOUR}">'
            f"{escape(label)}</text>"
        )
    out.append(
        f'<polyline points="{_f(left)},{_f(top)} {_f(left)},{_f(bottom)} {_f(right)},{_f(bottom)}" fill="none"'
        f' stroke="{AXIS_COLOUR}"/>'
    )
    if chart.divider is not None:
        out.append(
            f'<line x1="{_f(chart.divider)}" y1="{_f(top)}" x2="{_f(chart.divider)}" y2="{_f(bottom)}"'
            f' stroke="{AXIS_COLOUR}" stroke-dasharray="2 3"/>'
        )
    for x, y, w, h, period, label in chart.bars:
        colour = BASELINE_COLOUR if period == "baseline" else ASSESSMENT_COLOUR
        out.append(
            f'<rect class="bar {period}" x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" fill="{colour}"/>'
        )
        out.append(
            f'<text x="{_f(x + w / 2)}" y="{_f(y - 3)}" text-anchor="middle" font-size="10">{escape(label)}</text>'
        )
    for period, points in chart.lines:
        colour = BASELINE_COLOUR if period == "baseline" else ASSESSMENT_COLOUR
        coords = " ".join(f"{_f(x)},{_f(y)}" for x, y in points)
        out.append(
            f'<polyline class="series {period}" points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
    for x, y, period in chart.points:
        colour = BASELINE_COLOUR if period == "baseline" else ASSESSMENT_COLOUR
        out.append(f'<circle cx="{_f(x)}" cy="{_f(y)}" r="3" fill="{colour}"/>')
    for x in chart.gaps:
        out.append(
            f'<path class="gap" d="M{_f(x - 4)},{_f(bottom - 4)} l8,8 m0,-8 l-8,8" stroke="{TARGET_COLOUR}"'
            f' stroke-width="1.5"/>'
        )
    if chart.target is not None:
        y, label = chart.target
        out.append(
            f'<line class="target" x1="{_f(left)}" y1="{_f(y)}" x2="{_f(right)}" y2="{_f(y)}"'
            f' stroke="{TARGET_COLOUR}" stroke-dasharray="6 4" stroke-width="1.5"/>'
        )
        out.append(
            f'<text x="{_f(left + 4)}" y="{_f(y - 4)}" font-size="9" fill="{TARGET_COLOUR}">{escape(label)}</text>'
        )
    for x, label in chart.x_labels:
        out.append(
            f'<text x="{_f(x)}" y="{_f(bottom + 14)}" text-anchor="middle" font-size="9" fill="{AXIS_COLOUR}">'
            f"{escape(label)}</text>"
        )
    lx = left
    for colour, label in chart.legend:
        out.append(f'<rect x="{_f(lx)}" y="{_f(chart.height - 11)}" width="10" height="4" fill="{colour}"/>')
        out.append(f'<text x="{_f(lx + 14)}" y="{_f(chart.height - 6)}" font-size="9">{escape(label)}</text>')
        lx += 110
    out.append("</svg>")
    return Markup("".join(out))
