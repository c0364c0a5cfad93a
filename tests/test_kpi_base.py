"""Base quantities: the time model, adding and storing them, counter increments and UTC hours.

State durations and counters under the evidence rules are in test_kpi_fold.py.

Every expected number is worked out by hand in the comments next to it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.signals import MachineState
from core.wire import datetime_to_ns
from kpi.base import NS_PER_S, BaseQuantities, counter_increments, hour_windows, total
from kpi.timemodel import TIME_ELEMENT, TimeElement, time_element

T8 = datetime_to_ns(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
MIN = 60 * NS_PER_S


def at(minutes: float) -> int:
    """Nanoseconds of 08:00 UTC + minutes."""
    return T8 + int(minutes * MIN)


def test_every_canonical_state_maps_to_exactly_one_time_element() -> None:
    assert set(TIME_ELEMENT) == set(MachineState)
    assert time_element(MachineState.PRODUCING) is TimeElement.APT
    assert time_element(MachineState.SETUP) is TimeElement.AUST
    assert time_element(MachineState.DOWN) is TimeElement.ADET
    assert time_element(MachineState.IDLE) is TimeElement.ADOT
    assert time_element(MachineState.PLANNED_STOP) is TimeElement.PDOT


def test_counter_reset_adds_the_new_reading_and_is_counted() -> None:
    # prior 1000 -> 1100 (+100) -> 1250 (+150) -> 30 (decrease: reset, +30) -> 45 (+15) = 295, 1 reset.
    increment, resets = counter_increments([(1, 1100), (2, 1250), (3, 30), (4, 45)], 1000)
    assert (increment, resets) == (295, 1)


def test_without_prior_reading_the_first_reading_is_the_baseline() -> None:
    # 500 is the baseline (no increment); 520 (+20); 520 (+0) = 20, no reset.
    assert counter_increments([(1, 500), (2, 520), (3, 520)], None) == (20, 0)
    assert counter_increments([], None) == (0, 0)
    assert counter_increments([], 7) == (0, 0)


def test_counter_increment_is_never_negative_even_for_reset_to_zero() -> None:
    # prior 10 -> 0 (reset, +0) -> 0 (+0) -> 3 (+3): 3, one reset.
    assert counter_increments([(1, 0), (2, 0), (3, 3)], 10) == (3, 1)


def test_energy_counter_works_with_floats() -> None:
    # 100.5 -> 101.0 (+0.5) -> 102.25 (+1.25) = 1.75 kWh.
    assert counter_increments([(1, 101.0), (2, 102.25)], 100.5) == (1.75, 0)


def test_hour_windows_clip_partial_first_and_last_hours() -> None:
    # 08:30 -> 10:15 touches the hours 08, 09 and 10: 30 min, 60 min, 15 min.
    windows = hour_windows(at(30), at(135))
    assert windows == [(at(0), at(30), at(60)), (at(60), at(60), at(120)), (at(120), at(120), at(135))]


def test_base_quantities_add_and_derive_planned_busy_time() -> None:
    a = BaseQuantities(production_time_s=100.0, setup_time_s=10.0, parts_produced=5, expected_s=200.0, covered_s=150)
    b = BaseQuantities(down_time_s=20.0, idle_time_s=30.0, planned_downtime_s=40.0, parts_produced=3, counter_resets=1)
    s = a + b
    # PBT = APT 100 + AUST 10 + ADET 20 + ADOT 30 = 160 (PDOT 40 is outside PBT).
    assert s.planned_busy_time_s == 160.0
    assert (s.parts_produced, s.counter_resets, s.coverage) == (8, 1, 0.75)
    assert total([a, b]) == s
    assert total([]) == BaseQuantities.zero()
    assert BaseQuantities.zero().coverage is None


def test_fields_keep_one_type_per_quantity_and_round_trip() -> None:
    q = BaseQuantities(production_time_s=0, parts_good=3, energy_kwh=2, samples=4)
    fields = q.to_fields()
    # InfluxDB refuses a field whose type changes, so whole seconds must still be floats.
    assert isinstance(fields["production_time_s"], float) and isinstance(fields["energy_kwh"], float)
    assert isinstance(fields["parts_good"], int) and isinstance(fields["samples"], int)
    assert fields["planned_busy_time_s"] == 0.0 and fields["offline_s"] == 0.0  # derived, stored for dashboards
    assert BaseQuantities.from_fields(fields) == q


@pytest.mark.parametrize("bad", [[(1, 5), (2, 3)], [(1, 0), (2, 0)]])
def test_increments_never_go_below_zero(bad: list[tuple[int, int]]) -> None:
    increment, _ = counter_increments(bad, 9)
    assert increment >= 0
