"""The KPI worker: keeps the hourly and daily rollups current, so reports can read them.

Every ``kpi.interval_s`` it rewrites the hourly rollups of the last ``settle_hours`` closed hours and
of the hour that has just settled (late data within that time is folded in as a matter of course).
Every ``kpi.late_scan_interval_s`` it counts the raw points of each equipment-hour over the last
``kpi.late_data_horizon_h`` and recomputes every hour whose count differs from the one its rollup
was computed from, or that has no current rollup (the worker was down, the configuration changed);
a recomputed hour whose closing readings changed makes the hour after it dirty too. Daily rollups of
the days touched are rewritten once the whole day has settled.

At start it compares, site by site, the rollups' schema and configuration with the current ones
(the site's ``kpi_rollup_meta`` point) and rebuilds every rollup of that site since its first one
when they differ. One worker keeps every site of the park current, each in its own zone (``sites``
narrows it to some of them: workers can partition a large park by site).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from core.assets import AssetModel, EquipmentType
from core.errors import StoreError
from core.once import Outage
from core.settings import Settings
from core.signals import Measurement
from core.store import Point, Store
from core.tasks import cancel_and_wait
from core.wire import datetime_to_ns, ns_to_datetime
from kpi.backfill import backfill
from kpi.base import HOUR_NS
from kpi.engine import HourlyBase, KpiEngine
from kpi.rollup import ROLLUP_SCHEMA, HourRow

log = logging.getLogger(__name__)

META = Measurement.ROLLUP_META.value
_YEARS = timedelta(days=3 * 366)  # how far back the worker looks for the first rollup and its meta point


def _utc_now() -> datetime:
    return datetime.now(UTC)


class KpiWorker:
    """``async with KpiWorker(...)`` starts the loop; ``await worker.run()`` runs until cancelled."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        assets: AssetModel,
        *,
        clock: Callable[[], datetime] = _utc_now,
        sites: Sequence[str] | None = None,
    ):
        self.settings = settings.kpi
        self.store = store
        self.assets = assets
        self.engine = KpiEngine.from_settings(store, assets, self.settings, clock)
        self.rollups = self.engine.rollups
        self.clock = clock
        self.sites = [assets.get_site(s).id for s in sites] if sites is not None else [s.id for s in assets.sites]
        # Meters are rolled up too: without their hourly consumption there is no energy per part.
        self.equipment_ids = [
            eq.id
            for site in self.sites
            for eq in assets.scope(site)
            if eq.produces_parts or eq.type == EquipmentType.METER
        ]
        self.rounds = 0
        self.points_written = 0
        self.late_hours = 0
        self.failed_rounds = 0
        self._round_failures = Outage(log)  # the rounds: logged once when they fail, once when they succeed again
        self._last_scan_ns: int | None = None
        self._checked_meta = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._loop(), name="kpi-worker")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    async def run(self) -> None:
        """Run until cancelled; a failure of the loop itself (not of the store) ends it with the error."""
        async with self:
            assert self._task is not None
            await self._task

    def links(self) -> dict[str, bool]:
        """What ``factory healthcheck --service kpi`` judges: the last round reached the store."""
        return {"store": not self._round_failures.ongoing}

    @property
    def config_digest(self) -> str:
        """What every rollup of the worker's sites was made with (``config_digest_of`` one site's)."""
        return self._digest(self.equipment_ids)

    def config_digest_of(self, site_id: str) -> str:
        return self._digest(self._equipment_of(site_id))

    def _digest(self, equipment_ids: Sequence[str]) -> str:
        fps = ",".join(self.rollups.fingerprint_of(e) for e in equipment_ids)
        return hashlib.sha256(f"{ROLLUP_SCHEMA}:{fps}".encode()).hexdigest()[:16]

    def _equipment_of(self, site_id: str) -> list[str]:
        return [e for e in self.equipment_ids if self.assets.placement(e).site == site_id]

    async def recompute(self, now: datetime | None = None) -> int:
        """Rewrite the rollups of the unsettled closed hours and of the hour that just settled."""
        now = now or self.clock()
        now_ns = datetime_to_ns(now)
        current = now_ns - now_ns % HOUR_NS
        start = current - (self.settings.settle_hours + 1) * HOUR_NS
        stored = await self.rollups.read_hours(self.equipment_ids, start - HOUR_NS, start)
        carries = {eq: row.carry for (eq, _), row in stored.items()}
        rows = await self.engine.raw_hours(self.equipment_ids, start, current, carries=carries)
        await self._write(rows, now)
        return len(rows)

    async def rescan(self, now: datetime | None = None) -> int:
        """Recompute settled hours of the late-data horizon whose raw data changed or that lack a rollup."""
        now = now or self.clock()
        settled = self.engine.settled_before_ns(now)
        start = settled - int(self.settings.late_data_horizon_h * HOUR_NS)
        start -= start % HOUR_NS
        if start >= settled:
            return 0
        window = (ns_to_datetime(start), ns_to_datetime(settled))
        producers = [e for e in self.equipment_ids if not self.engine.profiles[e].is_meter]
        meters = [e for e in self.equipment_ids if self.engine.profiles[e].is_meter]
        counts = await self.store.count_by_hour(
            [Measurement.STATE.value, Measurement.COUNTER.value], *window, "equipment"
        )
        energy = await self.store.count_by_hour([Measurement.ENERGY.value], *window, "equipment")
        stored = await self.rollups.read_hours(self.equipment_ids, start - HOUR_NS, settled)
        dirty: set[tuple[str, int]] = set()
        for ids, raw in ((producers, counts), (meters, energy)):
            for eq in ids:
                for hour in range(start, settled, HOUR_NS):
                    row = stored.get((eq, hour))
                    if row is None or row.raw_points != raw.get((eq, hour), 0):
                        dirty.add((eq, hour))
        written = await self._recompute(dirty, stored, settled, now)
        self.late_hours += len(dirty)
        return written

    async def _recompute(
        self, dirty: set[tuple[str, int]], stored: dict[tuple[str, int], HourRow], settled: int, now: datetime
    ) -> int:
        written = 0
        pending = dirty
        while pending:
            follow: set[tuple[str, int]] = set()
            for a, b, ids in runs_of(pending):
                carries = {eq: stored[(eq, a - HOUR_NS)].carry for eq in ids if (eq, a - HOUR_NS) in stored}
                rows = await self.engine.raw_hours(ids, a, b, carries=carries)
                await self._write(rows, now)
                written += len(rows)
                for row in rows:
                    stored[(row.equipment, row.hour_ns)] = row.row()
                # What was known at the end of the run changed: the hour after it is stale as well.
                for eq in ids:
                    after = stored.get((eq, b))
                    if b < settled and after is not None and after.carry != stored[(eq, b - HOUR_NS)].carry:
                        follow.add((eq, b))
            pending = follow - dirty
            dirty |= follow
        return written

    async def _write(self, rows: Sequence[HourlyBase], now: datetime) -> None:
        whole = [r.row() for r in rows if r.whole_hour]
        await self.rollups.write_hours(whole)
        await self.rollups.refresh(
            {r.equipment for r in whole}, {r.hour_ns for r in whole}, self.engine.settled_before_ns(now)
        )
        self.points_written += len(whole)

    async def check_meta(self, now: datetime | None = None) -> int:
        """Rebuild, site by site, every rollup since the first one when the schema or configuration changed."""
        now = now or self.clock()
        rebuilt = 0
        for site_id in self.sites:
            rebuilt += await self._check_site_meta(site_id, now)
        return rebuilt

    async def _check_site_meta(self, site_id: str, now: datetime) -> int:
        equipment_ids = self._equipment_of(site_id)
        if not equipment_ids:
            return 0
        digest = self.config_digest_of(site_id)
        site = {"site": site_id}
        # The meta point is stamped with the time it was written; a clock set back must still see it.
        found = await self.store.last_points(META, now + timedelta(days=1), _YEARS, site)
        if found and found[-1].fields.get("value") == digest:
            return 0
        first = await self._first_rollup_ns(equipment_ids[0], now)
        rebuilt = 0
        if first is not None:
            end = ns_to_datetime(self.engine.settled_before_ns(now))
            if ns_to_datetime(first) < end:
                log.info(
                    "KPI rollups of site %s were made with another schema or configuration: rebuilding them since %s",
                    site_id,
                    ns_to_datetime(first).isoformat(),
                )
                summary = await backfill(self.engine, equipment_ids, ns_to_datetime(first), end, now=now)
                rebuilt = summary.rows
        meta = Point(META, site, {"value": digest, "quality": "good", "schema": ROLLUP_SCHEMA}, datetime_to_ns(now))
        await self.store.write([meta])
        return rebuilt

    async def _first_rollup_ns(self, equipment_id: str, now: datetime) -> int | None:
        # The oldest daily row is the cheapest bound on where rollups begin; hourly rows narrow it.
        for measurement in (Measurement.BASE_DAILY.value, Measurement.BASE_HOURLY.value):
            points = await self.store.read_points(measurement, now - _YEARS, now, {"equipment": [equipment_id]})
            if points:
                return points[0].time_ns
        return None

    async def _loop(self) -> None:
        while True:
            try:
                if not self._checked_meta:
                    await self.check_meta()
                    self._checked_meta = True
                written = await self.recompute()
                now_ns = datetime_to_ns(self.clock())
                if (
                    self._last_scan_ns is None
                    or now_ns - self._last_scan_ns >= self.settings.late_scan_interval_s * 1e9
                ):
                    written += await self.rescan()
                    self._last_scan_ns = now_ns
            except StoreError as exc:
                self.failed_rounds += 1
                self._round_failures.lost("KPI round failed, retrying every %ss: %s", self.settings.interval_s, exc)
            else:
                self.rounds += 1
                self._round_failures.back("KPI rounds succeed again")
            await asyncio.sleep(self.settings.interval_s)


def runs_of(pairs: set[tuple[str, int]]) -> list[tuple[int, int, list[str]]]:
    """Contiguous runs of hours that some equipment lacks: (start, end, equipment lacking any of them)."""
    lacking: dict[int, list[str]] = defaultdict(list)
    for eq, hour in sorted(pairs):
        lacking[hour].append(eq)
    runs: list[tuple[int, int, list[str]]] = []
    for hour in sorted(lacking):
        if runs and runs[-1][1] == hour:
            a, _, ids = runs[-1]
            runs[-1] = (a, hour + HOUR_NS, list(dict.fromkeys([*ids, *lacking[hour]])))
        else:
            runs.append((hour, hour + HOUR_NS, lacking[hour]))
    return runs
