"""The history generator's model: one machine-day or meter-day at a time, as numpy arrays (pure).

Nothing here reads a clock, a file or a socket; every random draw comes from the generator it is
given, so the same seed gives the same arrays. Times are exact integer nanoseconds since the epoch
(``int64``) throughout; durations are drawn in seconds and rounded to whole nanoseconds once, so
the state intervals of a day add up to its calendar time exactly.

How a machine spends a day (the scenario's ``MachineBehaviourSpec``, see ``simulators.scenario``):

* Outside the shift calendar's working periods it is in PLANNED_STOP.
* Inside a working period it makes parts back to back; a cycle lasts the ideal cycle time times a
  triangular draw (``cycle_time_factor``). Stops interrupt production after the part in progress:
  breakdowns (DOWN; producing time between them ~ Exp(MTBF), repair ~ Exp(MTTR) but at least
  ``min_repair``), minor stops (DOWN) and starvation (IDLE), both Poisson in producing time with
  exponential durations, power cycles (DOWN for ``off_for``, then the part counters restart at 0)
  and a changeover (SETUP) after every batch of parts. A stop still running when the working period
  closes ends there: the calendar wins.
* Each part is good, scrap or rework with the configured probabilities.
* A power cycle outside the working periods leaves the state alone and only zeroes the counters.

A meter integrates a base load plus, for each machine it serves, a rate that depends on the
machine's state (kW for electricity, m³/h for gas and water). Rates are piecewise constant between
state changes, so the register sampled on a grid is the exact integral.

The scenario's PLC clock jumps and OPC UA server restarts are not modelled: the edge replaces an
implausible device clock by gateway time, and a restart only delays delivery, so neither changes
what ends up in the store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from core.signals import MachineState
from core.wire import datetime_to_ns
from simulators.scenario import MachineBehaviourSpec, ShiftCalendar

NS_PER_S = 1_000_000_000
NS_PER_H = 3_600 * NS_PER_S

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
F64 = npt.NDArray[np.float64]

# State codes inside the arrays are indices into STATES.
STATES: tuple[MachineState, ...] = (
    MachineState.PRODUCING,
    MachineState.IDLE,
    MachineState.SETUP,
    MachineState.DOWN,
    MachineState.PLANNED_STOP,
)
PRODUCING, IDLE, SETUP, DOWN, PLANNED_STOP = range(len(STATES))
# The raw device codes of the shared OPC UA contract (StateCode), which the edge stores as ``raw``.
RAW_STATE_CODE: Mapping[MachineState, int] = {
    MachineState.PRODUCING: 1,
    MachineState.IDLE: 2,
    MachineState.SETUP: 3,
    MachineState.DOWN: 4,
    MachineState.PLANNED_STOP: 5,
}

# Part qualities inside the arrays; counter index 0 is parts_total, 1 + quality the others.
GOOD, SCRAP, REWORK = 0, 1, 2
COUNTERS = 4


# --- parameters --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineParams:
    """A machine's behaviour in one period, flattened to the numbers the model draws from (seconds)."""

    ideal_cycle_time_s: float
    cycle_factor: tuple[float, float, float]  # triangular low, mode, high
    breakdown_rate: float  # per producing second (0: none)
    mttr_s: float
    min_repair_s: float
    minor_stop_rate: float
    minor_stop_s: float
    starvation_rate: float
    starvation_s: float
    changeover: bool
    batch_parts: tuple[int, int]
    setup_s: float
    setup_spread: float
    scrap_probability: float
    rework_probability: float
    power_cycle_rate: float  # per second, inside and outside working periods
    power_off_s: float
    power_kw: tuple[float, ...]  # per state code

    @classmethod
    def of(cls, behaviour: MachineBehaviourSpec, ideal_cycle_time_s: float) -> MachineParams:
        b = behaviour
        cycle = b.cycle_time_factor
        power_cycle = b.faults.power_cycle
        return cls(
            ideal_cycle_time_s=ideal_cycle_time_s,
            cycle_factor=(cycle.low, cycle.mode, cycle.high),
            breakdown_rate=1.0 / b.breakdowns.mtbf if b.breakdowns.enabled else 0.0,
            mttr_s=b.breakdowns.mttr,
            min_repair_s=b.breakdowns.min_repair,
            minor_stop_rate=1.0 / b.minor_stops.mean_interval if b.minor_stops.enabled else 0.0,
            minor_stop_s=b.minor_stops.mean_duration,
            starvation_rate=1.0 / b.starvation.mean_interval if b.starvation.enabled else 0.0,
            starvation_s=b.starvation.mean_duration,
            changeover=b.changeover.enabled,
            batch_parts=b.changeover.batch_parts,
            setup_s=b.changeover.setup_time,
            setup_spread=b.changeover.setup_time_spread,
            scrap_probability=b.quality.scrap_probability,
            rework_probability=b.quality.rework_probability,
            power_cycle_rate=(1.0 / power_cycle.mean_interval if b.faults.enabled and power_cycle.enabled else 0.0),
            power_off_s=power_cycle.off_for,
            power_kw=tuple(b.power_kw.kw(s) for s in STATES),
        )

    @property
    def mean_cycle_s(self) -> float:
        low, mode, high = self.cycle_factor
        return self.ideal_cycle_time_s * (low + mode + high) / 3.0

    @property
    def defect_probability(self) -> float:
        return self.scrap_probability + self.rework_probability


