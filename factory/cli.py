"""``factory``: one command line, one subcommand per service, plus ``demo`` and ``check-config``.

Every service reads the same settings file (``--config`` or ``FACTORY_CONFIG``) and environment
variables (see ``core.settings``), so the demo, the tests and docker-compose run the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import getpass
import json
import logging
import os
import resource
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from api.keys import KeyStoreUnavailable
from core.assets import AssetModel, load_asset_model
from core.errors import BrokerTlsError, ConfigError, StartupError
from core.settings import Settings, load_settings
from core.stores import open_store
from factory.deadletters_cli import add_deadletters_arguments, run_deadletters
from factory.deploy_cli import add_deploy_arguments, run_deploy
from factory.edge_cert_cli import add_edge_cert_arguments, run_edge_cert
from factory.edge_check_cli import add_edge_check_arguments, run_edge_check
from factory.grafana_cli import add_grafana_arguments, run_grafana
from factory.health import SERVICES as HEALTH_SERVICES
from factory.inputs_cli import add_inputs_arguments, run_inputs
from factory.report_cli import add_report_arguments, run_report
from factory.runtime import (
    HEARTBEAT_ENV,
    ApiServer,
    closing_store,
    configure_logging,
    serve_until_stopped,
)
from factory.store_cli import add_store_arguments, run_store
from simulators.history_cli import add_history_arguments

log = logging.getLogger("factory")

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "config" / "demo.yaml"


def _load(args: argparse.Namespace) -> tuple[Settings, AssetModel]:
    path = args.config or os.environ.get("FACTORY_CONFIG")
    if not path:
        raise ConfigError("--config", "no settings file given (use --config FILE or FACTORY_CONFIG)")
    settings = load_settings(path)
    return settings, load_asset_model(settings.assets)


async def _run_simulator(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> None:
    from simulators.edgeconfig import edge_sources, edge_yaml
    from simulators.runner import Simulator, accelerated_assets, asset_yaml
    from simulators.scenario import load_scenario

    scenario = load_scenario(args.scenario) if args.scenario else None
    if scenario is not None and not assets.has_scope(scenario.site.id):
        log.warning(
            "the scenario's asset model (%s, site %s) is not the settings' (%s, sites %s); the platform will not "
            "know the simulated equipment",
            scenario.assets.source,
            scenario.site.id,
            settings.assets,
            ", ".join(s.id for s in assets.sites),
        )
    simulator = Simulator(settings, assets, scenario=scenario, speed=args.speed)
    dump: asyncio.Task[None] | None = None

    async def dump_ground_truth(path: Path, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            simulator.write_ground_truth(path)

    async def announce() -> None:
        nonlocal dump
        for equipment, endpoint in simulator.endpoints.items():
            log.info("simulating %s at %s", equipment, endpoint)
        for meter, topic in simulator.meter_topics.items():
            log.info("meter %s publishes to %s", meter, topic)
        if args.edge_config:
            opcua, meters = edge_sources(simulator.assets, simulator)
            args.edge_config.parent.mkdir(parents=True, exist_ok=True)
            args.edge_config.write_text(edge_yaml(opcua, meters))
            log.info("edge sources written to %s", args.edge_config)
        if args.accelerated_assets:
            args.accelerated_assets.parent.mkdir(parents=True, exist_ok=True)
            args.accelerated_assets.write_text(asset_yaml(accelerated_assets(simulator.assets, simulator.speed)))
            log.info("asset model with ideal cycle times / %g written to %s", simulator.speed, args.accelerated_assets)
        if args.ground_truth and args.ground_truth_interval:
            dump = asyncio.create_task(dump_ground_truth(args.ground_truth, args.ground_truth_interval))

    try:
        await serve_until_stopped(simulator, on_started=announce)
    finally:
        if dump is not None:
            dump.cancel()
        if args.ground_truth and simulator.started:
            simulator.write_ground_truth(Path(args.ground_truth))
            log.info("ground truth written to %s", args.ground_truth)


async def _run_edge(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> None:
    from edge.agent import EdgeAgent

    if settings.edge is None:
        raise ConfigError(str(settings.source), "the edge needs an 'edge:' section", field="edge")
    # As for ingest: the objects the imports made never die, and every full pass of the collector
    # would walk them while the agent makes and drops thousands of objects a second. Frozen, it skips them.
    gc.freeze()
    await serve_until_stopped(EdgeAgent(settings.edge, settings.broker, settings.uplink, assets=assets))


async def _run_ingest(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> None:
    from ingest.service import IngestService

    async with closing_store(open_store(settings.store)) as store:
        service = IngestService(settings, store, assets)
        # Ingest makes and drops hundreds of thousands of small objects a second, and each of the
        # collector's full passes would walk the ~260,000 that the imports made, which never die: a
        # third of ingest's CPU went there (bench/README.md). Frozen, the collector skips them.
        gc.freeze()
        await serve_until_stopped(service)


async def _run_kpi(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> None:
    from kpi.worker import KpiWorker

    if args.action == "backfill":
        await _backfill(settings, assets, args)
        return
    async with closing_store(open_store(settings.store)) as store:
        await serve_until_stopped(KpiWorker(settings, store, assets))


def _moment(text: str, zone: ZoneInfo, name: str) -> datetime:
    """ISO-8601; a date or a time without a zone is local time of ``zone``."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--{name}", f"{text!r} is not an ISO-8601 date or time (e.g. 2026-01-01)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


