"""Energy by carrier: comprehensive energy consumption in kgce and CO₂, from dated, sourced factors.

Comprehensive energy consumption E = Σ consumption of carrier i × coefficient kᵢ (GB/T 2589, kgce);
CO₂ = Σ consumption × emission factor (fuels, purchased heat, and purchased electricity by the grid
factor). The coefficients and factors live in a YAML file (``config/energy.yaml``), each with its
source and validity period; ``load_energy_factors`` is the only function here that reads anything.

Every hour is converted with the factor valid at that hour's start, so a factor that changes in the
middle of a window splits it, and the summary names every factor it applied. A consumption for
which no factor is valid at its hour makes the total None and is listed in ``missing_factors``:
a report never drops a carrier silently nor applies today's factor to a year it does not cover.

Only bought-in carriers are input. Energy produced on site (compressed air, chilled water) is
already counted through the electricity or fuel that made it, so a meter on site-made compressed
air must not be typed ``compressed_air`` in the asset file: that carrier means air bought in.

See docs/energy.md for the defaults, their sources and the choices made here.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from core.assets import CARRIER_UNIT, EnergyCarrier, Identifier
from core.errors import ConfigError
from core.yamlconfig import format_loc, line_of, read_yaml, validation_to_config_error
from kpi.base import BaseQuantities
from kpi.formulas import Direction

FactorKind = Literal["kgce", "co2"]
ElectricityBasis = Literal["equivalent", "equal"]  # 当量值 | 等价值
WaterEdition = Literal[2008, 2020]  # GB/T 2589 edition whose fresh-water coefficient applies

KGCE_PER_TCE = 1_000.0
KG_PER_T = 1_000.0

_KINDS: tuple[FactorKind, ...] = ("kgce", "co2")
_CARRIER_ORDER = {carrier: n for n, carrier in enumerate(EnergyCarrier)}


def factor_unit(kind: FactorKind, carrier: EnergyCarrier) -> str:
    """The unit of a coefficient (``kgce/kWh``) or an emission factor (``kg CO2/kWh``) of a carrier."""
    per = CARRIER_UNIT[carrier]
    return f"kgce/{per}" if kind == "kgce" else f"kg CO2/{per}"


# ---------------------------------------------------------------------------------------------
# What the program works with


@dataclass(frozen=True, slots=True)
class AppliedFactor:
    """One coefficient or emission factor as the file gives it; ``valid_to`` is exclusive."""

    carrier: EnergyCarrier
    value: float
    unit: str
    source: str
    valid_from: date
    valid_to: date | None


@dataclass(frozen=True, slots=True)
class FactorPeriod:
    """A stretch of time [start, end) in which every factor is constant.

    A carrier is absent from ``kgce`` or ``co2`` when no factor is valid in the period (or, for
    ``kgce``, when the site does not count it: see ``SiteFactors.not_counted``).
    """

    start: datetime
    end: datetime
    kgce: Mapping[EnergyCarrier, AppliedFactor]
    co2: Mapping[EnergyCarrier, AppliedFactor]


@dataclass(frozen=True)
class SiteFactors:
    """The factors one site applies: its settings and, per carrier, its factors in time order."""

    site_id: str
    timezone: tzinfo  # a factor's dates are local days of this zone
    electricity_basis: ElectricityBasis
    water_edition: WaterEdition
    water_in_comprehensive_energy: bool
    kgce_schedule: Mapping[EnergyCarrier, tuple[AppliedFactor, ...]]
    co2_schedule: Mapping[EnergyCarrier, tuple[AppliedFactor, ...]]

    @property
    def not_counted(self) -> frozenset[EnergyCarrier]:
        """Carriers measured but deliberately left out of comprehensive energy consumption."""
        return frozenset() if self.water_in_comprehensive_energy else frozenset({EnergyCarrier.WATER})

    def periods(self, start: datetime, end: datetime) -> list[FactorPeriod]:
        """Split [start, end) wherever any factor starts or ends; each piece has constant factors."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        if end < start:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        cuts = {start, end}
        for schedule in (self.kgce_schedule, self.co2_schedule):
            for factors in schedule.values():
                for factor in factors:
                    for day in (factor.valid_from, factor.valid_to):
                        if day is not None and start < (moment := self._midnight(day)) < end:
                            cuts.add(moment.astimezone(start.tzinfo))
        bounds = sorted(cuts)
        return [
            FactorPeriod(
                start=a,
                end=b,
                kgce=self._valid_at(self.kgce_schedule, a),
                co2=self._valid_at(self.co2_schedule, a),
            )
            for a, b in pairwise(bounds)
        ]

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=self.timezone)

    def _valid_at(
        self, schedule: Mapping[EnergyCarrier, tuple[AppliedFactor, ...]], moment: datetime
    ) -> dict[EnergyCarrier, AppliedFactor]:
        valid: dict[EnergyCarrier, AppliedFactor] = {}
        for carrier, factors in schedule.items():
            for factor in factors:
                if self._midnight(factor.valid_from) <= moment and (
                    factor.valid_to is None or moment < self._midnight(factor.valid_to)
                ):
                    valid[carrier] = factor
                    break
        return valid


