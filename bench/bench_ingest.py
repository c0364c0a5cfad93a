"""Benchmark: uplink batches through Mosquitto and ingest into InfluxDB, against the raw /write ceiling.

Issue 9's benchmark, in one run:

1. start Mosquitto and influxd on loopback (``tests.servers``) with their data in a temp directory;
2. **baseline (a)**: the same points as pre-built line protocol, posted to ``/write`` in 5,000-point
   batches from one process into a scratch database;
3. **value (b)**: ``factory ingest`` runs as a subprocess (MQTT v5, acknowledgement after write); this
   process publishes the points as uplink batches of 500 samples (QoS 1) from several edges, with a
   realistic mix (machine states, part counters, energy registers, process values), and the clock
   runs until ingest has written every point (its ``/metrics``, polled every 50 ms: counting in
   InfluxDB while it writes would load the server under test), after which InfluxDB must count
   every point; ingest's RSS is sampled meanwhile;
4. with ``--instances 2`` (the default) the same again with two ingest processes in one shared
   subscription group, reported as the combined rate;
5. before each measurement the benchmark waits until influxd is quiet (compacting what it was sent
   before would otherwise weigh on whatever comes next);
   steps 2-4 run ``--rounds`` times (3), each round's ceiling beside its full path, since the box's
   speed moves a lot within a minute; the figures are the rounds' medians (the ratio the median of
   each round's own ratio), and ingest's CPU time per point (user + system, all instances) is
   reported too, the figure other work on the box moves least;
6. the last line printed is the result as JSON:
   ``{"bench": "ingest_throughput", "value": …, "unit": "points/s", "baseline": …, "ratio": …,
   "rss_mb": …, "cpu_us_per_point": …, "rounds": …, "two_instances": …, "two_instances_cpu_us_per_point": …}``.

Run: ``.venv/bin/python bench/bench_ingest.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(REPO))

import aiomqtt  # noqa: E402
import httpx  # noqa: E402

from core.assets import load_asset_model  # noqa: E402
from core.store import Point  # noqa: E402
from core.stores.influx import InfluxStore  # noqa: E402
from core.stores.lineprotocol import encode_points  # noqa: E402
from core.wire import Sample, encode_batch  # noqa: E402
from ingest.mapping import sample_to_point  # noqa: E402
from tests.servers import free_port, influxdb, mosquitto  # noqa: E402

ASSETS = REPO / "config" / "factory.yaml"
BATCH_POINTS = 5000
MEASUREMENTS = ("machine_state", "part_counter", "energy", "process_value")


def realistic_samples(count: int, start: datetime) -> list[Sample]:
    """States, counters and process values of the CNC machines and robots, energy of the meters.

    Every sample has a timestamp of its own (1 µs apart), so every one is a point of its own.
    """
    machines = ["cnc-01", "cnc-02", "cnc-03", "cnc-04", "cnc-05", "cnc-06", "robot-01", "robot-02"]
    meters = ["meter-a", "meter-b", "meter-c"]
    samples = []
    for n in range(count):
        ts = start + timedelta(microseconds=n)
        kind = n % 10
        if kind < 2:
            equipment, signal, value = machines[n % 8], "state", ("PRODUCING", "IDLE", "SETUP", "DOWN")[n % 4]
        elif kind < 5:
            equipment, signal, value = machines[n % 8], ("parts_total", "parts_good")[n % 2], n // 10
        elif kind < 7:
            equipment, signal, value = meters[n % 3], "energy_kwh", 1000.0 + n / 7
        else:
            equipment, signal, value = machines[n % 8], ("spindle_speed", "load_pct", "temperature_c")[n % 3], n / 3
        samples.append(Sample(equipment=equipment, signal=signal, ts=ts, value=value))
    return samples


async def count_points(url: str, database: str) -> int:
    # One statement per measurement: InfluxDB 1.6 leaves the string-valued machine_state out of one
    # COUNT over several measurements.
    query = ";".join(f'SELECT COUNT("value") FROM "{m}"' for m in MEASUREMENTS)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        response = await client.post("/query", data={"q": query, "db": database})
    body = response.json()
    total = 0
    for result in body.get("results", []):
        for series in result.get("series", []):
            total += int(series["values"][0][1])
    return total


async def measure_ceiling(url: str, points: list[Point], database: str) -> float:
    """Points/s of posting pre-built line protocol in 5,000-point batches from one process."""
    bodies = [encode_points(points[i : i + BATCH_POINTS]) for i in range(0, len(points), BATCH_POINTS)]
    async with InfluxStore(url, database) as store:
        await store.write_line_protocol(bodies[0][: bodies[0].index(b"\n") + 1])  # creates the database
        started = time.perf_counter()
        for body in bodies:
            await store.write_line_protocol(body)
        seconds = time.perf_counter() - started
    return len(points) / seconds


async def points_written(client: httpx.AsyncClient, ports: list[int]) -> int:
    """What the ingest instances' ``/metrics`` say they wrote, together."""
    total = 0
    for port in ports:
        page = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        for line in page.splitlines():
            if line.startswith("factory_ingest_points_written_total "):
                total += int(float(line.split()[1]))
    return total


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@contextlib.contextmanager
def ingest_processes(
    workdir: Path, broker_port: int, url: str, database: str, instances: int, prefix: str, metrics_ports: list[int]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    group = f"bench-{uuid.uuid4().hex[:6]}" if instances > 1 else None
    procs = []
    logs = []
    try:
        for n in range(instances):
            config = workdir / f"ingest-{n}.yaml"
            config.write_text(
                f"""assets: {ASSETS}
log_level: INFO
broker: {{host: 127.0.0.1, port: {broker_port}}}
store: {{kind: influxdb, influx_url: {url}, influx_database: {database}}}
uplink: {{topic_prefix: {prefix}}}
ingest:
  client_id: bench-ingest-{n}-{uuid.uuid4().hex[:6]}
  dead_letter_path: {workdir / f"dead-letters-{n}.sqlite"}
  batch_max_points: {BATCH_POINTS}
  flush_interval_s: 0.2
  mqtt_protocol: "5"
  receive_maximum: 100
  metrics_port: {metrics_ports[n]}
{f"  shared_group: {group}" if group else ""}
"""
            )
            log = (workdir / f"ingest-{n}.log").open("w")
            logs.append(log)
            env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY")}
            command = [sys.executable, "-m", "factory.cli", "ingest", "--config", str(config)]
            procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO))
        deadline = time.monotonic() + 30
        for n, proc in enumerate(procs):
            log_path = workdir / f"ingest-{n}.log"
            while "subscribed to" not in log_path.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ingest {n} did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.05)
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def until_quiet(pid: int, cores: float = 0.1, window_s: float = 0.5, longest_s: float = 30.0) -> None:
    """Wait until process ``pid`` uses less than ``cores`` of CPU over ``window_s`` (at most ``longest_s``).

    influxd compacts what it was just sent in the background: without this wait, whatever is measured
    right after the ceiling (or after the full path) pays for the writes before it.
    """
    deadline = time.monotonic() + longest_s
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(window_s)
        if cpu_seconds(pid) - before < cores * window_s:
            return


