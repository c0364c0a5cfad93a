"""History generator: months of plausible factory data written straight into the store, quickly.

``HistoryGenerator(scenario)`` turns a scenario (``simulators.scenario``) into one local day after
another for every machine and meter of its asset model (``simulators.history_model``), in the very
measurements, tags and fields that ingest writes (``simulators.history_lines``). Days before the
scenario's assessment period use the baseline behaviour; from the assessment start on every
machine behaves as ``MachineBehaviourSpec.improved(improvements)``; days between the two periods
ramp from one to the other. As the live edge re-sends unchanged values, every machine's state and
part counters are also written every ``report_interval_s`` of the equipment (asset model) from
local midnight, and a meter's register at least that often, so the KPI engine never reads a gap
where the edge would have been reporting.

``write_history(generator, store)`` writes the days:

* into InfluxDB as line protocol built in bulk, posted in ``batch_points`` batches with
  ``concurrency`` requests in flight (``InfluxStore.write_line_protocol``);
* into any other store (SQLite) through ``Store.write``.

Determinism and resuming: the same scenario, seed and options give byte-identical points (every
machine-day draws from its own random stream, seeded by seed, equipment and date), so a rerun
overwrites points with themselves. Once every point of a day is acknowledged, a marker point goes
to the measurement ``history_progress`` (tags ``site`` and ``generator``, a fingerprint of
everything that shapes the data; field ``value``: the day's point count). A rerun with the same
fingerprint skips the marked days; it still simulates them, without writing, because counters and
registers carry over from day to day.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TextIO

import numpy as np

from core.assets import EnergyCarrier, EquipmentType
from core.errors import ConfigError, StoreUnavailable
from core.signals import Signal
from core.store import Point, Store
from core.stores.influx import InfluxStore
from core.wire import ns_to_datetime
from simulators.history_lines import Chunk, Series, chunks_to_lines, chunks_to_points
from simulators.history_model import (
    NS_PER_S,
    PLANNED_STOP,
    PRODUCING,
    STATES,
    MachineCarry,
    MachineDay,
    MachineParams,
    MeterDay,
    MeterParams,
    day_bounds,
    expect,
    simulate_machine_day,
    simulate_meter_day,
    working_windows,
)
from simulators.meter import placeholder_signal
from simulators.scenario import (
    REGISTER_PLACEHOLDER,
    FactoryScenario,
    HistorySpec,
    Improvements,
    MachineBehaviourSpec,
)

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # bump when the same inputs would give different points (2: refresh readings)
PROGRESS_MEASUREMENT = "history_progress"
DEFAULT_BATCH_POINTS = 5000
DEFAULT_CONCURRENCY = 2
COUNTER_SIGNALS = (Signal.PARTS_TOTAL, Signal.PARTS_GOOD, Signal.PARTS_SCRAP, Signal.PARTS_REWORK)
# Process values of the live machines (simulators.edgeconfig.MACHINE_NODES), by the edge's names.
CYCLE_TIME = "cycle_time_s"
SPINDLE_SPEED = "spindle_speed_rpm"


def meter_signals(carrier: EnergyCarrier) -> tuple[str, str]:
    """(register, rate) signals of a meter, named as the edge maps the live meter's payload."""
    register = placeholder_signal(carrier, REGISTER_PLACEHOLDER[carrier])
    rate = placeholder_signal(carrier, "power_kw" if carrier == EnergyCarrier.ELECTRICITY else "flow_m3_h")
    assert register is not None and rate is not None
    return register, rate


# Waits before each retry of a batch the store could not take (InfluxDB restarting, overloaded).
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True, slots=True)
class HistoryOptions:
    """How much to write; part of the fingerprint except the batching."""

    counter_interval_s: float | None = None  # None: a counter point at every change
    process_values: bool = True  # cycle time per part, spindle speed per state change, meter power
    meter_interval_s: float | None = None  # None: the scenario's history.meter_interval (60 s)
    batch_points: int = DEFAULT_BATCH_POINTS
    concurrency: int = DEFAULT_CONCURRENCY
    retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S

    def __post_init__(self) -> None:
        if self.counter_interval_s is not None and self.counter_interval_s <= 0:
            raise ValueError("counter_interval_s must be positive (or None for every change)")
        if self.meter_interval_s is not None and self.meter_interval_s <= 0:
            raise ValueError("meter_interval_s must be positive")
        if self.batch_points < 1 or self.concurrency < 1:
            raise ValueError("batch_points and concurrency must be at least 1")