@dataclass(frozen=True)
class EnergyFactors:
    """Every site's factors, as loaded from one file; a site without overrides gets the defaults."""

    defaults: SiteFactors
    sites: Mapping[str, SiteFactors]
    source: str = "<memory>"

    def for_site(self, site_id: str) -> SiteFactors:
        site = self.sites.get(site_id)
        return site if site is not None else replace(self.defaults, site_id=site_id)


# ---------------------------------------------------------------------------------------------
# Summing consumption


@dataclass(frozen=True, slots=True)
class MissingFactor:
    """Consumption that could not be converted because no factor was valid at its hours."""

    kind: FactorKind
    carrier: EnergyCarrier
    first_hour: datetime
    last_hour: datetime
    hours: int  # distinct hours
    consumption: float


@dataclass(frozen=True)
class EnergySummary:
    """Consumption per carrier over a window, converted to kgce and CO₂.

    ``kgce`` and ``co2_kg`` are None when the input held nothing, or when some consumption had no
    valid factor (listed in ``missing_factors``); the per-carrier maps then leave that carrier out.
    """

    consumption: Mapping[EnergyCarrier, float]
    kgce: float | None
    co2_kg: float | None
    kgce_by_carrier: Mapping[EnergyCarrier, float]
    co2_kg_by_carrier: Mapping[EnergyCarrier, float]
    factors_applied: tuple[AppliedFactor, ...]
    missing_factors: tuple[MissingFactor, ...] = ()

    @property
    def tce(self) -> float | None:
        return None if self.kgce is None else self.kgce / KGCE_PER_TCE

    def consumption_of(self, carrier: EnergyCarrier) -> float | None:
        """The carrier's consumption, or None when the input had none of it (not measured ≠ zero)."""
        return self.consumption.get(carrier)


