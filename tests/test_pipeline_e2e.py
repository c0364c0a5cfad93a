"""End to end on real components: simulator -> edge -> Mosquitto -> ingest -> InfluxDB -> KPI -> API.

Real asyncua servers, a real Mosquitto, a real InfluxDB 1.x and a real uvicorn server on loopback.
The API's parts and state durations must equal the simulator's ground truth for the window: parts
exactly, durations within one sampling interval, energy to the last float digit. One window covers
the whole run; a second one starts and ends mid-run, so the state and counters in force at its start
come from the readings before it. The edge refreshes every signal every second meanwhile, so the
numbers also show that refreshes racing the changes of fast machines never distort them. Once the
hours of the run are rolled up, reports read from the rollups give the ground truth's parts and the
raw scan's numbers.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.keys import KeyStore, Role
from core.assets import EquipmentType, load_asset_model
from core.settings import Settings, load_settings
from core.signals import MachineState
from core.stores import open_store
from edge.agent import EdgeAgent
from factory.runtime import ApiServer
from ingest.service import IngestService
from kpi.backfill import backfill
from kpi.engine import KpiEngine
from simulators.edgeconfig import edge_sources
from simulators.runner import Simulator, simulated_machines
from tests.servers import InfluxServer, MosquittoServer, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

RUN_S = 16.0
SAMPLING_INTERVAL_S = 0.1
REFRESH_S = 1.0

ASSETS = """\
version: 1
site:
  id: test-site
  workshops:
    - id: machining
      lines:
        - id: line-1
          equipment:
            - {id: cnc-1, type: cnc, numerically_controlled: true, process_step: milling,
               key_process: true, ideal_cycle_time_s: 0.4, meter: meter-1}
            - {id: cnc-2, type: cnc, numerically_controlled: true, process_step: turning,
               key_process: true, ideal_cycle_time_s: 0.3, meter: meter-1}
            - {id: meter-1, type: meter, carrier: electricity}
        - id: line-2
          equipment:
            - {id: robot-1, type: robot, numerically_controlled: true, process_step: welding,
               ideal_cycle_time_s: 0.5, meter: meter-2}
            - {id: meter-2, type: meter, carrier: electricity}
"""


def _settings(tmp_path: Path, mqtt: MosquittoServer, influx: InfluxServer, database: str) -> Settings:
    (tmp_path / "assets.yaml").write_text(ASSETS)
    (tmp_path / "settings.yaml").write_text(
        f"""\
