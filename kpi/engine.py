"""The KPI engine: base quantities per equipment and hour -> KPI reports for any scope, window and grouping.

Two read paths give the same numbers because they run the same fold (``kpi.fold``):

* **Rollups** (``kpi.rollup``) for settled hours: whole local months and days from the monthly and
  daily rows where the grouping allows, other whole hours from the hourly rows. A month, day or
  hour whose row is missing or stale falls through to the level below, and finally to raw.
* **Raw series** for the rest: the open hour and the last ``settle_hours`` (late data may still
  arrive), partial hours at the window's edges, and whatever the rollups lack. The raw path reads
  one day at a time and carries each equipment's last readings from hour to hour, so its memory does
  not grow with the window.

Every report says which path gave how much (``read_path``).

A scope may be the whole park of several sites: each site's equipment is read in its own zone (its
local days and months), its energy converted with its own factors (``kpi.energy.EnergyFactors``),
and its pieces grouped by its own calendar; the base quantities are summed and the KPIs computed on
the sums exactly as for one site. Groups with the same local label (``2026-03``) are summed across
sites; an hour's label carries its UTC offset, so hours of sites in different zones stay apart.
"""

from __future__ import annotations

import asyncio
import bisect
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from core.assets import CARRIER_UNIT, REGISTER_SIGNAL, AssetModel, EnergyCarrier, Equipment, EquipmentType
from core.calendar import Bucketing, working_spans_ns
from core.settings import KpiSettings
from core.signals import Measurement
from core.store import BAD_QUALITY, Point, Store
from core.wire import datetime_to_ns, ns_to_datetime
from kpi.base import HOUR_NS, NS_PER_S, BaseQuantities, hour_windows, total
from kpi.digital import DIGITAL_KPIS, CncBasis, DigitalInputs, DigitalKpiDescription
from kpi.energy import (
    ENERGY_KPIS,
    EnergyFactors,
    EnergyKpiDescription,
    EnergySummary,
    SiteFactors,
    combine_summaries,
    energy_summary,
    load_energy_factors,
)
from kpi.fold import Carry, EvidenceRules, Profile, Reading, fold_hour
from kpi.formulas import KPIS, Basis, Direction, Evidence, KpiDescription
from kpi.report import (
    AppliedFactorModel,
    BaseQuantitiesModel,
    EnergyReport,
    EquipmentKpis,
    GroupKpis,
    KpiReport,
    KpiStatus,
    KpiValue,
    MeterEvidence,
    ReadPath,
    SeriesEvidence,
)
from kpi.report import Evidence as EvidenceModel
from kpi.rollup import DAY, MONTH, HourRow, Rollups, Tier, local_spans

DEFAULT_MIN_COVERAGE = 0.5
DEFAULT_SETTLE_HOURS = 2
RAW_CHUNK_NS = 24 * HOUR_NS  # the raw path reads at most one day of points at a time
GROUP_BY = ("hour", "shift", "day", "week", "month")
CONSUMPTION_FIELDS = tuple(REGISTER_SIGNAL.values())

# Every KPI a report can hold, by key: ISO 22400 formulas of base quantities (kpi.formulas), energy
# and carbon intensities of the meters' energy summary (kpi.energy), and digitalisation indicators of
# the asset model and the window's telemetry (kpi.digital). Two of those modules' entries duplicate a
# formula of base quantities and are left out: electricity per good part and the upload rate.
AnyKpi = KpiDescription | EnergyKpiDescription | DigitalKpiDescription
ALL_KPIS: tuple[AnyKpi, ...] = (
    *KPIS,
    *(k for k in ENERGY_KPIS if k.key != "electricity_kwh_per_good_part"),
    *(k for k in DIGITAL_KPIS if k.key != "upload_rate"),
)
ALL_KPI_KEYS: frozenset[str] = frozenset(k.key for k in ALL_KPIS)
# The meters an energy KPI rests on, when not all of the scope's: their coverage is its evidence.
_KPI_CARRIERS: dict[str, frozenset[EnergyCarrier]] = {
    "kwh_per_good_part": frozenset({EnergyCarrier.ELECTRICITY}),
    "kwh_per_part": frozenset({EnergyCarrier.ELECTRICITY}),
    "water_m3_per_part": frozenset({EnergyCarrier.WATER}),
}
_ENERGY_TOTALS = frozenset({"comprehensive_energy_kgce", "co2_kg"})  # not per part: no counters needed


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must carry a timezone (naive datetimes are ambiguous)")
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")


