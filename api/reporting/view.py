"""What every rendering shows, as text: a report's numbers formatted once, in one language.

The CSV, HTML and PDF renderings read a ``ReportView`` so that a number, a threshold or a verdict
is written the same way in all three. Numbers are not rounded before a comparison (the verdicts
come from the evaluator); the display rounds only what a person reads.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from api.reporting import labels as L
from api.reporting.canonical import canonical_report
from api.reporting.signing import Signature
from kpi.certification_models import CertificationReport, InputUsed, Language, MetricValue, Period, RuleResult

DASH = "—"
RELATIVE = ("increase_by", "reduce_by")


def format_number(value: float | None, unit: str = "", *, signed: bool = False) -> str:
    """A number as a person reads it: ratios as percent, others with sensible decimals."""
    if value is None:
        return DASH
    if value == 0:
        return "0%" if unit == "ratio" else "0"
    if unit == "ratio":
        decimals = 2 if abs(value) < 0.1 else 1
        text = f"{value * 100:+,.{decimals}f}%" if signed else f"{value * 100:,.{decimals}f}%"
    elif float(value).is_integer() and abs(value) < 1e15:  # counts, whole days, seconds: no decimals
        text = f"{int(value):+,d}" if signed else f"{int(value):,d}"
    else:
        magnitude = abs(value)
        # Below 1: four significant digits, so 0.0001337 (万元 per part) is not shown as 0.0001 beside 0.0001.
        small = min(12, max(4, 3 - math.floor(math.log10(magnitude))))
        decimals = 0 if magnitude >= 1000 else 1 if magnitude >= 100 else 2 if magnitude >= 1 else small
        text = f"{value:+,.{decimals}f}" if signed else f"{value:,.{decimals}f}"
    return text.replace("-", "−")  # a real minus sign


def tick_label(value: float, unit: str) -> str:
    """An axis label: the number without trailing zeros (25%, 2.5%, 150)."""
    text = format_number(value, unit)
    suffix = "%" if text.endswith("%") else ""
    number = text.removesuffix("%")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number + suffix


def format_quantity(value: float | None, unit: str, language: Language) -> str:
    text = format_number(value, unit)
    shown = L.unit_label(unit, language)
    if value is None or unit == "ratio" or not shown:
        return text
    return f"{text} {shown}"


def period_text(period: Period | None, language: Language) -> str:
    if period is None:
        return L.text("no_baseline", language)
    return f"{period.label} ({period.start:%Y-%m-%d %H:%M} – {period.end:%Y-%m-%d %H:%M} UTC)"


def threshold_text(rule: RuleResult, language: Language) -> str:
    """The rule in words: 'at least 50.0%', '较基准期降低不少于 20%（评价值 ≤ 0.8 × 基准值）'."""
    words = L.comparison_label(rule.comparison, language)
    if rule.comparison in RELATIVE:
        share = format_number(rule.threshold, "ratio")
        factor = 1 + rule.threshold if rule.comparison == "increase_by" else 1 - rule.threshold
        sign = "≥" if rule.comparison == "increase_by" else "≤"
        factor_text = f"{factor:.6g}"
        if language == "zh":
            return f"{words} {share}（评价值 {sign} {factor_text} × 基准值）"
        return f"{words} {share} vs baseline (assessment {sign} {factor_text} × baseline)"
    return f"{words} {format_quantity(rule.threshold, rule.unit, language)}"


def _reason(rule: RuleResult) -> str:
    for reason in (
        rule.reason,
        rule.assessment.reason,
        rule.baseline.reason if rule.baseline is not None else None,
    ):
        if reason:
            return reason
    return ""


@dataclass(frozen=True, slots=True)
class MetricView:
    which: str  # "baseline" or "assessment"
    value: str
    status: str
    coverage: str
    reason: str
    base: list[tuple[str, str]]
    metric: MetricValue


@dataclass(frozen=True, slots=True)
class RuleView:
    rule: RuleResult
    indicator: str
    definition: str
    comparison: str
    threshold: str
    baseline: str
    assessment: str
    change: str
    target: str
    verdict: str
    coverage: str
    reason: str
    unit: str
    metrics: list[MetricView]
    bars_title: str  # "baseline vs assessment", or "assessment vs threshold" for an absolute rule
    inputs: list[tuple[InputUsed, str]]  # of baseline and assessment, each (entry, version) once; value as text


@dataclass(frozen=True, slots=True)
class ReportView:
    report: CertificationReport
    language: Language
    title: str
    scheme: str
    scope: str
    baseline: str
    assessment: str
    verdict: str
    rules: list[RuleView]
    report_sha256: str
    signature: Signature | None
    has_relative_rules: bool

    def t(self, key: str) -> str:
        return L.text(key, self.language)

    def verdict_word(self, verdict: str) -> str:
        return L.verdict_label(verdict, self.language)  # type: ignore[arg-type]

    def status_word(self, status: str) -> str:
        return L.status_label(status, self.language)


def _metric_view(which: str, metric: MetricValue, language: Language) -> MetricView:
    return MetricView(
        which=which,
        value=format_quantity(metric.value, metric.unit, language),
        status=L.status_label(metric.status, language),
        coverage=format_number(metric.coverage, "ratio"),
        reason=metric.reason or "",
        base=[(name, format_number(amount)) for name, amount in sorted(metric.base.items())],
        metric=metric,
    )


def rule_view(rule: RuleResult, language: Language) -> RuleView:
    relative = rule.comparison in RELATIVE
    metrics = [_metric_view("assessment", rule.assessment, language)]
    if rule.baseline is not None:
        metrics.insert(0, _metric_view("baseline", rule.baseline, language))
    coverage = format_number(rule.assessment.coverage, "ratio")
    if rule.baseline is not None:
        coverage = f"{format_number(rule.baseline.coverage, 'ratio')} / {coverage}"
    return RuleView(
        rule=rule,
        indicator=L.label(rule.metric, language, rule),
        definition=L.definition_label(rule.definition, language),
        comparison=L.comparison_label(rule.comparison, language),
        threshold=threshold_text(rule, language),
        baseline=format_quantity(rule.baseline.value, rule.unit, language) if rule.baseline is not None else DASH,
        assessment=format_quantity(rule.assessment.value, rule.unit, language),
        change=format_number(rule.change, "ratio", signed=True),
        target=format_quantity(rule.target, rule.unit, language),
        verdict=L.verdict_label(rule.verdict, language),
        coverage=coverage,
        reason=_reason(rule),
        unit=L.unit_label(rule.unit, language),
        metrics=metrics,
        bars_title=L.text("baseline_vs_assessment" if relative else "assessment_vs_target", language),
        inputs=[
            (i, format_quantity(i.value, i.unit, language))
            for i in {(i.entry_id, i.version): i for m in metrics for i in m.metric.inputs}.values()
        ],
    )


def report_view(report: CertificationReport, language: Language, signature: Signature | None = None) -> ReportView:
    scheme_title = report.scheme.title_zh if language == "zh" else report.scheme.title_en
    kind = L.scope_kind_label(report.scope_kind, language)
    return ReportView(
        report=report,
        language=language,
        title=L.text("title", language),
        scheme=f"{scheme_title} ({report.scheme.id} v{report.scheme.version})",
        scope=f"{report.scope_name} ({kind} {report.scope})",
        baseline=period_text(report.baseline, language),
        assessment=period_text(report.assessment, language),
        verdict=L.verdict_label(report.verdict, language),
        rules=[rule_view(rule, language) for rule in report.rules],
        report_sha256=hashlib.sha256(canonical_report(report)).hexdigest(),
        signature=signature,
        has_relative_rules=any(rule.comparison in RELATIVE for rule in report.rules),
    )
