"""The KPI worker writes hourly base quantities for every production equipment and meter, idempotently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.settings import KpiSettings, Settings
from core.store import Store
from core.stores.sqlite import SqliteStore
from kpi.base import BaseQuantities
from kpi.worker import KpiWorker
from tests.test_kpi_engine import ASSETS, CNC01_H09, H08, H09, METER_A_H09, dataset

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
FIELDS = set(BaseQuantities.zero().to_fields())


def _settings(example_assets_path: Path, interval_s: float = 60.0) -> Settings:
    # recompute_hours=3 at 10:00 sharp: the current hour is still empty, so hours 08 and 09 are written.
    return Settings(assets=example_assets_path, kpi=KpiSettings(interval_s=interval_s, recompute_hours=3))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = SqliteStore(tmp_path / "worker.sqlite")
    await store.write(dataset())
    yield store
    await store.close()


async def _stored(store: Store) -> dict[tuple[str, datetime], BaseQuantities]:
    frame = await store.read("kpi_base_hourly", H08, NOW)
    assert set(frame.columns) == {"time", "site", "workshop", "line", "equipment", *FIELDS}
    return {
        (row["equipment"], row["time"].to_pydatetime()): BaseQuantities.from_fields(row)
        for row in frame.to_dict("records")
    }


async def test_recompute_writes_one_point_per_equipment_and_hour(store: Store, example_assets_path: Path) -> None:
    worker = KpiWorker(_settings(example_assets_path), store, ASSETS)
    written = await worker.recompute(NOW)
    # 6 CNC + 2 robots + 3 meters, hours 08 and 09.
    assert written == 11 * 2
    stored = await _stored(store)
    assert len(stored) == 22
    # Hour 09 is the same hour the engine test computes (its window also starts at 09:00).
    assert stored[("cnc-01", H09)] == CNC01_H09
    assert stored[("meter-a", H09)] == METER_A_H09
    # Hour 08 is whole here (08:00-09:00): cnc-01 PRODUCING 08:00-08:40 + 08:50-09:00 = 3000 s, DOWN 600 s.
    h08 = stored[("cnc-01", H08)]
    assert (h08.production_time_s, h08.down_time_s, h08.expected_s, h08.parts_produced) == (
        3000,
        600,
        3600,
        100,
    )
    frame = await store.read("kpi_base_hourly", H08, NOW, {"equipment": "cnc-01"})
    assert frame[["site", "workshop", "line"]].iloc[0].tolist() == ["cq-demo", "machining", "line-a"]
    assert frame["planned_busy_time_s"].tolist() == [3600.0, 3600.0]


async def test_rewriting_an_hour_overwrites_it(store: Store, example_assets_path: Path) -> None:
    worker = KpiWorker(_settings(example_assets_path), store, ASSETS)
    await worker.recompute(NOW - timedelta(minutes=30))  # 09:30: hour 09 known only up to 09:30
    partial = (await _stored(store))[("cnc-01", H09)]
    assert partial.expected_s == 1800
    await worker.recompute(NOW)
    stored = await _stored(store)
    assert len(stored) == 22
    assert stored[("cnc-01", H09)] == CNC01_H09


async def test_running_worker_recomputes_every_interval(store: Store, example_assets_path: Path) -> None:
    worker = KpiWorker(_settings(example_assets_path, interval_s=0.05), store, ASSETS, clock=lambda: NOW)
    async with worker:
        async with asyncio.timeout(10):
            while worker.rounds < 2:  # noqa: ASYNC110 (polling a counter; nothing to wait on)
                await asyncio.sleep(0.02)
    assert worker.points_written >= 44 and worker.failed_rounds == 0
    assert len(await _stored(store)) == 22


async def test_store_failure_is_counted_logged_once_and_the_loop_goes_on(
    tmp_path: Path, example_assets_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A directory where the database file should be: SQLite cannot open it, every round fails.
    broken = tmp_path / "not-a-file"
    broken.mkdir()
    store = SqliteStore(broken)
    worker = KpiWorker(_settings(example_assets_path, interval_s=0.02), store, ASSETS, clock=lambda: NOW)
    task = asyncio.create_task(worker.run())
    async with asyncio.timeout(10):
        while worker.failed_rounds < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert worker.rounds == 0
    failures = [r for r in caplog.records if r.name == "kpi.worker"]
    assert len(failures) == 1 and "KPI round failed" in failures[0].message
