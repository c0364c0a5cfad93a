"""The KPI worker: keeps the hourly base quantities in the store up to date.

Every ``kpi.interval_s`` it recomputes the current UTC hour and the ``kpi.recompute_hours - 1``
hours before it for every piece of production equipment and every meter, and writes them as
``kpi_base_hourly`` points stamped with the hour start. A rewrite of the same hour overwrites the
point, so recomputing is idempotent and late data is folded in on the next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from core.assets import AssetModel, EquipmentType
from core.errors import StoreError
from core.settings import Settings
from core.signals import Measurement
from core.store import Point, Store
from core.tasks import cancel_and_wait
from core.wire import datetime_to_ns
from kpi.engine import KpiEngine

log = logging.getLogger(__name__)


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
    ):
        self.settings = settings.kpi
        self.store = store
        self.assets = assets
        self.engine = KpiEngine(store, assets, timedelta(hours=self.settings.lookback_h), self.settings.min_coverage)
        self.clock = clock
        # Meters are written too: without their hourly energy the rollup could not give kWh per part.
        self.equipment_ids = [eq.id for eq in assets if eq.produces_parts or eq.type == EquipmentType.METER]
        self.rounds = 0
        self.points_written = 0
        self.failed_rounds = 0
        self._failing = False
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

    async def recompute(self, now: datetime | None = None) -> int:
        """Recompute and write the recent hours once; returns the number of points written."""
        end = now or self.clock()
        current_hour = end.replace(minute=0, second=0, microsecond=0)
        start = current_hour - timedelta(hours=self.settings.recompute_hours - 1)
        if end <= start:
            return 0
        rows = await self.engine.hourly(self.equipment_ids, start, end)
        points = [
            Point(
                Measurement.BASE_HOURLY,
                self.assets.placement(row.equipment).tags(),
                row.base.to_fields(),
                datetime_to_ns(row.hour),
            )
            for row in rows
        ]
        await self.store.write(points)
        return len(points)

    async def _loop(self) -> None:
        while True:
            try:
                written = await self.recompute()
            except StoreError as exc:
                self.failed_rounds += 1
                if not self._failing:
                    log.warning("KPI round failed, retrying every %ss: %s", self.settings.interval_s, exc)
                    self._failing = True
            else:
                self.rounds += 1
                self.points_written += written
                if self._failing:
                    log.info("KPI rounds succeed again")
                    self._failing = False
            await asyncio.sleep(self.settings.interval_s)
