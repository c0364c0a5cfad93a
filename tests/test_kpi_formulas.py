"""ISO 22400 KPI formulas, checked against the spec's worked OEE example and edge cases."""

from __future__ import annotations

import pytest

from kpi import formulas
from kpi.base import BaseQuantities
from kpi.formulas import KPIS, Basis

# The spec's worked example (kpi.md section 3):
#   shift 8 h = 480 min, planned breaks 60 min            -> PDOT = 3600 s
#   planned busy time 480 - 60 = 420 min                  -> PBT  = 25200 s
#   unplanned stops 47 min                                -> ADET = 2820 s
#   run time 420 - 47 = 373 min                           -> APT  = 22380 s
#   ideal cycle 1.0 s x 19,271 parts                      -> Σ PRU×PQ = 19271 s
#   423 rejected                                          -> SQ = 423, GQ = 18848
#   Availability  = 22380 / 25200 = 0.88810
#   Performance   = 19271 / 22380 = 0.86108
#   Quality       = 18848 / 19271 = 0.97805
#   OEE           = 18848 / 25200 = 0.74794  (the APT and PQ terms cancel)
SHIFT = BaseQuantities(
    production_time_s=373 * 60.0,
    down_time_s=47 * 60.0,
    planned_downtime_s=60 * 60.0,
    parts_produced=19_271,
    parts_good=19_271 - 423,
    parts_scrap=423,
    ideal_time_s=1.0 * 19_271,
    expected_s=8 * 3600.0,
    covered_s=8 * 3600.0,
)


def test_worked_oee_example_from_the_spec() -> None:
    assert SHIFT.planned_busy_time_s == 420 * 60
    assert formulas.availability(SHIFT) == pytest.approx(0.8881, abs=5e-5)
    assert formulas.effectiveness(SHIFT) == pytest.approx(0.8611, abs=5e-5)
    assert formulas.quality_ratio(SHIFT) == pytest.approx(0.9780, abs=5e-5)
    assert formulas.oee(SHIFT) == pytest.approx(0.7479, abs=5e-5)
    assert formulas.oee(SHIFT) == pytest.approx(18_848 / 25_200)


def test_efficiencies_rates_and_defects_of_the_worked_example() -> None:
    # No setup: AUPT = APT = 22380; AUBT = 22380 + 2820 = 25200 = PBT.
    assert formulas.nee(SHIFT) == pytest.approx(formulas.oee(SHIFT))
    assert formulas.allocation_efficiency(SHIFT) == pytest.approx(1.0)
    assert formulas.utilisation_efficiency(SHIFT) == pytest.approx(22_380 / 25_200)
    assert formulas.technical_efficiency(SHIFT) == pytest.approx(22_380 / 25_200)
    assert formulas.setup_rate(SHIFT) == 0.0
    assert formulas.scrap_ratio(SHIFT) == pytest.approx(423 / 19_271)
    assert formulas.rework_ratio(SHIFT) == 0.0
    # Defect rate (SQ + RQ) / PQ = 423 / 19271 = 0.0219501; PPM = 21,950.08
    assert formulas.defect_rate(SHIFT) == pytest.approx(0.021950, abs=5e-7)
    assert formulas.ppm(SHIFT) == pytest.approx(21_950.08, abs=0.01)


def test_setup_lowers_nee_but_not_allocation() -> None:
    # APT 3000, AUST 600, ADET 300, ADOT 100 -> PBT 4000, AUPT 3600, AUBT 3900.
    q = BaseQuantities(
        production_time_s=3000,
        setup_time_s=600,
        down_time_s=300,
        idle_time_s=100,
        parts_produced=100,
        parts_good=90,
        parts_rework=6,
        parts_scrap=4,
        ideal_time_s=2400,
    )
    assert formulas.setup_rate(q) == pytest.approx(600 / 3600)
    assert formulas.allocation_efficiency(q) == pytest.approx(3900 / 4000)
    assert formulas.utilisation_efficiency(q) == pytest.approx(3000 / 3900)
    assert formulas.technical_efficiency(q) == pytest.approx(3000 / 3300)
    # NEE = AUPT/PBT x E x Q = 0.9 x 0.8 x 0.9 = 0.648; OEE = 0.75 x 0.8 x 0.9 = 0.54
    assert formulas.nee(q) == pytest.approx(0.648)
    assert formulas.oee(q) == pytest.approx(0.54)
    # Defect rate counts rework too: (4 + 6) / 100.
    assert formulas.defect_rate(q) == pytest.approx(0.10)
    assert formulas.rework_ratio(q) == pytest.approx(0.06)


def test_zero_denominators_give_none_not_zero() -> None:
    empty = BaseQuantities.zero()
    for kpi in KPIS:
        assert kpi.compute(empty) is None, kpi.key
    idle_hour = BaseQuantities(idle_time_s=3600)
    assert formulas.availability(idle_hour) == 0.0  # a real zero: planned busy but not producing
    assert formulas.effectiveness(idle_hour) is None
    assert formulas.oee(idle_hour) is None


def test_effectiveness_above_one_is_reported_not_clipped() -> None:
    # Ideal cycle set too slow: 120 parts x 40 s = 4800 s ideal in 3600 s of production -> 1.333.
    q = BaseQuantities(production_time_s=3600, parts_produced=120, parts_good=120, ideal_time_s=4800)
    assert formulas.effectiveness(q) == pytest.approx(4 / 3)


def test_energy_per_part() -> None:
    q = BaseQuantities(energy_kwh=50.0, parts_produced=720, parts_good=700)
    assert formulas.kwh_per_good_part(q) == pytest.approx(50 / 700)
    assert formulas.kwh_per_part(q) == pytest.approx(50 / 720)


def test_kpi_table_has_unique_keys_and_both_languages() -> None:
    keys = [k.key for k in KPIS]
    assert len(keys) == len(set(keys))
    labels = {k.key: (k.label_en, k.label_zh) for k in KPIS}
    assert labels["availability"] == ("Availability", "可用率")
    assert labels["oee"] == ("OEE", "设备综合效率")
    assert labels["defect_rate"] == ("Defect rate", "不良品率")
    assert labels["kwh_per_good_part"] == ("Energy per good part", "单位产品能耗")
    assert {k.key for k in KPIS if k.basis is Basis.ENERGY} == {"kwh_per_good_part", "kwh_per_part"}
    assert all(k.label_en and k.label_zh and k.unit for k in KPIS)
