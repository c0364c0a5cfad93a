"""Business KPIs: what certification needs beyond the machines, as pure functions of business inputs.

Two kinds of function live here, and neither reads a clock, a file or a store:

* **Formulas** (``labour_productivity`` ... ``relative_change``): numbers in, a number or None out.
  None means "no value" (a zero or negative denominator, an unknown amount), never 0.
* **Input figures** (``flow_total``, ``stock_average``, ``stock_at_end``, ``projects_launched``):
  what a window's business inputs add up to, with the entries used and, when they do not support a
  number, the reason. An input that is missing or does not cover the window gives no value and a
  reason (insufficient evidence), never a number that looks final.

Units follow ``core.business.INPUT_UNIT``: money in 万元 (10,000 CNY), land in km², water in m³,
energy from the KPI engine in kgce (1 tce = 1000 kgce). A year is 365 days when a figure is
annualised (labour productivity, output intensity).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

from core.business import InputEntry, InputKind

DAYS_PER_YEAR = 365
KGCE_PER_TCE = 1_000.0
KG_PER_T = 1_000.0
TEN_THOUSAND_PER_HUNDRED_MILLION = 10_000.0  # 1 亿元 = 10,000 万元
SECONDS_PER_HOUR = 3_600.0

# Amounts over a period (they add up over days) and states that hold over a period (they average).
FLOW_KINDS = frozenset(
    {
        InputKind.VALUE_ADDED,
        InputKind.OUTPUT_VALUE,
        InputKind.OPERATING_COST,
        InputKind.WATER_INTAKE,
        InputKind.PURCHASED_HEAT,
        InputKind.LABOUR_HOURS,
    }
)
STOCK_KINDS = frozenset({InputKind.HEADCOUNT, InputKind.LAND_AREA, InputKind.DIGITAL_RD_TOOL_RATE})


# ---------------------------------------------------------------------------------------------
# Formulas


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def _per(amount: float | None, denominator: float | None) -> float | None:
    if amount is None or denominator is None or not _finite(amount, denominator) or denominator <= 0:
        return None
    return amount / denominator


def annualised(amount: float | None, days: int) -> float | None:
    """An amount over ``days`` days scaled to a year of 365 days."""
    if amount is None or days <= 0:
        return None
    return amount * DAYS_PER_YEAR / days


def labour_productivity(value_added_10k_cny: float | None, average_headcount: float | None, days: int) -> float | None:
    """全员劳动生产率, 万元/人·年: value added / average employees, annualised over the period."""
    return _per(annualised(value_added_10k_cny, days), average_headcount)


def output_intensity(output_value_10k_cny: float | None, land_area_km2: float | None, days: int) -> float | None:
    """产出强度, 亿元/km²·年: output value (万元 / 10,000 = 亿元) / land area, annualised."""
    yearly = annualised(output_value_10k_cny, days)
    return _per(None if yearly is None else yearly / TEN_THOUSAND_PER_HUNDRED_MILLION, land_area_km2)


def energy_per_value_added(kgce: float | None, value_added_10k_cny: float | None) -> float | None:
    """万元增加值能耗, tce/万元: comprehensive energy (kgce / 1000 = tce) / value added."""
    return _per(None if kgce is None else kgce / KGCE_PER_TCE, value_added_10k_cny)


def co2_per_value_added(co2_kg: float | None, value_added_10k_cny: float | None) -> float | None:
    """万元增加值二氧化碳排放量, t CO₂/万元."""
    return _per(None if co2_kg is None else co2_kg / KG_PER_T, value_added_10k_cny)


def water_intensity(water_intake_m3: float | None, value_added_10k_cny: float | None) -> float | None:
    """万元增加值用水量, m³/万元: fresh water intake / value added (recycled water is not intake)."""
    return _per(water_intake_m3, value_added_10k_cny)


def operating_cost_per_unit(operating_cost_10k_cny: float | None, good_parts: float | None) -> float | None:
    """单位产品运营成本, 万元 per good part."""
    return _per(operating_cost_10k_cny, good_parts)


def operating_cost_per_output_value(
    operating_cost_10k_cny: float | None, output_value_10k_cny: float | None
) -> float | None:
    """Operating cost per 万元 of output value (a ratio)."""
    return _per(operating_cost_10k_cny, output_value_10k_cny)


def development_cycle_days(durations_days: Sequence[float]) -> float | None:
    """产品研制周期, days: the mean design-start-to-launch time of the projects; none: no value."""
    if not durations_days or not _finite(*durations_days):
        return None
    return sum(durations_days) / len(durations_days)


def output_per_hour(good_parts: float | None, planned_busy_time_s: float | None) -> float | None:
    """Good parts per hour of planned busy time (GQ / PBT)."""
    return _per(good_parts, None if planned_busy_time_s is None else planned_busy_time_s / SECONDS_PER_HOUR)


def output_per_labour_hour(good_parts: float | None, labour_hours: float | None) -> float | None:
    """Good parts per hour worked by the employees."""
    return _per(good_parts, labour_hours)


def output_per_kgce(good_parts: float | None, kgce: float | None) -> float | None:
    """Energy utilisation as good parts per kgce of comprehensive energy."""
    return _per(good_parts, kgce)


def value_added_per_tce(value_added_10k_cny: float | None, kgce: float | None) -> float | None:
    """Energy utilisation as value added (万元) per tce of comprehensive energy."""
    return _per(value_added_10k_cny, None if kgce is None else kgce / KGCE_PER_TCE)


def relative_change(baseline: float | None, assessment: float | None) -> float | None:
    """(assessment − baseline) / baseline; None when either is unknown or the baseline is not positive."""
    if baseline is None or assessment is None or not _finite(baseline, assessment) or baseline <= 0:
        return None
    return (assessment - baseline) / baseline


# ---------------------------------------------------------------------------------------------
# Input figures


@dataclass(frozen=True, slots=True)
class InputFigure:
    """What a window's entries of one kind amount to; ``value`` is None with a ``reason`` when they do not."""

    kind: InputKind
    value: float | None
    entries: tuple[InputEntry, ...]
    coverage: float  # share of the window's days the entries cover (1.0 for projects and end-of-period states)
    reason: str | None = None


