"""The edge loses nothing it has read: a broker stopped for a minute, an OPC UA server restart and a
``kill -9`` of the agent, each against real servers (asyncua, Mosquitto) with exact counts.

Every test writes a known stream of values (each one distinct, each with its own SourceTimestamp)
into a live asyncua server and reads the uplink with its own MQTT client, so what is compared is
what the server held against what ingest would receive. A batch the broker got twice (published,
then resent because its PUBACK was lost with the connection) counts once, as ingest counts it: by
its sequence number, whose samples must be the same both times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest
from asyncua import Server, ua

from core.settings import BrokerSettings, EdgeSettings, OpcUaSource, UplinkSettings
from core.wire import DecodedBatch, decode_batch
from edge.agent import EdgeAgent
from edge.buffer import batch_payload
from tests.servers import MosquittoServer, _require, _wait_for_port, free_port, stop_process
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
EQUIPMENT = "dur-01"  # not in the asset model: no refresh-interval check applies
SIGNALS = [f"sig_{k}" for k in range(10)]
RATE_HZ = 10
# How long the broker stays away; the issue asks for a minute. EDGE_OUTAGE_S shortens it for a quick local look.
OUTAGE_S = float(os.environ.get("EDGE_OUTAGE_S", "60"))

Reading = tuple[str, datetime, float]  # (signal, source time, value)


# --- servers ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def mosquitto_on(port: int, workdir: Path) -> Iterator[MosquittoServer]:
    """Mosquitto on a given port with a persistent store, so it can be stopped and started again there
    and still hold the observer's session and the messages queued for it."""
    binary = _require("mosquitto", "mosquitto")
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {workdir}/\n"
        "max_queued_messages 0\nmax_inflight_messages 0\nlog_dest stderr\n"
    )
    log = workdir / "mosquitto.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, "mosquitto", log)
        yield MosquittoServer("127.0.0.1", port, proc)
    finally:
        proc.terminate()  # SIGTERM: mosquitto saves its persistent store on the way out
        proc.wait(timeout=10)


@dataclass
class Machine:
    """An asyncua server whose variables get a new distinct value on every ``write_all``."""

    server: Server
    nodes: dict[str, ua.NodeId]
    written: list[Reading] = field(default_factory=list)
    counter: int = 0

    async def write_all(self) -> None:
        ts = datetime.now(UTC)
        for signal_name, node_id in self.nodes.items():
            self.counter += 1
            value = float(self.counter)
            data = ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=ts, ServerTimestamp=ts)
            await self.server.write_attribute_value(node_id, data)
            self.written.append((signal_name, ts, value))

    async def stream(self, seconds: float) -> None:
        """Write every variable RATE_HZ times a second for ``seconds``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            await self.write_all()
            await asyncio.sleep(1 / RATE_HZ)


@contextlib.asynccontextmanager
async def opcua_machine(port: int, written: list[Reading], first_value: int = 0) -> AsyncIterator[Machine]:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/durability/")
    ns = await server.register_namespace("urn:smart-factory:test:durability")
    folder = await server.nodes.objects.add_object(ua.NodeId(EQUIPMENT, ns), EQUIPMENT)
    nodes = {}
    for name in SIGNALS:
        node = await folder.add_variable(
            ua.NodeId(f"{EQUIPMENT}.{name}", ns), name, ua.Variant(0.0, ua.VariantType.Double)
        )
        nodes[name] = node.nodeid
    machine = Machine(server, nodes, written, first_value)
    await machine.write_all()  # the initial values, which a new subscription reads first
    await server.start()
    try:
        yield machine
    finally:
        await server.stop()


def source(port: int) -> OpcUaSource:
    return OpcUaSource(
        endpoint=f"opc.tcp://127.0.0.1:{port}/durability/",
        equipment=EQUIPMENT,
        nodes={name: f"ns=2;s={EQUIPMENT}.{name}" for name in SIGNALS},
        sampling_interval_ms=50,
        refresh_interval_s=3600,  # no refresh inside a test: every sample is a change the server made
    )


# --- the uplink as ingest sees it ------------------------------------------------------------------


@dataclass
class Uplink:
    """Batches received on the edge's topic, counted by sequence number as ingest counts them."""

    batches: dict[int, DecodedBatch] = field(default_factory=dict)
    resent: int = 0

    def add(self, batch: DecodedBatch) -> None:
        assert not batch.rejected, batch.rejected
        earlier = self.batches.setdefault(batch.seq, batch)
        if earlier is not batch:
            assert earlier.samples == batch.samples, f"seq {batch.seq} came again with other samples"
            self.resent += 1

    def readings(self) -> list[Reading]:
        samples = [s for seq in sorted(self.batches) for s in self.batches[seq].samples]
        return [(s.signal, s.ts, float(s.value)) for s in samples if s.signal in SIGNALS]

    def count(self) -> int:
        return len(self.readings())


