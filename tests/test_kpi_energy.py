"""Energy in kgce and CO₂ from dated, sourced factors, worked by hand beside each figure.

Defaults (config/energy.yaml, kpi.md section 5), kgce per unit / kg CO₂ per unit:
  electricity 0.1229 (equivalent value) or 0.3 (equal value)   / 0.5703 (national grid)
  natural gas 1.2143 / 2.1650      diesel 1.4571 / 3.0959      gasoline 1.4714 / 2.9251
  heat 0.03412 / 0.11              steam 0.1286 / none         compressed air 0.0400 / none
  water 0.2571 (2020 edition) or 0.0857 (2008 edition) / 0
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from core.assets import EnergyCarrier as C
from core.errors import ConfigError
from kpi import energy
from kpi.base import BaseQuantities
from kpi.energy import ENERGY_KPIS, VALUE_ADDED_KPIS, EnergySummary, SiteFactors, energy_summary, load_energy_factors
from kpi.formulas import Direction

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FILE = REPO / "config" / "energy.yaml"
HOUR = datetime(2025, 3, 10, 2, tzinfo=UTC)


def _with_sites(tmp_path: Path, sites: str) -> Path:
    """The shipped file with the given ``sites:`` section instead of its empty one."""
    text = DEFAULT_FILE.read_text()
    assert "\nsites: {}\n" in text
    path = tmp_path / "energy.yaml"
    path.write_text(text.replace("\nsites: {}\n", "\nsites:\n" + sites))
    return path


@pytest.fixture
def defaults() -> SiteFactors:
    return load_energy_factors(DEFAULT_FILE).for_site("cq-demo")


def test_shipped_file_gives_every_carrier_a_sourced_coefficient(defaults: SiteFactors) -> None:
    assert defaults.electricity_basis == "equivalent"
    assert defaults.water_edition == 2020
    assert defaults.water_in_comprehensive_energy is True
    assert defaults.not_counted == frozenset()
    assert set(defaults.kgce_schedule) == set(C)
    # No default CO₂ factor for bought-in steam and compressed air: the supplier's, to be configured.
    assert set(defaults.co2_schedule) == set(C) - {C.STEAM, C.COMPRESSED_AIR}
    for schedule in (defaults.kgce_schedule, defaults.co2_schedule):
        for factors in schedule.values():
            assert all(f.source for f in factors)
    assert defaults.kgce_schedule[C.ELECTRICITY][0].unit == "kgce/kWh"
    assert defaults.co2_schedule[C.NATURAL_GAS][0].unit == "kg CO2/m3"
    assert "verify" in defaults.co2_schedule[C.ELECTRICITY][0].source


def test_electricity_and_gas_in_kgce_and_co2(defaults: SiteFactors) -> None:
    summary = energy_summary([(HOUR, {C.ELECTRICITY: 1000.0, C.NATURAL_GAS: 100.0})], defaults)
    # kgce = 1000 x 0.1229 + 100 x 1.2143 = 122.9 + 121.43 = 244.33
    assert summary.kgce == pytest.approx(244.33)
    assert summary.tce == pytest.approx(0.24433)
    assert summary.kgce_by_carrier == pytest.approx({C.ELECTRICITY: 122.9, C.NATURAL_GAS: 121.43})
    # CO2 = 1000 x 0.5703 + 100 x 2.1650 = 570.3 + 216.5 = 786.8 kg
    assert summary.co2_kg == pytest.approx(786.8)
    assert summary.consumption == {C.ELECTRICITY: 1000.0, C.NATURAL_GAS: 100.0}
    assert [(f.carrier, f.value, f.unit) for f in summary.factors_applied] == [
        (C.ELECTRICITY, 0.1229, "kgce/kWh"),
        (C.NATURAL_GAS, 1.2143, "kgce/m3"),
        (C.ELECTRICITY, 0.5703, "kg CO2/kWh"),
        (C.NATURAL_GAS, 2.1650, "kg CO2/m3"),
    ]
    assert summary.missing_factors == ()


def test_every_carrier_and_a_co2_factor_that_is_missing(defaults: SiteFactors) -> None:
    hour = {
        C.ELECTRICITY: 1000.0,  # 122.9 kgce    570.3 kg CO2
        C.NATURAL_GAS: 100.0,  # 121.43        216.5
        C.WATER: 50.0,  # 50 x 0.2571 = 12.855    0
        C.HEAT: 1000.0,  # 1000 x 0.03412 = 34.12   1000 x 0.11 = 110
        C.STEAM: 200.0,  # 200 x 0.1286 = 25.72     no factor
        C.COMPRESSED_AIR: 500.0,  # 500 x 0.04 = 20.0   no factor
        C.DIESEL: 10.0,  # 10 x 1.4571 = 14.571    10 x 3.0959 = 30.959
        C.GASOLINE: 5.0,  # 5 x 1.4714 = 7.357      5 x 2.9251 = 14.6255
    }
    summary = energy_summary([(HOUR, hour)], defaults)
    # 122.9 + 121.43 + 12.855 + 34.12 + 25.72 + 20.0 + 14.571 + 7.357 = 358.953 kgce
    assert summary.kgce == pytest.approx(358.953)
    # CO2 has no factor for steam and compressed air: no total, and the report says why ...
    assert summary.co2_kg is None
    assert [(m.kind, m.carrier, m.hours, m.consumption) for m in summary.missing_factors] == [
        ("co2", C.STEAM, 1, 200.0),
        ("co2", C.COMPRESSED_AIR, 1, 500.0),
    ]
    # ... while the carriers that have one are still shown:
    # 570.3 + 216.5 + 0 + 110 + 30.959 + 14.6255 = 942.3845
    assert sum(summary.co2_kg_by_carrier.values()) == pytest.approx(942.3845)
    assert C.STEAM not in summary.co2_kg_by_carrier


def test_factor_change_in_the_middle_of_a_window_applies_each_hour_its_own(tmp_path: Path) -> None:
    # Site s1 changes its grid factor and its gas coefficient on 2025-03-01, a local day in
    # Asia/Shanghai (UTC+8): local midnight is 2025-02-28 16:00 UTC.
    path = _with_sites(
        tmp_path,
        """\
  s1:
    kgce:
      natural_gas:
        - {value: 1.2143, valid_from: 2000-01-01, valid_to: 2025-03-01, source: GB/T 2589-2020 typical}
        - {value: 1.1, valid_from: 2025-03-01, source: supplier heat value 2025}
    co2:
      electricity:
        - {value: 0.6, valid_from: 2000-01-01, valid_to: 2025-03-01, source: grid factor A}
        - {value: 0.5, valid_from: 2025-03-01, source: grid factor B}
