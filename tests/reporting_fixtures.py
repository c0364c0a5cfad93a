"""Certification reports built by hand, for the rendering and signing tests and the benchmark.

The numbers are invented but consistent: each rule's verdict follows from its values, threshold and
comparison (increase_by 0.2: assessment >= 1.2 x baseline), and the overall verdict from the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from kpi.certification_models import (
    CertificationReport,
    Comparison,
    InputUsed,
    Language,
    MetricValue,
    Period,
    Provenance,
    RuleResult,
    SchemeRef,
    SeriesPoint,
    Verdict,
    overall_verdict,
)

TZ_OFFSET = timedelta(hours=8)  # Asia/Shanghai: local midnight is 16:00 UTC the day before
BASELINE_MONTHS = ["2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12"]
ASSESSMENT_MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]


def _month_start(label: str) -> datetime:
    year, month = map(int, label.split("-"))
    return datetime(year, month, 1, tzinfo=UTC) - TZ_OFFSET


def _month_end(label: str) -> datetime:
    year, month = map(int, label.split("-"))
    return _month_start(f"{year + month // 12}-{month % 12 + 1:02d}")


def period(months: list[str]) -> Period:
    return Period(start=_month_start(months[0]), end=_month_end(months[-1]), label=f"{months[0]} – {months[-1]}")


@dataclass(frozen=True)
class RuleSpec:
    """One rule of a hand-made report: values per month drive the period values."""

    id: str
    metric: str
    comparison: Comparison
    threshold: float
    unit: str
    baseline: float | None  # the baseline period's value (relative rules)
    assessment: float | None
    definition: str | None = None
    gap_months: tuple[str, ...] = ()  # months without a value (insufficient evidence in the series)
    label_en: str = ""
    label_zh: str = ""


def _verdict(spec: RuleSpec) -> tuple[Verdict, float | None, float | None, str | None]:
    relative = spec.comparison in ("increase_by", "reduce_by")
    if spec.assessment is None or (relative and spec.baseline is None):
        return "insufficient_evidence", None, None, "coverage below the minimum in the assessment period"
    if not relative:
        ok = spec.assessment >= spec.threshold if spec.comparison == "at_least" else spec.assessment <= spec.threshold
        return ("pass" if ok else "fail"), None, spec.threshold, None
    assert spec.baseline is not None
    change = (spec.assessment - spec.baseline) / spec.baseline
    if spec.comparison == "increase_by":
        target = (1 + spec.threshold) * spec.baseline
        ok = spec.assessment >= target
    else:
        target = (1 - spec.threshold) * spec.baseline
        ok = spec.assessment <= target
    return ("pass" if ok else "fail"), change, target, None if ok else "the change falls short of the threshold"


def _metric(value: float | None, unit: str, spec: RuleSpec, inputs: list[InputUsed]) -> MetricValue:
    if value is None:
        return MetricValue(
            value=None,
            unit=unit,
            status="insufficient_evidence",
            coverage=0.31,
            reason="state known for 31% of the period (minimum 50%)",
            base={"covered_s": 4_870_000.0, "expected_s": 15_724_800.0},
            inputs=inputs,
        )
    return MetricValue(
        value=value,
        unit=unit,
        status="ok",
        coverage=0.982,
        base={
            "covered_s": 15_441_753.6,
            "expected_s": 15_724_800.0,
            "parts_produced": 412_518.0,
            "parts_good": 405_303.0,
            "production_time_s": 9_871_220.5,
        },
        inputs=inputs,
    )


def _series(spec: RuleSpec) -> list[SeriesPoint]:
    points = []
    for which, months, centre in (
        ("baseline", BASELINE_MONTHS, spec.baseline),
        ("assessment", ASSESSMENT_MONTHS, spec.assessment),
    ):
        if which == "baseline" and spec.comparison not in ("increase_by", "reduce_by"):
            continue
        for n, month in enumerate(months):
            value = None if centre is None or month in spec.gap_months else centre * (0.96 + 0.016 * n)
            points.append(
                SeriesPoint(
                    key=month,
                    period=which,  # type: ignore[arg-type]
                    start=_month_start(month),
                    end=_month_end(month),
                    value=value,
                    status="ok" if value is not None else "insufficient_evidence",
                )
            )
    return points


def rule_result(spec: RuleSpec, inputs: list[InputUsed]) -> RuleResult:
    verdict, change, target, reason = _verdict(spec)
    relative = spec.comparison in ("increase_by", "reduce_by")
    return RuleResult(
        id=spec.id,
        metric=spec.metric,
        definition=spec.definition,
        label_en=spec.label_en or spec.metric.replace("_", " "),
        label_zh=spec.label_zh or spec.metric,
        unit=spec.unit,
        comparison=spec.comparison,
        threshold=spec.threshold,
        baseline=_metric(spec.baseline, spec.unit, spec, inputs) if relative else None,
        assessment=_metric(spec.assessment, spec.unit, spec, inputs),
        change=change,
        target=target,
        verdict=verdict,
        reason=reason,
        series=_series(spec),
    )


def business_input(entry_id: str, kind: str, value: float, unit: str) -> InputUsed:
    return InputUsed(
        entry_id=entry_id,
        version=2,
        kind=kind,
        site="site-cq",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 7, 1),
        value=value,
        unit=unit,
        entered_by="key-4f2a",
        entered_at=datetime(2026, 7, 3, 9, 15, tzinfo=UTC),
    )


SAMPLE_RULES = (
    RuleSpec("efficiency", "efficiency", "increase_by", 0.2, "ratio", 0.6, 0.75, definition="oee"),
    RuleSpec("defect-rate", "defect_rate", "reduce_by", 0.2, "ratio", 0.025, 0.021),
    RuleSpec("dev-cycle", "development_cycle", "reduce_by", 0.3, "days", None, 148.0),
    RuleSpec("nc-share", "nc_equipment_share", "at_least", 0.5, "ratio", None, 0.625),
    RuleSpec("networking", "networking_rate", "at_least", 0.9, "ratio", None, 0.95, gap_months=("2026-03",)),
    RuleSpec(
        "custom",
        "spindle_hours",
        "at_most",
        1200.0,
        "h",
        None,
        1130.5,
        label_en="Spindle hours",
        label_zh="主轴运行小时",
    ),
)


def sample_report(
    language: Language = "en",
    rules: tuple[RuleSpec, ...] = SAMPLE_RULES,
    *,
    scope: str = "ws-machining",
    scope_kind: str = "workshop",
    sites: tuple[str, ...] = ("site-cq",),
    scheme_id: str = "cq-pilot-targets",
) -> CertificationReport:
    inputs = [business_input("in-0007", "operating_cost", 1234.5, "10k CNY")]
    results = [
        rule_result(spec, inputs if spec.metric == "operating_cost" or spec.id == "dev-cycle" else []) for spec in rules
    ]
    relative = any(r.comparison in ("increase_by", "reduce_by") for r in results)
    return CertificationReport(
        report_id="r-" + scheme_id + "-" + scope,
        language=language,
        scheme=SchemeRef(
            id=scheme_id,
            version="2026.1",
            title_en="Chongqing 13th FYP pilot targets",
            title_zh="重庆市“十三五”试点目标",
            sha256="ab" * 32,
        ),
        scope=scope,
        scope_kind=scope_kind,  # type: ignore[arg-type]
        scope_name="Machining workshop" if language == "en" else "机加工车间",
        sites=list(sites),
        baseline=period(BASELINE_MONTHS) if relative else None,
        assessment=period(ASSESSMENT_MONTHS),
        rules=results,
        verdict=overall_verdict([r.verdict for r in results]),
        provenance=Provenance(
            software_version="0.1.0",
            scheme_version="2026.1",
            asset_model_sha256="cd" * 32,
            input_versions=[("in-0007", 2)],
            query={"scope": scope, "scheme": scheme_id, "assessment": "2026-01-01/2026-07-01"},
            generated_at=datetime(2026, 7, 4, 2, 0, 0, 123456, tzinfo=UTC),
        ),
    )