def _seed_of(*parts: object) -> int:
    """A 128-bit seed that is the same in every process (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:16], "big")


@dataclass(frozen=True, slots=True)
class GeneratedDay:
    """One local day of the whole factory."""

    day: date
    start_ns: int
    end_ns: int
    share: float  # how much of the improvements applies (0 baseline, 1 assessment)
    chunks: list[Chunk]

    @property
    def points(self) -> int:
        return sum(len(c) for c in self.chunks)


@dataclass(frozen=True, slots=True)
class _Machine:
    id: str
    ideal_cycle_time_s: float
    state: Series
    counters: tuple[Series, ...]
    cycle_time: Series | None
    spindle: Series | None
    nominal_rpm: float
    report_interval_ns: int  # state and counters are re-sent at least this often, as the edge would


@dataclass(frozen=True, slots=True)
class _Meter:
    id: str
    carrier: EnergyCarrier
    register: Series
    rate: Series | None
    machines: tuple[str, ...]
    flows: Mapping[str, float]
    base_load: float
    interval_ns: int  # the meter interval, or the meter's report interval if that is shorter


class HistoryGenerator:
    """Deterministic days of a scenario's factory, from ``start`` for ``days`` local days."""

    def __init__(
        self,
        scenario: FactoryScenario,
        *,
        start: date | None = None,
        days: int | None = None,
        history: HistorySpec | None = None,
        seed: int | None = None,
        options: HistoryOptions | None = None,
    ):
        self.scenario = scenario
        self.history = history if history is not None else scenario.spec.history
        self.seed = scenario.seed if seed is None else seed
        self.options = options or HistoryOptions()
        if start is None:
            if self.history is None:
                raise ConfigError(scenario.source, "no history section: give a start date", field="history")
            start = self.history.baseline.start
        if days is None:
            if self.history is None:
                raise ConfigError(scenario.source, "no history section: give a number of days", field="history")
            days = (self.history.assessment.end - start).days
        if days < 1:
            raise ValueError(f"nothing to generate: {days} days from {start}")
        self.start = start
        self.day_count = days
        self.tz = scenario.timezone
        meter_interval = self.options.meter_interval_s or (self.history.meter_interval if self.history else 60.0)
        self.meter_interval_ns = round(meter_interval * NS_PER_S)
        interval = self.options.counter_interval_s
        self.counter_interval_ns = None if interval is None else round(interval * NS_PER_S)
        assets = scenario.assets
        self.site = scenario.site.id

        process = self.options.process_values
        self._machines: list[_Machine] = []
        for machine_id in scenario.machine_ids():
            eq = assets.equipment(machine_id)
            placement = assets.placement(machine_id)
            assert eq.ideal_cycle_time_s is not None
            low, high = scenario.behaviour(machine_id).spindle_rpm
            has_spindle = process and eq.type == EquipmentType.CNC and high > 0
            self._machines.append(
                _Machine(
                    id=machine_id,
                    ideal_cycle_time_s=eq.ideal_cycle_time_s,
                    state=Series.of(placement, Signal.STATE),
                    counters=tuple(Series.of(placement, s) for s in COUNTER_SIGNALS),
                    cycle_time=Series.of(placement, CYCLE_TIME) if process else None,
                    spindle=Series.of(placement, SPINDLE_SPEED) if has_spindle else None,
                    nominal_rpm=round(
                        np.random.default_rng(_seed_of(self.seed, machine_id, "spindle")).uniform(low, high), -1
                    ),
                    report_interval_ns=round(eq.report_interval_s * NS_PER_S),
                )
            )
        self._meters: list[_Meter] = []
        for meter_id in scenario.meter_ids():
            resolved = scenario.meter(meter_id)
            placement = assets.placement(meter_id)
            carrier = resolved.carrier
            register, rate = meter_signals(carrier)
            self._meters.append(
                _Meter(
                    id=meter_id,
                    carrier=carrier,
                    register=Series.of(placement, register),
                    rate=Series.of(placement, rate) if process else None,
                    machines=resolved.machines,
                    flows=resolved.machine_flow_m3_h,
                    base_load=resolved.base_load,
                    interval_ns=min(
                        self.meter_interval_ns, round(assets.equipment(meter_id).report_interval_s * NS_PER_S)
                    ),
                )
            )
        self._initial_registers = {m.id: self._initial_register(m.id) for m in self._meters}
        self._machine_params: dict[float, dict[str, MachineParams]] = {}
        self._meter_params: dict[float, dict[str, MeterParams]] = {}
        self.fingerprint = self._fingerprint()

    # -- what to generate ------------------------------------------------------------------------

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.day_count)]

    @property
    def improvements(self) -> Improvements:
        return self.history.improvements if self.history else Improvements()

    def share(self, day: date) -> float:
        """0 in the baseline, 1 from the assessment start, a linear ramp in a gap between them."""
        if self.history is None:
            return 0.0
        ramp_from, ramp_to = self.history.baseline.end, self.history.assessment.start
        if day >= ramp_to:
            return 1.0
        if day < ramp_from:
            return 0.0
        return ((day - ramp_from).days + 1) / ((ramp_to - ramp_from).days + 1)

    def behaviour(self, machine_id: str, share: float) -> MachineBehaviourSpec:
        base = self.scenario.behaviour(machine_id)
        return base.improved(self.improvements, share) if share > 0 else base

    def machine_params(self, share: float) -> dict[str, MachineParams]:
        """Every machine's parameters at ``share`` of the improvements (a handful of shares per run)."""
        if share not in self._machine_params:
            self._machine_params[share] = {
                m.id: MachineParams.of(self.behaviour(m.id, share), m.ideal_cycle_time_s) for m in self._machines
            }
        return self._machine_params[share]

    def meter_params(self, share: float) -> dict[str, MeterParams]:
        if share not in self._meter_params:
            self._meter_params[share] = self._meters_at(share)
        return self._meter_params[share]

    def _meters_at(self, share: float) -> dict[str, MeterParams]:
        params = self.machine_params(share)
        out: dict[str, MeterParams] = {}
        for meter in self._meters:
            if meter.carrier == EnergyCarrier.ELECTRICITY:
                rates = {m: params[m].power_kw for m in meter.machines}
            else:
                rates = {
                    m: tuple(meter.flows[m] if s == PRODUCING else 0.0 for s in range(len(STATES)))
                    for m in meter.machines
                }
            out[meter.id] = MeterParams(base_rate=meter.base_load, machine_rates=rates)
        return out

    def _initial_carry(self, machine_id: str) -> MachineCarry:
        behaviour = self.scenario.behaviour(machine_id)
        rng = np.random.default_rng(_seed_of(self.seed, machine_id, "initial"))
        low, high = behaviour.initial_parts
        total = int(rng.integers(low, high + 1))
        scrap = round(total * rng.uniform(0.01, 0.03))
        rework = round(total * rng.uniform(0.005, 0.015))
        batch = int(rng.integers(1, behaviour.changeover.batch_parts[1] + 1))
        return MachineCarry((total, total - scrap - rework, scrap, rework), batch)

    def _initial_register(self, meter_id: str) -> float:
        given = self.scenario.meter(meter_id).initial_register
        if given is not None:
            return given
        return round(float(np.random.default_rng(_seed_of(self.seed, meter_id, "register")).uniform(1e4, 1e5)), 3)

    def _fingerprint(self) -> str:
        """Everything that shapes the points, hashed: a marker only counts for the same inputs."""
        o = self.options
        shape = {
            "version": GENERATOR_VERSION,
            "seed": self.seed,
            "scenario": self.scenario.spec.model_dump(mode="json", exclude={"assets", "history", "seed"}),
            "site": self.scenario.site.model_dump(mode="json"),
            "history": self.history.model_dump(mode="json") if self.history else None,
            "options": [o.counter_interval_s, o.process_values, self.meter_interval_ns],
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]

    # -- generating ------------------------------------------------------------------------------

    def simulate(self) -> Iterator[tuple[date, float, dict[str, MachineDay], dict[str, MeterDay]]]:
        """The model's arrays of every day in order: (day, share, machine-days, meter-days)."""
        carries = {m.id: self._initial_carry(m.id) for m in self._machines}
        registers = dict(self._initial_registers)
        for day in self.days:
            share = self.share(day)
            start_ns, end_ns = day_bounds(day, self.tz)
            windows = working_windows(self.scenario.calendar, day, self.tz)
            params = self.machine_params(share)
            machine_days: dict[str, MachineDay] = {}
            for m in self._machines:
                rng = np.random.default_rng(_seed_of(self.seed, m.id, day.isoformat()))
                machine_days[m.id] = simulate_machine_day(params[m.id], start_ns, end_ns, windows, carries[m.id], rng)
                carries[m.id] = machine_days[m.id].carry_out
            meter_days: dict[str, MeterDay] = {}
            meter_params = self.meter_params(share)
            for meter in self._meters:
                meter_days[meter.id] = simulate_meter_day(
                    meter_params[meter.id], start_ns, end_ns, machine_days, registers[meter.id], meter.interval_ns
                )
                registers[meter.id] = meter_days[meter.id].carry_out
            yield day, share, machine_days, meter_days

    def generate(self, skip: frozenset[date] = frozenset()) -> Iterator[GeneratedDay]:
        """Every day in order; days in ``skip`` are simulated (for the carry) but yield no chunks."""
        for day, share, machine_days, meter_days in self.simulate():
            start_ns, end_ns = day_bounds(day, self.tz)
            chunks = [] if day in skip else self._chunks(day, machine_days, meter_days)
            yield GeneratedDay(day, start_ns, end_ns, share, chunks)

    def _chunks(
        self, day: date, machine_days: Mapping[str, MachineDay], meter_days: Mapping[str, MeterDay]
    ) -> list[Chunk]:
        chunks: list[Chunk] = []
        for m in self._machines:
            md = machine_days[m.id]
            chunks.append(Chunk(m.state, *md.state_samples(m.report_interval_ns)))
            for index, series in enumerate(m.counters):
                times, values = md.counter_samples(index, self.counter_interval_ns, m.report_interval_ns)
                chunks.append(Chunk(series, times, values))
            if m.cycle_time is not None:
                chunks.append(Chunk(m.cycle_time, md.part_times, np.round(md.cycle_ns / NS_PER_S, 3)))
            if m.spindle is not None:
                rng = np.random.default_rng(_seed_of(self.seed, m.id, day.isoformat(), "spindle"))
                jitter = rng.uniform(0.98, 1.02, len(md.state_times))
                rpm = np.where(md.state_codes == PRODUCING, np.round(m.nominal_rpm * jitter, 1), 0.0)
                chunks.append(Chunk(m.spindle, md.state_times, rpm))
        for meter in self._meters:
            mday = meter_days[meter.id]
            chunks.append(Chunk(meter.register, mday.times, mday.register))
            if meter.rate is not None:
                chunks.append(Chunk(meter.rate, mday.times, mday.rate))
        return chunks

    # -- expectations ----------------------------------------------------------------------------

    def expected(self, share: float) -> ExpectedKpis:
        """Plant-wide KPIs the parameters imply at ``share`` (ends of working periods ignored)."""
        params = self.machine_params(share)
        meters = self.meter_params(share)
        per_machine = {m: expect(p) for m, p in params.items()}
        sample = self.days[:28]  # four weeks give the calendar's average working time per day
        working_ns = sum(sum(b - a for a, b in working_windows(self.scenario.calendar, d, self.tz)) for d in sample)
        working_s = working_ns / len(sample) / NS_PER_S
        day_s = 86_400.0
        # Equal planned busy time per machine: parts per machine are inversely proportional to the
        # busy time per part.
        rates = {m: 1.0 / e.busy_s_per_part for m, e in per_machine.items()}
        produced = sum(rates.values())
        good = sum(rates[m] * e.good_share for m, e in per_machine.items())
        ideal_good = sum(rates[m] * e.good_share * e.ideal_s for m, e in per_machine.items())
        energy_kwh = 0.0
        covered_good = 0.0
        for meter in self._meters:
            if meter.carrier != EnergyCarrier.ELECTRICITY:
                continue
            energy_kwh += meters[meter.id].base_rate * day_s / 3600.0
            for m in meter.machines:
                e = per_machine[m]
                energy_kwh += working_s * e.energy_kwh_per_busy_s
                energy_kwh += (day_s - working_s) * params[m].power_kw[PLANNED_STOP] / 3600.0
                covered_good += working_s * rates[m] * e.good_share
        return ExpectedKpis(
            oee=ideal_good / len(per_machine) if per_machine else 0.0,
            defect_rate=1.0 - good / produced if produced else 0.0,
            kwh_per_good_part=energy_kwh / covered_good if covered_good else 0.0,
        )


