"""The pages' own words in Chinese and English. Indicator names come from the KPI engine and the schemes."""

from __future__ import annotations

from typing import Literal

from api.reporting.labels import TEXT, verdict_label

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

_TEXT: dict[str, tuple[str, str]] = {
    "app": ("Smart-factory platform", "智能工厂数据平台"),
    "signin": ("Sign in", "登录"),
    "signout": ("Sign out", "退出"),
    "api_key": ("API key", "API 密钥"),
    "signin_hint": (
        "Paste the key you were given (./run demo prints one). It is kept in an HttpOnly cookie for this site only.",
        "粘贴您获得的密钥（./run demo 会打印一个）。密钥仅保存在本站的 HttpOnly Cookie 中。",
    ),
    "wrong_key": ("This key is not valid (unknown, revoked or mistyped).", "密钥无效（不存在、已吊销或输入有误）。"),
    "no_key": ("Enter a key.", "请输入密钥。"),
    "overview": ("Overview", "总览"),
    "reports": ("Reports", "报告"),
    "api_docs": ("API", "API 文档"),
    "period": ("Period", "统计周期"),
    "p_24h": ("Last 24 h", "最近 24 小时"),
    "p_7d": ("Last 7 days", "最近 7 天"),
    "p_30d": ("Last 30 days", "最近 30 天"),
    "p_custom": ("Custom", "自定义"),
    "from": ("From", "开始日期"),
    "to": ("To (inclusive)", "结束日期（含）"),
    "show": ("Show", "查询"),
    "scope": ("Scope", "范围"),
    "state": ("Current state", "当前状态"),
    "age": ("age", "距今"),
    "stale": ("stale", "已过期"),
    "no_state": ("no state reported", "无状态数据"),
    "reporting_of": ("{n} of {m} machines reporting", "{m} 台设备中 {n} 台在线"),
    "window": ("Window", "时间窗口"),
    "computed_in": (
        "computed in {s} s ({n} engine reports, rollups for settled hours)",
        "计算耗时 {s} 秒（{n} 个引擎报告，已结算小时使用汇总数据）",
    ),
    "insufficient": ("insufficient evidence", "证据不足"),
    "legend": (
        "— : withheld, the period's data do not support a number (point at it for the reason). "
        "⚠ : shown but not final (e.g. above 100 %). stale: the last state is older than a reading may count.",
        "— ：数据不足，不给出数值（鼠标悬停查看原因）。⚠ ：数值存疑，不能作为最终结果（如超过 100 %）。"
        "已过期：最后状态早于证据规则允许的时长。",
    ),
    "flagged": ("flagged", "存疑"),
    "k_park": ("park", "园区"),
    "k_site": ("site", "工厂"),
    "k_workshop": ("workshop", "车间"),
    "k_line": ("line", "产线"),
    "k_equipment": ("machine", "设备"),
    "s_PRODUCING": ("producing", "生产中"),
    "s_IDLE": ("idle", "空闲"),
    "s_SETUP": ("setup", "换型"),
    "s_DOWN": ("down", "故障停机"),
    "s_PLANNED_STOP": ("planned stop", "计划停机"),
    "s_OFFLINE": ("offline", "离线"),
    "generate": ("Generate a report", "生成报告"),
    "scheme": ("Scheme", "评价方案"),
    "baseline": ("Baseline", "基准期"),
    "assessment": ("Assessment", "评估期"),
    "baseline_both": (
        "Give the baseline's first and last day, or neither.",
        "请同时填写基准期的开始和结束日期，或都不填。",
    ),
    "language": ("Report language", "报告语言"),
    "create": ("Generate", "生成"),
    "archive": ("Archived reports", "已归档报告"),
    "no_reports": ("No reports yet.", "暂无报告。"),
    "generated_at": ("Generated", "生成时间"),
    "verdict": ("Verdict", "结论"),
    "verification": ("Verification", "签名验证"),
    "verified": ("verified", "已验证"),
    "not_verified": ("fails verification", "验证失败"),
    "key_fp": ("key {key}, fingerprint {fp}", "密钥 {key}，指纹 {fp}"),
    "open": ("Open", "查看"),
    "downloads": ("Downloads", "下载"),
    "rules": ("Rules", "评价条款"),
    "rule": ("Rule", "条款"),
    "value": ("Value", "数值"),
    "target": ("Target", "目标值"),
    "change": ("Change", "变化"),
    "threshold": ("Threshold", "阈值"),
    "coverage": ("Coverage", "数据覆盖率"),
    "rendering": ("The report as rendered (HTML)", "报告正文（HTML）"),
    "open_alone": ("Open it on its own page", "在新页面打开"),
    "pass": ("pass", "通过"),
    "fail": ("fail", "未通过"),
    "insufficient_evidence": ("insufficient evidence", "证据不足"),
    "chart_compare": ("Baseline vs assessment", "基准期与评估期对比"),
    "chart_series": ("Over time", "随时间变化"),
    "skip": ("Skip to content", "跳到正文"),
    "switch_lang": ("中文", "English"),
    "forbidden": ("This key may not see that.", "此密钥无权查看该内容。"),
    "revoked_key": ("This key was revoked; ask an admin for a new one.", "此密钥已被吊销，请向管理员申请新密钥。"),
    "throttled": (
        "Too many wrong keys from this address; try again in {s} s.",
        "此地址输入错误密钥次数过多，请 {s} 秒后再试。",
    ),
}

# Words the report renderings use too (api.reporting.labels), so that page and report agree.
_SHARED = {
    "baseline": "baseline",
    "assessment": "assessment",
    "threshold": "threshold",
    "verdict": "rule_verdict",
    "change": "change",
    "target": "target",
    "coverage": "coverage",
    "rules": "rules",
    "rule": "rule",
    "scheme": "scheme",
    "scope": "scope",
    "baseline_value": "baseline_value",
    "assessment_value": "assessment_value",
}
_VERDICTS = ("pass", "fail", "insufficient_evidence")


def t(name: str, lang: Lang, /, **values: object) -> str:
    if name in _VERDICTS:
        return verdict_label(name, lang)  # type: ignore[arg-type]
    if name in _SHARED and _SHARED[name] in TEXT:
        en, zh = TEXT[_SHARED[name]]
    else:
        en, zh = _TEXT.get(name, (name, name))
    text = zh if lang == "zh" else en
    return text.format(**values) if values else text


def pick_language(requested: str | None, accept_language: str | None) -> Lang:
    if requested in LANGS:
        return requested
    return "zh" if (accept_language or "").lower().startswith("zh") else "en"