@dataclass(frozen=True, slots=True)
class FullPath:
    points_per_s: float
    rss_mb: float  # the highest ingest RSS seen
    cpu_us_per_point: float  # ingest's CPU (all instances) per point, from the first publish to the last write


async def full_path(
    workdir: Path,
    broker_port: int,
    url: str,
    payloads: list[tuple[str, bytes]],
    points: int,
    instances: int,
    database: str,
) -> FullPath:
    """Publish the payloads and time them until ingest wrote every point; InfluxDB must then count every one."""
    prefix = f"bench/{uuid.uuid4().hex[:6]}/uplink"
    metrics_ports = [free_port() for _ in range(instances)]
    with ingest_processes(workdir, broker_port, url, database, instances, prefix, metrics_ports) as procs:
        highest_rss = 0.0
        async with aiomqtt.Client(
            "127.0.0.1", broker_port, identifier=f"bench-pub-{uuid.uuid4().hex[:6]}"
        ) as publisher:
            publisher.pending_calls_threshold = 100  # 64 publishes in flight are the plan, not a leak
            in_flight = asyncio.Semaphore(64)

            async def publish(edge: str, payload: bytes) -> None:
                async with in_flight:
                    await publisher.publish(f"{prefix}/{edge}", payload, qos=1)

            cpu_before = sum(cpu_seconds(p.pid) for p in procs)
            started = time.perf_counter()
            await asyncio.gather(*(publish(edge, payload) for edge, payload in payloads))
            published = time.perf_counter() - started
            async with httpx.AsyncClient(timeout=10) as metrics:
                while (written := await points_written(metrics, metrics_ports)) < points:
                    highest_rss = max([highest_rss, *(rss_mb(p.pid) for p in procs)])
                    if any(p.poll() is not None for p in procs):
                        raise RuntimeError("an ingest process stopped")
                    if time.perf_counter() - started > 600:
                        raise RuntimeError(f"only {written:,} of {points:,} points written within 600 s")
                    await asyncio.sleep(0.05)
            seconds = time.perf_counter() - started
            cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_before
            # A write InfluxDB answered is stored; if ingest wrote some point twice, wait for the rest.
            while (stored := await count_points(url, database)) < points:
                if time.perf_counter() - started > 600:
                    raise RuntimeError(f"only {stored:,} of {points:,} points arrived within 600 s")
                await asyncio.sleep(0.2)
                seconds = time.perf_counter() - started
            if stored != points:
                raise RuntimeError(f"InfluxDB counts {stored:,} points, {points:,} were published")
    result = FullPath(points / seconds, highest_rss, cpu / points * 1e6)
    print(
        f"full path, {instances} ingest instance(s): {points:,} points in {seconds:.1f} s"
        f" (published in {published:.1f} s) -> {result.points_per_s:,.0f} points/s;"
        f" ingest CPU {result.cpu_us_per_point:.2f} µs/point, highest RSS {highest_rss:.0f} MB"
    )
    return result