@dataclass(frozen=True, slots=True)
class ExpectedKpis:
    oee: float
    defect_rate: float
    kwh_per_good_part: float

    def change_to(self, other: ExpectedKpis) -> dict[str, float]:
        """Relative change of each figure from ``self`` to ``other`` (0.1 = +10 %)."""
        return {
            "oee": other.oee / self.oee - 1 if self.oee else 0.0,
            "defect_rate": other.defect_rate / self.defect_rate - 1 if self.defect_rate else 0.0,
            "kwh_per_good_part": (
                other.kwh_per_good_part / self.kwh_per_good_part - 1 if self.kwh_per_good_part else 0.0
            ),
        }


# --- progress ------------------------------------------------------------------------------------


class Progress:
    """A progress line on a terminal (rewritten in place), or a line per 10 % elsewhere."""

    def __init__(self, total_days: int, stream: TextIO | None = None, min_interval_s: float = 0.25):
        self.total_days = total_days
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval_s = min_interval_s
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._last_tenth = -1

    def update(self, days_done: int, points: int, *, final: bool = False) -> None:
        now = time.monotonic()
        elapsed = max(now - self._started, 1e-9)
        rate = points / elapsed
        fraction = days_done / self.total_days if self.total_days else 1.0
        eta = elapsed / fraction - elapsed if fraction > 0 else 0.0
        text = (
            f"history {days_done}/{self.total_days} days  {points:,} points  "
            f"{rate:,.0f} points/s  {'done' if final else f'ETA {eta:,.0f}s'}"
        )
        if self.tty:
            if final or now - self._last_draw >= self.min_interval_s:
                width = 24
                filled = int(width * fraction)
                bar = "#" * filled + "." * (width - filled)
                self.stream.write(f"\r[{bar}] {text}" + ("\n" if final else ""))
                self.stream.flush()
                self._last_draw = now
        else:
            tenth = int(fraction * 10)
            if final or tenth > self._last_tenth:
                self.stream.write(text + "\n")
                self.stream.flush()
                self._last_tenth = tenth


