"""The dashboard feed: KPI engine figures that InfluxQL cannot derive from the rollups, written per day.

The dashboards compute OEE, its factors, upload rates, coverage and consumption straight from the
rollups' base quantities. Some indicators need more than sums: the asset model (key-process CNC
rate, networking rate), dated energy and emission factors per site (kgce, CO₂), business inputs
(value added), shift calendars, and scheme rules. The feed asks the KPI engine and the certifier for
those, each local day, and writes them beside the rollups:

* ``kpi_indicator``: tags ``park``, ``site`` (the scope: a site, or the park id for the park as a
  whole), ``indicator`` (the KPI key); fields ``value`` (absent when the engine withholds it) and
  ``status`` (ok, insufficient_evidence, flagged); stamped with the scope's local midnight.
* ``kpi_shift``: tags ``site``, ``workshop``, ``shift`` (the shift's name in the calendar); fields the
  base quantities behind OEE (PBT, APT, Σ PRU×PQ, PQ, GQ), so a range sums them per shift name;
  one point per shift as it ran (not the time between shifts), stamped with its start.
* ``certification_rule``: tags ``park``, ``scope``, ``scheme``, ``rule``; fields ``value``,
  ``target``, ``threshold``, ``verdict`` (pass, fail, insufficient_evidence) for the assessment
  period from its start up to the day; stamped with that day's local midnight.

They are kept with the rollups (``core.signals.ROLLUP_MEASUREMENTS``: in
``store.influx_rollup_retention_policy`` when it is set). Rewriting a day overwrites its points (same
series and timestamp): the feed is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from core.assets import AssetModel
from core.business import BusinessInputs, InputKind
from core.calendar import OFF_SHIFT
from core.store import Point, Store
from core.wire import datetime_to_ns
from kpi import business
from kpi.certification import Certifier
from kpi.dashboards.queries import FEED_INDICATOR, FEED_RULE, FEED_SHIFT
from kpi.energy import tce_per_10k_cny_value_added
from kpi.engine import KpiEngine

INDICATORS = (
    "oee",
    "key_process_cnc_rate",
    "networking_rate",
    "upload_rate",
    "comprehensive_energy_kgce",
    "co2_kg",
    "kgce_per_good_part",
)
VALUE_ADDED_INDICATOR = "tce_per_10k_cny_value_added"
SHIFT_KPIS = ("oee",)
# The base quantities behind OEE and its factors: summed over any range per shift name by InfluxQL.
SHIFT_BASE = ("planned_busy_time_s", "production_time_s", "ideal_time_s", "parts_produced", "parts_good")


@dataclass(frozen=True, slots=True)
class SchemeFeed:
    """A scheme evaluated every day from ``assessment_start`` on, against a fixed baseline."""

    scheme: str
    assessment_start: date
    baseline: tuple[date, date] | None = None


class DashboardFeed:
    """Writes the feed's measurements for the park and each of its sites (and their workshops' shifts)."""

    def __init__(
        self,
        store: Store,
        engine: KpiEngine,
        assets: AssetModel,
        *,
        inputs: BusinessInputs | None = None,
        certifier: Certifier | None = None,
        schemes: Sequence[SchemeFeed] = (),
    ):
        if schemes and certifier is None:
            raise ValueError("scheme feeds need a certifier")
        self.store = store
        self.engine = engine
        self.assets = assets
        self.inputs = inputs
        self.certifier = certifier
        self.schemes = tuple(schemes)
        self.park = assets.park.id

    def scopes(self) -> list[str]:
        return [self.park, *(site.id for site in self.assets.sites)]

    def _midnight(self, scope: str, day: date) -> datetime:
        zone, _ = self.assets.calendar_of(scope)
        return datetime.combine(day, time(), zone)

    async def write_days(self, days: Iterable[date]) -> int:
        """Compute and write every day's points; returns the number of points written."""
        written = 0
        for day in days:
            points = [
                *await self.indicator_points(day),
                *await self.shift_points(day),
                *await self.rule_points(day),
            ]
            if points:
                await self.store.write(points)
            written += len(points)
        return written

    async def indicator_points(self, day: date) -> list[Point]:
        points = []
        for scope in self.scopes():
            start, end = self._midnight(scope, day), self._midnight(scope, day + timedelta(days=1))
            report = await self.engine.report(scope, start, end, kpis=INDICATORS)
            stamp = datetime_to_ns(start)
            tags = {"park": self.park, "site": scope}
            for kpi in report.kpis:
                fields: dict[str, float | int | str] = {"status": kpi.status}
                if kpi.value is not None:
                    fields["value"] = float(kpi.value)
                points.append(Point(FEED_INDICATOR, {**tags, "indicator": kpi.key}, fields, stamp))
            points.extend(await self._value_added_points(scope, day))
        return points

    async def _value_added_points(self, scope: str, day: date) -> list[Point]:
        """Energy per value added over each business-input period that ends with ``day``.

        Value added is entered per period (a month, a quarter) and never split by guessing
        (``kpi.business.flow_total``), so the indicator is computed once its period is over, for the
        whole period, and stamped at its start.
        """
        if self.inputs is None:
            return []
        sites = [s.id for s in self.assets.sites] if scope == self.park else [scope]
        end = day + timedelta(days=1)
        periods = {
            e.period_start
            for site in sites
            for e in self.inputs.entries(site, InputKind.VALUE_ADDED, day, end)
            if e.period_end == end
        }
        points = []
        for first in sorted(periods):
            figures = [
                business.flow_total(
                    self.inputs.entries(site, InputKind.VALUE_ADDED, first, end), InputKind.VALUE_ADDED, first, end
                )
                for site in sites
            ]
            value_added = business.combine_sites(figures)
            start = self._midnight(scope, first)
            report = await self.engine.report(
                scope, start, self._midnight(scope, end), kpis=("comprehensive_energy_kgce",)
            )
            (kgce,) = report.kpis
            per_value_added = (
                tce_per_10k_cny_value_added(kgce.value, value_added.value) if value_added.value is not None else None
            )
            fields: dict[str, float | int | str] = {
                "status": "ok" if per_value_added is not None else "insufficient_evidence"
            }
            if per_value_added is not None:
                fields["value"] = float(per_value_added)
            tags = {"park": self.park, "site": scope, "indicator": VALUE_ADDED_INDICATOR}
            points.append(Point(FEED_INDICATOR, tags, fields, datetime_to_ns(start)))
        return points

    async def shift_points(self, day: date) -> list[Point]:
        """Each shift that starts on the day, per workshop: its base quantities (for sums over any range)."""
        points = []
        for site in self.assets.sites:
            for workshop in site.workshops:
                start = self._midnight(workshop.id, day)
                end = self._midnight(workshop.id, day + timedelta(days=1))
                report = await self.engine.report(workshop.id, start, end, group_by="shift", kpis=SHIFT_KPIS)
                for group in report.groups:
                    name = group.key.partition(" ")[2]  # "2026-11-27T22:00+08:00 night" (core.calendar)
                    if name == OFF_SHIFT or group.base.planned_busy_time_s <= 0:
                        continue
                    base = group.base.model_dump()
                    fields: dict[str, float | int | str] = {key: float(base[key]) for key in SHIFT_BASE}
                    tags = {"site": site.id, "workshop": workshop.id, "shift": name}
                    points.append(Point(FEED_SHIFT, tags, fields, datetime_to_ns(group.start)))
        return points

    async def rule_points(self, day: date) -> list[Point]:
        points: list[Point] = []
        if self.certifier is None:
            return points
        for feed in self.schemes:
            if day < feed.assessment_start:
                continue
            for scope in self.scopes():
                report = await self.certifier.evaluate(
                    scope, feed.scheme, (feed.assessment_start, day + timedelta(days=1)), feed.baseline, "en", {}
                )
                stamp = datetime_to_ns(self._midnight(scope, day))
                for rule in report.rules:
                    fields: dict[str, float | int | str] = {"verdict": rule.verdict, "threshold": float(rule.threshold)}
                    if rule.assessment.value is not None:
                        fields["value"] = float(rule.assessment.value)
                    if rule.target is not None:
                        fields["target"] = float(rule.target)
                    tags = {"park": self.park, "scope": scope, "scheme": feed.scheme, "rule": rule.id}
                    points.append(Point(FEED_RULE, tags, fields, stamp))
        return points
