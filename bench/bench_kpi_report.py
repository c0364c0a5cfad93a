"""Benchmark: KPI reports from rollups against a raw scan, on history-generator data in a real InfluxDB.

Issue 6's targets, for the 40-machine machining workshop of ``config/scenarios/plant.yaml``:

* a one-year report of the workshop from rollups in under 200 ms;
* in the same run, a 30-day report from rollups and from a raw scan with identical numbers, and
  raw time / rollup time (``ratio``) of at least 50;
* backfill throughput (raw points/s) and its peak RSS (under 500 MB).

Steps:

1. start influxd on loopback (``tests.servers.influxdb``) with its data in a temp directory;
2. the history generator writes ``--days`` (30) days of the plant into it;
3. ``factory kpi backfill --json`` builds the hourly and daily rollups of those days in a child
   process, which reports its throughput and its own peak RSS;
4. the daily rollups of those days are copied back in time until they cover a year (the year's
   report reads only daily rows, so its speed does not depend on which days they hold; its numbers
   are not compared with anything);
5. the reports: the year from rollups (median of 5), the 30 days from rollups (median of 5) and
   from a raw scan (median of 3), every base quantity and KPI of the two 30-day reports compared to
   1e-9; the last line printed is the result as JSON.

Run: ``.venv/bin/python bench/bench_kpi_report.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(REPO))

from core.settings import load_settings  # noqa: E402
from core.store import Point, Store  # noqa: E402
from core.stores.influx import InfluxStore  # noqa: E402
from core.wire import datetime_to_ns  # noqa: E402
from kpi.base import BaseQuantities  # noqa: E402
from kpi.engine import KpiEngine  # noqa: E402
from kpi.report import KpiReport  # noqa: E402
from kpi.rollup import DAILY, MONTH, local_spans  # noqa: E402
from simulators.history import HistoryGenerator, HistoryOptions, Progress, write_history  # noqa: E402
from simulators.scenario import load_scenario  # noqa: E402
from tests.servers import influxdb  # noqa: E402

PLANT_SCENARIO = REPO / "config" / "scenarios" / "plant.yaml"
WORKSHOP = "ws-machining"
FIRST_DAY = date(2026, 3, 2)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), tz)


def _settings_file(tmp: Path, url: str, assets: Path) -> Path:
    path = tmp / "settings.yaml"
    path.write_text(
        f"assets: {assets}\n"
        f"store: {{kind: influxdb, influx_url: '{url}', influx_database: bench_kpi}}\n"
        f"kpi: {{energy_factors: {REPO / 'config' / 'energy.yaml'}}}\n"
    )
    return path


async def _timed(make: object, repeat: int) -> tuple[float, KpiReport]:
    times = []
    report = None
    for _ in range(repeat):
        started = time.perf_counter()
        report = await make()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    assert report is not None
    return statistics.median(times) * 1000, report


def _compare(rolled: KpiReport, raw: KpiReport) -> int:
    """Every base quantity and KPI of the two reports equal to 1e-9; returns how many numbers were compared."""
    compared = 0
    pairs = [
        (rolled.base, raw.base),
        *((a.base, b.base) for a, b in zip(rolled.per_equipment, raw.per_equipment, strict=True)),
    ]
    for a, b in pairs:
        for f in fields(BaseQuantities):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if abs(x - y) > 1e-9 * max(1.0, abs(x), abs(y)):
                raise AssertionError(f"rollup and raw reports differ in {f.name}: {x} != {y}")
            compared += 1
    for a, b in zip(rolled.kpis, raw.kpis, strict=True):
        same = a.value == b.value or (
            a.value is not None and b.value is not None and abs(a.value - b.value) <= 1e-9 * max(1.0, abs(b.value))
        )
        if not same or a.status != b.status:
            raise AssertionError(f"rollup and raw reports differ in {a.key}: {a.value} ({a.status}) != {b.value}")
        compared += 1
    return compared


async def extend_to_a_year(engine: KpiEngine, store: Store, tz: ZoneInfo, first: date, days: int) -> date:
    """Copy the daily rollups of [first, first + days) back in time until a year is covered; sum the months.

    Reports read rollups, so their speed does not depend on which days the rows hold (also used by
    bench_certification_report.py).
    """
    start, end = _local_midnight(first, tz), _local_midnight(first + timedelta(days=days), tz)
    rows = await store.read_points(DAILY, start, end)
    by_day: dict[date, list[Point]] = {}
    for p in rows:
        by_day.setdefault(datetime.fromtimestamp(p.time_ns / 1e9, tz).date(), []).append(p)
    year_start = first + timedelta(days=days) - timedelta(days=365)
    copies = []
    day = year_start
    while day < first:
        source = first + timedelta(days=(day - year_start).days % days)
        shift = datetime_to_ns(_local_midnight(day, tz)) - datetime_to_ns(_local_midnight(source, tz))
        copies += [Point(p.measurement, p.tags, p.fields, p.time_ns + shift) for p in by_day.get(source, [])]
        day += timedelta(days=1)
    await store.write(copies)
    months = local_spans(MONTH, datetime_to_ns(_local_midnight(year_start, tz)), datetime_to_ns(end), tz)
    ids = sorted({p.tags["equipment"] for p in rows})
    await engine.rollups.refresh_spans(MONTH, ids, months, datetime_to_ns(end), tz)
    return year_start


async def run(args: argparse.Namespace, url: str, tmp: Path) -> dict[str, object]:
    scenario = load_scenario(args.scenario)
    tz = scenario.timezone
    generator = HistoryGenerator(scenario, start=FIRST_DAY, days=args.days, options=HistoryOptions())
    async with InfluxStore(url, "bench_kpi") as store:
        summary = await write_history(generator, store, resume=False, progress=Progress(args.days))
    print(f"history: {summary.points:,} points of {args.days} days in {summary.seconds:.1f} s", flush=True)

    settings_path = _settings_file(tmp, url, Path(scenario.assets.source))
    end_day = FIRST_DAY + timedelta(days=args.days)
    # A child process, so that its peak RSS is the backfill's alone.
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "factory.cli", "kpi", "backfill", "--config", str(settings_path)),
        *("--start", FIRST_DAY.isoformat(), "--end", end_day.isoformat(), "--json"),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"factory kpi backfill exited with {child.returncode}")
    backfill = json.loads(out.decode().strip().splitlines()[-1])
    print(
        f"backfill: {backfill['raw_points']:,} raw points of {backfill['equipment']} equipment in"
        f" {backfill['seconds']:.1f} s = {backfill['raw_points'] / backfill['seconds']:,.0f} points/s,"
        f" peak RSS {backfill['peak_rss_mb']} MB",
        flush=True,
    )

    settings = load_settings(settings_path)
    month_start, month_end = _local_midnight(FIRST_DAY, tz), _local_midnight(end_day, tz)
    now = month_end + timedelta(days=1)  # every hour of the history has settled
    async with InfluxStore(url, "bench_kpi") as store:
        engine = KpiEngine.from_settings(store, scenario.assets, settings.kpi, clock=lambda: now)
        year_first = await extend_to_a_year(engine, store, tz, FIRST_DAY, args.days)
        year_start = _local_midnight(year_first, tz)
        year_ms, year = await _timed(lambda: engine.report(WORKSHOP, year_start, month_end), 5)
        rollup_ms, rolled = await _timed(lambda: engine.report(WORKSHOP, month_start, month_end), 5)
        raw_ms, raw = await _timed(lambda: engine.report(WORKSHOP, month_start, month_end, use_rollups=False), 3)
    compared = _compare(rolled, raw)
    oee = next(k for k in rolled.kpis if k.key == "oee")
    print(
        f"year ({year.read_path.rollup_months} equipment-months, {year.read_path.rollup_days} equipment-days"
        f" from rollups): {year_ms:.0f} ms;"
        f" {args.days} days from rollups {rollup_ms:.1f} ms ({rolled.read_path.rollup_days} equipment-days),"
        f" from a raw scan {raw_ms:.0f} ms; {compared} numbers identical (OEE {oee.value} {oee.status}: {oee.reason})",
        flush=True,
    )
    return {
        "bench": "kpi_report",
        "value": round(year_ms, 1),
        "unit": "ms",
        "baseline": round(raw_ms, 1),
        "ratio": round(raw_ms / rollup_ms, 1),
        "rollup_30d_ms": round(rollup_ms, 1),
        "backfill_points_per_s": round(backfill["raw_points"] / backfill["seconds"]),
        "backfill_peak_rss_mb": backfill["peak_rss_mb"],
        "identical_numbers": compared,
        "store": "influxdb",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=PLANT_SCENARIO)
    parser.add_argument("--days", type=int, default=30, help="days of raw history (the 30-day comparison)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-kpi-") as tmp, influxdb(Path(tmp) / "influxdb") as server:
        result = asyncio.run(run(args, server.url, Path(tmp)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
