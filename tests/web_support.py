"""Shared by the web tests: a park of two sites, one of them with generated history of a known improvement.

The history generator writes a baseline and an assessment week ending today for ``hist-site`` (so
the overview's "last 7 days" and a report over those dates have real numbers), then the rollups
are backfilled, as the KPI worker would have done. ``east-site`` has one machine and no data: the
other factory, whose key must not see ``hist-site`` (and the other way round).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI

from api.app import create_app
from api.keys import KeyStore, Role
from api.reporting import SiteKeys
from core.assets import EquipmentType
from core.settings import ApiSettings, InputsSettings, ReportSettings, Settings
from core.stores.sqlite import SqliteStore
from core.wire import ns_to_datetime
from kpi.backfill import backfill
from kpi.engine import KpiEngine
from simulators.history import HistoryGenerator, HistoryOptions, write_history
from simulators.history_model import day_bounds
from simulators.scenario import FactoryScenario, load_scenario
from tests.test_history_model import ASSETS, SCENARIO

PARK = "hist-park"
SITE = "hist-site"
OTHER_SITE = "east-site"
MACHINES = ("cnc-h1", "cnc-h2", "robot-h1")
WEEK = 7

_EAST = """\
    - id: east-site
      name: East works
      timezone: Asia/Shanghai
      workshops:
        - id: east-shop
          lines:
            - id: east-line
              equipment:
                - {id: cnc-e1, type: cnc, numerically_controlled: true, process_step: milling, key_process: true,
                   ideal_cycle_time_s: 30}
"""


def park_assets() -> str:
    """The history tests' site, as the first of a park of two."""
    header, site = ASSETS.split("site:\n", 1)
    lines = site.splitlines()
    moved = ["    - " + lines[0].strip(), *("    " + line for line in lines[1:])]
    return f"{header}park:\n  id: {PARK}\n  name: History park\n  sites:\n" + "\n".join(moved) + "\n" + _EAST


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
    ).replace("seed: 11\n", f"seed: 11\nsite: {SITE}\n")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "assets.yaml").write_text(park_assets())
    path = directory / "scenario.yaml"
    path.write_text(text)
    return path, baseline, assessment


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


@dataclass(frozen=True, slots=True)
class WebKeys:
    """API keys of each kind the tests need, as their secrets."""

    auditor: str  # the park's
    admin: str  # the park's
    site_auditor: str  # hist-site's only
    other_auditor: str  # east-site's only
    store: KeyStore


def web_settings(data: HistoryData, directory: Path) -> Settings:
    """Settings whose every file lives in ``directory``; every site of the park and the park have signing keys."""
    settings = Settings(
        assets=Path(data.scenario.assets.source),
        api=ApiSettings(reports_dir=directory / "reports", keys_path=directory / "api-keys.sqlite"),
        inputs=InputsSettings(path=directory / "inputs.sqlite"),
        reports=ReportSettings(keys_dir=directory / "site-keys"),
    )
    keys = SiteKeys(settings.reports.keys_dir)
    for signer in (PARK, SITE, OTHER_SITE):
        if not keys.public_path(signer).exists():
            keys.generate(signer)
    return settings


def web_keys(settings: Settings) -> WebKeys:
    store = KeyStore(settings.api.keys_path)
    return WebKeys(
        auditor=store.create("park auditor", Role.AUDITOR, None, "test").secret,
        admin=store.create("park admin", Role.ADMIN, None, "test").secret,
        site_auditor=store.create("hist auditor", Role.AUDITOR, SITE, "test").secret,
        other_auditor=store.create("east auditor", Role.AUDITOR, OTHER_SITE, "test").secret,
        store=store,
    )


def web_app(data: HistoryData, store: SqliteStore, directory: Path) -> tuple[FastAPI, WebKeys, Settings]:
    settings = web_settings(data, directory)
    keys = web_keys(settings)
    return create_app(settings, store, data.scenario.assets, keys.store), keys, settings
