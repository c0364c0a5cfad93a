"""How numbers look on the pages: ratios as percentages, withheld values as a dash with the reason."""

from __future__ import annotations

import json
import math
from datetime import datetime
from zoneinfo import ZoneInfo

from api.web.i18n import Lang, t
from kpi.report import KpiValue

DASH = "—"


def number(value: float | None, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return DASH
    if unit == "ratio":
        return f"{value * 100:.1f} %"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    # Three significant digits without an exponent: 0.0000783, not 7.83e-05 (万元 per part).
    return f"{value:.{min(12, max(3, 2 - math.floor(math.log10(magnitude))))}f}"


def percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value * 100:+.1f} %"


def kpi_value(kpi: KpiValue | None, lang: Lang) -> str:
    """The number as shown; a withheld one is a dash (the reason is the cell's title, see ``kpi_note``)."""
    if kpi is None or kpi.value is None or kpi.status == "insufficient_evidence":
        return DASH
    shown = number(kpi.value, kpi.unit)
    return f"{shown} ⚠" if kpi.status == "flagged" else shown


def kpi_note(kpi: KpiValue | None, lang: Lang) -> str:
    """Why a value is withheld or flagged, for the cell's title and for screen readers ("" when it is fine)."""
    if kpi is None:
        return ""
    if kpi.status == "insufficient_evidence":
        return f"{t('insufficient', lang)}: {kpi.reason}" if kpi.reason else t("insufficient", lang)
    if kpi.status == "flagged":
        return f"{t('flagged', lang)}: {kpi.reason}" if kpi.reason else t("flagged", lang)
    return ""


def kpi_label(kpi: KpiValue | None, key: str, lang: Lang) -> str:
    if kpi is None:
        return key
    return kpi.label_zh if lang == "zh" else kpi.label_en


def age(seconds: float, lang: Lang) -> str:
    units = (("d", "天", 86400), ("h", "小时", 3600), ("min", "分钟", 60))
    for en, zh, size in units:
        if seconds >= size:
            amount, unit = seconds / size, zh if lang == "zh" else en
            return f"{amount:.0f} {unit}" if amount >= 10 else f"{amount:.1f} {unit}"
    return f"{seconds:.0f} {'秒' if lang == 'zh' else 's'}"


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def oee_chart(nodes: list[object]) -> str:
    """Bars of each machine's OEE, for charts.js (data-chart)."""
    bars = []
    for node in nodes:
        kpi = getattr(node, "kpis", {}).get("oee")
        value = kpi.value if kpi is not None and kpi.status != "insufficient_evidence" else None
        bars.append({"label": getattr(node, "id", ""), "value": value})
    return json.dumps({"unit": "ratio", "bars": bars, "series": [], "target": None}, ensure_ascii=False)
