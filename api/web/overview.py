"""The overview: the scope a key may see as a tree (park -> sites -> workshops -> lines -> machines).

Each node gets one KPI-engine report over the chosen window (rollups for settled hours, raw series
for the rest, as every report), and each machine its last reported state with its age. For the
demo's size (a park of two sites, about ten machines) that is fifteen-odd reports and about a
second at most (docs/web.md); a park of hundreds of machines would want them cached per period.
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from api.deps import Caller
from core.assets import AssetModel, ScopeKind
from core.signals import OFFLINE, Measurement
from kpi.engine import KpiEngine
from kpi.report import KpiValue

PeriodName = Literal["24h", "7d", "30d", "custom"]
PERIODS: tuple[PeriodName, ...] = ("24h", "7d", "30d", "custom")
_LENGTH = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
MAX_DAYS = 366
# What a person asks first of each node: OEE and its three factors, the digitalisation rates, energy.
OVERVIEW_KPIS = (
    "oee",
    "availability",
    "effectiveness",
    "quality_ratio",
    "key_process_cnc_rate",
    "networking_rate",
    "kwh_per_good_part",
)
STATE_LOOKBACK = timedelta(days=30)


class PeriodError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Window:
    period: PeriodName
    start: datetime  # UTC
    end: datetime
    first_day: date | None = None  # custom: the local dates as given (inclusive)
    last_day: date | None = None


def window_of(period: str, first: date | None, last: date | None, now: datetime, zone: ZoneInfo) -> Window:
    if period in _LENGTH:
        return Window(period, now - _LENGTH[period], now)  # type: ignore[arg-type]
    if period != "custom":
        raise PeriodError(f"unknown period {period!r}: one of {', '.join(PERIODS)}")
    if first is None or last is None:
        raise PeriodError("a custom period needs a first and a last day")
    if last < first:
        raise PeriodError(f"the last day ({last}) is before the first ({first})")
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodError(f"a period may span at most {MAX_DAYS} days")
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = min(datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC), now)
    if end <= start:
        raise PeriodError(f"the period starts in the future ({first})")
    return Window("custom", start, end, first, last)


@dataclass(frozen=True, slots=True)
class MachineState:
    state: str  # a canonical state or OFFLINE
    at: datetime
    age_s: float
    stale: bool  # older than the evidence rules let a reading count (gap_intervals x report interval)


@dataclass(slots=True)
class Node:
    id: str
    name: str
    kind: ScopeKind
    depth: int
    kpis: dict[str, KpiValue] = field(default_factory=dict)
    state: MachineState | None = None
    machines: list[str] = field(default_factory=list)  # machines under it (producing equipment)
    reporting: int = 0  # of those, with a state that is not stale or offline


@dataclass(frozen=True, slots=True)
class Overview:
    window: Window
    nodes: list[Node]
    seconds: float
    reports: int


def _tree(assets: AssetModel, caller: Caller) -> list[Node]:
    nodes: list[Node] = []
    park = assets.park
    depth = 0
    if caller.may_see(None):
        nodes.append(Node(park.id, park.name or park.id, "park", 0))
        depth = 1
    for site in assets.sites:
        if not caller.may_see(site.id):
            continue
        nodes.append(Node(site.id, site.name or site.id, "site", depth))
        for workshop in site.workshops:
            nodes.append(Node(workshop.id, workshop.name or workshop.id, "workshop", depth + 1))
            for line in workshop.lines:
                nodes.append(Node(line.id, line.name or line.id, "line", depth + 2))
                for eq in line.equipment:
                    if eq.produces_parts:
                        nodes.append(Node(eq.id, eq.name or eq.id, "equipment", depth + 3))
    return nodes


async def machine_states(engine: KpiEngine, machine_ids: list[str], now: datetime) -> dict[str, MachineState]:
    if not machine_ids:
        return {}
    points = await engine.store.last_points(Measurement.STATE.value, now, STATE_LOOKBACK, {"equipment": machine_ids})
    states: dict[str, MachineState] = {}
    for p in points:
        eq, value = p.tags.get("equipment", ""), p.fields.get("value")
        if eq not in engine.profiles or value is None:
            continue
        at = datetime.fromtimestamp(p.time_ns / 1e9, UTC)
        age_ns = max(0, int((now - at).total_seconds() * 1e9))
        if eq in states and states[eq].at >= at:
            continue
        stale = age_ns > engine.profiles[eq].stale_ns or str(value) == OFFLINE
        states[eq] = MachineState(str(value), at, age_ns / 1e9, stale)
    return states


async def build_overview(
    engine: KpiEngine, assets: AssetModel, caller: Caller, window: Window, now: datetime
) -> Overview:
    began = clock.perf_counter()
    nodes = _tree(assets, caller)
    machines = [n.id for n in nodes if n.kind == "equipment"]
    machine_set = set(machines)
    states = await machine_states(engine, machines, now)
    for node in nodes:
        report = await engine.report(node.id, window.start, window.end, kpis=OVERVIEW_KPIS)
        node.kpis = {k.key: k for k in report.kpis}
        node.machines = [eq for eq in report.equipment if eq in machine_set]
        node.reporting = sum(1 for eq in node.machines if eq in states and not states[eq].stale)
        node.state = states.get(node.id) if node.kind == "equipment" else None
    return Overview(window, nodes, clock.perf_counter() - began, len(nodes))