def energy_summary(
    consumption_by_hour: Iterable[tuple[datetime, Mapping[EnergyCarrier, float]]], factors: SiteFactors
) -> EnergySummary:
    """Sum consumption per carrier and convert each hour with the factors valid at its start.

    Several rows may share an hour (one per meter). Hours must be timezone-aware; consumption must
    be finite and not negative (increments of cumulative registers never are).
    """
    rows: list[tuple[datetime, dict[EnergyCarrier, float]]] = []
    for hour, consumption in consumption_by_hour:
        _require_aware(hour, "hour")
        rows.append((hour, {EnergyCarrier(c): _checked_amount(hour, c, amount) for c, amount in consumption.items()}))
    if not rows:
        return EnergySummary({}, None, None, {}, {}, ())

    hours = sorted(hour for hour, _ in rows)
    periods = factors.periods(hours[0], hours[-1] + timedelta(hours=1))
    period_starts = [p.start for p in periods]
    not_counted = factors.not_counted

    consumption_total: dict[EnergyCarrier, float] = {}
    converted: dict[FactorKind, dict[EnergyCarrier, float]] = {"kgce": {}, "co2": {}}
    applied: dict[FactorKind, set[AppliedFactor]] = {"kgce": set(), "co2": set()}
    missing: dict[tuple[FactorKind, EnergyCarrier], _Gap] = {}

    for hour, consumption in rows:
        period = periods[bisect_right(period_starts, hour) - 1]
        for carrier, amount in consumption.items():
            consumption_total[carrier] = consumption_total.get(carrier, 0.0) + amount
            for kind in _KINDS:
                if kind == "kgce" and carrier in not_counted:
                    continue
                valid = period.kgce if kind == "kgce" else period.co2
                converted[kind].setdefault(carrier, 0.0)
                if amount == 0:
                    continue
                factor = valid.get(carrier)
                if factor is None:
                    gap = missing.setdefault((kind, carrier), _Gap())
                    gap.hours.add(hour)
                    gap.consumption += amount
                else:
                    converted[kind][carrier] += amount * factor.value
                    applied[kind].add(factor)

    missing_factors = tuple(
        MissingFactor(kind, carrier, min(gap.hours), max(gap.hours), len(gap.hours), gap.consumption)
        for (kind, carrier), gap in sorted(
            missing.items(), key=lambda item: (item[0][0] != "kgce", _CARRIER_ORDER[item[0][1]])
        )
    )

    def total(kind: FactorKind) -> tuple[float | None, dict[EnergyCarrier, float]]:
        lacking = {m.carrier for m in missing_factors if m.kind == kind}
        by_carrier = {c: v for c, v in sorted(converted[kind].items(), key=_by_carrier) if c not in lacking}
        return (None if lacking else math.fsum(by_carrier.values())), by_carrier

    kgce, kgce_by_carrier = total("kgce")
    co2_kg, co2_by_carrier = total("co2")
    return EnergySummary(
        consumption=dict(sorted(consumption_total.items(), key=_by_carrier)),
        kgce=kgce,
        co2_kg=co2_kg,
        kgce_by_carrier=kgce_by_carrier,
        co2_kg_by_carrier=co2_by_carrier,
        factors_applied=(*_in_order(applied["kgce"]), *_in_order(applied["co2"])),
        missing_factors=missing_factors,
    )


def combine_summaries(summaries: Iterable[EnergySummary]) -> EnergySummary:
    """The energy summary of several sites, each converted with its own factors: sums per carrier.

    A total is None when any site's is (a factor was missing there; its ``missing_factors`` are kept)
    and a carrier lacking a factor at any site is left out of the per-carrier maps, as within one site.
    """
    parts = [s for s in summaries if s.consumption or s.missing_factors]
    if not parts:
        return EnergySummary({}, None, None, {}, {}, ())
    if len(parts) == 1:
        return parts[0]
    missing = tuple(m for s in parts for m in s.missing_factors)

    def summed(
        maps: Iterable[Mapping[EnergyCarrier, float]], lacking: set[EnergyCarrier]
    ) -> dict[EnergyCarrier, float]:
        out: dict[EnergyCarrier, list[float]] = {}
        for values in maps:
            for carrier, value in values.items():
                out.setdefault(carrier, []).append(value)
        return {c: math.fsum(v) for c, v in sorted(out.items(), key=lambda i: _CARRIER_ORDER[i[0]]) if c not in lacking}

    def total(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return math.fsum(known) if len(known) == len(values) else None

    applied = list(dict.fromkeys(f for s in parts for f in s.factors_applied))
    return EnergySummary(
        consumption=summed((s.consumption for s in parts), set()),
        kgce=total([s.kgce for s in parts]),
        co2_kg=total([s.co2_kg for s in parts]),
        kgce_by_carrier=summed((s.kgce_by_carrier for s in parts), {m.carrier for m in missing if m.kind == "kgce"}),
        co2_kg_by_carrier=summed((s.co2_kg_by_carrier for s in parts), {m.carrier for m in missing if m.kind == "co2"}),
        factors_applied=(
            *_in_order(f for f in applied if f.unit.startswith("kgce")),
            *_in_order(f for f in applied if not f.unit.startswith("kgce")),
        ),
        missing_factors=missing,
    )


@dataclass(slots=True)
class _Gap:
    hours: set[datetime] = field(default_factory=set)
    consumption: float = 0.0


def _by_carrier(item: tuple[EnergyCarrier, float]) -> int:
    return _CARRIER_ORDER[item[0]]


def _in_order(factors: Iterable[AppliedFactor]) -> list[AppliedFactor]:
    return sorted(factors, key=lambda f: (_CARRIER_ORDER[f.carrier], f.valid_from))


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} {moment.isoformat()} has no time zone: factors change at local midnight")


