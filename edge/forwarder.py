"""The uplink: batches from the sample buffer to the platform broker, deleted only once acknowledged.

Loop: wait until the buffer holds samples, peek up to ``batch_max_samples`` of them, put them into
one envelope with the buffer's ``next_seq`` (they are stored as wire JSON already: nothing is
parsed or encoded again), publish with QoS 1 and wait for the broker's PUBACK, then ``ack`` the
batch (which deletes it and advances the sequence number).

Batches size themselves: the forwarder sends as soon as anything is buffered, and whatever arrives
while a batch waits for its PUBACK goes out in the next one. At a few samples a second each goes
out on its own within milliseconds; at ten thousand a second batches grow until one round trip
carries what arrived during the previous one (up to ``batch_max_samples``). No timer adds latency.

Any failure (no broker, a publish refused or not acknowledged in time) deletes nothing: the
forwarder reconnects with backoff and resends the very same samples under the same sequence
number. One batch is in flight at a time, so batches reach the broker in sequence order.

The broker settings are read at every connection attempt, so a broker that is re-pointed (a new
port or host in the same ``BrokerSettings``) is used from the next reconnect on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiomqtt

from core.mqtt import check_broker, mqtt_client
from core.settings import BrokerSettings, UplinkSettings
from edge.buffer import BufferedBatch, SampleBuffer, batch_payload
from edge.lifecycle import BackgroundComponent
from edge.reconnect import Backoff, LinkState

logger = logging.getLogger(__name__)


@dataclass
class ForwarderCounters:
    batches_sent: int = 0
    samples_sent: int = 0
    publish_failures: int = 0
    connects: int = 0


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
        publish_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
    ):
        check_broker(broker)  # a TLS file that cannot be used stops the edge at start, naming it
        self.edge_id = edge_id
        self.topic = uplink.topic(edge_id)
        self._buffer = buffer
        self._broker = broker
        self._batch_max_samples = batch_max_samples
        self._publish_timeout_s = publish_timeout_s
        self._backoff = backoff or Backoff(0.5, 10.0)
        self._new_samples = asyncio.Event()
        # The batch published but not yet acknowledged; resent as it is after a failure.
        self._in_flight: BufferedBatch | None = None
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
            await self._wait_for_samples()
            batch = self._in_flight = self._buffer.peek(self._batch_max_samples)
            if batch is None:
                return
        seq = self._buffer.next_seq
        payload = batch_payload(self.edge_id, seq, batch.samples_json)
        try:
            await client.publish(self.topic, payload, qos=1, timeout=self._publish_timeout_s)
        except aiomqtt.MqttError:
            self.counters.publish_failures += 1
            raise
        self._buffer.ack(batch.last_id)
        self._in_flight = None
        self.counters.batches_sent += 1
        self.counters.samples_sent += batch.count
        logger.debug("sent batch seq=%d with %d samples", seq, batch.count)

    async def _wait_for_samples(self) -> None:
        """Return once the buffer holds a sample."""
        while not self._buffer.count:
            self._new_samples.clear()
            await self._new_samples.wait()
