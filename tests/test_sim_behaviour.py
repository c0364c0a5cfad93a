"""The machine behaviour model: deterministic per seed, plausible, and quick to show every state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.signals import MachineState
from simulators.behaviour import (
    DEFAULT_PROFILE,
    MachineBehaviour,
    MachineEvent,
    PartQuality,
    stable_seed,
)

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)


def run(behaviour: MachineBehaviour, events: int) -> list[tuple[datetime, MachineEvent]]:
    out: list[tuple[datetime, MachineEvent]] = []
    now = T0
    for _ in range(events):
        now, event = behaviour.next_event(now)
        out.append((now, event))
    return out


def run_for(behaviour: MachineBehaviour, seconds: float) -> list[tuple[datetime, MachineEvent]]:
    out: list[tuple[datetime, MachineEvent]] = []
    now, end = T0, T0 + timedelta(seconds=seconds)
    while True:
        now, event = behaviour.next_event(now)
        if now >= end:
            return out
        out.append((now, event))


def test_same_seed_and_start_give_the_same_event_sequence() -> None:
    first = run(MachineBehaviour("cnc-01", 0.4, seed=7), 500)
    second = run(MachineBehaviour("cnc-01", 0.4, seed=7), 500)
    assert first == second


def test_seed_and_equipment_id_both_change_the_sequence() -> None:
    base = run(MachineBehaviour("cnc-01", 0.4, seed=7), 100)
    assert run(MachineBehaviour("cnc-01", 0.4, seed=8), 100) != base
    assert run(MachineBehaviour("cnc-02", 0.4, seed=7), 100) != base


def test_stable_seed_does_not_depend_on_the_process_hash_salt() -> None:
    # Pinned: a switch to hash() (salted per process) or another digest changes every run.
    assert stable_seed(1, "cnc-01") == 11369976031231927005
    assert stable_seed(2, "cnc-01") == 10372317389202005276


def test_counters_start_at_a_seeded_non_zero_value_and_add_up() -> None:
    status = MachineBehaviour("robot-01", 0.5, seed=1).status
    assert status.state == MachineState.IDLE
    assert status.parts_total >= 1000
    assert status.parts_good + status.parts_scrap == status.parts_total
    assert status.parts_scrap > 0


@pytest.mark.parametrize("ideal_cycle_time_s", [0.3, 0.5])
@pytest.mark.parametrize("equipment_id", [f"cnc-{n:02d}" for n in range(1, 13)])
def test_a_short_cycle_machine_shows_every_state_within_20_seconds(
    equipment_id: str, ideal_cycle_time_s: float
) -> None:
    events = run_for(MachineBehaviour(equipment_id, ideal_cycle_time_s, seed=1), 20.0)
    assert {event.status.state for _, event in events} == set(MachineState)


def test_every_cycle_ends_with_exactly_one_part_and_a_jittered_cycle_time() -> None:
    ideal = 0.4
    behaviour = MachineBehaviour("cnc-03", ideal, seed=3)
    previous_at, previous = T0, behaviour.status
    for at, event in run(behaviour, 3000):
        status = event.status
        assert at > previous_at
        if previous.state == MachineState.PRODUCING:
            assert event.part is not None
            assert status.parts_total == previous.parts_total + 1
            assert status.parts_scrap == previous.parts_scrap + (event.part == PartQuality.SCRAP)
            assert status.cycle_time_s == (at - previous_at).total_seconds()
            assert ideal <= status.cycle_time_s <= ideal * 1.25 + 1e-6
        else:
            # leaving a stop (or the warm-up) starts a cycle without completing a part
            assert event.part is None
            assert status.state == MachineState.PRODUCING
            assert status.parts_total == previous.parts_total
        assert status.parts_good + status.parts_scrap == status.parts_total
        assert (status.spindle_speed_rpm > 0) == (status.state == MachineState.PRODUCING)
        previous_at, previous = at, status


def test_scrap_rate_is_about_five_percent() -> None:
    parts = [e.part for _, e in run(MachineBehaviour("cnc-04", 0.4, seed=4), 20_000) if e.part is not None]
    scrap_rate = parts.count(PartQuality.SCRAP) / len(parts)
    assert 0.04 < scrap_rate < 0.06


def test_after_the_first_round_a_setup_follows_every_n_parts() -> None:
    events = run(MachineBehaviour("cnc-05", 0.4, seed=5), 5000)
    parts_between: list[int] = []
    count = None  # None until the first setup has ended
    for _, event in events:
        if event.status.state == MachineState.SETUP:
            if count is not None:
                parts_between.append(count + 1)  # the part completed by the cycle that led into setup
            count = None
        elif count is None and event.status.state == MachineState.PRODUCING and event.part is None:
            count = 0
        elif count is not None and event.part is not None:
            count += 1
    assert len(parts_between) >= 10
    assert set(parts_between[1:]) == {DEFAULT_PROFILE.setup_every_parts}


def test_stops_are_mostly_short_and_production_dominates() -> None:
    behaviour = MachineBehaviour("cnc-06", 0.4, seed=6)
    seconds = dict.fromkeys(MachineState, 0.0)
    previous_at, state = T0, behaviour.status.state
    for at, event in run(behaviour, 10_000):
        seconds[state] += (at - previous_at).total_seconds()
        previous_at, state = at, event.status.state
    share = seconds[MachineState.PRODUCING] / sum(seconds.values())
    assert 0.6 < share < 0.9
    assert all(seconds[s] > 0 for s in MachineState)


def test_time_going_backwards_is_refused() -> None:
    behaviour = MachineBehaviour("cnc-01", 0.4, seed=1)
    at, _ = behaviour.next_event(T0)
    with pytest.raises(ValueError, match="backwards"):
        behaviour.next_event(at - timedelta(seconds=1))