def _checked_amount(hour: datetime, carrier: str, amount: float) -> float:
    value = float(amount)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"consumption of {carrier} at {hour.isoformat()} is {amount!r}: must be finite and >= 0")
    return value


# ---------------------------------------------------------------------------------------------
# KPIs (pure; None when the denominator is zero or the energy figure is unknown)


def _per(amount: float | None, count: float) -> float | None:
    return amount / count if amount is not None and count > 0 else None


def kgce_per_good_part(kgce: float | None, parts_good: int) -> float | None:
    """Comprehensive energy per good part: E (kgce) / GQ."""
    return _per(kgce, parts_good)


def kgce_per_part(kgce: float | None, parts_produced: int) -> float | None:
    """Comprehensive energy per part: E (kgce) / PQ."""
    return _per(kgce, parts_produced)


def kwh_per_good_part(electricity_kwh: float | None, parts_good: int) -> float | None:
    """Electricity (kWh, this carrier only) / GQ."""
    return _per(electricity_kwh, parts_good)


def co2_kg_per_good_part(co2_kg: float | None, parts_good: int) -> float | None:
    """CO₂ (kg) / GQ."""
    return _per(co2_kg, parts_good)


def water_m3_per_part(water_m3: float | None, parts_produced: int) -> float | None:
    """Fresh water intake (m³) / PQ."""
    return _per(water_m3, parts_produced)


def _per_value_added(amount: float | None, value_added_10k_cny: float) -> float | None:
    # Value added that is zero, negative (a loss) or unknown gives no intensity, not a sign flip.
    if amount is None or not math.isfinite(value_added_10k_cny) or value_added_10k_cny <= 0:
        return None
    return amount / value_added_10k_cny


def tce_per_10k_cny_value_added(kgce: float | None, value_added_10k_cny: float) -> float | None:
    """Energy per unit of value added (万元增加值能耗): E (tce) / value added (万元, 10,000 CNY)."""
    return _per_value_added(None if kgce is None else kgce / KGCE_PER_TCE, value_added_10k_cny)


def co2_t_per_10k_cny_value_added(co2_kg: float | None, value_added_10k_cny: float) -> float | None:
    """Carbon intensity: CO₂ (t) / value added (万元)."""
    return _per_value_added(None if co2_kg is None else co2_kg / KG_PER_T, value_added_10k_cny)


def water_m3_per_10k_cny_value_added(water_m3: float | None, value_added_10k_cny: float) -> float | None:
    """Water intensity: fresh water intake (m³) / value added (万元); recycled water is not intake."""
    return _per_value_added(water_m3, value_added_10k_cny)


@dataclass(frozen=True, slots=True)
class EnergyKpiDescription:
    """An energy KPI of a scope and window: its energy summary plus the parts of what its meters cover."""

    key: str
    label_en: str
    label_zh: str
    unit: str
    direction: Direction
    compute: Callable[[EnergySummary, BaseQuantities], float | None]


@dataclass(frozen=True, slots=True)
class ValueAddedKpiDescription:
    """An intensity per value added; the value added (万元) is a business input of the window."""

    key: str
    label_en: str
    label_zh: str
    unit: str
    direction: Direction
    compute: Callable[[EnergySummary, float], float | None]


def _electricity(s: EnergySummary) -> float | None:
    return s.consumption_of(EnergyCarrier.ELECTRICITY)


def _water(s: EnergySummary) -> float | None:
    return s.consumption_of(EnergyCarrier.WATER)


_DOWN = Direction.DOWN

