"""The five dashboards, described once in both languages (their words: ``kpi.dashboards.words``)."""

from __future__ import annotations

from dataclasses import dataclass

from core.signals import OFFLINE, MachineState
from kpi.dashboards.model import (
    PERCENT,
    Dashboard,
    Panel,
    Query,
    Variable,
    organize,
)
from kpi.dashboards.queries import (
    AVAILABILITY,
    COUNTER,
    COUNTER_COVERAGE,
    EFFECTIVENESS,
    KWH_PER_GOOD_PART,
    LINE,
    MACHINE,
    OEE,
    PROCESS,
    QUALITY,
    SITE,
    STATE,
    STATE_COVERAGE,
    UPLOAD_RATE,
    WORKSHOP,
    Sources,
    tag_values,
)
from kpi.dashboards.words import (
    BREAKDOWN_HOURS,
    CARRIERS,
    COUNTERS,
    HOURS,
    HOURS_WORD,
    KG_CO2,
    KGCE,
    KGCE_PER_PART,
    KIND_WORD,
    KWH,
    KWH_PER_PART,
    MACHINE_WORD,
    PARTS,
    RATIO_STEPS,
    SHIFT_WORD,
    STATE_TEXT,
    TCE_PER_10K,
    VERDICT_TEXT,
    T,
    kpi_name,
    words,
)


