"""The provisioned Grafana dashboard: its structure, and every panel's query run against a real InfluxDB.

No Grafana server runs here, so the test does what Grafana would: substitute the template macros and
send each InfluxQL query to InfluxDB's /query, over data written the way ingest and the KPI worker
write it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.assets import load_asset_model
from core.settings import load_settings
from core.stores.influx import InfluxStore
from core.wire import Sample
from ingest.mapping import sample_to_point
from kpi.worker import KpiWorker
from tests.servers import InfluxServer

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "factory-overview.json"
START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_structure_is_what_grafana_provisions(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "factory-overview"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "factory-influxdb", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["rawQuery"] and "$timeFilter" in target["query"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24


def _samples() -> list[Sample]:
    """Two hours of cnc-01 and meter-a: producing with a breakdown, 1 part a minute, 2 kWh an hour."""
    out: list[Sample] = []
    for minute in range(120):
        ts = START + timedelta(minutes=minute)
        if minute in (0, 50, 60):
            state = "DOWN" if minute == 50 else "PRODUCING"
            out.append(Sample(equipment="cnc-01", signal="state", ts=ts, value=state, raw=state))
        out.append(Sample(equipment="cnc-01", signal="parts_total", ts=ts, value=1000 + minute))
        out.append(Sample(equipment="cnc-01", signal="parts_good", ts=ts, value=990 + minute - minute // 30))
        out.append(Sample(equipment="cnc-01", signal="parts_scrap", ts=ts, value=10 + minute // 30))
        out.append(Sample(equipment="meter-a", signal="energy_kwh", ts=ts, value=500 + minute / 30))
    return out


def _substitute(query: str, start: datetime, end: datetime) -> str:
    time_filter = f"time >= {int(start.timestamp())}s AND time < {int(end.timestamp())}s"
    return (
        query.replace("$timeFilter", time_filter).replace("$__interval", "1m").replace("$equipment", "(cnc-01|cnc-02)")
    )


async def test_every_panel_query_runs_and_returns_data(
    dashboard: dict[str, Any],
    tmp_path: Path,
    example_assets_path: Path,
    influx_server: InfluxServer,
    influx_database: str,
) -> None:
    (tmp_path / "settings.yaml").write_text(
        f"assets: {example_assets_path}\n"
        f"store: {{kind: influxdb, influx_url: '{influx_server.url}', influx_database: {influx_database}}}\n"
        "kpi: {settle_hours: 2}\n"
    )
    settings = load_settings(tmp_path / "settings.yaml", environ={})
    assets = load_asset_model(settings.assets)
    store = InfluxStore.from_settings(settings.store)
    try:
        await store.write([sample_to_point(s, assets.placement(s.equipment)) for s in _samples()])
        written = await KpiWorker(settings, store, assets).recompute(now=START + timedelta(hours=2))
        assert written > 0
    finally:
        await store.close()

    end = START + timedelta(hours=2)
    async with httpx.AsyncClient(base_url=influx_server.url) as client:
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                response = await client.post(
                    "/query", data={"db": influx_database, "q": _substitute(target["query"], START, end)}
                )
                assert response.status_code == 200, (panel["title"], response.text)
                (result,) = response.json()["results"]
                assert "error" not in result, (panel["title"], result)
                values = [v for series in result.get("series", []) for row in series["values"] for v in row[1:]]
                assert any(v is not None for v in values), f"panel {panel['title']!r} returned no data"
        variable = dashboard["templating"]["list"][0]["query"]
        response = await client.post("/query", data={"db": influx_database, "q": variable})
        (series,) = response.json()["results"][0]["series"]
        assert ["equipment", "cnc-01"] in series["values"]
