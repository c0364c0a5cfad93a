"""A park of two sites in different zones: the engine sums their base quantities, each computed in its zone.

The park (written below as one file, the ``park: sites:`` form):

  sha  Asia/Shanghai (UTC+8)   sha-cnc (ideal cycle 4 s) on meter sha-meter
  ber  Europe/Berlin (UTC+1 in November)  ber-cnc (ideal cycle 6 s) on meter ber-meter

Every piece of equipment reports at least hourly (report_interval_s 3600, so a reading is valid for
3 h). The window is 2026-11-25 14:00-18:00 UTC: in Shanghai 22:00-02:00 (local midnight at 16:00Z,
so the window spans two Shanghai days), in Berlin 15:00-19:00 (one Berlin day).

  sha-cnc   state PRODUCING @13:59, DOWN @15:30, PRODUCING @16:00
            parts_total 1000 @13:59, 2000 @15:59, 3500 @17:59; parts_good 1000, 1990, 3480
  sha-meter energy_kwh 500 @13:59, 560 @15:59, 650 @17:59
  ber-cnc   state IDLE @13:59, PRODUCING @14:30, SETUP @17:00
            parts_total 0 @13:59, 800 @15:59, 1400 @17:59; parts_good 0, 780, 1370
  ber-meter energy_kwh 10 @13:59, 70 @15:59, 130 @17:59

By hand, per site (the 13:59 readings are the priors, known from before the window):

  sha  APT 14:00-15:30 + 16:00-18:00 = 5400 + 7200 = 12600 s; ADET 15:30-16:00 = 1800 s
       PQ 2500, GQ 990 + 1490 = 2480; ideal 4 s x 2500 = 10000 s; energy 150 kWh
       by Shanghai day: 2026-11-25 (14-16Z) APT 5400, ADET 1800, PQ 1000, GQ 990, 60 kWh
                        2026-11-26 (16-18Z) APT 7200, PQ 1500, GQ 1490, 90 kWh
  ber  AIT 14:00-14:30 = 1800 s; APT 14:30-17:00 = 9000 s; AUST 17:00-18:00 = 3600 s
       PQ 1400, GQ 1370; ideal 6 s x 1400 = 8400 s; energy 120 kWh; all in Berlin's 2026-11-25

The park is the sum of the sites' base quantities, and its KPIs are computed on the sums:

  APT 12600 + 9000 = 21600; PBT = APT + AUST + ADET + AIT = 21600 + 3600 + 1800 + 1800 = 28800
  availability 21600 / 28800 = 0.75; effectiveness (10000 + 8400) / 21600 = 18400 / 21600
  quality (2480 + 1370) / (2500 + 1400) = 3850 / 3900; OEE = 18400 / 28800 x 3850 / 3900 = 0.63070
  energy 150 + 120 = 270 kWh -> 270 / 3850 kWh per good part
  kgce: each site with its own factors: sha the default equivalent value 0.1229 kgce/kWh,
        ber the equal value 0.3 kgce/kWh (its override below): 150 x 0.1229 + 120 x 0.3 = 54.435 kgce
  CO2: the same grid factor at both, 270 x 0.5703 = 153.981 kg
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.assets import AssetModel, load_asset_model
from core.store import Point, Store
from core.wire import datetime_to_ns
from kpi.backfill import backfill
from kpi.energy import load_energy_factors
from kpi.engine import KpiEngine
from kpi.report import KpiReport
from kpi.rollup import DAILY

REPO = Path(__file__).resolve().parent.parent
START = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
END = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)

PARK = """\
version: 1
park:
  id: p
  name: 两地园区 (Two-zone park)
  sites:
    - id: sha
      timezone: Asia/Shanghai
      workshops:
        - id: sha-ws
          lines:
            - id: sha-line
              equipment:
                - {id: sha-cnc, type: cnc, ideal_cycle_time_s: 4, meter: sha-meter, report_interval_s: 3600}
                - {id: sha-meter, type: meter, carrier: electricity, report_interval_s: 3600}
    - id: ber
      timezone: Europe/Berlin
      workshops:
        - id: ber-ws
          lines:
            - id: ber-line
              equipment:
                - {id: ber-cnc, type: cnc, ideal_cycle_time_s: 6, meter: ber-meter, report_interval_s: 3600}
                - {id: ber-meter, type: meter, carrier: electricity, report_interval_s: 3600}