def profile_of(eq: Equipment, rules: EvidenceRules) -> Profile:
    interval_ns = round(eq.report_interval_s * NS_PER_S)
    register = REGISTER_SIGNAL[eq.carrier] if eq.type == EquipmentType.METER and eq.carrier else None
    return Profile(
        equipment=eq.id,
        report_interval_ns=interval_ns,
        stale_ns=round(interval_ns * rules.gap_intervals),
        ideal_cycle_time_s=eq.ideal_cycle_time_s,
        register=register,
        register_max=eq.register_max,
    )


@dataclass(frozen=True, slots=True)
class HourlyBase:
    """Base quantities of one equipment in one UTC hour, clipped to [start_ns, end_ns)."""

    equipment: str
    hour_ns: int
    start_ns: int
    end_ns: int
    base: BaseQuantities
    carry: Carry
    raw_points: int  # raw points of the hour read for it, any quality (late-data detection)

    @property
    def hour(self) -> datetime:
        return ns_to_datetime(self.hour_ns)

    @property
    def start(self) -> datetime:
        return ns_to_datetime(self.start_ns)

    @property
    def end(self) -> datetime:
        return ns_to_datetime(self.end_ns)

    @property
    def whole_hour(self) -> bool:
        return self.start_ns == self.hour_ns and self.end_ns == self.hour_ns + HOUR_NS

    def row(self) -> HourRow:
        return HourRow(self.equipment, self.hour_ns, self.base, self.carry, self.raw_points)


@dataclass(slots=True)
class _SeriesLog:
    """Which raw series a report read, with point counts and the prior found before the window."""

    points: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    prior: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def evidence(self, order: Mapping[str, int]) -> list[SeriesEvidence]:
        keys = sorted(self.points.keys() | self.prior.keys(), key=lambda k: (k[0], order.get(k[1], 0), k[2]))
        return [
            SeriesEvidence(
                measurement=m,
                equipment=eq,
                signal=sig,
                points=self.points.get((m, eq, sig), 0),
                prior_time=ns_to_datetime(self.prior[(m, eq, sig)]) if (m, eq, sig) in self.prior else None,
            )
            for m, eq, sig in keys
        ]


@dataclass(frozen=True, slots=True)
class _Piece:
    """Base quantities of one equipment over one part of the window, and where they came from."""

    equipment: str
    start_ns: int
    end_ns: int
    base: BaseQuantities
    source: str  # "day", "hour" or "raw"


def _usable(point: Point) -> bool:
    return point.fields.get("quality") != BAD_QUALITY and point.fields.get("value") is not None


