"""The KPI engine: raw machine-state, part-counter and energy series -> hourly base quantities -> KPIs.

One read per measurement for all the equipment involved, plus one ``last_before`` per measurement
for the state and counter values just before the window. Everything after the reads is pure.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from core.assets import AssetModel, Equipment, EquipmentType
from core.signals import PART_COUNTERS, MachineState, Measurement, Quality, Signal
from core.store import FieldValue, Store
from core.wire import datetime_to_ns, ns_to_datetime
from kpi.base import (
    HOUR_NS,
    NS_PER_S,
    BaseQuantities,
    counter_increments_by_hour,
    hour_windows,
    span_by_hour,
    state_durations_by_hour,
    total,
)
from kpi.formulas import KPIS, Basis
from kpi.report import (
    BaseQuantitiesModel,
    EquipmentKpis,
    Evidence,
    HourlyKpis,
    KpiReport,
    KpiValue,
    MeterEvidence,
    SeriesEvidence,
)
from kpi.timemodel import TimeElement, time_element

DEFAULT_MIN_COVERAGE = 0.5

# Which BaseQuantities field each part counter feeds.
_COUNTER_FIELD = {
    Signal.PARTS_TOTAL: "parts_produced",
    Signal.PARTS_GOOD: "parts_good",
    Signal.PARTS_SCRAP: "parts_scrap",
    Signal.PARTS_REWORK: "parts_rework",
}
_ELEMENT_FIELD = {
    TimeElement.APT: "production_time_s",
    TimeElement.AUST: "setup_time_s",
    TimeElement.ADET: "down_time_s",
    TimeElement.ADOT: "idle_time_s",
    TimeElement.PDOT: "planned_downtime_s",
}

SeriesKey = tuple[str, str]  # (equipment, signal)


@dataclass(frozen=True, slots=True)
class HourlyBase:
    """Base quantities of one equipment in one UTC hour, clipped to the requested window."""

    equipment: str
    hour: datetime  # start of the UTC hour; the key the worker stores it under
    start: datetime
    end: datetime
    base: BaseQuantities


@dataclass(slots=True)
class _Series:
    """Readings of one measurement, per (equipment, signal), sorted by time; and the reading before."""

    measurement: Measurement
    readings: dict[SeriesKey, list[tuple[int, FieldValue]]] = field(default_factory=lambda: defaultdict(list))
    prior: dict[SeriesKey, tuple[int, FieldValue]] = field(default_factory=dict)


@dataclass(slots=True)
class _Computed:
    hourly: list[HourlyBase]
    series: list[SeriesEvidence]


def _usable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that can be counted: a value present, and not flagged bad by the device or the edge."""
    if frame.empty or "equipment" not in frame.columns:
        return frame.iloc[0:0]
    frame = frame[frame["value"].notna()]
    if "quality" in frame.columns:
        frame = frame[frame["quality"] != Quality.BAD]
    return frame


def _rows(frame: pd.DataFrame) -> Iterable[tuple[SeriesKey, int, FieldValue]]:
    frame = _usable(frame)
    if frame.empty:
        return []
    times = pd.DatetimeIndex(frame["time"]).as_unit("ns").asi8
    return (
        ((str(eq), str(sig)), int(t), value)
        for eq, sig, t, value in zip(frame["equipment"], frame["signal"], times, frame["value"], strict=True)
    )


def _to_state(value: FieldValue) -> MachineState | None:
    # A value that is not a canonical state cannot be placed in the time model: treat it as no data.
    return MachineState(value) if isinstance(value, str) and value in MachineState.__members__ else None


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must carry a timezone (naive datetimes are ambiguous)")
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")


