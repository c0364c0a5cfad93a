"""Certification metrics as data: what a scheme's rule may name, and how each is computed.

A metric (``MetricDescription``) has a key, its names in English and Chinese (kpi.md section 8),
a unit per definition, the definitions it accepts (efficiency as OEE or output per hour ...), the
business inputs it needs, and one ``compute`` function from a ``Window``: the KPI engine's figures
for one period (or one month of it) of the scope, plus that window's business inputs.

``compute`` is pure: it never reads a store. It returns an ``Outcome`` (value, status, coverage,
the base quantities and input entries behind it, and a reason when there is no value). Scheme files
are checked against ``METRICS`` when they load (kpi.schemes), so a rule can only name a metric and
a definition listed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from core.assets import Equipment, EquipmentType
from core.business import InputEntry, InputKind
from kpi import business
from kpi.business import InputFigure
from kpi.certification_models import MetricStatus
from kpi.formulas import KPIS, Direction, Evidence
from kpi.report import BaseQuantitiesModel

# ---------------------------------------------------------------------------------------------
# What a metric is computed from


@dataclass(frozen=True, slots=True)
class Figure:
    """One engine KPI over the window: value, status, coverage and the engine's reason."""

    value: float | None
    status: MetricStatus
    coverage: float | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class EquipmentUpload:
    equipment: Equipment
    received_samples: float
    expected_samples: float

    @property
    def upload_rate(self) -> float | None:
        return self.received_samples / self.expected_samples if self.expected_samples > 0 else None


class WindowInputs:
    """The business inputs of a window's sites, read into figures on demand (pure: entries are given)."""

    def __init__(self, by_site: Mapping[str, Mapping[InputKind, Sequence[InputEntry]]], start: date, end: date):
        self._by_site = by_site
        self.start = start
        self.end = end

    @property
    def sites(self) -> list[str]:
        return sorted(self._by_site)

    def _entries(self, site: str, kind: InputKind) -> Sequence[InputEntry]:
        return self._by_site.get(site, {}).get(kind, ())

    def flow(self, kind: InputKind) -> InputFigure:
        return business.combine_sites(
            [business.flow_total(self._entries(s, kind), kind, self.start, self.end) for s in self.sites]
        )

    def stock(self, kind: InputKind, *, additive: bool = True) -> InputFigure:
        return business.combine_sites(
            [business.stock_average(self._entries(s, kind), kind, self.start, self.end) for s in self.sites],
            "sum" if additive else "none",
        )

    def at_end(self, kind: InputKind) -> InputFigure:
        return business.combine_sites(
            [business.stock_at_end(self._entries(s, kind), kind, self.start, self.end) for s in self.sites]
        )

    def projects(self) -> InputFigure:
        pooled = [e for s in self.sites for e in self._entries(s, InputKind.DEV_PROJECT)]
        return business.projects_launched(pooled, self.start, self.end)


@dataclass(frozen=True)
class Window:
    """One period of the scope (or one month of it) as a metric sees it.

    ``equipment`` (per-equipment upload) and the digital ratios are known for whole periods only;
    a month bucket leaves them empty. ``partial_site`` names why input × telemetry metrics cannot
    be computed (the scope holds only part of a site whose inputs are entered per site).
    """

    start: date  # local dates [start, end)
    end: date
    base: BaseQuantitiesModel
    kpis: Mapping[str, Figure]
    inputs: WindowInputs
    equipment: tuple[EquipmentUpload, ...] | None = None
    partial_site: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def kpi(self, key: str) -> Figure:
        return self.kpis.get(key, Figure(None, "insufficient_evidence", None, f"the engine gave no {key}"))


@dataclass(frozen=True, slots=True)
class RuleParams:
    """What a rule adds to its metric: the definition, and the upload rate that makes equipment networked."""

    definition: str | None = None
    upload_threshold: float = 0.9


@dataclass(frozen=True, slots=True)
class Outcome:
    value: float | None
    status: MetricStatus
    coverage: float | None
    base: Mapping[str, float] = field(default_factory=dict)
    inputs: tuple[InputEntry, ...] = ()
    reason: str | None = None


Compute = Callable[[Window, RuleParams], Outcome]


