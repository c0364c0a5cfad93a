"""kill -9 of a running ingest loses nothing: a message is acknowledged only once its points are stored.

Ingest runs as a real subprocess (``python -m factory.cli ingest``) on a real Mosquitto and a real
store. A publisher streams batches; ingest is killed with SIGKILL mid-stream, while it holds points
it has not written yet, then started again with the same client id. The broker delivers again what
the dead process never acknowledged, and the store ends with exactly the points published.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import aiomqtt
import pytest

from core.store import Store
from core.stores.influx import InfluxStore
from core.stores.sqlite import SqliteStore
from core.wire import Sample, encode_batch
from tests.ingest_support import EXAMPLE_ASSETS, bounded, mqtt_publisher, publish_to
from tests.servers import InfluxServer, MosquittoServer, influxdb
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

EDGE = "gw-crash"
BATCHES = 400
SAMPLES_PER_BATCH = 25
EQUIPMENT = ("cnc-01", "cnc-02", "cnc-03", "cnc-04", "cnc-05")
NOW = datetime.now(UTC).replace(microsecond=0)
WINDOW = (NOW - timedelta(days=1), NOW + timedelta(days=1))


def batch(seq: int) -> bytes:
    samples = [
        Sample(
            equipment=EQUIPMENT[k % len(EQUIPMENT)],
            signal="parts_total",
            ts=NOW - timedelta(milliseconds=seq * SAMPLES_PER_BATCH + k),
            value=seq * SAMPLES_PER_BATCH + k,
        )
        for k in range(SAMPLES_PER_BATCH)
    ]
    return encode_batch(EDGE, seq, samples)


def write_config(
    tmp_path: Path, mosquitto: MosquittoServer, store: str, protocol: str, influx_url: str, database: str
) -> Path:
    config = tmp_path / "ingest.yaml"
    config.write_text(
        f"""assets: {EXAMPLE_ASSETS}
log_level: INFO
broker: {{host: {mosquitto.host}, port: {mosquitto.port}}}
store:
  kind: {store}
  sqlite_path: {tmp_path / "store.sqlite"}
  influx_url: {influx_url}
  influx_database: {database}
  timeout_s: 1.0
uplink: {{topic_prefix: test/{uuid.uuid4().hex[:8]}/uplink}}
ingest:
  client_id: ingest-{uuid.uuid4().hex[:8]}
  dead_letter_path: {tmp_path / "dead-letters.sqlite"}
  batch_max_points: 2000
  flush_interval_s: 0.5
  mqtt_protocol: "{protocol}"
"""
    )
    return config


def start_ingest(config: Path, log: IO[str]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY")}
    command = [sys.executable, "-m", "factory.cli", "ingest", "--config", str(config)]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def stored_points(store: Store) -> int:
    return len(await store.read("part_counter", *WINDOW))


async def publish_batches(pub: aiomqtt.Client, topic: str, interval_s: float) -> None:
    """Every batch of the stream, in order, ``interval_s`` apart."""
    for seq in range(BATCHES):
        await publish_to(pub, topic, batch(seq))
        await asyncio.sleep(interval_s)


async def stored_or_published(store: Store, points: int, publishing: asyncio.Task[None]) -> None:
    """Until the store holds ``points``, or the stream has all been published (ingest lagging)."""
    while not publishing.done():
        if await stored_points(store) >= points:
            return
        await asyncio.sleep(0.05)


def log_tail(log_path: Path) -> str:
    """The end of ingest's log, for a failing assertion."""
    return log_path.read_text()[-3000:]