class KpiEngine:
    """Computes hourly base quantities and KPI reports from the raw series in a store."""

    def __init__(
        self,
        store: Store,
        assets: AssetModel,
        lookback: timedelta,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
    ):
        self.store = store
        self.assets = assets
        self.lookback = lookback
        self.min_coverage = min_coverage

    async def hourly(self, equipment_ids: Sequence[str], start: datetime, end: datetime) -> list[HourlyBase]:
        """Base quantities per equipment per UTC hour of [start, end), partial hours clipped."""
        _check_window(start, end)
        equipment = [self.assets.equipment(e) for e in _unique(equipment_ids)]
        return (await self._compute(equipment, start, end)).hourly

    async def report(self, scope_id: str, start: datetime, end: datetime) -> KpiReport:
        """KPIs of a site, workshop, line or equipment over [start, end), with their evidence.

        Raises KeyError for an unknown scope and ValueError for a window that is not one.
        """
        _check_window(start, end)
        scope = self.assets.scope(scope_id)
        production = [eq for eq in scope if eq.produces_parts]
        scope_meters = self._meters_of(scope)
        energy_equipment = self._covered_by(scope_meters)
        involved = _unique([*(eq.id for eq in scope), *scope_meters, *energy_equipment])
        computed = await self._compute([self.assets.equipment(e) for e in involved], start, end)

        per_hour: dict[datetime, dict[str, BaseQuantities]] = defaultdict(dict)
        windows: dict[datetime, tuple[datetime, datetime]] = {}
        for row in computed.hourly:
            per_hour[row.hour][row.equipment] = row.base
            windows[row.hour] = (row.start, row.end)
        totals = {e: total(hour[e] for hour in per_hour.values()) for e in involved}

        production_ids = [eq.id for eq in production]
        production_total = total(totals[e] for e in production_ids)
        energy_total = total(totals[e] for e in [*scope_meters, *energy_equipment])

        per_equipment = []
        for eq in scope:
            meters = self._meters_of([eq])
            energy_basis = total(totals[e] for e in [*meters, *self._covered_by(meters)])
            per_equipment.append(
                EquipmentKpis(
                    equipment=eq.id,
                    type=eq.type.value,
                    base=BaseQuantitiesModel.of(totals[eq.id]),
                    kpis=self._kpis(totals[eq.id] if eq.produces_parts else BaseQuantities.zero(), energy_basis),
                    meters=meters,
                )
            )

        hourly = []
        for hour, bases in per_hour.items():
            hour_production = total(bases[e] for e in production_ids)
            hour_energy = total(bases[e] for e in [*scope_meters, *energy_equipment])
            hourly.append(
                HourlyKpis(
                    hour=hour,
                    start=windows[hour][0],
                    end=windows[hour][1],
                    base=BaseQuantitiesModel.of(hour_production),
                    energy_kwh=total(bases[m] for m in scope_meters).energy_kwh,
                    kpis={k.key: k.value for k in self._kpis(hour_production, hour_energy)},
                )
            )

        evidence = Evidence(
            coverage=production_total.coverage,
            energy_coverage=energy_total.coverage,
            min_coverage=self.min_coverage,
            samples=production_total.samples,
            counter_resets=production_total.counter_resets,
            meters=[self._meter_evidence(m, totals[m]) for m in scope_meters],
            energy_equipment=energy_equipment,
            series=computed.series,
        )
        return KpiReport(
            scope=scope_id,
            start=start,
            end=end,
            equipment=production_ids,
            base=BaseQuantitiesModel.of(production_total),
            kpis=self._kpis(production_total, energy_total),
            per_equipment=per_equipment,
            hourly=hourly,
            evidence=evidence,
        )

    def _meter_evidence(self, meter_id: str, base: BaseQuantities) -> MeterEvidence:
        carrier = self.assets.equipment(meter_id).carrier
        return MeterEvidence(
            meter=meter_id,
            carrier=carrier.value if carrier else None,
            energy_kwh=base.energy_kwh,
            coverage=base.coverage,
            samples=base.samples,
            counter_resets=base.counter_resets,
            covers=[eq.id for eq in self.assets.covered_by(meter_id)],
        )

    def _meters_of(self, equipment: Iterable[Equipment]) -> list[str]:
        """The meters of a scope: the meters its equipment names, plus meters located inside it."""
        equipment = list(equipment)
        return _unique(
            [
                *(eq.meter for eq in equipment if eq.meter),
                *(eq.id for eq in equipment if eq.type == EquipmentType.METER),
            ]
        )

    def _covered_by(self, meters: Iterable[str]) -> list[str]:
        """Everything those meters cover: their energy is divided by the good parts of all of it."""
        return _unique(eq.id for m in meters for eq in self.assets.covered_by(m))

    def _kpis(self, production: BaseQuantities, energy: BaseQuantities) -> list[KpiValue]:
        values = []
        for kpi in KPIS:
            basis = energy if kpi.basis is Basis.ENERGY else production
            coverage = basis.coverage
            enough = coverage is not None and coverage >= self.min_coverage
            values.append(
                KpiValue(
                    key=kpi.key,
                    label_en=kpi.label_en,
                    label_zh=kpi.label_zh,
                    unit=kpi.unit,
                    direction=kpi.direction,
                    basis=kpi.basis,
                    value=kpi.compute(basis) if enough else None,
                    status="ok" if enough else "insufficient_evidence",
                    coverage=coverage,
                )
            )
        return values

    async def _read(
        self,
        measurement: Measurement,
        equipment: Sequence[str],
        signals: Sequence[str],
        start: datetime,
        end: datetime,
    ) -> _Series:
        series = _Series(measurement)
        if not equipment:
            return series
        tags = {"equipment": list(equipment), "signal": list(signals)}
        window, before = await asyncio.gather(
            self.store.read(measurement, start, end, tags),
            self.store.last_before(measurement, start, self.lookback, tags),
        )
        for key, time_ns, value in _rows(window):
            series.readings[key].append((time_ns, value))
        for key, time_ns, value in _rows(before):
            series.prior[key] = (time_ns, value)
        return series

    async def _compute(self, equipment: Sequence[Equipment], start: datetime, end: datetime) -> _Computed:
        producers = [eq.id for eq in equipment if eq.type != EquipmentType.METER]
        meters = [eq.id for eq in equipment if eq.type == EquipmentType.METER]
        states, counters, energy = await asyncio.gather(
            self._read(Measurement.STATE, producers, [Signal.STATE], start, end),
            self._read(Measurement.COUNTER, producers, sorted(PART_COUNTERS), start, end),
            self._read(Measurement.ENERGY, meters, [Signal.ENERGY_KWH], start, end),
        )
        start_ns, end_ns = datetime_to_ns(start), datetime_to_ns(end)
        windows = [
            (
                hour,
                ns_to_datetime(hour),
                ns_to_datetime(seg_start),
                ns_to_datetime(seg_end),
                seg_end - seg_start,
            )
            for hour, seg_start, seg_end in hour_windows(start_ns, end_ns)
        ]
        hourly: list[HourlyBase] = []
        for eq in equipment:
            if eq.type == EquipmentType.METER:
                fields = _meter_hours(eq, energy, start_ns, end_ns)
            else:
                fields = _production_hours(eq, states, counters, start_ns, end_ns)
            for hour, hour_start, seg_start, seg_end, length_ns in windows:
                base = BaseQuantities.from_fields({**fields.get(hour, {}), "expected_s": length_ns / NS_PER_S})
                hourly.append(HourlyBase(eq.id, hour_start, seg_start, seg_end, base))
        return _Computed(hourly, _series_evidence(equipment, (states, counters, energy)))


