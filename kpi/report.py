"""The KPI report as pydantic models: what the engine returns and the API serves.

Every KPI value travels with its evidence: the base quantities behind it, the coverage of the window
and a status. A value below the minimum coverage is withheld (null, ``insufficient_evidence``)
rather than shown as a number that looks final (kpi.md section 6).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from kpi.base import BaseQuantities
from kpi.formulas import Basis, Direction

# ok: the value rests on enough evidence and lies where it can; insufficient_evidence: withheld (null);
# flagged: shown, but it cannot be taken as final (a ratio outside [0, 1], a value that is not finite).
KpiStatus = Literal["ok", "insufficient_evidence", "flagged"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BaseQuantitiesModel(_Frozen):
    """Additive ISO 22400 base quantities, seconds and counts; PBT, offline time and coverages derived."""

    planned_busy_time_s: float
    production_time_s: float
    setup_time_s: float
    down_time_s: float
    idle_time_s: float
    planned_downtime_s: float
    offline_s: float
    parts_produced: int
    parts_good: int
    parts_scrap: int
    parts_rework: int
    parts_first_pass: int
    ideal_time_s: float
    energy_kwh: float
    gas_m3: float
    water_m3: float
    heat_mj: float
    steam_kg: float
    compressed_air_m3: float
    diesel_kg: float
    gasoline_kg: float
    covered_s: float
    counter_covered_s: float
    first_pass_covered_s: float
    expected_s: float
    samples: int
    received_samples: float
    expected_samples: float
    counter_resets: int
    rollovers: int
    excluded_steps: int
    failures: int
    coverage: float | None
    counter_coverage: float | None

    @classmethod
    def of(cls, q: BaseQuantities) -> BaseQuantitiesModel:
        return cls.model_validate(
            {**q.to_fields(), "offline_s": q.offline_s, "coverage": q.coverage, "counter_coverage": q.counter_coverage}
        )


class KpiValue(_Frozen):
    key: str
    label_en: str
    label_zh: str
    unit: str
    direction: Direction
    basis: Basis
    value: float | None
    status: KpiStatus
    coverage: float | None
    reason: str | None = None  # why a value is withheld, flagged or null


class EquipmentKpis(_Frozen):
    equipment: str
    type: str
    base: BaseQuantitiesModel
    kpis: list[KpiValue]
    meters: list[str]


class GroupKpis(_Frozen):
    """One bucket of ``group_by`` (hour, shift, day, week, month in the site's zone), clipped to the window."""

    key: str
    start: datetime
    end: datetime
    base: BaseQuantitiesModel
    kpis: dict[str, float | None]
    status: dict[str, KpiStatus]


class MeterEvidence(_Frozen):
    meter: str
    carrier: str | None
    consumption: float
    unit: str
    energy_kwh: float
    coverage: float | None
    samples: int
    counter_resets: int
    covers: list[str]


class SeriesEvidence(_Frozen):
    """One raw series read for the report: points inside the window, and the reading just before it."""

    measurement: str
    equipment: str
    signal: str
    points: int
    prior_time: datetime | None


class AppliedFactorModel(_Frozen):
    """A coefficient (kgce per unit) or emission factor (kg CO2 per unit) a report applied."""

    carrier: str
    value: float
    unit: str
    source: str
    valid_from: date
    valid_to: date | None


class EnergyReport(_Frozen):
    """The scope's meters: consumption per carrier, converted with the factors valid at each hour."""

    consumption: dict[str, float]
    units: dict[str, str]
    kgce: float | None
    tce: float | None
    co2_kg: float | None
    kgce_by_carrier: dict[str, float]
    co2_kg_by_carrier: dict[str, float]
    factors_applied: list[AppliedFactorModel]
    missing_factors: list[str]  # consumption with no valid factor: its kgce / CO2 is withheld


class ReadPath(_Frozen):
    """Where the numbers came from: rollups for settled hours, raw series for the rest."""

    settled_before: datetime
    rollup_months: int  # equipment-months read from monthly rollups
    rollup_days: int  # equipment-days read from daily rollups
    rollup_hours: int  # equipment-hours read from hourly rollups
    raw_hours: int  # equipment-hours (or parts of hours) computed from raw series
    raw_ranges: list[tuple[datetime, datetime]]


class Evidence(_Frozen):
    coverage: float | None
    counter_coverage: float | None
    energy_coverage: float | None
    min_coverage: float
    samples: int
    counter_resets: int
    rollovers: int
    excluded_steps: int
    meters: list[MeterEvidence]
    energy_equipment: list[str]
    series: list[SeriesEvidence]


class KpiReport(_Frozen):
    scope: str
    start: datetime
    end: datetime
    equipment: list[str]
    base: BaseQuantitiesModel
    kpis: list[KpiValue]
    per_equipment: list[EquipmentKpis]
    group_by: str | None
    groups: list[GroupKpis]
    energy: EnergyReport | None  # None: no energy factors configured (kpi.energy_factors)
    evidence: Evidence
    read_path: ReadPath