def _days(start: date, end: date) -> int:
    return (end - start).days


def _span(entry: InputEntry) -> str:
    return f"{entry.entry_id} ({entry.period_start}..{entry.period_end})"


def _overlapping_pair(entries: Sequence[InputEntry]) -> tuple[InputEntry, InputEntry] | None:
    ordered = sorted(entries, key=lambda e: (e.period_start, e.period_end, e.entry_id))
    for first, second in pairwise(ordered):
        if second.period_start < first.period_end:
            return first, second
    return None


def _uncovered(entries: Iterable[InputEntry], start: date, end: date) -> list[tuple[date, date]]:
    """The parts of [start, end) that no entry covers."""
    gaps: list[tuple[date, date]] = []
    cursor = start
    for entry in sorted(entries, key=lambda e: e.period_start):
        if entry.period_start > cursor:
            gaps.append((cursor, min(entry.period_start, end)))
        cursor = max(cursor, entry.period_end)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return [(a, b) for a, b in gaps if b > a]


def _check_window(start: date, end: date) -> None:
    if end <= start:
        raise ValueError(f"window end {end} must be after its start {start}")


def _relevant(entries: Iterable[InputEntry], kind: InputKind, start: date, end: date) -> list[InputEntry]:
    return sorted(
        (e for e in entries if e.kind == kind and not e.deleted and e.period_start < end and start < e.period_end),
        key=lambda e: (e.period_start, e.entry_id),
    )


def _missing(kind: InputKind, start: date, end: date, gaps: Sequence[tuple[date, date]], covered: float) -> str:
    days = ", ".join(f"{a}..{b}" for a, b in gaps[:3]) + (" ..." if len(gaps) > 3 else "")
    return f"{kind.value} covers {covered:.0%} of {start}..{end}; no entry for {days}"


def flow_total(entries: Iterable[InputEntry], kind: InputKind, start: date, end: date) -> InputFigure:
    """The amount of a flow (value added, cost, water ...) over local dates [start, end).

    Entries must lie inside the window and tile it: an entry that straddles the window's bounds
    cannot be split without guessing how the amount spread over its days, and two overlapping
    entries would count the same days twice; both give no value.
    """
    _check_window(start, end)
    mine = _relevant(entries, kind, start, end)
    if not mine:
        return InputFigure(kind, None, (), 0.0, f"no {kind.value} entered for {start}..{end}")
    if (pair := _overlapping_pair(mine)) is not None:
        reason = f"{kind.value} entries {_span(pair[0])} and {_span(pair[1])} overlap: days would count twice"
        return InputFigure(kind, None, tuple(mine), 0.0, reason)
    straddling = [e for e in mine if e.period_start < start or e.period_end > end]
    inside = [e for e in mine if e not in straddling]
    covered = sum(_days(e.period_start, e.period_end) for e in inside) / _days(start, end)
    if straddling:
        reason = (
            f"{kind.value} entry {_span(straddling[0])} straddles the window {start}..{end}: its amount cannot be"
            " split without guessing; enter amounts on the window's bounds (e.g. per month)"
        )
        return InputFigure(kind, None, tuple(mine), covered, reason)
    if covered < 1.0:
        reason = _missing(kind, start, end, _uncovered(inside, start, end), covered)
        return InputFigure(kind, None, tuple(mine), covered, reason)
    return InputFigure(kind, sum(e.value for e in inside), tuple(inside), 1.0)


