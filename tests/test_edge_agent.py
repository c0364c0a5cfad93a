"""The edge agent end to end: a real asyncua server and real Mosquitto brokers over loopback.

Each test reads the uplink with its own aiomqtt client and decodes the batches with core.wire, so
what is asserted is exactly what ingest would receive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
from asyncua import Node, Server, ua

from core.settings import BrokerSettings, EdgeSettings, MeterSource, OpcUaSource, UplinkSettings
from core.signals import OFFLINE, MachineState, Quality
from core.wire import DecodedBatch, Sample, TimestampSource, format_ts
from edge.agent import EdgeAgent
from edge.errors import SampleBufferError
from edge.opcua_source import OFFLINE_FLAG
from tests.servers import MosquittoServer, free_port, mosquitto
from tests.uplink_support import decoded_batches
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

EQUIPMENT = "cnc-01"
T0 = datetime(2026, 11, 25, 8, 0, 0, 125000, tzinfo=UTC)
STATE_MAP = {
    "1": MachineState.PRODUCING,
    "2": MachineState.IDLE,
    "3": MachineState.SETUP,
    "4": MachineState.DOWN,
    "5": MachineState.PLANNED_STOP,
}


# --- helpers ---------------------------------------------------------------------------------------


@dataclass
class Machine:
    """A minimal simulated machine: the shared contract's StateCode and PartsTotal variables."""

    server: Server
    state_code: Node
    parts_total: Node

    async def write_state(self, code: int, ts: datetime) -> None:
        await self.state_code.write_value(ua.DataValue(ua.Variant(code, ua.VariantType.Int32), SourceTimestamp=ts))

    async def write_parts(self, count: int, ts: datetime) -> None:
        await self.parts_total.write_value(ua.DataValue(ua.Variant(count, ua.VariantType.UInt32), SourceTimestamp=ts))


@contextlib.asynccontextmanager
async def opcua_machine(port: int, state: int, parts: int, ts: datetime) -> AsyncIterator[Machine]:
    server = Server()
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{port}/factory/"
    server.set_endpoint(endpoint)
    ns = await server.register_namespace(f"urn:smart-factory:simulator:{EQUIPMENT}")
    machine_node = await server.nodes.objects.add_object(ua.NodeId(EQUIPMENT, ns), EQUIPMENT)
    state_code = await machine_node.add_variable(
        ua.NodeId(f"{EQUIPMENT}.StateCode", ns), "StateCode", ua.Variant(0, ua.VariantType.Int32)
    )
    parts_total = await machine_node.add_variable(
        ua.NodeId(f"{EQUIPMENT}.PartsTotal", ns), "PartsTotal", ua.Variant(0, ua.VariantType.UInt32)
    )
    machine = Machine(server, state_code, parts_total)
    await machine.write_state(state, ts)
    await machine.write_parts(parts, ts)
    await server.start()
    try:
        yield machine
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def observe_uplink(broker: MosquittoServer, topic: str) -> AsyncIterator[list[DecodedBatch]]:
    """Every uplink batch published to ``topic`` from now on, decoded, in arrival order."""
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"observer-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(topic, qos=1)
        async with decoded_batches(client) as batches:
            yield batches


def samples_of(batches: list[DecodedBatch]) -> list[Sample]:
    assert all(not b.rejected for b in batches), [b.rejected for b in batches]
    return [s for b in sorted(batches, key=lambda b: b.seq) for s in b.samples]


def opcua_source(endpoint: str) -> OpcUaSource:
    return OpcUaSource(
        endpoint=endpoint,
        equipment=EQUIPMENT,
        nodes={"state": f"ns=2;s={EQUIPMENT}.StateCode", "parts_total": f"ns=2;s={EQUIPMENT}.PartsTotal"},
        sampling_interval_ms=50,
        state_map=STATE_MAP,
    )


def broker_settings(broker: MosquittoServer) -> BrokerSettings:
    return BrokerSettings(host=broker.host, port=broker.port)


def uplink_settings() -> UplinkSettings:
    # A topic prefix of its own, so tests sharing the session broker never see each other's batches.
    return UplinkSettings(topic_prefix=f"test/{uuid.uuid4().hex[:8]}/uplink")


