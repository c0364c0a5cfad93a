"""Indicator names, verdict words and the words of a report, in Simplified Chinese and English.

Indicators appear under the names the schemes and standards use (spec kpi.md section 8): an auditor
reads 关键工序数控化率, not "key_process_cnc_rate". One table for every metric key of the
certification metric registry; a key it does not know falls back to the rule's own labels.
"""

from __future__ import annotations

from kpi.certification_models import Comparison, Language, RuleResult, Verdict

# metric key -> (English, Chinese)
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "efficiency": ("Production efficiency", "生产效率"),
    "defect_rate": ("Defect rate", "不良品率"),
    "operating_cost": ("Operating cost", "运营成本"),
    "development_cycle": ("Product development cycle", "产品研制周期"),
    "key_process_cnc_rate": ("Key-process CNC rate", "关键工序数控化率"),
    "nc_equipment_share": ("NC equipment share of production equipment", "数控装备占生产装备比例"),
    "networking_rate": ("Equipment networking rate", "设备联网率"),
    "upload_rate": ("Data upload rate", "数据上传率"),
    "energy_per_unit": ("Comprehensive energy consumption per unit of product", "单位产品综合能耗"),
    "energy_per_value_added": ("Comprehensive energy consumption per 10,000 CNY value added", "万元增加值综合能耗"),
    "co2_intensity": ("CO2 emissions per 10,000 CNY value added", "万元增加值二氧化碳排放量"),
    "water_intensity": ("Water intake per 10,000 CNY value added", "万元增加值取水量"),
    "labour_productivity": ("Overall labour productivity", "全员劳动生产率"),
    "output_intensity": ("Output intensity (output value per unit of land area)", "产出强度（单位用地面积产值）"),
    "digital_rd_tool_rate": ("Digital R&D design tool penetration", "数字化研发设计工具普及率"),
    "recognised_digital_workshops": ("Recognised digital workshops", "认定数字化车间数"),
    "energy_utilisation": ("Energy utilisation rate", "能源利用率"),
}

# definition (as a scheme names it) -> (English, Chinese); unknown definitions are shown as written
# (the definitions of kpi/metrics.py's registry)
DEFINITION_LABELS: dict[str, tuple[str, str]] = {
    "oee": ("as OEE", "以设备综合效率（OEE）计"),
    "output_per_hour": ("as good output per planned busy hour", "以每小时合格产出计"),
    "output_per_labour_hour": ("as good output per labour hour", "以每工时合格产出计"),
    "per_unit": ("per good part", "按单位合格产品计"),
    "per_output_value": ("per unit of output value", "按单位产值计"),
    "mean_design_to_launch": ("mean time from design start to launch", "从设计启动到投产的平均周期"),
    "output_per_kgce": ("as good output per kgce", "以单位综合能耗合格产出计"),
    "value_added_per_tce": ("as value added per tce", "以单位综合能耗增加值计"),
}

UNIT_LABELS: dict[str, tuple[str, str]] = {
    "ratio": ("%", "%"),
    "10k CNY": ("10,000 CNY", "万元"),
    "days": ("days", "天"),
    "d": ("days", "天"),
    "parts/labour h": ("parts per labour hour", "件/工时"),
    "parts/kgce": ("parts/kgce", "件/千克标准煤"),
    "10k CNY/tce": ("10,000 CNY per tce", "万元/吨标准煤"),
    "10k CNY/person·year": ("10,000 CNY per person-year", "万元/人·年"),
    "100M CNY/km2·year": ("100 million CNY per km² and year", "亿元/平方千米·年"),
    "kWh/part": ("kWh/part", "千瓦时/件"),
    "kgce": ("kgce", "千克标准煤"),
    "persons": ("persons", "人"),
    "count": ("", "个"),
    "km2": ("km²", "平方千米"),
    "kgce/part": ("kgce/part", "千克标准煤/件"),
    "tce/10k CNY": ("tce per 10,000 CNY", "吨标准煤/万元"),
    "t CO2/10k CNY": ("t CO2 per 10,000 CNY", "吨二氧化碳/万元"),
    "m3/10k CNY": ("m³ per 10,000 CNY", "立方米/万元"),
    "10k CNY/person": ("10,000 CNY per person", "万元/人"),
    "10k CNY/km2": ("10,000 CNY per km²", "万元/平方千米"),
    "parts/h": ("parts/h", "件/小时"),
    "10k CNY/part": ("10,000 CNY per part", "万元/件"),
}

VERDICT_LABELS: dict[Verdict, tuple[str, str]] = {
    "pass": ("Pass", "通过"),
    "fail": ("Fail", "未通过"),
    "insufficient_evidence": ("Insufficient evidence", "证据不足"),
}

COMPARISON_LABELS: dict[Comparison, tuple[str, str]] = {
    "at_least": ("at least", "不低于"),
    "at_most": ("at most", "不高于"),
    "increase_by": ("increase by at least", "较基准期提高不少于"),
    "reduce_by": ("reduce by at least", "较基准期降低不少于"),
}

SCOPE_KIND_LABELS: dict[str, tuple[str, str]] = {
    "park": ("park", "园区"),
    "site": ("site", "工厂"),
    "workshop": ("workshop", "车间"),
    "line": ("line", "产线"),
    "equipment": ("equipment", "设备"),
}