class KpiEngine:
    """Computes hourly base quantities and KPI reports for the equipment of one asset model."""

    def __init__(
        self,
        store: Store,
        assets: AssetModel,
        *,
        rules: EvidenceRules | None = None,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
        settle_hours: int = DEFAULT_SETTLE_HOURS,
        clock: Callable[[], datetime] = _utc_now,
        factors: EnergyFactors | SiteFactors | None = None,
        cnc_basis: CncBasis = "process",
        networking_threshold: float = 0.9,
    ):
        """``factors``: every site's (EnergyFactors), or one site's (SiteFactors: the other sites have none)."""
        self.store = store
        self.factors: dict[str, SiteFactors] = {}
        if isinstance(factors, EnergyFactors):
            self.factors = {site.id: factors.for_site(site.id) for site in assets.sites}
        elif factors is not None:
            self.factors = {factors.site_id: factors}
        self.cnc_basis: CncBasis = cnc_basis
        self.networking_threshold = networking_threshold
        self.assets = assets
        self.rules = rules or EvidenceRules()
        self.min_coverage = min_coverage
        self.settle_hours = settle_hours
        self.clock = clock
        self.rollups = Rollups(store, assets, self.rules)
        self.profiles = {eq.id: profile_of(eq, self.rules) for eq in assets}

    @classmethod
    def from_settings(
        cls, store: Store, assets: AssetModel, settings: KpiSettings, clock: Callable[[], datetime] = _utc_now
    ) -> KpiEngine:
        rules = EvidenceRules(
            gap_intervals=settings.gap_intervals,
            max_rate_factor=settings.max_rate_factor,
            max_parts_step=settings.max_parts_step,
            max_register_step=settings.max_register_step,
            reset_group_s=settings.reset_group_s,
        )
        factors = None
        if settings.energy_factors is not None:
            factors = load_energy_factors(settings.energy_factors)
        return cls(
            store,
            assets,
            rules=rules,
            min_coverage=settings.min_coverage,
            settle_hours=settings.settle_hours,
            clock=clock,
            factors=factors,
            cnc_basis=settings.cnc_basis,
            networking_threshold=settings.networking_threshold,
        )

    def settled_before_ns(self, now: datetime | None = None) -> int:
        """Hours that end at or before this instant are read from rollups; later ones from raw."""
        now_ns = datetime_to_ns(now or self.clock())
        return now_ns - now_ns % HOUR_NS - self.settle_hours * HOUR_NS

    # --- raw path --------------------------------------------------------------------------------

    async def hourly(self, equipment_ids: Sequence[str], start: datetime, end: datetime) -> list[HourlyBase]:
        """Base quantities per equipment per UTC hour of [start, end) from raw series, partial hours clipped."""
        _check_window(start, end)
        for eq in equipment_ids:
            self.assets.equipment(eq)
        return await self.raw_hours(_unique(equipment_ids), datetime_to_ns(start), datetime_to_ns(end))

    async def raw_hours(
        self,
        equipment_ids: Sequence[str],
        start_ns: int,
        end_ns: int,
        *,
        carries: Mapping[str, Carry] | None = None,
        log: _SeriesLog | None = None,
    ) -> list[HourlyBase]:
        """Fold raw series hour by hour; ``carries`` (e.g. from the rollup of the hour before) save the look-back."""
        if not equipment_ids or end_ns <= start_ns:
            return []
        carry = dict(carries or {})
        missing = [e for e in equipment_ids if e not in carry]
        if missing:
            carry.update(await self._look_back(missing, start_ns, log))
        out: list[HourlyBase] = []
        chunk = start_ns
        while chunk < end_ns:
            chunk_end = min(end_ns, chunk - chunk % HOUR_NS + RAW_CHUNK_NS)
            readings, counts = await self._read_chunk(equipment_ids, chunk, chunk_end, log)
            working = self._working(equipment_ids, chunk, chunk_end)
            for eq in equipment_ids:
                profile = self.profiles[eq]
                mine = readings.get(eq, {})
                shifts = working[eq]
                for hour, seg_start, seg_end in hour_windows(chunk, chunk_end):
                    in_hour = {sig: _between(rs, seg_start, seg_end) for sig, rs in mine.items()}
                    spans = None if shifts is None else _clip(shifts, seg_start, seg_end)
                    result = fold_hour(profile, self.rules, carry.get(eq, Carry()), in_hour, seg_start, seg_end, spans)
                    carry[eq] = result.carry
                    base = BaseQuantities.from_fields(result.fields)
                    out.append(HourlyBase(eq, hour, seg_start, seg_end, base, result.carry, counts.get((eq, hour), 0)))
            chunk = chunk_end
        return out

    def _working(
        self, equipment_ids: Sequence[str], start_ns: int, end_ns: int
    ) -> dict[str, list[tuple[int, int]] | None]:
        """Each equipment's working spans in [start, end) by its calendar; None: around the clock."""
        by_calendar: dict[int, list[tuple[int, int]] | None] = {}
        working: dict[str, list[tuple[int, int]] | None] = {}
        for eq in equipment_ids:
            tz, calendar = self.assets.calendar_of(eq)
            key = id(calendar)
            if key not in by_calendar:
                by_calendar[key] = None if calendar.always_working else working_spans_ns(calendar, tz, start_ns, end_ns)
            working[eq] = by_calendar[key]
        return working

    def _measurements(self, equipment_ids: Sequence[str]) -> list[tuple[Measurement, list[str]]]:
        producers = [e for e in equipment_ids if not self.profiles[e].is_meter]
        meters = [e for e in equipment_ids if self.profiles[e].is_meter]
        return [
            (m, ids)
            for m, ids in (
                (Measurement.STATE, producers),
                (Measurement.COUNTER, producers),
                (Measurement.ENERGY, meters),
            )
            if ids
        ]

    async def _look_back(self, equipment_ids: Sequence[str], start_ns: int, log: _SeriesLog | None) -> dict[str, Carry]:
        """Each equipment's last usable readings before ``start_ns``, as far back as any can still be valid."""
        lookback_ns = max(self.profiles[e].stale_ns for e in equipment_ids)
        reads = self._measurements(equipment_ids)
        before = ns_to_datetime(start_ns)
        results = await asyncio.gather(
            *(
                self.store.last_points(m.value, before, _timedelta_ns(lookback_ns), {"equipment": ids})
                for m, ids in reads
            )
        )
        states: dict[str, tuple[int, str]] = {}
        counters: dict[str, dict[str, tuple[int, float]]] = defaultdict(dict)
        for (measurement, _), points in zip(reads, results, strict=True):
            for p in points:
                eq, signal, value = p.tags.get("equipment", ""), p.tags.get("signal", ""), p.fields.get("value")
                if eq not in self.profiles or value is None:
                    continue
                if log is not None:
                    log.prior.setdefault((measurement.value, eq, signal), p.time_ns)
                if measurement is Measurement.STATE:
                    states[eq] = (p.time_ns, str(value))
                elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    counters[eq][signal] = (p.time_ns, float(value))
        return {e: Carry(state=states.get(e), counters=counters.get(e, {})) for e in equipment_ids}

    async def _read_chunk(
        self, equipment_ids: Sequence[str], start_ns: int, end_ns: int, log: _SeriesLog | None
    ) -> tuple[dict[str, dict[str, list[Reading]]], dict[tuple[str, int], int]]:
        reads = self._measurements(equipment_ids)
        start, end = ns_to_datetime(start_ns), ns_to_datetime(end_ns)
        results = await asyncio.gather(
            *(self.store.read_points(m.value, start, end, {"equipment": ids}) for m, ids in reads)
        )
        readings: dict[str, dict[str, list[Reading]]] = defaultdict(lambda: defaultdict(list))
        counts: dict[tuple[str, int], int] = defaultdict(int)
        for (measurement, _), points in zip(reads, results, strict=True):
            for p in points:
                eq, signal = p.tags.get("equipment", ""), p.tags.get("signal", "")
                counts[(eq, p.time_ns - p.time_ns % HOUR_NS)] += 1
                if _usable(p):
                    readings[eq][signal].append((p.time_ns, p.fields["value"]))
                    if log is not None:
                        log.points[(measurement.value, eq, signal)] += 1
        return readings, counts

    # --- rollup path ---------------------------------------------------------------------------

    async def _pieces(
        self,
        equipment_ids: Sequence[str],
        start_ns: int,
        end_ns: int,
        *,
        tiers: Sequence[Tier],
        rollups: bool,
        now: datetime | None,
    ) -> tuple[list[_Piece], ReadPath, _SeriesLog]:
        """Base quantities that tile [start, end) for every equipment, from rollups where they can be.

        Settled whole hours come from the coarsest rows there are (months, then days, in each
        equipment's site zone, as ``tiers`` allows), then hourly rows; what no rollup covers is
        computed from raw series.
        """
        # Without rollups nothing is settled: the whole window is computed from raw series.
        settled = self.settled_before_ns(now) if rollups else start_ns - start_ns % HOUR_NS
        first_hour = -(-start_ns // HOUR_NS) * HOUR_NS
        last_hour = min(end_ns - end_ns % HOUR_NS, settled)
        pieces: list[_Piece] = []
        covered: dict[str, list[tuple[int, int]]] = {e: [] for e in equipment_ids}
        counts = {"month": 0, "day": 0, "hour": 0}
        hour_rows: dict[tuple[str, int], HourRow] = {}
        if first_hour < last_hour:
            for tier in tiers:
                for a, b in _union(_gaps(covered, first_hour, last_hour).values()):
                    if not any(local_spans(tier, a, b, tz) for tz, _ in self.rollups.by_zone(equipment_ids)):
                        continue
                    for (eq, _), row in (await self.rollups.read_spans(tier, equipment_ids, a, b)).items():
                        if _inside(row.start_ns, row.end_ns, covered[eq]):
                            continue
                        pieces.append(_Piece(eq, row.start_ns, row.end_ns, row.base, tier.name))
                        covered[eq].append((row.start_ns, row.end_ns))
                        counts[tier.name] += 1
            for a, b in _union(_gaps(covered, first_hour, last_hour).values()):
                for (eq, hour), hour_row in (await self.rollups.read_hours(equipment_ids, a - HOUR_NS, b)).items():
                    hour_rows[(eq, hour)] = hour_row  # the hour before a gap holds the carry into it
                    if hour < a or _inside(hour, hour + HOUR_NS, covered[eq]):
                        continue
                    pieces.append(_Piece(eq, hour, hour + HOUR_NS, hour_row.base, "hour"))
                    covered[eq].append((hour, hour + HOUR_NS))
                    counts["hour"] += 1

        # Raw: the edges of the window, the unsettled hours, and whatever the rollups lacked.
        ranges: list[tuple[int, int, list[str]]] = []
        if start_ns < min(first_hour, end_ns):
            ranges.append((start_ns, min(first_hour, end_ns), list(equipment_ids)))
        if max(first_hour, last_hour) < end_ns:
            ranges.append((max(start_ns, first_hour, last_hour), end_ns, list(equipment_ids)))
        lacking: dict[tuple[int, int], list[str]] = defaultdict(list)
        for eq, gaps in _gaps(covered, first_hour, last_hour).items():
            for gap in gaps:
                lacking[gap].append(eq)
        ranges.extend((a, b, ids) for (a, b), ids in lacking.items())
        ranges = _join(sorted(ranges))
        log = _SeriesLog()
        raw_hours = 0
        raw_ranges: list[tuple[int, int]] = []
        for a, b, ids in ranges:
            # The rollup of the hour before already holds what was known at ``a``: no look-back needed.
            before = {eq: hour_rows[(eq, a - HOUR_NS)].carry for eq in ids if (eq, a - HOUR_NS) in hour_rows}
            for computed in await self.raw_hours(ids, a, b, carries=before, log=log):
                pieces.append(_Piece(computed.equipment, computed.start_ns, computed.end_ns, computed.base, "raw"))
                raw_hours += 1
            raw_ranges.append((a, b))
        read_path = ReadPath(
            settled_before=ns_to_datetime(settled),
            rollup_months=counts["month"],
            rollup_days=counts["day"],
            rollup_hours=counts["hour"],
            raw_hours=raw_hours,
            raw_ranges=[(ns_to_datetime(a), ns_to_datetime(b)) for a, b in _merge(raw_ranges)],
        )
        return pieces, read_path, log

    # --- reports -----------------------------------------------------------------------------------

    async def report(
        self,
        scope_id: str,
        start: datetime,
        end: datetime,
        *,
        group_by: str | None = None,
        kpis: Sequence[str] | None = None,
        use_rollups: bool = True,
        now: datetime | None = None,
    ) -> KpiReport:
        """KPIs of the park, a site, workshop, line or equipment over [start, end), with their evidence.

        Raises KeyError for an unknown scope and ValueError for a window, grouping or KPI that is not one.
        """
        _check_window(start, end)
        if group_by is not None and group_by not in GROUP_BY:
            raise ValueError(f"group_by must be one of {', '.join(GROUP_BY)}, got {group_by!r}")
        chosen = _choose(kpis)
        scope = self.assets.scope(scope_id)
        production_ids = [eq.id for eq in scope if eq.produces_parts]
        scope_meters = self._meters_of(scope)
        energy_equipment = self._covered_by(scope_meters)
        involved = _unique([*(eq.id for eq in scope), *scope_meters, *energy_equipment])
        start_ns, end_ns = datetime_to_ns(start), datetime_to_ns(end)
        # Months nest only in months; days in days, weeks and months; hours in everything.
        tiers = {None: (MONTH, DAY), "month": (MONTH, DAY), "week": (DAY,), "day": (DAY,)}.get(group_by, ())
        pieces, read_path, log = await self._pieces(
            involved, start_ns, end_ns, tiers=tiers, rollups=use_rollups, now=now
        )
        by_eq: dict[str, list[_Piece]] = defaultdict(list)
        for piece in pieces:
            by_eq[piece.equipment].append(piece)
        totals = {e: total(p.base for p in by_eq[e]) for e in involved}

        production = total(totals[e] for e in production_ids)
        summary = self._summary(p for m in scope_meters for p in by_eq[m])
        energy_basis = self._energy_basis(totals, scope_meters, energy_equipment, summary)
        digital = DigitalInputs(
            equipment=tuple(scope),
            networking_threshold=self.networking_threshold,
            reporting=frozenset(e for e in involved if totals[e].samples > 0),
            coverage={eq.id: _upload(totals[eq.id]) for eq in scope},
            cnc_basis=self.cnc_basis,
        )
        per_equipment = []
        bases: dict[tuple[str, ...], _EnergyBasis] = {}  # machines on the same meters share their energy basis
        for eq in scope:
            meters = self._meters_of([eq])
            if (eq_energy := bases.get(tuple(meters))) is None:
                eq_summary = self._summary(p for m in meters for p in by_eq[m])
                eq_energy = self._energy_basis(totals, meters, self._covered_by(meters), eq_summary)
                bases[tuple(meters)] = eq_energy
            own = totals[eq.id] if eq.produces_parts else BaseQuantities.zero()
            per_equipment.append(
                EquipmentKpis(
                    equipment=eq.id,
                    type=eq.type.value,
                    base=BaseQuantitiesModel.of(totals[eq.id]),
                    kpis=self._kpis(chosen, own, eq_energy),
                    meters=meters,
                )
            )
        groups = []
        if group_by is not None:
            for key, (g_start, g_end, members) in self._group(pieces, group_by, scope_id).items():
                g_totals = {e: total(p.base for p in members if p.equipment == e) for e in involved}
                g_production = total(g_totals[e] for e in production_ids)
                g_summary = self._summary(p for p in members if p.equipment in scope_meters)
                g_energy = self._energy_basis(g_totals, scope_meters, energy_equipment, g_summary)
                values = self._kpis(chosen, g_production, g_energy)
                groups.append(
                    GroupKpis(
                        key=key,
                        start=ns_to_datetime(g_start),
                        end=ns_to_datetime(g_end),
                        base=BaseQuantitiesModel.of(_with_consumption(g_production, g_totals, scope_meters)),
                        kpis={v.key: v.value for v in values},
                        status={v.key: v.status for v in values},
                    )
                )
        meter_total = total(totals[m] for m in scope_meters)
        evidence = EvidenceModel(
            coverage=production.coverage,
            counter_coverage=production.counter_coverage,
            energy_coverage=meter_total.coverage,
            min_coverage=self.min_coverage,
            samples=production.samples,
            counter_resets=production.counter_resets,
            rollovers=meter_total.rollovers,
            excluded_steps=production.excluded_steps + meter_total.excluded_steps,
            meters=[self._meter_evidence(m, totals[m]) for m in scope_meters],
            energy_equipment=energy_equipment,
            series=log.evidence({e: i for i, e in enumerate(involved)}),
        )
        return KpiReport(
            scope=scope_id,
            start=start,
            end=end,
            equipment=production_ids,
            base=BaseQuantitiesModel.of(_with_consumption(production, totals, scope_meters)),
            kpis=self._kpis(chosen, production, energy_basis, digital),
            per_equipment=per_equipment,
            group_by=group_by,
            groups=groups,
            energy=_energy_report(summary),
            evidence=evidence,
            read_path=read_path,
        )

    def _summary(self, meter_pieces: Iterable[_Piece]) -> EnergySummary | None:
        """Consumption per carrier, converted with the factors valid at each piece (no piece straddles a day).

        Each site's meters are converted with that site's factors and the sites' summaries summed;
        None when a site with consumption has no factors at all.
        """
        rows: dict[str, list[tuple[datetime, dict[EnergyCarrier, float]]]] = defaultdict(list)
        for piece in meter_pieces:
            carrier = self.assets.equipment(piece.equipment).carrier
            if carrier is not None:
                site = self.assets.placement(piece.equipment).site
                consumption = {carrier: getattr(piece.base, REGISTER_SIGNAL[carrier])}
                rows[site].append((ns_to_datetime(piece.start_ns), consumption))
        if not self.factors or any(site not in self.factors for site in rows):
            return None
        return combine_summaries(energy_summary(site_rows, self.factors[site]) for site, site_rows in rows.items())

    def _group(
        self, pieces: Sequence[_Piece], group_by: str, scope_id: str
    ) -> dict[str, tuple[int, int, list[_Piece]]]:
        """Pieces by bucket of the scope's calendar and zone; a piece belongs to the bucket its start is in.

        Months and days are only read for groupings they nest in; an hour goes whole to the bucket
        (hour, shift, day, ...) its start lies in (core.calendar.Bucketing). In a park each site's
        pieces are bucketed by that site's calendar and zone, and buckets of the same label summed.
        """
        scope_site = self.assets.site_of(scope_id)
        bucketings: dict[str, Bucketing] = {}
        members: dict[str, list[_Piece]] = defaultdict(list)
        for piece in sorted(pieces, key=lambda p: p.start_ns):
            site = self.assets.placement(piece.equipment).site
            if (bucketing := bucketings.get(site)) is None:
                tz, calendar = self.assets.calendar_of(scope_id if scope_site is not None else site)
                bucketing = bucketings[site] = Bucketing(group_by, tz, calendar)
            members[bucketing.bucket_of(piece.start_ns).key].append(piece)
        # Buckets are clipped to the window: they span exactly the pieces inside them.
        return {
            key: (min(p.start_ns for p in group), max(p.end_ns for p in group), group)
            for key, group in sorted(members.items(), key=lambda item: min(p.start_ns for p in item[1]))
        }

    def _energy_basis(
        self,
        totals: Mapping[str, BaseQuantities],
        meters: Sequence[str],
        covered: Sequence[str],
        summary: EnergySummary | None,
    ) -> _EnergyBasis:
        by_carrier: dict[EnergyCarrier, list[BaseQuantities]] = defaultdict(list)
        for m in meters:
            carrier = self.assets.equipment(m).carrier
            if carrier is not None:
                by_carrier[carrier].append(totals[m])
        return _EnergyBasis(
            {c: total(bases) for c, bases in by_carrier.items()}, total(totals[e] for e in covered), summary
        )

    def _meter_evidence(self, meter_id: str, base: BaseQuantities) -> MeterEvidence:
        carrier = self.assets.equipment(meter_id).carrier
        register = REGISTER_SIGNAL[carrier] if carrier else "energy_kwh"
        return MeterEvidence(
            meter=meter_id,
            carrier=carrier.value if carrier else None,
            consumption=getattr(base, register),
            unit=CARRIER_UNIT[carrier] if carrier else "kWh",
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
                *(m for eq in equipment for m in eq.meter_ids),
                *(eq.id for eq in equipment if eq.type == EquipmentType.METER),
            ]
        )

    def _covered_by(self, meters: Iterable[str]) -> list[str]:
        """Everything those meters cover: their energy is divided by the good parts of all of it."""
        return _unique(eq.id for m in meters for eq in self.assets.covered_by(m))

    def _kpis(
        self,
        chosen: Sequence[AnyKpi],
        production: BaseQuantities,
        energy: _EnergyBasis,
        digital: DigitalInputs | None = None,
    ) -> list[KpiValue]:
        """Each chosen KPI with its evidence; digitalisation indicators only where ``digital`` is given."""
        values = []
        for kpi in chosen:
            if isinstance(kpi, KpiDescription):
                values.append(self._formula_value(kpi, production, energy))
            elif isinstance(kpi, EnergyKpiDescription):
                values.append(self._energy_value(kpi, energy))
            elif digital is not None:
                ratio = kpi.compute(digital)
                reason = None if ratio.value is not None else "nothing to count in this scope"
                values.append(_kpi_value(kpi, Basis.DIGITAL, ratio.value, "ok", None, reason))
        return values

    def _formula_value(self, kpi: KpiDescription, production: BaseQuantities, energy: _EnergyBasis) -> KpiValue:
        if kpi.basis is Basis.ENERGY:
            basis = energy.combined()
            coverages = {
                Evidence.METERS: energy.coverage(_KPI_CARRIERS.get(kpi.key)),
                Evidence.COUNTERS: energy.covered.counter_coverage,
            }
        else:
            basis = production
            coverages = {
                Evidence.STATE: production.coverage,
                Evidence.COUNTERS: production.counter_coverage,
                Evidence.FIRST_PASS: production.first_pass_coverage,
            }
        return self._value(kpi, kpi.basis, lambda: kpi.compute(basis), [coverages[e] for e in kpi.evidence])

    def _energy_value(self, kpi: EnergyKpiDescription, energy: _EnergyBasis) -> KpiValue:
        coverages = [energy.coverage(_KPI_CARRIERS.get(kpi.key))]
        if kpi.key not in _ENERGY_TOTALS:
            coverages.append(energy.covered.counter_coverage)
        summary = energy.summary
        if summary is None:
            reason = "no energy factors configured (kpi.energy_factors)"
            return _kpi_value(kpi, Basis.ENERGY, None, "insufficient_evidence", None, reason)
        value = self._value(kpi, Basis.ENERGY, lambda: kpi.compute(summary, energy.covered), coverages)
        if value.status == "ok" and value.value is None and summary.missing_factors:
            missing = ", ".join(f"{m.kind} of {m.carrier.value} ({m.hours} h)" for m in summary.missing_factors)
            update = {"status": "insufficient_evidence", "reason": f"no factor valid for {missing}"}
            return value.model_copy(update=update)
        return value

    def _value(
        self,
        kpi: KpiDescription | EnergyKpiDescription,
        basis: Basis,
        compute: Callable[[], float | None],
        coverages: Sequence[float | None],
    ) -> KpiValue:
        known = [c for c in coverages if c is not None]
        coverage = min(known, default=1.0) if len(known) == len(coverages) else None
        if coverage is None or coverage < self.min_coverage:
            shown = "no data" if coverage is None else f"coverage {coverage:.3f}"
            withheld = f"{shown} is below the minimum {self.min_coverage}"
            return _kpi_value(kpi, basis, None, "insufficient_evidence", coverage, withheld)
        value = compute()
        status: KpiStatus = "ok"
        reason: str | None = None
        if value is None:
            reason = "zero denominator: nothing to divide by in this window"
        elif not math.isfinite(value):
            value, status, reason = None, "flagged", "not a finite number"
        elif isinstance(kpi, KpiDescription) and kpi.bounded and not 0.0 <= value <= 1.0:
            status, reason = "flagged", "a ratio outside [0, 1]: the base quantities contradict each other"
        elif kpi.unit == "ratio" and value > 1.0:
            status, reason = "flagged", "above 1: the ideal cycle time is probably too long"
        return _kpi_value(kpi, basis, value, status, coverage, reason)


