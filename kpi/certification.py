"""Certification: a scheme's rules evaluated for one scope over an assessment (and a baseline) period.

``Certifier.evaluate`` asks the KPI engine for each period of the scope (one report per period,
grouped by local month for the series), reads the business inputs of the scope's sites, computes
every rule's metric (``kpi.metrics``) and judges it (``judge``). The result is a
``CertificationReport`` (kpi.certification_models): the contract every rendering and page reads.

Verdict rules (docs/certification.md):

* ``at_least`` / ``at_most``: the assessment value against the threshold.
* ``increase_by t``: pass when assessment ≥ (1 + t) × baseline; ``reduce_by t``: pass when
  assessment ≤ (1 − t) × baseline. "−20 %" is a relative change, never 20 percentage points.
  A value within one part in 10⁹ of its target meets it (floating-point rounding only).
* A value withheld or flagged on either side, a coverage below the rule's minimum, a missing
  baseline period or a baseline that is not positive gives ``insufficient_evidence`` with a reason.

Deterministic: the same query over the same data gives the same report, ``generated_at`` aside;
``report_id`` is a SHA-256 of the query and of the rules' results.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from core.assets import AssetModel
from core.business import INPUT_UNIT, BusinessInputs, InputEntry, InputKind
from kpi import business
from kpi.certification_models import (
    CertificationReport,
    Comparison,
    InputUsed,
    Language,
    MetricStatus,
    MetricValue,
    Period,
    Provenance,
    RuleResult,
    SchemeRef,
    SeriesPoint,
    Verdict,
    overall_verdict,
)
from kpi.engine import KpiEngine
from kpi.metrics import (
    METRIC_BY_KEY,
    METRICS,
    EquipmentUpload,
    Figure,
    Outcome,
    RuleParams,
    Window,
    WindowInputs,
    production_coverage,
)
from kpi.report import KpiReport
from kpi.schemes import Rule, Scheme, SchemeRegistry

__all__ = ["METRICS", "Certifier", "PeriodWindows", "evaluate_rule", "judge"]

ScopeKind = Literal["park", "site", "workshop", "line", "equipment"]
REL_TOL = 1e-9  # a value this close to its target meets it: rounding, far below any measurement's precision
KIND_ORDER = {kind: n for n, kind in enumerate(InputKind)}


def _utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# Judging one rule (pure)


def _meets_at_least(value: float, target: float) -> bool:
    return value >= target or math.isclose(value, target, rel_tol=REL_TOL, abs_tol=0.0)


def _meets_at_most(value: float, target: float) -> bool:
    return value <= target or math.isclose(value, target, rel_tol=REL_TOL, abs_tol=0.0)


def target_of(comparison: Comparison, threshold: float, baseline: float | None) -> float | None:
    """The value the assessment has to reach: the threshold, or (1 ± threshold) × baseline."""
    if comparison in ("at_least", "at_most"):
        return threshold
    if baseline is None:
        return None
    return baseline * (1 + threshold) if comparison == "increase_by" else baseline * (1 - threshold)


def judge(
    comparison: Comparison, threshold: float, assessment: float, baseline: float | None = None
) -> tuple[Verdict, float | None, float | None, str | None]:
    """(verdict, change, target, reason) for known values; relative comparisons need a positive baseline."""
    relative = comparison in ("increase_by", "reduce_by")
    change = None
    if relative:
        if baseline is None:
            return "insufficient_evidence", None, None, "no baseline value"
        if not baseline > 0:
            return "insufficient_evidence", None, None, f"baseline is {baseline:g}: a relative change is undefined"
        change = business.relative_change(baseline, assessment)
    target = target_of(comparison, threshold, baseline)
    assert target is not None
    upward = comparison in ("at_least", "increase_by")
    ok = _meets_at_least(assessment, target) if upward else _meets_at_most(assessment, target)
    if ok:
        return "pass", change, target, None
    sign = "≥" if upward else "≤"
    return "fail", change, target, f"{assessment:.6g} is not {sign} {target:.6g}"


def scope_sites(assets: AssetModel, scope: str) -> list[str]:
    """The sites a scope belongs to (a park scope: all of them); KeyError for an unknown scope."""
    assets.scope(scope)
    site = assets.site_of(scope)
    return [site] if site is not None else [s.id for s in assets.sites]


def _partial_site(assets: AssetModel, scope: str, sites: Sequence[str]) -> str | None:
    """Why inputs entered per site cannot be divided by this scope's output (None: the scope is whole sites)."""
    mine = {eq.id for eq in assets.scope(scope)}
    theirs = {eq.id for site in sites for eq in assets.scope(site)}
    if mine == theirs:
        return None
    return (
        f"business inputs are entered per site, and {scope!r} holds only part of site {', '.join(sites)}:"
        " evaluate the site (or a scope holding all of its equipment)"
    )


