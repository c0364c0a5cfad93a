"""Additive base quantities per equipment and hour, and the pure functions that build them.

Ratios do not add up across machines or hours; these quantities do (kpi.md section 3, aggregation
rule). Every KPI is derived from a sum of them at read time, for any scope and any window.

Times are integer nanoseconds while they are being computed (exact) and seconds in BaseQuantities.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, TypeVar

NS_PER_S = 1_000_000_000
HOUR_NS = 3_600 * NS_PER_S

S = TypeVar("S", bound=Hashable)
N = TypeVar("N", int, float)


@dataclass(frozen=True, slots=True)
class BaseQuantities:
    """ISO 22400 base quantities of one equipment (or a sum of several) over one window."""

    production_time_s: float = 0.0  # APT
    setup_time_s: float = 0.0  # AUST
    down_time_s: float = 0.0  # ADET
    idle_time_s: float = 0.0  # ADOT
    planned_downtime_s: float = 0.0  # PDOT
    parts_produced: int = 0  # PQ
    parts_good: int = 0  # GQ
    parts_scrap: int = 0  # SQ
    parts_rework: int = 0  # RQ
    ideal_time_s: float = 0.0  # Σ PRU × PQ
    energy_kwh: float = 0.0
    covered_s: float = 0.0  # seconds with a known state (for meters: with a known counter value)
    expected_s: float = 0.0  # seconds in the window
    samples: int = 0
    counter_resets: int = 0

    @property
    def planned_busy_time_s(self) -> float:
        """PBT = APT + AUST + ADET + ADOT; derived so that it can never disagree with its parts."""
        return self.production_time_s + self.setup_time_s + self.down_time_s + self.idle_time_s

    @property
    def coverage(self) -> float | None:
        """Share of the window with data; None for an empty window."""
        return self.covered_s / self.expected_s if self.expected_s > 0 else None

    def __add__(self, other: BaseQuantities) -> BaseQuantities:
        if not isinstance(other, BaseQuantities):
            return NotImplemented
        return BaseQuantities(*(a + b for a, b in zip(_values(self), _values(other), strict=True)))

    @classmethod
    def zero(cls) -> BaseQuantities:
        return cls()

    def to_fields(self) -> dict[str, float | int]:
        """One store field per quantity (PBT included for readers of the raw rollup).

        Floats stay floats even when whole, because InfluxDB refuses a field whose type changes.
        """
        fields: dict[str, float | int] = {
            name: int(value) if name in _COUNTS else float(value)
            for name, value in zip(_NAMES, _values(self), strict=True)
        }
        fields["planned_busy_time_s"] = float(self.planned_busy_time_s)
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> BaseQuantities:
        """Inverse of ``to_fields``; the derived PBT and unknown keys are ignored."""
        values: dict[str, Any] = {
            name: int(value) if name in _COUNTS else float(value)
            for name, value in fields.items()
            if name in _NAMES and value is not None
        }
        return cls(**values)


_NAMES = tuple(f.name for f in dataclasses.fields(BaseQuantities))
# Quantities that are counts (integers); all others are seconds or kWh (floats).
_COUNTS = frozenset(f.name for f in dataclasses.fields(BaseQuantities) if f.type in ("int", int))
_values = attrgetter(*_NAMES)  # all quantities as a tuple in field order, at C speed


def total(quantities: Iterable[BaseQuantities]) -> BaseQuantities:
    """Sum of any number of base quantities (zero for none)."""
    rows = [_values(q) for q in quantities]
    if not rows:
        return BaseQuantities.zero()
    return BaseQuantities(*(sum(column) for column in zip(*rows, strict=True)))


def state_durations(
    changes: Sequence[tuple[int, S | None]], prior_state: S | None, start_ns: int, end_ns: int
) -> dict[S, int]:
    """Nanoseconds spent in each state within [start_ns, end_ns).

    ``changes`` are (time_ns, state) sorted by time; each state holds until the next change and the
    last one until ``end_ns``. ``prior_state`` (the last state before the window) holds from the
    window start. Before the first known state, and while the state is None, there is no data: that
    time is in no state at all. Changes before the window only update the state it starts in.
    """
    durations: dict[S, int] = {}
    current, since = prior_state, start_ns
    for time_ns, state in changes:
        if time_ns >= end_ns:
            break
        if time_ns > since:
            if current is not None:
                durations[current] = durations.get(current, 0) + time_ns - since
            since = time_ns
        current = state
    if current is not None and end_ns > since:
        durations[current] = durations.get(current, 0) + end_ns - since
    return durations


def _increments(readings: Sequence[tuple[int, N]], prior: N | None) -> Iterator[tuple[int, N, bool]]:
    """(time_ns, increment, is_reset) for every reading that has a predecessor."""
    last = prior
    for time_ns, value in readings:
        if last is not None:
            if value < last:
                # A decrease is a reset (power cycle, overflow, manual reset): the machine counted
                # from zero, so the new reading is the increment. Never a negative increment.
                yield time_ns, value, True
            else:
                yield time_ns, value - last, False
        last = value


def counter_increments(readings: Sequence[tuple[int, N]], prior: N | None) -> tuple[N | int, int]:
    """(total increment, resets) of a cumulative counter over its readings in a window.

    ``prior`` is the last reading before the window; without it the first reading in the window is
    the baseline and contributes nothing.
    """
    increment: N | int = 0
    resets = 0
    for _, step, is_reset in _increments(readings, prior):
        increment += step
        resets += is_reset
    return increment, resets


def hour_windows(start_ns: int, end_ns: int) -> list[tuple[int, int, int]]:
    """(hour_start, segment_start, segment_end) of every UTC hour the window touches, clipped to it."""
    windows = []
    hour = start_ns - start_ns % HOUR_NS
    while hour < end_ns:
        windows.append((hour, max(hour, start_ns), min(hour + HOUR_NS, end_ns)))
        hour += HOUR_NS
    return windows


def state_durations_by_hour(
    changes: Sequence[tuple[int, S | None]], prior_state: S | None, start_ns: int, end_ns: int
) -> dict[int, dict[S, int]]:
    """``state_durations`` split into the UTC hours of the window (keyed by hour start)."""
    by_hour: dict[int, dict[S, int]] = {}
    state, first = prior_state, 0
    for hour, seg_start, seg_end in hour_windows(start_ns, end_ns):
        last = first
        while last < len(changes) and changes[last][0] < seg_end:
            last += 1
        by_hour[hour] = state_durations(changes[first:last], state, seg_start, seg_end)
        if last > first:
            state = changes[last - 1][1]
        first = last
    return by_hour


def counter_increments_by_hour(readings: Sequence[tuple[int, N]], prior: N | None) -> dict[int, tuple[N | int, int]]:
    """``counter_increments`` split into UTC hours: an increment belongs to the hour of its reading."""
    by_hour: dict[int, tuple[N | int, int]] = {}
    for time_ns, step, is_reset in _increments(readings, prior):
        hour = time_ns - time_ns % HOUR_NS
        increment, resets = by_hour.get(hour, (0, 0))
        by_hour[hour] = (increment + step, resets + is_reset)
    return by_hour


def span_by_hour(span_start_ns: int, span_end_ns: int, start_ns: int, end_ns: int) -> dict[int, int]:
    """Nanoseconds of [span_start, span_end) inside each UTC hour of the window [start, end)."""
    return {
        hour: max(0, min(seg_end, span_end_ns) - max(seg_start, span_start_ns))
        for hour, seg_start, seg_end in hour_windows(start_ns, end_ns)
    }
