"""The KPI report as pydantic models: what the engine returns and the API serves.

Every KPI value travels with its evidence: the base quantities behind it, the coverage of the window
and a status. A value below the minimum coverage is withheld (null, ``insufficient_evidence``)
rather than shown as a number that looks final (kpi.md section 6).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from kpi.base import BaseQuantities
from kpi.formulas import Basis, Direction

KpiStatus = Literal["ok", "insufficient_evidence"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BaseQuantitiesModel(_Frozen):
    """Additive ISO 22400 base quantities, seconds and counts; PBT and coverage derived."""

    planned_busy_time_s: float
    production_time_s: float
    setup_time_s: float
    down_time_s: float
    idle_time_s: float
    planned_downtime_s: float
    parts_produced: int
    parts_good: int
    parts_scrap: int
    parts_rework: int
    ideal_time_s: float
    energy_kwh: float
    covered_s: float
    expected_s: float
    samples: int
    counter_resets: int
    coverage: float | None

    @classmethod
    def of(cls, q: BaseQuantities) -> BaseQuantitiesModel:
        return cls.model_validate({**q.to_fields(), "coverage": q.coverage})


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


class EquipmentKpis(_Frozen):
    equipment: str
    type: str
    base: BaseQuantitiesModel
    kpis: list[KpiValue]
    meters: list[str]


class HourlyKpis(_Frozen):
    """One UTC hour of the scope; ``start``/``end`` are clipped to the report window."""

    hour: datetime
    start: datetime
    end: datetime
    base: BaseQuantitiesModel
    energy_kwh: float
    kpis: dict[str, float | None]


class MeterEvidence(_Frozen):
    meter: str
    carrier: str | None
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


class Evidence(_Frozen):
    coverage: float | None
    energy_coverage: float | None
    min_coverage: float
    samples: int
    counter_resets: int
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
    hourly: list[HourlyKpis]
    evidence: Evidence
