"""What a simulated machine or meter really did, so tests can hold the platform's numbers against it.

A ``GroundTruth`` is written by the simulator at the same instants, with the same timestamps, as
the values it exposes over OPC UA or MQTT. The queries use the platform's window convention
(``start <= t < end``) so a KPI computed by the platform can be compared with them directly.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.signals import MachineState
from core.wire import format_ts
from simulators.behaviour import PartQuality


@dataclass(frozen=True, slots=True)
class StateInterval:
    state: MachineState
    start: datetime
    end: datetime | None  # None: still in this state (until the freeze, if frozen)


@dataclass(frozen=True, slots=True)
class CounterBaseline:
    """The cumulative counters a machine showed when the simulation started."""

    ts: datetime
    total: int
    good: int
    scrap: int


class GroundTruth:
    """The record of one piece of equipment: state intervals, part completions, meter registers."""

    def __init__(self, equipment_id: str):
        self.equipment_id = equipment_id
        self.frozen_at: datetime | None = None
        self.baseline: CounterBaseline | None = None
        self._intervals: list[StateInterval] = []
        self._interval_starts: list[datetime] = []
        self._part_times: list[datetime] = []
        self._part_qualities: list[PartQuality] = []
        self._register_times: list[datetime] = []
        self._register_values: list[float] = []
        self._process_values: dict[str, tuple[datetime, float]] = {}

    # -- recording ---------------------------------------------------------------------------

    def record_state(self, ts: datetime, state: MachineState) -> None:
        """The equipment is in ``state`` from ``ts`` on; the same state again changes nothing."""
        self._check_writable(ts)
        if self._intervals:
            last = self._intervals[-1]
            if ts < last.start:
                raise ValueError(
                    f"{self.equipment_id}: state at {ts} is before the current one ({last.start})"
                )
            if last.state == state:
                return
            self._intervals[-1] = StateInterval(last.state, last.start, ts)
        self._intervals.append(StateInterval(MachineState(state), ts, None))
        self._interval_starts.append(ts)

    def record_counters(self, ts: datetime, total: int, good: int, scrap: int) -> None:
        """The counters shown at the start, before any part was recorded."""
        self._check_writable(ts)
        if self.baseline is not None or self._part_times:
            raise ValueError(f"{self.equipment_id}: the counter baseline is recorded once, before any part")
        self.baseline = CounterBaseline(ts, total, good, scrap)

    def record_part(self, ts: datetime, quality: PartQuality) -> None:
        self._check_writable(ts)
        if self._part_times and ts < self._part_times[-1]:
            raise ValueError(f"{self.equipment_id}: part at {ts} is before the previous one")
        self._part_times.append(ts)
        self._part_qualities.append(PartQuality(quality))

    def record_register(self, ts: datetime, kwh: float) -> None:
        """A meter published its cumulative register ``kwh`` stamped ``ts``."""
        self._check_writable(ts)
        if self._register_times and ts <= self._register_times[-1]:
            raise ValueError(f"{self.equipment_id}: register at {ts} is not after the previous one")
        self._register_times.append(ts)
        self._register_values.append(kwh)

    def record_process_value(self, ts: datetime, name: str, value: float) -> None:
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
    def process_values(self) -> dict[str, tuple[datetime, float]]:
        return dict(self._process_values)

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
        """Parts completed with ``start <= t < end``: keys total, good, scrap."""
        lo = bisect_left(self._part_times, start)
        hi = bisect_left(self._part_times, end)
        scrap = sum(1 for q in self._part_qualities[lo:hi] if q == PartQuality.SCRAP)
        return {"total": hi - lo, "good": hi - lo - scrap, "scrap": scrap}

    def counters(self, at: datetime | None = None) -> dict[str, int]:
        """The cumulative counters shown at ``at`` (parts completed at ``at`` included); default: last."""
        if self.baseline is None:
            raise ValueError(f"{self.equipment_id}: no counter baseline recorded")
        n = len(self._part_times) if at is None else bisect_right(self._part_times, at)
        scrap = sum(1 for q in self._part_qualities[:n] if q == PartQuality.SCRAP)
        return {
            "total": self.baseline.total + n,
            "good": self.baseline.good + n - scrap,
            "scrap": self.baseline.scrap + scrap,
        }

    def register_before(self, ts: datetime) -> float | None:
        """The register of the last publish strictly before ``ts``; None if there was none."""
        i = bisect_left(self._register_times, ts)
        return self._register_values[i - 1] if i > 0 else None

    def energy_kwh(self, start: datetime, end: datetime) -> float:
        """Register at the last publish before ``end`` minus register at the last publish before ``start``.

        What was consumed before the first publish is invisible, exactly as it is to the platform:
        a window that starts before the first publish counts from the first published register,
        and a window that ends before it is 0.
        """
        if not self._register_values:
            return 0.0
        at_end = self.register_before(end)
        if at_end is None:
            return 0.0
        at_start = self.register_before(start)
        return at_end - (self._register_values[0] if at_start is None else at_start)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of everything recorded (timestamps as ISO-8601 UTC with microseconds)."""

        def ts(value: datetime | None) -> str | None:
            return None if value is None else format_ts(value)

        out: dict[str, Any] = {"equipment": self.equipment_id, "frozen_at": ts(self.frozen_at)}
        if self._intervals:
            out["states"] = [
                {"state": i.state.value, "start": ts(i.start), "end": ts(i.end)} for i in self._intervals
            ]
        if self.baseline is not None:
            b = self.baseline
            out["counters_start"] = {"ts": ts(b.ts), "total": b.total, "good": b.good, "scrap": b.scrap}
            out["counters_end"] = self.counters()
            out["parts"] = [
                {"ts": ts(t), "quality": q.value}
                for t, q in zip(self._part_times, self._part_qualities, strict=True)
            ]
        if self._register_times:
            out["registers"] = [
                {"ts": ts(t), "kwh": v}
                for t, v in zip(self._register_times, self._register_values, strict=True)
            ]
        if self._process_values:
            out["process_values"] = {
                name: {"ts": ts(t), "value": v} for name, (t, v) in self._process_values.items()
            }
        return out
