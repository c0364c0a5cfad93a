"""How a simulated CNC machine or robot behaves: a pure, seeded model that decides its next event.

The model knows nothing about OPC UA, sockets or clocks. Given the time of the event it just
produced (or the start time), ``next_event`` returns when the next event happens and what the
machine shows from then on. The same seed and start time give the same event sequence.

Shape of a working day, in multiples of the ideal cycle time so that a test factory with 0.3 s
cycles goes through every state within seconds while the demo factory (3-6 s cycles) moves at a
believable pace:

* the machine starts IDLE and begins PRODUCING after a short warm-up;
* a cycle lasts ideal cycle time × U(1.0, 1.25); each cycle ends with a part (scrap with p≈0.05);
* after a cycle the machine may stop: DOWN (breakdown), IDLE (starved or blocked), SETUP
  (changeover, every N parts) or, rarely, PLANNED_STOP; each stop ends back in PRODUCING;
* the first stops visit every stop kind once in a seeded order, so even a short run shows every
  canonical state; after that, stops follow the probabilities of the profile.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from core.signals import MachineState

STOP_KINDS: tuple[MachineState, ...] = (
    MachineState.DOWN,
    MachineState.IDLE,
    MachineState.SETUP,
    MachineState.PLANNED_STOP,
)


class PartQuality(StrEnum):
    GOOD = "good"
    SCRAP = "scrap"


@dataclass(frozen=True, slots=True)
class BehaviourProfile:
    """Tunable behaviour; every duration is in multiples of the machine's ideal cycle time."""

    cycle_jitter: tuple[float, float] = (1.0, 1.25)
    scrap_probability: float = 0.05
    setup_every_parts: int = 40
    # Chance, after a cycle, that the machine stops in this state (setups come from setup_every_parts).
    down_probability: float = 0.03
    idle_probability: float = 0.04
    planned_stop_probability: float = 0.005
    warmup_cycles: tuple[float, float] = (0.5, 1.0)
    down_cycles: tuple[float, float] = (2.0, 6.0)
    idle_cycles: tuple[float, float] = (2.0, 5.0)
    setup_cycles: tuple[float, float] = (3.0, 6.0)
    planned_stop_cycles: tuple[float, float] = (4.0, 8.0)
    # Cycles between the stops of the first round, which visits every stop kind once.
    first_round_gap_cycles: tuple[int, int] = (1, 4)
    spindle_rpm: tuple[float, float] = (4000.0, 12000.0)
    initial_parts: tuple[int, int] = (1000, 9999)

    def stop_cycles(self, state: MachineState) -> tuple[float, float]:
        return {
            MachineState.IDLE: self.idle_cycles,
            MachineState.DOWN: self.down_cycles,
            MachineState.SETUP: self.setup_cycles,
            MachineState.PLANNED_STOP: self.planned_stop_cycles,
        }[state]


DEFAULT_PROFILE = BehaviourProfile()


@dataclass(frozen=True, slots=True)
class MachineStatus:
    """Everything the machine shows to the outside world at one instant."""

    state: MachineState
    parts_total: int
    parts_good: int
    parts_scrap: int
    cycle_time_s: float
    spindle_speed_rpm: float


@dataclass(frozen=True, slots=True)
class MachineEvent:
    """What changes at one instant: the status from now on, and the part completed now, if any."""

    status: MachineStatus
    part: PartQuality | None = None


