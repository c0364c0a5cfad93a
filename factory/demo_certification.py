"""What the demo needs for a certification report, written once: history, business inputs, signing keys.

A live demo has minutes of data; a certification report compares a baseline period with an
assessment period. So on its first run the demo writes two weeks of generated history of the
simulated site (``config/scenarios/demo-history.yaml``: a baseline week, then an assessment week
after an improvement programme), builds their KPI rollups, imports the business inputs of the same
weeks (``config/scenarios/demo-history-inputs.csv``: value added, costs, headcount, projects) and
makes an Ed25519 signing key for every site and the park. A second run finds all of it and skips
it: the history by the generator's fingerprint (a marker file beside the store), the inputs by
the store not being empty, the keys by their files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

from api.reporting.signing import SiteKeys
from core.assets import AssetModel
from core.inputs_csv import import_inputs_csv
from core.settings import Settings
from core.store import Store
from core.stores.inputs import InputStore
from kpi.backfill import backfill
from kpi.engine import KpiEngine
from kpi.worker import KpiWorker
from simulators.history import HistoryGenerator, HistoryOptions, write_history
from simulators.scenario import load_scenario

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
DEMO_HISTORY = REPO / "config" / "scenarios" / "demo-history.yaml"
DEMO_INPUTS = REPO / "config" / "scenarios" / "demo-history-inputs.csv"
MARKER = "certification-history.json"
# Counters every 5 min and no process values: two weeks of 8 machines in about 0.9 M points.
OPTIONS = HistoryOptions(counter_interval_s=300, process_values=False, meter_interval_s=300)


@dataclass(frozen=True, slots=True)
class CertificationDemo:
    """What a newcomer needs to ask for the demo's report."""

    site: str
    baseline: tuple[str, str]  # local dates [start, end)
    assessment: tuple[str, str]
    history_written: bool  # False: found from an earlier run
    inputs_imported: int
    keys_made: list[str]


async def prepare_certification_demo(
    settings: Settings, store: Store, assets: AssetModel, *, say: Callable[[str], None] = print
) -> CertificationDemo:
    """Write whatever of the demo's certification data is missing; quick when nothing is."""
    scenario = load_scenario(DEMO_HISTORY)
    history = scenario.spec.history
    assert history is not None, f"{DEMO_HISTORY} has a history section"
    site = scenario.site.id
    days = (history.assessment.end - history.baseline.start).days
    generator = HistoryGenerator(scenario, start=history.baseline.start, days=days, history=history, options=OPTIONS)
    data_dir = _data_dir(settings)
    marker = data_dir / MARKER
    written = False
    if _marked(marker) != generator.fingerprint:
        say(
            f"first run: writing {days} days of history of {site} ({history.baseline.start} .. "
            f"{history.assessment.end}) for the certification demo, once (about half a minute)…"
        )
        summary = await write_history(generator, store, resume=True)
        engine = KpiEngine.from_settings(store, assets, settings.kpi)
        # The worker records which configuration its rollups were made with; recorded before the
        # backfill, it does not mistake these rollups for stale ones and rebuild them at start.
        await KpiWorker(settings, store, assets).check_meta()
        zone, _ = assets.calendar_of(site)
        start = datetime.combine(history.baseline.start, time(), tzinfo=zone).astimezone(UTC)
        end = datetime.combine(history.assessment.end, time(), tzinfo=zone).astimezone(UTC)
        rollups = await backfill(engine, [eq.id for eq in assets.scope(site)], start, end)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"fingerprint": generator.fingerprint, "points": summary.points}) + "\n")
        say(f"  history: {summary.points:,} points, {rollups.rows:,} KPI rollup rows")
        written = True
    inputs = InputStore.for_assets(settings.inputs.path, assets)
    imported = 0
    if not inputs.list(site=site):
        imported = len(import_inputs_csv(inputs, DEMO_INPUTS.read_bytes(), entered_by="demo"))
        say(f"  business inputs: {imported} entries from {DEMO_INPUTS.relative_to(REPO)}")
    keys = SiteKeys(settings.reports.keys_dir)
    made = []
    for name in [*(s.id for s in assets.sites), assets.park.id]:
        if not keys.private_path(name).exists():
            keys.generate(name)
            made.append(name)
    if made:
        say(f"  signing keys: made for {', '.join(made)} in {settings.reports.keys_dir}")
    return CertificationDemo(
        site=site,
        baseline=(history.baseline.start.isoformat(), history.baseline.end.isoformat()),
        assessment=(history.assessment.start.isoformat(), history.assessment.end.isoformat()),
        history_written=written,
        inputs_imported=imported,
        keys_made=made,
    )


def _data_dir(settings: Settings) -> Path:
    if settings.store.kind == "sqlite":
        return Path(settings.store.sqlite_path).parent
    return Path(settings.inputs.path).parent


def _marked(marker: Path) -> str | None:
    try:
        return str(json.loads(marker.read_text())["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