@dataclass(frozen=True, slots=True)
class MetricDescription:
    key: str
    label_en: str
    label_zh: str
    units: Mapping[str | None, str]  # unit per definition (None: the metric has no definitions)
    direction: Direction
    compute: Compute
    formula: str  # per definition in the docs; here the short form for a reader of the code
    definitions: tuple[str, ...] = ()
    inputs: Mapping[str | None, tuple[InputKind, ...]] = field(default_factory=dict)
    per_month: bool = True  # False: a property of the whole period (asset model, per-equipment data)

    def unit(self, definition: str | None) -> str:
        return self.units[definition]

    def needed_inputs(self, definition: str | None) -> tuple[InputKind, ...]:
        return self.inputs.get(definition, ())


# ---------------------------------------------------------------------------------------------
# Building outcomes


def _withheld(
    reason: str,
    coverage: float | None = None,
    base: Mapping[str, float] | None = None,
    inputs: Sequence[InputEntry] = (),
) -> Outcome:
    return Outcome(None, "insufficient_evidence", coverage, dict(base or {}), tuple(inputs), reason)


def _known(*figures: InputFigure) -> str | None:
    """The first reason among input figures that have no value."""
    return next((f.reason or f"no {f.kind.value}" for f in figures if f.value is None), None)


def _entries(*figures: InputFigure) -> tuple[InputEntry, ...]:
    return tuple(e for f in figures for e in f.entries)


def _from_figure(figure: Figure, base: Mapping[str, float], inputs: Sequence[InputEntry] = ()) -> Outcome:
    if figure.status != "ok" or figure.value is None:
        reason = figure.reason or "no value in this window"
        status: MetricStatus = "flagged" if figure.status == "flagged" else "insufficient_evidence"
        return Outcome(
            figure.value if status == "flagged" else None, status, figure.coverage, dict(base), tuple(inputs), reason
        )
    return Outcome(figure.value, "ok", figure.coverage, dict(base), tuple(inputs))


def _value(
    value: float | None,
    coverage: float | None,
    base: Mapping[str, float],
    inputs: Sequence[InputEntry],
    none_reason: str,
) -> Outcome:
    if value is None:
        return _withheld(none_reason, coverage, base, inputs)
    return Outcome(value, "ok", coverage, dict(base), tuple(inputs))


def _production_base(b: BaseQuantitiesModel) -> dict[str, float]:
    return {
        "planned_busy_time_s": b.planned_busy_time_s,
        "production_time_s": b.production_time_s,
        "ideal_time_s": b.ideal_time_s,
        "parts_produced": float(b.parts_produced),
        "parts_good": float(b.parts_good),
        "parts_scrap": float(b.parts_scrap),
        "parts_rework": float(b.parts_rework),
        "covered_s": b.covered_s,
        "counter_covered_s": b.counter_covered_s,
        "expected_s": b.expected_s,
    }


def _counted(figure: Figure) -> tuple[float | None, str | None]:
    """A telemetry figure as a number to divide with, or the reason it cannot be one."""
    if figure.status != "ok" or figure.value is None:
        return None, figure.reason or "no value in this window"
    return figure.value, None


def _good_parts(w: Window) -> tuple[float | None, float | None, str | None]:
    """GQ with the coverage of the part counters behind it; withheld like the engine's defect rate."""
    gate = w.kpi("defect_rate")  # same evidence as GQ: the total and good counters
    if gate.status == "insufficient_evidence":
        return None, gate.coverage, f"good parts: {gate.reason}"
    return float(w.base.parts_good), gate.coverage, None