def _kpi_value(
    kpi: AnyKpi, basis: Basis, value: float | None, status: KpiStatus, coverage: float | None, reason: str | None
) -> KpiValue:
    return KpiValue(
        key=kpi.key,
        label_en=kpi.label_en,
        label_zh=kpi.label_zh,
        unit=kpi.unit,
        direction=Direction(kpi.direction),
        basis=basis,
        value=value,
        status=status,
        coverage=coverage,
        reason=reason,
    )


def _upload(base: BaseQuantities) -> float | None:
    return base.received_samples / base.expected_samples if base.expected_samples > 0 else None


def _energy_report(summary: EnergySummary | None) -> EnergyReport | None:
    if summary is None:
        return None
    return EnergyReport(
        consumption={c.value: v for c, v in summary.consumption.items()},
        units={c.value: CARRIER_UNIT[c] for c in summary.consumption},
        kgce=summary.kgce,
        tce=summary.tce,
        co2_kg=summary.co2_kg,
        kgce_by_carrier={c.value: v for c, v in summary.kgce_by_carrier.items()},
        co2_kg_by_carrier={c.value: v for c, v in summary.co2_kg_by_carrier.items()},
        factors_applied=[
            AppliedFactorModel(
                carrier=f.carrier.value,
                value=f.value,
                unit=f.unit,
                source=f.source,
                valid_from=f.valid_from,
                valid_to=f.valid_to,
            )
            for f in summary.factors_applied
        ],
        missing_factors=[
            f"{m.kind} of {m.carrier.value}: {m.consumption:g} {CARRIER_UNIT[m.carrier]} in {m.hours} h"
            f" ({m.first_hour.isoformat()} .. {m.last_hour.isoformat()})"
            for m in summary.missing_factors
        ],
    )