""",
    )
    site = load_energy_factors(path).for_site("s1")
    before = datetime(2025, 2, 28, 15, tzinfo=UTC)  # 23:00 local on 28 February
    after = datetime(2025, 2, 28, 16, tzinfo=UTC)  # 00:00 local on 1 March

    periods = site.periods(datetime(2025, 2, 28, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
    assert [(p.start, p.end) for p in periods] == [
        (datetime(2025, 2, 28, tzinfo=UTC), after),
        (after, datetime(2025, 3, 2, tzinfo=UTC)),
    ]
    assert [p.kgce[C.NATURAL_GAS].value for p in periods] == [1.2143, 1.1]
    assert [p.co2[C.ELECTRICITY].value for p in periods] == [0.6, 0.5]
    assert [p.kgce[C.ELECTRICITY].value for p in periods] == [0.1229, 0.1229]  # from the defaults

    rows = [(before, {C.ELECTRICITY: 100.0, C.NATURAL_GAS: 10.0}), (after, {C.ELECTRICITY: 100.0, C.NATURAL_GAS: 10.0})]
    summary = energy_summary(rows, site)
    # kgce: before 100 x 0.1229 + 10 x 1.2143 = 12.29 + 12.143 = 24.433
    #       after  100 x 0.1229 + 10 x 1.1    = 12.29 + 11.0   = 23.29      total 47.723
    assert summary.kgce == pytest.approx(47.723)
    # CO2:  before 100 x 0.6 + 10 x 2.165 = 60 + 21.65 = 81.65
    #       after  100 x 0.5 + 10 x 2.165 = 50 + 21.65 = 71.65               total 153.3
    assert summary.co2_kg == pytest.approx(153.3)
    assert [(f.carrier, f.value, f.source) for f in summary.factors_applied] == [
        (C.ELECTRICITY, 0.1229, defaults_source(site, C.ELECTRICITY)),
        (C.NATURAL_GAS, 1.2143, "GB/T 2589-2020 typical"),
        (C.NATURAL_GAS, 1.1, "supplier heat value 2025"),
        (C.ELECTRICITY, 0.6, "grid factor A"),
        (C.ELECTRICITY, 0.5, "grid factor B"),
        (C.NATURAL_GAS, 2.165, defaults_source(site, C.NATURAL_GAS, "co2")),
    ]
    grid_a = summary.factors_applied[3]
    assert (grid_a.valid_from, grid_a.valid_to) == (date(2000, 1, 1), date(2025, 3, 1))
    # The same window in the other order of rows gives the same figures.
    assert energy_summary(reversed(rows), site).kgce == pytest.approx(47.723)


def defaults_source(site: SiteFactors, carrier: C, kind: str = "kgce") -> str:
    schedule = site.kgce_schedule if kind == "kgce" else site.co2_schedule
    (factor,) = schedule[carrier]
    return factor.source


def test_equal_value_basis_and_water_editions_per_site(tmp_path: Path) -> None:
    path = _with_sites(
        tmp_path,
        """\
  equal-site:
    electricity_basis: equal
  water-2008:
    water_edition: 2008
  water-not-counted:
    water_in_comprehensive_energy: false
