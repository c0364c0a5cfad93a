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


def first_pass_yield(q: BaseQuantities) -> float | None:
    """Parts good the first time / PQ; needs a first-pass counter. Not 1 − defect rate: a reworked
    part that ends good is in GQ but not in the first pass."""
    return _ratio(q.parts_first_pass, q.parts_produced)


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


def mtbf_h(q: BaseQuantities) -> float | None:
    """Mean operating time between failures, hours: AUPT / failures (entries into DOWN).

    ISO 22400-2 averages the operating times between failures; with additive base quantities that is
    the operating time of the window divided by the failures in it.
    """
    time = _ratio(actual_unit_processing_time_s(q), q.failures)
    return None if time is None else time / 3600


def mttr_min(q: BaseQuantities) -> float | None:
    """Mean time to repair, minutes: ADET / failures."""
    time = _ratio(q.down_time_s, q.failures)
    return None if time is None else time / 60


def throughput_rate(q: BaseQuantities) -> float | None:
    """Parts per hour of planned busy time: PQ / PBT."""
    return _ratio(q.parts_produced * 3600, q.planned_busy_time_s)


def upload_rate(q: BaseQuantities) -> float | None:
    """Received / expected report intervals of the expected signals (数据上传率)."""
    return _ratio(q.received_samples, q.expected_samples)


class Direction(StrEnum):
    UP = "up"  # higher is better
    DOWN = "down"  # lower is better


class Basis(StrEnum):
    """Which base quantities a KPI is computed from."""

    PRODUCTION = "production"  # the production equipment of the scope
    ENERGY = "energy"  # the scope's meters plus all the equipment those meters cover
    DIGITAL = "digital"  # the scope's equipment as the asset model describes it, and what it reported


class Evidence(StrEnum):
    """What a KPI's value rests on; its coverage is the lowest coverage of these."""

    STATE = "state"  # the machine state was known (covered_s)
    COUNTERS = "counters"  # the total and good part counters were known (counter_covered_s)
    METERS = "meters"  # the meters' registers were known
    FIRST_PASS = "first_pass"  # the total and first-pass part counters were known (first_pass_covered_s)


@dataclass(frozen=True, slots=True)
class KpiDescription:
    key: str
    label_en: str
    label_zh: str
    unit: str
    direction: Direction
    compute: Callable[[BaseQuantities], float | None]
    basis: Basis = Basis.PRODUCTION
    evidence: tuple[Evidence, ...] = (Evidence.STATE,)
    bounded: bool = False  # a ratio that can only lie in [0, 1]: outside it, the value is flagged


_UP, _DOWN = Direction.UP, Direction.DOWN
_STATE = (Evidence.STATE,)
_COUNTERS = (Evidence.COUNTERS,)
_BOTH = (Evidence.STATE, Evidence.COUNTERS)
_ENERGY = (Evidence.METERS, Evidence.COUNTERS)


def _ratio_kpi(
    key: str,
    en: str,
    zh: str,
    direction: Direction,
    compute: Callable[[BaseQuantities], float | None],
    evidence: tuple[Evidence, ...],
) -> KpiDescription:
    return KpiDescription(key, en, zh, "ratio", direction, compute, evidence=evidence, bounded=True)


KPIS: tuple[KpiDescription, ...] = (
    _ratio_kpi("availability", "Availability", "可用率", _UP, availability, _STATE),
    # Effectiveness and OEE may exceed 1 (a wrong ideal cycle time): reported and flagged, not clipped.
    KpiDescription("effectiveness", "Effectiveness", "性能开动率", "ratio", _UP, effectiveness, evidence=_BOTH),
    _ratio_kpi("quality_ratio", "Quality ratio", "质量比率", _UP, quality_ratio, _COUNTERS),
    KpiDescription("oee", "OEE", "设备综合效率", "ratio", _UP, oee, evidence=_BOTH),
    KpiDescription("nee", "NEE", "净设备效率", "ratio", _UP, nee, evidence=_BOTH),
    _ratio_kpi("allocation_efficiency", "Allocation efficiency", "分配效率", _UP, allocation_efficiency, _STATE),
    _ratio_kpi("utilisation_efficiency", "Utilisation efficiency", "利用效率", _UP, utilisation_efficiency, _STATE),
    _ratio_kpi("technical_efficiency", "Technical efficiency", "技术效率", _UP, technical_efficiency, _STATE),
    _ratio_kpi("setup_rate", "Setup rate", "换型时间比率", _DOWN, setup_rate, _STATE),
    _ratio_kpi("scrap_ratio", "Scrap ratio", "报废率", _DOWN, scrap_ratio, _COUNTERS),
    _ratio_kpi("rework_ratio", "Rework ratio", "返工率", _DOWN, rework_ratio, _COUNTERS),
    _ratio_kpi("defect_rate", "Defect rate", "不良品率", _DOWN, defect_rate, _COUNTERS),
    _ratio_kpi("first_pass_yield", "First pass yield", "一次合格率", _UP, first_pass_yield, (Evidence.FIRST_PASS,)),
    KpiDescription("ppm", "Defects per million", "百万件不良数", "ppm", _DOWN, ppm, evidence=_COUNTERS),
    KpiDescription("throughput_rate", "Throughput rate", "产出率", "parts/h", _UP, throughput_rate, evidence=_BOTH),
    KpiDescription("mtbf", "Mean time between failures", "平均故障间隔时间", "h", _UP, mtbf_h),
    KpiDescription("mttr", "Mean time to repair", "平均修复时间", "min", _DOWN, mttr_min),
    _ratio_kpi("upload_rate", "Data upload rate", "数据上传率", _UP, upload_rate, ()),
    KpiDescription(
        "kwh_per_good_part",
        "Energy per good part",
        "单位产品能耗",
        "kWh/part",
        _DOWN,
        kwh_per_good_part,
        Basis.ENERGY,
        _ENERGY,
    ),
    KpiDescription(
        "kwh_per_part", "Energy per part", "单件能耗", "kWh/part", _DOWN, kwh_per_part, Basis.ENERGY, _ENERGY
    ),
)
KPI_KEYS: frozenset[str] = frozenset(k.key for k in KPIS)
