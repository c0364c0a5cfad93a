"""Benchmark: the edge agent at 10,000 changes/s from one OPC UA server, against a bare asyncua client.

Issue 8's "Speed" benchmark, in one run, once at 1,000 signals and once at 200:

1. Mosquitto on loopback (``tests.servers``) and one **OPC UA server process** (asyncua) with N
   Double variables; on command it writes every variable ``--rate`` times a second (10 Hz), each
   tick one new value for all of them (the tick number) with the write time as SourceTimestamp,
   and says afterwards which ticks it wrote;
2. **baseline**: a bare asyncua client process (same asyncua, same server, same publishing interval
   and monitored-item queue as the edge) subscribed to the N variables, consuming notifications with
   asyncua's iterator API (``async for event in subscription``: its cheapest public way; the handler
   API starts a task per notification) and noting each one's arrival; nothing else. The edge's
   collector takes each publish's notifications as one list instead (``PublishedChanges``);
   decoding the publish responses, the larger part of both, is asyncua's own in both;
3. **value**: ``factory edge`` as a subprocess with one OPC UA source of the N variables and the
   uplink to Mosquitto; this process subscribes to the uplink topic and notes each batch's arrival;
4. both run in one window of ``--seconds`` of ticks, subscribed to the same server at the same time,
   so that both meet the same server and the same busy box (``--apart``: the bare client's window
   first, then the edge's: the server then serves one subscription at a time, but on two shared
   cores the edge's window also holds Mosquitto, and the server falls behind in it more often than
   in the bare client's, which shows as lag the edge did not add); CPU of each consumer process
   (edge or bare client) is read from ``/proc/<pid>/stat`` over exactly that window, RSS from
   ``/proc/<pid>/status``; afterwards the consumer's tail drains, and every change the server wrote
   is looked for: delivered = distinct (signal, value) pairs of the window's ticks that arrived
   (resent batches counted once, as ingest does), duplicates = samples that arrived more than once,
   lag = arrival time - SourceTimestamp. Ticks are jittered (50-150 % of the period) so that no
   subscription's lag depends on the phase between the server's beat and its publishing timer.
   ``cpu_ratio`` compares CPU per delivered change, which is the ratio of cores when both phases ran
   at the same rate and stays fair when a busy box slowed the server in one of them (``cores_ratio``
   is the plain ratio);
5. the last line printed is the result as JSON (figures at 1,000 signals; ``*_200`` at 200):
   ``{"bench": "edge_throughput", "value": <changes/s delivered>, "unit": "changes/s",
   "delivered_ratio": …, "cpu_ratio": …, "median_lag_ms": …, "baseline_lag_ms": …, "rss_mb": …, …}``.

Targets (issue 8): delivered_ratio >= 0.999 with no duplicates; cpu_ratio (edge cores / bare client
cores) <= 1.5; median lag within 30 ms of the bare client's at both sizes; edge RSS under 100 MiB.

Run: ``.venv/bin/python bench/bench_edge.py`` (``--help`` for the knobs; ``--signals 200`` for a
quicker look). The same file is the server (``serve``) and the bare client (``bare``) processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(REPO))

FIRST_NODE = 1000  # numeric NodeIds ns=2;i=1000 .. 1000+N-1
EQUIPMENT = "bench-01"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MONITORED_ITEM_QUEUE = 1000  # what the edge's collector asks for


def signal_name(k: int) -> str:
    return f"s{k:04d}"


# --- the OPC UA server process ---------------------------------------------------------------------


async def serve(signals: int, rate_hz: float) -> None:
    """An asyncua server whose N variables all change every tick while told to (stdin: start/stop/quit)."""
    from asyncua import Server, ua

    logging.basicConfig(level=logging.ERROR)
    server = Server()
    await server.init()
    port = int(os.environ["BENCH_OPCUA_PORT"])
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench/")
    ns = await server.register_namespace("urn:smart-factory:bench")
    folder = await server.nodes.objects.add_object(ua.NodeId("bench", ns), "bench")
    node_ids = []
    for k in range(signals):
        node = await folder.add_variable(
            ua.NodeId(FIRST_NODE + k, ns), signal_name(k), ua.Variant(0.0, ua.VariantType.Double)
        )
        node_ids.append(node.nodeid)
    await server.start()
    print(f"ready ns={ns}", flush=True)

    tick = 0
    first = 0
    late = 0
    running: asyncio.Task[None] | None = None

    async def ticking() -> None:
        nonlocal tick, late
        loop = asyncio.get_running_loop()
        period = 1 / rate_hz
        due = loop.time()
        while True:
            tick += 1
            now = datetime.now(UTC)
            # One DataValue for every node of the tick: the server keeps a reference, never changes it.
            value = ua.DataValue(
                ua.Variant(float(tick), ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now
            )
            for node_id in node_ids:
                await server.write_attribute_value(node_id, value)
            # Jittered ticks: a fixed 100 ms beat against a fixed 100 ms publishing interval would give each
            # subscription a constant phase, so its median lag would be anywhere from 0 to 100 ms by chance.
            due += period * random.uniform(0.5, 1.5)
            if loop.time() > due:
                late += 1
                due = loop.time()
            await asyncio.sleep(max(0.0, due - loop.time()))

    loop = asyncio.get_running_loop()
    try:
        while True:
            command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if command == "start":
                first, late = tick + 1, 0
                running = asyncio.create_task(ticking())
            elif command == "stop" and running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                running = None
                print(json.dumps({"first": first, "last": tick, "late_ticks": late}), flush=True)
            elif command in ("quit", ""):
                break
    finally:
        await server.stop()


# --- the bare client process -----------------------------------------------------------------------


async def bare_client(endpoint: str, signals: int, interval_ms: int) -> None:
    """Subscribe to the N variables and note each notification; stdin ``report FIRST LAST`` prints the figures."""
    from asyncua import Client, ua
    from asyncua.common.subscription import DataChangeEvent

    logging.basicConfig(level=logging.ERROR)
    arrivals: list[tuple[float, int, float, float]] = []  # (arrival, node, value, source time)
    client = Client(endpoint, timeout=10)
    await client.connect()
    subscription = await client.create_subscription(interval_ms, handler=None, queue_maxsize=100_000)
    nodes = [client.get_node(ua.NodeId(FIRST_NODE + k, 2)) for k in range(signals)]
    await subscription.subscribe_data_change(
        nodes, queuesize=MONITORED_ITEM_QUEUE, sampling_interval=ua.Double(interval_ms)
    )
    print("subscribed", flush=True)

    async def consume() -> None:
        clock = time.time
        async for event in subscription:
            if isinstance(event, DataChangeEvent):
                value = event.data.monitored_item.Value
                arrivals.append(
                    (clock(), event.node.nodeid.Identifier, value.Value.Value, value.SourceTimestamp.timestamp())
                )

    consumer = asyncio.create_task(consume())
    loop = asyncio.get_running_loop()
    command = (await loop.run_in_executor(None, sys.stdin.readline)).split()
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
    first, last = int(command[1]), int(command[2])
    seen: dict[tuple[int, float], int] = {}
    lags = []
    for arrived, node, value, source_ts in arrivals:
        if first <= value <= last:
            key = (node, value)
            seen[key] = seen.get(key, 0) + 1
            lags.append(arrived - source_ts)
    print(json.dumps(_figures(seen, lags)), flush=True)
    with contextlib.suppress(Exception):
        await client.disconnect()


def _figures(seen: dict[Any, int], lags: list[float]) -> dict[str, float]:
    return {
        "delivered": len(seen),
        "duplicates": sum(seen.values()) - len(seen),
        "median_lag_ms": round(statistics.median(lags) * 1000, 1) if lags else float("nan"),
        "p95_lag_ms": round(sorted(lags)[int(len(lags) * 0.95)] * 1000, 1) if lags else float("nan"),
    }


# --- measuring -------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def read_line(proc: subprocess.Popen[str], what: str, timeout_s: float = 60) -> str:
    """The next line the process prints (its stdout is a pipe), or a clear failure."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            return line.strip()
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
    raise RuntimeError(f"{what} said nothing within {timeout_s} s")