""",
    )
    factors = load_energy_factors(path)
    row = [(HOUR, {C.ELECTRICITY: 1000.0, C.NATURAL_GAS: 100.0, C.WATER: 50.0})]
    # Default site: 122.9 + 121.43 + 50 x 0.2571 (12.855) = 257.185
    assert energy_summary(row, factors.for_site("any-other-site")).kgce == pytest.approx(257.185)
    # Equal value: 1000 x 0.3 = 300 + 121.43 + 12.855 = 434.285
    equal = energy_summary(row, factors.for_site("equal-site"))
    assert equal.kgce == pytest.approx(434.285)
    electricity = equal.factors_applied[0]
    assert (electricity.carrier, electricity.value) == (C.ELECTRICITY, 0.3)
    assert "equal value" in electricity.source
    # The basis changes kgce only; CO2 is still by the grid factor: 570.3 + 216.5 + 0 = 786.8
    assert equal.co2_kg == pytest.approx(786.8)
    # 2008 edition: 122.9 + 121.43 + 50 x 0.0857 (4.285) = 248.615
    assert energy_summary(row, factors.for_site("water-2008")).kgce == pytest.approx(248.615)
    # Water not counted: 122.9 + 121.43 = 244.33; the water is still in the consumption
    not_counted = energy_summary(row, factors.for_site("water-not-counted"))
    assert not_counted.kgce == pytest.approx(244.33)
    assert not_counted.consumption[C.WATER] == 50.0
    assert C.WATER not in not_counted.kgce_by_carrier
    assert factors.for_site("water-not-counted").not_counted == frozenset({C.WATER})


def test_site_override_replaces_only_its_own_factor_list(tmp_path: Path) -> None:
    path = _with_sites(
        tmp_path,
        """\
  cq-demo:
    timezone: Asia/Shanghai
    co2:
      electricity:
        - {value: 0.5257, valid_from: 2020-01-01, source: Central China grid (test value)}
""",
    )
    factors = load_energy_factors(path)
    site = factors.for_site("cq-demo")
    summary = energy_summary([(HOUR, {C.ELECTRICITY: 1000.0, C.NATURAL_GAS: 100.0})], site)
    # CO2 = 1000 x 0.5257 + 100 x 2.1650 (default gas) = 525.7 + 216.5 = 742.2; kgce unchanged 244.33
    assert summary.co2_kg == pytest.approx(742.2)
    assert summary.kgce == pytest.approx(244.33)
    # Another site keeps the national grid factor: 786.8
    assert energy_summary([(HOUR, {C.ELECTRICITY: 1000.0, C.NATURAL_GAS: 100.0})], factors.for_site("x")).co2_kg == (
        pytest.approx(786.8)
    )
    # Before the site's factor starts there is none (its list replaced the defaults' list).
    old = energy_summary([(datetime(2019, 6, 1, tzinfo=UTC), {C.ELECTRICITY: 10.0})], site)
    assert old.co2_kg is None
    assert old.kgce == pytest.approx(1.229)


def test_consumption_outside_every_period_gives_no_factor_not_a_guess(tmp_path: Path) -> None:
    path = _with_sites(
        tmp_path,
        """\
  s1:
    co2:
      electricity:
        - {value: 0.5703, valid_from: 2023-01-01, valid_to: 2026-01-01, source: MEE 2023-2025}
