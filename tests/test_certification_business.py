"""Business KPIs and verdicts as pure functions, against worked examples computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from core.business import InputEntry, InputKind
from kpi import business
from kpi.certification import judge, target_of


def entry(
    entry_id: str, kind: InputKind, start: date, end: date, value: float, *, version: int = 1, site: str = "s1"
) -> InputEntry:
    return InputEntry(
        entry_id=entry_id,
        version=version,
        site=site,
        kind=kind,
        period_start=start,
        period_end=end,
        value=value,
        entered_by="cli:test",
        entered_at=datetime(2026, 7, 1, tzinfo=UTC),
    )


# --- formulas ------------------------------------------------------------------------------


def test_labour_productivity_is_value_added_per_average_employee_annualised() -> None:
    # Half a year (2026-01-01..2026-07-01 = 181 days), value added 9,050 万元, 500 employees on average:
    # 9050 x 365 / 181 = 18,250 万元 a year; / 500 = 36.5 万元/人·年 (above the plan's 35).
    assert business.labour_productivity(9050.0, 500.0, 181) == pytest.approx(36.5)
    assert business.labour_productivity(9050.0, 0.0, 181) is None  # nobody employed: no value, not infinity
    assert business.labour_productivity(None, 500.0, 181) is None


def test_output_intensity_is_yearly_output_value_in_100m_cny_per_km2() -> None:
    # A quarter of 73 days with output value 30,000 万元 on 0.5 km²: 30,000 x 365 / 73 = 150,000 万元 a year
    # = 15 亿元; / 0.5 km² = 30 亿元/km² (below the main city's 120, so a new project there is refused).
    assert business.output_intensity(30_000.0, 0.5, 73) == pytest.approx(30.0)
    assert business.output_intensity(30_000.0, 0.0, 73) is None


def test_energy_co2_and_water_per_10k_cny_value_added() -> None:
    # 250,000 kgce = 250 tce over value added of 1,000 万元: 0.25 tce/万元.
    assert business.energy_per_value_added(250_000.0, 1000.0) == pytest.approx(0.25)
    # 570,300 kg CO2 = 570.3 t / 1,000 万元 = 0.5703 t/万元.
    assert business.co2_per_value_added(570_300.0, 1000.0) == pytest.approx(0.5703)
    # 12,000 m³ fresh water / 1,000 万元 = 12 m³/万元.
    assert business.water_intensity(12_000.0, 1000.0) == pytest.approx(12.0)
    # A loss (negative value added) gives no intensity rather than a negative one.
    assert business.energy_per_value_added(250_000.0, -10.0) is None


def test_operating_cost_per_unit_and_per_output_value() -> None:
    # 120 万元 over 40,000 good parts: 0.003 万元 = 30 CNY a part.
    assert business.operating_cost_per_unit(120.0, 40_000) == pytest.approx(0.003)
    assert business.operating_cost_per_unit(120.0, 0) is None
    # 120 万元 of cost for 200 万元 of output value: 0.6.
    assert business.operating_cost_per_output_value(120.0, 200.0) == pytest.approx(0.6)


def test_development_cycle_is_the_mean_design_to_launch_time() -> None:
    # Three projects of 100, 80 and 120 days: (100 + 80 + 120) / 3 = 100 days.
    assert business.development_cycle_days([100, 80, 120]) == pytest.approx(100.0)
    assert business.development_cycle_days([]) is None


def test_efficiency_and_energy_utilisation_formulas() -> None:
    # 9,000 good parts in 60 h of planned busy time (216,000 s): 150 parts/h.
    assert business.output_per_hour(9000, 216_000.0) == pytest.approx(150.0)
    # 9,000 good parts for 1,500 labour hours: 6 parts per labour hour.
    assert business.output_per_labour_hour(9000, 1500.0) == pytest.approx(6.0)
    # 9,000 good parts on 450 kgce: 20 parts/kgce.
    assert business.output_per_kgce(9000, 450.0) == pytest.approx(20.0)
    # 1,000 万元 value added on 250,000 kgce = 250 tce: 4 万元/tce.
    assert business.value_added_per_tce(1000.0, 250_000.0) == pytest.approx(4.0)


def test_relative_change_needs_a_positive_baseline() -> None:
    assert business.relative_change(0.05, 0.04) == pytest.approx(-0.2)
    assert business.relative_change(100.0, 120.0) == pytest.approx(0.2)
    assert business.relative_change(0.0, 0.04) is None
    assert business.relative_change(None, 0.04) is None


# --- input figures -------------------------------------------------------------------------

JAN, FEB, MAR, APR = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)
VA = InputKind.VALUE_ADDED


def test_a_flow_adds_up_the_entries_that_tile_the_window() -> None:
    entries = [
        entry("va-1", VA, JAN, FEB, 100.0),
        entry("va-2", VA, FEB, MAR, 110.0),
        entry("va-3", VA, MAR, APR, 90.0),
    ]
    figure = business.flow_total(entries, VA, JAN, APR)
    assert figure.value == pytest.approx(300.0) and figure.coverage == 1.0 and figure.reason is None
    assert [e.entry_id for e in figure.entries] == ["va-1", "va-2", "va-3"]
    assert business.flow_total(entries, VA, FEB, MAR).value == pytest.approx(110.0)


def test_a_flow_that_misses_days_gives_no_value_and_names_them() -> None:
    figure = business.flow_total([entry("va-1", VA, JAN, FEB, 100.0), entry("va-3", VA, MAR, APR, 90.0)], VA, JAN, APR)
    # January (31 days) and March (31 days) of the quarter's 90 days: 62 / 90.
    assert figure.value is None and figure.coverage == pytest.approx(62 / 90)
    assert figure.reason == "value_added covers 69% of 2026-01-01..2026-04-01; no entry for 2026-02-01..2026-03-01"
    assert business.flow_total([], VA, JAN, APR).reason == "no value_added entered for 2026-01-01..2026-04-01"


def test_a_flow_entry_straddling_the_window_is_not_split_by_guessing() -> None:
    figure = business.flow_total([entry("va-q1", VA, JAN, APR, 300.0)], VA, JAN, FEB)
    assert figure.value is None
    assert figure.reason is not None and figure.reason.startswith(
        "value_added entry va-q1 (2026-01-01..2026-04-01) straddles the window 2026-01-01..2026-02-01"
    )


def test_overlapping_flow_entries_would_count_days_twice_and_give_no_value() -> None:
    figure = business.flow_total([entry("a", VA, JAN, MAR, 200.0), entry("b", VA, FEB, APR, 200.0)], VA, JAN, APR)
    assert figure.value is None
    assert figure.reason == (
        "value_added entries a (2026-01-01..2026-03-01) and b (2026-02-01..2026-04-01) overlap: days would count twice"
    )


def test_a_withdrawn_entry_does_not_count() -> None:
    withdrawn = entry("va-1", VA, JAN, FEB, 100.0).model_copy(update={"deleted": True})
    assert business.flow_total([withdrawn], VA, JAN, FEB).value is None


def test_headcount_is_averaged_over_the_days_of_the_window() -> None:
    # 400 people for January (31 days), 500 from February on; over Jan-Mar (90 days):
    # (400 x 31 + 500 x 59) / 90 = (12,400 + 29,500) / 90 = 465.56.
    hc = InputKind.HEADCOUNT
    entries = [entry("hc-1", hc, JAN, FEB, 400), entry("hc-2", hc, FEB, date(2026, 12, 31), 500)]
    figure = business.stock_average(entries, hc, JAN, APR)
    assert figure.value == pytest.approx((400 * 31 + 500 * 59) / 90)
    # A state may reach beyond the window; one that leaves days open gives no value.
    assert business.stock_average(entries[1:], hc, JAN, APR).value is None


def test_workshops_recognised_are_counted_as_of_the_last_day() -> None:
    kind = InputKind.RECOGNISED_DIGITAL_WORKSHOPS
    entries = [entry("w-1", kind, JAN, MAR, 1), entry("w-2", kind, MAR, date(2027, 1, 1), 2)]
    assert business.stock_at_end(entries, kind, JAN, APR).value == 2
    assert business.stock_at_end(entries, kind, JAN, FEB).value == 1


def test_development_cycle_counts_the_projects_launched_in_the_window() -> None:
    dev = InputKind.DEV_PROJECT
    entries = [
        entry("p-1", dev, date(2025, 10, 1), date(2026, 1, 1), 92),  # launched on the first day: counts
        entry("p-2", dev, date(2025, 12, 1), date(2026, 2, 15), 76),
        entry("p-3", dev, date(2026, 1, 10), date(2026, 4, 1), 81),  # launched on the day after: does not
    ]
    figure = business.projects_launched(entries, JAN, APR)
    # (92 + 76) / 2 = 84 days.
    assert figure.value == pytest.approx(84.0) and [e.entry_id for e in figure.entries] == ["p-1", "p-2"]
    assert business.projects_launched(entries, APR, date(2026, 5, 1)).value == pytest.approx(81.0)
    none = business.projects_launched(entries, date(2026, 5, 1), date(2026, 6, 1))
    assert none.value is None and none.reason == "no product development project launched in 2026-05-01..2026-06-01"


def test_a_project_whose_days_disagree_with_its_dates_is_refused() -> None:
    bad = entry("p-9", InputKind.DEV_PROJECT, date(2026, 1, 1), date(2026, 2, 1), 10)
    figure = business.projects_launched([bad], JAN, APR)
    assert figure.value is None
    assert figure.reason == "project p-9 (2026-01-01..2026-02-01) gives 10 days, but its dates are 31 days apart"


# --- verdicts ------------------------------------------------------------------------------


def test_reduce_by_twenty_percent_means_at_most_eight_tenths_of_the_baseline() -> None:
    baseline = 0.05
    # At the target: 0.8 x 0.05 = 0.04 passes, change -20 %.
    verdict, change, target, _ = judge("reduce_by", 0.2, 0.8 * baseline, baseline)
    assert (verdict, change, target) == ("pass", pytest.approx(-0.2), pytest.approx(0.04))
    # A hair above it fails.
    assert judge("reduce_by", 0.2, 0.8 * baseline * (1 + 1e-6), baseline)[0] == "fail"
    assert judge("reduce_by", 0.2, 0.8 * baseline * (1 - 1e-6), baseline)[0] == "pass"
    # 20 percentage points is NOT what it means: 0.05 -> 0.04 falls by one point and passes (-20 %);
    # read as points it could never pass. A fall to 0.045 (-10 %) or 0.041 (-18 %) fails.
    assert judge("reduce_by", 0.2, 0.045, baseline)[0] == "fail"
    verdict, change, _, reason = judge("reduce_by", 0.2, 0.041, baseline)
    assert verdict == "fail" and change == pytest.approx(-0.18) and reason == "0.041 is not ≤ 0.04"


def test_increase_by_twenty_percent_means_at_least_one_point_two_times_the_baseline() -> None:
    baseline = 150.0
    assert judge("increase_by", 0.2, 180.0, baseline)[:3] == ("pass", pytest.approx(0.2), pytest.approx(180.0))
    assert judge("increase_by", 0.2, 180.0 * (1 - 1e-6), baseline)[0] == "fail"
    assert judge("increase_by", 0.2, 180.0 * (1 + 1e-6), baseline)[0] == "pass"
    # An OEE of 0.60 -> 0.70 is 10 points but only +16.7 %: it fails +20 %.
    verdict, change, target, _ = judge("increase_by", 0.2, 0.70, 0.60)
    assert verdict == "fail" and change == pytest.approx(1 / 6) and target == pytest.approx(0.72)


def test_absolute_comparisons_at_and_around_their_thresholds() -> None:
    assert judge("at_least", 0.5, 0.5)[0] == "pass"
    assert judge("at_least", 0.5, 0.5 - 1e-6)[0] == "fail"
    assert judge("at_most", 0.5, 0.5)[0] == "pass"
    assert judge("at_most", 0.5, 0.5 + 1e-6)[0] == "fail"
    assert judge("at_least", 2, 2.0)[:3] == ("pass", None, 2)


def test_a_relative_rule_without_a_positive_baseline_is_insufficient_evidence() -> None:
    assert judge("reduce_by", 0.2, 0.01, 0.0)[0::3] == (
        "insufficient_evidence",
        "baseline is 0: a relative change is undefined",
    )
    assert judge("increase_by", 0.2, 0.01, None)[0] == "insufficient_evidence"
    assert target_of("reduce_by", 0.3, 62.0) == pytest.approx(43.4)