def tell(proc: subprocess.Popen[str], command: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()


@contextlib.contextmanager
def child(
    args: list[str], what: str, env: dict[str, str] | None = None, log: IO[str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY")}
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=log or subprocess.PIPE,
        stderr=subprocess.STDOUT if log else None,
        text=True,
        env=base | (env or {}),
        cwd=REPO,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            from tests.servers import stop_process

            stop_process(proc, timeout_s=20)


@dataclass
class Phase:
    """One consumer's figures over one window of ticks."""

    delivered: int
    expected: int
    duplicates: int
    cores: float
    median_lag_ms: float
    p95_lag_ms: float
    rss_mb: float
    late_ticks: int
    seconds: float

    @property
    def ratio(self) -> float:
        return self.delivered / self.expected if self.expected else 0.0

    @property
    def cpu_us_per_change(self) -> float:
        """CPU per delivered change: comparable between phases even when a busy box slowed the server."""
        return self.cores * self.seconds / self.delivered * 1e6 if self.delivered else float("nan")


def edge_yaml(workdir: Path, broker_port: int, prefix: str, endpoint: str, signals: int, interval_ms: int) -> Path:
    nodes = "\n".join(f"        {signal_name(k)}: 'ns=2;i={FIRST_NODE + k}'" for k in range(signals))
    config = workdir / f"edge-{signals}.yaml"
    config.write_text(
        f"""assets: {REPO / "config" / "factory.yaml"}
log_level: INFO
broker: {{host: 127.0.0.1, port: {broker_port}}}
uplink: {{topic_prefix: {prefix}}}
edge:
  id: gw-bench
  buffer_path: {workdir / f"edge-buffer-{signals}-{uuid.uuid4().hex[:6]}.sqlite"}
  opcua:
    - endpoint: {endpoint}
      equipment: {EQUIPMENT}
      sampling_interval_ms: {interval_ms}
      refresh_interval_s: 86400
      nodes:
{nodes}
"""
    )
    return config


def wait_for_log(path: Path, needles: list[str], proc: subprocess.Popen[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(n in (text := path.read_text()) for n in needles):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the edge did not start: {text[-3000:]}")
        time.sleep(0.1)


def run_window(
    server: subprocess.Popen[str], pids: list[int], seconds: float
) -> tuple[dict[str, Any], list[float], list[float]]:
    """Tick for ``seconds``; (the server's tick range, each process's cores meanwhile, its highest RSS)."""
    cpu0, t0 = [cpu_seconds(pid) for pid in pids], time.monotonic()
    tell(server, "start")
    highest = [0.0] * len(pids)
    while time.monotonic() - t0 < seconds:
        time.sleep(0.5)
        highest = [max(h, rss_mb(pid)) for h, pid in zip(highest, pids, strict=True)]
    tell(server, "stop")
    seconds = time.monotonic() - t0
    cores = [(cpu_seconds(pid) - c0) / seconds for pid, c0 in zip(pids, cpu0, strict=True)]
    ticks = json.loads(read_line(server, "the OPC UA server")) | {"seconds": seconds}
    return ticks, cores, highest


def start_bare(
    stack: contextlib.ExitStack, endpoint: str, signals: int, args: argparse.Namespace
) -> subprocess.Popen[str]:
    command = [sys.executable, __file__, "bare", endpoint, str(signals), str(args.interval_ms)]
    client = stack.enter_context(child(command, "bare client"))
    if read_line(client, "the bare client") != "subscribed":
        raise RuntimeError("the bare client did not subscribe")
    return client


def bare_figures(
    client: subprocess.Popen[str], ticks: dict[str, Any], signals: int, cores: float, highest: float
) -> Phase:
    tell(client, f"report {ticks['first']} {ticks['last']}")
    figures = json.loads(read_line(client, "the bare client"))
    expected = (ticks["last"] - ticks["first"] + 1) * signals
    return Phase(
        figures["delivered"], expected, figures["duplicates"], cores, figures["median_lag_ms"],
        figures["p95_lag_ms"], highest, ticks["late_ticks"], ticks["seconds"],
    )  # fmt: skip


def bare_phase(server: subprocess.Popen[str], endpoint: str, signals: int, args: argparse.Namespace) -> Phase:
    with contextlib.ExitStack() as stack:
        client = start_bare(stack, endpoint, signals, args)
        time.sleep(args.warmup)
        ticks, cores, highest = run_window(server, [client.pid], args.seconds)
        time.sleep(args.drain)
        return bare_figures(client, ticks, signals, cores[0], highest[0])


async def _observe(broker_port: int, topic: str, arrivals: list[tuple[float, bytes]], ready: asyncio.Event) -> None:
    import aiomqtt

    async with aiomqtt.Client("127.0.0.1", broker_port, identifier=f"bench-observer-{uuid.uuid4().hex[:6]}") as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        clock = time.time
        async for message in client.messages:
            arrivals.append((clock(), message.payload))  # type: ignore[arg-type]


def edge_phase(
    server: subprocess.Popen[str],
    endpoint: str,
    signals: int,
    broker_port: int,
    workdir: Path,
    args: argparse.Namespace,
    *,
    with_bare: bool,
) -> tuple[Phase, Phase | None]:
    """The edge's figures; with ``with_bare`` also those of a bare client subscribed meanwhile."""
    from core.wire import decode_batch

    prefix = f"bench/{uuid.uuid4().hex[:6]}/uplink"
    config = edge_yaml(workdir, broker_port, prefix, endpoint, signals, args.interval_ms)
    arrivals: list[tuple[float, bytes]] = []
    loop = asyncio.new_event_loop()
    ready = asyncio.Event()
    observer = loop.create_task(_observe(broker_port, f"{prefix}/gw-bench", arrivals, ready))
    loop.run_until_complete(asyncio.wait_for(ready.wait(), 10))

    def pump(seconds: float) -> None:  # let the observer run while this thread waits
        loop.run_until_complete(asyncio.sleep(seconds))

    log_path = workdir / f"edge-{signals}.log"
    command = [sys.executable, "-m", "factory.cli", "edge", "--config", str(config)]
    if args.profile_edge:  # cProfile writes its file when the edge stops (SIGTERM is a clean stop)
        command[1:1] = ["-m", "cProfile", "-o", str(args.profile_edge.with_suffix(f".{signals}.prof"))]
    bare: Phase | None = None
    with contextlib.ExitStack() as stack:
        client = start_bare(stack, endpoint, signals, args) if with_bare else None
        log = stack.enter_context(log_path.open("w"))
        edge = stack.enter_context(child(command, "edge", log=log))
        deadline = time.monotonic() + 60
        while (
            not all(n in (text := log_path.read_text()) for n in ("OPC UA server", "uplink broker"))
            or " connected" not in text
        ):
            if edge.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the edge did not start: {text[-3000:]}")
            pump(0.1)
        pump(args.warmup)
        # The window runs in a thread of its own so the observer keeps reading meanwhile.
        pids = [edge.pid] if client is None else [edge.pid, client.pid]
        window = loop.run_in_executor(None, run_window, server, pids, args.seconds)
        ticks, cores, highest = loop.run_until_complete(window)
        first, last = ticks["first"], ticks["last"]
        expected = (last - first + 1) * signals
        # Drain: until every change arrived, or nothing new came for args.drain seconds.
        quiet_since, seen_count = time.monotonic(), len(arrivals)
        while time.monotonic() - quiet_since < args.drain:
            pump(0.2)
            if len(arrivals) != seen_count:
                quiet_since, seen_count = time.monotonic(), len(arrivals)
        if client is not None:
            bare = bare_figures(client, ticks, signals, cores[1], highest[1])
    observer.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        loop.run_until_complete(observer)
    loop.close()

    by_seq: dict[int, tuple[float, Any]] = {}
    for arrived, payload in arrivals:
        batch = decode_batch(payload)
        by_seq.setdefault(batch.seq, (arrived, batch))  # a resent batch counts once, as ingest does
    seen: dict[tuple[str, float], int] = {}
    lags = []
    for arrived, batch in by_seq.values():
        for sample in batch.samples:
            if "refresh" in sample.flags or not isinstance(sample.value, float) or not first <= sample.value <= last:
                continue
            key = (sample.signal, sample.value)
            seen[key] = seen.get(key, 0) + 1
            lags.append(arrived - sample.ts.timestamp())
    figures = _figures(seen, lags)
    if len(seen) < expected:
        per_tick: dict[float, int] = {}
        for _, value in seen:
            per_tick[value] = per_tick.get(value, 0) + 1
        short = {
            int(t): signals - per_tick.get(float(t), 0)
            for t in range(first, last + 1)
            if per_tick.get(float(t), 0) < signals
        }
        print(
            f"missing changes per tick (first {first}, last {last}): {dict(list(short.items())[:40])}", file=sys.stderr
        )
        print(f"edge log tail:\n{log_path.read_text()[-3000:]}", file=sys.stderr)
    edge_figures = Phase(
        int(figures["delivered"]), expected, int(figures["duplicates"]), cores[0], figures["median_lag_ms"],
        figures["p95_lag_ms"], highest[0], ticks["late_ticks"], ticks["seconds"],
    )  # fmt: skip
    return edge_figures, bare


def measure(signals: int, broker_port: int, workdir: Path, args: argparse.Namespace) -> tuple[Phase, Phase]:
    from tests.servers import free_port

    port = free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/bench/"
    serve_cmd = [sys.executable, __file__, "serve", str(signals), str(args.rate)]
    with child(serve_cmd, "OPC UA server", env={"BENCH_OPCUA_PORT": str(port)}) as server:
        read_line(server, "the OPC UA server", timeout_s=120)
        if not args.apart:
            edge, witness = edge_phase(server, endpoint, signals, broker_port, workdir, args, with_bare=True)
            assert witness is not None
            bare = witness
        else:
            bare = bare_phase(server, endpoint, signals, args)
            edge, _ = edge_phase(server, endpoint, signals, broker_port, workdir, args, with_bare=False)
        tell(server, "quit")
    for name, phase in (("bare asyncua client", bare), ("edge -> broker     ", edge)):
        print(
            f"{signals:5d} signals, {name}: {phase.delivered:,}/{phase.expected:,} changes "
            f"({phase.ratio:.4f}) at {phase.delivered / phase.seconds:,.0f}/s, {phase.duplicates} duplicates, "
            f"{phase.cores * 100:.1f} % of a core ({phase.cpu_us_per_change:.1f} µs per change), "
            f"lag median {phase.median_lag_ms:.0f} ms p95 {phase.p95_lag_ms:.0f} ms, RSS {phase.rss_mb:.0f} MiB"
            f"{f', server late on {phase.late_ticks} ticks' if phase.late_ticks else ''}",
            flush=True,
        )
    return bare, edge


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        asyncio.run(serve(int(argv[1]), float(argv[2])))
        return 0
    if argv and argv[0] == "bare":
        asyncio.run(bare_client(argv[1], int(argv[2]), int(argv[3])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, nargs="+", default=[1000, 200], help="sizes to measure (first: value)")
    parser.add_argument("--rate", type=float, default=10.0, help="changes per signal per second")
    parser.add_argument("--interval-ms", type=int, default=100, help="publishing (and sampling) interval")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds between subscribing and the window")
    parser.add_argument("--drain", type=float, default=3.0, help="seconds without news that end a phase")
    parser.add_argument(
        "--apart",
        action="store_true",
        help="measure the bare client in a window of its own before the edge's, instead of beside it "
        "(the default: both meet the same server at the same moments)",
    )
    parser.add_argument("--profile-edge", type=Path, help="run the edge under cProfile, writing PATH.<signals>.prof")
    args = parser.parse_args(argv)

    from tests.servers import mosquitto

    result: dict[str, object] = {"bench": "edge_throughput"}
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp, mosquitto(Path(tmp) / "mosquitto") as broker:
        for n, signals in enumerate(args.signals):
            bare, edge = measure(signals, broker.port, Path(tmp), args)
            suffix = "" if n == 0 else f"_{signals}"
            figures = {
                "value": round(edge.delivered / edge.seconds),
                "unit": "changes/s",
                "delivered_ratio": round(edge.ratio, 4),
                "duplicates": edge.duplicates,
                # CPU per delivered change, edge over bare client: the cores ratio when both phases ran
                # at the same rate, and still fair when a busy box made the server slower in one of them.
                "cpu_ratio": round(edge.cpu_us_per_change / bare.cpu_us_per_change, 2),
                "cores_ratio": round(edge.cores / bare.cores, 2) if bare.cores else None,
                "median_lag_ms": edge.median_lag_ms,
                "baseline_lag_ms": bare.median_lag_ms,
                "rss_mb": round(edge.rss_mb, 1),
                "edge_cores": round(edge.cores, 3),
                "baseline_cores": round(bare.cores, 3),
                "baseline_delivered_ratio": round(bare.ratio, 4),
            }
            if n == 0:
                result |= figures
                result["signals"] = signals
            else:
                result |= {f"{k}{suffix}": v for k, v in figures.items() if k != "unit"}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