""",
    )
    site = load_energy_factors(path).for_site("s1")
    last_hour_2025 = datetime(2025, 12, 31, 15, tzinfo=UTC)  # 23:00 local
    rows = [(last_hour_2025 + timedelta(hours=n), {C.ELECTRICITY: 10.0}) for n in range(4)]
    summary = energy_summary(rows, site)
    # Only the first hour has a grid factor; the three from local midnight on 2026-01-01 have none.
    assert summary.co2_kg is None
    (gap,) = summary.missing_factors
    assert (gap.kind, gap.carrier, gap.hours, gap.consumption) == ("co2", C.ELECTRICITY, 3, 30.0)
    assert (gap.first_hour, gap.last_hour) == (rows[1][0], rows[3][0])
    assert summary.co2_kg_by_carrier == {}
    # kgce is unaffected: 40 kWh x 0.1229 = 4.916
    assert summary.kgce == pytest.approx(4.916)
    # A second meter in the last hour adds consumption, not hours: 30 + 5 = 35 kWh over 3 hours.
    (gap,) = energy_summary([*rows, (rows[3][0], {C.ELECTRICITY: 5.0})], site).missing_factors
    assert (gap.hours, gap.consumption) == (3, 35.0)
    # A carrier without a factor but with zero consumption needs none.
    quiet = energy_summary([(rows[2][0], {C.ELECTRICITY: 0.0})], site)
    assert (quiet.co2_kg, quiet.missing_factors) == (0.0, ())


def test_rows_sharing_an_hour_add_up_and_nothing_measured_is_not_zero(defaults: SiteFactors) -> None:
    # Two meters in one hour: 400 + 600 = 1000 kWh -> 122.9 kgce
    two_meters = energy_summary([(HOUR, {C.ELECTRICITY: 400.0}), (HOUR, {"electricity": 600.0})], defaults)
    assert two_meters.consumption == {C.ELECTRICITY: 1000.0}
    assert two_meters.kgce == pytest.approx(122.9)
    nothing = energy_summary([], defaults)
    assert (nothing.kgce, nothing.co2_kg, nothing.consumption) == (None, None, {})
    assert nothing.consumption_of(C.ELECTRICITY) is None


def test_bad_input_is_refused(defaults: SiteFactors) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        energy_summary([(datetime(2025, 3, 10, 2), {C.ELECTRICITY: 1.0})], defaults)
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        energy_summary([(HOUR, {C.ELECTRICITY: -1.0})], defaults)
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        energy_summary([(HOUR, {C.ELECTRICITY: float("nan")})], defaults)
    with pytest.raises(ValueError, match="'coal' is not a valid EnergyCarrier"):
        energy_summary([(HOUR, {"coal": 1.0})], defaults)
    with pytest.raises(ValueError, match="before start"):
        defaults.periods(HOUR, HOUR - timedelta(hours=1))
    assert defaults.periods(HOUR, HOUR) == []


def test_kpis_per_part_and_per_value_added(defaults: SiteFactors) -> None:
    row = {C.ELECTRICITY: 1000.0, C.NATURAL_GAS: 100.0, C.WATER: 50.0}
    summary = energy_summary([(HOUR, row)], defaults)  # 257.185 kgce, 786.8 kg CO2 (see above)
    # 1000 parts made, 800 good
    assert energy.kgce_per_good_part(summary.kgce, 800) == pytest.approx(257.185 / 800)  # 0.32148
    assert energy.kgce_per_part(summary.kgce, 1000) == pytest.approx(0.257185)
    assert energy.kwh_per_good_part(summary.consumption_of(C.ELECTRICITY), 800) == pytest.approx(1.25)  # 1000 / 800
    assert energy.co2_kg_per_good_part(summary.co2_kg, 800) == pytest.approx(0.9835)  # 786.8 / 800
    assert energy.water_m3_per_part(summary.consumption_of(C.WATER), 1000) == pytest.approx(0.05)  # 50 / 1000
    # Per value added (万元): 257.185 kgce = 0.257185 tce over 2.5 万元 = 0.102874 tce/万元
    assert energy.tce_per_10k_cny_value_added(summary.kgce, 2.5) == pytest.approx(0.102874)
    assert energy.co2_t_per_10k_cny_value_added(summary.co2_kg, 2.5) == pytest.approx(0.31472)  # 0.7868 / 2.5
    assert energy.water_m3_per_10k_cny_value_added(50.0, 2.5) == pytest.approx(20.0)
    # No denominator, no value; unknown energy, no value
    assert energy.kgce_per_good_part(summary.kgce, 0) is None
    assert energy.kgce_per_good_part(None, 800) is None
    assert energy.kwh_per_good_part(None, 800) is None
    assert energy.tce_per_10k_cny_value_added(summary.kgce, 0.0) is None
    assert energy.tce_per_10k_cny_value_added(summary.kgce, -3.0) is None  # a loss year has no intensity


def test_kpi_descriptions_compute_from_a_summary_and_parts(defaults: SiteFactors) -> None:
    summary = energy_summary([(HOUR, {C.ELECTRICITY: 1000.0, C.NATURAL_GAS: 100.0, C.WATER: 50.0})], defaults)
    parts = BaseQuantities(parts_produced=1000, parts_good=800)
    values = {k.key: k.compute(summary, parts) for k in ENERGY_KPIS}
    assert values == pytest.approx(
        {
            "comprehensive_energy_kgce": 257.185,
            "co2_kg": 786.8,
            "kgce_per_good_part": 257.185 / 800,
            "kgce_per_part": 0.257185,
            "electricity_kwh_per_good_part": 1.25,
            "co2_kg_per_good_part": 0.9835,
            "water_m3_per_part": 0.05,
        }
    )
    assert {k.key: k.compute(summary, 2.5) for k in VALUE_ADDED_KPIS} == pytest.approx(
        {
            "tce_per_10k_cny_value_added": 0.102874,
            "co2_t_per_10k_cny_value_added": 0.31472,
            "water_m3_per_10k_cny_value_added": 20.0,
        }
    )
    labels = {k.key: k.label_zh for k in (*ENERGY_KPIS, *VALUE_ADDED_KPIS)}
    assert labels["comprehensive_energy_kgce"] == "综合能耗"
    assert labels["tce_per_10k_cny_value_added"] == "万元增加值能耗"
    assert len(labels) == len(ENERGY_KPIS) + len(VALUE_ADDED_KPIS)
    assert all(k.direction is Direction.DOWN and k.label_en and k.unit for k in (*ENERGY_KPIS, *VALUE_ADDED_KPIS))
    # Without any water meter the water KPI has no value, it is not zero.
    dry = EnergySummary({C.ELECTRICITY: 1.0}, 0.1229, 0.5703, {}, {}, ())
    assert next(k for k in ENERGY_KPIS if k.key == "water_m3_per_part").compute(dry, parts) is None


# A small valid file; each case below breaks one thing and names the line and field it expects.
GAS = "      - {value: 1.2143, valid_from: 2000-01-01, source: GB/T 2589-2020}\n"
ELECTRICITY = "      - {value: 0.1229, basis: equivalent, valid_from: 2000-01-01, source: GB/T 2589-2020}\n"


def _small_file(*, settings: str = "", electricity: str = ELECTRICITY, gas: str = GAS, tail: str = "") -> str:
    return (
        "version: 1\n"
        "defaults:\n"
        + settings
        + "  kgce:\n"
        + "    electricity:\n"
        + electricity
        + "    natural_gas:\n"
        + gas
        + "  co2:\n"
        + "    electricity:\n"
        + "      - {value: 0.5703, valid_from: 2000-01-01, source: MEE 2023-2025}\n"
        + tail
    )


def test_small_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "energy.yaml"
    path.write_text(_small_file())
    site = load_energy_factors(path).for_site("s1")
    assert set(site.kgce_schedule) == {C.ELECTRICITY, C.NATURAL_GAS}
    assert str(site.timezone) == "Asia/Shanghai"  # the default when the file names none


SITE_GAS = "sites:\n  s1:\n    kgce:\n      natural_gas:\n"

BROKEN = [
    pytest.param(
        {"gas": GAS.replace("1.2143", "-1.2")}, 7, "defaults.kgce.natural_gas[0].value", "greater than or equal to 0",
        id="negative-factor",
    ),
    pytest.param(
        {"gas": GAS.replace("1.2143", ".nan")}, 7, "defaults.kgce.natural_gas[0].value", "finite number", id="nan"
    ),
    pytest.param(
        {"gas": GAS.replace("1.2143", ".inf")}, 7, "defaults.kgce.natural_gas[0].value", "finite number", id="inf"
    ),
    pytest.param(
        {"gas": GAS.replace(", source: GB/T 2589-2020", "")}, 7, "defaults.kgce.natural_gas[0].source",
        "Field required", id="missing-source",
    ),
    pytest.param(
        {"gas": GAS.replace("source: GB/T 2589-2020", 'source: "  "')}, 7, "defaults.kgce.natural_gas[0].source",
        "at least 1 character", id="blank-source",
    ),
    pytest.param(
        {"gas": GAS.replace("2000-01-01", "2024-02-30")}, 7, "defaults.kgce.natural_gas[0].valid_from",
        "invalid date or time '2024-02-30'", id="impossible-date",
    ),
    pytest.param(
        {"gas": GAS.replace("2000-01-01", "2024-1-5")}, 7, "defaults.kgce.natural_gas[0].valid_from",
        "valid date", id="malformed-date",
    ),
    pytest.param(
        {"gas": GAS.replace("2000-01-01", "2024")}, 7, "defaults.kgce.natural_gas[0].valid_from",
        "write a date as YYYY-MM-DD", id="number-as-date",
    ),
    pytest.param(
        {"gas": GAS.replace("valid_from: 2000-01-01", "valid_from: 2020-01-01, valid_to: 2019-01-01")}, 7,
        "defaults.kgce.natural_gas[0].valid_to", "is not after valid_from 2020-01-01", id="end-before-start",
    ),
    pytest.param(
        {"gas": GAS.replace("2000-01-01", "2000-01-01, valid_to: 2025-01-01")
         + GAS.replace("2000-01-01", "2024-07-01")},
        8, "defaults.kgce.natural_gas[1].valid_from", "overlaps the period at line 7 (2000-01-01 to 2025-01-01)",
        id="overlapping-periods",
    ),
    pytest.param(
        {"gas": GAS.replace("2000-01-01", "2024-07-01") + GAS}, 7, "defaults.kgce.natural_gas[0].valid_from",
        "overlaps the period at line 8 (2000-01-01 to open end)", id="open-period-overlaps-a-later-one",
    ),
    pytest.param(
        {"gas": GAS.replace("2000-01-01", "2000-01-01, valid_to: 2024-12-31")
         + GAS.replace("2000-01-01", "2025-01-01")},
        8, "defaults.kgce.natural_gas[1].valid_from",
        "gap: no factor from 2024-12-31 to 2025-01-01 after the period at line 7", id="gap-between-periods",
    ),
    pytest.param(
        {"gas": GAS.replace("{value", "{unit: kgce/t, value")}, 7, "defaults.kgce.natural_gas[0].unit",
        "kgce factors of natural_gas are in kgce/m3, not kgce/t", id="wrong-unit",
    ),
    pytest.param(
        {"gas": GAS.replace("{value", "{basis: equal, value")}, 7, "defaults.kgce.natural_gas[0].basis",
        "only electricity coefficients (kgce) have a basis", id="basis-on-gas",
    ),
    pytest.param(
        {"electricity": ELECTRICITY.replace("basis: equivalent, ", "")}, 5, "defaults.kgce.electricity[0].basis",
        "needs basis: equivalent", id="electricity-without-basis",
    ),
    pytest.param(
        {"settings": "  electricity_basis: equal\n"}, 3, "defaults.electricity_basis",
        "'equal' is chosen but no kgce.electricity entry has basis: equal", id="chosen-basis-has-no-factor",
    ),
    pytest.param(
        {"settings": "  electricity_basis: both\n"}, 3, "defaults.electricity_basis", "'equivalent' or 'equal'",
        id="unknown-basis",
    ),
    pytest.param(
        {"tail": "sites:\n  s1:\n    timezone: Mars/Olympus\n"}, 13, "sites.s1.timezone",
        "unknown time zone 'Mars/Olympus'", id="site-time-zone",
    ),
    pytest.param(
        {"tail": SITE_GAS + "        - {value: -1, valid_from: 2000-01-01, source: x}\n"}, 15,
        "sites.s1.kgce.natural_gas[0].value", "greater than or equal to 0", id="site-negative-factor",
    ),
    pytest.param(
        {"tail": "sites:\n  s1:\n    kgce:\n      coal:\n        - {value: 1, valid_from: 2000-01-01, source: x}\n"},
        14, "sites.s1.kgce.coal", "unknown carrier 'coal'", id="site-unknown-carrier",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("parts", "line", "field", "reason"), BROKEN)
def test_broken_file_names_file_line_field_and_reason(
    tmp_path: Path, parts: dict[str, str], line: int, field: str, reason: str
) -> None:
    path = tmp_path / "energy.yaml"
    path.write_text(_small_file(**parts))
    with pytest.raises(ConfigError) as err:
        load_energy_factors(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field), str(err.value)
    assert reason in err.value.reason
    assert str(err.value).startswith(f"{path}:{line}: {field}: ")


def test_unknown_carrier_in_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "energy.yaml"
    path.write_text(_small_file().replace("    natural_gas:\n", "    coal:\n"))
    with pytest.raises(ConfigError, match=r"energy.yaml:6: defaults.kgce.coal: unknown carrier 'coal' \(known: elec"):
        load_energy_factors(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_energy_factors(tmp_path / "nowhere.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="file is empty"):
        load_energy_factors(empty)
    no_defaults = tmp_path / "no-defaults.yaml"
    no_defaults.write_text("version: 1\nsites: {}\n")
    with pytest.raises(ConfigError) as err:
        load_energy_factors(no_defaults)
    assert (err.value.field, err.value.reason) == ("defaults", "Field required")


def test_the_summaries_of_several_sites_add_up_and_keep_what_one_site_lacks() -> None:
    factors = load_energy_factors(DEFAULT_FILE)
    # Site a: 100 kWh in 2025 at 0.1229 kgce/kWh = 12.29 kgce, 0.5703 kg CO2/kWh = 57.03 kg.
    a = energy_summary([(HOUR, {C.ELECTRICITY: 100.0})], factors.for_site("a"))
    # Site b: 10 kWh in 1999, before the defaults begin (2000-01-01): no factor at all.
    b = energy_summary([(datetime(1999, 6, 1, tzinfo=UTC), {C.ELECTRICITY: 10.0})], factors.for_site("b"))
    combined = energy.combine_summaries([a, b])
    assert combined.consumption == {C.ELECTRICITY: 110.0}
    assert (combined.kgce, combined.co2_kg) == (None, None)  # b's 10 kWh cannot be converted: no total
    assert combined.kgce_by_carrier == {} and combined.missing_factors == b.missing_factors
    # Two sites that both have factors: the totals are the sums (100 + 50 kWh x 0.1229 = 18.435 kgce).
    c = energy_summary([(HOUR, {C.ELECTRICITY: 50.0})], factors.for_site("c"))
    both = energy.combine_summaries([a, c])
    assert both.kgce == pytest.approx(150 * 0.1229) and both.co2_kg == pytest.approx(150 * 0.5703)
    assert both.kgce_by_carrier == {C.ELECTRICITY: pytest.approx(18.435)}
    assert len(both.factors_applied) == 2  # the same two factors (kgce and CO2) at both sites, listed once
    # A site without consumption changes nothing; none at all is an empty summary.
    assert energy.combine_summaries([a, energy_summary([], factors.for_site("d"))]) is a
    assert energy.combine_summaries([]).kgce is None