"""
# Berlin converts electricity at its equal value (等价值, 0.3 kgce/kWh); Shanghai keeps the defaults.
BERLIN_FACTORS = "sites:\n  ber:\n    timezone: Europe/Berlin\n    electricity_basis: equal\n"


@pytest.fixture
def park(tmp_path: Path) -> AssetModel:
    path = tmp_path / "park.yaml"
    path.write_text(PARK)
    return load_asset_model(path)


@pytest.fixture
def factors_path(tmp_path: Path) -> Path:
    text = (REPO / "config" / "energy.yaml").read_text()
    assert "\nsites: {}\n" in text
    path = tmp_path / "energy.yaml"
    path.write_text(text.replace("\nsites: {}\n", "\n" + BERLIN_FACTORS))
    return path


def _points(park: AssetModel) -> list[Point]:
    def at(hhmm: str) -> int:
        hour, minute = map(int, hhmm.split(":"))
        return datetime_to_ns(datetime(2026, 11, 25, hour, minute, tzinfo=UTC))

    def series(measurement: str, eq: str, signal: str, text: str, kind: type) -> list[Point]:
        tags = {**park.placement(eq).tags(), "signal": signal}
        pairs = (item.split() for item in text.split(","))
        return [Point(measurement, tags, {"value": kind(v), "quality": "good"}, at(t)) for t, v in pairs]

    return [
        *series("machine_state", "sha-cnc", "state", "13:59 PRODUCING, 15:30 DOWN, 16:00 PRODUCING", str),
        *series("part_counter", "sha-cnc", "parts_total", "13:59 1000, 15:59 2000, 17:59 3500", int),
        *series("part_counter", "sha-cnc", "parts_good", "13:59 1000, 15:59 1990, 17:59 3480", int),
        *series("energy", "sha-meter", "energy_kwh", "13:59 500, 15:59 560, 17:59 650", float),
        *series("machine_state", "ber-cnc", "state", "13:59 IDLE, 14:30 PRODUCING, 17:00 SETUP", str),
        *series("part_counter", "ber-cnc", "parts_total", "13:59 0, 15:59 800, 17:59 1400", int),
        *series("part_counter", "ber-cnc", "parts_good", "13:59 0, 15:59 780, 17:59 1370", int),
        *series("energy", "ber-meter", "energy_kwh", "13:59 10, 15:59 70, 17:59 130", float),
    ]


def _values(report: KpiReport) -> dict[str, float | None]:
    return {k.key: k.value for k in report.kpis}


def test_the_park_scope_is_every_site(park: AssetModel) -> None:
    assert park.scope_kind("p") == "park" and park.site_of("p") is None
    assert [eq.id for eq in park.scope("p")] == ["sha-cnc", "sha-meter", "ber-cnc", "ber-meter"]
    assert park.site_of("ber-line") == "ber"


async def test_a_park_report_sums_the_sites_each_in_its_own_zone(
    each_store: Store, park: AssetModel, factors_path: Path
) -> None:
    await each_store.write(_points(park))
    engine = KpiEngine(each_store, park, factors=load_energy_factors(factors_path))
    report = await engine.report("p", START, END, group_by="day")

    assert report.scope == "p" and report.equipment == ["sha-cnc", "ber-cnc"]
    base = report.base
    assert (base.production_time_s, base.down_time_s, base.idle_time_s, base.setup_time_s) == (21600, 1800, 1800, 3600)
    assert base.planned_busy_time_s == 28800
    assert (base.parts_produced, base.parts_good, base.ideal_time_s) == (3900, 3850, 18400)
    assert base.energy_kwh == 270.0
    values = _values(report)
    assert values["availability"] == pytest.approx(0.75)
    assert values["effectiveness"] == pytest.approx(18400 / 21600)
    assert values["quality_ratio"] == pytest.approx(3850 / 3900)
    assert values["oee"] == pytest.approx(18400 / 28800 * 3850 / 3900)  # 0.63070
    assert values["kwh_per_good_part"] == pytest.approx(270 / 3850)
    assert report.energy is not None
    assert report.energy.kgce == pytest.approx(150 * 0.1229 + 120 * 0.3)  # 54.435: each site its own factor
    assert report.energy.co2_kg == pytest.approx(270 * 0.5703)  # 153.981
    assert values["kgce_per_good_part"] == pytest.approx(54.435 / 3850)
    assert sorted(f.value for f in report.energy.factors_applied if f.unit == "kgce/kWh") == [0.1229, 0.3]
    assert [m.meter for m in report.evidence.meters] == ["sha-meter", "ber-meter"]
    assert [e.equipment for e in report.per_equipment] == ["sha-cnc", "sha-meter", "ber-cnc", "ber-meter"]

    # Days are local days of each site, summed by label: Shanghai's 25th (14-16Z) with Berlin's 25th
    # (14-18Z), then Shanghai's 26th (16-18Z, after its midnight at 16:00Z) alone.
    day25, day26 = report.groups
    assert (day25.key, day25.start, day25.end) == ("2026-11-25", START, END)
    assert (day26.key, day26.start, day26.end) == ("2026-11-26", START + timedelta(hours=2), END)
    # 25th: APT 5400 + 9000 = 14400; PBT 14400 + ADET 1800 + AIT 1800 + AUST 3600 = 21600
    assert (day25.base.production_time_s, day25.base.planned_busy_time_s) == (14400, 21600)
    assert (day25.base.parts_produced, day25.base.parts_good, day25.base.energy_kwh) == (2400, 2360, 180.0)
    assert day25.kpis["availability"] == pytest.approx(14400 / 21600)
    # 26th: Shanghai only, producing throughout: APT = PBT = 7200; 90 kWh over 1490 good parts
    assert (day26.base.production_time_s, day26.base.planned_busy_time_s) == (7200, 7200)
    assert day26.kpis["availability"] == pytest.approx(1.0)
    assert day26.kpis["kwh_per_good_part"] == pytest.approx(90 / 1490)

    # Each site alone, for comparison: the park's numbers are their sums, not an average of KPIs.
    sha, ber = await engine.report("sha", START, END), await engine.report("ber", START, END)
    assert sha.base.production_time_s + ber.base.production_time_s == base.production_time_s
    assert _values(sha)["availability"] == pytest.approx(12600 / 14400)
    assert _values(ber)["availability"] == pytest.approx(9000 / 14400)
    assert sha.energy is not None and sha.energy.kgce == pytest.approx(150 * 0.1229)
    assert ber.energy is not None and ber.energy.kgce == pytest.approx(120 * 0.3)

    # By month: one bucket, the whole park.
    (month,) = (await engine.report("p", START, END, group_by="month")).groups
    assert month.key == "2026-11" and month.base.parts_good == 3850


async def test_rollups_of_a_park_are_local_days_of_each_site_and_read_back_the_same_numbers(
    each_store: Store, park: AssetModel
) -> None:
    await each_store.write(_points(park))
    engine = KpiEngine(each_store, park)
    ids = [eq.id for eq in park.scope("p")]
    first, last = datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)
    now = last + timedelta(days=1)
    await backfill(engine, ids, first, last, now=now)
    # A day row is stamped with local midnight of the equipment's own site: 16:00Z in Shanghai,
    # 23:00Z in Berlin; only days wholly inside the backfilled range get one.
    for eq, midnights in (
        ("sha-cnc", [datetime(2026, 11, 24, 16, tzinfo=UTC), datetime(2026, 11, 25, 16, tzinfo=UTC)]),
        ("ber-cnc", [datetime(2026, 11, 24, 23, tzinfo=UTC), datetime(2026, 11, 25, 23, tzinfo=UTC)]),
    ):
        days = await each_store.read_points(DAILY, first, last, {"equipment": eq})
        assert [p.time_ns for p in days] == [datetime_to_ns(m) for m in midnights], eq

    # Two whole Shanghai days (24-26 Nov 16:00Z) hold one whole Berlin day (24 Nov 23:00Z - 25 Nov 23:00Z).
    window = (datetime(2026, 11, 24, 16, tzinfo=UTC), datetime(2026, 11, 26, 16, tzinfo=UTC))
    from_rollups = await engine.report("p", *window, now=now)
    from_raw = await engine.report("p", *window, use_rollups=False)
    assert from_rollups.base == from_raw.base
    assert from_rollups.base.parts_good == 3850 and from_rollups.base.energy_kwh == 270.0
    # Days: Shanghai 2 x 2 equipment, Berlin 1 x 2; Berlin's other hours (24 Nov 16-23Z: 7, and
    # 25 Nov 23Z - 26 Nov 16Z: 17) from hourly rows, 2 x (7 + 17) = 48.
    assert (from_rollups.read_path.rollup_days, from_rollups.read_path.rollup_hours) == (6, 48)
    assert from_rollups.read_path.raw_hours == 0
