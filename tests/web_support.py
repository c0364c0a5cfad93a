"""Shared by the web tests: a real SQLite store holding generated history with a known improvement.

The history generator writes a baseline and an assessment period ending today (so the overview's
"last 7 days" and a report over those dates have real numbers), then the rollups are backfilled,
as the KPI worker would have done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI

from api.app import create_app
from api.web import (
    pending,  # TEMP until the reporting branch lands (site keys via its keygen)
    site_keys_dir,
)
from core.assets import EquipmentType
from core.settings import ApiSettings, Settings
from core.stores.sqlite import SqliteStore
from core.wire import ns_to_datetime
from kpi.backfill import backfill
from kpi.engine import KpiEngine
from simulators.history import HistoryGenerator, HistoryOptions, write_history
from simulators.history_model import day_bounds
from simulators.scenario import FactoryScenario, load_scenario
from tests.test_history_model import SCENARIO, write_scenario

AUDITOR_KEY = "auditor-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
VIEWER_KEY = "viewer-key-0123456789abcdef"
KEYS = {AUDITOR_KEY: "auditor", ADMIN_KEY: "admin", VIEWER_KEY: "viewer"}
WEEK = 7


@dataclass(frozen=True, slots=True)
class HistoryData:
    scenario: FactoryScenario
    store_path: Path
    baseline: tuple[date, date]  # local dates [start, end)
    assessment: tuple[date, date]


def scenario_ending_today(directory: Path, days_each: int = WEEK) -> tuple[Path, tuple[date, date], tuple[date, date]]:
    today = datetime.now(UTC).date()
    assessment = (today - timedelta(days=days_each), today)
    baseline = (assessment[0] - timedelta(days=days_each), assessment[0])
    text = re.sub(
        r"  baseline: .*\n  assessment: .*\n",
        f"  baseline: {{start: {baseline[0]}, end: {baseline[1]}}}\n"
        f"  assessment: {{start: {assessment[0]}, end: {assessment[1]}}}\n",
        SCENARIO,
    )
    return write_scenario(directory, text), baseline, assessment


async def write_history_store(directory: Path, days_each: int = WEEK) -> HistoryData:
    path, baseline, assessment = scenario_ending_today(directory, days_each)
    scenario = load_scenario(path)
    generator = HistoryGenerator(scenario, options=HistoryOptions(process_values=False))
    store_path = directory / "history.sqlite"
    store = SqliteStore(store_path)
    try:
        await write_history(generator, store)
        start = ns_to_datetime(day_bounds(generator.days[0], generator.tz)[0])
        end = ns_to_datetime(day_bounds(generator.days[-1], generator.tz)[1])
        engine = KpiEngine(store, scenario.assets)
        equipment = [eq.id for eq in scenario.assets if eq.produces_parts or eq.type == EquipmentType.METER]
        await backfill(engine, equipment, start, end)
    finally:
        await store.close()
    return HistoryData(scenario, store_path, baseline, assessment)


def web_settings(data: HistoryData, reports_dir: Path) -> Settings:
    settings = Settings(assets=Path(data.scenario.assets.source), api=ApiSettings(reports_dir=reports_dir))
    keys = pending.SiteKeys(site_keys_dir(settings))
    if not keys.public_path(data.scenario.assets.site.id).exists():
        keys.generate(data.scenario.assets.site.id)
    return settings


def web_app(data: HistoryData, store: SqliteStore, reports_dir: Path) -> FastAPI:
    return create_app(web_settings(data, reports_dir), store, data.scenario.assets, KEYS)
