"""The uplink: batches from the sample buffer to the platform broker, deleted only once acknowledged.

Loop: wait until the buffer holds a full batch or ``flush_interval_s`` has passed, peek up to
``batch_max_samples``, encode them with the buffer's ``next_seq``, publish with QoS 1 and wait for
the broker's PUBACK, then ``ack`` the batch (which deletes it and advances the sequence number).

Any failure (no broker, a publish refused or not acknowledged in time) deletes nothing: the
forwarder reconnects with backoff and resends the very same samples under the same sequence
number. One batch is in flight at a time, so batches reach the broker in sequence order.

The broker settings are read at every connection attempt, so a broker that is re-pointed (a new
port or host in the same ``BrokerSettings``) is used from the next reconnect on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import aiomqtt

from core.mqtt import check_broker, mqtt_client
from core.settings import BrokerSettings, UplinkSettings
from core.wire import Sample, encode_batch
from edge.buffer import SampleBuffer
from edge.lifecycle import BackgroundComponent
from edge.reconnect import Backoff, LinkState

logger = logging.getLogger(__name__)


@dataclass
class ForwarderCounters:
    batches_sent: int = 0
    samples_sent: int = 0
    publish_failures: int = 0
    connects: int = 0


@dataclass(frozen=True)
class _Batch:
    last_id: int
    samples: list[Sample]


class Forwarder(BackgroundComponent):
    """Publishes the buffer's contents to ``uplink.topic(edge_id)`` in acknowledged batches."""

    def __init__(
        self,
        edge_id: str,
        buffer: SampleBuffer,
        broker: BrokerSettings,
        uplink: UplinkSettings,
        *,
        batch_max_samples: int = 1000,
        flush_interval_s: float = 0.5,
        publish_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
    ):
        check_broker(broker)  # a TLS file that cannot be used stops the edge at start, naming it
        self.edge_id = edge_id
        self.topic = uplink.topic(edge_id)
        self._buffer = buffer
        self._broker = broker
        self._batch_max_samples = batch_max_samples
        self._flush_interval_s = flush_interval_s
        self._publish_timeout_s = publish_timeout_s
        self._backoff = backoff or Backoff(0.5, 10.0)
        self._new_samples = asyncio.Event()
        # The batch published but not yet acknowledged; resent as it is after a failure.
        self._in_flight: _Batch | None = None
        self.counters = ForwarderCounters()
        self.link = LinkState(logger, f"uplink broker {broker.host}:{broker.port}")

    def notify(self) -> None:
        """New samples are in the buffer (called by the buffer writer)."""
        self._new_samples.set()

    def _task_name(self) -> str:
        return "uplink"

    async def _run(self) -> None:
        while True:
            try:
                async with self._client() as client:
                    self.counters.connects += 1
                    self.link.up()
                    self._backoff.reset()
                    while True:
                        await self._send_next(client)
            except aiomqtt.MqttError as exc:
                self.link.down(str(exc))
            await asyncio.sleep(self._backoff.next_delay())

    def _client(self) -> aiomqtt.Client:
        # Named per attempt: the settings may have been re-pointed since the last one.
        self.link.name = f"uplink broker {self._broker.host}:{self._broker.port}"
        return mqtt_client(
            self._broker,
            identifier=f"{self.edge_id}-uplink",
            # The buffer is the durable queue; a broker-side session would only duplicate it.
            clean_session=True,
            timeout_s=self._publish_timeout_s,
        )

    async def _send_next(self, client: aiomqtt.Client) -> None:
        batch = self._in_flight
        if batch is None:
            await self._wait_for_batch()
            last_id, samples = self._buffer.peek(self._batch_max_samples)
            if not samples:
                return
            batch = self._in_flight = _Batch(last_id, samples)
        seq = self._buffer.next_seq
        payload = encode_batch(self.edge_id, seq, batch.samples)
        try:
            await client.publish(self.topic, payload, qos=1, timeout=self._publish_timeout_s)
        except aiomqtt.MqttError:
            self.counters.publish_failures += 1
            raise
        self._buffer.ack(batch.last_id)
        self._in_flight = None
        self.counters.batches_sent += 1
        self.counters.samples_sent += len(batch.samples)
        logger.debug("sent batch seq=%d with %d samples", seq, len(batch.samples))

    async def _wait_for_batch(self) -> None:
        """Return once a full batch is buffered, or ``flush_interval_s`` after starting to wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._flush_interval_s
        while self._buffer.count < self._batch_max_samples:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._new_samples.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_samples.wait(), remaining)