# --- writing -------------------------------------------------------------------------------------


@dataclass(slots=True)
class HistorySummary:
    days: int
    days_written: int
    days_skipped: int
    points: int
    seconds: float
    fingerprint: str
    first_day: date
    last_day: date
    backend: str
    expected: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def points_per_s(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "days": self.days,
            "days_written": self.days_written,
            "days_skipped": self.days_skipped,
            "points": self.points,
            "seconds": round(self.seconds, 3),
            "points_per_s": round(self.points_per_s),
            "fingerprint": self.fingerprint,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "backend": self.backend,
            "expected": self.expected,
        }


def progress_marker(generator: HistoryGenerator, day: GeneratedDay, points: int) -> Point:
    return Point(
        measurement=PROGRESS_MEASUREMENT,
        tags={"site": generator.site, "generator": generator.fingerprint},
        fields={"value": points, "day": day.day.isoformat(), "seed": generator.seed},
        time_ns=day.start_ns,
    )


async def written_days(generator: HistoryGenerator, store: Store) -> frozenset[date]:
    """Days of this generator (same fingerprint) whose every point the store has acknowledged."""
    first = generator.days[0]
    start_ns, _ = day_bounds(first, generator.tz)
    _, end_ns = day_bounds(generator.days[-1], generator.tz)
    frame = await store.read(
        PROGRESS_MEASUREMENT,
        ns_to_datetime(start_ns),
        ns_to_datetime(end_ns),
        {"site": generator.site, "generator": generator.fingerprint},
    )
    if frame.empty or "day" not in frame.columns:
        return frozenset()
    return frozenset(date.fromisoformat(str(d)) for d in frame["day"].dropna())


