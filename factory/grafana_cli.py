"""``factory grafana build|push|feed``: dashboards and alert rules as code (kpi/dashboards, docs/dashboards.md).

* ``build`` writes the provisioning files (default ``deploy/grafana``) in Chinese or English;
  ``--check`` only compares them with what is on disk (exit 1 where they differ).
* ``push`` creates or updates the datasource, folder, dashboards and alert rules in an existing
  Grafana; the service-account token comes from ``GRAFANA_TOKEN``, the datasource's InfluxDB password
  from ``INFLUX_GRAFANA_PASSWORD``. A second push writes nothing.
* ``feed`` writes the indicators the dashboards cannot derive from rollups (``kpi.dashboards.feed``)
  for the last days, once or every ``--every`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError, StoreError
from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from core.assets import AssetModel
    from kpi.dashboards.build import BuildOptions
    from kpi.dashboards.feed import DashboardFeed

TOKEN_ENV = "GRAFANA_TOKEN"
PASSWORD_ENV = "INFLUX_GRAFANA_PASSWORD"  # kpi.dashboards.build.PASSWORD_ENV (imported late: the CLI starts fast)
URL_ENV = "GRAFANA_URL"
REPO_OUT = Path(__file__).resolve().parent.parent / "deploy" / "grafana"


def add_grafana_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--lang", choices=["zh", "en"], default="zh", help="language of every title and text")
        p.add_argument("--config", type=Path, help="settings YAML: the rollup retention policy and database (optional)")
        p.add_argument("--rollup-retention-policy", help="overrides store.influx_rollup_retention_policy")
        p.add_argument(
            "--baseline",
            help="energy dashboard's default baseline, START/END as RFC 3339 (default: the demo's baseline week)",
        )

    p = actions.add_parser(
        "build", help="write the Grafana provisioning files (datasource, folder, dashboards, alerts)"
    )
    common(p)
    p.add_argument("--out", type=Path, default=REPO_OUT, help="output directory (default: deploy/grafana)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if the files on disk differ")

    p = actions.add_parser("push", help=f"create or update them in an existing Grafana (token from ${TOKEN_ENV})")
    common(p)
    p.add_argument("--url", default=os.environ.get(URL_ENV), help=f"Grafana's URL (default: ${URL_ENV})")
    p.add_argument("--influx-url", help="InfluxDB URL as Grafana reaches it (default: store.influx_url of --config)")
    p.add_argument("--influx-user", default="grafana", help="InfluxDB user of the datasource (read only)")
    p.add_argument("--reset-password", action="store_true", help=f"send ${PASSWORD_ENV} even if the datasource exists")

    p = actions.add_parser("feed", help="write the dashboards' daily indicators (CNC and networking rates, kgce ...)")
    p.add_argument("--config", type=Path, help="settings YAML (default: $FACTORY_CONFIG)")
    p.add_argument("--days", type=int, default=2, help="local days up to today to (re)write (default 2)")
    p.add_argument("--scheme", action="append", default=[], help="certification scheme to follow (repeatable)")
    p.add_argument("--assessment-start", type=date.fromisoformat, help="first day of the schemes' assessment")
    p.add_argument("--baseline-period", help="schemes' baseline period START:END (local dates, END exclusive)")
    p.add_argument("--every", type=float, metavar="S", help="keep running, rewriting the last days every S seconds")


def _options(args: argparse.Namespace, settings: Settings | None) -> BuildOptions:
    from kpi.dashboards.build import BuildOptions

    changes: dict[str, Any] = {"language": args.lang}
    if settings is not None:
        changes["rollup_retention_policy"] = settings.store.influx_rollup_retention_policy
        changes["influx_database"] = settings.store.influx_database
    if args.rollup_retention_policy:
        changes["rollup_retention_policy"] = args.rollup_retention_policy
    if args.baseline:
        start, sep, end = args.baseline.partition("/")
        if not sep:
            raise ConfigError("--baseline", "expected START/END (RFC 3339 instants)")
        changes["baseline"] = (start, end)
    if getattr(args, "influx_url", None):
        changes["influx_url"] = args.influx_url
    if getattr(args, "influx_user", None):
        changes["influx_user"] = args.influx_user
    return replace(BuildOptions(), **changes)


def _build(args: argparse.Namespace, settings: Settings | None) -> int:
    from kpi.dashboards.build import build, write_bundle

    bundle = build(_options(args, settings))
    if args.check:
        stale = [
            name
            for name, text in bundle.files.items()
            if not (args.out / name).is_file() or (args.out / name).read_text(encoding="utf-8") != text
        ]
        for name in stale:
            print(f"out of date: {args.out / name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_bundle(bundle, args.out):
        print(path)
    return 0


def _push(args: argparse.Namespace, settings: Settings | None) -> int:
    from kpi.dashboards.build import build
    from kpi.dashboards.push import GrafanaPush, PushError

    if not args.url:
        raise ConfigError("--url", f"no Grafana URL (use --url or ${URL_ENV})")
    if not args.influx_url:
        if settings is None:
            raise ConfigError("--influx-url", "where Grafana reaches InfluxDB (or --config with store.influx_url)")
        args.influx_url = settings.store.influx_url
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise ConfigError(TOKEN_ENV, "unset: create a service account token in Grafana and export it")
    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        raise ConfigError(PASSWORD_ENV, "unset: the InfluxDB password of the datasource's read-only user")
    bundle = build(_options(args, settings))
    push = GrafanaPush.connect(args.url, token, bundle, password, reset_password=args.reset_password)
    try:
        result = push.run()
    except PushError as exc:
        print(f"factory: grafana push: {exc}", file=sys.stderr)
        return 1
    for verb, names in (("created", result.created), ("updated", result.updated)):
        for name in names:
            print(f"{verb}: {name}")
    print(f"{len(result.created)} created, {len(result.updated)} updated, {len(result.unchanged)} unchanged")
    return 0


async def _feed(args: argparse.Namespace, settings: Settings) -> int:
    from api.report_service import software_version
    from core.assets import load_asset_model
    from core.stores import open_store
    from core.stores.inputs import InputStore
    from core.tasks import cancel_and_wait
    from factory.runtime import HEARTBEAT_ENV, beat_health_file, closing_store
    from kpi.certification import Certifier
    from kpi.dashboards.feed import DashboardFeed, SchemeFeed
    from kpi.engine import KpiEngine
    from kpi.schemes import SchemeRegistry

    assets = load_asset_model(settings.assets)
    baseline = None
    if args.baseline_period:
        first, sep, last = args.baseline_period.partition(":")
        if not sep:
            raise ConfigError("--baseline-period", "expected START:END (local dates)")
        baseline = (date.fromisoformat(first), date.fromisoformat(last))
    if args.scheme and args.assessment_start is None:
        raise ConfigError("--assessment-start", "a followed scheme needs the first day of its assessment")
    async with closing_store(open_store(settings.store)) as store:
        engine = KpiEngine.from_settings(store, assets, settings.kpi)
        inputs = InputStore.for_assets(settings.inputs.path, assets)
        schemes = SchemeRegistry.from_settings(settings.certification)
        known = {scheme.id for scheme in schemes.all()}
        for scheme in args.scheme:  # an unknown scheme stops here, before any work
            if scheme not in known:
                raise ConfigError("--scheme", f"unknown scheme {scheme!r}; known: {', '.join(sorted(known))}")
        certifier = Certifier(engine, assets, inputs, schemes, software_version())
        follow = [SchemeFeed(s, args.assessment_start, baseline) for s in args.scheme]
        feed = DashboardFeed(store, engine, assets, inputs=inputs, certifier=certifier, schemes=follow)
        link = _FeedLink()
        heartbeat_file = os.environ.get(HEARTBEAT_ENV) if args.every is not None else None
        beat = asyncio.create_task(beat_health_file(heartbeat_file, [link])) if heartbeat_file else None
        try:
            return await _feed_rounds(args, assets, feed, link)
        finally:
            if beat is not None:
                await cancel_and_wait(beat)


class _FeedLink:
    """The feed's health as ``factory healthcheck --service feed`` reads it: did its last round write?"""

    def __init__(self) -> None:
        self.store_up = True

    def links(self) -> dict[str, bool]:
        return {"store": self.store_up}