STATUS_LABELS: dict[str, tuple[str, str]] = {
    "ok": ("ok", "正常"),
    "insufficient_evidence": ("insufficient evidence", "证据不足"),
    "flagged": ("flagged", "存疑"),
}

# The words around the numbers.
TEXT: dict[str, tuple[str, str]] = {
    "title": ("Certification report", "认定评价报告"),
    "report_id": ("Report", "报告编号"),
    "scope": ("Scope", "评价对象"),
    "scope_kind": ("Scope kind", "对象类型"),
    "sites": ("Sites", "所属工厂"),
    "scheme": ("Scheme", "评价方案"),
    "scheme_version": ("Scheme version", "方案版本"),
    "baseline": ("Baseline period", "基准期"),
    "assessment": ("Assessment period", "评价期"),
    "verdict": ("Overall verdict", "总体结论"),
    "rules": ("Rules", "评价指标"),
    "rule": ("Rule", "条款"),
    "id": ("Rule id", "条款编号"),
    "indicator": ("Indicator", "指标"),
    "definition": ("Definition", "口径"),
    "comparison": ("Comparison", "比较方式"),
    "threshold": ("Threshold", "阈值"),
    "baseline_value": ("Baseline", "基准值"),
    "assessment_value": ("Assessment", "评价值"),
    "change": ("Change", "变化"),
    "target": ("Target", "目标值"),
    "rule_verdict": ("Verdict", "结论"),
    "coverage": ("Coverage", "数据覆盖率"),
    "reason": ("Reason", "说明"),
    "unit": ("Unit", "单位"),
    "evidence": ("Evidence", "证据"),
    "base_quantities": ("Base quantities", "基础数据"),
    "inputs": ("Business inputs", "经营数据"),
    "status": ("Status", "状态"),
    "series": ("Monthly values", "逐月数值"),
    "baseline_vs_assessment": ("Baseline vs assessment", "基准期与评价期对比"),
    "assessment_vs_target": ("Assessment vs threshold", "评价值与阈值对比"),
    "provenance": ("Provenance", "数据来源与可追溯信息"),
    "software_version": ("Software version", "软件版本"),
    "asset_model_sha256": ("Asset model SHA-256", "资产模型 SHA-256"),
    "scheme_sha256": ("Scheme file SHA-256", "方案文件 SHA-256"),
    "input_versions": ("Input versions", "经营数据版本"),
    "query": ("Query", "查询参数"),
    "generated_at": ("Generated at", "生成时间"),
    "signature": ("Signature", "签名"),
    "report_sha256": ("Report SHA-256 (canonical JSON)", "报告 SHA-256（规范 JSON）"),
    "key_id": ("Signing key fingerprint (SHA-256)", "签名密钥指纹（SHA-256）"),
    "signer": ("Signed for", "签名方"),
    "unsigned": (
        "Not signed: this rendering carries the report hash only; the signed JSON file is the record.",
        "未签名：此版本仅含报告哈希值，以签名的 JSON 文件为准。",
    ),
    "signed_note": (
        "Verify the signed JSON file offline with: factory report verify FILE --public-key SITE.pub",
        "可离线校验签名 JSON 文件：factory report verify FILE --public-key SITE.pub",
    ),
    "entry": ("Entry", "条目"),
    "version": ("Version", "版本"),
    "kind": ("Kind", "类别"),
    "period": ("Period", "期间"),
    "value": ("Value", "数值"),
    "entered_by": ("Entered by", "录入人"),
    "entered_at": ("Entered at", "录入时间"),
    "no_baseline": ("none (absolute rules only)", "无（仅绝对阈值指标）"),
    "legend_baseline": ("baseline", "基准期"),
    "legend_assessment": ("assessment", "评价期"),
    "legend_target": ("target", "目标"),
    "no_data": ("no value", "无数值"),
    "relative_meaning": (
        "relative rules compare rates: reduce by 20% means assessment ≤ 0.8 × baseline",
        "相对指标比较的是比率：降低 20% 指评价值 ≤ 0.8 × 基准值",
    ),
}


def _pick(pair: tuple[str, str], language: Language) -> str:
    return pair[1] if language == "zh" else pair[0]


def label(key: str, language: Language, rule: RuleResult | None = None) -> str:
    """An indicator's name under its scheme/standard name; unknown keys use the rule's own labels."""
    pair = METRIC_LABELS.get(key)
    if pair is not None:
        return _pick(pair, language)
    if rule is not None:
        return rule.label_zh if language == "zh" else rule.label_en
    return key


def definition_label(definition: str | None, language: Language) -> str:
    if not definition:
        return ""
    pair = DEFINITION_LABELS.get(definition)
    return _pick(pair, language) if pair else definition


def unit_label(unit: str, language: Language) -> str:
    pair = UNIT_LABELS.get(unit)
    return _pick(pair, language) if pair else unit


def verdict_label(verdict: Verdict, language: Language) -> str:
    return _pick(VERDICT_LABELS[verdict], language)


def comparison_label(comparison: Comparison, language: Language) -> str:
    return _pick(COMPARISON_LABELS[comparison], language)


def status_label(status: str, language: Language) -> str:
    pair = STATUS_LABELS.get(status)
    return _pick(pair, language) if pair else status


def scope_kind_label(kind: str, language: Language) -> str:
    pair = SCOPE_KIND_LABELS.get(kind)
    return _pick(pair, language) if pair else kind


def text(key: str, language: Language) -> str:
    return _pick(TEXT[key], language)