assets: assets.yaml
broker: {{host: {mqtt.host}, port: {mqtt.port}}}
store: {{kind: influxdb, influx_url: "{influx.url}", influx_database: {database}}}
edge: {{id: gw-e2e, buffer_path: edge-buffer.sqlite, flush_interval_s: 0.2}}
ingest: {{dead_letter_path: dead-letters.sqlite, flush_interval_s: 0.2, client_id: ingest-{uuid.uuid4().hex[:8]}}}
simulator: {{host: 127.0.0.1, seed: 14, meter_interval_s: 0.5}}
"""
    )
    return load_settings(tmp_path / "settings.yaml", environ={})


async def _kpi(client: httpx.AsyncClient, scope: str, start: datetime, end: datetime) -> dict[str, Any]:
    response = await client.get("/v1/kpi", params={"scope": scope, "start": start.isoformat(), "end": end.isoformat()})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


STATE_FIELDS = {
    MachineState.PRODUCING: "production_time_s",
    MachineState.SETUP: "setup_time_s",
    MachineState.DOWN: "down_time_s",
    MachineState.IDLE: "idle_time_s",
    MachineState.PLANNED_STOP: "planned_downtime_s",
}


async def test_api_reports_the_simulators_ground_truth(
    tmp_path: Path, mosquitto_server: MosquittoServer, influx_server: InfluxServer, influx_database: str
) -> None:
    settings = _settings(tmp_path, mosquitto_server, influx_server, influx_database)
    assets = load_asset_model(settings.assets)
    machines = [eq.id for eq in simulated_machines(assets)]
    store = open_store(settings.store)
    simulator = Simulator(settings, assets, ports={eq: free_port() for eq in machines})
    try:
        async with simulator:
            opcua, meters = edge_sources(assets, simulator, refresh_interval_s=REFRESH_S)
            assert settings.edge is not None
            edge_settings = settings.edge.model_copy(update={"opcua": opcua, "meters": meters})
            keys = KeyStore(tmp_path / "api-keys.sqlite")
            api_key = keys.create("e2e", Role.AUDITOR, None, "test").secret
            app = create_app(settings, store, assets, keys)
            async with (
                IngestService(settings, store, assets) as ingest,
                EdgeAgent(edge_settings, settings.broker, settings.uplink, assets=assets) as edge,
                ApiServer(app, "127.0.0.1", 0) as api,
            ):
                await asyncio.sleep(RUN_S)
                frozen = await simulator.freeze()
                # Drain: the edge buffer empties (broker acknowledged everything) and ingest has
                # written all it holds, and no new reading (refreshes go on) has arrived for a second.
                last = -1

                def drained() -> bool:
                    nonlocal last
                    e, i = edge.stats(), ingest.stats()
                    readings = e["opcua_samples"] + e["meter_samples"]
                    quiet = readings == last
                    last = readings
                    return quiet and e["buffered"] == 0 and i["pending_points"] == 0

                await asyncio.sleep(1.0)
                await wait_until(drained, "edge buffer and ingest queue to drain", within_s=30)
                await asyncio.sleep(1.0)
                assert ingest.stats()["dead_letters"] == 0
                assert ingest.stats()["seq_gaps"] == 0
                # Refreshes ran all along (a signal that changed within the lag before a refresh is
                # left out of it, so the fast counters of this factory are refreshed only now and then).
                assert edge.stats()["opcua_refreshes"] >= RUN_S / REFRESH_S

                started = simulator.started_at
                windows = {
                    "whole run": (started - timedelta(seconds=1), frozen),
                    "mid run": (started + timedelta(seconds=4.3), frozen - timedelta(seconds=3.7)),
                }
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{api.port}", headers={"X-API-Key": api_key}, timeout=30
                ) as client:
                    unauthorised = await client.get("/v1/kpi", params={"scope": "line-1"}, headers={"X-API-Key": ""})
                    assert unauthorised.status_code == 401
                    for name, (start, end) in windows.items():
                        for eq in machines:
                            truth = simulator.ground_truth(eq)
                            report = await _kpi(client, eq, start, end)
                            (row,) = report["per_equipment"]
                            base = row["base"]
                            parts = truth.parts(start, end)
                            assert (base["parts_produced"], base["parts_good"], base["parts_scrap"]) == (
                                parts["total"],
                                parts["good"],
                                parts["scrap"],
                            ), f"{name}: parts of {eq}"
                            durations = truth.state_durations(start, end)
                            for state, field in STATE_FIELDS.items():
                                assert base[field] == pytest.approx(durations[state], abs=SAMPLING_INTERVAL_S), (
                                    f"{name}: {field} of {eq}"
                                )
                            oee = next(k for k in report["kpis"] if k["key"] == "oee")
                            assert oee["status"] == "ok" and 0 < oee["value"] < 1, f"{name}: OEE of {eq}: {oee}"

                        # Meter readings published before the edge subscribed are gone (MQTT keeps no
                        # history), so energy is compared where the edge was listening from the start.
                        if name == "mid run":
                            line = await _kpi(client, "line-1", start, end)
                            (meter,) = line["evidence"]["meters"]
                            expected_kwh = simulator.ground_truth("meter-1").energy_kwh(start, end)
                            assert meter["energy_kwh"] == pytest.approx(expected_kwh, rel=1e-9), name
                            assert expected_kwh > 0

                # The run must have exercised what it claims to check.
                whole = windows["whole run"]
                truths = [simulator.ground_truth(eq) for eq in machines]
                seen = {state for t in truths for state, seconds in t.state_durations(*whole).items() if seconds}
                assert seen == set(MachineState), f"states seen in the run: {seen}"
                assert sum(t.parts(*whole)["scrap"] for t in truths) > 0

                # Through rollups: the hours of the run, rolled up as the worker does once they have
                # settled, give the ground truth's parts exactly and the raw scan's numbers exactly.
                later = frozen + timedelta(days=1)
                engine = KpiEngine.from_settings(store, assets, settings.kpi, clock=lambda: later)
                first = started.replace(minute=0, second=0, microsecond=0)
                last = frozen.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
                rolled_up = [eq.id for eq in assets if eq.produces_parts or eq.type == EquipmentType.METER]
                summary = await backfill(engine, rolled_up, first, last, now=later)
                assert summary.rows == len(rolled_up) * int((last - first) / timedelta(hours=1))
                for eq in machines:
                    rolled = await engine.report(eq, first, last)
                    raw = await engine.report(eq, first, last, use_rollups=False)
                    assert rolled.read_path.raw_hours == 0 and rolled.read_path.rollup_hours > 0, eq
                    parts = simulator.ground_truth(eq).parts(first, last)
                    assert (rolled.base.parts_produced, rolled.base.parts_good, rolled.base.parts_scrap) == (
                        parts["total"],
                        parts["good"],
                        parts["scrap"],
                    ), f"rollups: parts of {eq}"
                    for name, value in rolled.base.model_dump().items():  # sums in another order: to 1e-9
                        assert value == pytest.approx(getattr(raw.base, name), rel=1e-9, abs=1e-9), (eq, name)
    finally:
        await store.close()
