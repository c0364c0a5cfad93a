"""Base quantities: state durations, counter increments with resets, and the split into UTC hours.

Every expected number is worked out by hand in the comments next to it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.signals import MachineState
from core.wire import datetime_to_ns
from kpi.base import (
    HOUR_NS,
    NS_PER_S,
    BaseQuantities,
    counter_increments,
    counter_increments_by_hour,
    hour_windows,
    span_by_hour,
    state_durations,
    state_durations_by_hour,
    total,
)
from kpi.timemodel import TIME_ELEMENT, TimeElement, time_element

P, IDLE, S, D = MachineState.PRODUCING, MachineState.IDLE, MachineState.SETUP, MachineState.DOWN
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


def test_prior_state_holds_from_window_start_and_last_state_until_end() -> None:
    # Window 08:00-09:00. PRODUCING since before the window; DOWN at 08:10; PRODUCING at 08:25.
    # PRODUCING 08:00-08:10 (10 min) + 08:25-09:00 (35 min) = 45 min; DOWN 08:10-08:25 = 15 min.
    durations = state_durations([(at(10), D), (at(25), P)], P, at(0), at(60))
    assert durations == {P: 45 * MIN, D: 15 * MIN}


def test_time_before_the_first_known_state_is_no_data() -> None:
    # No state before the window; IDLE first seen at 08:20, SETUP at 08:50.
    # 08:00-08:20 is in no state (a gap); IDLE 08:20-08:50 = 30 min; SETUP 08:50-09:00 = 10 min.
    durations = state_durations([(at(20), IDLE), (at(50), S)], None, at(0), at(60))
    assert durations == {IDLE: 30 * MIN, S: 10 * MIN}
    assert sum(durations.values()) == 40 * MIN  # 20 min uncovered


def test_unknown_state_is_a_gap_and_repeated_states_add_up() -> None:
    # PRODUCING 08:00-08:05, repeated PRODUCING at 08:05 continues to 08:30 (30 min in all);
    # unknown (None) 08:30-08:40 counts nowhere; DOWN 08:40-09:00 = 20 min.
    durations = state_durations([(at(5), P), (at(30), None), (at(40), D)], P, at(0), at(60))
    assert durations == {P: 30 * MIN, D: 20 * MIN}


def test_changes_outside_the_window_only_set_the_starting_state() -> None:
    # A change at 07:50 (before the window) to DOWN overrides the prior PRODUCING: DOWN 08:00-08:30.
    # A change at 09:00 (the exclusive end) is not in the window.
    durations = state_durations([(at(-10), D), (at(60), P)], P, at(0), at(30))
    assert durations == {D: 30 * MIN}


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


def test_durations_are_split_at_hour_boundaries() -> None:
    # Window 08:30-10:00. Prior IDLE; PRODUCING at 08:45; DOWN at 09:50.
    # Hour 08 (08:30-09:00): IDLE 15 min, PRODUCING 15 min.
    # Hour 09 (09:00-10:00): PRODUCING 09:00-09:50 = 50 min (state carried over the boundary), DOWN 10 min.
    by_hour = state_durations_by_hour([(at(45), P), (at(110), D)], IDLE, at(30), at(120))
    assert by_hour == {at(0): {IDLE: 15 * MIN, P: 15 * MIN}, at(60): {P: 50 * MIN, D: 10 * MIN}}


def test_a_state_known_only_from_before_fills_every_hour() -> None:
    # No change inside 08:00-11:00; PRODUCING from before the window fills all three hours.
    by_hour = state_durations_by_hour([], P, at(0), at(180))
    assert by_hour == {at(0): {P: HOUR_NS}, at(60): {P: HOUR_NS}, at(120): {P: HOUR_NS}}


def test_increments_belong_to_the_hour_of_their_reading() -> None:
    # prior 100; 08:59:59 -> 110 (+10, hour 08); 09:00 -> 115 (+5, hour 09); 09:30 -> 2 (reset: +2, hour 09).
    readings = [(at(60) - NS_PER_S, 110), (at(60), 115), (at(90), 2)]
    assert counter_increments_by_hour(readings, 100) == {at(0): (10, 0), at(60): (7, 1)}


def test_span_is_split_into_hours_and_clipped_to_the_window() -> None:
    # Span 08:40-09:10 in window 08:30-09:30: 20 min in hour 08, 10 min in hour 09.
    assert span_by_hour(at(40), at(70), at(30), at(90)) == {at(0): 20 * MIN, at(60): 10 * MIN}


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
    assert fields["planned_busy_time_s"] == 0.0
    assert BaseQuantities.from_fields(fields) == q


@pytest.mark.parametrize("bad", [[(1, 5), (2, 3)], [(1, 0), (2, 0)]])
def test_increments_never_go_below_zero(bad: list[tuple[int, int]]) -> None:
    increment, _ = counter_increments(bad, 9)
    assert increment >= 0