@dataclass(frozen=True, slots=True)
class _EnergyBasis:
    """The meters of a scope (per carrier), all the equipment they cover, and their energy summary."""

    meters: Mapping[EnergyCarrier, BaseQuantities]
    covered: BaseQuantities
    summary: EnergySummary | None

    def combined(self) -> BaseQuantities:
        """The covered equipment's parts with the meters' consumption."""
        return _replace_consumption(self.covered, total(self.meters.values()))

    def coverage(self, carriers: frozenset[EnergyCarrier] | None) -> float | None:
        """The lowest coverage of the meters of these carriers (None: of all the scope has); no meter: None."""
        chosen = [b.coverage for c, b in self.meters.items() if carriers is None or c in carriers]
        known = [c for c in chosen if c is not None]
        return min(known) if known and len(known) == len(chosen) else None


def _replace_consumption(base: BaseQuantities, source: BaseQuantities) -> BaseQuantities:
    return replace(base, **{name: getattr(source, name) for name in CONSUMPTION_FIELDS})


def _with_consumption(
    production: BaseQuantities, totals: Mapping[str, BaseQuantities], meters: Sequence[str]
) -> BaseQuantities:
    """The scope's production quantities with its meters' consumption (not the machines' zeros)."""
    return _replace_consumption(production, total(totals[m] for m in meters))


