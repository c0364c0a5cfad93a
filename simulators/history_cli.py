"""``factory history``: the history generator on the command line (arguments, run, summary).

Kept apart from ``factory.cli`` so that building the parser imports nothing heavy; numpy, the
scenario schema and the stores are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from core.settings import Settings
    from simulators.history import HistorySummary
    from simulators.scenario import FactoryScenario, HistorySpec


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share (0.2 or 20%)") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def add_history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="settings YAML that names the store (default: $FACTORY_CONFIG)")
    p.add_argument("--scenario", type=Path, required=True, help="scenario YAML (e.g. config/scenarios/plant.yaml)")
    p.add_argument("--start", type=_day, help="first local day (default: the scenario's baseline start)")
    p.add_argument("--days", type=_positive_int, help="number of days (default: to the end of the assessment)")
    p.add_argument("--store", choices=("influxdb", "sqlite"), help="override the settings' store kind")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    periods = p.add_argument_group("baseline and assessment (default: the scenario's history section)")
    periods.add_argument(
        "--assessment-start", type=_day, help="baseline before this day, assessment from it to the end"
    )
    periods.add_argument("--efficiency", type=_share, help="assessment: share of unplanned losses removed")
    periods.add_argument("--defect-rate", type=_share, help="assessment: share of scrap and rework removed")
    periods.add_argument("--energy-per-part", type=_share, help="assessment: share of machine power saved")
    volume = p.add_argument_group("volume")
    volume.add_argument(
        "--counter-interval", type=_positive_float, help="sample part counters every N seconds (default: every change)"
    )
    volume.add_argument("--meter-interval", type=_positive_float, help="meter register every N seconds (default 60)")
    volume.add_argument("--no-process-values", action="store_true", help="skip cycle time, spindle speed, power")
    run = p.add_argument_group("run")
    run.add_argument("--rewrite", action="store_true", help="write every day again, even days marked as written")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")


def _periods(scenario: FactoryScenario, args: argparse.Namespace, start: date, days: int) -> HistorySpec | None:
    """The scenario's history section with the command line's overrides laid over it."""
    from pydantic import ValidationError

    from core.errors import ConfigError
    from simulators.scenario import HistorySpec, Improvements, Period

    history = scenario.spec.history
    end = start + timedelta(days=days)
    try:
        if args.assessment_start is not None:
            if not start < args.assessment_start < end:
                raise ConfigError(
                    "--assessment-start", f"{args.assessment_start} must lie inside the generated days {start} .. {end}"
                )
            history = HistorySpec(
                baseline=Period(start=start, end=args.assessment_start),
                assessment=Period(start=args.assessment_start, end=end),
                improvements=history.improvements if history else Improvements(),
                meter_interval=history.meter_interval if history else 60.0,
            )
        overrides = {
            name: value
            for name, value in (
                ("efficiency", args.efficiency),
                ("defect_rate", args.defect_rate),
                ("energy_per_part", args.energy_per_part),
            )
            if value is not None
        }
        if overrides:
            if history is None:
                raise ConfigError(
                    "--efficiency/--defect-rate/--energy-per-part",
                    "improvements need an assessment period: give --assessment-start or a history section",
                )
            improvements = Improvements.model_validate({**history.improvements.model_dump(), **overrides})
            history = history.model_copy(update={"improvements": improvements})
    except ValidationError as exc:
        raise ConfigError("command line", str(exc.errors(include_url=False)[0]["msg"])) from exc
    return history


async def _generate(settings: Settings, args: argparse.Namespace) -> HistorySummary:
    from core.assets import load_asset_model
    from core.errors import ConfigError
    from core.stores import open_store
    from factory.runtime import closing_store
    from simulators.history import HistoryGenerator, HistoryOptions, Progress, write_history
    from simulators.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    platform = load_asset_model(settings.assets)
    if not platform.has_scope(scenario.site.id):
        log.warning(
            "the settings' asset model %s (sites %s) has not the scenario's site %s (of %s): the KPI worker and"
            " the API of these settings will not know the equipment written",
            settings.assets,
            ", ".join(s.id for s in platform.sites),
            scenario.site.id,
            scenario.assets.source,
        )
    history = scenario.spec.history
    start = args.start or (history.baseline.start if history else None)
    if start is None:
        raise ConfigError(str(args.scenario), "no history section: give --start (and --days)", field="history")
    days = args.days or ((history.assessment.end - start).days if history else 0)
    if days < 1:
        raise ConfigError(str(args.scenario), f"the history ends before --start {start}: give --days", field="history")
    history = _periods(scenario, args, start, days)
    options = HistoryOptions(
        counter_interval_s=args.counter_interval,
        process_values=not args.no_process_values,
        meter_interval_s=args.meter_interval,
    )
    generator = HistoryGenerator(scenario, start=start, days=days, history=history, seed=args.seed, options=options)
    store_settings = settings.store
    if args.store:
        store_settings = store_settings.model_copy(update={"kind": args.store})
    progress = None if args.quiet else Progress(days)
    async with closing_store(open_store(store_settings)) as store:
        return await write_history(generator, store, resume=not args.rewrite, progress=progress)


def _describe(summary: HistorySummary) -> str:
    change = summary.expected.get("change", {})
    return (
        f"history {summary.first_day} .. {summary.last_day}: {summary.days_written} day(s) written, "
        f"{summary.days_skipped} skipped (already written, generator {summary.fingerprint}); "
        f"{summary.points:,} points in {summary.seconds:.1f} s = {summary.points_per_s:,.0f} points/s "
        f"into {summary.backend}\n"
        f"expected assessment vs baseline: OEE {change.get('oee', 0):+.1%}, "
        f"defect rate {change.get('defect_rate', 0):+.1%}, kWh per good part {change.get('kwh_per_good_part', 0):+.1%}"
    )


def run_history(settings: Settings, args: argparse.Namespace) -> int:
    """Run the command; ConfigError propagates (the caller prints it), a store failure exits 1."""
    from core.errors import StoreError

    try:
        summary = asyncio.run(_generate(settings, args))
    except StoreError as exc:
        print(f"factory: history: store error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary.to_json()) if args.json else _describe(summary))
    return 0