# ---------------------------------------------------------------------------------------------
# The certifier


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _label(start: date, end: date) -> str:
    return f"{start.isoformat()} – {(end - timedelta(days=1)).isoformat()}"


def _first_of_month(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def _check_period(name: str, period: tuple[date, date]) -> None:
    start, end = period
    if end <= start:
        raise ValueError(f"{name} period ends ({end}) before it starts ({start}); periods are [start, end)")


@dataclass(frozen=True, slots=True)
class MonthWindow:
    key: str  # "2026-03", the engine's local month bucket
    start: datetime  # UTC, the month clipped to the period
    end: datetime
    window: Window


@dataclass(frozen=True, slots=True)
class _Reading:
    """What reading a period of one evaluation needs, the same for both periods."""

    scope: str
    zone: ZoneInfo
    sites: Sequence[str]
    kinds: Sequence[InputKind]
    partial: str | None
    inputs_as_of: datetime | None


@dataclass(frozen=True, slots=True)
class PeriodWindows:
    """A period as one window, and its local months (the series)."""

    whole: Window
    months: list[MonthWindow]


class Certifier:
    """Evaluates schemes for scopes of one asset model."""

    def __init__(
        self,
        engine: KpiEngine,
        assets: AssetModel,
        inputs: BusinessInputs,
        schemes: SchemeRegistry,
        software_version: str,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ):
        self.engine = engine
        self.assets = assets
        self.inputs = inputs
        self.schemes = schemes
        self.software_version = software_version
        self.clock = clock

    async def evaluate(
        self,
        scope: str,
        scheme_id: str,
        assessment: tuple[date, date],
        baseline: tuple[date, date] | None,
        language: Language,
        query: dict[str, str],
        *,
        inputs_as_of: datetime | None = None,
    ) -> CertificationReport:
        """The scheme's verdict for the scope; periods are local dates [start, end) of the scope's site.

        ``inputs_as_of`` reads the business inputs as they stood at that instant (default: now), so a
        report can be regenerated over the input versions it was made from.

        Raises KeyError for an unknown scheme or scope, ValueError for periods that are not periods
        (end before start, a baseline that overlaps or follows the assessment).
        """
        scheme = self.schemes.get(scheme_id)
        sites = scope_sites(self.assets, scope)
        zone, _ = self.assets.calendar_of(scope)
        _check_period("assessment", assessment)
        if baseline is not None:
            _check_period("baseline", baseline)
            if baseline[1] > assessment[0]:
                raise ValueError(
                    f"the baseline ({baseline[0]}..{baseline[1]}) must end by the assessment's start ({assessment[0]})"
                )
        partial = _partial_site(self.assets, scope, sites)
        kinds = sorted(
            {k for r in scheme.rules for k in METRIC_BY_KEY[r.metric].needed_inputs(r.definition)},
            key=KIND_ORDER.__getitem__,
        )
        read = _Reading(scope, zone, sites, kinds, partial, inputs_as_of)
        if baseline is None:
            assessed, based = await self._windows(read, assessment), None
        else:
            assessed, based = await asyncio.gather(self._windows(read, assessment), self._windows(read, baseline))

        rules = [evaluate_rule(rule, assessed, based) for rule in scheme.rules]
        used = sorted(
            {
                (u.entry_id, u.version)
                for r in rules
                for value in (r.baseline, r.assessment)
                if value is not None
                for u in value.inputs
            }
        )
        a_period = Period(
            start=_local_midnight(assessment[0], zone),
            end=_local_midnight(assessment[1], zone),
            label=_label(*assessment),
        )
        b_period = None
        if baseline is not None:
            b_period = Period(
                start=_local_midnight(baseline[0], zone),
                end=_local_midnight(baseline[1], zone),
                label=_label(*baseline),
            )
        digest = self.assets.digest()
        report_id = self._report_id(scheme, scope, language, a_period, b_period, digest, used, rules)
        return CertificationReport(
            report_id=report_id,
            language=language,
            scheme=SchemeRef(
                id=scheme.id,
                version=scheme.version,
                title_en=scheme.title_en,
                title_zh=scheme.title_zh,
                sha256=scheme.sha256,
            ),
            scope=scope,
            scope_kind=self.assets.scope_kind(scope),
            scope_name=self.assets.scope_name(scope),
            sites=sites,
            baseline=b_period,
            assessment=a_period,
            rules=rules,
            verdict=overall_verdict([r.verdict for r in rules]),
            provenance=Provenance(
                software_version=self.software_version,
                scheme_version=scheme.version,
                asset_model_sha256=digest,
                input_versions=used,
                query=dict(query),
                generated_at=self.clock(),
            ),
        )

    def _report_id(
        self,
        scheme: Scheme,
        scope: str,
        language: Language,
        assessment: Period,
        baseline: Period | None,
        digest: str,
        used: list[tuple[str, int]],
        rules: list[RuleResult],
    ) -> str:
        content = {
            "scheme": [scheme.id, scheme.version, scheme.sha256],
            "scope": scope,
            "language": language,
            "assessment": assessment.model_dump(mode="json"),
            "baseline": None if baseline is None else baseline.model_dump(mode="json"),
            "asset_model_sha256": digest,
            "input_versions": used,
            "software_version": self.software_version,
            "rules": [r.model_dump(mode="json") for r in rules],
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    # -- reading a period --------------------------------------------------------------------

    async def _windows(self, read: _Reading, period: tuple[date, date]) -> PeriodWindows:
        """The whole period as one window, and one window per local month of it (the series)."""
        start, end = period
        zone, partial = read.zone, read.partial
        report = await self.engine.report(
            read.scope, _local_midnight(start, zone), _local_midnight(end, zone), group_by="month"
        )
        entries = self._read_inputs(read, start, end)
        whole = Window(
            start=start,
            end=end,
            base=report.base,
            kpis={k.key: Figure(k.value, k.status, k.coverage, k.reason) for k in report.kpis},
            inputs=WindowInputs(entries, start, end),
            equipment=self._uploads(report),
            partial_site=partial,
        )
        months = []
        for group in report.groups:
            first = max(start, _first_of_month(group.start.astimezone(zone).date()))
            last = min(end, _next_month(first))
            months.append(
                MonthWindow(
                    group.key,
                    _local_midnight(first, zone),
                    _local_midnight(last, zone),
                    Window(
                        start=first,
                        end=last,
                        base=group.base,
                        kpis={
                            key: Figure(value, group.status[key], production_coverage(key, group.base))
                            for key, value in group.kpis.items()
                        },
                        inputs=WindowInputs(entries, first, last),
                        partial_site=partial,
                    ),
                )
            )
        return PeriodWindows(whole, months)

    def _read_inputs(self, read: _Reading, start: date, end: date) -> dict[str, dict[InputKind, list[InputEntry]]]:
        out: dict[str, dict[InputKind, list[InputEntry]]] = {}
        for site in read.sites:
            out[site] = {}
            for kind in read.kinds:
                # A project counts in the period it was launched in: from the day before, so that a
                # launch on the first day (period_end == start) overlaps the query.
                first = start - timedelta(days=1) if kind == InputKind.DEV_PROJECT else start
                out[site][kind] = sorted(
                    self.inputs.entries(site, kind, first, end, as_of=read.inputs_as_of),
                    key=lambda e: (e.entry_id, e.version),
                )
        return out

    def _uploads(self, report: KpiReport) -> tuple[EquipmentUpload, ...]:
        return tuple(
            EquipmentUpload(self.assets.equipment(e.equipment), e.base.received_samples, e.base.expected_samples)
            for e in report.per_equipment
        )


# ---------------------------------------------------------------------------------------------
# One rule (pure: the windows hold everything a metric needs)


def evaluate_rule(rule: Rule, assessment: PeriodWindows, baseline: PeriodWindows | None) -> RuleResult:
    """A rule's values, verdict and monthly series from the windows of its periods."""
    metric = METRIC_BY_KEY[rule.metric]
    params = RuleParams(definition=rule.definition, upload_threshold=rule.upload_threshold)
    unit = metric.unit(rule.definition)

    def value_of(window: Window) -> MetricValue:
        return _metric_value(metric.compute(window, params), rule, unit)

    assessed = value_of(assessment.whole)
    based = value_of(baseline.whole) if rule.relative and baseline is not None else None
    verdict, change, target, reason = _verdict(rule, assessed, based, baseline is not None)
    series: list[SeriesPoint] = []
    if metric.per_month:
        for name, period in (("baseline", baseline), ("assessment", assessment)):
            for month in () if period is None else period.months:
                point = value_of(month.window)
                series.append(
                    SeriesPoint(
                        key=month.key,
                        period=name,  # type: ignore[arg-type]
                        start=month.start,
                        end=month.end,
                        value=point.value,
                        status=point.status,
                    )
                )
    return RuleResult(
        id=rule.id,
        metric=rule.metric,
        definition=rule.definition,
        label_en=metric.label_en,
        label_zh=metric.label_zh,
        unit=unit,
        comparison=rule.comparison,
        threshold=rule.threshold,
        baseline=based,
        assessment=assessed,
        change=change,
        target=target,
        verdict=verdict,
        reason=reason,
        series=series,
    )


def _verdict(
    rule: Rule, assessment: MetricValue, baseline: MetricValue | None, has_baseline: bool
) -> tuple[Verdict, float | None, float | None, str | None]:
    if rule.relative and not has_baseline:
        return "insufficient_evidence", None, None, "the rule compares with a baseline period, and none was given"
    for name, value in (("baseline", baseline), ("assessment", assessment)):
        if value is not None and (value.status != "ok" or value.value is None):
            target = target_of(rule.comparison, rule.threshold, None if baseline is None else baseline.value)
            reason = value.reason or "no value"
            if value.status == "flagged":
                reason = f"flagged: {reason}"
            return "insufficient_evidence", None, target, f"{name}: {reason}"
    assert assessment.value is not None
    return judge(rule.comparison, rule.threshold, assessment.value, None if baseline is None else baseline.value)


def _metric_value(outcome: Outcome, rule: Rule, unit: str) -> MetricValue:
    status: MetricStatus = outcome.status
    value = outcome.value
    reason = outcome.reason
    if status == "ok" and outcome.coverage is not None and outcome.coverage < rule.min_coverage:
        status, value = "insufficient_evidence", None
        reason = f"coverage {outcome.coverage:.3f} is below the scheme's minimum {rule.min_coverage}"
    if status == "ok" and value is not None and not math.isfinite(value):
        status, value, reason = "flagged", None, "not a finite number"
    return MetricValue(
        value=value,
        unit=unit,
        status=status,
        coverage=outcome.coverage,
        reason=reason,
        base=dict(sorted(outcome.base.items())),
        inputs=[_input_used(e) for e in sorted(outcome.inputs, key=lambda e: (e.entry_id, e.version))],
    )


def _input_used(entry: InputEntry) -> InputUsed:
    return InputUsed(
        entry_id=entry.entry_id,
        version=entry.version,
        kind=entry.kind.value,
        site=entry.site,
        period_start=entry.period_start,
        period_end=entry.period_end,
        value=entry.value,
        unit=INPUT_UNIT[entry.kind],
        entered_by=entry.entered_by,
        entered_at=entry.entered_at,
    )