def _choose(keys: Sequence[str] | None) -> list[AnyKpi]:
    if keys is None:
        return list(ALL_KPIS)
    known = {k.key: k for k in ALL_KPIS}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ValueError(f"unknown KPI {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    return [known[k] for k in _unique(keys)]


def _clip(spans: Sequence[tuple[int, int]], start_ns: int, end_ns: int) -> list[tuple[int, int]]:
    return [(max(a, start_ns), min(b, end_ns)) for a, b in spans if a < end_ns and start_ns < b]


def _between(readings: Sequence[Reading], start_ns: int, end_ns: int) -> Sequence[Reading]:
    lo = bisect.bisect_left(readings, start_ns, key=lambda r: r[0])
    hi = bisect.bisect_left(readings, end_ns, key=lambda r: r[0])
    return readings[lo:hi]


def _timedelta_ns(ns: int) -> timedelta:
    return timedelta(microseconds=-(-ns // 1000))


def _gaps(
    covered: Mapping[str, Sequence[tuple[int, int]]], start_ns: int, end_ns: int
) -> dict[str, list[tuple[int, int]]]:
    """Per equipment, the parts of [start, end) that its covered intervals leave open."""
    gaps: dict[str, list[tuple[int, int]]] = {}
    for eq, spans in covered.items():
        open_from, mine = start_ns, []
        for a, b in sorted(spans):
            if a > open_from:
                mine.append((open_from, min(a, end_ns)))
            open_from = max(open_from, b)
        if open_from < end_ns:
            mine.append((open_from, end_ns))
        gaps[eq] = [(a, b) for a, b in mine if b > a]
    return gaps


def _union(spans: Iterable[Sequence[tuple[int, int]]]) -> list[tuple[int, int]]:
    """The union of several lists of intervals, as few intervals as possible."""
    return _merge([span for group in spans for span in group])


def _inside(start_ns: int, end_ns: int, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether [start, end) overlaps any of ``spans``."""
    return any(a < end_ns and start_ns < b for a, b in spans)


def _join(ranges: Sequence[tuple[int, int, list[str]]]) -> list[tuple[int, int, list[str]]]:
    """Adjacent raw ranges of the same equipment as one range: one read and no second look-back."""
    joined: list[tuple[int, int, list[str]]] = []
    for a, b, ids in ranges:
        if joined and joined[-1][1] == a and set(joined[-1][2]) == set(ids):
            joined[-1] = (joined[-1][0], b, joined[-1][2])
        else:
            joined.append((a, b, ids))
    return joined


def _merge(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged
