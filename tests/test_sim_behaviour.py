"""The machine behaviour model: deterministic per seed, plausible, and faithful to its scenario."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.assets import EquipmentType
from core.signals import MachineState
from simulators.behaviour import (
    FAULT_GAP_WALL_S,
    FaultKind,
    MachineBehaviour,
    MachineEvent,
    PartQuality,
    StopReason,
    stable_seed,
)
from simulators.scenario import MachineBehaviourSpec, ShiftCalendar, default_behaviour

T0 = datetime(2026, 11, 25, 0, 0, 0, tzinfo=UTC)  # a Wednesday, 08:00 in Shanghai


def spec(**sections: object) -> MachineBehaviourSpec:
    """Defaults with every stop and fault switched off, then ``sections`` laid over them."""
    base: dict[str, object] = {
        "breakdowns": {"enabled": False},
        "minor_stops": {"enabled": False},
        "starvation": {"enabled": False},
        "changeover": {"enabled": False},
        "faults": {"enabled": False},
    }
    return MachineBehaviourSpec.model_validate(base | sections)


def events(behaviour: MachineBehaviour, seconds: float) -> list[MachineEvent]:
    return list(behaviour.events_until(T0 + timedelta(seconds=seconds)))


def test_same_seed_and_start_give_the_same_event_sequence() -> None:
    scenario = spec(breakdowns={"mtbf": 20, "mttr": 3}, faults={"power_cycle": {"mean_interval": 30, "off_for": 2}})
    first = events(MachineBehaviour("cnc-01", 0.4, scenario, 7, start=T0), 300)
    second = events(MachineBehaviour("cnc-01", 0.4, scenario, 7, start=T0), 300)
    assert first == second
    assert len(first) > 500


def test_seed_and_equipment_id_both_change_the_sequence() -> None:
    base = events(MachineBehaviour("cnc-01", 0.4, default_behaviour(0.4), 7, start=T0), 40)
    assert events(MachineBehaviour("cnc-01", 0.4, default_behaviour(0.4), 8, start=T0), 40) != base
    assert events(MachineBehaviour("cnc-02", 0.4, default_behaviour(0.4), 7, start=T0), 40) != base


def test_stable_seed_does_not_depend_on_the_process_hash_salt() -> None:
    # Pinned: a switch to hash() (salted per process) or another digest changes every run.
    assert stable_seed(1, "cnc-01") == 11369976031231927005
    assert stable_seed(2, "cnc-01") == 10372317389202005276


@pytest.mark.parametrize("ideal_cycle_time_s", [0.3, 0.5])
@pytest.mark.parametrize("equipment_id", [f"cnc-{n:02d}" for n in range(1, 9)])
def test_without_a_scenario_a_short_cycle_machine_shows_every_state_within_16_seconds(
    equipment_id: str, ideal_cycle_time_s: float
) -> None:
    behaviour = MachineBehaviour(equipment_id, ideal_cycle_time_s, default_behaviour(ideal_cycle_time_s), 1, start=T0)
    assert {e.status.state for e in events(behaviour, 16.0)} == set(MachineState)


def test_every_cycle_ends_with_one_part_and_a_jittered_cycle_time() -> None:
    ideal = 0.4
    scenario = spec(
        breakdowns={"mtbf": 10, "mttr": 2},
        starvation={"mean_interval": 8, "mean_duration": 1},
        changeover={"batch_parts": [5, 9], "setup_time": 1},
        cycle_time_factor={"low": 1.0, "mode": 1.1, "high": 1.3},
        quality={"scrap_probability": 0.1, "rework_probability": 0.05},
    )
    behaviour = MachineBehaviour("cnc-03", ideal, scenario, 3, start=T0)
    previous = behaviour.status
    cycle_start: datetime | None = None
    for event in events(behaviour, 600):
        status = event.status
        if event.part is not None:
            assert previous.state == MachineState.PRODUCING
            assert status.parts_total == previous.parts_total + 1
            assert status.parts_lifetime == previous.parts_lifetime + 1
            assert status.parts_scrap == previous.parts_scrap + (event.part == PartQuality.SCRAP)
            assert status.parts_rework == previous.parts_rework + (event.part == PartQuality.REWORK)
            assert cycle_start is not None
            assert status.cycle_time_s == (event.at - cycle_start).total_seconds()
            assert ideal * 1.0 - 1e-6 <= status.cycle_time_s <= ideal * 1.3 + 1e-6
        else:
            assert status.parts_total == previous.parts_total
        assert status.parts_good + status.parts_scrap + status.parts_rework == status.parts_total
        assert (status.spindle_speed_rpm > 0) == (status.state == MachineState.PRODUCING)
        # a breakdown abandons the cycle in progress; any other start of production starts one
        cycle_start = event.at if status.state == MachineState.PRODUCING else None
        previous = status


def test_scrap_and_rework_follow_their_probabilities() -> None:
    scenario = spec(quality={"scrap_probability": 0.05, "rework_probability": 0.03})
    parts = [e.part for e in events(MachineBehaviour("cnc-04", 0.4, scenario, 4, start=T0), 8000)]
    made = [p for p in parts if p is not None]
    assert len(made) > 15_000
    assert made.count(PartQuality.SCRAP) / len(made) == pytest.approx(0.05, abs=0.006)
    assert made.count(PartQuality.REWORK) / len(made) == pytest.approx(0.03, abs=0.005)


def test_breakdowns_follow_mtbf_in_producing_time_and_mttr() -> None:
    scenario = spec(breakdowns={"mtbf": 60, "mttr": 10, "min_repair": 0})
    behaviour = MachineBehaviour("cnc-05", 1.0, scenario, 5, start=T0)
    evs = events(behaviour, 40_000)
    producing_between: list[float] = []
    repairs: list[float] = []
    producing, last_at, last_state = 0.0, T0, MachineState.IDLE
    for e in evs:
        span = (e.at - last_at).total_seconds()
        if last_state == MachineState.PRODUCING:
            producing += span
        elif last_state == MachineState.DOWN:
            repairs.append(span)
        if e.status.state == MachineState.DOWN:
            assert e.status.reason == StopReason.BREAKDOWN and e.status.alarm is not None
            assert e.part is None  # the cycle in progress is lost
            producing_between.append(producing)
            producing = 0.0
        last_at, last_state = e.at, e.status.state
    assert len(repairs) > 400
    assert statistics.mean(producing_between) == pytest.approx(60, rel=0.12)
    assert statistics.mean(repairs) == pytest.approx(10, rel=0.12)


def test_changeovers_follow_each_batch_and_cycle_through_the_programs() -> None:
    scenario = spec(changeover={"programs": ["P1", "P2", "P3"], "batch_parts": [4, 6], "setup_time": 2})
    behaviour = MachineBehaviour("cnc-06", 0.5, scenario, 6, start=T0)
    programs: list[str] = []
    batches: list[int] = []
    planned: int | None = None
    made = 0
    for e in events(behaviour, 300):
        if e.part is not None:
            made += 1
        if e.status.state == MachineState.SETUP:
            # the part that completes a batch is the event that starts the setup
            assert e.part is not None and e.status.batch_done == 0
            if planned is not None:
                assert made == planned
                batches.append(made)
            planned, made = e.status.batch_size, 0
            programs.append(e.status.program)
        elif e.part is not None and planned is not None:
            assert e.status.batch_done == made
    assert len(batches) > 20 and set(batches) == {4, 5, 6}
    order = ["P1", "P2", "P3"]
    assert all(order[(order.index(a) + 1) % 3] == b for a, b in itertools.pairwise(programs))


def test_outside_shifts_and_in_breaks_the_machine_is_in_planned_stop() -> None:
    calendar = ShiftCalendar.model_validate(
        {"shifts": [{"name": "day", "days": "mon-fri", "start": "08:00", "end": "12:00",
                     "breaks": [{"start": "10:00", "end": "10:15"}]}]}
    )  # fmt: skip
    tz = ZoneInfo("Asia/Shanghai")
    scenario = spec(breakdowns={"mtbf": 600, "mttr": 60}, changeover={"batch_parts": [50, 80], "setup_time": 120})
    behaviour = MachineBehaviour("cnc-07", 20.0, scenario, 7, start=T0, calendar=calendar, tz=tz)
    end = T0 + timedelta(days=3)
    evs = list(behaviour.events_until(end))
    working = calendar.working_periods(T0, end, tz)
    assert len(working) == 6  # Wed, Thu, Fri mornings, each split by its break

    def is_working(ts: datetime) -> bool:
        return any(a <= ts < b for a, b in working)

    for e in evs:
        assert (e.status.state != MachineState.PLANNED_STOP) == is_working(e.at), e
        if e.part is not None:
            assert is_working(e.at)
    changes = {e.at for e in evs}
    assert all(a in changes or a == T0 for a, _ in working)
    assert all(b in changes for _, b in working)


def test_a_power_cycle_shows_down_and_then_restarts_the_counters() -> None:
    scenario = spec(faults={"power_cycle": {"mean_interval": 20, "off_for": 3}})
    behaviour = MachineBehaviour("cnc-08", 0.5, scenario, 8, start=T0)
    evs = events(behaviour, 200)
    losses = [i for i, e in enumerate(evs) if e.fault == FaultKind.POWER_LOSS]
    assert len(losses) >= 3
    for i in losses:
        off = evs[i]
        back = next((e for e in evs[i + 1 :] if e.fault == FaultKind.COUNTER_RESET), None)
        if back is None:
            continue  # power returns after the end of the run
        assert off.status.state == MachineState.DOWN and not off.status.powered
        assert off.status.alarm is not None and off.status.alarm.text == "Power failure"
        assert (back.at - off.at).total_seconds() == pytest.approx(3, abs=1e-5)
        assert back.status.parts_total == back.status.parts_good == 0
        assert back.status.parts_lifetime == off.status.parts_lifetime
        assert back.status.powered_on_at == back.at
        assert all(e.part is None for e in evs[i + 1 : evs.index(back)])


def test_a_clock_jump_lasts_its_time_and_faults_never_overlap() -> None:
    scenario = spec(
        faults={
            "power_cycle": {"mean_interval": 15, "off_for": 2},
            "clock_jump": {"mean_interval": 15, "lasts": 4},
            "server_restart": {"mean_interval": 15, "down_for": 1.5},
        }
    )
    behaviour = MachineBehaviour("robot-01", 0.5, scenario, 9, start=T0, kind=EquipmentType.ROBOT)
    evs = events(behaviour, 600)
    spans: list[tuple[datetime, datetime]] = []
    for i, e in enumerate(evs):
        if e.fault == FaultKind.CLOCK_JUMP:
            assert e.status.clock_jump is not None and e.status.clock_jump.jump_to.year == 2000
            end = next(x for x in evs[i:] if x.fault == FaultKind.CLOCK_RESYNC)
            assert (end.at - e.at).total_seconds() == pytest.approx(4, abs=1e-5)
            assert all(x.status.clock_jump == e.status.clock_jump for x in evs[i : evs.index(end)])
            assert end.status.clock_jump is None
            spans.append((e.at, end.at))
        elif e.fault == FaultKind.POWER_LOSS:
            spans.append((e.at, next(x for x in evs[i:] if x.fault == FaultKind.COUNTER_RESET).at))
        elif e.fault == FaultKind.SERVER_RESTART:
            assert e.restart_for_s == 1.5
            spans.append((e.at, e.at + timedelta(seconds=1.5)))
    kinds = {e.fault for e in evs if e.fault}
    assert kinds == set(FaultKind)
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert (start - end).total_seconds() >= FAULT_GAP_WALL_S - 1e-6


def test_switching_faults_off_leaves_a_machine_without_faults() -> None:
    scenario = spec(faults={"enabled": False, "power_cycle": {"mean_interval": 1}})
    assert not [e for e in events(MachineBehaviour("cnc-09", 0.5, scenario, 1, start=T0), 100) if e.fault]


def test_events_until_keeps_the_first_event_past_the_end_for_the_next_call() -> None:
    behaviour = MachineBehaviour("cnc-10", 0.4, default_behaviour(0.4), 2, start=T0)
    first = list(behaviour.events_until(T0 + timedelta(seconds=5)))
    second = list(behaviour.events_until(T0 + timedelta(seconds=10)))
    again = MachineBehaviour("cnc-10", 0.4, default_behaviour(0.4), 2, start=T0)
    assert first + second == list(again.events_until(T0 + timedelta(seconds=10)))
    assert all(a.at < b.at for a, b in zip(first + second, (first + second)[1:], strict=False))
