"""The uplink forwarder deletes nothing the broker has not acknowledged and resends under the same seq."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from core.settings import BrokerSettings, UplinkSettings
from core.wire import DecodedBatch, Sample, decode_batch
from edge.buffer import SampleBuffer, encode_sample
from edge.forwarder import Forwarder
from edge.reconnect import Backoff
from tests.servers import MosquittoServer, mosquitto
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)


async def test_unacknowledged_batch_stays_in_the_buffer_and_is_resent_with_the_same_seq(
    tmp_path: Path,
) -> None:
    uplink = UplinkSettings(topic_prefix="test/forwarder")
    samples = [
        Sample(equipment="cnc-01", signal="parts_total", ts=T0 + timedelta(seconds=n), value=n) for n in range(10)
    ]
    received: list[DecodedBatch] = []
    # A broker of its own: it is frozen (SIGSTOP) below, so it accepts bytes but acknowledges nothing.
    with (
        mosquitto(tmp_path / "broker") as broker,
        SampleBuffer(tmp_path / "buffer.sqlite", 1000, chunk_samples=4) as buffer,
    ):
        async with aiomqtt.Client(broker.host, broker.port) as observer:
            await observer.subscribe(uplink.topic("gw-1"), qos=1)

            async def collect() -> None:
                async for message in observer.messages:
                    assert isinstance(message.payload, bytes)
                    received.append(decode_batch(message.payload))

            collector = asyncio.create_task(collect())
            async with Forwarder(
                "gw-1",
                buffer,
                BrokerSettings(host=broker.host, port=broker.port),
                uplink,
                batch_max_samples=4,
                publish_timeout_s=0.5,
                backoff=Backoff(0.2, 0.4),
            ) as forwarder:
                await wait_until(lambda: forwarder.link.connected, "the uplink connection")
                broker.proc.send_signal(signal.SIGSTOP)
                try:
                    buffer.append(samples)
                    forwarder.notify()
                    await wait_until(lambda: forwarder.counters.publish_failures >= 1, "a failed publish")
                    # Not acknowledged, so nothing was deleted and the sequence did not move.
                    assert (buffer.count, buffer.next_seq) == (10, 0)
                finally:
                    broker.proc.send_signal(signal.SIGCONT)
                await wait_until(lambda: buffer.count == 0, "the buffer to drain")
                await wait_until(lambda: {b.seq for b in received} == {0, 1, 2}, "batches 0, 1 and 2")
                await asyncio.sleep(0.3)
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector

    assert buffer.next_seq == 3
    assert forwarder.counters.batches_sent == 3
    # The batch published into the frozen broker may arrive as well as its resend: at least once,
    # and a repeated seq always carries exactly the same samples.
    by_seq: dict[int, list[Sample]] = {}
    for batch in received:
        assert by_seq.setdefault(batch.seq, batch.samples) == batch.samples
    assert [s for seq in sorted(by_seq) for s in by_seq[seq]] == samples
    assert [len(by_seq[seq]) for seq in sorted(by_seq)] == [4, 4, 2]


async def test_a_lone_sample_goes_out_at_once_and_stored_rows_are_sent_byte_for_byte(
    tmp_path: Path, mosquitto_server: MosquittoServer
) -> None:
    """No timer holds a sample back: at a low rate each one leaves as soon as it is buffered."""
    uplink = UplinkSettings(topic_prefix=f"test/forwarder-{tmp_path.name}")
    payloads: list[tuple[float, bytes]] = []
    with SampleBuffer(tmp_path / "buffer.sqlite", 1000) as buffer:
        async with aiomqtt.Client(mosquitto_server.host, mosquitto_server.port) as observer:
            await observer.subscribe(uplink.topic("gw-2"), qos=1)

            async def collect() -> None:
                async for message in observer.messages:
                    assert isinstance(message.payload, bytes)
                    payloads.append((asyncio.get_running_loop().time(), message.payload))

            collector = asyncio.create_task(collect())
            async with Forwarder(
                "gw-2", buffer, BrokerSettings(host=mosquitto_server.host, port=mosquitto_server.port), uplink
            ) as forwarder:
                await wait_until(lambda: forwarder.link.connected, "the uplink connection")
                delays = []
                for n in range(5):
                    sample = Sample(equipment="cnc-01", signal="parts_total", ts=T0 + timedelta(seconds=n), value=n)
                    appended = asyncio.get_running_loop().time()
                    buffer.append([sample])
                    forwarder.notify()
                    await wait_until(lambda n=n: len(payloads) == n + 1, f"batch {n}")  # type: ignore[misc]
                    delays.append(payloads[-1][0] - appended)
                    assert encode_sample(sample) in payloads[-1][1]
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
    assert [decode_batch(p).seq for _, p in payloads] == [0, 1, 2, 3, 4]
    # Loopback round trips take about a millisecond; a timer would show as tens of them.
    assert sorted(delays)[2] < 0.05, delays
