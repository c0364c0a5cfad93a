"""Evidence that never looks final when it is not: the cases seen on a real demo, on both stores.

Line A of the example factory (cnc-01 4 s, cnc-02 5 s, cnc-03 3 s ideal cycle; meter-a covers all
three), with the edge's one-minute refresh. Every expected figure is worked out beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.store import Point, Store
from core.stores.sqlite import SqliteStore
from core.wire import datetime_to_ns
from kpi.engine import KpiEngine
from kpi.report import KpiReport, KpiValue
from tests.test_kpi_engine import ASSETS

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
MIN = 60 * 1_000_000_000


def _point(measurement: str, eq: str, signal: str, minute: float, value: object, quality: str = "good") -> Point:
    tags = {**ASSETS.placement(eq).tags(), "signal": signal}
    return Point(measurement, tags, {"value": value, "quality": quality}, datetime_to_ns(T0) + int(minute * MIN))  # type: ignore[dict-item]


def machine(eq: str, first: int, last: int, parts_per_min: int = 10, start_count: int = 0) -> list[Point]:
    """PRODUCING every minute from ``first`` to ``last`` (inclusive), counters rising by parts_per_min."""
    points = []
    for n, minute in enumerate(range(first, last + 1)):
        count = start_count + n * parts_per_min
        points += [
            _point("machine_state", eq, "state", minute, "PRODUCING"),
            _point("part_counter", eq, "parts_total", minute, count),
            _point("part_counter", eq, "parts_good", minute, count),
        ]
    return points


def meter(first: int, last: int, kwh_per_min: float = 0.5, start: float = 1000.0) -> list[Point]:
    return [
        _point("energy", "meter-a", "energy_kwh", m, start + (m - first) * kwh_per_min) for m in range(first, last + 1)
    ]


@pytest.fixture
def store(each_store: Store) -> Store:
    return each_store


def kpis(report: KpiReport) -> dict[str, KpiValue]:
    return {k.key: k for k in report.kpis}


async def report(store: Store, scope: str, start_min: int, end_min: int) -> KpiReport:
    engine = KpiEngine(store, ASSETS, clock=lambda: T0 + timedelta(days=2))
    return await engine.report(scope, T0 + timedelta(minutes=start_min), T0 + timedelta(minutes=end_min))


async def test_a_dead_meter_is_insufficient_evidence_however_well_the_machines_report(store: Store) -> None:
    # cnc-01..03 report the whole hour; meter-a only its first 5 minutes (valid to 08:07): its
    # coverage is 7 of 60 min = 0.117, so no energy per part, not 0 kWh per part.
    await store.write([*machine("cnc-01", 0, 59), *machine("cnc-02", 0, 59), *machine("cnc-03", 0, 59), *meter(0, 4)])
    values = kpis(await report(store, "line-a", 0, 60))
    assert values["oee"].status == "ok"
    assert values["kwh_per_good_part"].status == "insufficient_evidence"
    assert values["kwh_per_good_part"].value is None
    assert values["kwh_per_good_part"].coverage == pytest.approx(7 / 60)


async def test_a_missing_counter_is_insufficient_evidence_not_a_quality_of_zero(store: Store) -> None:
    # cnc-01 reports its state and its total count but never a good-part counter.
    await store.write([p for p in machine("cnc-01", 0, 59) if p.tags["signal"] != "parts_good"])
    values = kpis(await report(store, "cnc-01", 0, 60))
    assert values["availability"].status == "ok" and values["availability"].value == 1.0
    for key in ("quality_ratio", "oee", "defect_rate"):
        assert values[key].status == "insufficient_evidence" and values[key].value is None, key


async def test_a_bad_reading_before_the_window_is_never_the_prior_on_either_store(store: Store) -> None:
    # 100 @07:59 good, 999,999 @07:59:30 bad, 110 @08:00:30 and 120 @08:01:30: the prior is 100,
    # so the window 08:00-08:02 counts +10 +10 = 20 parts (with 999,999 as the prior it would be a
    # reset: +110 +10).
    await store.write(
        [
            _point("part_counter", "cnc-01", "parts_total", -1, 100),
            _point("part_counter", "cnc-01", "parts_total", -0.5, 999_999, quality="bad"),
            _point("part_counter", "cnc-01", "parts_total", 0.5, 110),
            _point("part_counter", "cnc-01", "parts_total", 1.5, 120),
        ]
    )
    result = await report(store, "cnc-01", 0, 2)
    assert (result.base.parts_produced, result.base.counter_resets) == (20, 0)


async def test_a_restart_on_an_old_store_gives_the_numbers_of_a_fresh_store(store: Store, tmp_path: Path) -> None:
    # Run 1 (08:00-08:20) ends with cnc-01's counters at 200; nothing reports for 15 minutes; run 2
    # starts at 08:35 with the counters a little below (195: the simulator restored them), after
    # publishing 0 for a minute first. Run 2 is the same on an old store as on a fresh one: the
    # first reading after the gap is a baseline, 0 -> 195 in a minute (limit 3 x 60 / 4 + 1 = 46)
    # is excluded, and 195 + 10/min for 24 more minutes is 240 parts.
    run_two = [*machine("cnc-01", 35, 35, parts_per_min=0), *machine("cnc-01", 36, 60, start_count=195)]
    await store.write([*machine("cnc-01", 0, 20), *run_two])
    fresh = SqliteStore(tmp_path / "fresh.sqlite")
    await fresh.write(run_two)
    try:
        old, new = await report(store, "cnc-01", 30, 61), await report(fresh, "cnc-01", 30, 61)
    finally:
        await fresh.close()
    assert old.base == new.base
    assert (old.base.parts_produced, old.base.excluded_steps) == (240, 2)  # the jump, on total and on good
    # The time nobody listened (08:30-08:35) is offline, not the last state stretched over it.
    assert old.base.offline_s == 5 * 60 and old.base.production_time_s == 26 * 60


async def test_absurd_counters_never_give_an_absurd_oee(store: Store) -> None:
    # A confused PLC reports 10^18 instead of 300 at 08:30 (an integer, as counters are stored), then
    # 310 at 08:31 and on. Steps: 08:01..08:29 +10 each = 290; 08:30 +10^18: excluded; 08:31 310 is a
    # reset whose step (310 in 60 s, limit 3 x 60 / 4 + 1 = 46) is excluded too; 08:32..08:59 +10 each
    # = 280.
    # Parts 570; 2 excluded steps for each of the two counters; one reset event.
    points = []
    for p in machine("cnc-01", 0, 59):
        if p.tags["signal"] != "state" and p.time_ns == datetime_to_ns(T0) + 30 * MIN:
            p = _point("part_counter", "cnc-01", p.tags["signal"], 30, 10**18)
        points.append(p)
    await store.write(points)
    result = await report(store, "cnc-01", 0, 60)
    base, values = result.base, kpis(result)
    assert (base.parts_produced, base.parts_good, base.excluded_steps, base.counter_resets) == (570, 570, 4, 1)
    # OEE = 1 x (4 s x 570 / 3600 s) x 1 = 0.6333: a plausible number, status ok.
    assert values["oee"].value == pytest.approx(4 * 570 / 3600)
    assert values["oee"].status == "ok"


async def test_a_ratio_outside_0_and_1_is_flagged_not_ok(store: Store) -> None:
    # The good counter runs ahead of the total (a mis-wired PLC): GQ 20/min, PQ 10/min.
    points = [
        p if p.tags["signal"] != "parts_good" else _point("part_counter", "cnc-01", "parts_good", 0, 0)
        for p in machine("cnc-01", 0, 59)
    ]
    points += [_point("part_counter", "cnc-01", "parts_good", m, 20 * m) for m in range(60)]
    await store.write(points)
    values = kpis(await report(store, "cnc-01", 0, 60))
    # quality = GQ 1180 / PQ 590 = 2.0: shown, flagged, never ok.
    assert values["quality_ratio"].value == pytest.approx(2.0)
    assert values["quality_ratio"].status == "flagged"
    assert values["oee"].status == "flagged"  # OEE above 1 cannot be final either


async def test_first_pass_yield_needs_a_first_pass_counter_and_is_not_the_quality_ratio(store: Store) -> None:
    # cnc-01 makes 10 parts a minute, all good in the end, 8 of them the first time (2 reworked).
    # Over 08:00-09:00, 59 steps: PQ = GQ = 590, first pass 472. FPY = 472 / 590 = 0.8; quality 1.0.
    points = machine("cnc-01", 0, 59)
    await store.write(points)
    without = kpis(await report(store, "cnc-01", 0, 60))
    assert without["first_pass_yield"].status == "insufficient_evidence"  # no first-pass counter: no FPY
    await store.write([_point("part_counter", "cnc-01", "parts_first_pass", m, 8 * m) for m in range(60)])
    values = kpis(await report(store, "cnc-01", 0, 60))
    assert values["first_pass_yield"].value == pytest.approx(472 / 590)
    assert values["first_pass_yield"].status == "ok" and values["first_pass_yield"].label_zh == "一次合格率"
    assert values["quality_ratio"].value == 1.0