async def _feed_rounds(args: argparse.Namespace, assets: AssetModel, feed: DashboardFeed, link: _FeedLink) -> int:
    while True:
        zone, _ = assets.calendar_of(assets.park.id)
        today = datetime.now(zone).date()
        days = [today - timedelta(days=n) for n in range(args.days - 1, -1, -1)]
        # One round is one unit: a store that is away fails the round, said once per round; the
        # next round (--every) rewrites the same days, so nothing is lost by waiting.
        try:
            written = await feed.write_days(days)
        except StoreError as exc:
            link.store_up = False
            print(f"factory: grafana feed: {days[0]}..{days[-1]} not written: {exc}", file=sys.stderr, flush=True)
            if args.every is None:
                return 1
        else:
            link.store_up = True
            print(f"feed: {written} points for {days[0]}..{days[-1]}", flush=True)
            if args.every is None:
                return 0
        await asyncio.sleep(args.every)


def run_grafana(args: argparse.Namespace) -> int:
    path = args.config or (os.environ.get("FACTORY_CONFIG") if args.action == "feed" else None)
    settings = load_settings(path) if path else None
    if args.action == "build":
        return _build(args, settings)
    if args.action == "push":
        return _push(args, settings)
    if settings is None:
        raise ConfigError("--config", "no settings file given (use --config FILE or FACTORY_CONFIG)")
    return asyncio.run(_feed(args, settings))