ENERGY_KPIS: tuple[EnergyKpiDescription, ...] = (
    EnergyKpiDescription(
        "comprehensive_energy_kgce", "Comprehensive energy consumption", "综合能耗", "kgce", _DOWN, lambda s, q: s.kgce
    ),
    EnergyKpiDescription("co2_kg", "CO₂ emissions", "二氧化碳排放量", "kg CO2", _DOWN, lambda s, q: s.co2_kg),
    EnergyKpiDescription(
        "kgce_per_good_part",
        "Comprehensive energy per good part",
        "单位产品综合能耗",
        "kgce/part",
        _DOWN,
        lambda s, q: kgce_per_good_part(s.kgce, q.parts_good),
    ),
    EnergyKpiDescription(
        "kgce_per_part",
        "Comprehensive energy per part",
        "单件综合能耗",
        "kgce/part",
        _DOWN,
        lambda s, q: kgce_per_part(s.kgce, q.parts_produced),
    ),
    EnergyKpiDescription(
        "electricity_kwh_per_good_part",
        "Electricity per good part",
        "单位产品电耗",
        "kWh/part",
        _DOWN,
        lambda s, q: kwh_per_good_part(_electricity(s), q.parts_good),
    ),
    EnergyKpiDescription(
        "co2_kg_per_good_part",
        "CO₂ per good part",
        "单位产品二氧化碳排放量",
        "kg CO2/part",
        _DOWN,
        lambda s, q: co2_kg_per_good_part(s.co2_kg, q.parts_good),
    ),
    EnergyKpiDescription(
        "water_m3_per_part",
        "Water per part",
        "单件取水量",
        "m3/part",
        _DOWN,
        lambda s, q: water_m3_per_part(_water(s), q.parts_produced),
    ),
)

VALUE_ADDED_KPIS: tuple[ValueAddedKpiDescription, ...] = (
    ValueAddedKpiDescription(
        "tce_per_10k_cny_value_added",
        "Energy per 10,000 CNY value added",
        "万元增加值能耗",
        "tce/10k CNY",
        _DOWN,
        lambda s, va: tce_per_10k_cny_value_added(s.kgce, va),
    ),
    ValueAddedKpiDescription(
        "co2_t_per_10k_cny_value_added",
        "CO₂ per 10,000 CNY value added",
        "万元增加值二氧化碳排放量",
        "t CO2/10k CNY",
        _DOWN,
        lambda s, va: co2_t_per_10k_cny_value_added(s.co2_kg, va),
    ),
    ValueAddedKpiDescription(
        "water_m3_per_10k_cny_value_added",
        "Water per 10,000 CNY value added",
        "万元增加值用水量",
        "m3/10k CNY",
        _DOWN,
        lambda s, va: water_m3_per_10k_cny_value_added(_water(s), va),
    ),
)


# ---------------------------------------------------------------------------------------------
# The file


def _date_only(value: Any) -> Any:
    # pydantic would read a number as seconds since 1970; a factor's date is always written out.
    if isinstance(value, bool | int | float):
        raise ValueError("write a date as YYYY-MM-DD")
    return value


_Date = Annotated[date, BeforeValidator(_date_only)]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FactorEntry(_Strict):
    value: float = Field(ge=0, allow_inf_nan=False)
    unit: str | None = Field(default=None, description="optional; checked against the carrier's unit")
    valid_from: _Date
    valid_to: _Date | None = Field(default=None, description="first day the factor no longer applies")
    source: _Text
    basis: ElectricityBasis | None = Field(default=None, description="electricity coefficients only")
    edition: WaterEdition | None = Field(default=None, description="fresh-water coefficients only")


class _FactorTables(_Strict):
    kgce: dict[str, list[FactorEntry]] = Field(default_factory=dict)
    co2: dict[str, list[FactorEntry]] = Field(default_factory=dict)


class SiteSection(_FactorTables):
    timezone: str | None = None
    electricity_basis: ElectricityBasis | None = None
    water_edition: WaterEdition | None = None
    water_in_comprehensive_energy: bool | None = None


class DefaultsSection(_FactorTables):
    timezone: str = "Asia/Shanghai"
    electricity_basis: ElectricityBasis = "equivalent"
    water_edition: WaterEdition = 2020
    water_in_comprehensive_energy: bool = True


class EnergyFile(_Strict):
    version: int = Field(default=1, ge=1, le=1)
    defaults: DefaultsSection
    sites: dict[Identifier, SiteSection] = Field(default_factory=dict)