@contextlib.asynccontextmanager
async def observe(host: str, port: int, topic: str, *, persistent: bool = False) -> AsyncIterator[Uplink]:
    """Read ``topic`` into an Uplink; with ``persistent`` the session outlives a broker restart and
    the observer reconnects until the broker is back."""
    uplink = Uplink()
    identifier = f"observer-{uuid.uuid4().hex[:8]}"
    subscribed = asyncio.Event()

    async def read() -> None:
        while True:
            try:
                async with aiomqtt.Client(host, port, identifier=identifier, clean_session=not persistent) as client:
                    await client.subscribe(topic, qos=1)
                    subscribed.set()
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        uplink.add(decode_batch(message.payload))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    task = asyncio.create_task(read())
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
        yield uplink
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def assert_exactly(received: list[Reading], written: list[Reading]) -> None:
    missing = Counter(written) - Counter(received)
    extra = Counter(received) - Counter(written)
    assert not missing, f"{sum(missing.values())} written values never arrived, e.g. {list(missing)[:3]}"
    assert not extra, f"{sum(extra.values())} samples arrived more often than written, e.g. {list(extra)[:3]}"


# --- tests -----------------------------------------------------------------------------------------


async def test_broker_stopped_for_a_minute_mid_stream_every_sample_arrives_afterwards_exactly_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.forwarder")
    broker_port, opcua_port = free_port(), free_port()
    uplink_settings = UplinkSettings(topic_prefix=f"test/{uuid.uuid4().hex[:8]}/uplink")
    edge = EdgeSettings(id="gw-outage", buffer_path=tmp_path / "buffer.sqlite", opcua=[source(opcua_port)])
    written: list[Reading] = []
    broker_dir = tmp_path / "broker"
    topic = uplink_settings.topic(edge.id)

    broker = contextlib.ExitStack()
    server = broker.enter_context(mosquitto_on(broker_port, broker_dir))
    async with (
        opcua_machine(opcua_port, written) as machine,
        observe(server.host, broker_port, topic, persistent=True) as uplink,
        EdgeAgent(edge, BrokerSettings(host="127.0.0.1", port=broker_port), uplink_settings) as agent,
    ):
        assert agent.buffer is not None and agent.forwarder is not None
        await wait_until(lambda: agent.stats()["opcua_sources_connected"] == 1, "the OPC UA session")
        await machine.stream(3)
        await wait_until(lambda: uplink.count() >= len(SIGNALS) * 10, "the stream to flow")

        broker.close()  # the broker goes away mid-stream ...
        await machine.stream(OUTAGE_S)
        during_outage = agent.stats()
        with mosquitto_on(broker_port, broker_dir):  # ... and comes back on the same port a minute later
            await machine.stream(3)
            await wait_until(lambda: uplink.count() >= len(written), f"all {len(written)} values", within_s=60)
            await asyncio.sleep(0.5)  # a duplicate would arrive now
            stats = agent.stats()

    assert during_outage["uplink_connected"] == 0
    assert during_outage["buffered"] >= len(SIGNALS) * RATE_HZ * OUTAGE_S * 0.8  # held while the broker was gone
    assert_exactly(uplink.readings(), written)
    assert sorted(uplink.batches) == list(range(stats["next_seq"]))  # no sequence gap
    assert stats["buffered"] == 0 and stats["dropped"] == 0
    # One line when the uplink was lost and one when it came back, however many attempts in between.
    uplink_lines = [r.getMessage() for r in caplog.records if r.name == "edge.forwarder"]
    assert sum(" lost: " in m for m in uplink_lines) == 1, uplink_lines
    assert sum("is back after" in m for m in uplink_lines) == 1, uplink_lines


