"""GroundTruth: the simulator's record of what happened, queried with the platform's [start, end) windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.signals import MachineState
from simulators.behaviour import PartQuality
from simulators.ground_truth import GroundTruth

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def machine_truth() -> GroundTruth:
    """IDLE 0-10, PRODUCING 10-70, DOWN 70-100, PRODUCING from 100 (open)."""
    truth = GroundTruth("cnc-01")
    truth.record_counters(at(0), total=1000, good=950, scrap=50)
    truth.record_state(at(0), MachineState.IDLE)
    truth.record_state(at(10), MachineState.PRODUCING)
    truth.record_part(at(30), PartQuality.GOOD)
    truth.record_part(at(50), PartQuality.SCRAP)
    truth.record_state(at(70), MachineState.PRODUCING)  # same state again: no new interval
    truth.record_part(at(70), PartQuality.GOOD)
    truth.record_state(at(70), MachineState.DOWN)
    truth.record_state(at(100), MachineState.PRODUCING)
    truth.record_part(at(120), PartQuality.GOOD)
    return truth


def test_state_durations_clip_intervals_to_the_window() -> None:
    durations = machine_truth().state_durations(at(5), at(80))
    assert durations == {"PRODUCING": 60.0, "IDLE": 5.0, "SETUP": 0.0, "DOWN": 10.0, "PLANNED_STOP": 0.0}


def test_open_interval_runs_until_the_window_end() -> None:
    durations = machine_truth().state_durations(at(90), at(130))
    assert durations["DOWN"] == 10.0
    assert durations["PRODUCING"] == 30.0


def test_open_interval_stops_at_the_freeze() -> None:
    truth = machine_truth()
    truth.freeze(at(125))
    durations = truth.state_durations(at(0), at(3600))
    assert durations == {"PRODUCING": 85.0, "IDLE": 10.0, "SETUP": 0.0, "DOWN": 30.0, "PLANNED_STOP": 0.0}
    assert sum(durations.values()) == 125.0


def test_time_before_the_first_state_counts_nowhere() -> None:
    durations = machine_truth().state_durations(at(-50), at(10))
    assert durations["IDLE"] == 10.0
    assert sum(durations.values()) == 10.0


def test_parts_count_completions_with_start_inclusive_end_exclusive() -> None:
    truth = machine_truth()
    assert truth.parts(at(30), at(70)) == {"total": 2, "good": 1, "scrap": 1, "rework": 0}
    assert truth.parts(at(50), at(71)) == {"total": 2, "good": 1, "scrap": 1, "rework": 0}
    assert truth.parts(at(0), at(200)) == {"total": 4, "good": 3, "scrap": 1, "rework": 0}
    assert truth.parts(at(121), at(200)) == {"total": 0, "good": 0, "scrap": 0, "rework": 0}


def test_counters_are_the_baseline_plus_the_parts_so_far() -> None:
    truth = machine_truth()
    assert truth.counters(at(29)) == {"total": 1000, "good": 950, "scrap": 50, "rework": 0}
    assert truth.counters(at(50)) == {"total": 1002, "good": 951, "scrap": 51, "rework": 0}
    assert truth.counters() == {"total": 1004, "good": 953, "scrap": 51, "rework": 0}


def test_state_at_includes_a_change_at_that_instant() -> None:
    truth = machine_truth()
    assert truth.state_at(at(-1)) is None
    assert truth.state_at(at(69.999)) == MachineState.PRODUCING
    assert truth.state_at(at(70)) == MachineState.DOWN


def meter_truth() -> GroundTruth:
    truth = GroundTruth("meter-a", unit="kWh", carrier="electricity")
    for seconds, kwh in ((0, 500.0), (10, 500.25), (20, 500.75), (30, 501.0)):
        truth.record_register(at(seconds), kwh)
    return truth


def test_energy_is_the_register_difference_of_the_last_publishes_before_each_bound() -> None:
    truth = meter_truth()
    # last publish < 25 is at 20 (500.75), last publish < 10 is at 0 (500.0)
    assert truth.energy_kwh(at(10), at(25)) == pytest.approx(0.75)
    # a publish exactly at the end bound is not included
    assert truth.energy_kwh(at(5), at(30)) == pytest.approx(0.75)
    assert truth.energy_kwh(at(5), at(30.000001)) == pytest.approx(1.0)


def test_energy_before_the_first_publish_is_zero() -> None:
    truth = meter_truth()
    assert truth.energy_kwh(at(-20), at(0)) == 0.0
    # counting starts from the first published register, not from zero kWh
    assert truth.energy_kwh(at(-20), at(15)) == pytest.approx(0.25)
    assert GroundTruth("meter-x").energy_kwh(at(0), at(10)) == 0.0


def test_nothing_can_be_recorded_at_or_after_the_freeze() -> None:
    truth = machine_truth()
    truth.freeze(at(125))
    with pytest.raises(ValueError, match="frozen"):
        truth.record_part(at(125), PartQuality.GOOD)


def test_out_of_order_records_are_refused() -> None:
    truth = meter_truth()
    with pytest.raises(ValueError, match="not after"):
        truth.record_register(at(30), 502.0)
    machine = machine_truth()
    with pytest.raises(ValueError, match="before"):
        machine.record_state(at(99), MachineState.IDLE)


def test_to_json_round_trips_through_json_with_microsecond_timestamps() -> None:
    truth = machine_truth()
    truth.freeze(at(125.5))
    data = json.loads(json.dumps(truth.to_json()))
    assert data["frozen_at"] == "2026-11-25T08:02:05.500000Z"
    last = {"state": "PRODUCING", "start": "2026-11-25T08:01:40.000000Z", "end": None, "reason": ""}
    assert data["states"][-1] == last
    assert [s["state"] for s in data["states"]] == ["IDLE", "PRODUCING", "DOWN", "PRODUCING"]
    assert data["counters_end"] == {"total": 1004, "good": 953, "scrap": 51, "rework": 0}
    assert data["parts"][1] == {"ts": "2026-11-25T08:00:50.000000Z", "quality": "scrap"}
    assert data["summary"]["parts"] == {"total": 4, "good": 3, "scrap": 1, "rework": 0}
    assert data["summary"]["state_seconds"]["DOWN"] == 30.0
    meter = meter_truth().to_json()
    assert meter["registers"][1] == {"ts": "2026-11-25T08:00:10.000000Z", "value": 500.25}
    assert (meter["unit"], meter["carrier"], meter["summary"]["consumption"]) == ("kWh", "electricity", 1.0)


def test_rework_parts_are_neither_good_nor_scrap() -> None:
    truth = GroundTruth("cnc-02")
    truth.record_counters(at(0), total=100, good=90, scrap=6, rework=4)
    for seconds, quality in ((1, PartQuality.GOOD), (2, PartQuality.REWORK), (3, PartQuality.SCRAP)):
        truth.record_part(at(seconds), quality)
    assert truth.parts(at(0), at(10)) == {"total": 3, "good": 1, "scrap": 1, "rework": 1}
    assert truth.counters() == {"total": 103, "good": 91, "scrap": 7, "rework": 5}


def test_a_counter_reset_restarts_the_counters_but_no_part_is_lost() -> None:
    truth = machine_truth()  # parts at 30 (good), 50 (scrap), 70 (good), 120 (good)
    truth.record_reset(at(120.5))
    truth.record_part(at(130), PartQuality.SCRAP)
    truth.record_part(at(140), PartQuality.GOOD)
    assert truth.counters(at(120.4)) == {"total": 1004, "good": 953, "scrap": 51, "rework": 0}
    assert truth.counters(at(120.5)) == {"total": 0, "good": 0, "scrap": 0, "rework": 0}
    assert truth.counters() == {"total": 2, "good": 1, "scrap": 1, "rework": 0}
    # what was produced is untouched by the reset
    assert truth.parts(at(0), at(200)) == {"total": 6, "good": 4, "scrap": 2, "rework": 0}
    assert truth.resets == (at(120.5),)
    assert truth.resets_between(at(0), at(120.5)) == 0
    assert truth.resets_between(at(0), at(121)) == 1


def test_faults_are_recorded_with_their_span_and_may_overlap_across_kinds() -> None:
    truth = machine_truth()
    truth.record_fault_start("clock_jump", at(10), "device clock set back to 2000-01-01")
    truth.record_fault_start("server_restart", at(12))
    with pytest.raises(ValueError, match="another one lasts"):
        truth.record_fault_start("clock_jump", at(13))
    truth.record_fault_end("clock_jump", at(20))
    truth.record_fault_end("server_restart", at(14))
    with pytest.raises(ValueError, match="no clock_jump fault is open"):
        truth.record_fault_end("clock_jump", at(21))
    jump = truth.faults_of("clock_jump")[0]
    assert (jump.start, jump.end) == (at(10), at(20))
    assert jump.covers(at(19.9)) and not jump.covers(at(20))
    assert truth.summary(at(0), at(100))["faults"] == {"clock_jump": 1, "server_restart": 1}
