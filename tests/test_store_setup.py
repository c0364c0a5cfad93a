"""``factory store setup`` against a real InfluxDB 1.6.7: database and retention policies, idempotent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from core.assets import load_asset_model
from core.settings import load_settings
from core.stores.influx import InfluxStore
from core.stores.influx_setup import set_up
from core.stores.retention import RetentionPolicy
from core.wire import Sample, datetime_to_ns
from factory.cli import main
from ingest.mapping import sample_to_point
from kpi.rollup import HourRow
from kpi.worker import KpiWorker
from tests.servers import InfluxServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
HOUR = 3_600_000_000_000


def settings_file(tmp_path: Path, influx_server: InfluxServer, database: str, **store: str) -> Path:
    lines = [f"assets: {REPO / 'config' / 'factory.yaml'}", "store:", "  kind: influxdb"]
    lines += [f"  influx_url: {influx_server.url}", f"  influx_database: {database}"]
    lines += [f"  {key}: {value}" for key, value in store.items()]
    path = tmp_path / "settings.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def setup_output(config: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["store", "setup", "--config", str(config)]) == 0
    return capsys.readouterr().out.splitlines()


def policies_on(url: str, database: str) -> list[list[object]]:
    with httpx.Client(base_url=url) as admin:
        response = admin.post("/query", data={"q": f'SHOW RETENTION POLICIES ON "{database}"'})
    return [row for s in response.json()["results"][0]["series"] for row in s["values"]]


def test_setup_makes_the_database_and_both_policies_and_a_second_run_changes_nothing(
    tmp_path: Path, influx_server: InfluxServer, influx_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = settings_file(
        tmp_path,
        influx_server,
        influx_database,
        influx_retention_policy="raw",
        influx_raw_retention="400d",
        influx_rollup_retention_policy="rollups",
    )
    first = setup_output(config, capsys)
    assert first[0].startswith(f"InfluxDB 1.6.7~rc0 at {influx_server.url}")
    assert first[1:] == [
        f"database '{influx_database}': created",
        "retention policy 'raw' (raw points): created, kept 400 days, the database's default",
        "retention policy 'rollups' (KPI rollups): created, kept forever",
        "3 change(s)",
    ]
    created = policies_on(influx_server.url, influx_database)
    assert created == [
        ["autogen", "0s", "168h0m0s", 1, False],
        ["raw", "9600h0m0s", "168h0m0s", 1, True],
        ["rollups", "0s", "168h0m0s", 1, False],
    ]

    second = setup_output(config, capsys)
    assert second[1:] == [
        f"database '{influx_database}': exists",
        "retention policy 'raw' (raw points): unchanged, kept 400 days, the database's default",
        "retention policy 'rollups' (KPI rollups): unchanged, kept forever",
        "nothing to change",
    ]
    assert policies_on(influx_server.url, influx_database) == created


def test_a_changed_duration_is_altered_and_says_what_gets_deleted(
    tmp_path: Path,
    influx_server: InfluxServer,
    influx_database: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = settings_file(tmp_path, influx_server, influx_database, influx_retention_policy="raw")
    assert setup_output(config, capsys)[2] == (
        "retention policy 'raw' (raw points): created, kept forever, the database's default"
    )
    monkeypatch.setenv("FACTORY__STORE__INFLUX_RAW_RETENTION", "36h")
    monkeypatch.setenv("FACTORY__KPI__LATE_DATA_HORIZON_H", "24")
    altered = setup_output(config, capsys)
    assert altered[2] == (
        "retention policy 'raw' (raw points): kept forever -> 36 hours"
        " (points older than 36 hours are deleted at the next retention check)"
    )
    # ingest still takes samples 30 days old by default: they would be refused.
    assert altered[3].startswith("warning: raw points are kept 36 hours, less than ingest.max_past_days")
    assert altered[-1] == "1 change(s)"
    # Shard groups of a week would outlast the policy: InfluxDB needs them shorter, setup does it.
    assert ["raw", "36h0m0s", "1h0m0s", 1, True] in policies_on(influx_server.url, influx_database)
    assert setup_output(config, capsys)[-1] == "nothing to change"


def test_without_policies_in_the_settings_setup_makes_only_the_database(
    tmp_path: Path, influx_server: InfluxServer, influx_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = settings_file(tmp_path, influx_server, influx_database)
    assert setup_output(config, capsys)[1:] == [
        f"database '{influx_database}': created",
        "no retention policies named in the settings: every point goes to the default ('autogen', kept forever)",
        "1 change(s)",
    ]
    assert setup_output(config, capsys)[-1] == "nothing to change"


def test_after_setup_ingest_and_the_kpi_worker_keep_raw_points_and_rollups_apart(
    tmp_path: Path, influx_server: InfluxServer, influx_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = settings_file(
        tmp_path,
        influx_server,
        influx_database,
        influx_retention_policy="raw",
        influx_rollup_retention_policy="rollups",
    )
    setup_output(config, capsys)
    settings = load_settings(config, environ={})
    assets = load_asset_model(settings.assets)
    start = datetime(2026, 11, 24, 8, tzinfo=UTC)
    samples = [Sample(equipment="cnc-01", signal="state", ts=start, value="PRODUCING", raw="PRODUCING")]
    samples += [
        Sample(equipment="cnc-01", signal="parts_total", ts=start + timedelta(minutes=m), value=100 + m)
        for m in range(120)
    ]

    async def run_worker() -> tuple[int, dict[tuple[str, int], HourRow], dict[str, list[str]]]:
        async with InfluxStore.from_settings(settings.store) as store:
            await store.write([sample_to_point(s, assets.placement(s.equipment)) for s in samples])
            worker = KpiWorker(settings, store, assets)
            written = await worker.recompute(now=start + timedelta(hours=2, minutes=5))
            stored = await worker.rollups.read_hours(
                ["cnc-01"], datetime_to_ns(start), datetime_to_ns(start) + 2 * HOUR
            )
            where = {}
            for rp in ("raw", "rollups"):
                results = await store.execute(f'SELECT count(*) FROM "{influx_database}"."{rp}"./.*/')
                where[rp] = sorted(series["name"] for result in results for series in result.get("series", []))
            return written, stored, where

    written, stored, where = asyncio.run(run_worker())
    assert written > 0
    hours = sorted(hour for _, hour in stored)
    assert hours == [datetime_to_ns(start), datetime_to_ns(start) + HOUR]  # read back from the rollups' policy
    assert sum(row.base.parts_produced for row in stored.values()) == 119
    assert where["raw"] == ["machine_state", "part_counter"]
    assert "kpi_base_hourly" in where["rollups"]
    assert not set(where["rollups"]) & {"machine_state", "part_counter"}


def test_setup_on_sqlite_has_nothing_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(f"assets: {REPO / 'config' / 'factory.yaml'}\n")
    assert main(["store", "setup", "--config", str(config)]) == 0
    assert "nothing to set up" in capsys.readouterr().out


def test_setup_says_when_the_server_cannot_be_reached(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.servers import free_port

    config = tmp_path / "settings.yaml"
    store = f"store:\n  kind: influxdb\n  influx_url: http://127.0.0.1:{free_port()}\n  timeout_s: 2\n"
    config.write_text(f"assets: {REPO / 'config' / 'factory.yaml'}\n{store}")
    assert main(["store", "setup", "--config", str(config)]) == 1
    assert "store setup failed" in capsys.readouterr().err


# --- InfluxDB 2.x: buckets and DBRP mappings are made with its CLI; setup checks them ------------


def influxdb2(mapped: list[str]) -> httpx.MockTransport:
    """What InfluxDB 2.7's v1 API answers: its version on /ping, the DBRP mappings as policies."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ping":
            return httpx.Response(204, headers={"X-Influxdb-Version": "v2.7.10"})
        statement = dict(httpx.QueryParams(request.content.decode()))["q"]
        if statement.startswith("SHOW RETENTION POLICIES"):
            columns = ["name", "duration", "shardGroupDuration", "replicaN", "default"]
            values = [[name, "0s", "168h0m0s", 1, i == 0] for i, name in enumerate(mapped)]
            series = [{"columns": columns, "values": values}] if values else []
            return httpx.Response(200, json={"results": [{"statement_id": 0, "series": series}]})
        return httpx.Response(403, json={"code": "forbidden", "message": f"not allowed: {statement}"})

    return httpx.MockTransport(handler)


async def test_on_influxdb_2_setup_creates_nothing_and_names_the_missing_mapping() -> None:
    policies = [
        RetentionPolicy("raw", "90d", default=True, holds="raw points"),
        RetentionPolicy("rollups", "INF", holds="KPI rollups"),
    ]
    async with InfluxStore("http://influx.invalid", "factory", transport=influxdb2(["raw"])) as store:
        report = await set_up(store, policies)
    assert report.server == "InfluxDB v2.7.10 at http://influx.invalid"
    assert (report.changed, report.missing) == (0, 1)
    assert report.lines[1:] == [
        "retention policy 'raw' (raw points): mapped",
        "retention policy 'rollups' (KPI rollups): MISSING; map a bucket kept forever to database 'factory',"
        " policy 'rollups'",
    ]
    async with InfluxStore("http://influx.invalid", "factory", transport=influxdb2([])) as store:
        report = await set_up(store, [])
    assert report.missing == 1
    assert report.lines[-1] == "database 'factory': MISSING; no bucket is mapped to it"