_Loc = tuple[str | int, ...]
_Variant = str | int | None  # an electricity basis, a water edition, or None
_GroupKey = tuple[FactorKind, EnergyCarrier, _Variant]


@dataclass(frozen=True, slots=True)
class _Located:
    entry: FactorEntry
    loc: _Loc


class _Checker:
    """Semantic checks after the schema: every failure names file, line, field and reason."""

    def __init__(self, path: str, index: dict[_Loc, int]):
        self.path = path
        self.index = index

    def fail(self, loc: _Loc, reason: str) -> ConfigError:
        return ConfigError(self.path, reason, line=line_of(self.index, loc), field=format_loc(loc))

    def line(self, loc: _Loc) -> int | None:
        return line_of(self.index, loc)

    def timezone(self, loc: _Loc, name: str) -> tzinfo:
        try:
            return ZoneInfo(name)
        except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
            raise self.fail(loc, f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)") from None

    def groups(self, section: _FactorTables, prefix: _Loc) -> dict[_GroupKey, list[_Located]]:
        """Check every entry of a section and group them by (kind, carrier, basis or edition)."""
        groups: dict[_GroupKey, list[_Located]] = {}
        for kind in _KINDS:
            for name, entries in getattr(section, kind).items():
                carrier = self.carrier(name, (*prefix, kind, name))
                for n, entry in enumerate(entries):
                    loc = (*prefix, kind, name, n)
                    variant = self.entry(kind, carrier, entry, loc)
                    groups.setdefault((kind, carrier, variant), []).append(_Located(entry, loc))
        for located in groups.values():
            self.continuous(located)
        return groups

    def carrier(self, name: str, loc: _Loc) -> EnergyCarrier:
        try:
            return EnergyCarrier(name)
        except ValueError:
            known = ", ".join(c.value for c in EnergyCarrier)
            raise self.fail(loc, f"unknown carrier {name!r} (known: {known})") from None

    def entry(self, kind: FactorKind, carrier: EnergyCarrier, entry: FactorEntry, loc: _Loc) -> _Variant:
        expected = factor_unit(kind, carrier)
        if entry.unit is not None and _normal_unit(entry.unit) != _normal_unit(expected):
            raise self.fail((*loc, "unit"), f"{kind} factors of {carrier.value} are in {expected}, not {entry.unit}")
        if entry.valid_to is not None and entry.valid_to <= entry.valid_from:
            raise self.fail(
                (*loc, "valid_to"),
                f"{entry.valid_to} is not after valid_from {entry.valid_from} "
                "(valid_to is the first day the factor no longer applies)",
            )
        is_electricity_coefficient = kind == "kgce" and carrier is EnergyCarrier.ELECTRICITY
        is_water_coefficient = kind == "kgce" and carrier is EnergyCarrier.WATER
        if is_electricity_coefficient and entry.basis is None:
            raise self.fail(
                (*loc, "basis"), "an electricity coefficient needs basis: equivalent (当量值) or equal (等价值)"
            )
        if not is_electricity_coefficient and entry.basis is not None:
            raise self.fail((*loc, "basis"), "only electricity coefficients (kgce) have a basis")
        if is_water_coefficient and entry.edition is None:
            raise self.fail((*loc, "edition"), "a fresh-water coefficient needs the GB/T 2589 edition: 2020 or 2008")
        if not is_water_coefficient and entry.edition is not None:
            raise self.fail((*loc, "edition"), "only fresh-water coefficients (kgce) have an edition")
        return entry.basis if is_electricity_coefficient else entry.edition

    def continuous(self, located: Sequence[_Located]) -> None:
        """The periods of one factor neither overlap nor leave a gap between them."""
        ordered = sorted(located, key=lambda item: item.entry.valid_from)
        for earlier, later in pairwise(ordered):
            end = earlier.entry.valid_to
            span = f"{earlier.entry.valid_from} to {end if end is not None else 'open end'}"
            if end is None or end > later.entry.valid_from:
                raise self.fail(
                    (*later.loc, "valid_from"),
                    f"overlaps the period at line {self.line(earlier.loc)} ({span}) of the same factor",
                )
            if end < later.entry.valid_from:
                raise self.fail(
                    (*later.loc, "valid_from"),
                    f"gap: no factor from {end} to {later.entry.valid_from} after the period at line "
                    f"{self.line(earlier.loc)} ({span}); valid_to is exclusive, so it should end on "
                    f"{later.entry.valid_from}",
                )

    def selected(self, groups: Mapping[_GroupKey, list[_Located]], key: _GroupKey, setting_loc: _Loc) -> None:
        """A basis or edition that is chosen must have factors to choose from."""
        kind, carrier, variant = key
        has_other = any(k[:2] == (kind, carrier) for k in groups)
        if has_other and key not in groups:
            choice = "basis" if carrier is EnergyCarrier.ELECTRICITY else "edition"
            raise self.fail(
                setting_loc, f"{variant!r} is chosen but no {kind}.{carrier.value} entry has {choice}: {variant}"
            )