async def subscribed_ingest(
    config: Path, log: IO[str], log_path: Path, processes: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """Ingest started (and kept in ``processes``, to be killed if the test fails) once it has subscribed."""
    ingest = start_ingest(config, log)
    processes.append(ingest)
    await wait_until(lambda: "subscribed" in log_path.read_text() or ingest.poll() is not None, "start")
    assert ingest.poll() is None, log_tail(log_path)
    return ingest


async def stored_then_stopped(
    store: Store, expected: int, ingest: subprocess.Popen[bytes], log_path: Path, timeout_s: float, poll_s: float
) -> int:
    """The points stored once ``expected`` are (ingest running all along) and a second more has passed.

    The second shows that nothing more arrives: no point twice, none made up. Ingest is then stopped
    with SIGTERM.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (count := await stored_points(store)) < expected:
        assert ingest.poll() is None, log_tail(log_path)
        assert loop.time() < deadline, f"{count} of {expected} points stored"
        await asyncio.sleep(poll_s)
    await asyncio.sleep(1.0)
    final = await stored_points(store)
    ingest.send_signal(signal.SIGTERM)
    ingest.wait(timeout=20)
    return final


@pytest.mark.parametrize(("backend", "protocol"), [("sqlite", "5"), ("influxdb", "3.1.1")])
async def test_kill_9_mid_stream_then_restart_stores_exactly_what_was_published(
    backend: str,
    protocol: str,
    tmp_path: Path,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_database: str,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    config = write_config(tmp_path, mosquitto_server, backend, protocol, influx_server.url, influx_database)
    topic = f"{config.read_text().split('topic_prefix: ')[1].split('}')[0]}/{EDGE}"
    expected = BATCHES * SAMPLES_PER_BATCH
    store: Store = (
        SqliteStore(tmp_path / "store.sqlite")
        if backend == "sqlite"
        else InfluxStore(influx_server.url, influx_database)
    )
    log_path = tmp_path / "ingest.log"
    with log_path.open("w") as log:
        try:
            async with bounded(120, "publish, kill -9, restart and catch up"), mqtt_publisher(mosquitto_server) as pub:
                first = await subscribed_ingest(config, log, log_path, processes)
                await asyncio.sleep(0.5)
                publishing = asyncio.create_task(publish_batches(pub, topic, 0.005))
                # Killed once a fifth is stored, or when the stream ends if ingest lags (a busy machine).
                await stored_or_published(store, expected // 5, publishing)
                first.send_signal(signal.SIGKILL)
                first.wait()
                killed_at = await stored_points(store)
                await publishing
                assert killed_at < expected, "killed too late to prove anything"

                second = start_ingest(config, log)
                processes.append(second)
                final = await stored_then_stopped(store, expected, second, log_path, 60, 0.1)
        finally:
            await store.close()
    assert final == expected, log_path.read_text()[-3000:]
    assert second.returncode == 0, log_path.read_text()[-3000:]
    assert "Traceback" not in log_path.read_text()


async def test_influxdb_away_and_ingest_killed_mid_stream_then_exactly_what_was_published_is_stored(
    tmp_path: Path, mosquitto_server: MosquittoServer, processes: list[subprocess.Popen[bytes]]
) -> None:
    # InfluxDB stops answering (SIGSTOP) mid-stream; while ingest holds points and retries, it is
    # killed with SIGKILL; the stream goes on into the broker; InfluxDB comes back, ingest starts again.
    expected = BATCHES * SAMPLES_PER_BATCH
    with influxdb(tmp_path / "influxdb") as influx:
        config = write_config(tmp_path, mosquitto_server, "influxdb", "5", influx.url, "outage")
        topic = f"{config.read_text().split('topic_prefix: ')[1].split('}')[0]}/{EDGE}"
        store = InfluxStore(influx.url, "outage", timeout_s=5)
        log_path = tmp_path / "ingest.log"
        with log_path.open("w") as log:
            try:
                async with bounded(150, "outage, kill -9, recovery"), mqtt_publisher(mosquitto_server) as pub:
                    first = await subscribed_ingest(config, log, log_path, processes)
                    publishing = asyncio.create_task(publish_batches(pub, topic, 0.01))
                    await stored_or_published(store, expected // 5, publishing)
                    influx.proc.send_signal(signal.SIGSTOP)
                    try:
                        await wait_until(lambda: "unavailable" in log_path.read_text(), "ingest noticing", 20)
                        await asyncio.sleep(1.0)
                        first.send_signal(signal.SIGKILL)
                        first.wait()
                        await publishing
                    finally:
                        influx.proc.send_signal(signal.SIGCONT)
                    second = start_ingest(config, log)
                    processes.append(second)
                    final = await stored_then_stopped(store, expected, second, log_path, 90, 0.2)
            finally:
                await store.close()
    assert final == expected, log_path.read_text()[-3000:]
    assert "unavailable" in log_path.read_text()


OUTAGE_S = 60  # issue 9's "InfluxDB stopped for 60 s mid-stream"


async def test_influxdb_stopped_for_60_s_and_ingest_killed_meanwhile_then_exactly_what_was_published_is_stored(
    tmp_path: Path, mosquitto_server: MosquittoServer, processes: list[subprocess.Popen[bytes]]
) -> None:
    # The stream runs on through a 60 s outage (SIGSTOP: connections hang, requests time out); halfway
    # through it ingest is killed with SIGKILL and started again at once, so the new process too meets
    # the store away, holds, retries with backoff, and catches up once InfluxDB answers again.
    expected = BATCHES * SAMPLES_PER_BATCH
    with influxdb(tmp_path / "influxdb") as influx:
        config = write_config(tmp_path, mosquitto_server, "influxdb", "5", influx.url, "outage60")
        topic = f"{config.read_text().split('topic_prefix: ')[1].split('}')[0]}/{EDGE}"
        store = InfluxStore(influx.url, "outage60", timeout_s=5)
        log_path = tmp_path / "ingest.log"
        loop = asyncio.get_running_loop()
        with log_path.open("w") as log:
            try:
                async with bounded(OUTAGE_S + 150, "a 60 s outage"), mqtt_publisher(mosquitto_server) as pub:
                    first = await subscribed_ingest(config, log, log_path, processes)
                    # 0.25 s apart, the stream spreads over the outage: about 100 s.
                    publishing = asyncio.create_task(publish_batches(pub, topic, 0.25))
                    while await stored_points(store) < expected // 10:
                        assert not publishing.done()
                        await asyncio.sleep(0.1)
                    influx.proc.send_signal(signal.SIGSTOP)
                    stopped_at = loop.time()
                    try:
                        await wait_until(lambda: "unavailable" in log_path.read_text(), "ingest noticing", 20)
                        await asyncio.sleep(max(0.0, stopped_at + OUTAGE_S / 2 - loop.time()))
                        first.send_signal(signal.SIGKILL)
                        first.wait()
                        second = start_ingest(config, log)
                        processes.append(second)
                        await asyncio.sleep(max(0.0, stopped_at + OUTAGE_S - loop.time()))
                        assert not publishing.done()  # the outage was mid-stream
                        assert second.poll() is None, log_path.read_text()[-3000:]
                    finally:
                        influx.proc.send_signal(signal.SIGCONT)
                    await publishing
                    final = await stored_then_stopped(store, expected, second, log_path, 120, 0.2)
            finally:
                await store.close()
    text = log_path.read_text()
    assert final == expected, text[-3000:]
    # Each process said once that the store was away, and the second once that it was back.
    assert text.count("store influxdb unavailable") == 2, text[-3000:]
    assert text.count("store influxdb is back") == 1, text[-3000:]