async def test_opcua_server_restart_mid_stream_data_flows_again_without_restarting_the_agent(
    tmp_path: Path, mosquitto_server: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.opcua_source")
    port = free_port()
    uplink_settings = UplinkSettings(topic_prefix=f"test/{uuid.uuid4().hex[:8]}/uplink")
    edge = EdgeSettings(id="gw-restart", buffer_path=tmp_path / "buffer.sqlite", opcua=[source(port)])
    written: list[Reading] = []
    broker = BrokerSettings(host=mosquitto_server.host, port=mosquitto_server.port)
    async with (
        observe(mosquitto_server.host, mosquitto_server.port, uplink_settings.topic(edge.id)) as uplink,
        EdgeAgent(edge, broker, uplink_settings) as agent,
    ):
        async with opcua_machine(port, written) as machine:
            await wait_until(lambda: agent.stats()["opcua_sources_connected"] == 1, "the first session")
            await machine.stream(2)
            counter = machine.counter
        await wait_until(lambda: agent.stats()["opcua_sources_connected"] == 0, "the loss to be seen")
        # The machine restarts: a new server process on the same endpoint, its values going on.
        async with opcua_machine(port, written, first_value=counter) as machine:
            await wait_until(lambda: agent.stats()["opcua_sources_connected"] == 1, "the new session", within_s=30)
            await machine.stream(2)
            await wait_until(lambda: uplink.count() >= len(written), f"all {len(written)} values")
            await asyncio.sleep(0.5)
            stats = agent.stats()
            lines = [r.getMessage() for r in caplog.records if r.name == "edge.opcua_source"]

    assert_exactly(uplink.readings(), written)
    assert stats["opcua_notifications"] == len(written)
    assert sum(" lost: " in m for m in lines) == 1, lines
    assert sum("is back after" in m for m in lines) == 1, lines


def edge_config(path: Path, *, broker_port: int, opcua_port: int, prefix: str, buffer: Path) -> Path:
    nodes = "".join(f"        {name}: 'ns=2;s={EQUIPMENT}.{name}'\n" for name in SIGNALS)
    path.write_text(
        f"""assets: {REPO / "config" / "factory.yaml"}
log_level: INFO
broker: {{host: 127.0.0.1, port: {broker_port}}}
uplink: {{topic_prefix: {prefix}}}
edge:
  id: gw-kill
  buffer_path: {buffer}
  opcua:
    - endpoint: opc.tcp://127.0.0.1:{opcua_port}/durability/
      equipment: {EQUIPMENT}
      sampling_interval_ms: 50
      refresh_interval_s: 3600
      nodes:
{nodes}"""
    )
    return path


@contextlib.contextmanager
def agent_process(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``factory edge`` as a process of its own, as systemd runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY")}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "factory.cli", "edge", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            stop_process(proc, timeout_s=20)


def buffered_readings(path: Path) -> list[Reading]:
    """What the buffer file holds, read by another process (SQLite WAL readers see every commit)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            chunks = db.execute("SELECT body FROM chunks ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    samples = [s for (body,) in chunks for s in decode_batch(batch_payload("gw-kill", 0, body)).samples]
    return [(s.signal, s.ts, float(s.value)) for s in samples if s.signal in SIGNALS]


async def test_kill_9_of_the_agent_process_loses_no_buffered_sample(
    tmp_path: Path, mosquitto_server: MosquittoServer
) -> None:
    opcua_port = free_port()
    prefix = f"test/{uuid.uuid4().hex[:8]}/uplink"
    buffer = tmp_path / "buffer.sqlite"
    log = tmp_path / "edge.log"
    written: list[Reading] = []
    # First life: the uplink broker is not there, so everything read waits in the buffer file.
    unreachable = edge_config(
        tmp_path / "edge-down.yaml", broker_port=free_port(), opcua_port=opcua_port, prefix=prefix, buffer=buffer
    )
    reachable = edge_config(
        tmp_path / "edge-up.yaml",
        broker_port=mosquitto_server.port,
        opcua_port=opcua_port,
        prefix=prefix,
        buffer=buffer,
    )
    async with (
        opcua_machine(opcua_port, written) as machine,
        observe(mosquitto_server.host, mosquitto_server.port, f"{prefix}/gw-kill") as uplink,
    ):
        with agent_process(unreachable, log) as agent:
            deadline = time.monotonic() + 30
            while len(buffered_readings(buffer)) < len(SIGNALS):
                assert agent.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.1)
            await machine.stream(3)
            await wait_until(lambda: len(buffered_readings(buffer)) == len(written), "every value in the file")
            agent.send_signal(signal.SIGKILL)  # no clean shutdown: nothing gets flushed or closed
            assert agent.wait(timeout=10) == -signal.SIGKILL
        at_kill = buffered_readings(buffer)
        assert Counter(at_kill) == Counter(written)

        # Second life, on the same file, with the broker reachable.
        with agent_process(reachable, log) as agent:
            await wait_until(lambda: uplink.count() >= len(at_kill), f"the {len(at_kill)} buffered samples", 30)
            await asyncio.sleep(1.0)
            assert agent.poll() is None

    received = uplink.readings()
    # Each buffered sample arrives once. The new session also reads every variable's current value
    # (the last written, same time and value): the same point again, which the store overwrites.
    last_values = {signal_name: (signal_name, ts, value) for signal_name, ts, value in written}
    assert Counter(received) - Counter(last_values.values()) == Counter(at_kill)
    assert sorted(uplink.batches) == list(range(len(uplink.batches)))  # the sequence survived the kill
    assert "samples from before the restart" in log.read_text()


async def test_kill_9_while_the_uplink_flows_resends_what_was_not_acknowledged(
    tmp_path: Path, mosquitto_server: MosquittoServer
) -> None:
    """Killed mid-stream: every value read before the kill arrives, apart from the few milliseconds of
    samples still in memory (``edge.flush_interval_s``) — and none of those had been acknowledged."""
    opcua_port = free_port()
    prefix = f"test/{uuid.uuid4().hex[:8]}/uplink"
    buffer = tmp_path / "buffer.sqlite"
    log = tmp_path / "edge.log"
    written: list[Reading] = []
    config = edge_config(
        tmp_path / "edge.yaml", broker_port=mosquitto_server.port, opcua_port=opcua_port, prefix=prefix, buffer=buffer
    )
    async with (
        opcua_machine(opcua_port, written) as machine,
        observe(mosquitto_server.host, mosquitto_server.port, f"{prefix}/gw-kill") as uplink,
    ):
        with agent_process(config, log) as agent:
            await wait_until(lambda: uplink.count() >= len(SIGNALS), "the first values", within_s=30)
            await machine.stream(2)
            agent.send_signal(signal.SIGKILL)
            assert agent.wait(timeout=10) == -signal.SIGKILL
        before_kill = list(written)
        in_file = buffered_readings(buffer)
        with agent_process(config, log):
            await wait_until(
                lambda: not (Counter(in_file) - Counter(uplink.readings())), "the rows left in the file", within_s=30
            )
            await asyncio.sleep(0.5)

    received = Counter(uplink.readings())
    assert not Counter(in_file) - received  # every row the kill left in the file arrived
    lost = [r for r in before_kill if r not in received]
    # Only the newest values can have been in memory at the kill: those of the last write or two.
    newest = {ts for _, ts, _ in before_kill[-2 * len(SIGNALS) :]}
    assert all(ts in newest for _, ts, _ in lost), lost[:5]
    assert sorted(uplink.batches) == list(range(len(uplink.batches)))