async def write_history(
    generator: HistoryGenerator,
    store: Store,
    *,
    resume: bool = True,
    progress: Progress | None = None,
) -> HistorySummary:
    """Write every day the store does not already hold (``resume``) and return what was done."""
    started = time.monotonic()
    skip = await written_days(generator, store) if resume else frozenset()
    if skip:
        log.info("skipping %d day(s) already written (generator %s)", len(skip), generator.fingerprint)
    if isinstance(store, InfluxStore):
        writer: _Writer = _LineProtocolWriter(generator, store, progress)
    else:
        writer = _PointWriter(generator, store, progress)
    await writer.run(skip)
    if progress is not None:
        progress.update(generator.day_count, writer.points, final=True)
    baseline, assessment = generator.expected(0.0), generator.expected(1.0)
    return HistorySummary(
        days=generator.day_count,
        days_written=writer.days_written,
        days_skipped=len(skip & set(generator.days)),
        points=writer.points,
        seconds=time.monotonic() - started,
        fingerprint=generator.fingerprint,
        first_day=generator.days[0],
        last_day=generator.days[-1],
        backend=store.backend,
        expected={
            "baseline": {
                "oee": baseline.oee,
                "defect_rate": baseline.defect_rate,
                "kwh_per_good_part": baseline.kwh_per_good_part,
            },
            "assessment": {
                "oee": assessment.oee,
                "defect_rate": assessment.defect_rate,
                "kwh_per_good_part": assessment.kwh_per_good_part,
            },
            "change": baseline.change_to(assessment),
        },
    )


