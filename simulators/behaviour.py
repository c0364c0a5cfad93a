"""How a simulated CNC machine or robot behaves: a pure, seeded event model in simulated ("model") time.

The model knows nothing about OPC UA, sockets or clocks. ``MachineBehaviour.next_event()`` returns
the next thing that happens to the machine — a state change, a finished part, a fault — with its
model time. The same scenario, seed and start time give the same event sequence.

What decides the state, in order of precedence:

1. the shift calendar: outside working time (no shift, a break, a holiday) the machine shows
   PLANNED_STOP, whatever else is going on;
2. power: while a power cycle has the machine switched off it shows DOWN; when power returns, the
   counters restart at 0 (the ground truth records the reset; parts are never lost);
3. the production activity: PRODUCING cycles of ideal cycle time x a triangular jitter, each ending
   with a part (good, scrap or rework); breakdowns (producing time to failure ~ Exp(MTBF), repair ~
   Exp(MTTR)) interrupt a cycle; minor stops (short DOWN) and starvation (IDLE) start when a cycle
   ends; a SETUP changes over to the next program after each batch. In ``showcase`` mode the
   first stops visit DOWN, IDLE, SETUP and PLANNED_STOP once each, a few cycles apart and a few
   cycles long, before any random stop, so a short run shows every state.

Planned stops and power loss suspend the activity: its timers stand still and a cycle in progress
is abandoned (no part); a repair or a setup carries on where it stopped.

Faults other than the power cycle do not change what the machine does: the PLC clock jumps back
(``ClockJump``; the exposure layer stamps values with the wrong device time) or the OPC UA server
restarts (``FaultKind.SERVER_RESTART``; the exposure layer goes away for ``restart_for_s`` wall
seconds). At most one fault is active at a time, with a few wall seconds between them, so an
observer can always attribute what it saw to one fault.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from core.assets import EquipmentType
from core.signals import MachineState
from simulators.scenario import MachineBehaviourSpec, ShiftCalendar

# Between two faults of one machine, at least this much wall time passes (reconnects, resyncs).
FAULT_GAP_WALL_S = 3.0
# Working-time spans are computed this far ahead at a time.
_CALENDAR_CHUNK = timedelta(days=14)
_US = 1e-6


class PartQuality(StrEnum):
    GOOD = "good"
    SCRAP = "scrap"
    REWORK = "rework"


class FaultKind(StrEnum):
    POWER_LOSS = "power_loss"  # the machine goes dark
    COUNTER_RESET = "counter_reset"  # power is back; the counters restart at 0
    CLOCK_JUMP = "clock_jump"  # the PLC clock falls back to jump_to
    CLOCK_RESYNC = "clock_resync"  # the PLC clock is set right again
    SERVER_RESTART = "server_restart"  # the OPC UA server goes away for restart_for_s wall seconds


class StopReason(StrEnum):
    """Why the machine is not producing (for alarms and the ground truth); none while producing."""

    NONE = ""
    WARMUP = "warmup"
    BREAKDOWN = "breakdown"
    MINOR_STOP = "minor_stop"
    STARVED = "starved"
    CHANGEOVER = "changeover"
    PLANNED = "planned"  # calendar, or a showcase planned stop
    POWER_OFF = "power_off"


@dataclass(frozen=True, slots=True)
class Alarm:
    code: int
    text: str
    severity: int  # OPC UA event severity 1..1000


@dataclass(frozen=True, slots=True)
class ClockJump:
    """The device clock reads ``jump_to`` at model time ``since`` and runs on from there."""

    since: datetime
    jump_to: datetime


@dataclass(frozen=True, slots=True)
class MachineStatus:
    """Everything the machine shows at one instant. Durations are model seconds."""

    state: MachineState
    reason: StopReason
    program: str
    program_number: int  # 1-based position of the program in the changeover list
    batch_size: int  # parts planned for the current program (RunsPlanned)
    batch_done: int  # parts finished of it (RunsCompleted)
    parts_total: int
    parts_good: int
    parts_scrap: int
    parts_rework: int
    parts_lifetime: int  # never reset: the machine's non-volatile production statistics
    cycle_time_s: float  # the last finished cycle
    spindle_speed_rpm: float  # commanded speed; 0 unless producing
    power_kw: float
    powered: bool
    powered_on_at: datetime
    alarm: Alarm | None = None
    clock_jump: ClockJump | None = None


@dataclass(frozen=True, slots=True)
class MachineEvent:
    """What happens at ``at`` (model time): the status from then on, and the part or fault of the moment."""

    at: datetime
    status: MachineStatus
    part: PartQuality | None = None
    fault: FaultKind | None = None
    restart_for_s: float = 0.0  # SERVER_RESTART only: wall-clock seconds the server stays away


def stable_seed(seed: int, equipment_id: str) -> int:
    """A per-equipment seed that is the same in every process (``hash()`` is salted per process)."""
    digest = hashlib.sha256(f"{seed}:{equipment_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


BREAKDOWN_ALARMS: dict[EquipmentType, tuple[Alarm, ...]] = {
    EquipmentType.CNC: (
        Alarm(2001, "Spindle drive fault", 800),
        Alarm(2002, "Hydraulic pressure low", 700),
        Alarm(2003, "Axis X following error", 800),
        Alarm(2004, "Coolant pump overload", 600),
        Alarm(2005, "Tool breakage detected", 700),
    ),
    EquipmentType.ROBOT: (
        Alarm(4001, "Collision detected", 900),
        Alarm(4002, "Servo amplifier overcurrent A3", 800),
        Alarm(4003, "Welding wire feed fault", 600),
        Alarm(4004, "Encoder communication lost A5", 800),
    ),
}
MINOR_ALARMS: dict[EquipmentType, tuple[Alarm, ...]] = {
    EquipmentType.CNC: (
        Alarm(1001, "Chip conveyor jam", 300),
        Alarm(1002, "Door interlock open", 200),
        Alarm(1003, "Part not clamped", 300),
    ),
    EquipmentType.ROBOT: (
        Alarm(3001, "Gripper vacuum low", 300),
        Alarm(3002, "Part not in fixture", 200),
        Alarm(3003, "Light curtain interrupted", 300),
    ),
}
POWER_ALARM = Alarm(9001, "Power failure", 1000)


class WorkingTime:
    """When the calendar lets the machine work, as model seconds since ``start``; spans computed lazily."""

    def __init__(self, calendar: ShiftCalendar | None, tz: tzinfo, start: datetime):
        self._calendar = calendar if calendar is not None and not calendar.always_working else None
        self._tz = tz
        self._start = start
        self._spans: list[tuple[float, float]] = []
        self._covered_to = 0.0

    def _extend(self, until: float) -> None:
        assert self._calendar is not None
        while self._covered_to <= until:
            lo = self._start + timedelta(seconds=self._covered_to)
            hi = lo + _CALENDAR_CHUNK
            for a, b in self._calendar.working_periods(lo, hi, self._tz):
                sa, sb = (a - self._start).total_seconds(), (b - self._start).total_seconds()
                if self._spans and sa <= self._spans[-1][1]:
                    self._spans[-1] = (self._spans[-1][0], max(self._spans[-1][1], sb))
                else:
                    self._spans.append((sa, sb))
            self._covered_to += _CALENDAR_CHUNK.total_seconds()

    def at(self, s: float) -> tuple[bool, float]:
        """(working at ``s``, the next instant after ``s`` that changes it; inf if never)."""
        if self._calendar is None:
            return True, math.inf
        # The model only moves forward: spans that ended are not needed again.
        while self._spans and self._spans[0][1] <= s:
            self._spans.pop(0)
        inside = False
        for _ in range(210):  # about eight years of 14-day chunks
            if self._covered_to <= s:
                self._extend(s)
                continue
            inside = False
            for a, b in self._spans:
                if b <= s:
                    continue
                if s < a:
                    return False, a
                if b < self._covered_to:
                    return True, b
                inside = True  # the span may go on in the next chunk
                break
            self._extend(self._covered_to)
        return inside, math.inf


class MachineBehaviour:
    """The seeded event model of one machine. Not thread-safe; one caller takes its events in order."""

    def __init__(
        self,
        equipment_id: str,
        ideal_cycle_time_s: float,
        spec: MachineBehaviourSpec,
        seed: int,
        *,
        start: datetime,
        kind: EquipmentType = EquipmentType.CNC,
        calendar: ShiftCalendar | None = None,
        tz: tzinfo | None = None,
        speed: float = 1.0,
    ):
        if ideal_cycle_time_s <= 0:
            raise ValueError(f"{equipment_id}: ideal cycle time must be positive, got {ideal_cycle_time_s}")
        if start.tzinfo is None:
            raise ValueError(f"{equipment_id}: start must be an aware datetime")
        if speed <= 0:
            raise ValueError(f"{equipment_id}: speed must be positive, got {speed}")
        self.equipment_id = equipment_id
        self.ideal_cycle_time_s = ideal_cycle_time_s
        self.spec = spec
        self.start = start
        self.kind = kind if kind in BREAKDOWN_ALARMS else EquipmentType.CNC
        self._speed = speed
        self._rng = random.Random(stable_seed(seed, equipment_id))
        # Faults draw from their own stream, so switching them on or off leaves production alone.
        self._fault_rng = random.Random(stable_seed(seed, f"{equipment_id}/faults"))
        self._calendar = WorkingTime(calendar, tz or UTC, start)

        rng = self._rng
        total = rng.randint(*spec.initial_parts)
        scrap = round(total * rng.uniform(0.02, 0.05))
        rework = round(total * rng.uniform(0.005, 0.02)) if spec.quality.rework_probability > 0 else 0
        self._nominal_rpm = round(rng.uniform(*spec.spindle_rpm), -1)
        programs = spec.changeover.programs
        self._program_index = rng.randrange(len(programs))
        batch = rng.randint(*spec.changeover.batch_parts)

        self._s = 0.0  # model seconds since start of the last event
        self._last_at = start
        self._working, self._work_change = self._calendar.at(0.0)
        self._powered = True
        self._power_back: float = math.inf
        # The activity: what production does while working and powered.
        self._activity = MachineState.IDLE
        self._reason = StopReason.WARMUP
        self._alarm: Alarm | None = None
        self._left = rng.uniform(0.5, 1.0) * ideal_cycle_time_s
        self._cycle_started: datetime | None = None
        self._ttf_breakdown = self._draw_exp(spec.breakdowns.mtbf, spec.breakdowns.enabled)
        self._ttf_minor = self._draw_exp(spec.minor_stops.mean_interval, spec.minor_stops.enabled)
        self._ttf_starve = self._draw_exp(spec.starvation.mean_interval, spec.starvation.enabled)
        self._showcase: list[tuple[MachineState, StopReason]] = []
        if spec.showcase:
            self._showcase = [
                (MachineState.DOWN, StopReason.BREAKDOWN),
                (MachineState.IDLE, StopReason.STARVED),
                (MachineState.SETUP, StopReason.CHANGEOVER),
                (MachineState.PLANNED_STOP, StopReason.PLANNED),
            ]
            rng.shuffle(self._showcase)
        self._showcase_gap = rng.randint(1, 4)
        self._minor_due = False
        self._starve_due = False
        self._pending: MachineEvent | None = None

        # Faults: the next start of each kind (model seconds), and the end of the active one.
        faults = spec.faults
        self._fault_next: dict[FaultKind, float] = {}
        if faults.enabled:
            for kind_, fault in (
                (FaultKind.POWER_LOSS, faults.power_cycle),
                (FaultKind.CLOCK_JUMP, faults.clock_jump),
                (FaultKind.SERVER_RESTART, faults.server_restart),
            ):
                if fault.enabled:
                    self._fault_next[kind_] = self._fault_rng.expovariate(1.0 / fault.mean_interval)
        self._fault_busy_until = -math.inf
        self._clock_resync: float = math.inf
        self._clock_jump: ClockJump | None = None

        self.status = MachineStatus(
            state=self._effective_state(),
            reason=self._effective_reason(),
            program=programs[self._program_index],
            program_number=self._program_index + 1,
            batch_size=batch,
            batch_done=rng.randrange(batch),
            parts_total=total,
            parts_good=total - scrap - rework,
            parts_scrap=scrap,
            parts_rework=rework,
            parts_lifetime=total + rng.randint(0, 5 * total),
            cycle_time_s=0.0,
            spindle_speed_rpm=0.0,
            power_kw=0.0,
            powered=True,
            powered_on_at=start,
        )
        self.status = replace(self.status, power_kw=spec.power_kw.kw(self.status.state))

    # -- public ----------------------------------------------------------------------------------

    def next_event(self) -> MachineEvent:
        """The next event; its time is after the previous event's (by at least a microsecond)."""
        while True:
            event = self._step()
            if event is not None:
                return event

    def events_until(self, end: datetime) -> Iterator[MachineEvent]:
        """Every event before ``end``; the first event at or after ``end`` is kept for the next call."""
        while True:
            if self._pending is None:
                self._pending = self.next_event()
            if self._pending.at >= end:
                return
            event, self._pending = self._pending, None
            yield event

    # -- the engine ------------------------------------------------------------------------------

    @property
    def _active(self) -> bool:
        return self._working and self._powered

    def _effective_state(self) -> MachineState:
        if not self._working:
            return MachineState.PLANNED_STOP
        if not self._powered:
            return MachineState.DOWN
        return self._activity

    def _effective_reason(self) -> StopReason:
        if not self._working:
            return StopReason.PLANNED
        if not self._powered:
            return StopReason.POWER_OFF
        return self._reason

    def _step(self) -> MachineEvent | None:
        # Candidates, as model seconds since start. Order breaks ties: the calendar first.
        candidates: list[tuple[float, str]] = [(self._work_change, "calendar"), (self._power_back, "power_back")]
        if self._active:
            # The showcase round keeps random stops back, so it is over quickly.
            if self._activity == MachineState.PRODUCING and self._ttf_breakdown < self._left and not self._showcase:
                candidates.append((self._s + self._ttf_breakdown, "breakdown"))
            else:
                candidates.append((self._s + self._left, "activity"))
        candidates.append((self._clock_resync, "clock_resync"))
        for kind, due in self._fault_next.items():
            candidates.append((due, kind.value))
        when, what = min(candidates, key=lambda c: c[0])
        if math.isinf(when):
            raise RuntimeError(f"{self.equipment_id}: nothing will ever happen (no working time, no faults)")
        # Events are at least a microsecond apart and on the microsecond grid.
        when = max(round(when, 6), round(self._s + _US, 6))
        elapsed = when - self._s
        if self._active:
            self._left -= elapsed
            if self._activity == MachineState.PRODUCING and not self._showcase:
                self._ttf_breakdown -= elapsed
                self._ttf_minor -= elapsed
                self._ttf_starve -= elapsed
        self._s = when
        at = self.start + timedelta(seconds=when)
        if at <= self._last_at:
            at = self._last_at + timedelta(microseconds=1)
        self._last_at = at

        part: PartQuality | None = None
        fault: FaultKind | None = None
        restart_for = 0.0
        if what == "calendar":
            was_active = self._active
            self._working, self._work_change = self._calendar.at(when)
            self._suspend_or_resume(was_active, at)
        elif what == "power_back":
            was_active = self._active
            self._powered = True
            self._power_back = math.inf
            fault = FaultKind.COUNTER_RESET
            self.status = replace(
                self.status, parts_total=0, parts_good=0, parts_scrap=0, parts_rework=0, powered_on_at=at
            )
            self._suspend_or_resume(was_active, at)
        elif what == "breakdown":
            bd = self.spec.breakdowns
            self._activity, self._reason = MachineState.DOWN, StopReason.BREAKDOWN
            self._left = max(bd.min_repair, self._rng.expovariate(1.0 / bd.mttr))
            self._alarm = self._rng.choice(BREAKDOWN_ALARMS[self.kind])
            self._ttf_breakdown = self._draw_exp(bd.mtbf, bd.enabled)
            self._cycle_started = None
        elif what == "activity":
            part = self._finish_activity(at)
        elif what == "clock_resync":
            self._clock_resync = math.inf
            self._clock_jump = None
            fault = FaultKind.CLOCK_RESYNC
        else:
            fault = FaultKind(what)
            if not self._start_fault(fault, when, at):
                return None
            if fault == FaultKind.SERVER_RESTART:
                restart_for = self.spec.faults.server_restart.down_for
        return self._emit(at, part, fault, restart_for)

    def _suspend_or_resume(self, was_active: bool, at: datetime) -> None:
        if was_active and not self._active and self._activity == MachineState.PRODUCING:
            # A cycle cut off by a shift end or a power loss is abandoned: no part.
            self._cycle_started = None
        elif not was_active and self._active and self._activity == MachineState.PRODUCING:
            self._start_cycle(at)

    def _start_fault(self, fault: FaultKind, when: float, at: datetime) -> bool:
        """Start ``fault`` now, or postpone it past the active one; False if postponed."""
        faults = self.spec.faults
        gap = FAULT_GAP_WALL_S * self._speed
        if when < self._fault_busy_until:
            self._fault_next[fault] = self._fault_busy_until + self._fault_rng.uniform(0.0, gap)
            return False
        if fault == FaultKind.POWER_LOSS:
            cycle = faults.power_cycle
            self._fault_next[fault] = when + self._fault_rng.expovariate(1.0 / cycle.mean_interval)
            was_active = self._active
            self._powered = False
            self._power_back = when + cycle.off_for
            self._fault_busy_until = self._power_back + gap
            self._suspend_or_resume(was_active, at)
        elif fault == FaultKind.CLOCK_JUMP:
            jump = faults.clock_jump
            self._fault_next[fault] = when + self._fault_rng.expovariate(1.0 / jump.mean_interval)
            self._clock_jump = ClockJump(since=at, jump_to=jump.jump_to)
            self._clock_resync = when + jump.lasts
            self._fault_busy_until = self._clock_resync + gap
        else:
            restart = faults.server_restart
            self._fault_next[fault] = when + self._fault_rng.expovariate(1.0 / restart.mean_interval)
            self._fault_busy_until = when + restart.down_for * self._speed + gap
        return True

    def _finish_activity(self, at: datetime) -> PartQuality | None:
        """The activity's timer ran out: a cycle ended, or a stop is over."""
        if self._activity != MachineState.PRODUCING:
            self._alarm = None
            self._start_cycle(at)
            return None
        q = self.spec.quality
        draw = self._rng.random()
        part = (
            PartQuality.SCRAP
            if draw < q.scrap_probability
            else PartQuality.REWORK
            if draw < q.scrap_probability + q.rework_probability
            else PartQuality.GOOD
        )
        s = self.status
        cycle_time = (at - self._cycle_started).total_seconds() if self._cycle_started else s.cycle_time_s
        self.status = replace(
            s,
            parts_total=s.parts_total + 1,
            parts_good=s.parts_good + (part == PartQuality.GOOD),
            parts_scrap=s.parts_scrap + (part == PartQuality.SCRAP),
            parts_rework=s.parts_rework + (part == PartQuality.REWORK),
            parts_lifetime=s.parts_lifetime + 1,
            batch_done=s.batch_done + 1,
            cycle_time_s=cycle_time,
        )
        self._next_after_cycle(at)
        return part

    def _next_after_cycle(self, at: datetime) -> None:
        spec = self.spec
        rng = self._rng
        if self._ttf_minor <= 0:
            self._minor_due = True
            self._ttf_minor = self._draw_exp(spec.minor_stops.mean_interval, spec.minor_stops.enabled)
        if self._ttf_starve <= 0:
            self._starve_due = True
            self._ttf_starve = self._draw_exp(spec.starvation.mean_interval, spec.starvation.enabled)
        showcase: tuple[MachineState, StopReason] | None = None
        if self._showcase:
            self._showcase_gap -= 1
            if self._showcase_gap <= 0:
                showcase = self._showcase.pop()
                self._showcase_gap = rng.randint(1, 4)
        self._cycle_started = None
        if showcase is not None:
            state, reason = showcase
            if reason == StopReason.BREAKDOWN:
                self._alarm = rng.choice(BREAKDOWN_ALARMS[self.kind])
            if reason == StopReason.CHANGEOVER:
                self._changeover(rng.uniform(1.5, 3.0) * self.ideal_cycle_time_s)
            else:
                # Showcase stops last a few cycles, whatever the scenario's durations.
                self._set_stop(state, reason, rng.uniform(1.5, 3.0) * self.ideal_cycle_time_s)
        elif self._showcase:
            self._start_cycle(at)
        elif spec.changeover.enabled and self.status.batch_done >= self.status.batch_size:
            self._changeover()
        elif self._minor_due:
            self._minor_due = False
            self._alarm = rng.choice(MINOR_ALARMS[self.kind])
            stop = rng.expovariate(1 / spec.minor_stops.mean_duration)
            self._set_stop(MachineState.DOWN, StopReason.MINOR_STOP, stop)
        elif self._starve_due:
            self._starve_due = False
            self._set_stop(MachineState.IDLE, StopReason.STARVED, rng.expovariate(1 / spec.starvation.mean_duration))
        else:
            self._start_cycle(at)

    def _changeover(self, setup_s: float | None = None) -> None:
        co = self.spec.changeover
        programs = co.programs
        self._program_index = (self._program_index + 1) % len(programs)
        batch = self._rng.randint(*co.batch_parts)
        self.status = replace(
            self.status,
            program=programs[self._program_index],
            program_number=self._program_index + 1,
            batch_size=batch,
            batch_done=0,
        )
        spread = co.setup_time_spread
        if setup_s is None:
            setup_s = co.setup_time * self._rng.uniform(1 - spread, 1 + spread)
        self._set_stop(MachineState.SETUP, StopReason.CHANGEOVER, setup_s)

    def _set_stop(self, state: MachineState, reason: StopReason, seconds: float) -> None:
        self._activity, self._reason = state, reason
        self._left = max(seconds, _US)

    def _start_cycle(self, at: datetime) -> None:
        f = self.spec.cycle_time_factor
        self._activity, self._reason = MachineState.PRODUCING, StopReason.NONE
        self._left = self.ideal_cycle_time_s * self._rng.triangular(f.low, f.high, f.mode)
        self._cycle_started = at

    def _draw_exp(self, mean: float, enabled: bool) -> float:
        return self._rng.expovariate(1.0 / mean) if enabled else math.inf

    def _emit(
        self, at: datetime, part: PartQuality | None, fault: FaultKind | None, restart_for: float
    ) -> MachineEvent:
        state = self._effective_state()
        producing = state == MachineState.PRODUCING
        alarm = POWER_ALARM if not self._powered else (self._alarm if self._working else None)
        rpm = self.status.spindle_speed_rpm
        if not producing:
            rpm = 0.0
        elif rpm == 0.0 or part is not None:
            rpm = round(self._nominal_rpm * self._rng.uniform(0.98, 1.02), 1)
        self.status = replace(
            self.status,
            state=state,
            reason=self._effective_reason(),
            spindle_speed_rpm=rpm,
            power_kw=self.spec.power_kw.kw(state),
            powered=self._powered,
            alarm=alarm,
            clock_jump=self._clock_jump,
        )
        return MachineEvent(at=at, status=self.status, part=part, fault=fault, restart_for_s=restart_for)
