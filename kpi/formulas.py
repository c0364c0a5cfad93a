"""ISO 22400-2 KPIs as pure functions of base quantities, and their descriptions as data.

A KPI whose denominator is zero has no value (None), never 0 and never an exception: an hour in
which nothing was produced has no quality ratio, it does not have a bad one. Ratios are not
clipped: an effectiveness above 1 means the ideal cycle time is wrong, and the report must show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from kpi.base import BaseQuantities


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _product(*factors: float | None) -> float | None:
    result = 1.0
    for factor in factors:
        if factor is None:
            return None
        result *= factor
    return result


def actual_unit_processing_time_s(q: BaseQuantities) -> float:
    """AUPT = APT + AUST."""
    return q.production_time_s + q.setup_time_s


def actual_unit_busy_time_s(q: BaseQuantities) -> float:
    """AUBT = AUPT + ADET."""
    return actual_unit_processing_time_s(q) + q.down_time_s


def availability(q: BaseQuantities) -> float | None:
    """APT / PBT."""
    return _ratio(q.production_time_s, q.planned_busy_time_s)


def effectiveness(q: BaseQuantities) -> float | None:
    """PRU × PQ / APT (performance); may exceed 1."""
    return _ratio(q.ideal_time_s, q.production_time_s)


def quality_ratio(q: BaseQuantities) -> float | None:
    """GQ / PQ."""
    return _ratio(q.parts_good, q.parts_produced)


def oee(q: BaseQuantities) -> float | None:
    """Availability × Effectiveness × Quality ratio."""
    return _product(availability(q), effectiveness(q), quality_ratio(q))


def nee(q: BaseQuantities) -> float | None:
    """Net equipment effectiveness: AUPT / PBT × Effectiveness × Quality ratio."""
    return _product(_ratio(actual_unit_processing_time_s(q), q.planned_busy_time_s), effectiveness(q), quality_ratio(q))


def allocation_efficiency(q: BaseQuantities) -> float | None:
    """AUBT / PBT."""
    return _ratio(actual_unit_busy_time_s(q), q.planned_busy_time_s)


def utilisation_efficiency(q: BaseQuantities) -> float | None:
    """APT / AUBT."""
    return _ratio(q.production_time_s, actual_unit_busy_time_s(q))


def technical_efficiency(q: BaseQuantities) -> float | None:
    """APT / (APT + ADET)."""
    return _ratio(q.production_time_s, q.production_time_s + q.down_time_s)


def setup_rate(q: BaseQuantities) -> float | None:
    """AUST / AUPT."""
    return _ratio(q.setup_time_s, actual_unit_processing_time_s(q))


def scrap_ratio(q: BaseQuantities) -> float | None:
    """SQ / PQ."""
    return _ratio(q.parts_scrap, q.parts_produced)


def rework_ratio(q: BaseQuantities) -> float | None:
    """RQ / PQ."""
    return _ratio(q.parts_rework, q.parts_produced)


def defect_rate(q: BaseQuantities) -> float | None:
    """(SQ + RQ) / PQ (不良品率). Not 1 − first pass yield."""
    return _ratio(q.parts_scrap + q.parts_rework, q.parts_produced)


def ppm(q: BaseQuantities) -> float | None:
    """Defect rate × 10⁶."""
    rate = defect_rate(q)
    return None if rate is None else rate * 1_000_000


def kwh_per_good_part(q: BaseQuantities) -> float | None:
    """Electricity / GQ; ``q`` must hold the meters' energy and the parts of what they cover."""
    return _ratio(q.energy_kwh, q.parts_good)


def kwh_per_part(q: BaseQuantities) -> float | None:
    """Electricity / PQ; same basis as ``kwh_per_good_part``."""
    return _ratio(q.energy_kwh, q.parts_produced)


class Direction(StrEnum):
    UP = "up"  # higher is better
    DOWN = "down"  # lower is better


class Basis(StrEnum):
    """Which base quantities a KPI is computed from."""

    PRODUCTION = "production"  # the production equipment of the scope
    ENERGY = "energy"  # the scope's meters plus all the equipment those meters cover


@dataclass(frozen=True, slots=True)
class KpiDescription:
    key: str
    label_en: str
    label_zh: str
    unit: str
    direction: Direction
    compute: Callable[[BaseQuantities], float | None]
    basis: Basis = Basis.PRODUCTION


_UP, _DOWN = Direction.UP, Direction.DOWN

KPIS: tuple[KpiDescription, ...] = (
    KpiDescription("availability", "Availability", "可用率", "ratio", _UP, availability),
    KpiDescription("effectiveness", "Effectiveness", "性能开动率", "ratio", _UP, effectiveness),
    KpiDescription("quality_ratio", "Quality ratio", "质量比率", "ratio", _UP, quality_ratio),
    KpiDescription("oee", "OEE", "设备综合效率", "ratio", _UP, oee),
    KpiDescription("nee", "NEE", "净设备效率", "ratio", _UP, nee),
    KpiDescription("allocation_efficiency", "Allocation efficiency", "分配效率", "ratio", _UP, allocation_efficiency),
    KpiDescription(
        "utilisation_efficiency", "Utilisation efficiency", "利用效率", "ratio", _UP, utilisation_efficiency
    ),
    KpiDescription("technical_efficiency", "Technical efficiency", "技术效率", "ratio", _UP, technical_efficiency),
    KpiDescription("setup_rate", "Setup rate", "换型时间比率", "ratio", _DOWN, setup_rate),
    KpiDescription("scrap_ratio", "Scrap ratio", "报废率", "ratio", _DOWN, scrap_ratio),
    KpiDescription("rework_ratio", "Rework ratio", "返工率", "ratio", _DOWN, rework_ratio),
    KpiDescription("defect_rate", "Defect rate", "不良品率", "ratio", _DOWN, defect_rate),
    KpiDescription("ppm", "Defects per million", "百万件不良数", "ppm", _DOWN, ppm),
    KpiDescription(
        "kwh_per_good_part",
        "Energy per good part",
        "单位产品能耗",
        "kWh/part",
        _DOWN,
        kwh_per_good_part,
        Basis.ENERGY,
    ),
    KpiDescription("kwh_per_part", "Energy per part", "单件能耗", "kWh/part", _DOWN, kwh_per_part, Basis.ENERGY),
)