@dataclass(frozen=True, slots=True)
class Catalog:
    """The dashboards for one set of build options."""

    sources: Sources
    baseline: tuple[str, str]  # RFC 3339 instants: the energy dashboard's default baseline
    min_coverage: float  # the KPI engine's: named in the data coverage panel

    # -- variables -------------------------------------------------------------------------

    def _variables(self, depth: int, single_machine: bool = False) -> tuple[Variable, ...]:
        daily = self.sources.daily
        chain = (
            Variable("park", T("Park", "园区"), tag_values(self.sources.indicator, "park")),
            Variable("site", T("Site", "工厂"), tag_values(daily, "site")),
            Variable("workshop", T("Workshop", "车间"), tag_values(daily, "workshop", SITE)),
            Variable("line", T("Line", "产线"), tag_values(daily, "line", WORKSHOP)),
            Variable(
                "machine",
                T("Machine", "设备"),
                tag_values(daily, "equipment", LINE),
                multi=not single_machine,
                include_all=not single_machine,
            ),
        )
        return chain[:depth]

    # -- the dashboards ---------------------------------------------------------------------

    def dashboards(self) -> tuple[Dashboard, ...]:
        return (self.park_overview(), self.workshop(), self.machine(), self.energy(), self.certification())

    def park_overview(self) -> Dashboard:
        s = self.sources
        indicator = f"{s.indicator}"

        def by_site(key: str) -> Query:
            return Query(
                f'SELECT last("value") FROM {indicator} WHERE "indicator" = \'{key}\' AND "park" =~ /^$park$/ '
                f'AND {SITE} AND $timeFilter GROUP BY "site"',
                T("$tag_site", "$tag_site"),
            )

        def daily_by_site(key: str) -> Query:
            return Query(
                f'SELECT last("value") FROM {indicator} WHERE "indicator" = \'{key}\' AND "park" =~ /^$park$/ '
                f'AND {SITE} AND $timeFilter GROUP BY time(1d), "site"',
                T("$tag_site", "$tag_site"),
            )

        row1 = (
            Panel(
                T("OEE by site", "各工厂设备综合效率"),
                "bargauge",
                (
                    Query(
                        f'SELECT {OEE} FROM {s.daily} WHERE {SITE} AND $timeFilter GROUP BY "site"',
                        T("$tag_site", "$tag_site"),
                    ),
                ),
                T(
                    "OEE of each site over the time range, from the sums of its daily rollups (a site's OEE is not "
                    "the mean of its machines').",
                    "所选时间范围内各工厂的设备综合效率，由日汇总基础数据求和后计算，而非各设备数值的平均。",
                ),
                width=8,
                unit=PERCENT,
                minimum=0,
                maximum=1,
                thresholds=RATIO_STEPS,
            ),
            Panel(
                T("Machines down now", "当前故障停机设备数"),
                "stat",
                (
                    Query(
                        f'SELECT count("state") FROM (SELECT last("value") AS "state" FROM {STATE} '
                        f'WHERE "signal" = \'state\' AND {SITE} AND $timeFilter GROUP BY "site", "equipment") '
                        'WHERE "state" = \'DOWN\' GROUP BY "site"',
                        T("$tag_site", "$tag_site"),
                    ),
                ),
                T(
                    "Machines whose last reported state in the last 10 minutes is DOWN, per site. No value: none is "
                    "down.",
                    "最近10分钟内最后上报状态为故障停机的设备数量（按工厂）。无数值表示当前没有故障停机设备。",
                ),
                width=4,
                thresholds=((None, "green"), (1, "red")),
                time_from="10m",
            ),
            Panel(
                kpi_name("upload_rate"),
                "bargauge",
                (
                    Query(
                        f'SELECT {UPLOAD_RATE} FROM {s.daily} WHERE {SITE} AND $timeFilter GROUP BY "site"',
                        T("$tag_site", "$tag_site"),
                    ),
                ),
                T(
                    "Report intervals in which each expected signal arrived, over all expected, per site.",
                    "各工厂每个应上报信号实际上报的周期数占应上报周期数的比例。",
                ),
                width=6,
                unit=PERCENT,
                minimum=0,
                maximum=1,
                thresholds=((None, "red"), (0.9, "green")),
            ),
            Panel(
                kpi_name("key_process_cnc_rate"),
                "bargauge",
                (by_site("key_process_cnc_rate"),),
                T(
                    "Key processes served by numerically controlled equipment that reported, over all key processes; "
                    "the last day in the range (written by the dashboard feed).",
                    "由已上报数据的数控设备承担的关键工序占全部关键工序的比例；取时间范围内最后一天的数值（由看板数据任务写入）。",
                ),
                width=6,
                unit=PERCENT,
                minimum=0,
                maximum=1,
                thresholds=((None, "orange"), (0.55, "green")),
            ),
        )
        row2 = (
            Panel(
                kpi_name("networking_rate"),
                "bargauge",
                (by_site("networking_rate"),),
                T(
                    "Digital equipment connected and reporting (data coverage at least the threshold) over all "
                    "digital equipment; the last day in the range.",
                    "已联网并上报数据（数据覆盖率达到阈值）的数字化设备占全部数字化设备的比例；取时间范围内最后一天的数值。",
                ),
                width=6,
                unit=PERCENT,
                minimum=0,
                maximum=1,
                thresholds=((None, "orange"), (0.9, "green")),
            ),
            Panel(
                kpi_name("kgce_per_good_part"),
                "timeseries",
                (daily_by_site("kgce_per_good_part"),),
                T(
                    "Comprehensive energy (kgce, every carrier with its dated coefficient) per good part, per site "
                    "and day.",
                    "各工厂每日单位合格产品综合能耗（各能源品种按对应日期的折标系数折算为千克标准煤）。",
                ),
                width=9,
                unit=KGCE_PER_PART,
            ),
            Panel(
                kpi_name("tce_per_10k_cny_value_added"),
                "timeseries",
                (daily_by_site("tce_per_10k_cny_value_added"),),
                T(
                    "Comprehensive energy in tce per 10,000 CNY value added (business inputs), per site and day; no "
                    "value where no value added was entered.",
                    "各工厂每日万元增加值综合能耗（吨标准煤/万元，增加值来自经营数据）；未录入增加值的日期无数值。",
                ),
                width=9,
                unit=TCE_PER_10K,
            ),
        )
        row3 = (
            Panel(
                T("Certification status", "认定评价状态"),
                "table",
                (
                    Query(
                        f'SELECT last("verdict") AS "verdict", last("value") AS "value", last("target") AS "target" '
                        f'FROM {s.rule} WHERE "park" =~ /^$park$/ AND "scope" =~ /^$site$/ AND $timeFilter '
                        'GROUP BY "scope", "scheme", "rule"',
                        format="table",
                    ),
                ),
                T(
                    "Each rule of each evaluated scheme: its latest verdict, value and target (written by the "
                    "dashboard feed).",
                    "已评价方案的每条条款：最新结论、评价值与目标值（由看板数据任务写入）。",
                ),
                width=12,
                height=9,
                value_text=VERDICT_TEXT,
                transformations=(
                    organize(
                        {
                            "scope": words("scope"),
                            "scheme": words("scheme"),
                            "rule": words("rule"),
                            "verdict": words("rule_verdict"),
                            "value": words("assessment_value"),
                            "target": words("target"),
                        }
                    ),
                ),
            ),
            Panel(
                T("OEE by site and day", "各工厂每日设备综合效率"),
                "timeseries",
                (
                    Query(
                        f'SELECT {OEE} FROM {s.daily} WHERE {SITE} AND $timeFilter GROUP BY time(1d), "site"',
                        T("$tag_site", "$tag_site"),
                    ),
                ),
                T(
                    "Daily OEE of each site from its daily rollups (days are local days of the site).",
                    "各工厂每日设备综合效率，由日汇总数据计算（按工厂当地日期）。",
                ),
                width=12,
                height=9,
                unit=PERCENT,
                minimum=0,
            ),
        )
        return Dashboard(
            "factory-park-overview",
            T("Park overview", "园区总览"),
            T(
                "Every site of the park: OEE, energy intensity, digitalisation indicators, certification status and "
                "machines down now.",
                "园区各工厂的设备综合效率、能耗强度、数字化指标、认定评价状态及当前故障停机设备。",
            ),
            self._variables(2),
            (row1, row2, row3),
            time_from="now-30d",
        )

    def workshop(self) -> Dashboard:
        s = self.sources
        states = Panel(
            T("Machine state", "设备状态"),
            "state-timeline",
            (
                Query(
                    f'SELECT last("value") FROM {STATE} WHERE "signal" = \'state\' AND {MACHINE} AND $timeFilter '
                    'GROUP BY time($__interval), "equipment" fill(previous)',
                    T("$tag_equipment", "$tag_equipment"),
                ),
            ),
            T(
                "The canonical state of every machine over time; Offline means the edge stopped listening.",
                "各设备随时间变化的标准状态；离线表示边缘网关已停止采集该设备。",
            ),
            width=24,
            height=9,
            value_text=STATE_TEXT,
        )
        factors = Panel(
            T("OEE and its factors by day", "每日设备综合效率及其构成"),
            "timeseries",
            (
                Query(
                    f"SELECT {OEE} FROM {s.daily} WHERE {MACHINE} AND $timeFilter GROUP BY time(1d)", kpi_name("oee")
                ),
                Query(
                    f"SELECT {AVAILABILITY} FROM {s.daily} WHERE {MACHINE} AND $timeFilter GROUP BY time(1d)",
                    kpi_name("availability"),
                ),
                Query(
                    f"SELECT {EFFECTIVENESS} FROM {s.daily} WHERE {MACHINE} AND $timeFilter GROUP BY time(1d)",
                    kpi_name("effectiveness"),
                ),
                Query(
                    f"SELECT {QUALITY} FROM {s.daily} WHERE {MACHINE} AND $timeFilter GROUP BY time(1d)",
                    kpi_name("quality_ratio"),
                ),
            ),
            T(
                "OEE = availability × effectiveness × quality ratio, from the sums of the selected machines' daily "
                "rollups.",
                "设备综合效率 = 可用率 × 性能开动率 × 质量比率，由所选设备日汇总数据求和后计算。",
            ),
            unit=PERCENT,
            minimum=0,
        )
        shifts = Panel(
            T("OEE and its factors by shift", "各班次设备综合效率及其构成"),
            "barchart",
            (
                Query(
                    f'SELECT {OEE} AS "oee", {AVAILABILITY} AS "availability", {EFFECTIVENESS} AS "effectiveness", '
                    f'{QUALITY} AS "quality_ratio" FROM {s.shift} WHERE {WORKSHOP} AND $timeFilter GROUP BY "shift"',
                    format="table",
                ),
            ),
            T(
                "Per shift of the workshop's calendar (early, late …) over the range, from the sums of each shift's "
                "base quantities (written by the dashboard feed from the KPI engine).",
                "按车间班次日历（早班、晚班等）统计所选时间范围内各班次的指标，由各班次基础数据求和后计算（由看板数据任务根据指标引擎写入）。",
            ),
            unit=PERCENT,
            options={"xField": SHIFT_WORD},
            transformations=(
                organize(
                    {
                        "shift": SHIFT_WORD,
                        **{k: kpi_name(k) for k in ("oee", "availability", "effectiveness", "quality_ratio")},
                    }
                ),
            ),
        )
        pareto_state = Panel(
            T("Downtime by kind", "停机时间构成"),
            "barchart",
            (
                Query(
                    f'SELECT sum("down_time_s") / 3600 AS "down", sum("idle_time_s") / 3600 AS "idle", '
                    f'sum("setup_time_s") / 3600 AS "setup", sum("planned_downtime_s") / 3600 AS "planned", '
                    f'sum("offline_s") / 3600 AS "offline" FROM {s.daily} WHERE {MACHINE} AND $timeFilter',
                    format="table",
                ),
            ),
            T(
                "Hours lost by kind over the range: breakdowns (DOWN), idle, setup, planned stops, and time without "
                "data.",
                "所选时间范围内各类损失时间（小时）：故障停机、空闲、换型调试、计划停机及无数据时间。",
            ),
            unit=HOURS,
            options={"xField": KIND_WORD},
            transformations=(
                organize(
                    {
                        "down": STATE_TEXT[MachineState.DOWN][0],
                        "idle": STATE_TEXT[MachineState.IDLE][0],
                        "setup": STATE_TEXT[MachineState.SETUP][0],
                        "planned": STATE_TEXT[MachineState.PLANNED_STOP][0],
                        "offline": STATE_TEXT[OFFLINE][0],
                    }
                ),
                {"id": "reduce", "options": {"reducers": ["sum"]}},
                {"id": "sortBy", "options": {"sort": [{"field": "Total", "desc": True}]}},
                organize({"Field": KIND_WORD, "Total": HOURS_WORD}, hide=()),
            ),
        )
        pareto_machine = Panel(
            T("Breakdown hours by machine", "各设备故障停机时间"),
            "barchart",
            (
                Query(
                    f'SELECT sum("down_time_s") / 3600 AS "down" FROM {s.daily} WHERE {MACHINE} AND $timeFilter '
                    'GROUP BY "equipment"',
                    format="table",
                ),
            ),
            T(
                "Hours in DOWN per machine over the range, largest first (a Pareto of breakdowns).",
                "所选时间范围内各设备故障停机小时数，由大到小排列（故障帕累托）。",
            ),
            unit=HOURS,
            options={"xField": MACHINE_WORD},
            transformations=(
                organize({"equipment": MACHINE_WORD, "down": BREAKDOWN_HOURS}),
                {"id": "sortBy", "options": {"sort": [{"field": BREAKDOWN_HOURS, "desc": True}]}},
            ),
        )
        output = Panel(
            T("Good output against plan", "合格产出与计划对比"),
            "timeseries",
            (
                Query(
                    f'SELECT sum("parts_good") FROM {s.daily} WHERE {MACHINE} AND $timeFilter GROUP BY time(1d)',
                    T("Good parts", "合格品数"),
                ),
                Query(
                    'SELECT sum("capacity") FROM (SELECT sum("planned_busy_time_s") * sum("parts_produced") '
                    f'/ sum("ideal_time_s") AS "capacity" FROM {s.daily} WHERE {MACHINE} AND $timeFilter '
                    'GROUP BY time(1d), "equipment") GROUP BY time(1d)',
                    T("Plan: capacity at the ideal cycle time", "计划：按理想节拍的产能"),
                ),
            ),
            T(
                "Good parts per day against the plan, taken as what the planned busy time allows at each machine's "
                "ideal cycle time.",
                "每日合格品数与计划对比；计划取各设备计划运行时间按理想节拍可生产的数量。",
            ),
            unit=PARTS,
        )
        return Dashboard(
            "factory-workshop",
            T("Workshop", "车间"),
            T(
                "A workshop's machines: state timeline, OEE and its factors by day and shift, downtime Pareto and "
                "output against plan.",
                "车间设备：状态时间线、按日和班次的设备综合效率及构成、停机帕累托及产出与计划对比。",
            ),
            self._variables(5),
            ((states,), (factors, shifts), (pareto_state, pareto_machine), (output,)),
            time_from="now-7d",
        )

    def machine(self) -> Dashboard:
        s = self.sources
        one = MACHINE
        states = Panel(
            T("State", "状态"),
            "state-timeline",
            (
                Query(
                    f'SELECT last("value") FROM {STATE} WHERE "signal" = \'state\' AND {one} AND $timeFilter '
                    'GROUP BY time($__interval), "equipment" fill(previous)',
                    T("$tag_equipment", "$tag_equipment"),
                ),
            ),
            T("The machine's canonical state over time.", "设备标准状态随时间的变化。"),
            width=24,
            height=6,
            value_text=STATE_TEXT,
        )
        counters = Panel(
            T("Parts per hour", "每小时产量"),
            "timeseries",
            tuple(
                Query(
                    f'SELECT non_negative_difference(last("value")) FROM {COUNTER} WHERE "signal" = \'{signal}\' '
                    f"AND {one} AND $timeFilter GROUP BY time(1h)",
                    legend,
                )
                for signal, legend in COUNTERS
            ),
            T(
                "Increments of each cumulative part counter (produced, good, scrap, rework); a reset shows as a gap, "
                "never a negative.",
                "各累计计数器（总数、合格、报废、返工）每小时增量；计数器复位显示为空缺，不会出现负值。",
            ),
            unit=PARTS,
        )
        hourly = Panel(
            T("OEE and its factors by hour", "每小时设备综合效率及其构成"),
            "timeseries",
            (
                Query(f"SELECT {OEE} FROM {s.hourly} WHERE {one} AND $timeFilter GROUP BY time(1h)", kpi_name("oee")),
                Query(
                    f"SELECT {AVAILABILITY} FROM {s.hourly} WHERE {one} AND $timeFilter GROUP BY time(1h)",
                    kpi_name("availability"),
                ),
                Query(
                    f"SELECT {EFFECTIVENESS} FROM {s.hourly} WHERE {one} AND $timeFilter GROUP BY time(1h)",
                    kpi_name("effectiveness"),
                ),
                Query(
                    f"SELECT {QUALITY} FROM {s.hourly} WHERE {one} AND $timeFilter GROUP BY time(1h)",
                    kpi_name("quality_ratio"),
                ),
            ),
            T("From the machine's hourly rollups (settled hours).", "由设备小时汇总数据计算（已结算的小时）。"),
            unit=PERCENT,
            minimum=0,
        )
        carriers = Panel(
            T("Energy by carrier on the machine's line", "设备所在产线分能源品种消耗"),
            "timeseries",
            tuple(
                Query(f'SELECT sum("{name}") FROM {s.hourly} WHERE {LINE} AND $timeFilter GROUP BY time(1h)', legend)
                for name, legend in CARRIERS
            ),
            T(
                "Consumption per hour of the meters on the selected line, by carrier (meters usually cover a line, "
                "not one machine).",
                "所选产线上各计量表每小时的分能源品种消耗（计量表通常覆盖整条产线而非单台设备）。",
            ),
        )
        process = Panel(
            T("Process values", "工艺参数"),
            "timeseries",
            (
                Query(
                    f'SELECT mean("value") FROM {PROCESS} WHERE {one} AND $timeFilter '
                    'GROUP BY time($__interval), "signal"',
                    T("$tag_signal", "$tag_signal"),
                ),
            ),
            T("The machine's free process values (spindle speed, load …).", "设备的工艺参数（主轴转速、负载等）。"),
        )
        coverage = Panel(
            T("Data coverage", "数据覆盖率"),
            "timeseries",
            (
                Query(
                    f"SELECT {STATE_COVERAGE} FROM {s.hourly} WHERE {one} AND $timeFilter GROUP BY time(1h)",
                    T("State known", "状态已知"),
                ),
                Query(
                    f"SELECT {COUNTER_COVERAGE} FROM {s.hourly} WHERE {one} AND $timeFilter GROUP BY time(1h)",
                    T("Counters known", "计数器已知"),
                ),
                Query(
                    f"SELECT {UPLOAD_RATE} FROM {s.hourly} WHERE {one} AND $timeFilter GROUP BY time(1h)",
                    kpi_name("upload_rate"),
                ),
            ),
            T(
                "Share of each hour with a known state and known part counters, and the upload rate; below "
                f"{self.min_coverage:.0%} the KPIs resting on it are insufficient evidence.",
                f"每小时状态已知、计数器已知的时间占比及数据上传率；低于{self.min_coverage:.0%}时依赖它的指标为证据不足。",
            ),
            unit=PERCENT,
            minimum=0,
            maximum=1,
        )
        return Dashboard(
            "factory-machine",
            T("Machine drill-down", "设备详情"),
            T(
                "One machine: state, part counters, OEE by hour, energy by carrier, process values and data coverage.",
                "单台设备：状态、计数器、每小时设备综合效率、分能源品种消耗、工艺参数及数据覆盖率。",
            ),
            self._variables(5, single_machine=True),
            ((states,), (counters, hourly), (carriers, process), (coverage,)),
            time_from="now-24h",
            refresh="1m",
        )

    def energy(self) -> Dashboard:
        s = self.sources
        baseline_filter = "time >= '$baseline_start' AND time < '$baseline_end'"

        def site_indicator(key: str) -> Query:
            return Query(
                f'SELECT last("value") FROM {s.indicator} WHERE "indicator" = \'{key}\' AND {SITE} AND $timeFilter '
                'GROUP BY time(1d), "site"',
                T("$tag_site", "$tag_site"),
            )

        electricity = Panel(
            T("Electricity per day", "每日用电量"),
            "timeseries",
            (
                Query(
                    f'SELECT sum("energy_kwh") FROM {s.daily} WHERE {LINE} AND $timeFilter GROUP BY time(1d), "site"',
                    T("$tag_site", "$tag_site"),
                ),
            ),
            T("Electricity of the meters in scope per local day.", "所选范围内计量表每日用电量。"),
            unit=KWH,
        )
        others = Panel(
            T("Other carriers per day", "其他能源品种每日消耗"),
            "timeseries",
            tuple(
                Query(f'SELECT sum("{name}") FROM {s.daily} WHERE {LINE} AND $timeFilter GROUP BY time(1d)', legend)
                for name, legend in CARRIERS
                if name != "energy_kwh"
            ),
            T(
                "Gas (m³), water (m³), heat (MJ), steam (kg), compressed air bought in (m³), diesel and gasoline (kg) "
                "per day.",
                "每日天然气（立方米）、水（立方米）、热力（兆焦）、蒸汽（千克）、外购压缩空气（立方米）、柴油和汽油（千克）消耗。",
            ),
        )
        kgce = Panel(
            kpi_name("comprehensive_energy_kgce"),
            "timeseries",
            (site_indicator("comprehensive_energy_kgce"),),
            T(
                "Every carrier converted with the coefficient valid that day (GB/T 2589), per site.",
                "各能源品种按当日有效的折标系数（GB/T 2589）折算后的各工厂综合能耗。",
            ),
            width=8,
            unit=KGCE,
        )
        per_unit = Panel(
            kpi_name("kgce_per_good_part"),
            "timeseries",
            (site_indicator("kgce_per_good_part"),),
            T("Comprehensive energy per good part, per site and day.", "各工厂每日单位合格产品综合能耗。"),
            width=8,
            unit=KGCE_PER_PART,
        )
        co2 = Panel(
            kpi_name("co2_kg"),
            "timeseries",
            (site_indicator("co2_kg"),),
            T(
                "Fuels times their emission factors plus purchased electricity times the grid factor, per site and "
                "day.",
                "各工厂每日燃料消耗乘以排放因子加外购电力乘以电网排放因子。",
            ),
            width=8,
            unit=KG_CO2,
        )
        versus = Panel(
            T("Electricity per good part: baseline and now", "单位产品电耗：基准期与当前"),
            "stat",
            (
                Query(
                    f"SELECT {KWH_PER_GOOD_PART} FROM {s.daily} WHERE {LINE} AND {baseline_filter}",
                    T("Baseline", "基准期"),
                ),
                Query(
                    f"SELECT {KWH_PER_GOOD_PART} FROM {s.daily} WHERE {LINE} AND $timeFilter",
                    T("Now (time range)", "当前（所选时间范围）"),
                ),
            ),
            T(
                "kWh per good part over the baseline (variables baseline_start, baseline_end) and over the "
                "dashboard's range.",
                "基准期（变量 baseline_start、baseline_end）与所选时间范围内的单位合格产品电耗。",
            ),
            width=8,
            unit=KWH_PER_PART,
            decimals=3,
        )
        trend = Panel(
            T("Electricity per good part by day", "每日单位产品电耗"),
            "timeseries",
            (
                Query(
                    f"SELECT {KWH_PER_GOOD_PART} FROM {s.daily} WHERE {LINE} AND $timeFilter GROUP BY time(1d)",
                    kpi_name("kwh_per_good_part"),
                ),
            ),
            T(
                "Daily kWh per good part of the scope: the meters' electricity over the good parts of the equipment "
                "in scope.",
                "所选范围内每日单位合格产品电耗：计量表电量除以范围内设备合格品数。",
            ),
            width=16,
            unit=KWH_PER_PART,
        )
        variables = (
            *self._variables(4)[1:],
            Variable("baseline_start", T("Baseline from", "基准期开始"), text_default=self.baseline[0]),
            Variable("baseline_end", T("Baseline until", "基准期结束"), text_default=self.baseline[1]),
        )
        return Dashboard(
            "factory-energy",
            T("Energy and carbon", "能源与碳排放"),
            T(
                "Consumption by carrier, comprehensive energy in kgce, energy per unit, CO₂, and a baseline against "
                "now.",
                "分能源品种消耗、综合能耗（千克标准煤）、单位产品能耗、二氧化碳排放及基准期与当前对比。",
            ),
            variables,
            ((electricity, others), (kgce, per_unit, co2), (versus, trend)),
            time_from="now-30d",
        )

    def certification(self) -> Dashboard:
        s = self.sources
        scope = '"park" =~ /^$park$/ AND "scope" =~ /^$scope$/ AND "scheme" =~ /^$scheme$/'
        progress = Panel(
            T("$rule against its target", "$rule 与目标值对比"),
            "timeseries",
            (
                Query(
                    f'SELECT last("value") FROM {s.rule} WHERE {scope} AND "rule" =~ /^$rule$/ AND $timeFilter '
                    'GROUP BY time(1d), "scope"',
                    T("$tag_scope value", "$tag_scope 评价值"),
                ),
                Query(
                    f'SELECT last("target") FROM {s.rule} WHERE {scope} AND "rule" =~ /^$rule$/ AND $timeFilter '
                    'GROUP BY time(1d), "scope"',
                    T("$tag_scope target", "$tag_scope 目标值"),
                ),
            ),
            T(
                "The rule's value for the assessment period so far, each day, against the value it must reach (the "
                "threshold, or the baseline moved by it).",
                "每日截至当日的评价期条款评价值，与须达到的目标值（阈值，或按阈值调整后的基准值）对比。",
            ),
            width=8,
            repeat="rule",
        )
        verdicts = Panel(
            T("Verdict of each rule", "各条款结论"),
            "state-timeline",
            (
                Query(
                    f'SELECT last("verdict") FROM {s.rule} WHERE {scope} AND $timeFilter '
                    'GROUP BY time(1d), "rule" fill(previous)',
                    T("$tag_rule", "$tag_rule"),
                ),
            ),
            T(
                "Pass, fail or insufficient evidence of every rule, day by day.",
                "每条条款逐日的结论：通过、未通过或证据不足。",
            ),
            width=24,
            value_text=VERDICT_TEXT,
        )
        variables = (
            self._variables(1)[0],
            Variable("scope", T("Scope", "评价对象"), tag_values(s.rule, "scope")),
            Variable("scheme", T("Scheme", "评价方案"), tag_values(s.rule, "scheme"), multi=False, include_all=False),
            Variable("rule", T("Rule", "条款"), tag_values(s.rule, "rule", '"scheme" =~ /^$scheme$/')),
        )
        return Dashboard(
            "factory-certification",
            T("Certification progress", "认定评价进度"),
            T(
                "Each rule of the chosen scheme against its threshold over time (evaluated daily by the dashboard "
                "feed).",
                "所选认定方案各条款随时间与阈值的对比（由看板数据任务每日评价）。",
            ),
            variables,
            ((verdicts,), (progress,)),
            time_from="now-90d",
            refresh="1h",
        )