@dataclass(frozen=True, slots=True)
class MeterParams:
    """A meter: base rate plus a rate per state code for each machine it serves (per hour of its unit)."""

    base_rate: float
    machine_rates: Mapping[str, tuple[float, ...]]
    decimals: int = 6


# --- calendar ----------------------------------------------------------------------------------


def day_bounds(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) of a local calendar day in ns (23 or 25 hours across a DST change)."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return datetime_to_ns(start), datetime_to_ns(end)


def working_windows(calendar: ShiftCalendar, day: date, tz: ZoneInfo) -> list[tuple[int, int]]:
    """The calendar's working periods within one local day, in ns, sorted and merged."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return [(datetime_to_ns(a), datetime_to_ns(b)) for a, b in calendar.working_periods(start, end, tz)]


# --- machine-days ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineCarry:
    """What a machine carries from one day to the next."""

    counters: tuple[int, int, int, int]  # total, good, scrap, rework as the controller shows them
    parts_left_in_batch: int


@dataclass(frozen=True, slots=True)
class MachineDay:
    """Everything one machine did on one local day, as arrays sorted by time."""

    day_start: int
    day_end: int
    state_times: I64  # the first element is day_start
    state_codes: I8
    part_times: I64
    part_quality: I8
    cycle_ns: I64  # producing time of each part
    reset_times: I64  # when the counters restart at 0 (after a power cycle)
    carry_in: MachineCarry
    carry_out: MachineCarry

    def state_durations_ns(self) -> I64:
        """Nanoseconds in each state code over the day; they add up to the day's length."""
        ends = np.append(self.state_times[1:], self.day_end)
        return np.bincount(self.state_codes, weights=ends - self.state_times, minlength=len(STATES)).astype(np.int64)

    def parts_by_quality(self) -> I64:
        return np.bincount(self.part_quality, minlength=3).astype(np.int64)

    def _counted(self, index: int) -> I64:
        return self.part_times if index == 0 else self.part_times[self.part_quality == index - 1]

    def counter_at(self, index: int, times: I64) -> I64:
        """Counter ``index`` (0 total, 1 good, 2 scrap, 3 rework) as the controller shows it at ``times``."""
        counted = self._counted(index)
        made = np.searchsorted(counted, times, side="right").astype(np.int64)
        if not len(self.reset_times):
            return made + self.carry_in.counters[index]
        last_reset = np.searchsorted(self.reset_times, times, side="right") - 1
        made_at_reset = np.searchsorted(counted, self.reset_times, side="right").astype(np.int64)
        since_reset = made - made_at_reset[np.maximum(last_reset, 0)]
        return np.where(last_reset >= 0, since_reset, made + self.carry_in.counters[index])

    def refresh_grid(self, refresh_ns: int) -> I64:
        """Every ``refresh_ns`` from the day start: when the edge re-sends a value that did not change."""
        return np.arange(self.day_start, self.day_end, refresh_ns, dtype=np.int64)

    def state_samples(self, refresh_ns: int | None = None) -> tuple[I64, I8]:
        """(times, state codes) of the state: at every change and, with ``refresh_ns``, on the
        refresh grid, so that no two readings are further apart than ``refresh_ns``.
        """
        if refresh_ns is None:
            return self.state_times, self.state_codes
        times = np.union1d(self.state_times, self.refresh_grid(refresh_ns))
        # state_times[0] is the day start, so every time has a state change at or before it.
        return times, self.state_codes[np.searchsorted(self.state_times, times, side="right") - 1]

    def counter_samples(self, index: int, interval_ns: int | None, refresh_ns: int | None = None) -> tuple[I64, I64]:
        """(times, values) of a counter: at the day start, at every change of it (or every
        ``interval_ns`` from the day start), at every reset, so a reset never reads as growth, and,
        with ``refresh_ns``, on the refresh grid.
        """
        if interval_ns is None:
            candidates = [np.array([self.day_start], dtype=np.int64), self._counted(index), self.reset_times]
        else:
            # The reading just before a reset keeps the parts made since the last grid point.
            candidates = [self.refresh_grid(interval_ns), self.reset_times - 1, self.reset_times]
        if refresh_ns is not None and (interval_ns is None or refresh_ns < interval_ns):
            candidates.append(self.refresh_grid(refresh_ns))
        times = np.unique(np.concatenate(candidates))
        return times, self.counter_at(index, times)


