"""What a simulated machine or meter really did, so tests and users can hold the platform's numbers against it.

A ``GroundTruth`` is written by the simulator at the same instants, with the same timestamps, as the
values it exposes over OPC UA or MQTT (stamp time, see ``simulators.clock``). The queries use the
platform's window convention (``start <= t < end``) so a KPI computed by the platform can be
compared with them directly.

Besides states, parts (good, scrap, rework) and meter registers it records the faults: counter
resets (the parts stay exact: a reset changes what the counters show, not what was produced),
PLC clock jumps (recorded in true time; the device stamped its values with its wrong clock) and
OPC UA server restarts (the server was away; an observer saw nothing in between).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.signals import MachineState
from core.wire import format_ts
from simulators.behaviour import PartQuality

_EPSILON = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class StateInterval:
    state: MachineState
    start: datetime
    end: datetime | None  # None: still in this state (until the freeze, if frozen)
    reason: str = ""  # why not producing: breakdown, minor_stop, starved, changeover, planned, power_off, …


@dataclass(frozen=True, slots=True)
class CounterBaseline:
    """The cumulative counters a machine showed when the simulation started."""

    ts: datetime
    total: int
    good: int
    scrap: int
    rework: int = 0


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A fault in true (stamp) time; ``end`` None while it lasts."""

    kind: str  # simulators.behaviour.FaultKind value: power_loss, clock_jump, server_restart
    start: datetime
    end: datetime | None
    detail: str = ""

    def covers(self, ts: datetime) -> bool:
        return self.start <= ts and (self.end is None or ts < self.end)