def stock_average(entries: Iterable[InputEntry], kind: InputKind, start: date, end: date) -> InputFigure:
    """The day-weighted mean of a state (headcount, land area, a share) over [start, end).

    An entry holds on every day of its own period, so it may reach beyond the window; together
    the entries must cover every day of the window, and no day twice.
    """
    _check_window(start, end)
    mine = _relevant(entries, kind, start, end)
    if not mine:
        return InputFigure(kind, None, (), 0.0, f"no {kind.value} entered for {start}..{end}")
    if (pair := _overlapping_pair(mine)) is not None:
        reason = f"{kind.value} entries {_span(pair[0])} and {_span(pair[1])} overlap: which one holds is unclear"
        return InputFigure(kind, None, tuple(mine), 0.0, reason)
    total_days = _days(start, end)
    weighted = 0.0
    covered_days = 0
    for e in mine:
        days = _days(max(start, e.period_start), min(end, e.period_end))
        weighted += e.value * days
        covered_days += days
    covered = covered_days / total_days
    if covered < 1.0:
        reason = _missing(kind, start, end, _uncovered(mine, start, end), covered)
        return InputFigure(kind, None, tuple(mine), covered, reason)
    return InputFigure(kind, weighted / total_days, tuple(mine), 1.0)


def stock_at_end(entries: Iterable[InputEntry], kind: InputKind, start: date, end: date) -> InputFigure:
    """The state on the window's last day (e.g. workshops recognised by then)."""
    _check_window(start, end)
    last = end - timedelta(days=1)
    holding = _relevant(entries, kind, last, end)
    if not holding:
        return InputFigure(kind, None, (), 0.0, f"no {kind.value} entered for {last} (the last day of {start}..{end})")
    if len(holding) > 1:
        reason = f"{kind.value} entries {_span(holding[0])} and {_span(holding[1])} both hold on {last}"
        return InputFigure(kind, None, tuple(holding), 0.0, reason)
    return InputFigure(kind, holding[0].value, tuple(holding), 1.0)


def projects_launched(entries: Iterable[InputEntry], start: date, end: date) -> InputFigure:
    """The mean development cycle (days) of the projects launched in [start, end).

    A project's entry runs from its design start (``period_start``) to its launch (``period_end``);
    its value is the number of days between them, and an entry whose value disagrees with its dates
    is refused (the cycle would depend on which one is read).
    """
    _check_window(start, end)
    kind = InputKind.DEV_PROJECT
    launched = sorted(
        (e for e in entries if e.kind == kind and not e.deleted and start <= e.period_end < end),
        key=lambda e: (e.period_end, e.entry_id),
    )
    if not launched:
        return InputFigure(kind, None, (), 0.0, f"no product development project launched in {start}..{end}")
    for e in launched:
        days = _days(e.period_start, e.period_end)
        if not math.isclose(e.value, days, abs_tol=0.5):
            reason = f"project {_span(e)} gives {e.value:g} days, but its dates are {days} days apart"
            return InputFigure(kind, None, tuple(launched), 1.0, reason)
    value = development_cycle_days([e.value for e in launched])
    return InputFigure(kind, value, tuple(launched), 1.0)


def combine_sites(figures: Sequence[InputFigure], how: str = "sum") -> InputFigure:
    """One figure for several sites: flows and head counts add up (``sum``); a share does not (``none``)."""
    if len(figures) == 1:
        return figures[0]
    kind = figures[0].kind
    entries = tuple(e for f in figures for e in f.entries)
    coverage = min(f.coverage for f in figures)
    withheld = next((f for f in figures if f.value is None), None)
    if withheld is not None:
        return InputFigure(kind, None, entries, coverage, withheld.reason)
    if how != "sum":
        return InputFigure(kind, None, entries, coverage, f"{kind.value} of several sites cannot be combined")
    return InputFigure(kind, sum(f.value for f in figures if f.value is not None), entries, coverage)
