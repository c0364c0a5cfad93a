"""The KPI worker keeps hourly and daily rollups current: settled hours, late data, a changed configuration."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.settings import KpiSettings, Settings
from core.store import Point, Store
from core.stores.sqlite import SqliteStore
from core.wire import datetime_to_ns
from kpi.backfill import ProgressBar, backfill
from kpi.base import BaseQuantities
from kpi.rollup import DAILY, HOURLY, ROLLUP_SCHEMA
from kpi.worker import KpiWorker
from tests.test_kpi_engine import ASSETS, CNC01_H09, H08, H09, METER_A_H09, at, dataset

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
# Rolled up: cq-demo's 6 CNC + 2 robots + 3 meters and cq-east's 2 CNC, manual bench and meter.
ROLLED = 11 + 4
FIELDS = set(BaseQuantities.zero().to_fields())


def _settings(example_assets_path: Path, interval_s: float = 60.0, **kpi: float) -> Settings:
    # settle_hours=1 at 10:00 sharp: hour 09 is unsettled and hour 08 has just settled; both are written.
    # gap_intervals=1440: the test dataset's readings are tens of minutes apart (see test_kpi_engine).
    values = {"interval_s": interval_s, "settle_hours": 1, "gap_intervals": 1440, **kpi}
    return Settings(assets=example_assets_path, kpi=KpiSettings.model_validate(values))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = SqliteStore(tmp_path / "worker.sqlite")
    await store.write(dataset())
    yield store
    await store.close()


async def _stored(
    store: Store, end: datetime = NOW, start: datetime = H08
) -> dict[tuple[str, datetime], BaseQuantities]:
    frame = await store.read(HOURLY, start, end)
    assert (
        set(frame.columns)
        == {"time", "site", "workshop", "line", "equipment", "carry", "raw_points", "schema", "fp"} | FIELDS
    )
    return {
        (row["equipment"], row["time"].to_pydatetime()): BaseQuantities.from_fields(row)
        for row in frame.to_dict("records")
    }


async def test_recompute_writes_one_row_per_equipment_and_settling_hour(
    store: Store, example_assets_path: Path
) -> None:
    worker = KpiWorker(_settings(example_assets_path), store, ASSETS)
    written = await worker.recompute(NOW)
    # Every site's equipment (ROLLED), hours 08 and 09.
    assert written == ROLLED * 2
    stored = await _stored(store)
    assert len(stored) == ROLLED * 2
    # Hour 09 is the same hour the engine test computes (its window also starts at 09:00).
    assert stored[("cnc-01", H09)] == CNC01_H09
    assert stored[("meter-a", H09)] == METER_A_H09
    # Hour 08 is whole here (08:00-09:00): cnc-01 PRODUCING 08:00-08:40 + 08:50-09:00 = 3000 s, DOWN 600 s.
    h08 = stored[("cnc-01", H08)]
    assert (h08.production_time_s, h08.down_time_s, h08.expected_s, h08.parts_produced) == (3000, 600, 3600, 100)
    frame = await store.read(HOURLY, H08, NOW, {"equipment": "cnc-01"})
    assert frame[["site", "workshop", "line"]].iloc[0].tolist() == ["cq-demo", "machining", "line-a"]
    assert frame["schema"].tolist() == [ROLLUP_SCHEMA, ROLLUP_SCHEMA]
    # raw_points counts every point of the hour, the bad one included: states 08:40, 08:50; 3 counters at 08:45.
    assert frame["raw_points"].tolist() == [5, 13]


async def test_the_open_hour_is_never_written_as_a_rollup(store: Store, example_assets_path: Path) -> None:
    worker = KpiWorker(_settings(example_assets_path), store, ASSETS)
    await worker.recompute(NOW - timedelta(minutes=30))  # 09:30: hour 09 is open
    h07 = H08 - timedelta(hours=1)
    assert {hour for _, hour in await _stored(store, start=h07)} == {h07, H08}


async def test_late_data_in_a_settled_hour_is_found_and_what_follows_is_recomputed(
    each_store: Store, example_assets_path: Path
) -> None:
    store = each_store  # on both stores: the raw counts per hour must agree with the rollups' on each
    await store.write(dataset())
    worker = KpiWorker(_settings(example_assets_path), store, ASSETS)
    later = NOW + timedelta(hours=4)  # 14:00: hours 08 and 09 have long settled
    await worker.recompute(NOW)
    assert await worker.rescan(later) > 0  # hours 10..12 had no rollup yet: written now
    h10_before = (await _stored(store, later))[("cnc-01", datetime(2026, 11, 25, 10, tzinfo=UTC))]
    assert (h10_before.parts_produced, h10_before.excluded_steps) == (380, 0)
    assert await worker.rescan(later) == 0  # nothing changed since
    # A gateway flushes its buffer late: cnc-01 made 40 more parts by 09:55 than the rollup knows.
    tags = {**ASSETS.placement("cnc-01").tags(), "signal": "parts_total"}
    await store.write([Point("part_counter", tags, {"value": 160, "quality": "good"}, at("09:55"))])
    rewritten = await worker.rescan(later)
    stored = await _stored(store, later)
    assert stored[("cnc-01", H09)].parts_produced == CNC01_H09.parts_produced + 40
    # Hour 09's closing counter changed (160 @09:55, not 120 @09:50), so hour 10 was recomputed with it:
    # the reading 500 @10:00 was a step of 380 in 600 s (limit 3 x 600 / 4 + 1 = 451: counted); it is now
    # a step of 340 in 300 s (limit 3 x 300 / 4 + 1 = 226): excluded and counted as such.
    # Only cnc-01's hours 09 and 10 were rewritten (hour 11's carry is unchanged).
    h10 = stored[("cnc-01", datetime(2026, 11, 25, 10, tzinfo=UTC))]
    assert (h10.parts_produced, h10.excluded_steps) == (0, 1)
    assert rewritten == 2


async def test_daily_rollups_sum_their_settled_local_day(store: Store, example_assets_path: Path) -> None:
    worker = KpiWorker(_settings(example_assets_path), store, ASSETS)
    # Asia/Shanghai's 2026-11-25 runs 2026-11-24T16:00Z .. 2026-11-25T16:00Z.
    day_start, day_end = datetime(2026, 11, 24, 16, tzinfo=UTC), datetime(2026, 11, 25, 16, tzinfo=UTC)
    summary = await backfill(worker.engine, worker.equipment_ids, day_start, day_end, now=day_end + timedelta(hours=3))
    assert (summary.hours, summary.rows, summary.days) == (24, 24 * ROLLED, ROLLED)
    daily = await store.read_points(DAILY, day_start, day_end, {"equipment": "cnc-01"})
    assert [p.time_ns for p in daily] == [datetime_to_ns(day_start)]
    hourly = await _stored(store, day_end, start=day_start)
    assert BaseQuantities.from_fields(daily[0].fields) == sum(
        (b for (eq, _), b in hourly.items() if eq == "cnc-01"), BaseQuantities.zero()
    )
    assert daily[0].fields["hours"] == 24


async def test_backfill_is_idempotent_and_reports_progress(store: Store, example_assets_path: Path) -> None:
    worker = KpiWorker(_settings(example_assets_path), store, ASSETS)
    out = io.StringIO()
    first = await backfill(worker.engine, worker.equipment_ids, H08, NOW, progress=ProgressBar(2, out))
    before = await _stored(store)
    again = await backfill(worker.engine, worker.equipment_ids, H08, NOW)
    assert await _stored(store) == before
    assert first.rows == again.rows == ROLLED * 2
    assert first.raw_points == again.raw_points == len([p for p in dataset() if H08 <= _time(p) < NOW])
    assert "100.0%" in out.getvalue()


def _time(point: Point) -> datetime:
    return datetime.fromtimestamp(point.time_ns / 1e9, UTC)


async def test_a_changed_configuration_rebuilds_the_rollups(store: Store, example_assets_path: Path) -> None:
    worker = KpiWorker(_settings(example_assets_path), store, ASSETS, clock=lambda: NOW + timedelta(hours=3))
    await worker.recompute(NOW)
    assert await worker.check_meta() > 0  # the first meta point: rollups existed, made without one
    assert await worker.check_meta() == 0  # unchanged since
    # Readings valid for 30 intervals instead of 1440: every rollup is stale and rebuilt.
    changed = KpiWorker(
        _settings(example_assets_path, gap_intervals=30), store, ASSETS, clock=lambda: NOW + timedelta(hours=3)
    )
    assert changed.config_digest != worker.config_digest
    assert await changed.check_meta() > 0
    fresh = await changed.rollups.read_hours(["cnc-01"], datetime_to_ns(H08), datetime_to_ns(NOW))
    assert len(fresh) == 2  # rows with the new fingerprint: the old ones count as missing to the new rules


async def test_running_worker_recomputes_every_interval(store: Store, example_assets_path: Path) -> None:
    worker = KpiWorker(_settings(example_assets_path, interval_s=0.05), store, ASSETS, clock=lambda: NOW)
    async with worker:
        async with asyncio.timeout(10):
            while worker.rounds < 2:  # noqa: ASYNC110 (polling a counter; nothing to wait on)
                await asyncio.sleep(0.02)
    assert worker.points_written >= ROLLED * 4 and worker.failed_rounds == 0
    assert len([k for k in await _stored(store) if k[1] >= H08]) == ROLLED * 2


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