async def _backfill(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> None:
    from kpi.backfill import ProgressBar, backfill
    from kpi.worker import KpiWorker

    if not args.start or not args.end:
        raise ConfigError("factory kpi backfill", "needs --start and --end (ISO-8601; a date is local midnight)")
    if args.scope and not assets.has_scope(args.scope):
        raise ConfigError(
            "--scope", f"unknown scope {args.scope!r}: not the park, a site, workshop, line or equipment id"
        )
    # A date is local midnight of the scope's site (of the park's zone for the park: its first site's).
    zone = assets.timezone_of(args.scope or assets.park.id)
    start, end = _moment(args.start, zone, "start"), _moment(args.end, zone, "end")
    if end <= start:
        raise ConfigError("--end", f"{end.isoformat()} is not after --start {start.isoformat()}")
    async with closing_store(open_store(settings.store)) as store:
        worker = KpiWorker(settings, store, assets)
        ids = worker.equipment_ids
        if args.scope:
            wanted = {eq.id for eq in assets.scope(args.scope)}
            wanted |= {m for eq in assets.scope(args.scope) for m in eq.meter_ids}
            ids = [e for e in ids if e in wanted]
        hours = max(1, int((end - start).total_seconds() // 3600))
        summary = await backfill(worker.engine, ids, start, end, progress=None if args.json else ProgressBar(hours))
    if args.json:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        print(json.dumps({**dataclasses.asdict(summary), "equipment": len(ids), "peak_rss_mb": round(peak_mb, 1)}))
        return
    print(
        f"backfill {start.isoformat()} .. {end.isoformat()}: {len(ids)} equipment, {summary.rows:,} hourly and"
        f" {summary.days:,} daily rollups from {summary.raw_points:,} raw points in {summary.seconds:.1f} s"
        f" ({summary.points_per_s:,.0f} points/s)"
    )


async def _run_api(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> None:
    from api.app import create_app
    from api.keys import KeyStore

    keys = KeyStore(settings.api.keys_path)
    if not any(key.active for key in keys.list_keys()):
        log.warning(
            "no API key in %s yet: every request but /healthz will be refused; create one with "
            "`factory keys create --name NAME --role admin --scope park`",
            settings.api.keys_path,
        )
    async with closing_store(open_store(settings.store)) as store:
        server = ApiServer(create_app(settings, store, assets, keys), settings.api.host, settings.api.port)

        async def announce() -> None:
            log.info("API listening on http://%s:%d", settings.api.host, server.port)

        await serve_until_stopped(server, on_started=announce)


def _whoami() -> str:
    try:
        return f"{getpass.getuser()} (factory keys)"
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary container uid
        return "factory keys"


def _keys(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> int:
    """``factory keys create|list|revoke``: the API's keys, in the store at settings ``api.keys_path``."""
    from api.keys import KeyStore, Role, UnknownKey, site_for_scope

    keys = KeyStore(settings.api.keys_path)
    if args.action == "create":
        try:
            site = site_for_scope(assets, args.scope)
        except ValueError as exc:
            raise ConfigError("--scope", str(exc)) from None
        if not args.name.strip():
            raise ConfigError("--name", "a key needs a name that says who or what uses it")
        new = keys.create(args.name, Role(args.role), site, _whoami())
        # The key alone on stdout, so `KEY=$(factory keys create ...)` works; the rest on stderr.
        print(
            f"created API key {new.key.id} ({new.key.name}): role {new.key.role}, scope {new.key.scope}. "
            "This is the only time it is shown; only its hash is stored.",
            file=sys.stderr,
        )
        print(new.secret)
        return 0
    if args.action == "revoke":
        try:
            key = keys.revoke(args.id)
        except UnknownKey as exc:
            print(f"factory: {exc}", file=sys.stderr)
            return 1
        assert key.revoked_at is not None
        print(f"revoked API key {key.id} ({key.name}) at {key.revoked_at.isoformat()}; refused from the next request")
        return 0
    found = keys.list_keys()
    if args.json:
        rows = [{**dataclasses.asdict(key), "role": str(key.role), "scope": key.scope} for key in found]
        print(json.dumps([{k: v for k, v in row.items() if k != "site"} for row in rows], default=str, indent=2))
        return 0
    if not found:
        print(f"no API keys in {settings.api.keys_path}; create one with `factory keys create`")
        return 0
    header = ("ID", "NAME", "ROLE", "SCOPE", "CREATED", "BY", "LAST USED", "STATUS")
    table = [header] + [
        (
            key.id,
            key.name,
            str(key.role),
            key.scope,
            key.created.isoformat(),
            key.created_by,
            key.last_used.isoformat() if key.last_used else "never",
            f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active",
        )
        for key in found
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _check_config(settings: Settings, assets: AssetModel) -> None:
    kinds: dict[str, int] = {}
    for eq in assets:
        kinds[eq.type.value] = kinds.get(eq.type.value, 0) + 1
    print(f"settings {settings.source}: ok (store: {settings.store.kind})")
    park = f"park {assets.park.id}, sites {', '.join(s.id for s in assets.sites)}"
    print(f"assets {settings.assets}: ok ({park}; {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})")
    if settings.edge is not None:
        from edge.agent import check_refresh_intervals
        from edge.opcua_security import check_security
        from edge.plan import check_source

        for n, source in enumerate(settings.edge.opcua):
            check_source(source, f"edge.opcua[{n}]")
            check_security(source.security, f"edge.opcua[{n}].security")
        from edge.meter_source import check_meter_source

        for n, meter in enumerate(settings.edge.meters):
            check_meter_source(meter, f"edge.meters[{n}]")
        check_refresh_intervals(settings.edge, assets)
        print(f"edge {settings.edge.id}: {len(settings.edge.opcua)} OPC UA sources, {len(settings.edge.meters)} meters")
    from kpi.schemes import SchemeRegistry

    schemes = SchemeRegistry.from_settings(settings.certification)
    print(f"certification schemes: ok ({', '.join(f'{s.id} {s.version}' for s in schemes.all())})")
    if settings.kpi.energy_factors is not None:
        from kpi.energy import load_energy_factors

        factors = load_energy_factors(settings.kpi.energy_factors)
        bases = ", ".join(f"{s.id} {factors.for_site(s.id).electricity_basis}" for s in assets.sites)
        print(f"energy factors {settings.kpi.energy_factors}: ok (electricity basis: {bases})")


def _healthcheck(args: argparse.Namespace) -> int:
    """``factory healthcheck [--service S]``: exit 0 when the service works (``factory/health.py``)."""
    from factory.health import judge_health_file, probe_api

    if args.service == "api":
        settings = load_settings(args.config or os.environ.get("FACTORY_CONFIG") or "")
        host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::", "") else settings.api.host
        verdict = probe_api(f"http://{host}:{settings.api.port}")
    else:
        path = os.environ.get(HEARTBEAT_ENV)
        if not path:
            print(f"factory: healthcheck needs {HEARTBEAT_ENV}", file=sys.stderr)
            return 2
        verdict = judge_health_file(Path(path), args.service, args.max_age)
    if not verdict.healthy:
        print(f"unhealthy: {verdict.reason}", file=sys.stderr)
        return 1
    print(f"healthy: {verdict.reason}")
    return 0


Runner = Callable[[Settings, AssetModel, argparse.Namespace], Coroutine[Any, Any, None]]
SERVICES: dict[str, tuple[Runner, str]] = {
    "simulator": (_run_simulator, "OPC UA machines and MQTT meters from the asset model"),
    "edge": (_run_edge, "edge agent: OPC UA + meter topics -> SQLite buffer -> MQTT uplink"),
    "ingest": (_run_ingest, "uplink -> validation -> store, with dead letters"),
    "kpi": (_run_kpi, "KPI worker: hourly base quantities into the store"),
    "api": (_run_api, "FastAPI service: assets, KPIs, keys, health"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="factory", description="Smart-factory data platform: one subcommand per service."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in SERVICES.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", type=Path, help="settings YAML (default: $FACTORY_CONFIG)")
        if name == "kpi":
            p.add_argument(
                "action",
                nargs="?",
                choices=["run", "backfill"],
                default="run",
                help="run the worker (default) or recompute the rollups of a range",
            )
            p.add_argument("--start", help="backfill: first hour (ISO-8601; a date or naive time is site-local)")
            p.add_argument("--end", help="backfill: end of the range (exclusive)")
            p.add_argument(
                "--scope", help="backfill: only the park, this site, workshop, line or equipment (and its meters)"
            )
            p.add_argument("--json", action="store_true", help="backfill: print the summary as JSON, no progress bar")
        if name == "edge":
            p.add_argument(
                "action",
                nargs="?",
                choices=["run", "check", "cert"],
                default="run",
                help="run the agent (default); check: connect and print every source's signals; "
                "cert: create the OPC UA application certificate",
            )
            add_edge_check_arguments(p)
            add_edge_cert_arguments(p)
        if name == "simulator":
            p.add_argument("--scenario", type=Path, help="scenario YAML (default: behaviour from the asset model)")
            p.add_argument(
                "--speed", type=float, help="model seconds per wall second (default: settings.simulator.speed)"
            )
            p.add_argument("--ground-truth", type=Path, help="write the simulator's ground truth here on exit")
            p.add_argument(
                "--ground-truth-interval",
                type=float,
                metavar="S",
                help="also rewrite --ground-truth every S seconds while running",
            )
            p.add_argument("--edge-config", type=Path, help="write matching edge opcua/meters sources here")
            p.add_argument(
                "--accelerated-assets",
                type=Path,
                help="write the asset model with ideal cycle times divided by the speed here",
            )
    keys = sub.add_parser("keys", help="API keys: create (printed once), list, revoke").add_subparsers(
        dest="action", required=True
    )
    p = keys.add_parser("create", help="create a key and print it (only its hash is stored)")
    p.add_argument("--config", type=Path, help="settings YAML (default: $FACTORY_CONFIG)")
    p.add_argument("--name", required=True, help="who or what uses it, e.g. 'Chongqing auditor'")
    p.add_argument("--role", required=True, choices=["auditor", "manager", "admin"])
    p.add_argument("--scope", required=True, help="a site id, or 'park' for every site")
    p = keys.add_parser("list", help="list the keys (never their secrets)")
    p.add_argument("--config", type=Path, help="settings YAML (default: $FACTORY_CONFIG)")
    p.add_argument("--json", action="store_true", help="as JSON")
    p = keys.add_parser("revoke", help="revoke a key; it is refused from the next request on")
    p.add_argument("--config", type=Path, help="settings YAML (default: $FACTORY_CONFIG)")
    p.add_argument("id", help="the key's id (`factory keys list`)")
    p = sub.add_parser("check-config", help="validate a settings file and its asset model, then exit")
    p.add_argument("--config", type=Path)
    p = sub.add_parser(
        "healthcheck",
        help=f"exit 0 if the service works: its health file (${HEARTBEAT_ENV}) is fresh and its links are up;"
        " the API: GET /healthz",
    )
    p.add_argument("--service", choices=list(HEALTH_SERVICES), help="which service (the links it must report)")
    p.add_argument("--config", type=Path, help="settings YAML for --service api (default: $FACTORY_CONFIG)")
    p.add_argument("--max-age", type=float, default=30.0, help="seconds (default 30)")
    p = sub.add_parser("deploy", help="docker compose: write .env with random secrets and the broker's files")
    add_deploy_arguments(p)
    p = sub.add_parser("history", help="write months of simulated history straight into the store")
    add_history_arguments(p)
    p = sub.add_parser(
        "deadletters", help="what ingest could not write: list, show, replay once the cause is fixed, purge"
    )
    add_deadletters_arguments(p)
    p = sub.add_parser("inputs", help="business inputs: import a CSV file, list entries, show an entry's history")
    add_inputs_arguments(p)
    p = sub.add_parser("report", help="certification report keys and offline verification of signed reports")
    add_report_arguments(p)
    p = sub.add_parser("store", help="the time-series store: setup creates InfluxDB's database and retention policies")
    add_store_arguments(p)
    p = sub.add_parser("grafana", help="dashboards and alert rules: build the provisioning files, push, feed")
    add_grafana_arguments(p)
    p = sub.add_parser("demo", help="the whole pipeline in one process on embedded defaults")
    p.add_argument("--config", type=Path, default=DEMO_CONFIG, help=f"default: {DEMO_CONFIG.relative_to(REPO)}")
    p.add_argument("--api-port", type=int, help="override the API port (0: any free port)")
    p.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    p.add_argument(
        "--scenario", type=Path, help="animate a scenario (e.g. config/scenarios/plant.yaml) instead of factory.yaml"
    )
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (e.g. 60)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "healthcheck":
            return _healthcheck(args)
        if args.command == "deploy":
            return run_deploy(args)
        if args.command == "report":
            return run_report(args)
        if args.command == "grafana":
            return run_grafana(args)
        if args.command == "edge" and args.action == "cert":
            return run_edge_cert(args)
        if args.command == "demo":
            from factory.demo import run_demo

            settings = load_settings(args.config)
            configure_logging(settings, args.verbose)
            asyncio.run(run_demo(settings, load_asset_model(settings.assets), args))
            return 0
        settings, assets = _load(args)
        configure_logging(settings, args.verbose)
        if args.command == "check-config":
            _check_config(settings, assets)
            return 0
        if args.command == "keys":
            return _keys(settings, assets, args)
        if args.command == "history":
            from simulators.history_cli import run_history

            return run_history(settings, args)
        if args.command == "inputs":
            return run_inputs(settings, assets, args)
        if args.command == "deadletters":
            return run_deadletters(settings, assets, args)
        if args.command == "store":
            return run_store(settings, args)
        if args.command == "edge" and args.action == "check":
            return run_edge_check(settings, assets, args)
        runner, _ = SERVICES[args.command]
        asyncio.run(runner(settings, assets, args))
    except ConfigError as exc:
        print(f"factory: configuration error: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"factory: cannot start: {exc}", file=sys.stderr)
        return 1
    except BrokerTlsError as exc:
        print(f"factory: {exc}", file=sys.stderr)
        return 1
    except KeyStoreUnavailable as exc:
        print(f"factory: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