class _Writer(ABC):
    def __init__(self, generator: HistoryGenerator, store: Store, progress: Progress | None):
        self.generator = generator
        self.store = store
        self.progress = progress
        self.points = 0
        self.days_written = 0
        self.days_seen = 0

    @abstractmethod
    async def run(self, skip: frozenset[date]) -> None:
        """Write every day not in ``skip``, each followed by its marker."""

    def _report(self) -> None:
        if self.progress is not None:
            self.progress.update(self.days_seen, self.points)


class _PointWriter(_Writer):
    """Any store, through ``Store.write``: one day at a time, then its marker."""

    async def run(self, skip: frozenset[date]) -> None:
        size = self.generator.options.batch_points
        for day in self.generator.generate(skip):
            self.days_seen += 1
            if day.day not in skip:
                points = chunks_to_points(day.chunks)
                for i in range(0, len(points), size):
                    await self.store.write(points[i : i + size])
                await self.store.write([progress_marker(self.generator, day, len(points))])
                self.points += len(points)
                self.days_written += 1
            self._report()


@dataclass(slots=True)
class _Batch:
    body: bytes
    points: int
    days: list[date]  # the days it holds points of (a batch may straddle midnight)


class _LineProtocolWriter(_Writer):
    """InfluxDB: line protocol in ``batch_points`` batches, ``concurrency`` requests in flight.

    Each day is simulated in a worker thread and encoded on the event loop in slices of at most one
    batch, yielding between them, so the requests in flight are answered and the next one is sent
    while the next slice is built.
    A day's marker is written once the day is fully generated and all its batches are acknowledged.
    """

    def __init__(self, generator: HistoryGenerator, store: InfluxStore, progress: Progress | None):
        super().__init__(generator, store, progress)
        self.influx = store
        self._pending: dict[date, int] = {}  # batches of a day not yet acknowledged
        self._generated: dict[date, GeneratedDay] = {}  # fully cut into batches, not yet marked
        self._day_points: dict[date, int] = {}
        self._unsent: dict[date, int] = {}  # lines of a day generated but not yet cut into a batch
        self._unavailable = False

    async def run(self, skip: frozenset[date]) -> None:
        queue: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=2 * self.generator.options.concurrency)
        try:
            async with asyncio.TaskGroup() as group:
                for n in range(self.generator.options.concurrency):
                    group.create_task(self._send(queue), name=f"history-writer-{n}")
                group.create_task(self._produce(queue, skip), name="history-generator")
        except BaseExceptionGroup as errors:
            # One failure cancels the rest; the caller wants the failure, not the group.
            raise errors.exceptions[0] from None

    async def _produce(self, queue: asyncio.Queue[_Batch | None], skip: frozenset[date]) -> None:
        size = self.generator.options.batch_points
        lines: list[str] = []
        buffered: list[date] = []  # days with lines in ``lines``, oldest first; counts in self._unsent

        async def cut(count: int) -> None:
            days: list[date] = []
            left = count
            while left:
                day = buffered[0]
                take = min(self._unsent[day], left)
                days.append(day)
                left -= take
                self._unsent[day] -= take
                if not self._unsent[day]:
                    buffered.pop(0)
            for day in days:
                self._pending[day] = self._pending.get(day, 0) + 1
            body = "".join(lines[:count]).encode()
            del lines[:count]
            await queue.put(_Batch(body, count, days))

        days = self.generator.generate(skip)
        # A day's simulation (tens of ms of numpy for a plant) runs in a thread, so the event loop
        # stays free to read answers and send the next batch; encoding below yields every slice.
        while (day := await asyncio.to_thread(next, days, None)) is not None:
            self.days_seen += 1
            if day.day not in skip:
                self._unsent[day.day] = 0
                for chunk in day.chunks:
                    # Slices of at most one batch keep the loop free for the writers every few ms.
                    for i in range(0, len(chunk), size):
                        new = chunk.series.lines(chunk.times[i : i + size], chunk.values[i : i + size])
                        lines.extend(new)
                        if not buffered or buffered[-1] != day.day:
                            buffered.append(day.day)
                        self._unsent[day.day] += len(new)
                        while len(lines) >= size:
                            await cut(size)
                        await asyncio.sleep(0)  # let the writers read answers and send the next batch
                self._generated[day.day] = replace(day, chunks=[])
                await self._mark_if_done(day.day, day.points)
            self._report()
        if lines:
            await cut(len(lines))  # the writers mark the days in it once it is acknowledged
        # Normal end only: after a failure the task group cancels the writers anyway.
        for _ in range(self.generator.options.concurrency):
            await queue.put(None)

    async def _send(self, queue: asyncio.Queue[_Batch | None]) -> None:
        while (batch := await queue.get()) is not None:
            await self._post(batch.body)
            self.points += batch.points
            for day in batch.days:
                self._pending[day] -= 1
                await self._mark_if_done(day)

    async def _mark_if_done(self, day: date, points: int | None = None) -> None:
        if points is not None:
            self._day_points[day] = points
        # Done: fully generated, no line of it still waiting to be cut, every batch of it acknowledged.
        if day in self._generated and not self._unsent.get(day) and not self._pending.get(day):
            generated = self._generated.pop(day)
            await self.store.write([progress_marker(self.generator, generated, self._day_points.pop(day))])
            self.days_written += 1

    async def _post(self, body: bytes) -> None:
        delays = self.generator.options.retry_delays_s
        for attempt, delay in enumerate((*delays, None)):
            try:
                await self.influx.write_line_protocol(body)
            except StoreUnavailable as exc:
                if delay is None:
                    raise
                if not self._unavailable:
                    log.warning("InfluxDB unavailable (%s); retrying up to %d times", exc, len(delays))
                    self._unavailable = True
                await asyncio.sleep(delay)
                continue
            if self._unavailable:
                log.info("InfluxDB is back after %d retries", attempt)
                self._unavailable = False
            return


def chunks_of(generator: HistoryGenerator, days: Sequence[date] | None = None) -> Iterator[GeneratedDay]:
    """Generated days (all, or only those in ``days``), e.g. to build line protocol without a store."""
    wanted = set(generator.days if days is None else days)
    skip = frozenset(set(generator.days) - wanted)
    for day in generator.generate(skip):
        if day.day in wanted:
            yield day


def line_protocol(generator: HistoryGenerator, days: Sequence[date] | None = None) -> bytes:
    """All points of the given days as one line-protocol document (for tests and the benchmark)."""
    return "".join(line for day in chunks_of(generator, days) for line in chunks_to_lines(day.chunks)).encode()
