"""``factory demo``: the whole pipeline in one process on embedded defaults.

simulators (OPC UA + MQTT meters) -> edge agent -> embedded MQTT broker -> ingest -> store
-> KPI worker -> API. Prints the API address and an admin key for the park (created on the first
run, kept in a 0600 file beside the key store and reused after), then the OEE it reads back every 20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import socket
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiomqtt

from api import web
from api.app import create_app
from api.keys import KeyStore, Role
from core.assets import AssetModel
from core.errors import BrokerTlsError, StartupError
from core.mqtt import mqtt_client
from core.settings import BrokerSettings, Settings
from core.store import Store
from core.stores import open_store
from edge.agent import EdgeAgent
from factory.broker import EmbeddedBroker
from factory.demo_certification import prepare_certification_demo
from factory.runtime import ApiServer, closing_store, install_stop_signals
from ingest.service import IngestService
from kpi.energy import load_energy_factors
from kpi.engine import KpiEngine
from kpi.worker import KpiWorker
from simulators.edgeconfig import edge_sources
from simulators.runner import Simulator, accelerated_assets, simulated_machines
from simulators.scenario import load_scenario

log = logging.getLogger("factory.demo")
STATUS_INTERVAL_S = 20.0
DEMO_SCHEME = "cq-13fyp-pilot-targets"  # the scheme the demo's history was made to pass
PROBE_TIMEOUT_S = 5.0
DEMO_KEY_FILE = "demo-admin.key"


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


def _simulator_ports(
    settings: Settings, assets: AssetModel, site: str | None, machines_per_server: int
) -> dict[str, int]:
    """A port per OPC UA server, keyed by the first machine it serves; taken ports are replaced."""
    host, base = settings.simulator.host, settings.simulator.base_port
    machines = [eq.id for eq in simulated_machines(assets, site)]
    firsts = machines[::machines_per_server]
    return {eq: _port_or_free(host, base + i, f"OPC UA server for {eq}") for i, eq in enumerate(firsts)}


def _separate_data(settings: Settings, name: str) -> Settings:
    """Keep a scenario's store, edge buffer and dead letters apart from the default demo's.

    Equipment ids repeat between factories; one store holding both would mix their counters.
    """

    def moved(path: Path) -> Path:
        return path.parent / name / path.name

    assert settings.edge is not None, "config/demo.yaml has an edge section"
    return settings.model_copy(
        update={
            "store": settings.store.model_copy(update={"sqlite_path": moved(settings.store.sqlite_path)}),
            "edge": settings.edge.model_copy(update={"buffer_path": moved(settings.edge.buffer_path)}),
            "ingest": settings.ingest.model_copy(update={"dead_letter_path": moved(settings.ingest.dead_letter_path)}),
        }
    )


async def _require_broker(broker: BrokerSettings) -> None:
    """Stop at start, naming the address, when the configured real broker does not answer."""
    try:
        probe = f"factory-demo-probe-{secrets.token_hex(4)}"
        async with mqtt_client(broker, identifier=probe, timeout_s=PROBE_TIMEOUT_S):
            return
    except aiomqtt.MqttError as exc:
        raise StartupError(
            f"MQTT broker {broker.host}:{broker.port} does not answer ({exc}); start it, or set "
            "demo.embedded_broker: true (FACTORY__DEMO__EMBEDDED_BROKER=true) for the in-process one"
        ) from exc
    except BrokerTlsError as exc:
        raise StartupError(str(exc)) from exc


async def _require_store(store: Store) -> None:
    health = await store.health()
    if not health.ok:
        raise StartupError(f"{health.backend} store does not answer: {health.detail}")


def demo_admin_key(keys: KeyStore, path: Path) -> tuple[str, bool]:
    """(key, new?): the demo's admin key for the whole park.

    The one kept in ``path`` while the store still accepts it (not revoked, still an admin of the
    park), else a new one, written there with mode 0600 so only this user can read it.
    """
    if path.is_file():
        kept = path.read_text().strip()
        key = keys.verify(kept)
        if key is not None and key.active and key.role == Role.ADMIN and key.site is None:
            return kept, False
    new = keys.create("demo admin", Role.ADMIN, None, "factory demo")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(new.secret + "\n")
    path.chmod(0o600)  # a file left from before keeps its old mode through O_CREAT
    return new.secret, True


async def _print_status(engine: KpiEngine, assets: AssetModel, site: str, since: datetime, edge: EdgeAgent) -> None:
    lines = [line.id for workshop in assets.get_site(site).workshops for line in workshop.lines]
    while True:
        await asyncio.sleep(STATUS_INTERVAL_S)
        now = datetime.now(UTC)
        parts = []
        for line in lines:
            report = await engine.report(line, since, now)
            value = next((k.value for k in report.kpis if k.key == "oee"), None)
            shown = f"{value:.2f}" if value is not None else "n/a"
            parts.append(f"{line} OEE {shown} ({report.base.parts_good} good parts)")
        stats = edge.stats()
        # Refreshes re-send unchanged values every refresh_interval_s, so the platform knows the
        # machines are still there (first ones after a minute with the default interval).
        parts.append(f"edge {stats['opcua_samples']:,} changes + {stats['opcua_refreshes']:,} refreshes")
        elapsed = int((now - since).total_seconds())
        print(f"[demo {elapsed // 60:02d}:{elapsed % 60:02d}] " + " | ".join(parts), flush=True)


def print_web_page(url: str, key: str) -> None:
    """The first thing the demo says: where to look, and the key to sign in with."""
    print(
        f"Open {url}/ in a browser and sign in with the key {key}\n"
        "(the page is up in a few seconds; on the first run, after the demo's history is written: about a minute).",
        flush=True,
    )


async def run_demo(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> None:
    api_port = settings.api.port if args.api_port is None else args.api_port
    api_port = _port_or_free(settings.api.host, api_port, "API")
    keys = KeyStore(settings.api.keys_path)
    key_file = settings.api.keys_path.parent / DEMO_KEY_FILE
    admin_key, new_key = demo_admin_key(keys, key_file)
    print_web_page(f"http://{settings.api.host}:{api_port}", admin_key)
    host = settings.broker.host
    embedded = settings.demo.embedded_broker
    broker_port = _port_or_free(host, settings.broker.port, "MQTT broker") if embedded else settings.broker.port
    if embedded and settings.broker.tls is not None:
        log.info("broker.tls is for a real broker; the embedded one listens on loopback without TLS")
    settings = settings.model_copy(
        update={
            # The embedded broker speaks plain MQTT on loopback; a real one gets broker.tls as it is.
            "broker": settings.broker.model_copy(
                update={"port": broker_port, "tls": None if embedded else settings.broker.tls}
            ),
            "api": settings.api.model_copy(update={"port": api_port}),
        }
    )
    scenario = load_scenario(args.scenario) if args.scenario else None  # a broken file stops us before anything starts
    if settings.kpi.energy_factors is not None:
        load_energy_factors(settings.kpi.energy_factors)  # likewise a broken factor file
    if args.scenario:
        settings = _separate_data(settings, args.scenario.stem)
    started = datetime.now(UTC) - timedelta(seconds=1)

    stop = asyncio.Event()
    install_stop_signals(stop)
    async with contextlib.AsyncExitStack() as stack:
        if embedded:
            await stack.enter_async_context(EmbeddedBroker(host, broker_port))
        else:
            await _require_broker(settings.broker)
        store = await stack.enter_async_context(closing_store(open_store(settings.store)))
        await _require_store(store)
        certification = None
        if scenario is None:
            # Two weeks of history, business inputs and signing keys for a certification report; once.
            certification = await prepare_certification_demo(settings, store, assets)
        if scenario is not None:
            # The platform must know the scenario's equipment; at speed S it must also see ideal cycle
            # times divided by S, or performance would read S times too high.
            assets = accelerated_assets(scenario.assets, args.speed) if args.speed != 1 else scenario.assets
        per_server = scenario.machines_per_server if scenario is not None else 1
        # The live demo simulates one site of the park (demo.yaml: simulator.site); the others have no live data.
        site = scenario.site.id if scenario is not None else assets.one_site(settings.simulator.site).id
        simulator = await stack.enter_async_context(
            Simulator(
                settings,
                scenario.assets if scenario is not None else assets,
                scenario=scenario,
                speed=args.speed,
                ports=_simulator_ports(settings, assets, site, per_server),
            )
        )
        opcua, meters = edge_sources(assets, simulator, scenario=scenario)
        assert settings.edge is not None, "config/demo.yaml has an edge section"
        edge_settings = settings.edge.model_copy(update={"opcua": opcua, "meters": meters})
        # Ingest before the edge, so that it stops after it: what the edge sends as it stops (its
        # OFFLINE word for every machine) is stored, not left with a broker about to go too.
        await stack.enter_async_context(IngestService(settings, store, assets))
        edge = await stack.enter_async_context(
            EdgeAgent(edge_settings, settings.broker, settings.uplink, assets=assets)
        )
        await stack.enter_async_context(KpiWorker(settings, store, assets))
        app = create_app(settings, store, assets, keys)
        if certification is not None:
            # The report form offers the weeks of the demo's history, so a newcomer's first report has data.
            web.suggest_report(
                app,
                certification.site,
                (date.fromisoformat(certification.assessment[0]), date.fromisoformat(certification.assessment[1])),
                (date.fromisoformat(certification.baseline[0]), date.fromisoformat(certification.baseline[1])),
                scheme=DEMO_SCHEME,
            )
        api = ApiServer(app, settings.api.host, api_port)
        await stack.enter_async_context(api)

        url = f"http://{settings.api.host}:{api.port}"
        since = started.strftime("%Y-%m-%dT%H:%M:%SZ")
        where = settings.store.sqlite_path if settings.store.kind == "sqlite" else settings.store.influx_url
        print(
            "\nSmart-factory demo is running (Ctrl-C to stop).\n"
            f"  web page   {url}/   (overview and certification reports; sign in with the API key)\n"
            f"  API        {url}   (docs: {url}/docs)\n"
            f"  API key    {admin_key}   (admin for the whole park; {'new, ' if new_key else ''}kept in {key_file})\n"
            f"  MQTT       {host}:{broker_port} " + ("(embedded, loopback only)" if embedded else "(external)") + "\n"
            f"  store      {settings.store.kind} {where}\n"
            f"  machines   {len(opcua)} on {len(set(simulator.endpoints.values()))} OPC UA servers,"
            f" {len(meters)} MQTT meters" + (f", {args.speed:g}x accelerated" if args.speed != 1 else "") + "\n"
            f"  park       {assets.park.id}: sites {', '.join(s.id for s in assets.sites)}; simulating {site}\n"
            f"  reports    archived in {settings.api.reports_dir}, signed with the keys in "
            f"{settings.reports.keys_dir}\n"
            f"  try        curl -H 'X-API-Key: {admin_key}' '{url}/v1/kpi?scope={site}&start={since}'\n"
            f"             (scope={assets.park.id} for the whole park)\n"
            "             (without start= the window is the last hour, which a new demo has not filled yet:\n"
            "              its KPIs say insufficient_evidence until half the window has data)\n",
            flush=True,
        )
        if certification is not None:
            print(
                f"  report     site {certification.site}: baseline {certification.baseline[0]} .. "
                f"{certification.baseline[1]}, assessment {certification.assessment[0]} .. "
                f"{certification.assessment[1]} (end dates exclusive; history, inputs and keys are ready)\n",
                flush=True,
            )
        engine = KpiEngine.from_settings(store, assets, settings.kpi)
        status = asyncio.create_task(_print_status(engine, assets, site, started, edge), name="demo-status")
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