def stable_seed(seed: int, equipment_id: str) -> int:
    """A per-equipment seed that is the same in every process (``hash()`` is salted per process)."""
    digest = hashlib.sha256(f"{seed}:{equipment_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class MachineBehaviour:
    """The seeded state machine of one machine. Not thread-safe; one caller drives it in time order."""

    def __init__(
        self,
        equipment_id: str,
        ideal_cycle_time_s: float,
        seed: int,
        profile: BehaviourProfile = DEFAULT_PROFILE,
    ):
        if ideal_cycle_time_s <= 0:
            raise ValueError(f"{equipment_id}: ideal cycle time must be positive, got {ideal_cycle_time_s}")
        self.equipment_id = equipment_id
        self.ideal_cycle_time_s = ideal_cycle_time_s
        self.profile = profile
        self._rng = random.Random(stable_seed(seed, equipment_id))
        total = self._rng.randint(*profile.initial_parts)
        scrap = round(total * self._rng.uniform(0.02, 0.06))
        self._nominal_rpm = round(self._rng.uniform(*profile.spindle_rpm), -1)
        self._first_round = list(STOP_KINDS)
        self._rng.shuffle(self._first_round)
        self._cycles_to_next_stop = self._draw_first_round_gap()
        self._parts_since_setup = 0
        self._last_time: datetime | None = None
        self.status = MachineStatus(
            state=MachineState.IDLE,
            parts_total=total,
            parts_good=total - scrap,
            parts_scrap=scrap,
            cycle_time_s=0.0,
            spindle_speed_rpm=0.0,
        )

    def next_event(self, now: datetime) -> tuple[datetime, MachineEvent]:
        """The next event after ``now`` (the start, or the time of the event returned last)."""
        if self._last_time is not None and now < self._last_time:
            raise ValueError(f"{self.equipment_id}: time went backwards ({now} < {self._last_time})")
        if self.status.state == MachineState.PRODUCING:
            at, event = self._end_cycle(now)
        else:
            at, event = self._resume(now)
        self._last_time = at
        self.status = event.status
        return at, event

    def _resume(self, now: datetime) -> tuple[datetime, MachineEvent]:
        """Leave the warm-up or a stop and start the next cycle."""
        if self._last_time is None:
            span = self.profile.warmup_cycles
        else:
            span = self.profile.stop_cycles(self.status.state)
            if self.status.state == MachineState.SETUP:
                self._parts_since_setup = 0
        at = self._after(now, self._rng.uniform(*span) * self.ideal_cycle_time_s)
        status = replace(self.status, state=MachineState.PRODUCING, spindle_speed_rpm=self._spindle_rpm())
        return at, MachineEvent(status)

    def _end_cycle(self, now: datetime) -> tuple[datetime, MachineEvent]:
        at = self._after(now, self._rng.uniform(*self.profile.cycle_jitter) * self.ideal_cycle_time_s)
        part = PartQuality.SCRAP if self._rng.random() < self.profile.scrap_probability else PartQuality.GOOD
        self._parts_since_setup += 1
        next_state = self._state_after_cycle()
        status = MachineStatus(
            state=next_state,
            parts_total=self.status.parts_total + 1,
            parts_good=self.status.parts_good + (part == PartQuality.GOOD),
            parts_scrap=self.status.parts_scrap + (part == PartQuality.SCRAP),
            # Reported from the timestamps themselves, so it matches them to the microsecond.
            cycle_time_s=(at - now).total_seconds(),
            spindle_speed_rpm=self._spindle_rpm() if next_state == MachineState.PRODUCING else 0.0,
        )
        return at, MachineEvent(status, part)

    def _state_after_cycle(self) -> MachineState:
        if self._first_round:
            self._cycles_to_next_stop -= 1
            if self._cycles_to_next_stop > 0:
                return MachineState.PRODUCING
            self._cycles_to_next_stop = self._draw_first_round_gap()
            return self._first_round.pop()
        if self._parts_since_setup >= self.profile.setup_every_parts:
            return MachineState.SETUP
        draw = self._rng.random()
        for state, p in (
            (MachineState.DOWN, self.profile.down_probability),
            (MachineState.IDLE, self.profile.idle_probability),
            (MachineState.PLANNED_STOP, self.profile.planned_stop_probability),
        ):
            if draw < p:
                return state
            draw -= p
        return MachineState.PRODUCING

    def _draw_first_round_gap(self) -> int:
        return self._rng.randint(*self.profile.first_round_gap_cycles)

    def _spindle_rpm(self) -> float:
        return round(self._nominal_rpm * self._rng.uniform(0.98, 1.02), 1)

    @staticmethod
    def _after(now: datetime, seconds: float) -> datetime:
        # At least one microsecond later: two events never share a timestamp.
        return now + max(timedelta(seconds=seconds), timedelta(microseconds=1))
