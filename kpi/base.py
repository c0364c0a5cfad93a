"""Additive base quantities per equipment and hour (built by ``kpi.fold``), and small helpers.

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
    """ISO 22400 base quantities of one equipment (or a sum of several) over one window.

    Every field adds up across equipment and hours; every KPI is a function of sums of them.
    """

    production_time_s: float = 0.0  # APT
    setup_time_s: float = 0.0  # AUST
    down_time_s: float = 0.0  # ADET
    idle_time_s: float = 0.0  # ADOT
    planned_downtime_s: float = 0.0  # PDOT
    parts_produced: int = 0  # PQ
    parts_good: int = 0  # GQ
    parts_scrap: int = 0  # SQ
    parts_rework: int = 0  # RQ
    parts_first_pass: int = 0  # parts good the first time (only where a first-pass counter is reported)
    ideal_time_s: float = 0.0  # Σ PRU × PQ
    # Consumption per carrier, named after the meter's register signal (core.assets.REGISTER_SIGNAL).
    energy_kwh: float = 0.0  # electricity
    gas_m3: float = 0.0
    water_m3: float = 0.0
    heat_mj: float = 0.0
    steam_kg: float = 0.0
    compressed_air_m3: float = 0.0
    diesel_kg: float = 0.0
    gasoline_kg: float = 0.0
    covered_s: float = 0.0  # seconds with a known state (for meters: with a known register)
    counter_covered_s: float = 0.0  # seconds in which the total and good part counters were both known
    first_pass_covered_s: float = 0.0  # seconds in which the first-pass counter was known
    expected_s: float = 0.0  # seconds in the window
    samples: int = 0  # usable readings
    received_samples: float = 0.0  # report intervals in which each expected signal reported (upload rate)
    expected_samples: float = 0.0  # report intervals in the window × expected signals
    counter_resets: int = 0  # reset events (counters dropping together within seconds are one)
    rollovers: int = 0  # meter registers that wrapped at their configured width
    excluded_steps: int = 0  # counter increments beyond what the ideal cycle time allows, left out
    failures: int = 0  # entries into DOWN (for MTBF and MTTR)

    @property
    def planned_busy_time_s(self) -> float:
        """PBT = APT + AUST + ADET + ADOT; derived so that it can never disagree with its parts."""
        return self.production_time_s + self.setup_time_s + self.down_time_s + self.idle_time_s

    @property
    def coverage(self) -> float | None:
        """Share of the window with data; None for an empty window."""
        return self.covered_s / self.expected_s if self.expected_s > 0 else None

    @property
    def counter_coverage(self) -> float | None:
        """Share of the window in which the part counters were known; None for an empty window."""
        return self.counter_covered_s / self.expected_s if self.expected_s > 0 else None

    @property
    def first_pass_coverage(self) -> float | None:
        return self.first_pass_covered_s / self.expected_s if self.expected_s > 0 else None

    @property
    def offline_s(self) -> float:
        """Time with no known state: a data gap, not a time element."""
        return self.expected_s - self.covered_s

    def __add__(self, other: BaseQuantities) -> BaseQuantities:
        if not isinstance(other, BaseQuantities):
            return NotImplemented
        return BaseQuantities(*(a + b for a, b in zip(_values(self), _values(other), strict=True)))

    @classmethod
    def zero(cls) -> BaseQuantities:
        return cls()

    def to_fields(self) -> dict[str, float | int]:
        """One store field per quantity, and the derived PBT and offline time for readers of the raw rollup.

        Floats stay floats even when whole, because InfluxDB refuses a field whose type changes.
        """
        fields: dict[str, float | int] = {
            name: int(value) if name in _COUNTS else float(value)
            for name, value in zip(_NAMES, _values(self), strict=True)
        }
        fields["planned_busy_time_s"] = float(self.planned_busy_time_s)
        fields["offline_s"] = float(self.offline_s)
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> BaseQuantities:
        """Inverse of ``to_fields``; the derived PBT and unknown keys are ignored, missing ones are zero."""
        get = fields.get
        values: list[Any] = [cast(value) if (value := get(name)) is not None else 0 for name, cast in _CASTS]
        return cls(*values)


_NAMES = tuple(f.name for f in dataclasses.fields(BaseQuantities))
# Quantities that are counts (integers); all others are seconds or kWh (floats).
_COUNTS = frozenset(f.name for f in dataclasses.fields(BaseQuantities) if f.type in ("int", int))
_values = attrgetter(*_NAMES)  # all quantities as a tuple in field order, at C speed
_CASTS: tuple[tuple[str, type[int] | type[float]], ...] = tuple((n, int if n in _COUNTS else float) for n in _NAMES)


def total(quantities: Iterable[BaseQuantities]) -> BaseQuantities:
    """Sum of any number of base quantities (zero for none)."""
    rows = [_values(q) for q in quantities]
    if not rows:
        return BaseQuantities.zero()
    return BaseQuantities(*(sum(column) for column in zip(*rows, strict=True)))


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
