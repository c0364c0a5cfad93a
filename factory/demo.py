"""``factory demo``: the whole pipeline in one process on embedded defaults.

simulators (OPC UA + MQTT meters) -> edge agent -> embedded MQTT broker -> ingest -> store
-> KPI worker -> API. Prints the API address and a key, then the OEE it reads back every 20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import socket
from datetime import UTC, datetime, timedelta

from api.app import create_app
from core.assets import AssetModel, EquipmentType
from core.settings import API_KEYS_ENV, Settings, parse_api_keys
from core.stores import open_store
from edge.agent import EdgeAgent
from factory.broker import EmbeddedBroker
from factory.runtime import ApiServer, closing_store, install_stop_signals
from ingest.service import IngestService
from kpi.engine import KpiEngine
from kpi.worker import KpiWorker
from simulators.edgeconfig import edge_sources
from simulators.runner import Simulator

log = logging.getLogger("factory.demo")
STATUS_INTERVAL_S = 20.0


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_or_free(host: str, port: int, what: str) -> int:
    if port and port_is_free(host, port):
        return port
    chosen = free_port(host)
    if port:
        log.warning("%s port %d is taken; using %d instead", what, port, chosen)
    return chosen


def _simulator_ports(settings: Settings, assets: AssetModel) -> dict[str, int]:
    host, base = settings.simulator.host, settings.simulator.base_port
    machines = [eq.id for eq in assets if eq.type in (EquipmentType.CNC, EquipmentType.ROBOT)]
    return {eq: _port_or_free(host, base + i, f"OPC UA server for {eq}") for i, eq in enumerate(machines)}


def demo_api_keys() -> tuple[dict[str, str], str | None]:
    """The keys from FACTORY_API_KEYS, or one fresh admin key for this run (printed, never stored)."""
    configured = parse_api_keys(os.environ.get(API_KEYS_ENV))
    if configured:
        return configured, None
    key = secrets.token_urlsafe(24)
    return {key: "admin"}, key


async def _print_status(engine: KpiEngine, assets: AssetModel, since: datetime) -> None:
    lines = [line.id for workshop in assets.site.workshops for line in workshop.lines]
    while True:
        await asyncio.sleep(STATUS_INTERVAL_S)
        now = datetime.now(UTC)
        parts = []
        for line in lines:
            report = await engine.report(line, since, now)
            value = next((k.value for k in report.kpis if k.key == "oee"), None)
            shown = f"{value:.2f}" if value is not None else "n/a"
            parts.append(f"{line} OEE {shown} ({report.base.parts_good} good parts)")
        elapsed = int((now - since).total_seconds())
        print(f"[demo {elapsed // 60:02d}:{elapsed % 60:02d}] " + " | ".join(parts), flush=True)


async def run_demo(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> None:
    host = settings.broker.host
    broker_port = _port_or_free(host, settings.broker.port, "MQTT broker")
    api_port = settings.api.port if args.api_port is None else args.api_port
    api_port = _port_or_free(settings.api.host, api_port, "API")
    settings = settings.model_copy(
        update={
            "broker": settings.broker.model_copy(update={"port": broker_port}),
            "api": settings.api.model_copy(update={"port": api_port}),
        }
    )
    keys, generated_key = demo_api_keys()
    started = datetime.now(UTC) - timedelta(seconds=1)

    stop = asyncio.Event()
    install_stop_signals(stop)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(EmbeddedBroker(host, broker_port))
        store = await stack.enter_async_context(closing_store(open_store(settings.store)))
        simulator = await stack.enter_async_context(
            Simulator(settings, assets, ports=_simulator_ports(settings, assets))
        )
        opcua, meters = edge_sources(assets, simulator.endpoints)
        assert settings.edge is not None, "config/demo.yaml has an edge section"
        edge_settings = settings.edge.model_copy(update={"opcua": opcua, "meters": meters})
        await stack.enter_async_context(EdgeAgent(edge_settings, settings.broker, settings.uplink))
        await stack.enter_async_context(IngestService(settings, store, assets))
        await stack.enter_async_context(KpiWorker(settings, store, assets))
        api = ApiServer(create_app(settings, store, assets, keys), settings.api.host, api_port)
        await stack.enter_async_context(api)

        url = f"http://{settings.api.host}:{api.port}"
        key_hint = generated_key or "<a key from FACTORY_API_KEYS>"
        where = settings.store.sqlite_path if settings.store.kind == "sqlite" else settings.store.influx_url
        print(
            "\nSmart-factory demo is running (Ctrl-C to stop).\n"
            f"  API        {url}   (docs: {url}/docs)\n"
            f"  API key    {key_hint}" + ("   (generated for this run, role admin)" if generated_key else "") + "\n"
            f"  MQTT       {host}:{broker_port} (embedded, loopback only)\n"
            f"  store      {settings.store.kind} {where}\n"
            f"  machines   {len(simulator.endpoints)} OPC UA servers, {len(meters)} MQTT meters\n"
            f"  try        curl -H 'X-API-Key: {key_hint}' '{url}/v1/kpi?scope={assets.site.id}'\n",
            flush=True,
        )
        engine = KpiEngine(store, assets, timedelta(hours=settings.kpi.lookback_h), settings.kpi.min_coverage)
        status = asyncio.create_task(_print_status(engine, assets, started), name="demo-status")
        try:
            if args.duration:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=args.duration)
            else:
                await stop.wait()
        finally:
            status.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status
        print("stopping the demo…", flush=True)