def meter_payload(ts: datetime, kwh: float, kw: float) -> bytes:
    return json.dumps({"ts": format_ts(ts), "energy": {"active_import_kwh": kwh}, "power": {"active_kw": kw}}).encode()


# --- tests -----------------------------------------------------------------------------------------


async def test_uplink_carries_exactly_the_written_values_and_source_times_in_gap_free_batches(
    tmp_path: Path, mosquitto_server: MosquittoServer
) -> None:
    uplink = uplink_settings()
    port = free_port()
    edge = EdgeSettings(
        id="gw-test",
        buffer_path=tmp_path / "buffer.sqlite",
        batch_max_samples=4,  # several batches, so the sequence numbering is exercised
        flush_interval_s=0.1,
        opcua=[opcua_source(f"opc.tcp://127.0.0.1:{port}/factory/")],
    )
    expected_state = [(T0, "IDLE", "2")]
    expected_parts = [(T0, 0)]
    async with (
        opcua_machine(port, state=2, parts=0, ts=T0) as machine,
        observe_uplink(mosquitto_server, uplink.topic(edge.id)) as batches,
        EdgeAgent(edge, broker_settings(mosquitto_server), uplink) as agent,
    ):
        await wait_until(lambda: agent.stats()["opcua_samples"] == 2, "the initial values")
        # Written back to back, i.e. several changes per 50 ms publishing interval: the monitored
        # items' queues must keep every one of them.
        ts = T0
        for cycle, code in enumerate([1, 4, 1, 3, 1, 5, 2], start=1):
            ts += timedelta(seconds=7, microseconds=1001)
            await machine.write_state(code, ts)
            expected_state.append((ts, STATE_MAP[str(code)].value, str(code)))
            ts += timedelta(milliseconds=250)
            await machine.write_parts(cycle, ts)
            expected_parts.append((ts, cycle))
        total = len(expected_state) + len(expected_parts)
        await wait_until(lambda: sum(len(b.samples) for b in batches) >= total, f"{total} samples")
        await asyncio.sleep(0.3)  # anything extra (a duplicate) would arrive now
        stats = agent.stats()

    # The agent's word that it stopped listening may follow when it stops (tests/test_edge_refresh.py).
    received = [s for s in samples_of(batches) if OFFLINE_FLAG not in s.flags]
    assert len(received) == total
    assert [b.seq for b in batches] == list(range(len(batches)))
    assert {b.edge for b in batches} == {"gw-test"}
    assert [(s.ts, s.value, s.raw) for s in received if s.signal == "state"] == expected_state
    assert [(s.ts, s.value) for s in received if s.signal == "parts_total"] == expected_parts
    assert {(s.equipment, s.quality, s.ts_source, s.flags) for s in received} == {
        (EQUIPMENT, Quality.GOOD, TimestampSource.DEVICE, ())
    }
    assert stats["buffered"] == 0
    assert stats["samples_sent"] == total
    final = agent.stats()  # after the stop, whose OFFLINE marker may have made one more batch
    assert final["batches_sent"] == len(batches) == final["next_seq"]
    assert final["publish_failures"] == 0


