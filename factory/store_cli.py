"""``factory store setup``: make the InfluxDB database and retention policies the settings name.

Idempotent (``core.stores.influx_setup``): run it before the first start and after changing a
retention setting; it prints what it found and what it changed. Exit status 0 when the store is as
the settings say, 1 when the server could not be reached, refused, or (2.x/3.x) lacks a mapping.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import StoreError
from core.settings import Settings
from core.stores.retention import describe, parse_duration

if TYPE_CHECKING:
    from core.stores.influx_setup import SetupReport


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    p = actions.add_parser(
        "setup", help="create the InfluxDB database and retention policies (raw points, KPI rollups); idempotent"
    )
    p.add_argument("--config", type=Path, help="settings YAML (default: $FACTORY_CONFIG)")


def retention_warnings(settings: Settings) -> list[str]:
    """Settings that would have raw points expire before the services are done with them."""
    if settings.store.influx_retention_policy is None:
        return []
    raw = parse_duration(settings.store.influx_raw_retention)
    if raw is None:
        return []
    needs = {
        "ingest.max_past_days (older samples are still accepted)": timedelta(days=settings.ingest.max_past_days),
        "kpi.late_data_horizon_h (the KPI worker re-reads raw hours this far back)": timedelta(
            hours=settings.kpi.late_data_horizon_h
        ),
    }
    return [
        f"warning: raw points are kept {describe(raw)}, less than {what}: {describe(need)};"
        " InfluxDB refuses points older than its policy"
        for what, need in needs.items()
        if raw < need
    ]


async def _set_up(settings: Settings) -> SetupReport:
    # Imported here: the InfluxDB store brings pandas, which every other command (the edge agent's
    # above all) would carry for nothing, since the command line imports this module to build its parser.
    from core.stores.influx import InfluxStore
    from core.stores.influx_setup import set_up

    async with InfluxStore.from_settings(settings.store) as store:
        return await set_up(store, settings.store.retention_policies())


def run_store(settings: Settings, args: argparse.Namespace) -> int:
    if settings.store.kind != "influxdb":
        print(f"store kind {settings.store.kind}: nothing to set up (the SQLite file is made on first use)")
        return 0
    try:
        report = asyncio.run(_set_up(settings))
    except StoreError as exc:
        print(f"factory: store setup failed: {exc}", file=sys.stderr)
        return 1
    print(report.server)
    for line in report.lines:
        print(line)
    for warning in retention_warnings(settings):
        print(warning)
    if report.missing:
        print(f"{report.missing} missing: see docs/influxdb.md", file=sys.stderr)
        return 1
    print(f"{report.changed} change(s)" if report.changed else "nothing to change")
    return 0
