"""Benchmark: the history generator writing into a real InfluxDB, against the raw /write ceiling.

Issue 3's target: 180 days of the factory-scale scenario written at >= 50 % of the raw ``/write``
ceiling measured in the same run. Steps:

1. start influxd on loopback (``tests.servers.influxdb``) with its data in a temp directory;
2. ceiling: line protocol of 20 days of the same scenario (Sundays skipped), spread over the 180
   days, is built in memory first and then posted in 5,000-point batches with the generator's
   concurrency into a scratch database (which is dropped afterwards);
3. the generator writes all 180 days (generation, encoding and posting, timed end to end);
4. the last line printed is the result as JSON:
   ``{"bench": "history_write", "value": …, "unit": "points/s", "baseline": …, "ratio": …}``.

Run: ``.venv/bin/python bench/bench_history.py`` (``--help`` for the knobs). The scenario is
``config/scenarios/plant.yaml``: 2 workshops, 40 CNC machines, 10 robots, 15 meters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from core.stores.influx import InfluxStore  # noqa: E402
from simulators.history import (  # noqa: E402
    HistoryGenerator,
    HistoryOptions,
    Progress,
    chunks_of,
    write_history,
)
from simulators.history_lines import chunks_to_lines  # noqa: E402
from simulators.scenario import load_scenario  # noqa: E402
from tests.servers import influxdb  # noqa: E402

PLANT_SCENARIO = REPO / "config" / "scenarios" / "plant.yaml"
BATCH_POINTS = 5000


async def _drop(url: str, database: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await client.post("/query", data={"q": f'DROP DATABASE "{database}"'})


async def measure_ceiling(
    url: str, generator: HistoryGenerator, days: list[date], concurrency: int
) -> tuple[float, int]:
    """Points/s of posting pre-built line protocol of ``days`` in 5,000-point batches."""
    lines = [line for day in chunks_of(generator, days) for line in chunks_to_lines(day.chunks)]
    bodies = ["".join(lines[i : i + BATCH_POINTS]).encode() for i in range(0, len(lines), BATCH_POINTS)]
    points = len(lines)
    del lines
    database = "bench_ceiling"
    async with InfluxStore(url, database) as store:
        await store.write_line_protocol(bodies[0][: bodies[0].index(b"\n") + 1])  # creates the database
        queue = list(reversed(bodies))

        async def post() -> None:
            while queue:
                await store.write_line_protocol(queue.pop())

        started = time.perf_counter()
        await asyncio.gather(*(post() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    await _drop(url, database)
    return points / seconds, points


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default); 0 where /proc is missing."""
    if pid is None:
        usage = os.times()
        return usage.user + usage.system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace, url: str, influxd_pid: int, scenario_path: Path) -> dict[str, object]:
    scenario = load_scenario(scenario_path)
    options = HistoryOptions(
        counter_interval_s=args.counter_interval,
        process_values=not args.no_process_values,
        concurrency=args.concurrency,
    )
    start = scenario.spec.history.baseline.start if scenario.spec.history else date(2026, 1, 5)
    generator = HistoryGenerator(scenario, start=start, days=args.days, options=options)
    step = max(1, args.days // args.ceiling_days)
    # Working days spread over the whole range, so the ceiling writes into as many shards.
    sample = [d for d in generator.days[::step] if d.isoweekday() != 7][: args.ceiling_days]
    influxd = cpu_seconds(influxd_pid)
    ceiling, ceiling_points = await measure_ceiling(url, generator, sample, args.concurrency)
    influxd = cpu_seconds(influxd_pid) - influxd
    print(
        f"ceiling: {ceiling_points:,} pre-built points of {len(sample)} days -> {ceiling:,.0f} points/s "
        f"(influxd {influxd:.1f} s cpu)"
    )

    own, influxd = cpu_seconds(), cpu_seconds(influxd_pid)
    async with InfluxStore(url, "bench_history") as store:
        summary = await write_history(generator, store, resume=False, progress=Progress(args.days))
    own, influxd = cpu_seconds() - own, cpu_seconds(influxd_pid) - influxd
    machines = len(scenario.machine_ids())
    meters = len(scenario.meter_ids())
    print(
        f"generator: {summary.points:,} points ({machines} machines, {meters} meters, {args.days} days, "
        f"counters {'every ' + str(args.counter_interval) + ' s' if args.counter_interval else 'at every change'}, "
        f"process values {'off' if args.no_process_values else 'on'}) in {summary.seconds:.1f} s "
        f"-> {summary.points_per_s:,.0f} points/s"
    )
    print(
        f"cpu during the generator run: generator {own:.1f} s ({own / summary.seconds:.0%} of a core), "
        f"influxd {influxd:.1f} s ({influxd / summary.seconds:.0%}); {os.cpu_count()} cores"
    )
    return {
        "bench": "history_write",
        "value": round(summary.points_per_s),
        "unit": "points/s",
        "baseline": round(ceiling),
        "ratio": round(summary.points_per_s / ceiling, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=PLANT_SCENARIO)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--ceiling-days", type=int, default=20, help="days of pre-built line protocol for the ceiling")
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight (ceiling and generator)")
    parser.add_argument(
        "--counter-interval", type=float, help="seconds between counter samples (default: every change)"
    )
    parser.add_argument("--no-process-values", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        print(f"scenario: {args.scenario}")
        with influxdb(Path(tmp) / "influxdb") as server:
            result = asyncio.run(run(args, server.url, server.proc.pid, args.scenario))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