async def test_samples_buffered_while_the_uplink_is_down_arrive_once_in_order(
    tmp_path: Path, mosquitto_server: MosquittoServer
) -> None:
    """Uplink unreachable at start; the broker appears later; then the agent restarts on the same file."""
    uplink = uplink_settings()
    meter_topic = f"test/{uuid.uuid4().hex[:8]}/meters/meter-a"
    uplink_broker = BrokerSettings(host="127.0.0.1", port=free_port())  # nothing listens there
    edge = EdgeSettings(
        id="gw-outage",
        buffer_path=tmp_path / "buffer.sqlite",
        batch_max_samples=7,
        flush_interval_s=0.1,
        meters=[
            MeterSource(
                topic=meter_topic,
                equipment="meter-a",
                fields={"energy_kwh": "energy.active_import_kwh"},
                timestamp_field="ts",
            )
        ],
        meter_broker=broker_settings(mosquitto_server),
    )
    expected: list[tuple[datetime, float]] = []

    async def publish_meter_readings(count: int) -> None:
        async with aiomqtt.Client(mosquitto_server.host, mosquitto_server.port) as meter:
            for _ in range(count):
                n = len(expected)
                ts, kwh = T0 + timedelta(seconds=n), 100.0 + n * 0.125
                await meter.publish(meter_topic, meter_payload(ts, kwh, 1.0), qos=1)
                expected.append((ts, kwh))

    # The late broker runs from the start, but the agent only learns of it once it is "pointed at" it
    # below; until then its uplink port has nothing listening.
    with mosquitto(tmp_path / "late-broker") as late_broker:
        async with observe_uplink(late_broker, uplink.topic(edge.id)) as batches:
            async with EdgeAgent(edge, uplink_broker, uplink) as agent:
                await wait_until(lambda: agent.meters is not None and agent.meters.link.connected, "meter broker")
                await publish_meter_readings(20)
                await wait_until(lambda: agent.stats()["buffered"] == 20, "20 buffered samples")
                await asyncio.sleep(0.3)
                assert agent.stats()["uplink_connected"] == 0
                assert agent.stats()["batches_sent"] == 0

                uplink_broker.port = late_broker.port  # picked up at the next reconnect attempt
                await wait_until(lambda: agent.stats()["buffered"] == 0, "the buffer to drain")
                await wait_until(lambda: sum(len(b.samples) for b in batches) == 20, "20 samples uplinked")
                first_seqs = [b.seq for b in batches]

            # Restart: readings published while no agent runs wait in the meter broker's session for
            # the agent's client id; the new agent continues the sequence from the same buffer file.
            await publish_meter_readings(5)
            async with EdgeAgent(edge, broker_settings(late_broker), uplink) as restarted:
                await wait_until(lambda: sum(len(b.samples) for b in batches) >= 25, "25 samples uplinked")
                await asyncio.sleep(0.3)  # anything extra (a duplicate) would arrive now
                assert restarted.stats()["buffered"] == 0

    received = samples_of(batches)
    assert [(s.ts, s.value) for s in received] == expected  # every reading once, in order
    assert first_seqs == [0, 1, 2]  # 20 samples in batches of at most 7
    assert [b.seq for b in batches] == list(range(len(batches)))