class GroundTruth:
    """The record of one piece of equipment: state intervals, parts, resets, faults, meter registers."""

    def __init__(self, equipment_id: str, *, unit: str | None = None, carrier: str | None = None):
        self.equipment_id = equipment_id
        self.unit = unit  # meters: the register's unit (kWh, m3)
        self.carrier = carrier
        self.frozen_at: datetime | None = None
        self.baseline: CounterBaseline | None = None
        self._intervals: list[StateInterval] = []
        self._interval_starts: list[datetime] = []
        self._part_times: list[datetime] = []
        self._part_qualities: list[PartQuality] = []
        self._resets: list[datetime] = []
        self._faults: list[FaultRecord] = []
        self._register_times: list[datetime] = []
        self._register_values: list[float] = []
        self._process_values: dict[str, tuple[datetime, float | str]] = {}

    # -- recording ---------------------------------------------------------------------------

    def record_state(self, ts: datetime, state: MachineState, reason: str = "") -> None:
        """The equipment is in ``state`` from ``ts`` on; the same state again changes nothing."""
        self._check_writable(ts)
        if self._intervals:
            last = self._intervals[-1]
            if ts < last.start:
                raise ValueError(f"{self.equipment_id}: state at {ts} is before the current one ({last.start})")
            if last.state == state:
                return
            self._intervals[-1] = StateInterval(last.state, last.start, ts, last.reason)
        self._intervals.append(StateInterval(MachineState(state), ts, None, reason))
        self._interval_starts.append(ts)

    def record_counters(self, ts: datetime, total: int, good: int, scrap: int, rework: int = 0) -> None:
        """The counters shown at the start, before any part was recorded."""
        self._check_writable(ts)
        if self.baseline is not None or self._part_times:
            raise ValueError(f"{self.equipment_id}: the counter baseline is recorded once, before any part")
        self.baseline = CounterBaseline(ts, total, good, scrap, rework)

    def record_part(self, ts: datetime, quality: PartQuality) -> None:
        self._check_writable(ts)
        if self._part_times and ts < self._part_times[-1]:
            raise ValueError(f"{self.equipment_id}: part at {ts} is before the previous one")
        self._part_times.append(ts)
        self._part_qualities.append(PartQuality(quality))

    def record_reset(self, ts: datetime) -> None:
        """The counters restart at 0 at ``ts`` (a power cycle); parts after it count from there."""
        self._check_writable(ts)
        if (self._resets and ts <= self._resets[-1]) or (self._part_times and ts < self._part_times[-1]):
            raise ValueError(f"{self.equipment_id}: reset at {ts} is out of order")
        self._resets.append(ts)

    def record_fault_start(self, kind: str, ts: datetime, detail: str = "") -> None:
        """A fault of ``kind`` starts; faults of different kinds may overlap, one kind may not."""
        self._check_writable(ts)
        if any(f.kind == kind and f.end is None for f in self._faults):
            raise ValueError(f"{self.equipment_id}: fault {kind} starts while another one lasts")
        self._faults.append(FaultRecord(kind, ts, None, detail))

    def record_fault_end(self, kind: str, ts: datetime) -> None:
        for i in range(len(self._faults) - 1, -1, -1):
            fault = self._faults[i]
            if fault.kind == kind and fault.end is None:
                if ts < fault.start:
                    raise ValueError(f"{self.equipment_id}: {kind} cannot end before it started")
                self._faults[i] = FaultRecord(fault.kind, fault.start, ts, fault.detail)
                return
        raise ValueError(f"{self.equipment_id}: no {kind} fault is open")

    def record_register(self, ts: datetime, value: float) -> None:
        """A meter published its cumulative register ``value`` (kWh or m³) stamped ``ts``."""
        self._check_writable(ts)
        if self._register_times and ts <= self._register_times[-1]:
            raise ValueError(f"{self.equipment_id}: register at {ts} is not after the previous one")
        self._register_times.append(ts)
        self._register_values.append(value)

    def record_process_value(self, ts: datetime, name: str, value: float | str) -> None:
        """Only the last change is kept: process values are for spot checks, not for KPIs."""
        self._check_writable(ts)
        last = self._process_values.get(name)
        if last is None or last[1] != value:
            self._process_values[name] = (ts, value)

    def freeze(self, ts: datetime) -> None:
        """Nothing happens from ``ts`` on; open intervals end there."""
        if self.frozen_at is not None and self.frozen_at != ts:
            raise ValueError(f"{self.equipment_id}: already frozen at {self.frozen_at}")
        self.frozen_at = ts

    def _check_writable(self, ts: datetime) -> None:
        if ts.tzinfo is None:
            raise ValueError(f"{self.equipment_id}: naive timestamp {ts}; the simulator works in UTC")
        if self.frozen_at is not None and ts >= self.frozen_at:
            raise ValueError(f"{self.equipment_id}: frozen at {self.frozen_at}, cannot record at {ts}")

    # -- queries -----------------------------------------------------------------------------

    @property
    def intervals(self) -> tuple[StateInterval, ...]:
        return tuple(self._intervals)

    @property
    def registers(self) -> tuple[tuple[datetime, float], ...]:
        return tuple(zip(self._register_times, self._register_values, strict=True))

    @property
    def resets(self) -> tuple[datetime, ...]:
        return tuple(self._resets)

    @property
    def faults(self) -> tuple[FaultRecord, ...]:
        return tuple(self._faults)

    @property
    def part_log(self) -> tuple[tuple[datetime, PartQuality], ...]:
        return tuple(zip(self._part_times, self._part_qualities, strict=True))

    @property
    def process_values(self) -> dict[str, tuple[datetime, float | str]]:
        return dict(self._process_values)

    def faults_of(self, kind: str) -> list[FaultRecord]:
        return [f for f in self._faults if f.kind == kind]

    def state_at(self, ts: datetime) -> MachineState | None:
        """The state in force at ``ts`` (a change at ``ts`` counts), None before the first one."""
        i = bisect_right(self._interval_starts, ts) - 1
        return self._intervals[i].state if i >= 0 else None

    def state_durations(self, start: datetime, end: datetime) -> dict[str, float]:
        """Seconds spent in each canonical state within ``[start, end)``; every state is a key."""
        out = {state.value: 0.0 for state in MachineState}
        if self.frozen_at is not None:
            end = min(end, self.frozen_at)
        first = max(bisect_right(self._interval_starts, start) - 1, 0)
        for interval in self._intervals[first:]:
            if interval.start >= end:
                break
            lo = max(interval.start, start)
            hi = end if interval.end is None else min(interval.end, end)
            if hi > lo:
                out[interval.state.value] += (hi - lo).total_seconds()
        return out

    def parts(self, start: datetime, end: datetime) -> dict[str, int]:
        """Parts completed with ``start <= t < end``: keys total, good, scrap, rework."""
        lo = bisect_left(self._part_times, start)
        hi = bisect_left(self._part_times, end)
        window = self._part_qualities[lo:hi]
        scrap = window.count(PartQuality.SCRAP)
        rework = window.count(PartQuality.REWORK)
        return {"total": hi - lo, "good": hi - lo - scrap - rework, "scrap": scrap, "rework": rework}

    def counters(self, at: datetime | None = None) -> dict[str, int]:
        """The cumulative counters shown at ``at`` (a part or reset at ``at`` counts); default: the last.

        After a reset the counters show only the parts made since it.
        """
        if self.baseline is None:
            raise ValueError(f"{self.equipment_id}: no counter baseline recorded")
        n_resets = len(self._resets) if at is None else bisect_right(self._resets, at)
        n = len(self._part_times) if at is None else bisect_right(self._part_times, at)
        if n_resets:
            first = bisect_right(self._part_times, self._resets[n_resets - 1])
            base = {"total": 0, "good": 0, "scrap": 0, "rework": 0}
        else:
            first = 0
            b = self.baseline
            base = {"total": b.total, "good": b.good, "scrap": b.scrap, "rework": b.rework}
        window = self._part_qualities[first:n]
        scrap = window.count(PartQuality.SCRAP)
        rework = window.count(PartQuality.REWORK)
        made = n - first
        return {
            "total": base["total"] + made,
            "good": base["good"] + made - scrap - rework,
            "scrap": base["scrap"] + scrap,
            "rework": base["rework"] + rework,
        }

    def resets_between(self, start: datetime, end: datetime) -> int:
        return bisect_left(self._resets, end) - bisect_left(self._resets, start)

    def register_before(self, ts: datetime) -> float | None:
        """The register of the last publish strictly before ``ts``; None if there was none."""
        i = bisect_left(self._register_times, ts)
        return self._register_values[i - 1] if i > 0 else None

    def consumption(self, start: datetime, end: datetime) -> float:
        """Register at the last publish before ``end`` minus register at the last publish before ``start``.

        What was consumed before the first publish is invisible, exactly as it is to the platform:
        a window that starts before the first publish counts from the first published register,
        and a window that ends before it is 0. Unit: the meter's (kWh, m³).
        """
        if not self._register_values:
            return 0.0
        at_end = self.register_before(end)
        if at_end is None:
            return 0.0
        at_start = self.register_before(start)
        return at_end - (self._register_values[0] if at_start is None else at_start)

    def energy_kwh(self, start: datetime, end: datetime) -> float:
        """``consumption`` of an electricity meter (kept under its old name for the platform's tests)."""
        return self.consumption(start, end)

    def summary(self, start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
        """Totals over ``[start, end)`` (default: the whole record): what a user compares a dashboard with."""
        lo = start or (self._interval_starts[0] if self._interval_starts else None)
        lo = lo or (self._register_times[0] if self._register_times else None)
        hi = end or self.frozen_at
        out: dict[str, Any] = {}
        if lo is None:
            return out
        if hi is None:
            hi = max([lo, *self._interval_starts[-1:], *self._register_times[-1:], *self._part_times[-1:]])
        if self._intervals:
            out["state_seconds"] = self.state_durations(lo, hi)
        if self.baseline is not None:
            out["parts"] = self.parts(lo, hi)
            out["counter_resets"] = self.resets_between(lo, hi)
        if self._faults:
            kinds: dict[str, int] = {}
            for f in self._faults:
                if lo <= f.start < hi:
                    kinds[f.kind] = kinds.get(f.kind, 0) + 1
            out["faults"] = kinds
        if self._register_times:
            # Up to and including the last publish (at the freeze instant, if frozen).
            out["consumption"] = self.consumption(lo, max(hi, self._register_times[-1]) + _EPSILON)
            out["unit"] = self.unit
            out["carrier"] = self.carrier
        return out

    def to_json(self, until: datetime | None = None) -> dict[str, Any]:
        """A JSON-ready dict of everything recorded (timestamps as ISO-8601 UTC with microseconds).

        The summary covers the record up to the freeze, or up to ``until`` (e.g. now) if not frozen.
        """

        def ts(value: datetime | None) -> str | None:
            return None if value is None else format_ts(value)

        out: dict[str, Any] = {"equipment": self.equipment_id, "frozen_at": ts(self.frozen_at)}
        out["summary"] = self.summary(end=self.frozen_at or until)
        if self._intervals:
            out["states"] = [
                {"state": i.state.value, "start": ts(i.start), "end": ts(i.end), "reason": i.reason}
                for i in self._intervals
            ]
        if self.baseline is not None:
            b = self.baseline
            out["counters_start"] = {
                "ts": ts(b.ts),
                "total": b.total,
                "good": b.good,
                "scrap": b.scrap,
                "rework": b.rework,
            }
            out["counters_end"] = self.counters()
            out["parts"] = [
                {"ts": ts(t), "quality": q.value} for t, q in zip(self._part_times, self._part_qualities, strict=True)
            ]
            out["resets"] = [ts(t) for t in self._resets]
        if self._faults:
            out["faults"] = [
                {"kind": f.kind, "start": ts(f.start), "end": ts(f.end), "detail": f.detail} for f in self._faults
            ]
        if self._register_times:
            out["carrier"] = self.carrier
            out["unit"] = self.unit
            out["registers"] = [
                {"ts": ts(t), "value": v} for t, v in zip(self._register_times, self._register_values, strict=True)
            ]
        if self._process_values:
            out["process_values"] = {name: {"ts": ts(t), "value": v} for name, (t, v) in self._process_values.items()}
        return out
