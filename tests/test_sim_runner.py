"""The running simulator: what a real OPC UA client and a real MQTT subscriber see is the ground truth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from asyncua import Client, Node

from core.assets import AssetModel, load_asset_model
from core.settings import BrokerSettings, Settings, SimulatorSettings
from core.wire import Sample, format_ts
from edge.opcua_source import OpcUaCollector
from edge.reconnect import Backoff
from simulators.edgeconfig import edge_sources
from simulators.opcua_machine import STATE_CODES, node_id
from simulators.runner import Simulator
from tests.servers import MosquittoServer, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

ASSETS = """\
version: 1
site:
  id: test-site
  workshops:
    - id: ws
      lines:
        - id: line-1
          equipment:
            - {id: cnc-t1, type: cnc, ideal_cycle_time_s: 0.3, meter: meter-t1}
            - {id: robot-t1, type: robot, ideal_cycle_time_s: 0.5, meter: meter-t1}
            - {id: meter-t1, type: meter, carrier: electricity}
"""

WATCHED = ("State", "StateCode", "PartsTotal", "PartsGood", "PartsScrap", "CycleTime")


@pytest.fixture
def factory(tmp_path: Path, mosquitto_server: MosquittoServer) -> tuple[Settings, AssetModel]:
    path = tmp_path / "assets.yaml"
    path.write_text(ASSETS)
    settings = Settings(
        assets=path,
        broker=BrokerSettings(host=mosquitto_server.host, port=mosquitto_server.port),
        simulator=SimulatorSettings(seed=11, meter_interval_s=0.25),
    )
    return settings, load_asset_model(path)


@dataclass(frozen=True)
class Seen:
    value: Any
    source_ts: datetime | None
    server_ts: datetime | None


class Recorder:
    """asyncua subscription handler keeping every notification per variable name."""

    def __init__(self) -> None:
        self.seen: dict[str, list[Seen]] = {}

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        name = str(node.nodeid.Identifier).split(".", 1)[1]
        dv = data.monitored_item.Value
        self.seen.setdefault(name, []).append(Seen(val, dv.SourceTimestamp, dv.ServerTimestamp))

    def last(self, name: str) -> Any:
        return self.seen[name][-1].value


async def eventually(check: Callable[[], bool], seconds: float = 3.0) -> None:
    """Give the subscribers time to receive the last notifications; the asserts come after."""
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)


async def collect(client: aiomqtt.Client, out: list[tuple[str, dict[str, Any]]]) -> None:
    async for message in client.messages:
        assert isinstance(message.payload, bytes)
        out.append((str(message.topic), json.loads(message.payload)))


async def subscribe(client: Client, equipment_id: str, recorder: Recorder) -> Callable[[], Awaitable[None]]:
    sub = await client.create_subscription(50, recorder)
    nodes = [client.get_node(node_id(equipment_id, name)) for name in WATCHED]
    await sub.subscribe_data_change(nodes)
    return sub.delete


async def test_opcua_and_mqtt_observers_see_exactly_the_ground_truth(
    factory: tuple[Settings, AssetModel], mosquitto_server: MosquittoServer, tmp_path: Path
) -> None:
    settings, assets = factory
    payloads: list[tuple[str, dict[str, Any]]] = []
    recorders = {"cnc-t1": Recorder(), "robot-t1": Recorder()}
    async with aiomqtt.Client(mosquitto_server.host, mosquitto_server.port, identifier="test-sim-observer") as mqtt:
        await mqtt.subscribe("meters/#", qos=1)
        collector = asyncio.create_task(collect(mqtt, payloads))
        try:
            async with Simulator(settings, assets, ports={"cnc-t1": 0, "robot-t1": 0}) as sim:
                assert set(sim.endpoints) == {"cnc-t1", "robot-t1"}
                assert all(url.startswith("opc.tcp://127.0.0.1:") for url in sim.endpoints.values())
                async with Client(sim.endpoints["cnc-t1"]) as c1, Client(sim.endpoints["robot-t1"]) as c2:
                    assert await c1.get_namespace_index("urn:smart-factory:simulator:cnc-t1") == 2
                    await subscribe(c1, "cnc-t1", recorders["cnc-t1"])
                    await subscribe(c2, "robot-t1", recorders["robot-t1"])
                    await asyncio.sleep(4.0)
                    frozen = await sim.freeze()

                    def settled() -> bool:
                        return (
                            all(
                                rec.seen.get("PartsTotal")
                                and rec.last("PartsTotal") == sim.ground_truth(eq).counters()["total"]
                                and rec.last("State") == sim.ground_truth(eq).state_at(frozen)
                                for eq, rec in recorders.items()
                            )
                            and bool(payloads)
                            and payloads[-1][1]["ts"] == format_ts(frozen)
                        )

                    await eventually(settled)
                    for equipment_id, recorder in recorders.items():
                        check_machine(sim, equipment_id, recorder, frozen)
                    check_meter(sim, payloads, frozen)
                    sim.write_ground_truth(tmp_path / "truth.json")
        finally:
            collector.cancel()

    dumped = json.loads((tmp_path / "truth.json").read_text())
    assert dumped["frozen_at"] == format_ts(frozen)
    assert set(dumped["equipment"]) == {"cnc-t1", "robot-t1", "meter-t1"}


def check_machine(sim: Simulator, equipment_id: str, recorder: Recorder, frozen: datetime) -> None:
    truth = sim.ground_truth(equipment_id)
    counters = truth.counters()
    assert counters["total"] > 1000
    assert truth.parts(sim.started_at, frozen)["total"] >= 2  # it really produced during the run
    assert recorder.last("PartsTotal") == counters["total"]
    assert recorder.last("PartsGood") == counters["good"]
    assert recorder.last("PartsScrap") == counters["scrap"]
    final_state = truth.state_at(frozen)
    assert final_state is not None
    assert recorder.last("State") == final_state.value
    assert recorder.last("StateCode") == STATE_CODES[final_state]
    assert recorder.last("CycleTime") == truth.process_values["cycle_time_s"][1]
    assert isinstance(recorder.last("PartsTotal"), int)

    # Every notification carries the event time as SourceTimestamp: a state change is seen
    # stamped exactly at the start of a ground-truth interval, a count exactly when it was reached.
    starts = {i.start: i.state.value for i in truth.intervals}
    for seen in recorder.seen["State"]:
        assert seen.source_ts is not None
        assert starts[seen.source_ts] == seen.value
        assert seen.server_ts == seen.source_ts  # no clock jump without a scenario: device time is true time
    for seen in recorder.seen["PartsTotal"]:
        assert truth.counters(seen.source_ts)["total"] == seen.value

    durations = truth.state_durations(sim.started_at, frozen)
    assert sum(durations.values()) == pytest.approx((frozen - sim.started_at).total_seconds(), abs=1e-5)
    assert durations["PRODUCING"] > 0


def check_meter(sim: Simulator, payloads: list[tuple[str, dict[str, Any]]], frozen: datetime) -> None:
    truth = sim.ground_truth("meter-t1")
    assert {topic for topic, _ in payloads} == {"meters/meter-t1"}
    received = [(p["ts"], p["energy"]["active_import_kwh"]) for _, p in payloads]
    assert received == [(format_ts(t), kwh) for t, kwh in truth.registers]
    assert received[0][0] == format_ts(sim.started_at)
    assert received[-1][0] == format_ts(frozen)
    assert all(p["power"]["active_kw"] >= 1.5 for _, p in payloads)
    # At least the base load, at most everything at full production, over the whole run.
    hours = (frozen - sim.started_at).total_seconds() / 3600
    used = received[-1][1] - received[0][1]
    assert 1.5 * hours <= used <= (1.5 + 2 * 8.0) * hours + 1e-6


async def test_freeze_twice_returns_the_same_instant_and_machines_keep_their_values(
    factory: tuple[Settings, AssetModel],
) -> None:
    settings, assets = factory
    async with Simulator(settings, assets, ports={"cnc-t1": 0, "robot-t1": 0}) as sim:
        await asyncio.sleep(1.0)
        frozen = await sim.freeze()
        counters = sim.ground_truth("cnc-t1").counters()
        await asyncio.sleep(1.0)
        assert await sim.freeze() == frozen
        assert sim.ground_truth("cnc-t1").counters() == counters
        async with Client(sim.endpoints["cnc-t1"]) as client:
            shown = await client.get_node(node_id("cnc-t1", "PartsTotal")).read_value()
        assert shown == counters["total"]


async def test_run_serves_until_cancelled(tmp_path: Path, mosquitto_server: MosquittoServer) -> None:
    path = tmp_path / "meter-only.yaml"
    path.write_text(
        "site: {id: s, workshops: [{id: w, lines: [{id: l, equipment: "
        "[{id: meter-solo, type: meter, carrier: electricity}]}]}]}\n"
    )
    settings = Settings(
        assets=path,
        broker=BrokerSettings(host=mosquitto_server.host, port=mosquitto_server.port),
        simulator=SimulatorSettings(meter_interval_s=0.1),
    )
    sim = Simulator(settings, load_asset_model(path))
    task = asyncio.create_task(sim.run())
    await asyncio.sleep(0.8)
    assert sim.endpoints == {}
    assert len(sim.ground_truth("meter-solo").registers) >= 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(RuntimeError, match="not running"):
        await sim.freeze()


async def test_an_accelerated_run_compresses_time_but_never_stamps_the_future(
    factory: tuple[Settings, AssetModel], tmp_path: Path
) -> None:
    settings, assets = factory
    speed = 20.0
    async with Simulator(settings, assets, ports={"cnc-t1": 0, "robot-t1": 0}, speed=speed) as sim:
        await asyncio.sleep(2.5)
        frozen = await sim.freeze()
        now = datetime.now(UTC)
        truth = sim.ground_truth("cnc-t1")
        assert frozen <= now
        assert all(i.start <= frozen for i in truth.intervals)
        assert all(t < frozen for t, _ in truth.part_log)
        # 2.5 wall seconds at 20x are 50 model seconds: ~150 cycles of 0.3 s, each 0.015-0.019 s on the wire
        made = truth.parts(sim.started_at, frozen)["total"]
        assert 60 < made < 170
        cycle_time = truth.process_values["cycle_time_s"][1]
        assert isinstance(cycle_time, float) and 0.3 / speed - 1e-6 <= cycle_time <= 0.3 * 1.25 / speed + 1e-6
        # consumption follows model time: at least the base load for 50 model seconds
        meter = sim.ground_truth("meter-t1")
        used = meter.registers[-1][1] - meter.registers[0][1]
        wall_h = (frozen - sim.started_at).total_seconds() / 3600
        assert used >= 1.5 * wall_h * speed * 0.99
        assert used <= (1.5 + 2 * 8.0) * wall_h * speed + 1e-6
        sim.write_ground_truth(tmp_path / "truth.json")
    dumped = json.loads((tmp_path / "truth.json").read_text())
    assert dumped["speed"] == speed
    assert dumped["totals"]["parts"]["total"] == sum(
        sim.ground_truth(eq).parts(sim.started_at, frozen)["total"] for eq in ("cnc-t1", "robot-t1")
    )


class ListSink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def put(self, sample: Sample) -> None:
        self.samples.append(sample)


async def test_a_client_waiting_for_the_simulator_first_reads_the_machines_counters_never_placeholder_zeros(
    factory: tuple[Settings, AssetModel],
) -> None:
    """Edge collectors retry every 20 ms while the simulator builds its servers (about a second
    each): a server that listened before its machine showed its first values would give them 0.
    """
    settings, assets = factory
    ports = {"cnc-t1": free_port(), "robot-t1": free_port()}
    opcua, _ = edge_sources(assets, {eq: f"opc.tcp://127.0.0.1:{port}/factory/" for eq, port in ports.items()})
    sinks = {source.equipment: ListSink() for source in opcua}
    collectors = [OpcUaCollector(s, sinks[s.equipment], backoff=Backoff(0.02, 0.02)) for s in opcua]
    async with collectors[0], collectors[1]:
        await asyncio.sleep(0.3)  # both are retrying by now
        async with Simulator(settings, assets, ports=ports) as sim:
            await wait_until(lambda: all(c.counters.samples >= 7 for c in collectors), "the first values")
            for eq, sink in sinks.items():
                truth = sim.ground_truth(eq)
                first = {}
                for sample in sink.samples:
                    first.setdefault(sample.signal, sample)
                assert first["parts_total"].value == truth.counters(first["parts_total"].ts)["total"] >= 1000, eq
                for kind in ("good", "scrap", "rework"):
                    assert first[f"parts_{kind}"].value == truth.counters(first[f"parts_{kind}"].ts)[kind], eq
