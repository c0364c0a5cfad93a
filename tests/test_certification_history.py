"""Certification from generated history in real stores: a known improvement passes, its absence fails on
the right rules, a data gap gives insufficient evidence on the rules it touches.

The factory is the history tests' (tests.test_history_model): three machines (cnc-h1, cnc-h2, robot-h1)
on one electricity meter, two shifts a day. Baseline 2026-03-02..03-07 and assessment 03-07..03-12
(five local days each). With the improvement, losses shrink by 60 % and scrap and rework by 40 %:
good parts per planned busy hour rise by about a quarter, the defect rate falls by about 40 %.

Business inputs (in memory; the same for every dataset): operating cost 100 万元 in the baseline and
75 万元 in the assessment (−25 %, so cost per good part falls by at least the plan's 20 % unless
output falls); one product launched in each period, 62 and 39 days from design start (−37 %).
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.business import InputKind
from core.stores.influx import InfluxStore
from core.stores.sqlite import SqliteStore
from kpi.backfill import backfill
from kpi.certification import Certifier
from kpi.certification_models import CertificationReport
from kpi.energy import load_energy_factors
from kpi.engine import KpiEngine
from kpi.schemes import SchemeRegistry
from simulators.history import HistoryGenerator, HistoryOptions, write_history
from simulators.scenario import FactoryScenario, load_scenario
from tests.certification_support import MemoryInputs, entry
from tests.servers import InfluxServer
from tests.test_history_model import SCENARIO, write_scenario

REPO = Path(__file__).resolve().parent.parent
ZONE = ZoneInfo("Asia/Shanghai")
BASELINE = (date(2026, 3, 2), date(2026, 3, 7))
ASSESSMENT = (date(2026, 3, 7), date(2026, 3, 12))
GAP = (date(2026, 3, 8), date(2026, 3, 10))  # cnc-h1 silent for two of the assessment's five days
PILOT = "cq-13fyp-pilot-targets"
LEAN = HistoryOptions(process_values=False)


def _scenario_text(efficiency: float, defect_rate: float) -> str:
    return (
        SCENARIO.replace(
            "baseline: {start: 2026-03-02, end: 2026-03-05}", "baseline: {start: 2026-03-02, end: 2026-03-07}"
        )
        .replace("assessment: {start: 2026-03-05, end: 2026-03-08}", "assessment: {start: 2026-03-07, end: 2026-03-12}")
        .replace(
            "improvements: {efficiency: 0.25, defect_rate: 0.3, energy_per_part: 0.15}",
            f"improvements: {{efficiency: {efficiency}, defect_rate: {defect_rate}, energy_per_part: 0.15}}",
        )
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZONE).astimezone(UTC)


START, END = _midnight(BASELINE[0]), _midnight(ASSESSMENT[1])
AFTER = END + timedelta(days=1)  # the engine's clock: every hour settled, read from rollups

INPUTS = MemoryInputs(
    [
        entry("cost-base", InputKind.OPERATING_COST, *BASELINE, 100.0),
        entry("cost-assess", InputKind.OPERATING_COST, *ASSESSMENT, 75.0),
        entry("proj-a", InputKind.DEV_PROJECT, date(2026, 1, 1), date(2026, 3, 4), 62),
        entry("proj-b", InputKind.DEV_PROJECT, date(2026, 2, 1), date(2026, 3, 11), 38),
    ]
)


@dataclass(frozen=True)
class Dataset:
    scenario: FactoryScenario
    path: Path


def _delete_gap(path: Path, equipment: str, start: date, end: date) -> int:
    with sqlite3.connect(path) as conn:
        deleted = conn.execute(
            "DELETE FROM points WHERE series LIKE ? AND time_ns >= ? AND time_ns < ?",
            (f'%"equipment":"{equipment}"%', _ns(_midnight(start)), _ns(_midnight(end))),
        ).rowcount
    return deleted


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


async def _write(scenario: FactoryScenario, path: Path) -> None:
    store = SqliteStore(path)
    try:
        await write_history(HistoryGenerator(scenario, options=LEAN), store)
    finally:
        await store.close()


async def _backfill(scenario: FactoryScenario, path: Path) -> None:
    store = SqliteStore(path)
    try:
        engine = KpiEngine(store, scenario.assets, clock=lambda: AFTER)
        await backfill(engine, [eq.id for eq in scenario.assets], START, END)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Dataset]]:
    """Improved, improved with a gap, and flat (no improvement): written once, rollups backfilled."""
    root = tmp_path_factory.mktemp("certification")
    improved = load_scenario(write_scenario(root / "improved", _scenario_text(0.6, 0.4)))
    flat = load_scenario(write_scenario(root / "flat", _scenario_text(0.0, 0.0)))
    paths = {"improved": root / "improved.sqlite", "gap": root / "gap.sqlite", "flat": root / "flat.sqlite"}

    async def build() -> None:
        await asyncio.gather(_write(improved, paths["improved"]), _write(flat, paths["flat"]))
        shutil.copy(paths["improved"], paths["gap"])
        assert _delete_gap(paths["gap"], "cnc-h1", *GAP) > 1000
        for name, scenario in (("improved", improved), ("gap", improved), ("flat", flat)):
            await _backfill(scenario, paths[name])

    asyncio.run(build())
    yield {
        "improved": Dataset(improved, paths["improved"]),
        "gap": Dataset(improved, paths["gap"]),
        "flat": Dataset(flat, paths["flat"]),
    }


async def _evaluate(
    data: Dataset,
    scheme: str,
    scope: str = "hist-site",
    *,
    baseline: tuple[date, date] | None = BASELINE,
    inputs: MemoryInputs = INPUTS,
) -> CertificationReport:
    store = SqliteStore(data.path)
    try:
        factors = load_energy_factors(REPO / "config" / "energy.yaml").for_site("hist-site")
        engine = KpiEngine(store, data.scenario.assets, clock=lambda: AFTER, factors=factors)
        certifier = Certifier(engine, data.scenario.assets, inputs, SchemeRegistry.load(), "0.1.0", clock=lambda: AFTER)
        return await certifier.evaluate(scope, scheme, ASSESSMENT, baseline, "zh", {"scheme": scheme})
    finally:
        await store.close()


def _verdicts(report: CertificationReport) -> dict[str, str]:
    return {r.id: r.verdict for r in report.rules}


async def test_the_improved_factory_meets_the_pilot_targets(datasets: dict[str, Dataset]) -> None:
    report = await _evaluate(datasets["improved"], PILOT)
    assert _verdicts(report) == {
        "efficiency": "pass",
        "operating-cost": "pass",
        "development-cycle": "pass",
        "defect-rate": "pass",
    }
    assert report.verdict == "pass"
    rules = {r.id: r for r in report.rules}

    efficiency = rules["efficiency"]
    assert efficiency.label_zh == "生产效率" and efficiency.unit == "parts/h"
    assert efficiency.baseline is not None and efficiency.baseline.value is not None
    assert efficiency.assessment.value is not None and efficiency.change is not None
    # The value is the base quantities' GQ / PBT, and the verdict rests on assessment >= 1.2 x baseline.
    base = efficiency.assessment.base
    assert efficiency.assessment.value == pytest.approx(base["parts_good"] / (base["planned_busy_time_s"] / 3600))
    assert efficiency.target == pytest.approx(1.2 * efficiency.baseline.value)
    assert efficiency.change == pytest.approx(efficiency.assessment.value / efficiency.baseline.value - 1)
    assert efficiency.change > 0.2 and efficiency.assessment.coverage == pytest.approx(1.0)

    defects = rules["defect-rate"]
    assert defects.change is not None and defects.change == pytest.approx(-0.4, abs=0.1)
    assert defects.target == pytest.approx(0.8 * defects.baseline.value)  # type: ignore[union-attr]

    cost = rules["operating-cost"]
    assert cost.assessment.value == pytest.approx(75.0 / cost.assessment.base["parts_good"])
    assert [(u.entry_id, u.version, u.unit) for u in cost.assessment.inputs] == [("cost-assess", 1, "10k CNY")]
    cycle = rules["development-cycle"]
    assert (cycle.baseline.value, cycle.assessment.value) == (62.0, 38.0)  # type: ignore[union-attr]

    # One month (March) in each period: a point per period and rule whose metric has a monthly value.
    assert [(p.key, p.period, p.status) for p in efficiency.series] == [
        ("2026-03", "baseline", "ok"),
        ("2026-03", "assessment", "ok"),
    ]
    assert efficiency.series[1].value == pytest.approx(efficiency.assessment.value)

    provenance = report.provenance
    assert provenance.input_versions == [("cost-assess", 1), ("cost-base", 1), ("proj-a", 1), ("proj-b", 1)]
    assert provenance.scheme_version == "2016.1" and provenance.query == {"scheme": PILOT}
    assert report.scheme.sha256 == SchemeRegistry.load().get(PILOT).sha256
    assert (report.scope_kind, report.sites) == ("site", ["hist-site"])
    assert report.assessment.label == "2026-03-07 – 2026-03-11"


async def test_without_the_improvement_the_pilot_fails_on_efficiency_and_defect_rate(
    datasets: dict[str, Dataset],
) -> None:
    report = await _evaluate(datasets["flat"], PILOT)
    assert _verdicts(report) == {
        "efficiency": "fail",
        "operating-cost": "pass",  # the cost inputs alone fall by 25 %
        "development-cycle": "pass",
        "defect-rate": "fail",
    }
    assert report.verdict == "fail"
    for rule in report.rules:
        if rule.verdict == "fail":
            assert rule.change is not None and abs(rule.change) < 0.15, rule.id
            assert rule.reason is not None and " is not " in rule.reason


async def test_a_data_gap_gives_insufficient_evidence_on_the_rules_that_rest_on_the_machines(
    datasets: dict[str, Dataset],
) -> None:
    report = await _evaluate(datasets["gap"], PILOT)
    assert _verdicts(report) == {
        "efficiency": "insufficient_evidence",
        "operating-cost": "insufficient_evidence",  # per good part, and the parts are not all known
        "development-cycle": "pass",
        "defect-rate": "insufficient_evidence",
    }
    assert report.verdict == "insufficient_evidence"
    efficiency = next(r for r in report.rules if r.id == "efficiency")
    # Three machines, one silent for two of five days: 13 / 15 of the machine-time is known.
    assert efficiency.assessment.coverage == pytest.approx(13 / 15, abs=0.01)
    assert efficiency.assessment.value is None and efficiency.change is None
    assert efficiency.reason == (
        f"assessment: coverage {efficiency.assessment.coverage:.3f} is below the scheme's minimum 0.9"
    )
    assert efficiency.baseline is not None and efficiency.baseline.status == "ok"  # the baseline is whole

    # The digital workshop sees the same gap as a machine that was not networked in the period.
    workshop = await _evaluate(datasets["gap"], "cq-digital-workshop", "hist-shop", baseline=None)
    networking = next(r for r in workshop.rules if r.id == "networking")
    assert networking.verdict == "fail" and networking.assessment.value == pytest.approx(2 / 3)
    assert networking.assessment.base["networked_equipment"] == 2


async def test_the_digital_workshop_passes_on_nc_share_and_networking(datasets: dict[str, Dataset]) -> None:
    report = await _evaluate(datasets["improved"], "cq-digital-workshop", "hist-shop", baseline=None)
    assert _verdicts(report) == {"nc-equipment-share": "pass", "networking": "pass"}
    assert report.baseline is None and report.scope_kind == "workshop"
    nc = report.rules[0]
    assert nc.assessment.value == 1.0 and nc.target == 0.5 and nc.series == []


async def test_the_miit_pilot_needs_a_baseline_and_says_so(datasets: dict[str, Dataset]) -> None:
    report = await _evaluate(datasets["improved"], "miit-2015-pilot", baseline=None)
    assert set(_verdicts(report).values()) == {"insufficient_evidence"}
    assert {r.reason for r in report.rules} == {"the rule compares with a baseline period, and none was given"}
    full = await _evaluate(datasets["improved"], "miit-2015-pilot")
    assert full.verdict == "pass"
    energy = next(r for r in full.rules if r.id == "energy-utilisation")
    assert energy.unit == "parts/kgce" and energy.change is not None and energy.change > 0.04


async def test_missing_business_inputs_give_insufficient_evidence_with_the_reason(
    datasets: dict[str, Dataset],
) -> None:
    report = await _evaluate(datasets["improved"], PILOT, inputs=MemoryInputs())
    rules = {r.id: r for r in report.rules}
    assert rules["efficiency"].verdict == "pass" and rules["defect-rate"].verdict == "pass"
    assert rules["operating-cost"].verdict == "insufficient_evidence"
    assert rules["operating-cost"].reason == "baseline: no operating_cost entered for 2026-03-02..2026-03-07"
    assert rules["development-cycle"].reason == (
        "baseline: no product development project launched in 2026-03-02..2026-03-07"
    )
    assert report.verdict == "insufficient_evidence"


async def test_the_same_query_over_the_same_data_gives_the_same_report(datasets: dict[str, Dataset]) -> None:
    first = await _evaluate(datasets["improved"], PILOT)
    second = await _evaluate(datasets["improved"], PILOT)
    assert first.model_dump() == second.model_dump()
    assert len(first.report_id) == 64
    other_data = await _evaluate(datasets["flat"], PILOT)
    assert other_data.report_id != first.report_id


async def test_the_same_history_in_influxdb_gives_the_same_verdicts_and_numbers(
    datasets: dict[str, Dataset], influx_server: InfluxServer, influx_database: str
) -> None:
    data = datasets["improved"]
    store = InfluxStore(influx_server.url, influx_database)
    try:
        await write_history(HistoryGenerator(data.scenario, options=LEAN), store)
        engine = KpiEngine(store, data.scenario.assets, clock=lambda: AFTER)
        certifier = Certifier(engine, data.scenario.assets, INPUTS, SchemeRegistry.load(), "0.1.0", clock=lambda: AFTER)
        # No rollups in this database: every hour is folded from the raw series.
        from_influx = await certifier.evaluate("hist-site", PILOT, ASSESSMENT, BASELINE, "zh", {"scheme": PILOT})
    finally:
        await store.close()
    from_sqlite = await _evaluate(data, PILOT)
    assert _verdicts(from_influx) == _verdicts(from_sqlite)
    for a, b in zip(from_influx.rules, from_sqlite.rules, strict=True):
        assert a.assessment.value == pytest.approx(b.assessment.value, rel=1e-9), a.id
        assert a.baseline is not None and b.baseline is not None
        assert a.baseline.value == pytest.approx(b.baseline.value, rel=1e-9), a.id


async def test_operating_cost_meets_minus_twenty_percent_exactly_at_eight_tenths_of_the_baseline(
    datasets: dict[str, Dataset],
) -> None:
    # Cost per good part = cost / GQ. With GQ of both periods from the report, an assessment cost of
    # 0.8 x 100 x GQ_a / GQ_b puts the assessment at exactly 0.8 x the baseline's cost per part.
    first = await _evaluate(datasets["improved"], PILOT)
    cost = next(r for r in first.rules if r.id == "operating-cost")
    assert cost.baseline is not None
    good_a, good_b = cost.assessment.base["parts_good"], cost.baseline.base["parts_good"]
    at_target = 0.8 * 100.0 * good_a / good_b

    def with_cost(amount: float) -> MemoryInputs:
        return MemoryInputs([*INPUTS.versions[:1], entry("cost-assess", InputKind.OPERATING_COST, *ASSESSMENT, amount)])

    verdicts = {}
    for name, amount in (("at", at_target), ("above", at_target * (1 + 1e-6)), ("below", at_target * (1 - 1e-6))):
        report = await _evaluate(datasets["improved"], PILOT, inputs=with_cost(amount))
        rule = next(r for r in report.rules if r.id == "operating-cost")
        verdicts[name] = rule.verdict
        assert rule.change == pytest.approx(-0.2, abs=1e-5)
    assert verdicts == {"at": "pass", "above": "fail", "below": "pass"}
