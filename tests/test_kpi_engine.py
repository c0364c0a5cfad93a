"""The KPI engine against real stores: hourly base quantities and a scope report, computed by hand.

The dataset (config/factory.yaml, window 2026-11-25 08:30-10:00 UTC, so hour 08 is clipped to 30 min):

cnc-01 (PRU 4 s)  state PRODUCING since 07:50 (known only from before the window), DOWN 08:40,
                  PRODUCING 08:50, SETUP 09:20, PRODUCING 09:30, IDLE 09:45 (DOWN at 10:00 is outside)
                  parts_total 1000 @07:59, 1100 @08:45, 1300 @09:10, 20 @09:15 (reset), 120 @09:50
                  parts_good   950 @07:59, 1045 @08:45, 1240 @09:10, 18 @09:15 (reset), 115 @09:50
                  parts_scrap   50 @07:59,   55 @08:45,   60 @09:10,  2 @09:15 (reset),   5 @09:50
                  plus a reading flagged bad (999999 @09:40) that must be ignored
cnc-02 (PRU 5 s)  no state before the window; PRODUCING 08:45, PLANNED_STOP 09:30
                  parts_total 500 @08:45, 800 @09:30; good 490, 785; scrap 10, 15 (08:45 is the baseline)
cnc-03            no data at all
meter-a           energy_kwh 10000.0 @07:59, 10012.5 @08:45, 10030.0 @09:15, 10050.0 @09:55
cnc-04, meter-b   data of line B, which a line-A report must not see
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.assets import load_asset_model
from core.store import Point, Store
from core.stores.sqlite import SqliteStore
from core.wire import datetime_to_ns
from kpi.base import BaseQuantities
from kpi.energy import load_energy_factors
from kpi.engine import KpiEngine
from kpi.fold import EvidenceRules
from kpi.report import KpiReport
from tests.servers import InfluxServer

ASSETS = load_asset_model(Path(__file__).resolve().parent.parent / "config" / "factory.yaml")
START = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
END = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
H08 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
H09 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
# This dataset predates the edge's periodic refresh: readings are tens of minutes apart. With the
# example factory's 60 s report interval, 1440 intervals keep every reading valid for 24 hours.
RULES = EvidenceRules(gap_intervals=1440)


def at(hhmm: str) -> int:
    hour, minute = map(int, hhmm.split(":"))
    return datetime_to_ns(datetime(2026, 11, 25, hour, minute, tzinfo=UTC))


def _point(measurement: str, eq: str, signal: str, hhmm: str, value: object, quality: str = "good") -> Point:
    tags = {**ASSETS.placement(eq).tags(), "signal": signal}
    return Point(measurement, tags, {"value": value, "quality": quality}, at(hhmm))  # type: ignore[dict-item]


def _readings(text: str) -> list[tuple[str, str]]:
    """``"07:50 PRODUCING, 08:40 DOWN"`` -> [("07:50", "PRODUCING"), ("08:40", "DOWN")]."""
    return [(hhmm, value) for hhmm, value in (item.split() for item in text.split(","))]


def _states(eq: str, text: str) -> list[Point]:
    return [_point("machine_state", eq, "state", t, v) for t, v in _readings(text)]


def _counters(eq: str, signal: str, text: str) -> list[Point]:
    return [_point("part_counter", eq, signal, t, int(v)) for t, v in _readings(text)]


def _energy(meter: str, text: str) -> list[Point]:
    return [_point("energy", meter, "energy_kwh", t, float(v)) for t, v in _readings(text)]


def dataset() -> list[Point]:
    return [
        *_states("cnc-01", "07:50 PRODUCING, 08:40 DOWN, 08:50 PRODUCING, 09:20 SETUP, 09:30 PRODUCING"),
        *_states("cnc-01", "09:45 IDLE, 10:00 DOWN"),
        *_counters("cnc-01", "parts_total", "07:00 900, 07:59 1000, 08:45 1100, 09:10 1300, 09:15 20, 09:50 120"),
        *_counters("cnc-01", "parts_total", "10:00 500"),
        *_counters("cnc-01", "parts_good", "07:59 950, 08:45 1045, 09:10 1240, 09:15 18, 09:50 115"),
        *_counters("cnc-01", "parts_scrap", "07:59 50, 08:45 55, 09:10 60, 09:15 2, 09:50 5"),
        _point("part_counter", "cnc-01", "parts_total", "09:40", 999_999, quality="bad"),
        *_states("cnc-02", "08:45 PRODUCING, 09:30 PLANNED_STOP"),
        *_counters("cnc-02", "parts_total", "08:45 500, 09:30 800"),
        *_counters("cnc-02", "parts_good", "08:45 490, 09:30 785"),
        *_counters("cnc-02", "parts_scrap", "08:45 10, 09:30 15"),
        *_energy("meter-a", "07:59 10000.0, 08:45 10012.5, 09:15 10030.0, 09:55 10050.0"),
        *_states("cnc-04", "08:00 DOWN"),
        *_counters("cnc-04", "parts_total", "08:00 0, 09:00 999"),
        *_energy("meter-b", "08:00 0.0, 09:00 777.0"),
    ]


# --- hand-computed expectations -------------------------------------------------------------

# Upload rate: production equipment is expected to report state, parts_total and parts_good once per
# 60 s report interval; each reading vouches for the 60 s from its time. 1800 s -> 3 x 30 = 90 expected.
CNC01_H08 = BaseQuantities(
    production_time_s=1200.0,  # PRODUCING 08:30-08:40 (from the prior state) + 08:50-09:00 = 600 + 600
    down_time_s=600.0,  # DOWN 08:40-08:50
    parts_produced=100,  # 1000 -> 1100
    parts_good=95,  # 950 -> 1045
    parts_scrap=5,  # 50 -> 55
    ideal_time_s=400.0,  # 4 s x 100
    covered_s=1800.0,
    counter_covered_s=1800.0,  # total and good known from the 07:59 priors on
    expected_s=1800.0,  # 08:30-09:00, clipped to the window
    samples=5,  # states 08:40, 08:50 + three counters at 08:45
    received_samples=4.0,  # states 08:40, 08:50; total and good at 08:45 (scrap is not expected)
    expected_samples=90.0,
    failures=1,  # PRODUCING -> DOWN at 08:40
)
CNC01_H09 = BaseQuantities(
    production_time_s=2100.0,  # PRODUCING 09:00-09:20 + 09:30-09:45 = 1200 + 900
    setup_time_s=600.0,  # SETUP 09:20-09:30
    idle_time_s=900.0,  # IDLE 09:45-10:00
    parts_produced=320,  # 1100 -> 1300 (+200), reset to 20 (+20), 20 -> 120 (+100)
    parts_good=310,  # 1045 -> 1240 (+195), reset 18 (+18), 18 -> 115 (+97)
    parts_scrap=10,  # 55 -> 60 (+5), reset 2 (+2), 2 -> 5 (+3)
    ideal_time_s=1280.0,  # 4 s x 320
    covered_s=3600.0,
    counter_covered_s=3600.0,
    expected_s=3600.0,
    samples=12,  # states 09:20, 09:30, 09:45 + three counters at 09:10, 09:15, 09:50 (the bad one is dropped)
    received_samples=9.0,  # three states, three totals, three goods
    expected_samples=180.0,  # 3 signals x 60 intervals
    counter_resets=1,  # the three counters drop together at 09:15: one reset event
)
CNC02_H08 = BaseQuantities(
    production_time_s=900.0,  # no data 08:30-08:45, PRODUCING 08:45-09:00
    covered_s=900.0,
    counter_covered_s=900.0,  # the 08:45 baselines on
    expected_s=1800.0,
    samples=4,  # the 08:45 readings are the baseline: no increment yet
    received_samples=3.0,
    expected_samples=90.0,
)
CNC02_H09 = BaseQuantities(
    production_time_s=1800.0,  # PRODUCING 09:00-09:30
    planned_downtime_s=1800.0,  # PLANNED_STOP 09:30-10:00
    parts_produced=300,
    parts_good=295,
    parts_scrap=5,
    ideal_time_s=1500.0,  # 5 s x 300
    covered_s=3600.0,
    counter_covered_s=3600.0,
    expected_s=3600.0,
    samples=4,
    received_samples=3.0,  # state, total and good at 09:30
    expected_samples=180.0,
)
# A meter is expected to report its register once per interval: 1 signal x 30 (or 60) intervals.
METER_A_H08 = BaseQuantities(
    energy_kwh=12.5, covered_s=1800.0, expected_s=1800.0, samples=1, received_samples=1.0, expected_samples=30.0
)
# The 09:55 reading holds until the window's end (it is not stale yet): the whole hour is covered.
METER_A_H09 = BaseQuantities(
    energy_kwh=37.5, covered_s=3600.0, expected_s=3600.0, samples=2, received_samples=2.0, expected_samples=60.0
)

# Line A production total (cnc-01 + cnc-02 + cnc-03):
#   APT 1200 + 2100 + 900 + 1800 = 6000; AUST 600; ADET 600; ADOT 900; PDOT 1800
#   PBT = 6000 + 600 + 600 + 900 = 8100; AUPT = 6600
#   PQ 100 + 320 + 300 = 720; GQ 95 + 310 + 295 = 700; SQ 5 + 10 + 5 = 20
#   ideal 400 + 1280 + 1500 = 3180
#   covered 5400 + 4500 + 0 = 9900 of 3 x 5400 = 16200 -> coverage 0.6111 (>= 0.5: ok)
LINE_A = {
    "availability": 6000 / 8100,  # 0.7407
    "effectiveness": 3180 / 6000,  # 0.53
    "quality_ratio": 700 / 720,  # 0.9722
    "oee": (6000 / 8100) * (3180 / 6000) * (700 / 720),  # 0.3817
    "nee": (6600 / 8100) * (3180 / 6000) * (700 / 720),
    "allocation_efficiency": 7200 / 8100,  # AUBT = 6600 + 600
    "utilisation_efficiency": 6000 / 7200,
    "technical_efficiency": 6000 / 6600,
    "setup_rate": 600 / 6600,
    "scrap_ratio": 20 / 720,
    "rework_ratio": 0.0,
    "defect_rate": 20 / 720,
    "ppm": 20 / 720 * 1e6,
    "throughput_rate": 720 * 3600 / 8100,  # 320 parts per hour of planned busy time
    # One failure (cnc-01 PRODUCING -> DOWN at 08:40): MTBF = AUPT 6600 s / 1 = 1.833 h, MTTR = ADET 600 s / 1.
    "mtbf": 6600 / 3600,
    "mttr": 10.0,
    # Received report intervals: cnc-01 4 + 9, cnc-02 3 + 3, cnc-03 0 = 19 of 3 x (90 + 180) = 810.
    "upload_rate": 19 / 810,
    # meter-a: 10000 -> 10050 = 50 kWh over cnc-01..03, which made 700 good parts of 720
    "kwh_per_good_part": 50 / 700,
    "kwh_per_part": 50 / 720,
}


def check_line_a_report(report: KpiReport) -> None:
    """Every number of the line-A report against the hand-computed values above."""
    assert report.scope == "line-a"
    assert report.equipment == ["cnc-01", "cnc-02", "cnc-03"]
    base = report.base
    assert (base.production_time_s, base.setup_time_s, base.down_time_s, base.idle_time_s) == (
        6000,
        600,
        600,
        900,
    )
    assert (base.planned_downtime_s, base.planned_busy_time_s) == (1800, 8100)
    assert (base.parts_produced, base.parts_good, base.parts_scrap, base.parts_rework) == (720, 700, 20, 0)
    assert (base.ideal_time_s, base.covered_s, base.expected_s) == (3180, 9900, 16200)
    assert base.counter_covered_s == 9900  # cnc-01 5400 + cnc-02 4500 + cnc-03 0
    assert base.energy_kwh == 50.0  # the scope's meters' consumption, beside the parts it is divided by
    values = {k.key: k for k in report.kpis}
    assert values.keys() >= LINE_A.keys()
    # Digitalisation: line A's key processes (rough- and finish-milling) are served by NC machines
    # (2 of 2); its production equipment is all NC, but cnc-03 never reported, so telemetry confirms
    # 2 of 3; none of its 4 digital devices (cnc-01..03, meter-a) uploaded 90 % of its intervals.
    assert (values["key_process_cnc_rate"].value, values["nc_share"].value) == (1.0, pytest.approx(2 / 3))
    assert values["networking_rate"].value == 0.0 and values["networking_rate"].basis == "digital"
    # Without an energy factor file there is no kgce and no CO2, and the report says why.
    assert values["kgce_per_good_part"].status == "insufficient_evidence"
    assert values["kgce_per_good_part"].reason == "no energy factors configured (kpi.energy_factors)"
    assert report.energy is None
    for key, expected in LINE_A.items():
        assert values[key].status == "ok", key
        assert values[key].value == pytest.approx(expected), key
    assert values["oee"].label_zh == "设备综合效率"
    assert values["availability"].coverage == pytest.approx(9900 / 16200)
    # Energy basis: the lower of meter-a's coverage (5400 of 5400 s) and the covered machines' counter
    # coverage (9900 of 16200 s).
    assert values["kwh_per_good_part"].coverage == pytest.approx(9900 / 16200)

    evidence = report.evidence
    assert evidence.coverage == pytest.approx(0.6111, abs=1e-4)
    assert (evidence.samples, evidence.counter_resets, evidence.min_coverage) == (5 + 12 + 4 + 4, 1, 0.5)
    assert [m.meter for m in evidence.meters] == ["meter-a"]
    meter = evidence.meters[0]
    assert (meter.carrier, meter.energy_kwh, meter.covers) == (
        "electricity",
        50.0,
        ["cnc-01", "cnc-02", "cnc-03"],
    )
    assert meter.coverage == 1.0
    assert evidence.energy_equipment == ["cnc-01", "cnc-02", "cnc-03"]
    series = {(s.measurement, s.equipment, s.signal): s for s in evidence.series}
    assert {eq for _, eq, _ in series} == {"cnc-01", "cnc-02", "meter-a"}
    cnc01_state = series[("machine_state", "cnc-01", "state")]
    assert cnc01_state.points == 5
    assert cnc01_state.prior_time == datetime(2026, 11, 25, 7, 50, tzinfo=UTC)
    assert series[("machine_state", "cnc-02", "state")].prior_time is None
    assert series[("part_counter", "cnc-01", "parts_total")].points == 4  # bad reading excluded
    assert series[("energy", "meter-a", "energy_kwh")].prior_time == datetime(2026, 11, 25, 7, 59, tzinfo=UTC)

    per_eq = {e.equipment: e for e in report.per_equipment}
    assert list(per_eq) == ["cnc-01", "cnc-02", "cnc-03", "meter-a"]
    cnc02 = {k.key: k for k in per_eq["cnc-02"].kpis}
    # cnc-02 alone: APT 2700 = PBT (PDOT is outside PBT); ideal 1500; GQ 295 of 300.
    assert cnc02["availability"].value == 1.0
    assert cnc02["effectiveness"].value == pytest.approx(1500 / 2700)
    assert cnc02["quality_ratio"].value == pytest.approx(295 / 300)
    assert cnc02["kwh_per_good_part"].value == pytest.approx(50 / 700)  # the meter covers all three machines
    cnc03 = {k.key: k for k in per_eq["cnc-03"].kpis}
    assert cnc03["oee"].status == "insufficient_evidence" and cnc03["oee"].value is None
    assert per_eq["meter-a"].base.energy_kwh == 50.0

    assert report.group_by == "hour"
    h08, h09 = report.groups
    assert (h08.key, h09.key) == ("2026-11-25T16:00+08:00", "2026-11-25T17:00+08:00")  # Asia/Shanghai
    assert (h08.start, h08.end, h09.start, h09.end) == (START, H09, H09, END)
    assert (h08.base.energy_kwh, h09.base.energy_kwh) == (12.5, 37.5)
    # Hour 08: APT 1200 + 900 = 2100, ADET 600 -> PBT 2700; covered 1800 + 900 of 3 x 1800 = 0.5 (ok).
    assert h08.base.production_time_s == 2100
    assert h08.kpis["availability"] == pytest.approx(2100 / 2700)
    assert h08.kpis["effectiveness"] == pytest.approx(400 / 2100)
    # Hour 09: PBT = 2100 + 600 + 900 + 1800 = 5400, APT 3900; covered 7200 of 10800.
    assert h09.kpis["availability"] == pytest.approx(3900 / 5400)
    assert h09.kpis["kwh_per_good_part"] == pytest.approx(37.5 / 605)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = SqliteStore(tmp_path / "kpi.sqlite")
    await store.write(dataset())
    yield store
    await store.close()


async def test_hourly_base_quantities_match_hand_computed_values(sqlite_store: Store) -> None:
    engine = KpiEngine(sqlite_store, ASSETS, rules=RULES)
    rows = await engine.hourly(["cnc-01", "cnc-02", "cnc-03", "meter-a"], START, END)
    by_key = {(r.equipment, r.hour): r for r in rows}
    assert len(rows) == 8
    assert by_key[("cnc-01", H08)].base == CNC01_H08
    assert by_key[("cnc-01", H09)].base == CNC01_H09
    assert by_key[("cnc-02", H08)].base == CNC02_H08
    assert by_key[("cnc-02", H09)].base == CNC02_H09
    # cnc-03 reported nothing: all offline, none of its 90 (180) expected report intervals received.
    assert by_key[("cnc-03", H08)].base == BaseQuantities(expected_s=1800.0, expected_samples=90.0)
    assert by_key[("cnc-03", H09)].base == BaseQuantities(expected_s=3600.0, expected_samples=180.0)
    assert by_key[("cnc-03", H09)].base.offline_s == 3600.0
    assert by_key[("meter-a", H08)].base == METER_A_H08
    assert by_key[("meter-a", H09)].base == METER_A_H09
    assert (by_key[("cnc-01", H08)].start, by_key[("cnc-01", H08)].end) == (START, H09)


async def test_line_report_matches_hand_computed_values(sqlite_store: Store) -> None:
    report = await KpiEngine(sqlite_store, ASSETS, rules=RULES).report("line-a", START, END, group_by="hour")
    check_line_a_report(report)


async def test_a_stale_state_is_not_stretched_into_the_window(sqlite_store: Store) -> None:
    # With readings valid for 30 intervals of 60 s, the 07:50 state went stale at 08:20, so cnc-01 has
    # no data 08:30-08:40 (PRODUCING 08:50-09:00 only in hour 08 -> APT 600, ADET 600, covered 1200).
    engine = KpiEngine(sqlite_store, ASSETS, rules=EvidenceRules(gap_intervals=30))
    rows = await engine.hourly(["cnc-01"], START, H09)
    assert (rows[0].base.production_time_s, rows[0].base.down_time_s, rows[0].base.covered_s) == (
        600,
        600,
        1200,
    )


async def test_scope_without_data_reports_insufficient_evidence(sqlite_store: Store) -> None:
    report = await KpiEngine(sqlite_store, ASSETS, rules=RULES).report("cnc-03", START, END)
    values = {k.key: k for k in report.kpis}
    assert report.evidence.coverage == 0.0
    assert values["availability"].status == "insufficient_evidence"
    assert values["availability"].value is None
    # Its meter still has evidence: meter-a's 50 kWh over the 700 good parts of everything it covers.
    assert values["kwh_per_good_part"].status == "ok"
    assert values["kwh_per_good_part"].value == pytest.approx(50 / 700)


async def test_coverage_threshold_is_configurable(sqlite_store: Store) -> None:
    # Line A coverage is 0.6111: below a 0.7 minimum every production KPI is withheld.
    report = await KpiEngine(sqlite_store, ASSETS, rules=RULES, min_coverage=0.7).report("line-a", START, END)
    values = {k.key: k for k in report.kpis}
    assert values["oee"].status == "insufficient_evidence" and values["oee"].value is None
    assert values["kwh_per_good_part"].status == "insufficient_evidence"  # 15000/21600 = 0.694 < 0.7


async def test_workshop_report_sums_lines_and_their_meters(sqlite_store: Store) -> None:
    report = await KpiEngine(sqlite_store, ASSETS, rules=RULES).report("machining", START, END)
    assert report.equipment == ["cnc-01", "cnc-02", "cnc-03", "cnc-04", "cnc-05", "cnc-06"]
    # cnc-04: DOWN from 08:00 over the whole window (5400 s); its counter 0 @08:00 is the prior,
    # 999 @09:00 adds 999 parts, none of them reported good.
    assert report.base.down_time_s == 600 + 5400
    assert report.base.parts_produced == 720 + 999
    assert [m.meter for m in report.evidence.meters] == ["meter-a", "meter-b"]
    # meter-b: 0 @08:00 is the prior, 777 @09:00 -> 777 kWh; the workshop's meters: 50 + 777 = 827 kWh.
    assert report.base.energy_kwh == 827.0
    # But cnc-04 never reported a good-part counter and cnc-05/06 nothing: the good parts the energy
    # would be divided by are known for 9900 of 6 x 5400 = 32400 s (0.306). A missing counter is
    # insufficient evidence, never a quality of zero.
    values = {k.key: k for k in report.kpis}
    assert values["kwh_per_good_part"].status == "insufficient_evidence"
    assert values["kwh_per_good_part"].value is None
    assert values["kwh_per_good_part"].coverage == pytest.approx(9900 / 32400)
    assert values["quality_ratio"].status == "insufficient_evidence"


async def test_unknown_scope_and_bad_window_are_refused(sqlite_store: Store) -> None:
    engine = KpiEngine(sqlite_store, ASSETS, rules=RULES)
    with pytest.raises(KeyError, match="unknown scope"):
        await engine.report("line-z", START, END)
    with pytest.raises(ValueError, match="after start"):
        await engine.report("line-a", END, START)
    with pytest.raises(ValueError, match="timezone"):
        await engine.hourly(["cnc-01"], START.replace(tzinfo=None), END.replace(tzinfo=None))


def _influx_available() -> bool:
    return importlib.util.find_spec("core.stores.influx") is not None


@pytest.mark.integration
@pytest.mark.skipif(not _influx_available(), reason="core.stores.influx is not written yet")
async def test_line_report_from_influxdb_matches_hand_computed_values(
    influx_server: InfluxServer, influx_database: str
) -> None:
    from core.stores.influx import InfluxStore

    store = InfluxStore(influx_server.url, influx_database)
    try:
        await store.write(dataset())
        report = await KpiEngine(store, ASSETS, rules=RULES).report("line-a", START, END, group_by="hour")
        check_line_a_report(report)
        rows = await KpiEngine(store, ASSETS, rules=RULES).hourly(["cnc-01"], START, END)
        assert [r.base for r in rows] == [CNC01_H08, CNC01_H09]
    finally:
        await store.close()


FACTORS = load_energy_factors(Path(__file__).resolve().parent.parent / "config" / "energy.yaml")


async def test_energy_in_kgce_and_co2_with_the_factors_of_the_shipped_file(sqlite_store: Store) -> None:
    engine = KpiEngine(sqlite_store, ASSETS, rules=RULES, factors=FACTORS.for_site("cq-demo"))
    report = await engine.report("line-a", START, END)
    values = {k.key: k for k in report.kpis}
    # meter-a: 50 kWh of electricity. Equivalent value 0.1229 kgce/kWh: 50 x 0.1229 = 6.145 kgce;
    # grid factor 0.5703 kg CO2/kWh: 50 x 0.5703 = 28.515 kg; over the 700 good parts it covers.
    assert report.energy is not None
    assert report.energy.consumption == {"electricity": 50.0}
    assert report.energy.kgce == pytest.approx(6.145)
    assert report.energy.co2_kg == pytest.approx(28.515)
    assert values["comprehensive_energy_kgce"].value == pytest.approx(6.145)
    assert values["kgce_per_good_part"].value == pytest.approx(6.145 / 700)
    assert values["co2_kg_per_good_part"].value == pytest.approx(28.515 / 700)
    assert {(f.carrier, f.value, f.unit) for f in report.energy.factors_applied} == {
        ("electricity", 0.1229, "kgce/kWh"),
        ("electricity", 0.5703, "kg CO2/kWh"),
    }
    assert all("GB/T 2589" in f.source or "MEE" in f.source for f in report.energy.factors_applied)
    # No water meter on line A: water per part has no evidence, not a zero.
    assert values["water_m3_per_part"].status == "insufficient_evidence"
