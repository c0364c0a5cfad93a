"""The words of the dashboards and alerts, in both languages, and the units they are shown in.

Indicator names come from the KPI descriptions (``kpi.formulas``, ``kpi.energy``, ``kpi.digital``)
and the certification labels (``api.reporting.labels``): the names of the spec's section 8, the same
words a report uses.
"""

from __future__ import annotations

from api.reporting.labels import METRIC_LABELS, VERDICT_LABELS
from api.reporting.labels import TEXT as REPORT_WORDS
from core.signals import ENERGY_COUNTERS, OFFLINE, MachineState
from kpi.dashboards.model import Text, Unit
from kpi.energy import ENERGY_KPIS, VALUE_ADDED_KPIS
from kpi.engine import ALL_KPIS


def kpi_name(key: str) -> Text:
    """An indicator's name as the KPI engine and the reports give it."""
    for kpi in (*ALL_KPIS, *ENERGY_KPIS, *VALUE_ADDED_KPIS):
        if kpi.key == key:
            return Text(kpi.label_en, kpi.label_zh)
    en, zh = METRIC_LABELS[key]
    return Text(en, zh)


T = Text
# The signals whose silence means a machine or meter stopped reporting: the state and every meter register.
REPORTED = "|".join(["state", *sorted(ENERGY_COUNTERS)])
STATE_TEXT: dict[str, tuple[Text, str]] = {
    MachineState.PRODUCING: (T("Producing", "生产"), "green"),
    MachineState.IDLE: (T("Idle", "空闲"), "yellow"),
    MachineState.SETUP: (T("Setup", "换型调试"), "blue"),
    MachineState.DOWN: (T("Down", "故障停机"), "red"),
    MachineState.PLANNED_STOP: (T("Planned stop", "计划停机"), "purple"),
    OFFLINE: (T("Offline (no data)", "离线（无数据）"), "text"),
}
VERDICT_TEXT: dict[str, tuple[Text, str]] = {
    verdict: (T(en, zh), colour)
    for (verdict, (en, zh)), colour in zip(VERDICT_LABELS.items(), ("green", "red", "orange"), strict=True)
}
CARRIERS: tuple[tuple[str, Text], ...] = (  # rollup field, legend
    ("energy_kwh", T("Electricity (kWh)", "电力（千瓦时）")),
    ("gas_m3", T("Natural gas (m³)", "天然气（立方米）")),
    ("water_m3", T("Water (m³)", "水（立方米）")),
    ("heat_mj", T("Heat (MJ)", "热力（兆焦）")),
    ("steam_kg", T("Steam (kg)", "蒸汽（千克）")),
    ("compressed_air_m3", T("Compressed air bought in (m³)", "外购压缩空气（立方米）")),
    ("diesel_kg", T("Diesel (kg)", "柴油（千克）")),
    ("gasoline_kg", T("Gasoline (kg)", "汽油（千克）")),
)
COUNTERS: tuple[tuple[str, Text], ...] = (
    ("parts_total", T("Produced", "总产量")),
    ("parts_good", T("Good", "合格品")),
    ("parts_scrap", T("Scrap", "报废品")),
    ("parts_rework", T("Rework", "返工品")),
)
SHIFT_WORD = T("Shift", "班次")
KIND_WORD = T("Kind", "类别")
HOURS_WORD = T("Hours", "小时")
MACHINE_WORD = T("Machine", "设备")
BREAKDOWN_HOURS = T("Breakdown hours", "故障停机小时")


def words(key: str) -> Text:
    """The words of a certification report (api.reporting.labels.TEXT)."""
    en, zh = REPORT_WORDS[key]
    return Text(en, zh)


RATIO_STEPS: tuple[tuple[float | None, str], ...] = ((None, "red"), (0.5, "orange"), (0.75, "green"))
KGCE = Unit(suffix=T("kgce", "千克标准煤"))
KGCE_PER_PART = Unit(suffix=T("kgce/part", "千克标准煤/件"))
TCE_PER_10K = Unit(suffix=T("tce/10k CNY", "吨标准煤/万元"))
KWH = Unit(suffix=T("kWh", "千瓦时"))
KWH_PER_PART = Unit(suffix=T("kWh/part", "千瓦时/件"))
KG_CO2 = Unit(suffix=T("kg CO₂", "千克二氧化碳"))
HOURS = Unit(suffix=T("h", "小时"))
PARTS = Unit(suffix=T("parts", "件"))
