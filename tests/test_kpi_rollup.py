"""Rollups as the read path: a report from rollups equals the same report from a raw scan, to 1e-9.

The data is random but seeded: two days of the example factory with the edge's one-minute refresh,
state changes, part counters with resets and implausible jumps, readings flagged bad, gaps in which
a machine reported nothing, and meters whose registers roll over. Reports are compared for random
windows (whole and partial hours, across the local midnight) and every kind of scope, on SQLite and
on a real InfluxDB.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.assets import AssetModel, EquipmentType, load_asset_model
from core.signals import MachineState
from core.store import Point, Store
from core.stores.influx import InfluxStore
from core.stores.sqlite import SqliteStore
from core.wire import datetime_to_ns
from kpi.backfill import backfill
from kpi.base import BaseQuantities
from kpi.engine import KpiEngine
from kpi.report import KpiReport
from tests.servers import InfluxServer

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 24, 0, tzinfo=UTC)
DAYS = 2
END = T0 + timedelta(days=DAYS)
NOW = END + timedelta(hours=6)  # everything has settled
STATES = list(MachineState)


def _assets() -> AssetModel:
    return load_asset_model(REPO / "config" / "factory.yaml")


def random_plant(assets: AssetModel, seed: int = 3) -> list[Point]:
    """Two days of readings every minute (the edge's refresh), with gaps, resets and bad readings."""
    rng = random.Random(seed)
    points: list[Point] = []
    for eq in assets:
        tags = assets.placement(eq.id).tags()
        gap_until = -1
        state = rng.choice(STATES)
        counters = {"parts_total": 0, "parts_good": 0, "parts_scrap": 0, "parts_rework": 0}
        register = rng.uniform(90_000, 99_000)
        for minute in range(DAYS * 24 * 60):
            t = datetime_to_ns(T0) + minute * 60_000_000_000 + rng.randrange(0, 5_000_000_000)
            if minute < gap_until:
                continue
            if rng.random() < 0.002:
                gap_until = minute + rng.randrange(4, 90)  # nothing reported: offline
                continue
            quality = "bad" if rng.random() < 0.01 else "good"
            if eq.type == EquipmentType.METER:
                register += rng.uniform(0, 2.0)
                if register > 99_999.9:
                    register -= 99_999.9  # the register wraps (factory.yaml's meters have no width: a reset)
                points.append(
                    Point("energy", {**tags, "signal": "energy_kwh"}, {"value": register, "quality": quality}, t)
                )
                continue
            if rng.random() < 0.05:
                state = rng.choice(STATES)
            points.append(
                Point("machine_state", {**tags, "signal": "state"}, {"value": state.value, "quality": quality}, t)
            )
            if state is MachineState.PRODUCING:
                made = rng.randrange(0, 15)
                scrap = rng.randrange(0, 2) if made else 0
                counters["parts_total"] += made
                counters["parts_good"] += made - scrap
                counters["parts_scrap"] += scrap
            if rng.random() < 0.001:
                counters = dict.fromkeys(counters, 0)  # a power cycle: every counter restarts together
            if rng.random() < 0.0005:
                counters["parts_total"] += 10**7  # an implausible jump
            for signal, value in counters.items():
                points.append(
                    Point("part_counter", {**tags, "signal": signal}, {"value": value, "quality": quality}, t)
                )
    return points


@pytest.fixture(params=["sqlite", "influxdb"], scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def loaded(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KpiEngine]:
    if backend == "sqlite":
        store: Store = SqliteStore(tmp_path / "plant.sqlite")
    else:
        server: InfluxServer = request.getfixturevalue("influx_server")
        store = InfluxStore(server.url, request.getfixturevalue("influx_database"))
    assets = _assets()
    await store.write(random_plant(assets))
    engine = KpiEngine(store, assets, clock=lambda: NOW)
    ids = [eq.id for eq in assets]
    await backfill(engine, ids, T0, END, now=NOW)
    try:
        yield engine
    finally:
        await store.close()


def _same_base(a: BaseQuantities | object, b: object) -> None:
    for f in fields(BaseQuantities):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x == pytest.approx(y, rel=1e-9, abs=1e-9), f.name


def assert_same_report(rolled: KpiReport, raw: KpiReport) -> None:
    _same_base(rolled.base, raw.base)
    for mine, theirs in zip(rolled.per_equipment, raw.per_equipment, strict=True):
        _same_base(mine.base, theirs.base)
    for mine_kpi, their_kpi in zip(rolled.kpis, raw.kpis, strict=True):
        assert mine_kpi.status == their_kpi.status, mine_kpi.key
        if their_kpi.value is None:
            assert mine_kpi.value is None, mine_kpi.key
        else:
            assert mine_kpi.value == pytest.approx(their_kpi.value, rel=1e-9), mine_kpi.key


async def test_reports_from_rollups_equal_raw_scans_for_random_windows_and_scopes(loaded: KpiEngine) -> None:
    rng = random.Random(11)
    scopes = loaded.assets.scope_ids()
    used_rollups = 0
    for _ in range(12):
        start = T0 + timedelta(minutes=rng.randrange(0, DAYS * 24 * 60 - 60))
        end = min(END, start + timedelta(minutes=rng.randrange(1, DAYS * 24 * 60)))
        if rng.random() < 0.5:  # whole hours as often as not
            start, end = start.replace(minute=0), end.replace(minute=0) + timedelta(hours=1)
        end = min(end, END)
        scope = rng.choice(scopes)
        group_by = rng.choice([None, "hour", "day"])
        rolled = await loaded.report(scope, start, end, group_by=group_by)
        raw = await loaded.report(scope, start, end, group_by=group_by, use_rollups=False)
        assert raw.read_path.rollup_hours == raw.read_path.rollup_days == 0
        used_rollups += rolled.read_path.rollup_hours + rolled.read_path.rollup_days
        assert_same_report(rolled, raw)
    assert used_rollups > 0


async def test_buckets_tile_the_window_and_sum_to_the_report(loaded: KpiEngine) -> None:
    start = T0 + timedelta(hours=5, minutes=17)  # 13:17 local: a partial first hour, a whole local day
    end = END - timedelta(minutes=41)
    for group_by in ("hour", "day", "week", "month"):
        report = await loaded.report("cq-demo", start, end, group_by=group_by)
        assert report.groups[0].start == start and report.groups[-1].end == end
        for before, after in zip(report.groups, report.groups[1:], strict=False):
            assert before.end == after.start
        summed = sum((BaseQuantities.from_fields(g.base.model_dump()) for g in report.groups), BaseQuantities.zero())
        _same_base(summed, report.base)
        assert report.base.expected_s == pytest.approx(len(report.equipment) * (end - start).total_seconds())


async def test_a_settled_day_is_read_from_one_daily_row_per_equipment(loaded: KpiEngine) -> None:
    # Asia/Shanghai's 2026-11-25 is 2026-11-24T16:00Z .. 2026-11-25T16:00Z.
    day = datetime(2026, 11, 24, 16, tzinfo=UTC)
    report = await loaded.report("line-a", day, day + timedelta(days=1))
    path = report.read_path
    assert (path.rollup_days, path.rollup_hours, path.raw_hours) == (4, 0, 0)  # cnc-01..03 and meter-a
    # At 00:30 the open hour (00:00-00:30) and the two settling hours before it come from raw series
    # even though rollups exist for them, and the report says so; the hour before them from rollups.
    now = END + timedelta(minutes=30)
    recent = await loaded.report("line-a", END - timedelta(hours=3), now, now=now)
    assert recent.read_path.raw_ranges == [(END - timedelta(hours=2), now)]
    assert recent.read_path.rollup_hours == 4  # 21:00-22:00 for four pieces of equipment
