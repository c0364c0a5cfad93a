"""Rules over hand-built windows: withheld, flagged and thin evidence, inputs per site, networking, series.

A ``Window`` is what a metric sees of one period: the engine's base quantities and KPI figures and the
period's business inputs. Built by hand here, so each case isolates one rule of the verdict logic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from core.assets import Equipment, EquipmentType, load_asset_model
from core.business import InputKind
from core.stores.sqlite import SqliteStore
from kpi.base import BaseQuantities
from kpi.certification import Certifier, MonthWindow, PeriodWindows, evaluate_rule
from kpi.certification_models import Comparison
from kpi.engine import KpiEngine
from kpi.metrics import EquipmentUpload, Figure, Window, WindowInputs, networking_rate
from kpi.report import BaseQuantitiesModel
from kpi.schemes import Rule, SchemeRegistry
from tests.certification_support import MemoryInputs, entry

REPO = Path(__file__).resolve().parent.parent
PILOT = "cq-13fyp-pilot-targets"

H1 = (date(2026, 1, 1), date(2026, 7, 1))  # 181 days
H2 = (date(2026, 7, 1), date(2027, 1, 1))  # 184 days


def rule(metric: str, comparison: Comparison, threshold: float, definition: str | None = None) -> Rule:
    return Rule(
        id=metric,
        metric=metric,
        definition=definition,
        comparison=comparison,
        threshold=threshold,
        min_coverage=0.9,
        upload_threshold=0.9,
        title=None,
        note="",
    )


def base(parts_good: int = 9000, pbt_s: float = 216_000.0, scrap: int = 300) -> BaseQuantitiesModel:
    return BaseQuantitiesModel.of(
        BaseQuantities(
            production_time_s=pbt_s,
            parts_produced=parts_good + scrap,
            parts_good=parts_good,
            parts_scrap=scrap,
            covered_s=pbt_s,
            counter_covered_s=pbt_s,
            expected_s=pbt_s,
        )
    )


def window(
    period: tuple[date, date],
    *,
    kpis: dict[str, Figure] | None = None,
    inputs: list | None = None,  # type: ignore[type-arg]
    b: BaseQuantitiesModel | None = None,
    partial_site: str | None = None,
    equipment: tuple[EquipmentUpload, ...] | None = None,
) -> Window:
    by_kind: dict[InputKind, list] = {}  # type: ignore[type-arg]
    for e in inputs or []:
        by_kind.setdefault(e.kind, []).append(e)
    ok = Figure(0.05, "ok", 1.0)
    return Window(
        start=period[0],
        end=period[1],
        base=b or base(),
        kpis=kpis if kpis is not None else {"defect_rate": ok, "throughput_rate": Figure(150.0, "ok", 1.0)},
        inputs=WindowInputs({"s1": by_kind}, *period),
        equipment=equipment,
        partial_site=partial_site,
    )


def periods(assessment: Window, baseline: Window | None = None) -> tuple[PeriodWindows, PeriodWindows | None]:
    return PeriodWindows(assessment, []), None if baseline is None else PeriodWindows(baseline, [])


def test_a_flagged_assessment_value_is_insufficient_evidence_with_the_engines_reason() -> None:
    flagged = Figure(1.3, "flagged", 1.0, "above 1: the ideal cycle time is probably too long")
    fine = Figure(0.6, "ok", 1.0)
    result = evaluate_rule(
        rule("efficiency", "increase_by", 0.2, "oee"),
        *periods(window(H2, kpis={"oee": flagged}), window(H1, kpis={"oee": fine})),
    )
    assert result.verdict == "insufficient_evidence" and result.change is None
    assert result.reason == "assessment: flagged: above 1: the ideal cycle time is probably too long"
    assert result.assessment.status == "flagged" and result.assessment.value == 1.3  # shown, not judged
    assert result.target == pytest.approx(0.72)


def test_a_withheld_baseline_value_is_insufficient_evidence_naming_the_baseline() -> None:
    withheld = Figure(None, "insufficient_evidence", 0.3, "coverage 0.300 is below the minimum 0.5")
    result = evaluate_rule(
        rule("defect_rate", "reduce_by", 0.2),
        *periods(window(H2), window(H1, kpis={"defect_rate": withheld})),
    )
    assert result.verdict == "insufficient_evidence"
    assert result.reason == "baseline: coverage 0.300 is below the minimum 0.5"


def test_coverage_below_the_rules_minimum_withholds_a_value_the_engine_accepted() -> None:
    thin = Figure(0.04, "ok", 0.85)
    result = evaluate_rule(
        rule("defect_rate", "reduce_by", 0.2), *periods(window(H2, kpis={"defect_rate": thin}), window(H1))
    )
    assert result.verdict == "insufficient_evidence"
    assert result.assessment.value is None and result.assessment.coverage == 0.85
    assert result.reason == "assessment: coverage 0.850 is below the scheme's minimum 0.9"


def test_operating_cost_per_unit_worked_example() -> None:
    # Baseline: 120 万元 for 40,000 good parts = 0.003 万元 a part. Assessment: 100 万元 for 42,000 parts
    # = 0.0023810; target 0.8 x 0.003 = 0.0024; change 0.0023810 / 0.003 - 1 = -20.6 %: pass.
    cost = InputKind.OPERATING_COST
    result = evaluate_rule(
        rule("operating_cost", "reduce_by", 0.2, "per_unit"),
        *periods(
            window(H2, b=base(parts_good=42_000), inputs=[entry("c2", cost, *H2, 100.0, site="s1")]),
            window(H1, b=base(parts_good=40_000), inputs=[entry("c1", cost, *H1, 120.0, site="s1")]),
        ),
    )
    assert result.verdict == "pass"
    assert result.assessment.value == pytest.approx(100 / 42_000)
    assert result.target == pytest.approx(0.0024)
    assert result.change == pytest.approx((100 / 42_000) / 0.003 - 1)
    assert result.assessment.base == {"operating_cost_10k_cny": 100.0, "parts_good": 42_000.0}
    assert [(u.entry_id, u.kind, u.unit) for u in result.assessment.inputs] == [("c2", "operating_cost", "10k CNY")]


def test_inputs_per_site_are_not_divided_by_part_of_the_sites_output() -> None:
    cost = InputKind.OPERATING_COST
    why = "business inputs are entered per site, and 'machining' holds only part of site s1"
    result = evaluate_rule(
        rule("operating_cost", "reduce_by", 0.2, "per_unit"),
        *periods(
            window(H2, inputs=[entry("c2", cost, *H2, 100.0, site="s1")], partial_site=why),
            window(H1, inputs=[entry("c1", cost, *H1, 120.0, site="s1")], partial_site=why),
        ),
    )
    assert result.verdict == "insufficient_evidence"
    assert result.reason == f"baseline: operating cost per unit: {why}"
    # A metric made of the site's inputs alone still has a value for the workshop.
    dev = InputKind.DEV_PROJECT
    cycle = evaluate_rule(
        rule("development_cycle", "reduce_by", 0.3, "mean_design_to_launch"),
        *periods(
            window(H2, inputs=[entry("p2", dev, date(2026, 6, 1), date(2026, 8, 10), 70, site="s1")], partial_site=why),
            window(H1, inputs=[entry("p1", dev, date(2026, 1, 5), date(2026, 5, 1), 116, site="s1")], partial_site=why),
        ),
    )
    # 116 -> 70 days: 70 / 116 - 1 = -39.7 %, target 0.7 x 116 = 81.2.
    assert (cycle.verdict, cycle.target) == ("pass", pytest.approx(81.2))


def test_labour_productivity_against_the_plans_35_per_person_and_year() -> None:
    # H1 2026 (181 days): value added 9,050 万元, 500 employees: 9050 x 365 / 181 / 500 = 36.5 万元/人·年.
    va, hc = InputKind.VALUE_ADDED, InputKind.HEADCOUNT
    inputs = [
        entry("va", va, *H1, 9050.0, site="s1"),
        entry("hc", hc, date(2026, 1, 1), date(2027, 1, 1), 500, site="s1"),
    ]
    result = evaluate_rule(rule("labour_productivity", "at_least", 35), *periods(window(H1, inputs=inputs)))
    assert result.verdict == "pass" and result.assessment.value == pytest.approx(36.5)
    assert result.unit == "10k CNY/person·year" and result.label_zh == "全员劳动生产率"
    assert result.assessment.base == {"average_headcount": 500.0, "days": 181.0, "value_added_10k_cny": 9050.0}
    # Value added entered for five of the six months: no value, and the missing month is named.
    months = [(date(2026, m, 1), date(2026, m + 1, 1)) for m in range(1, 6)]
    partial = [entry(f"va-{n}", va, *m, 1500.0, site="s1") for n, m in enumerate(months)] + inputs[1:]
    missing = evaluate_rule(rule("labour_productivity", "at_least", 35), *periods(window(H1, inputs=partial)))
    assert missing.verdict == "insufficient_evidence"
    assert missing.reason == (
        "assessment: value_added covers 83% of 2026-01-01..2026-07-01; no entry for 2026-06-01..2026-07-01"
    )


def test_energy_and_water_per_value_added_against_the_plans_reductions() -> None:
    # Baseline: 250,000 kgce = 250 tce for 1,000 万元 = 0.25 tce/万元. Assessment: 240 tce for 1,200 万元
    # = 0.2 tce/万元, -20 %; the plan's -18 % asks for at most 0.82 x 0.25 = 0.205: pass.
    va, water = InputKind.VALUE_ADDED, InputKind.WATER_INTAKE

    def energy(kgce: float) -> dict[str, Figure]:
        return {"comprehensive_energy_kgce": Figure(kgce, "ok", 1.0)}

    result = evaluate_rule(
        rule("energy_per_value_added", "reduce_by", 0.18),
        *periods(
            window(H2, kpis=energy(240_000.0), inputs=[entry("va2", va, *H2, 1200.0, site="s1")]),
            window(H1, kpis=energy(250_000.0), inputs=[entry("va1", va, *H1, 1000.0, site="s1")]),
        ),
    )
    assert (result.verdict, result.unit) == ("pass", "tce/10k CNY")
    assert result.baseline is not None and result.baseline.value == pytest.approx(0.25)
    assert result.assessment.value == pytest.approx(0.2) and result.target == pytest.approx(0.205)
    assert result.assessment.base == {"kgce": 240_000.0, "value_added_10k_cny": 1200.0}
    # Water: 12,000 m³ / 1,000 万元 = 12 -> 9,600 m³ / 1,200 万元 = 8 m³/万元, -33 %: meets -30 % (<= 8.4).
    water_rule = evaluate_rule(
        rule("water_intensity", "reduce_by", 0.3),
        *periods(
            window(H2, inputs=[entry("va2", va, *H2, 1200.0, site="s1"), entry("w2", water, *H2, 9600.0, site="s1")]),
            window(H1, inputs=[entry("va1", va, *H1, 1000.0, site="s1"), entry("w1", water, *H1, 12_000.0, site="s1")]),
        ),
    )
    assert (water_rule.verdict, water_rule.assessment.value, water_rule.target) == (
        "pass",
        pytest.approx(8.0),
        pytest.approx(8.4),
    )
    assert [u.entry_id for u in water_rule.assessment.inputs] == ["va2", "w2"]


def _equipment(eq_id: str, kind: EquipmentType, received: float, **extra: object) -> EquipmentUpload:
    fields: dict[str, object] = {"id": eq_id, "type": kind, **extra}
    if kind in (EquipmentType.CNC, EquipmentType.ROBOT):
        fields["ideal_cycle_time_s"] = 10
    if kind == EquipmentType.METER:
        fields["carrier"] = "electricity"
    return EquipmentUpload(Equipment.model_validate(fields), received, 100.0)


def test_networking_counts_processing_inspection_and_logistics_equipment_at_the_upload_threshold() -> None:
    fleet = (
        _equipment("cnc-1", EquipmentType.CNC, 90.0),  # 0.90: at the threshold, networked
        _equipment("robot-1", EquipmentType.ROBOT, 89.9),  # 0.899: not
        _equipment("agv-1", EquipmentType.LOGISTICS, 100.0),
        _equipment("cmm-1", EquipmentType.INSPECTION, 95.0),
        _equipment("bench-1", EquipmentType.MANUAL, 0.0),  # no digital interface: not counted
        _equipment("meter-1", EquipmentType.METER, 10.0),  # a meter is none of the three: not counted
    )
    assert networking_rate(fleet, 0.9) == (0.75, 3, 4)
    result = evaluate_rule(rule("networking_rate", "at_least", 1.0), *periods(window(H2, equipment=fleet)))
    assert result.verdict == "fail" and result.assessment.value == 0.75
    assert result.assessment.base == {"digital_equipment": 4.0, "networked_equipment": 3.0, "upload_threshold": 0.9}
    assert result.series == []  # a property of the whole period


def test_series_has_a_point_per_month_with_its_own_status() -> None:
    march = Window(
        start=date(2026, 3, 1),
        end=date(2026, 4, 1),
        base=base(),
        kpis={"defect_rate": Figure(0.04, "ok", 0.5)},  # half the month without data
        inputs=WindowInputs({}, date(2026, 3, 1), date(2026, 4, 1)),
    )
    month = MonthWindow("2026-03", datetime(2026, 2, 28, 16, tzinfo=UTC), datetime(2026, 3, 31, 16, tzinfo=UTC), march)
    whole = window((date(2026, 1, 1), date(2026, 4, 1)))
    result = evaluate_rule(rule("defect_rate", "at_most", 0.06), PeriodWindows(whole, [month]), None)
    assert result.verdict == "pass"
    assert [(p.key, p.period, p.value, p.status) for p in result.series] == [
        ("2026-03", "assessment", None, "insufficient_evidence")
    ]


# --- the certifier's refusals, over a real (empty) store ----------------------------------------


@pytest.fixture
async def certifier(tmp_path: Path) -> AsyncIterator[Certifier]:
    assets = load_asset_model(REPO / "config" / "factory.yaml")
    store = SqliteStore(tmp_path / "empty.sqlite")
    try:
        engine = KpiEngine(store, assets, clock=lambda: datetime(2026, 8, 1, tzinfo=UTC))
        yield Certifier(engine, assets, MemoryInputs(), SchemeRegistry.load(), "0.1.0")
    finally:
        await store.close()


async def test_unknown_schemes_scopes_and_periods_that_are_not_periods_are_refused(certifier: Certifier) -> None:
    with pytest.raises(KeyError, match="unknown scheme 'nope'"):
        await certifier.evaluate("cq-demo", "nope", H2, H1, "en", {})
    with pytest.raises(KeyError, match="unknown scope 'nowhere'"):
        await certifier.evaluate("nowhere", "cq-digital-workshop", H2, None, "en", {})
    with pytest.raises(ValueError, match=r"assessment period ends \(2026-01-01\) before it starts \(2026-07-01\)"):
        await certifier.evaluate("cq-demo", "cq-digital-workshop", (H2[0], H1[0]), None, "en", {})
    with pytest.raises(ValueError, match=r"the baseline \(2026-01-01..2026-07-02\) must end by the assessment's start"):
        await certifier.evaluate("cq-demo", PILOT, H2, (H1[0], date(2026, 7, 2)), "en", {})


async def test_a_workshop_of_a_site_with_two_gets_no_cost_per_unit_from_the_sites_inputs(certifier: Certifier) -> None:
    report = await certifier.evaluate("machining", PILOT, (date(2026, 7, 1), date(2026, 7, 8)), H1, "en", {})
    rules = {r.id: r for r in report.rules}
    assert rules["operating-cost"].reason == (
        "baseline: operating cost per unit: business inputs are entered per site, and 'machining' holds only part"
        " of site cq-demo: evaluate the site (or a scope holding all of its equipment)"
    )
    # Nothing was stored: no number anywhere, every rule says why.
    assert rules["efficiency"].verdict == "insufficient_evidence" and rules["efficiency"].assessment.value is None
    assert report.verdict == "insufficient_evidence" and report.scope_kind == "workshop"
    assert report.scope_name and report.sites == ["cq-demo"]


async def test_digital_indicators_of_a_scope_that_reported_nothing_are_insufficient_evidence(
    certifier: Certifier,
) -> None:
    # Silence lowers the CNC and networking rates of a scope whose other machines report; when none
    # reported at all, the numbers would only say that the platform was not collecting.
    report = await certifier.evaluate(
        "machining", "cq-digital-workshop", (date(2026, 7, 1), date(2026, 7, 8)), None, "en", {}
    )
    assert {r.id: r.verdict for r in report.rules} == {
        "nc-equipment-share": "insufficient_evidence",
        "networking": "insufficient_evidence",
    }
    assert report.rules[0].reason == (
        "assessment: no equipment of the scope reported in the period: the platform has no data to confirm it"
    )


async def test_inputs_as_of_an_instant_regenerate_a_report_over_the_versions_it_was_made_from(
    certifier: Certifier,
) -> None:
    dev = InputKind.DEV_PROJECT
    first = entry("p-1", dev, date(2026, 1, 10), date(2026, 3, 1), 50, site="cq-demo")
    corrected = first.model_copy(
        update={
            "version": 2,
            "period_start": date(2026, 1, 1),
            "value": 59,
            "entered_at": datetime(2026, 5, 1, tzinfo=UTC),
        }
    )
    inputs = MemoryInputs([first, corrected])
    later = Certifier(certifier.engine, certifier.assets, inputs, certifier.schemes, "0.1.0")

    async def cycle(as_of: datetime | None) -> tuple[float | None, list[tuple[str, int]]]:
        week = (date(2026, 3, 1), date(2026, 3, 8))  # the week the project was launched in
        report = await later.evaluate("cq-demo", PILOT, week, None, "en", {}, inputs_as_of=as_of)
        rule = next(r for r in report.rules if r.id == "development-cycle")
        return rule.assessment.value, report.provenance.input_versions

    assert await cycle(None) == (59.0, [("p-1", 2)])
    assert await cycle(datetime(2026, 4, 15, tzinfo=UTC)) == (50.0, [("p-1", 1)])