def _exponential(rng: np.random.Generator, mean: float, size: int) -> F64:
    return rng.exponential(mean, size) if size else np.zeros(0)


def _to_ns(seconds: F64) -> I64:
    return np.maximum(np.rint(seconds * NS_PER_S), 1).astype(np.int64)


def _poisson_positions(rng: np.random.Generator, rate_per_s: float, span_ns: int) -> I64:
    """Event positions of a Poisson process over [0, span_ns), sorted."""
    if rate_per_s <= 0 or span_ns <= 0:
        return np.zeros(0, dtype=np.int64)
    n = int(rng.poisson(rate_per_s * span_ns / NS_PER_S))
    return np.sort(rng.integers(0, span_ns, n, dtype=np.int64))


@dataclass(slots=True)
class _DayParts:
    state_times: list[I64]
    state_codes: list[I8]
    part_times: list[I64]
    cycles: list[I64]
    resets: list[I64]


def _simulate_window(
    p: MachineParams, start: int, end: int, batch_left: int, rng: np.random.Generator, out: _DayParts
) -> int:
    """Append one working period's states, parts and resets to ``out``; return the batch carry."""
    span = end - start
    low, mode, high = p.cycle_factor
    # Enough cycles to fill the period even if no stop ever came; rarely a second draw.
    n = int(span / (p.ideal_cycle_time_s * low * NS_PER_S)) + 2
    factors = rng.triangular(low, mode, high, n) if high > low else np.full(n, low)
    cycles = _to_ns(factors * p.ideal_cycle_time_s)
    produced = np.cumsum(cycles)
    budget = int(produced[-1])

    # Stops in producing time, each placed after the part in progress when it strikes.
    down_at = _poisson_positions(rng, p.breakdown_rate, budget)
    minor_at = _poisson_positions(rng, p.minor_stop_rate, budget)
    starved_at = _poisson_positions(rng, p.starvation_rate, budget)
    power_at = _poisson_positions(rng, p.power_cycle_rate, budget)
    if p.changeover:
        lo, hi = p.batch_parts
        batches = rng.integers(lo, hi + 1, n // lo + 2)
        batch_ends = np.concatenate([[batch_left], batch_left + np.cumsum(batches)]).astype(np.int64) - 1
    else:
        batch_ends = np.zeros(0, dtype=np.int64)
    setup_slots = batch_ends[batch_ends < n]

    slots = np.concatenate(
        [np.searchsorted(produced, at, side="left") for at in (down_at, minor_at, starved_at, power_at)] + [setup_slots]
    ).astype(np.int64)
    kinds = np.concatenate(
        [
            np.full(len(down_at) + len(minor_at), DOWN, dtype=np.int8),
            np.full(len(starved_at), IDLE, dtype=np.int8),
            np.full(len(power_at), DOWN, dtype=np.int8),
            np.full(len(setup_slots), SETUP, dtype=np.int8),
        ]
    )
    is_power_cycle = np.zeros(len(slots), dtype=bool)
    is_power_cycle[len(slots) - len(setup_slots) - len(power_at) : len(slots) - len(setup_slots)] = True
    durations = np.concatenate(
        [
            _to_ns(np.maximum(_exponential(rng, p.mttr_s, len(down_at)), p.min_repair_s)),
            _to_ns(_exponential(rng, p.minor_stop_s, len(minor_at))),
            _to_ns(_exponential(rng, p.starvation_s, len(starved_at))),
            np.full(len(power_at), max(1, round(p.power_off_s * NS_PER_S)), dtype=np.int64),
            _to_ns(p.setup_s * rng.uniform(1 - p.setup_spread, 1 + p.setup_spread, len(setup_slots))),
        ]
    )
    order = np.lexsort((kinds, slots))
    slots, kinds, durations, is_power_cycle = slots[order], kinds[order], durations[order], is_power_cycle[order]

    # Wall-clock time = period start + producing time so far + every stop before.
    stop_start = start + produced[slots] + (np.cumsum(durations) - durations)
    stop_end = stop_start + durations
    per_slot = np.zeros(n + 1, dtype=np.int64)
    np.add.at(per_slot, slots + 1, durations)
    part_done = start + produced + np.cumsum(per_slot)[:n]

    kept = part_done < end
    out.part_times.append(part_done[kept])
    out.cycles.append(cycles[kept])

    live = stop_start < end
    # A power cycle zeroes the counters when the controller is back (the period end at the latest).
    out.resets.append(np.minimum(stop_end[live & is_power_cycle], end))
    s_start, s_kind, s_end = stop_start[live], kinds[live], stop_end[live]
    times = np.empty(2 * len(s_start) + 1, dtype=np.int64)
    codes = np.empty(2 * len(s_start) + 1, dtype=np.int8)
    times[0], codes[0] = start, PRODUCING
    times[1::2], times[2::2] = s_start, s_end
    codes[1::2], codes[2::2] = s_kind, PRODUCING
    inside = times < end
    out.state_times.append(times[inside])
    out.state_codes.append(codes[inside])

    made = int(kept.sum())
    following = batch_ends[batch_ends >= made]
    return int(following[0] - made + 1) if len(following) else batch_left


def _outside_resets(
    p: MachineParams, day_start: int, day_end: int, windows: Sequence[tuple[int, int]], rng: np.random.Generator
) -> I64:
    """Power cycles while the machine is in PLANNED_STOP: only the counters notice."""
    gaps: list[tuple[int, int]] = []
    cursor = day_start
    for w0, w1 in windows:
        if w0 > cursor:
            gaps.append((cursor, w0))
        cursor = max(cursor, w1)
    if cursor < day_end:
        gaps.append((cursor, day_end))
    lengths = np.array([b - a for a, b in gaps], dtype=np.int64)
    at = _poisson_positions(rng, p.power_cycle_rate, int(lengths.sum()))
    if not len(at):
        return at
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    which = np.searchsorted(offsets, at, side="right") - 1
    starts = np.array([a for a, _ in gaps], dtype=np.int64)
    return starts[which] + (at - offsets[which])


def simulate_machine_day(
    p: MachineParams,
    day_start: int,
    day_end: int,
    windows: Sequence[tuple[int, int]],
    carry: MachineCarry,
    rng: np.random.Generator,
) -> MachineDay:
    """One machine's local day from its parameters, the day's working periods and yesterday's carry."""
    out = _DayParts([], [], [], [], [])
    batch = carry.parts_left_in_batch
    out.state_times.append(np.array([day_start], dtype=np.int64))
    out.state_codes.append(np.array([PLANNED_STOP], dtype=np.int8))
    for w0, w1 in windows:
        batch = _simulate_window(p, w0, w1, batch, rng, out)
        out.state_times.append(np.array([w1], dtype=np.int64))
        out.state_codes.append(np.array([PLANNED_STOP], dtype=np.int8))
    times = np.concatenate(out.state_times)
    codes = np.concatenate(out.state_codes)
    # Of several changes at one instant the last holds; then drop repeats of the same state.
    inside = times < day_end
    times, codes = times[inside], codes[inside]
    last_at_instant = np.append(times[1:] != times[:-1], True)
    times, codes = times[last_at_instant], codes[last_at_instant]
    changed = np.insert(codes[1:] != codes[:-1], 0, True)
    times, codes = times[changed], codes[changed]

    part_times = np.concatenate(out.part_times) if out.part_times else np.zeros(0, dtype=np.int64)
    cycles = np.concatenate(out.cycles) if out.cycles else np.zeros(0, dtype=np.int64)
    quality = rng.choice(
        3, size=len(part_times), p=[1 - p.defect_probability, p.scrap_probability, p.rework_probability]
    ).astype(np.int8)
    resets = np.concatenate([*out.resets, _outside_resets(p, day_start, day_end, windows, rng)])
    # A reset never shares an instant with a part (it would be ambiguous) or leaves the day.
    resets = np.where(np.isin(resets, part_times), resets - 1, resets)
    resets = np.unique(np.clip(resets, day_start + 1, day_end - 1))

    day = MachineDay(
        day_start=day_start,
        day_end=day_end,
        state_times=times,
        state_codes=codes,
        part_times=part_times,
        part_quality=quality,
        cycle_ns=cycles,
        reset_times=resets,
        carry_in=carry,
        carry_out=carry,
    )
    at_end = np.array([day_end], dtype=np.int64)
    total, good, scrap, rework = (int(day.counter_at(i, at_end)[0]) for i in range(COUNTERS))
    return replace(day, carry_out=MachineCarry((total, good, scrap, rework), batch))


# --- meter-days --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeterDay:
    times: I64
    register: F64
    rate: F64  # instantaneous rate (kW, m³/h) at each sample
    carry_out: float  # exact register at the day end


def simulate_meter_day(
    p: MeterParams,
    day_start: int,
    day_end: int,
    machines: Mapping[str, MachineDay],
    register: float,
    interval_ns: int,
) -> MeterDay:
    """The meter's register every ``interval_ns`` from the day start (exact integration)."""
    grid = np.arange(day_start, day_end, interval_ns, dtype=np.int64)
    points = np.append(grid, day_end)
    energy = p.base_rate * ((points - day_start) / NS_PER_H)
    rate = np.full(len(points), p.base_rate)
    for machine_id, rates in p.machine_rates.items():
        day = machines[machine_id]
        per_state = np.asarray(rates, dtype=np.float64)[day.state_codes]
        bounds = np.append(day.state_times, day_end)
        cumulative = np.concatenate([[0.0], np.cumsum(per_state * (np.diff(bounds) / NS_PER_H))])
        idx = np.searchsorted(day.state_times, points, side="right") - 1
        energy = energy + cumulative[idx] + per_state[idx] * ((points - day.state_times[idx]) / NS_PER_H)
        rate = rate + per_state[idx]
    return MeterDay(
        times=grid,
        register=np.round(register + energy[:-1], p.decimals),
        rate=np.round(rate[:-1], 6),
        carry_out=float(register + energy[-1]),
    )


# --- expectations ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expectation:
    """Long-run figures of one machine from its parameters alone (seconds of planned busy time per part)."""

    busy_s_per_part: float
    producing_s: float
    setup_s: float
    down_s: float
    idle_s: float
    ideal_s: float
    good_share: float
    energy_kwh_per_busy_s: float  # machine power while busy, averaged over the states

    @property
    def oee(self) -> float:
        """PRU × GQ / PBT."""
        return self.ideal_s / self.busy_s_per_part * self.good_share


def expect(p: MachineParams) -> Expectation:
    """What a machine does per part on average, ignoring the ends of working periods."""
    c = p.mean_cycle_s
    repair = p.min_repair_s + p.mttr_s * math.exp(-p.min_repair_s / p.mttr_s)  # E[max(min, Exp(mttr))]
    down = c * (p.breakdown_rate * repair + p.minor_stop_rate * p.minor_stop_s + p.power_cycle_rate * p.power_off_s)
    idle = c * p.starvation_rate * p.starvation_s
    setup = p.setup_s / (sum(p.batch_parts) / 2.0) if p.changeover else 0.0
    busy = c + down + idle + setup
    kw = p.power_kw
    energy = (c * kw[PRODUCING] + setup * kw[SETUP] + down * kw[DOWN] + idle * kw[IDLE]) / busy / 3600.0
    return Expectation(
        busy_s_per_part=busy,
        producing_s=c,
        setup_s=setup,
        down_s=down,
        idle_s=idle,
        ideal_s=p.ideal_cycle_time_s,
        good_share=1.0 - p.defect_probability,
        energy_kwh_per_busy_s=energy,
    )