def _count_by_hour(readings: Iterable[tuple[int, FieldValue]], into: dict[int, dict[str, float]]) -> None:
    for time_ns, _ in readings:
        hour = into[time_ns - time_ns % HOUR_NS]
        hour["samples"] = hour.get("samples", 0) + 1


def _add(into: dict[str, float], name: str, amount: float) -> None:
    into[name] = into.get(name, 0) + amount


def _production_hours(
    eq: Equipment, states: _Series, counters: _Series, start_ns: int, end_ns: int
) -> dict[int, dict[str, float]]:
    hours: dict[int, dict[str, float]] = defaultdict(dict)
    key = (eq.id, Signal.STATE.value)
    changes = [(t, _to_state(v)) for t, v in states.readings.get(key, [])]
    prior = states.prior.get(key)
    prior_state = _to_state(prior[1]) if prior else None
    for hour, durations in state_durations_by_hour(changes, prior_state, start_ns, end_ns).items():
        bucket = hours[hour]
        bucket["covered_s"] = sum(durations.values()) / NS_PER_S
        for state, ns in durations.items():
            _add(bucket, _ELEMENT_FIELD[time_element(state)], ns / NS_PER_S)
    _count_by_hour(states.readings.get(key, []), hours)

    for signal, name in _COUNTER_FIELD.items():
        key = (eq.id, signal.value)
        readings = [(t, int(v)) for t, v in counters.readings.get(key, [])]
        before = counters.prior.get(key)
        prior_value = int(before[1]) if before else None
        for hour, (increment, resets) in counter_increments_by_hour(readings, prior_value).items():
            _add(hours[hour], name, increment)
            _add(hours[hour], "counter_resets", resets)
        _count_by_hour(readings, hours)

    # PRU × PQ per hour; equipment without an ideal cycle time contributes no ideal time.
    for bucket in hours.values():
        bucket["ideal_time_s"] = (eq.ideal_cycle_time_s or 0.0) * bucket.get("parts_produced", 0)
    return hours


def _meter_hours(eq: Equipment, energy: _Series, start_ns: int, end_ns: int) -> dict[int, dict[str, float]]:
    hours: dict[int, dict[str, float]] = defaultdict(dict)
    key = (eq.id, Signal.ENERGY_KWH.value)
    readings = [(t, float(v)) for t, v in energy.readings.get(key, [])]
    before = energy.prior.get(key)
    prior_value = float(before[1]) if before else None
    for hour, (increment, resets) in counter_increments_by_hour(readings, prior_value).items():
        _add(hours[hour], "energy_kwh", increment)
        _add(hours[hour], "counter_resets", resets)
    _count_by_hour(readings, hours)
    # A meter's consumption is known from its baseline reading (the one before the window, else the
    # first inside it) up to its last reading; after that it is not yet known.
    if readings:
        known_from = start_ns if before else readings[0][0]
        for hour, ns in span_by_hour(known_from, readings[-1][0], start_ns, end_ns).items():
            hours[hour]["covered_s"] = ns / NS_PER_S
    return hours


def _series_evidence(equipment: Sequence[Equipment], reads: Iterable[_Series]) -> list[SeriesEvidence]:
    order = {eq.id: i for i, eq in enumerate(equipment)}
    evidence = []
    for series in reads:
        for key in sorted(series.readings.keys() | series.prior.keys(), key=lambda k: (order.get(k[0], 0), k[1])):
            prior = series.prior.get(key)
            evidence.append(
                SeriesEvidence(
                    measurement=series.measurement.value,
                    equipment=key[0],
                    signal=key[1],
                    points=len(series.readings.get(key, [])),
                    prior_time=ns_to_datetime(prior[0]) if prior else None,
                )
            )
    return evidence
