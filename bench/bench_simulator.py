"""Benchmark: CPU of one simulator process serving 50 machines with ~20 signals each changing at 1 Hz.

    .venv/bin/python bench/bench_simulator.py [--machines 50] [--seconds 30]

Three processes on loopback, started here:

* the **simulator** (``simulators.runner.Simulator``): 50 CNC machines with a 1 s ideal cycle and
  no stops, so every cycle changes the counters, cycle time and program progress, plus the live
  telemetry (spindle, axes, temperatures, power, …) written every second; 10 machines per asyncua
  server (an asyncua server costs about a second and 40 MB to build, so 50 of them would take a
  minute and 2 GB to start — the scenario option ``opcua.machines_per_server`` is the remedy);
* a **subscriber** (a separate process, not measured) subscribed to 20 nodes of every machine, as
  an edge agent would be, so the server also encodes and sends the notifications;
* the **baseline**, measured in the same run after the simulator: a bare asyncua loop with the same
  servers, the same number of variables and the same number of writes per second (taken from the
  simulator's own count), the same subscriber, and nothing else.

Each measured process reports its own CPU (``resource.getrusage``) over ``--seconds`` of steady
state after start-up. The last line is JSON: ``value`` is the simulator's cores, ``baseline`` the
bare loop's cores, ``ratio`` their quotient (the cost of the behaviour model, the companion-spec
address space and the ground truth on top of asyncua's own). The budget is 0.5 core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BUDGET_CORES = 0.5
SUBSCRIBED_PER_MACHINE = 20
# The VendorData nodes that change every cycle or every telemetry tick: what an edge would watch.
WATCHED = (
    "StateCode", "PartsTotal", "PartsGood", "CycleTime", "SpindleSpeed", "PowerActive",
    "AxisXPosition", "AxisYPosition", "AxisZPosition", "AxisXLoad", "AxisYLoad", "AxisZLoad",
    "FeedRate", "MotorCurrent", "CoolantTemperature", "HydraulicPressure", "Vibration",
    "PartsScrap", "PartsRework", "ProgramName",
)  # fmt: skip


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def stdin_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def emit(kind: str, payload: dict[str, Any]) -> None:
    print(f"{kind} {json.dumps(payload)}", flush=True)


def bench_assets(machines: int, per_line: int) -> str:
    lines = []
    for li in range(math.ceil(machines / per_line)):
        equipment = [
            f"{{id: cnc-{n:03d}, type: cnc, numerically_controlled: true, ideal_cycle_time_s: 1.0}}"
            for n in range(li * per_line + 1, min(machines, (li + 1) * per_line) + 1)
        ]
        lines.append(f"{{id: line-{li + 1}, equipment: [{', '.join(equipment)}]}}")
    return f"version: 1\nsite: {{id: bench, workshops: [{{id: ws, lines: [{', '.join(lines)}]}}]}}\n"


# -- the simulator ---------------------------------------------------------------------------------


async def run_simulator(machines: int, per_server: int, seconds: float) -> None:
    from core.assets import load_asset_model
    from core.settings import Settings, SimulatorSettings
    from simulators.runner import Simulator, server_groups
    from simulators.scenario import MachineBehaviourSpec, OpcUaSpec, Scenario, resolve_scenario

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "assets.yaml"
        path.write_text(bench_assets(machines, per_server))
        assets = load_asset_model(path)
        spec = Scenario(
            assets=path,
            seed=1,
            defaults=MachineBehaviourSpec.model_validate(
                {
                    "cycle_time_factor": {"low": 1.0, "mode": 1.0, "high": 1.0},
                    "breakdowns": {"enabled": False},
                    "minor_stops": {"enabled": False},
                    "starvation": {"enabled": False},
                    "changeover": {"batch_parts": [1_000_000, 1_000_000]},
                    "quality": {"scrap_probability": 0.02, "rework_probability": 0.01},
                    "faults": {"enabled": False},
                }
            ),
            opcua=OpcUaSpec(machines_per_server=per_server, telemetry_interval=1.0),
        )
        scenario = resolve_scenario(spec, assets)
        settings = Settings(assets=path, simulator=SimulatorSettings(host="127.0.0.1"))
        groups = server_groups(scenario.machine_ids(), per_server)
        sim = Simulator(settings, assets, scenario=scenario, ports={group[0]: 0 for group in groups})
        async with sim:
            nodes = {eq: [f"ns=2;s={eq}.{name}" for name in WATCHED] for eq in scenario.machine_ids()}
            emit("READY", {"endpoints": sim.endpoints, "nodes": nodes, "servers": len(sim.servers)})
            await stdin_line()  # the subscriber is in place
            await asyncio.sleep(3.0)  # let the first notifications settle
            writes0, cpu0, t0 = sum(s.writes for s in sim.servers), cpu_seconds(), time.monotonic()
            events0 = sim.counters.events
            await asyncio.sleep(seconds)
            cpu1, t1 = cpu_seconds(), time.monotonic()
            writes = sum(s.writes for s in sim.servers) - writes0
            emit(
                "RESULT",
                {
                    "cores": (cpu1 - cpu0) / (t1 - t0),
                    "writes_per_s": writes / (t1 - t0),
                    "events_per_s": (sim.counters.events - events0) / (t1 - t0),
                    "late_telemetry_ticks": sim.counters.late_telemetry_ticks,
                    "servers": len(sim.servers),
                },
            )
            await stdin_line()  # the subscriber has let go


# -- the baseline: bare asyncua, same servers, same writes ------------------------------------------


async def run_bare(machines: int, per_server: int, seconds: float, writes_per_s: float) -> None:
    from asyncua import Server, ua

    from simulators.opcua_machine import quiet_asyncua_server_logs

    quiet_asyncua_server_logs()
    per_machine = max(1, round(writes_per_s / machines))
    ids = [f"cnc-{n:03d}" for n in range(1, machines + 1)]
    servers: list[Server] = []
    variables: list[tuple[Server, ua.NodeId]] = []
    endpoints: dict[str, str] = {}
    for g in range(0, machines, per_server):
        server = Server()
        await server.init()
        server.set_endpoint("opc.tcp://127.0.0.1:0/factory/")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(f"urn:bench:{ids[g]}")
        for eq in ids[g : g + per_server]:
            obj = await server.nodes.objects.add_object(ua.NodeId(eq, idx), eq)
            for k in range(per_machine):
                nid = ua.NodeId(f"{eq}.V{k}", idx)
                await obj.add_variable(nid, f"V{k}", 0.0, varianttype=ua.VariantType.Double)
                variables.append((server, nid))
        await server.start()
        assert server.bserver is not None
        for eq in ids[g : g + per_server]:
            endpoints[eq] = f"opc.tcp://127.0.0.1:{server.bserver.port}/factory/"
        servers.append(server)
    watched = {eq: [f"ns=2;s={eq}.V{k}" for k in range(min(per_machine, SUBSCRIBED_PER_MACHINE))] for eq in ids}
    emit("READY", {"endpoints": endpoints, "nodes": watched, "servers": len(servers)})
    await stdin_line()

    async def write_loop() -> int:
        loop = asyncio.get_running_loop()
        tick = loop.time()
        n = 0
        while True:
            now = datetime.now(UTC)
            for server, nid in variables:
                dv = ua.DataValue(ua.Variant(float(n), ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now)
                await server.iserver.aspace.write_attribute_value(nid, ua.AttributeIds.Value, dv)
            n += 1
            tick += 1.0
            await asyncio.sleep(max(0.0, tick - loop.time()))

    writer = asyncio.create_task(write_loop())
    await asyncio.sleep(3.0)
    cpu0, t0 = cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, t1 = cpu_seconds(), time.monotonic()
    writer.cancel()
    emit(
        "RESULT",
        {"cores": (cpu1 - cpu0) / (t1 - t0), "writes_per_s": len(variables), "servers": len(servers)},
    )
    await stdin_line()  # the subscriber has let go
    for server in servers:
        await server.stop()


# -- the subscriber ----------------------------------------------------------------------------------


async def run_subscriber(ready: dict[str, Any]) -> None:
    from asyncua import Client

    received = 0

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            nonlocal received
            received += 1

    clients: list[Client] = []
    by_endpoint: dict[str, list[str]] = {}
    for eq, endpoint in ready["endpoints"].items():
        by_endpoint.setdefault(endpoint, []).extend(ready["nodes"][eq])
    for endpoint, nodes in by_endpoint.items():
        client = Client(endpoint, timeout=30)
        await client.connect()
        subscription = await client.create_subscription(500, Handler())
        await subscription.subscribe_data_change([client.get_node(n) for n in nodes], queuesize=100)
        clients.append(client)
    emit("SUBSCRIBED", {"nodes": sum(len(n) for n in by_endpoint.values())})
    await stdin_line()
    emit("RESULT", {"notifications": received})
    for client in clients:
        await client.disconnect()
    await asyncio.sleep(0.2)


# -- orchestration -----------------------------------------------------------------------------------


def child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def read_until(proc: subprocess.Popen[str], kind: str, timeout: float = 300) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child exited ({proc.poll()}) before {kind}")
        if line.startswith(kind + " "):
            result: dict[str, Any] = json.loads(line[len(kind) + 1 :])
            return result
    raise TimeoutError(kind)


def send(proc: subprocess.Popen[str], line: str = "go") -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def measure(role_args: list[str], seconds: float) -> tuple[dict[str, Any], dict[str, Any], float]:
    server = child(*role_args)
    try:
        ready = read_until(server, "READY")
        subscriber = child("--role", "subscriber", "--ready", json.dumps(ready))
        try:
            subscribed = read_until(subscriber, "SUBSCRIBED")
            started = time.monotonic()
            send(server)
            result = read_until(server, "RESULT", timeout=seconds + 120)
            elapsed = time.monotonic() - started
            send(subscriber)
            notified = read_until(subscriber, "RESULT")
            result["subscribed_nodes"] = subscribed["nodes"]
        finally:
            subscriber.wait(timeout=60)
        send(server)
    finally:
        server.wait(timeout=60)
    return result, notified, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=50)
    parser.add_argument("--machines-per-server", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--role", choices=["orchestrate", "sim", "bare", "subscriber"], default="orchestrate")
    parser.add_argument("--writes-per-s", type=float, default=1000.0)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.role == "sim":
        asyncio.run(run_simulator(args.machines, args.machines_per_server, args.seconds))
        return
    if args.role == "bare":
        asyncio.run(run_bare(args.machines, args.machines_per_server, args.seconds, args.writes_per_s))
        return
    if args.role == "subscriber":
        asyncio.run(run_subscriber(json.loads(args.ready)))
        return

    common = ["--machines", str(args.machines), "--machines-per-server", str(args.machines_per_server)]
    common += ["--seconds", str(args.seconds)]
    sim, sim_notified, sim_wall = measure(["--role", "sim", *common], args.seconds)
    per_machine = sim["writes_per_s"] / args.machines
    print(
        f"simulator: {args.machines} machines on {sim['servers']} servers, {sim['writes_per_s']:.0f} node writes/s "
        f"({per_machine:.1f} per machine per s), {sim['events_per_s']:.0f} machine events/s, "
        f"{sim['cores']:.3f} cores; subscriber: {sim['subscribed_nodes']} nodes, "
        f"{sim_notified['notifications'] / sim_wall:.0f} notifications/s; late telemetry ticks: "
        f"{sim['late_telemetry_ticks']}",
        flush=True,
    )
    bare, bare_notified, bare_wall = measure(
        ["--role", "bare", *common, "--writes-per-s", str(sim["writes_per_s"])], args.seconds
    )
    print(
        f"bare asyncua: {bare['servers']} servers, {bare['writes_per_s']} node writes/s, {bare['cores']:.3f} cores; "
        f"subscriber: {bare['subscribed_nodes']} nodes, {bare_notified['notifications'] / bare_wall:.0f} "
        "notifications/s",
        flush=True,
    )
    verdict = "within" if sim["cores"] < BUDGET_CORES else "OVER"
    print(f"budget: {BUDGET_CORES} core -> simulator {verdict} budget", flush=True)
    print(
        json.dumps(
            {
                "bench": "simulator_cpu",
                "value": round(sim["cores"], 4),
                "unit": "cores",
                "baseline": round(bare["cores"], 4),
                "ratio": round(sim["cores"] / bare["cores"], 3) if bare["cores"] > 0 else None,
            }
        )
    )


if __name__ == "__main__":
    main()