def _min_cov(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _needs_whole_site(w: Window, what: str) -> str | None:
    if w.partial_site is None:
        return None
    return f"{what}: {w.partial_site}"


# ---------------------------------------------------------------------------------------------
# The metrics


def _efficiency(w: Window, p: RuleParams) -> Outcome:
    base = _production_base(w.base)
    if p.definition == "oee":
        return _from_figure(w.kpi("oee"), base)
    if p.definition == "output_per_hour":
        gate = w.kpi("throughput_rate")  # same evidence: state and counters
        if gate.status == "insufficient_evidence":
            return _withheld(gate.reason or "no throughput", gate.coverage, base)
        value = business.output_per_hour(w.base.parts_good, w.base.planned_busy_time_s)
        return _value(value, gate.coverage, base, (), "no planned busy time in this window")
    # output_per_labour_hour
    if (why := _needs_whole_site(w, "output per labour hour")) is not None:
        return _withheld(why, None, base)
    good, coverage, reason = _good_parts(w)
    hours = w.inputs.flow(InputKind.LABOUR_HOURS)
    if hours.value is not None:
        base["labour_hours"] = hours.value
    if reason is not None or hours.value is None:
        return _withheld(reason or _known(hours) or "", coverage, base, hours.entries)
    return _value(
        business.output_per_labour_hour(good, hours.value),
        coverage,
        base,
        hours.entries,
        "no labour hours in this window",
    )


def _defect_rate(w: Window, p: RuleParams) -> Outcome:
    return _from_figure(w.kpi("defect_rate"), _production_base(w.base))


def _operating_cost(w: Window, p: RuleParams) -> Outcome:
    cost = w.inputs.flow(InputKind.OPERATING_COST)
    base: dict[str, float] = {}
    if cost.value is not None:
        base["operating_cost_10k_cny"] = cost.value
    if p.definition == "per_output_value":
        output = w.inputs.flow(InputKind.OUTPUT_VALUE)
        if output.value is not None:
            base["output_value_10k_cny"] = output.value
        if (reason := _known(cost, output)) is not None:
            return _withheld(reason, None, base, _entries(cost, output))
        return _value(
            business.operating_cost_per_output_value(cost.value, output.value),
            None,
            base,
            _entries(cost, output),
            "no output value",
        )
    # per_unit: per good part of the scope, which must hold the whole of its sites
    if (why := _needs_whole_site(w, "operating cost per unit")) is not None:
        return _withheld(why, None, base, cost.entries)
    good, coverage, reason = _good_parts(w)
    base["parts_good"] = float(w.base.parts_good)
    if reason is not None or cost.value is None:
        return _withheld(reason or _known(cost) or "", coverage, base, cost.entries)
    return _value(
        business.operating_cost_per_unit(cost.value, good), coverage, base, cost.entries, "no good parts in this window"
    )


def _development_cycle(w: Window, p: RuleParams) -> Outcome:
    projects = w.inputs.projects()
    base = {"projects": float(len(projects.entries))}
    if projects.value is None:
        return _withheld(projects.reason or "no projects", None, base, projects.entries)
    return Outcome(projects.value, "ok", None, base, projects.entries)


def _silent(w: Window) -> str | None:
    """Why a digital indicator would only measure the platform's silence: nothing of the scope reported."""
    if w.equipment is not None and w.equipment and not any(e.received_samples > 0 for e in w.equipment):
        return "no equipment of the scope reported in the period: the platform has no data to confirm it"
    return None


def _digital(key: str) -> Compute:
    def compute(w: Window, p: RuleParams) -> Outcome:
        if (why := _silent(w)) is not None:
            return _withheld(why)
        return _from_figure(w.kpi(key), {})

    return compute


NETWORKED_TYPES = frozenset(
    {EquipmentType.CNC, EquipmentType.ROBOT, EquipmentType.MANUAL, EquipmentType.INSPECTION, EquipmentType.LOGISTICS}
)


def networking_rate(equipment: Sequence[EquipmentUpload], upload_threshold: float) -> tuple[float | None, int, int]:
    """Processing, inspection and logistics equipment with a digital interface whose upload rate
    reaches the threshold / all such equipment (设备联网率); (rate, networked, counted)."""
    counted = [e for e in equipment if e.equipment.type in NETWORKED_TYPES and e.equipment.is_digital]
    networked = [e for e in counted if (rate := e.upload_rate) is not None and rate >= upload_threshold]
    if not counted:
        return None, 0, 0
    return len(networked) / len(counted), len(networked), len(counted)


def _networking(w: Window, p: RuleParams) -> Outcome:
    if w.equipment is None:
        return _withheld("per-equipment upload rates are known for whole periods only")
    if (why := _silent(w)) is not None:
        return _withheld(why)
    rate, networked, counted = networking_rate(w.equipment, p.upload_threshold)
    base = {
        "networked_equipment": float(networked),
        "digital_equipment": float(counted),
        "upload_threshold": p.upload_threshold,
    }
    return _value(rate, None, base, (), "no processing, inspection or logistics equipment with a digital interface")


def _upload_rate(w: Window, p: RuleParams) -> Outcome:
    base = {"received_samples": w.base.received_samples, "expected_samples": w.base.expected_samples}
    return _from_figure(w.kpi("upload_rate"), base)


def _energy_figure(w: Window) -> tuple[float | None, float | None, str | None]:
    kgce = w.kpi("comprehensive_energy_kgce")
    value, reason = _counted(kgce)
    return value, kgce.coverage, None if reason is None else f"comprehensive energy: {reason}"


def _energy_per_unit(w: Window, p: RuleParams) -> Outcome:
    kgce, _, _ = _energy_figure(w)
    base = {"parts_good": float(w.base.parts_good)}
    if kgce is not None:
        base["kgce"] = kgce
    return _from_figure(w.kpi("kgce_per_good_part"), base)


@dataclass(frozen=True, slots=True)
class _Amount:
    """The numerator of an intensity per value added: a telemetry total or an input, with its evidence."""

    value: float | None
    coverage: float | None = None
    reason: str | None = None
    base: Mapping[str, float] = field(default_factory=dict)
    entries: tuple[InputEntry, ...] = ()


def _per_value_added(
    amount: Callable[[Window], _Amount], formula: Callable[[float | None, float | None], float | None]
) -> Compute:
    def compute(w: Window, p: RuleParams) -> Outcome:
        value_added = w.inputs.flow(InputKind.VALUE_ADDED)
        numerator = amount(w)
        entries = (*numerator.entries, *value_added.entries)
        base = dict(numerator.base)
        if value_added.value is not None:
            base["value_added_10k_cny"] = value_added.value
        if numerator.reason is not None or value_added.value is None:
            return _withheld(numerator.reason or _known(value_added) or "", numerator.coverage, base, entries)
        value = formula(numerator.value, value_added.value)
        return _value(value, numerator.coverage, base, entries, "value added is not positive")

    return compute


def _telemetry_amount(key: str, base_key: str, what: str) -> Callable[[Window], _Amount]:
    def amount(w: Window) -> _Amount:
        if (why := _needs_whole_site(w, what)) is not None:
            return _Amount(None, reason=why)
        figure = w.kpi(key)
        value, reason = _counted(figure)
        if value is None:
            return _Amount(None, figure.coverage, f"{what}: {reason}")
        return _Amount(value, figure.coverage, base={base_key: value})

    return amount


def _water_amount(w: Window) -> _Amount:
    water = w.inputs.flow(InputKind.WATER_INTAKE)
    base = {} if water.value is None else {"water_intake_m3": water.value}
    return _Amount(water.value, None, _known(water), base, water.entries)


def _labour_productivity(w: Window, p: RuleParams) -> Outcome:
    value_added = w.inputs.flow(InputKind.VALUE_ADDED)
    headcount = w.inputs.stock(InputKind.HEADCOUNT)
    base = {"days": float(w.days)}
    if value_added.value is not None:
        base["value_added_10k_cny"] = value_added.value
    if headcount.value is not None:
        base["average_headcount"] = headcount.value
    if (reason := _known(value_added, headcount)) is not None:
        return _withheld(reason, None, base, _entries(value_added, headcount))
    value = business.labour_productivity(value_added.value, headcount.value, w.days)
    return _value(value, None, base, _entries(value_added, headcount), "headcount is not positive")


def _output_intensity(w: Window, p: RuleParams) -> Outcome:
    output = w.inputs.flow(InputKind.OUTPUT_VALUE)
    land = w.inputs.stock(InputKind.LAND_AREA)
    base = {"days": float(w.days)}
    if output.value is not None:
        base["output_value_10k_cny"] = output.value
    if land.value is not None:
        base["land_area_km2"] = land.value
    if (reason := _known(output, land)) is not None:
        return _withheld(reason, None, base, _entries(output, land))
    value = business.output_intensity(output.value, land.value, w.days)
    return _value(value, None, base, _entries(output, land), "land area is not positive")


def _digital_rd_tool_rate(w: Window, p: RuleParams) -> Outcome:
    rate = w.inputs.stock(InputKind.DIGITAL_RD_TOOL_RATE, additive=False)
    if rate.value is None:
        return _withheld(_known(rate) or "", None, {}, rate.entries)
    return Outcome(rate.value, "ok", None, {}, rate.entries)


def _recognised_workshops(w: Window, p: RuleParams) -> Outcome:
    count = w.inputs.at_end(InputKind.RECOGNISED_DIGITAL_WORKSHOPS)
    if count.value is None:
        return _withheld(_known(count) or "", None, {}, count.entries)
    return Outcome(count.value, "ok", None, {}, count.entries)


def _energy_utilisation(w: Window, p: RuleParams) -> Outcome:
    if (why := _needs_whole_site(w, "energy utilisation")) is not None and p.definition == "value_added_per_tce":
        return _withheld(why)
    kgce, kgce_cov, kgce_reason = _energy_figure(w)
    base: dict[str, float] = {} if kgce is None else {"kgce": kgce}
    if p.definition == "value_added_per_tce":
        value_added = w.inputs.flow(InputKind.VALUE_ADDED)
        if value_added.value is not None:
            base["value_added_10k_cny"] = value_added.value
        if kgce_reason is not None or value_added.value is None:
            return _withheld(kgce_reason or _known(value_added) or "", kgce_cov, base, value_added.entries)
        return _value(
            business.value_added_per_tce(value_added.value, kgce),
            kgce_cov,
            base,
            value_added.entries,
            "no energy consumed in this window",
        )
    # output_per_kgce: the good parts of what the scope's meters cover, as the engine's kgce per good part
    per_part = w.kpi("kgce_per_good_part")
    value, reason = _counted(per_part)
    base["parts_good"] = float(w.base.parts_good)
    if value is None:
        return _withheld(f"energy per good part: {reason}", per_part.coverage, base)
    return _value(1.0 / value if value > 0 else None, per_part.coverage, base, (), "no energy consumed in this window")


METRICS: tuple[MetricDescription, ...] = (
    MetricDescription(
        "efficiency",
        "Production efficiency",
        "生产效率",
        {"oee": "ratio", "output_per_hour": "parts/h", "output_per_labour_hour": "parts/labour h"},
        Direction.UP,
        _efficiency,
        "oee: OEE; output_per_hour: GQ / PBT (h); output_per_labour_hour: GQ / labour hours",
        definitions=("oee", "output_per_hour", "output_per_labour_hour"),
        inputs={"output_per_labour_hour": (InputKind.LABOUR_HOURS,)},
    ),
    MetricDescription(
        "defect_rate", "Defect rate", "不良品率", {None: "ratio"}, Direction.DOWN, _defect_rate, "(SQ + RQ) / PQ"
    ),
    MetricDescription(
        "operating_cost",
        "Operating cost",
        "运营成本",
        {"per_unit": "10k CNY/part", "per_output_value": "ratio"},
        Direction.DOWN,
        _operating_cost,
        "per_unit: operating cost / GQ; per_output_value: operating cost / output value",
        definitions=("per_unit", "per_output_value"),
        inputs={
            "per_unit": (InputKind.OPERATING_COST,),
            "per_output_value": (InputKind.OPERATING_COST, InputKind.OUTPUT_VALUE),
        },
    ),
    MetricDescription(
        "development_cycle",
        "Product development cycle",
        "产品研制周期",
        {"mean_design_to_launch": "d"},
        Direction.DOWN,
        _development_cycle,
        "mean of launch − design start over the projects launched in the period",
        definitions=("mean_design_to_launch",),
        inputs={"mean_design_to_launch": (InputKind.DEV_PROJECT,)},
    ),
    MetricDescription(
        "key_process_cnc_rate",
        "Key-process CNC rate",
        "关键工序数控化率",
        {None: "ratio"},
        Direction.UP,
        _digital("key_process_cnc_rate"),
        "NC key processes (reporting) / key processes",
        per_month=False,
    ),
    MetricDescription(
        "nc_equipment_share",
        "NC equipment share of production equipment",
        "数控装备占比",
        {None: "ratio"},
        Direction.UP,
        _digital("nc_share"),
        "NC production equipment (reporting) / production equipment",
        per_month=False,
    ),
    MetricDescription(
        "networking_rate",
        "Equipment networking rate",
        "设备联网率",
        {None: "ratio"},
        Direction.UP,
        _networking,
        "processing, inspection and logistics equipment with upload rate ≥ threshold / all of it",
        per_month=False,
    ),
    MetricDescription(
        "upload_rate",
        "Data upload rate",
        "数据上传率",
        {None: "ratio"},
        Direction.UP,
        _upload_rate,
        "received / expected report intervals",
    ),
    MetricDescription(
        "energy_per_unit",
        "Comprehensive energy per good part",
        "单位产品综合能耗",
        {None: "kgce/part"},
        Direction.DOWN,
        _energy_per_unit,
        "E (kgce) / GQ of the metered equipment",
    ),
    MetricDescription(
        "energy_per_value_added",
        "Energy per 10,000 CNY value added",
        "万元增加值能耗",
        {None: "tce/10k CNY"},
        Direction.DOWN,
        _per_value_added(
            _telemetry_amount("comprehensive_energy_kgce", "kgce", "comprehensive energy"),
            business.energy_per_value_added,
        ),
        "E (tce) / value added (万元)",
        inputs={None: (InputKind.VALUE_ADDED,)},
    ),
    MetricDescription(
        "co2_intensity",
        "CO₂ per 10,000 CNY value added",
        "万元增加值二氧化碳排放量",
        {None: "t CO2/10k CNY"},
        Direction.DOWN,
        _per_value_added(_telemetry_amount("co2_kg", "co2_kg", "CO₂ emissions"), business.co2_per_value_added),
        "CO₂ (t) / value added (万元)",
        inputs={None: (InputKind.VALUE_ADDED,)},
    ),
    MetricDescription(
        "water_intensity",
        "Water per 10,000 CNY value added",
        "万元增加值用水量",
        {None: "m3/10k CNY"},
        Direction.DOWN,
        _per_value_added(_water_amount, business.water_intensity),
        "fresh water intake (m³) / value added (万元)",
        inputs={None: (InputKind.WATER_INTAKE, InputKind.VALUE_ADDED)},
    ),
    MetricDescription(
        "labour_productivity",
        "Labour productivity",
        "全员劳动生产率",
        {None: "10k CNY/person·year"},
        Direction.UP,
        _labour_productivity,
        "value added × 365 / days / average headcount",
        inputs={None: (InputKind.VALUE_ADDED, InputKind.HEADCOUNT)},
    ),
    MetricDescription(
        "output_intensity",
        "Output intensity",
        "产出强度",
        {None: "100M CNY/km2·year"},
        Direction.UP,
        _output_intensity,
        "output value (亿元) × 365 / days / land area (km²)",
        inputs={None: (InputKind.OUTPUT_VALUE, InputKind.LAND_AREA)},
    ),
    MetricDescription(
        "digital_rd_tool_rate",
        "Digital R&D tool adoption",
        "数字化研发设计工具普及率",
        {None: "ratio"},
        Direction.UP,
        _digital_rd_tool_rate,
        "business input, day-weighted over the period",
        inputs={None: (InputKind.DIGITAL_RD_TOOL_RATE,)},
    ),
    MetricDescription(
        "recognised_digital_workshops",
        "Recognised digital workshops",
        "认定数字化车间数",
        {None: "count"},
        Direction.UP,
        _recognised_workshops,
        "business input: workshops recognised by the last day of the period",
        inputs={None: (InputKind.RECOGNISED_DIGITAL_WORKSHOPS,)},
    ),
    MetricDescription(
        "energy_utilisation",
        "Energy utilisation",
        "能源利用率",
        {"output_per_kgce": "parts/kgce", "value_added_per_tce": "10k CNY/tce"},
        Direction.UP,
        _energy_utilisation,
        "output_per_kgce: GQ / E (kgce); value_added_per_tce: value added / E (tce)",
        definitions=("output_per_kgce", "value_added_per_tce"),
        inputs={"value_added_per_tce": (InputKind.VALUE_ADDED,)},
    ),
)
METRIC_BY_KEY: dict[str, MetricDescription] = {m.key: m for m in METRICS}


def production_coverage(key: str, base: BaseQuantitiesModel) -> float | None:
    """The coverage the engine gates an ISO 22400 KPI with, from a bucket's base quantities.

    Month buckets (``GroupKpis``) carry values and statuses but not coverages; this recomputes the
    coverage of production-basis KPIs so a rule's minimum coverage applies to each month too.
    """
    kpi = next((k for k in KPIS if k.key == key), None)
    if kpi is None or kpi.basis.value != "production":
        return None
    coverages = {
        Evidence.STATE: base.coverage,
        Evidence.COUNTERS: base.counter_coverage,
        Evidence.FIRST_PASS: base.first_pass_covered_s / base.expected_s if base.expected_s > 0 else None,
    }
    known = [coverages[e] for e in kpi.evidence]
    if not known:
        return None
    if any(c is None for c in known):
        return None
    return min(c for c in known if c is not None)
