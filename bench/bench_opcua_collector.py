"""Benchmark: CPU per OPC UA notification of the edge's collector, against a bare asyncua client.

One asyncua server process changes ``--signals`` Double variables ``--hz`` times a second (a
third of them part counters, so every conversion path is exercised). Client processes take turns
against it, ``--rounds`` times each, alternating (one server process cannot feed two clients at
this rate on a small machine, and the notifications per publish set much of the cost per
notification, so both must see the same stream):

1. **baseline**: a bare asyncua client, one subscription (publishing interval 100 ms, the same
   queue per item), consuming every notification and doing nothing with it;
2. **value**: ``edge.opcua_source.OpcUaCollector`` with the same publishing interval, its samples
   put into a sink that only counts them.

CPU is each client process's own (``time.process_time`` over its window), divided by the
notifications it received in the window; the least of the rounds counts (the one least disturbed
by whatever else runs on the machine).
The collector's own cost is the difference; the edge benchmark (``bench_edge.py``) needs the whole
edge pipeline (collector, buffer, forwarder) to cost less than half of the bare client, so the
collector's share should stay well below that. The last line printed is the result as JSON:
``{"bench": "opcua_collector", "value": <collector µs/notification>, "unit": "us", "baseline": …,
"own_us": …, "own_ratio": …, "notifications": …}``.

Run: ``.venv/bin/python bench/bench_opcua_collector.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(REPO))

from asyncua import Client, Server, ua  # noqa: E402
from asyncua.common.subscription import DataChangeEvent  # noqa: E402

from core.settings import OpcUaSource  # noqa: E402
from core.wire import Sample  # noqa: E402
from edge.opcua_source import OpcUaCollector  # noqa: E402
from tests.servers import free_port  # noqa: E402

PUBLISHING_INTERVAL_MS = 100
QUEUE_SIZE = 1000


def signal_name(n: int) -> str:
    return f"parts_total_{n:04d}" if n % 3 == 0 else f"temperature_{n:04d}"


async def serve(port: int, signals: int, hz: float) -> None:
    """The server process: every variable changes ``hz`` times a second, forever."""
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench/")
    ns = await server.register_namespace("urn:smart-factory:bench")
    folder = await server.nodes.objects.add_object(ua.NodeId("bench", ns), "bench")
    nodes = [
        await folder.add_variable(ua.NodeId(f"v{n:04d}", ns), f"v{n:04d}", ua.Variant(0.0, ua.VariantType.Double))
        for n in range(signals)
    ]
    async with server:
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        tick, due, value = 1 / hz, loop.time(), 0.0
        while True:
            value += 1.0
            now = datetime.now(UTC)
            for node in nodes:
                await server.write_attribute_value(
                    node.nodeid, ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=now)
                )
            due += tick
            await asyncio.sleep(max(0.0, due - loop.time()))


class CountingSink:
    def __init__(self) -> None:
        self.samples = 0

    def put(self, sample: Sample) -> None:
        self.samples += 1


async def measure_bare_client(endpoint: str, signals: int, warmup_s: float, window_s: float) -> tuple[float, int]:
    async with Client(endpoint) as client:
        subscription = await client.create_subscription(PUBLISHING_INTERVAL_MS, handler=None, queue_maxsize=100_000)
        nodes = [client.get_node(f"ns=2;s=v{n:04d}") for n in range(signals)]
        for start in range(0, signals, 500):
            await subscription.subscribe_data_change(
                nodes[start : start + 500], queuesize=QUEUE_SIZE, sampling_interval=float(PUBLISHING_INTERVAL_MS)
            )
        received = 0

        async def consume() -> None:
            nonlocal received
            async for event in subscription:
                if isinstance(event, DataChangeEvent):
                    received += 1

        task = asyncio.create_task(consume())
        await asyncio.sleep(warmup_s)
        cpu0, count0 = time.process_time(), received
        await asyncio.sleep(window_s)
        cpu, count = time.process_time() - cpu0, received - count0
        task.cancel()
        return cpu, count


async def measure_collector(endpoint: str, signals: int, warmup_s: float, window_s: float) -> tuple[float, int]:
    source = OpcUaSource(
        endpoint=endpoint,
        equipment="bench-01",
        nodes={signal_name(n): f"ns=2;s=v{n:04d}" for n in range(signals)},
        sampling_interval_ms=PUBLISHING_INTERVAL_MS,
        queue_size=QUEUE_SIZE,
        refresh_interval_s=3600,
    )
    sink = CountingSink()
    async with OpcUaCollector(source, sink) as collector:
        await asyncio.sleep(warmup_s)
        cpu0, count0 = time.process_time(), collector.counters.notifications
        await asyncio.sleep(window_s)
        cpu, count = time.process_time() - cpu0, collector.counters.notifications - count0
        assert collector.counters.rejected == 0, collector.counters
    return cpu, count


def measure(kind: str, endpoint: str, signals: int, warmup_s: float, window_s: float) -> None:
    """A client process: prints '<cpu seconds> <notifications>' of its window."""
    run = measure_bare_client if kind == "bare" else measure_collector
    cpu, count = asyncio.run(run(endpoint, signals, warmup_s, window_s))
    print(cpu, count, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured per turn")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2, help="turns of each client")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=["bare", "collector"], help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.signals, args.hz))
        return
    if args.measure:
        measure(args.measure, args.endpoint, args.signals, args.warmup, args.window)
        return

    port = free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/bench/"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    common = ["--signals", str(args.signals), "--window", str(args.window), "--warmup", str(args.warmup)]
    server_command = [sys.executable, __file__, "--serve", str(port), "--hz", str(args.hz), *common]
    server = subprocess.Popen(server_command, stdout=subprocess.PIPE, env=env)
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != b"ready":
            raise SystemExit("the server process did not start")
        results: dict[str, list[tuple[float, int]]] = {"bare": [], "collector": []}
        for _ in range(args.rounds):
            for kind in ("bare", "collector"):
                client = subprocess.run(
                    [sys.executable, __file__, "--measure", kind, "--endpoint", endpoint, *common],
                    capture_output=True,
                    env=env,
                    timeout=args.warmup + args.window + 120,
                    check=True,
                )
                cpu, count = client.stdout.decode().split()[-2:]
                results[kind].append((float(cpu), int(count)))
                print(f"{kind}: {float(cpu):.2f} s CPU for {int(count)} notifications", flush=True)
    finally:
        server.terminate()
        server.wait(10)

    def least(runs: list[tuple[float, int]]) -> tuple[float, int]:
        return min(runs, key=lambda run: run[0] / max(run[1], 1))

    (bare_cpu, bare_count), (own_cpu, own_count) = least(results["bare"]), least(results["collector"])
    baseline_us = bare_cpu / max(bare_count, 1) * 1e6
    collector_us = own_cpu / max(own_count, 1) * 1e6
    own_us = collector_us - baseline_us
    print(f"bare asyncua client: {bare_count / args.window:,.0f} notifications/s, {baseline_us:.1f} µs CPU each")
    print(f"edge collector:      {own_count / args.window:,.0f} notifications/s, {collector_us:.1f} µs CPU each")
    print(f"the collector's own cost: {own_us:.1f} µs per notification ({own_us / baseline_us:.0%} of the bare client)")
    result = {
        "bench": "opcua_collector",
        "value": round(collector_us, 2),
        "unit": "us",
        "baseline": round(baseline_us, 2),
        "own_us": round(own_us, 2),
        "own_ratio": round(own_us / baseline_us, 3),
        "notifications": own_count,
        "baseline_notifications": bare_count,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