async def test_malformed_meter_payload_is_counted_and_later_payloads_still_flow(
    tmp_path: Path, mosquitto_server: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    uplink = uplink_settings()
    meter_topic = f"test/{uuid.uuid4().hex[:8]}/meters/meter-b"
    edge = EdgeSettings(
        id="gw-meters",
        buffer_path=tmp_path / "buffer.sqlite",
        flush_interval_s=0.1,
        meters=[
            MeterSource(
                topic=meter_topic,
                equipment="meter-b",
                fields={"energy_kwh": "energy.active_import_kwh", "power_kw": "power.active_kw"},
                timestamp_field="ts",
            )
        ],
    )
    broker = broker_settings(mosquitto_server)
    async with (
        observe_uplink(mosquitto_server, uplink.topic(edge.id)) as batches,
        EdgeAgent(edge, broker, uplink) as agent,
        aiomqtt.Client(mosquitto_server.host, mosquitto_server.port) as meter,
    ):
        await wait_until(lambda: agent.meters is not None and agent.meters.link.connected, "the meter broker")
        with caplog.at_level(logging.WARNING, logger="edge.meter_source"):
            await meter.publish(meter_topic, meter_payload(T0, 10.5, 3.25), qos=1)
            await meter.publish(meter_topic, b"{not json", qos=1)
            await meter.publish(meter_topic, meter_payload(T0 + timedelta(seconds=1), 10.75, 3.5), qos=1)
            await wait_until(lambda: sum(len(b.samples) for b in batches) == 4, "4 samples uplinked")
        stats = agent.stats()

    assert (stats["meter_messages"], stats["meter_malformed"], stats["meter_samples"]) == (3, 1, 4)
    assert [(s.signal, s.ts, s.value) for s in samples_of(batches)] == [
        ("energy_kwh", T0, 10.5),
        ("power_kw", T0, 3.25),
        ("energy_kwh", T0 + timedelta(seconds=1), 10.75),
        ("power_kw", T0 + timedelta(seconds=1), 3.5),
    ]
    assert any(meter_topic in r.getMessage() and "not JSON" in r.getMessage() for r in caplog.records)


async def test_opcua_collector_waits_for_a_late_server_and_resubscribes_after_a_restart(
    tmp_path: Path, mosquitto_server: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    uplink = uplink_settings()
    port = free_port()
    edge = EdgeSettings(
        id="gw-reconnect",
        buffer_path=tmp_path / "buffer.sqlite",
        flush_interval_s=0.1,
        opcua=[opcua_source(f"opc.tcp://127.0.0.1:{port}/factory/")],
    )
    caplog.set_level(logging.WARNING, logger="edge.opcua_source")
    async with (
        observe_uplink(mosquitto_server, uplink.topic(edge.id)) as batches,
        EdgeAgent(edge, broker_settings(mosquitto_server), uplink) as agent,
    ):
        await asyncio.sleep(0.3)  # the server is not up yet
        assert agent.stats()["opcua_sources_connected"] == 0
        async with opcua_machine(port, state=1, parts=10, ts=T0):
            await wait_until(lambda: agent.stats()["opcua_samples"] == 2, "values from the late server")
        # The server went away; a new one (a restarted machine) comes up on the same endpoint.
        later = T0 + timedelta(minutes=5)
        async with opcua_machine(port, state=4, parts=11, ts=later):
            await wait_until(lambda: agent.stats()["opcua_samples"] == 4, "values after the restart")
            await wait_until(lambda: sum(len(b.samples) for b in batches) == 5, "4 samples and OFFLINE uplinked")
            assert agent.stats()["opcua_sources_connected"] == 1
            link_messages = [r.getMessage() for r in caplog.records if r.name == "edge.opcua_source"]

    received = samples_of(batches)
    # Between the two servers the edge said it stopped listening (at its own time, after T0).
    states = [(s.ts, s.value) for s in received if s.signal == "state"]
    assert [v for _, v in states[:3]] == ["PRODUCING", OFFLINE, "DOWN"]
    assert [states[0], states[2]] == [(T0, "PRODUCING"), (later, "DOWN")]
    assert [(s.ts, s.value) for s in received if s.signal == "parts_total"] == [(T0, 10), (later, 11)]
    # One line per transition, however many attempts the backoff made in between.
    transitions = ("not reachable yet", "connected after", " lost: ", "is back after")
    assert [next((t for t in transitions if t in m), m) for m in link_messages] == list(transitions)


async def test_run_forwards_until_cancelled_and_refuses_an_unusable_buffer_file(
    tmp_path: Path, mosquitto_server: MosquittoServer
) -> None:
    uplink = uplink_settings()
    meter_topic = f"test/{uuid.uuid4().hex[:8]}/meters/meter-c"
    edge = EdgeSettings(
        id="gw-run",
        buffer_path=tmp_path / "buffer.sqlite",
        flush_interval_s=0.1,
        meters=[MeterSource(topic=meter_topic, equipment="meter-c", fields={"power_kw": "power.active_kw"})],
    )
    broker = broker_settings(mosquitto_server)
    agent = EdgeAgent(edge, broker, uplink)
    async with observe_uplink(mosquitto_server, uplink.topic(edge.id)) as batches:
        running = asyncio.create_task(agent.run())
        await wait_until(lambda: agent.meters is not None and agent.meters.link.connected, "the meter broker")
        async with aiomqtt.Client(mosquitto_server.host, mosquitto_server.port) as meter:
            await meter.publish(meter_topic, meter_payload(T0, 1.0, 7.5), qos=1)
        await wait_until(lambda: len(batches) == 1, "one batch")
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert agent.forwarder is not None and agent.forwarder.task is None  # stopped, not leaked
    assert [(s.signal, s.value, s.ts_source) for s in samples_of(batches)] == [
        ("power_kw", 7.5, TimestampSource.GATEWAY)  # no timestamp_field: gateway time
    ]

    (tmp_path / "not-a-file").mkdir()
    broken = EdgeSettings(id="gw-run", buffer_path=tmp_path / "not-a-file")
    with pytest.raises(SampleBufferError, match="not-a-file"):
        await EdgeAgent(broken, broker, uplink).run()