async def run(args: argparse.Namespace, url: str, influxd: int, broker_port: int, workdir: Path) -> dict[str, object]:
    """Rounds of ceiling, one instance and (with --instances > 1) a shared group, side by side.

    The box is shared and its speed moves by a factor of two within a minute, so each round puts a
    ceiling next to the full path it is compared with; the figures are the rounds' medians.
    """
    assets = load_asset_model(ASSETS)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    samples = realistic_samples(args.points, start)
    points = [sample_to_point(s, assets.placement(s.equipment)) for s in samples]
    edges = [f"gw-bench-{n}" for n in range(args.edges)]
    payloads = []
    for n, i in enumerate(range(0, len(samples), args.batch)):
        edge = edges[n % len(edges)]
        payloads.append((edge, encode_batch(edge, n // len(edges), samples[i : i + args.batch])))

    ceilings: list[float] = []
    ones: list[FullPath] = []
    groups: list[FullPath] = []
    for round_ in range(args.rounds):
        await until_quiet(influxd)
        ceiling = await measure_ceiling(url, points, f"bench_ceiling_{round_}")
        print(
            f"round {round_ + 1}: ceiling {len(points):,} pre-built points in {BATCH_POINTS:,}-point batches"
            f" -> {ceiling:,.0f} points/s"
        )
        ceilings.append(ceiling)
        await until_quiet(influxd)
        ones.append(await full_path(workdir, broker_port, url, payloads, len(points), 1, f"bench_ingest_1_{round_}"))
        if args.instances > 1:
            await until_quiet(influxd)
            database = f"bench_ingest_{args.instances}_{round_}"
            groups.append(await full_path(workdir, broker_port, url, payloads, len(points), args.instances, database))

    one = statistics.median(r.points_per_s for r in ones)
    result: dict[str, object] = {
        "bench": "ingest_throughput",
        "value": round(one),
        "unit": "points/s",
        "baseline": round(statistics.median(ceilings)),
        "ratio": round(statistics.median(r.points_per_s / c for r, c in zip(ones, ceilings, strict=True)), 3),
        "rss_mb": round(max(r.rss_mb for r in ones)),
        "cpu_us_per_point": round(statistics.median(r.cpu_us_per_point for r in ones), 2),
        "rounds": args.rounds,
    }
    if groups:
        key = "two_instances" if args.instances == 2 else f"{args.instances}_instances"
        result[key] = round(statistics.median(r.points_per_s for r in groups))
        result[f"{key}_cpu_us_per_point"] = round(statistics.median(r.cpu_us_per_point for r in groups), 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=500, help="samples per uplink message")
    parser.add_argument("--edges", type=int, default=4)
    parser.add_argument("--instances", type=int, default=2, help="also run this many instances in a shared group")
    parser.add_argument("--rounds", type=int, default=3, help="ceiling and full path side by side this many times")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        with influxdb(workdir / "influxdb") as influx, mosquitto(workdir / "mosquitto") as broker:
            result = asyncio.run(run(args, influx.url, influx.proc.pid, broker.port, workdir))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