def _normal_unit(unit: str) -> str:
    return unit.replace(" ", "").replace("₂", "2").lower()


def _site_factors(
    checker: _Checker,
    site_id: str,
    defaults: DefaultsSection,
    default_groups: Mapping[_GroupKey, list[_Located]],
    site: SiteSection | None,
) -> SiteFactors:
    prefix: _Loc = ("sites", site_id)
    site_groups = checker.groups(site, prefix) if site is not None else {}
    groups = {**default_groups, **site_groups}  # a site's list replaces the defaults' list of the same key

    def setting(name: str) -> tuple[Any, _Loc]:
        value = getattr(site, name) if site is not None else None
        return (value, (*prefix, name)) if value is not None else (getattr(defaults, name), ("defaults", name))

    tz_name, tz_loc = setting("timezone")
    basis, basis_loc = setting("electricity_basis")
    edition, edition_loc = setting("water_edition")
    water_counts, _ = setting("water_in_comprehensive_energy")
    checker.selected(groups, ("kgce", EnergyCarrier.ELECTRICITY, basis), basis_loc)
    if water_counts:
        checker.selected(groups, ("kgce", EnergyCarrier.WATER, edition), edition_loc)

    def schedule(kind: FactorKind) -> dict[EnergyCarrier, tuple[AppliedFactor, ...]]:
        chosen: dict[EnergyCarrier, tuple[AppliedFactor, ...]] = {}
        for carrier in EnergyCarrier:
            variant: _Variant = None
            if kind == "kgce" and carrier is EnergyCarrier.ELECTRICITY:
                variant = basis
            elif kind == "kgce" and carrier is EnergyCarrier.WATER:
                if not water_counts:
                    continue
                variant = edition
            located = groups.get((kind, carrier, variant))
            if located:
                chosen[carrier] = tuple(
                    AppliedFactor(
                        carrier=carrier,
                        value=item.entry.value,
                        unit=factor_unit(kind, carrier),
                        source=item.entry.source,
                        valid_from=item.entry.valid_from,
                        valid_to=item.entry.valid_to,
                    )
                    for item in sorted(located, key=lambda item: item.entry.valid_from)
                )
        return chosen

    return SiteFactors(
        site_id=site_id,
        timezone=checker.timezone(tz_loc, tz_name),
        electricity_basis=basis,
        water_edition=edition,
        water_in_comprehensive_energy=water_counts,
        kgce_schedule=schedule("kgce"),
        co2_schedule=schedule("co2"),
    )


def load_energy_factors(path: Path | str) -> EnergyFactors:
    """Load and check an energy factor file; every problem raises ConfigError naming file, line and field."""
    data, index = read_yaml(path)
    if data is None:
        raise ConfigError(str(path), "file is empty")
    try:
        parsed = EnergyFile.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(path, exc, index) from exc
    checker = _Checker(str(path), index)
    default_groups = checker.groups(parsed.defaults, ("defaults",))
    defaults = _site_factors(checker, "", parsed.defaults, default_groups, None)
    sites = {
        site_id: _site_factors(checker, site_id, parsed.defaults, default_groups, section)
        for site_id, section in parsed.sites.items()
    }
    return EnergyFactors(defaults=defaults, sites=sites, source=str(path))
