"""The ingest service: uplink batches from the broker, validated and mapped, into the store.

Two tasks share a bounded in-memory queue of points:

* the **reader** holds a persistent MQTT session (fixed client id, clean session off, QoS 1), so the
  broker keeps queuing uplink batches while ingest is down or paused. It decodes each message
  within the wire format's bounds (``ingest.max_payload_bytes``, ``max_past_days``,
  ``max_future_s``), checks the edge's sequence number, maps good samples to points and
  dead-letters the rest: a broken envelope whole, a bad sample or one for equipment the asset model
  does not know one by one. ``_on_message`` is the one boundary per message (docs/ingest.md).
  The edge is the one the topic names: a payload naming another edge is refused whole, a sample
  for equipment the asset model assigns to another gateway on its own; a resent batch (same edge,
  seq and samples) is a counted duplicate and not written again.
* the **writer** takes up to ``batch_max_points`` points (or what ``flush_interval_s`` collected) and
  writes them. While the store is unavailable it retries the same batch with backoff and holds
  everything behind it (waiting what a 429/503's ``Retry-After`` asks, when the store passes it on);
  when the queue is full the reader stops taking messages (the broker queues for us) until the
  writer has drained half of it. When the store rejects a batch, the writer splits it until the bad
  points are isolated and dead-letters only those, each with the store's reason (InfluxDB's own
  words). A request too large for the server (413) is split by the store itself.

**Acknowledge after write.** A QoS 1 message is acknowledged to the broker (PUBACK) only once every
point it carried is in the store or in the dead-letter store, so a crash (``kill -9``, power loss)
loses nothing: the broker still holds every message ingest had not finished, and delivers it again
to the next ingest with the same client id. Acknowledgements go out in the order the messages came
in, as MQTT asks: a message whose points are written waits for the ones before it. They belong to a
connection: when it closes (a pause, a lost broker, a shutdown) the unacknowledged messages are
forgotten rather than acknowledged on the next connection, whose packet ids mean other messages; the
broker sends them again, and the copy is a duplicate, acknowledged once the first copy is stored.

Delivery is therefore at least once, never exactly once. A duplicate the sequence tracker still
remembers is counted and not written; an older repeat is written again, which is harmless because
writes are idempotent. A clean shutdown stops taking messages, writes what it holds and
acknowledges it before it disconnects (within ``shutdown_timeout_s``); only what it could not write
in that time arrives again at the next start.

Flow control is the broker's: it never has more than ``ingest.receive_maximum`` unacknowledged
messages out to ingest and queues the rest in the session. With ``ingest.mqtt_protocol: "5"``
ingest declares that number (MQTT v5 Receive Maximum); with 3.1.1 (the default, since the demo's
embedded broker speaks nothing else) the broker's own limit (Mosquitto ``max_inflight_messages``)
must match it. Ingest writes as soon as it holds that many, since nothing more can arrive before it
acknowledges some. When the points it holds reach ``max_pending_points``
(the store is slow or away) the reader stops taking messages, with the connection kept open so that
what the writer finishes can still be acknowledged; the broker queues meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import operator
import re
from collections import Counter, deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self, cast

import aiomqtt
import msgspec
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.assets import AssetModel
from core.errors import StoreError, StoreRejected, StoreUnavailable, WireFormatError
from core.mqtt import check_broker, mqtt_client
from core.once import Outage, RepeatedWarnings
from core.settings import Settings
from core.store import Point, Store
from core.stores.lineprotocol import LineProtocolWriter, encode_point
from core.tasks import cancel_and_wait
from core.wire import DecodedBatch, PlainBatch, PlainSample, Sample, decode_batch, decode_plain, sample_to_json
from ingest.admission import Refused, admit_sample, edge_of, names_another_edge, not_an_uplink_topic
from ingest.deadletter import DeadLetter, DeadLetterStore, LetterFilter, LetterKind
from ingest.group_sequence import GroupSequence, ReportError, decode_report, encode_report
from ingest.mapping import LineEncoder
from ingest.metrics import MetricsServer, Timing, render
from ingest.sequence import SequenceTracker, SeqVerdict

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 30.0
MQTT_TIMEOUT_S = 10.0  # longest wait for the broker's answer to a connect, subscribe or disconnect
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps ingest's session and queue this long while it is away
COUNTERS = (
    "messages",  # MQTT messages received
    "samples",  # samples in decodable batches, good or bad
    "points_written",  # points the store accepted, repeats included
    "dead_letters",
    "refused_batches",  # payloads naming another edge than their topic (dead-lettered whole)
    "duplicates",  # batches received before (same edge, seq and samples): not written again
    "seq_gaps",  # batch sequence numbers found missing
    "seq_repeats",  # batches older than the recent window seen again (written again: idempotent)
    "seq_reused",  # a recent sequence number with other samples (an edge whose numbering was reset)
    "seq_late",  # batches that arrived after a later one and closed a gap
    "seq_reports",  # reports of the numbers another instance of the group received (shared_group)
    "seq_reports_refused",  # reports that could not be used (dead-lettered)
    "write_retries",
    "pauses",  # times the reader stopped taking messages because the queue was full
    "acks",  # messages acknowledged to the broker, every point of each stored or dead-lettered
)


@dataclass(eq=False, slots=True)
class _Delivery:
    """One MQTT message on its way to the store: acknowledged once none of its points is left to write."""

    mid: int
    qos: int
    connection: int  # which connection it came on; packet ids mean nothing on another
    received: float  # the event loop's clock when it arrived
    unwritten: int = 0
    after: _Delivery | None = None  # a duplicate waits for its first copy to be stored
    uplink: bool = True  # False: a report of the group's (acknowledged, not counted among the uplink's acks)

    @property
    def done(self) -> bool:
        return self.unwritten == 0 and (self.after is None or self.after.unwritten == 0)


@dataclass(eq=False, slots=True)
class _Message:
    """Where the points of one batch came from, in case the store rejects one of them."""

    topic: str
    edge: str
    seq: int
    delivery: _Delivery
    received_at: datetime  # when it arrived: a dead letter keeps that, not when the store refused


@dataclass(slots=True)
class _Chunk:
    """Points of one message waiting to be written (lines of line protocol when the store takes lines),
    each with the sample it was made from, in case the store rejects it. Queued whole, so a plain
    batch costs the queue nothing per point; the writer splits one only to fill its batch."""

    points: Sequence[Point | str]
    samples: Sequence[Sample | PlainSample]
    message: _Message

    def split(self, at: int) -> tuple[_Chunk, _Chunk]:
        return (
            _Chunk(self.points[:at], self.samples[:at], self.message),
            _Chunk(self.points[at:], self.samples[at:], self.message),
        )


# One point on its own, when the store rejected a batch and the culprits are being isolated.
_Pending = tuple[Point | str, Sample | PlainSample, _Message]
_MESSAGE_OF = operator.itemgetter(2)
_POINT_OF = operator.itemgetter(0)


def _failure(task: asyncio.Task[None]) -> list[BaseException]:
    """The error a finished task ended with, if it ended with one (cancellation is no error here)."""
    if task.cancelled():
        return []
    error = task.exception()
    return [] if error is None else [error]


def _report_failure(task: asyncio.Task[None]) -> None:
    # Without this a dead task would only surface on exit; ingest would silently stop meanwhile.
    for error in _failure(task):
        log.error("%s stopped: %s", task.get_name(), error, exc_info=error)


def _reason_kind(reason: str) -> str:
    """What repeated dead letters have in common: the field, without index or numbers (``samples[].value``)."""
    return _NUMBER.sub("N", _INDEX.sub("[]", reason.split(":", 1)[0]))[:80]


_INDEX = re.compile(r"\[\d+\]")
_NUMBER = re.compile(r"\d+")
MAX_REASON_KINDS = 100  # dead letters by reason for the metrics; beyond this they count as "other"


def _retry_delay(exc: StoreError, backoff_s: float) -> float:
    """How long to wait before writing again: what the store asked for (429/503 Retry-After), else the backoff.

    The store bounds what it was asked (``core.stores.influx.MAX_RETRY_AFTER_S``); an ask of 0 still
    waits the first backoff step, so a server that always says 0 is not hammered.
    """
    if isinstance(exc, StoreUnavailable) and exc.retry_after_s is not None:
        return max(exc.retry_after_s, BACKOFF_START_S)
    return backoff_s


def _timed(timing: Timing, seconds: float) -> Timing:
    return Timing(timing.count + 1, timing.seconds + seconds)


def _manual_acknowledgement(client: aiomqtt.Client) -> paho.Client:
    """Turn paho's automatic PUBACK off for ``client``; returns the paho client to call ``ack`` on.

    aiomqtt 2.5 has no option for it (it builds paho's client with automatic acknowledgement);
    paho's own ``manual_ack_set`` and ``ack`` are reached through ``Client._client``, here only.
    """
    inner: paho.Client = client._client
    inner.manual_ack_set(True)
    return inner


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


class IngestService:
    """``async with IngestService(...) as ingest:`` starts reading and writing; ``run()`` serves forever."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        assets: AssetModel,
        *,
        max_pending_points: int | None = None,
        shutdown_timeout_s: float = 10.0,
    ):
        check_broker(settings.broker)  # a TLS file that cannot be used stops ingest here, naming it
        self.settings = settings
        self.store = store
        self.assets = assets
        self.dead_letters = DeadLetterStore(
            settings.ingest.dead_letter_path,
            max_age=timedelta(days=settings.ingest.dead_letter_max_age_days),
            max_bytes=int(settings.ingest.dead_letter_max_mb * 1024 * 1024),
        )
        self.batch_max_points = settings.ingest.batch_max_points
        self.flush_interval_s = settings.ingest.flush_interval_s
        self.max_pending_points = max_pending_points or 10 * self.batch_max_points
        self.shutdown_timeout_s = shutdown_timeout_s
        self.subscribed = asyncio.Event()  # set while the MQTT subscription is live

        self._wire_limits = settings.ingest.wire_limits()
        # With a store that takes line protocol (InfluxDB) every point is queued as its line, and the
        # plain batches edges send skip Sample and Point altogether (LineEncoder).
        self._line_writer = store if isinstance(store, LineProtocolWriter) else None
        self._line_encoder = LineEncoder(assets) if self._line_writer is not None else None
        self._warnings = RepeatedWarnings(log, settings.ingest.warning_interval_s)
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._sequences = SequenceTracker(max_edges=settings.ingest.max_tracked_edges)
        # In a shared group the instances tell each other which numbers they received (group_sequence).
        self._group_topic = settings.ingest.group_topic()
        self._group: GroupSequence | None = None
        if self._group_topic is not None:
            self._group = GroupSequence(settings.ingest.sequence_settle_s, max_edges=settings.ingest.max_tracked_edges)
        self._in_progress: dict[tuple[str, int], _Delivery] = {}  # batches with points not yet written
        self._pending: deque[_Chunk] = deque()
        self._pending_points = 0  # the points in _pending
        self._in_flight = 0
        self._arrived = asyncio.Event()
        self._wrote = asyncio.Event()  # set after each batch the writer finished
        self._room = asyncio.Event()
        self._room.set()
        self._closing = False
        self._leaving = False  # shutting down: take no more messages, write and acknowledge what is held
        self._store_outage = Outage(log)
        self._broker_outage = Outage(log)
        self._dead_letters_outage = Outage(log, lost_level=logging.ERROR)
        self.receive_maximum = settings.ingest.receive_maximum
        self._connection = 0  # counts connections; a delivery acknowledges only on its own
        self._acknowledger: paho.Client | None = None  # set while a connection is up
        self._unacked: deque[_Delivery] = deque()  # this connection's deliveries, in arrival order
        self._dead_letter_kinds: Counter[str] = Counter()
        self._write_time = Timing()
        self._ack_latency = Timing()
        self.metrics: MetricsServer | None = None
        if settings.ingest.metrics_port is not None:
            self.metrics = MetricsServer(settings.ingest.metrics_host, settings.ingest.metrics_port, self.metrics_page)
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.dead_letters.open()
        if self.metrics is not None:
            await self.metrics.__aenter__()
        self._writer = asyncio.create_task(self._write_loop(), name="ingest-writer")
        self._reader = asyncio.create_task(self._read_loop(), name="ingest-reader")
        for task in (self._writer, self._reader):
            task.add_done_callback(_report_failure)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        failures: list[BaseException] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_timeout_s
        await self._write_and_acknowledge_before_leaving(deadline)
        if self._reader is not None:
            await cancel_and_wait(self._reader)
            failures.extend(_failure(self._reader))
        self._closing = True
        self._arrived.set()
        if self._writer is not None:
            done, _ = await asyncio.wait({self._writer}, timeout=max(0.0, deadline - loop.time()))
            if not done:
                log.error(
                    "ingest stopped with %d points not written (store still unavailable after %.0f s)",
                    self._held(),
                    self.shutdown_timeout_s,
                )
                await cancel_and_wait(self._writer)
            else:
                failures.extend(_failure(self._writer))
        await self.dead_letters.close()
        if self.metrics is not None:
            await self.metrics.__aexit__(None, None, None)
        self._warnings.flush()
        if failures and exc is None:
            raise failures[0]

    async def _write_and_acknowledge_before_leaving(self, deadline: float) -> None:
        """Take no more messages; write what is held and acknowledge it while the connection is up.

        Then a clean restart is not sent again what this run finished. If the store does not take
        it all by ``deadline``, what is left is written after the connection closes, and the broker
        sends those messages again at the next start.
        """
        if self._reader is None or self._reader.done() or self._writer is None or self._writer.done():
            return
        self._leaving = True
        self._room.clear()  # the reader stops after the message it is handling, if any
        self._arrived.set()  # the writer writes what it has instead of waiting for a fuller batch
        while self._held() and not self._writer.done():
            self._wrote.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._wrote.wait()
            except TimeoutError:
                return

    async def run(self) -> None:
        """Serve until cancelled; a task that fails ends the service with its error."""
        async with self:
            await self.supervise()

    async def supervise(self) -> None:
        """Wait while the reader and writer work; raise the error of one that failed."""
        tasks = {task for task in (self._reader, self._writer) if task is not None}
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()

    def links(self) -> dict[str, bool]:
        """What ``factory healthcheck --service ingest`` judges: subscribed to the uplink, last write taken."""
        return {"broker": self.subscribed.is_set(), "store": not self._store_outage.ongoing}

    def stats(self) -> dict[str, int]:
        return {**self._counters, "pending_points": self._held(), "unacked": len(self._unacked)}

    async def metrics_page(self) -> str:
        """What ``GET /metrics`` answers (Prometheus text format).

        With what the dead-letter file holds now (read at each scrape, so a replay or purge by
        ``factory deadletters`` shows); left out while the file cannot be read.
        """
        timings = {
            "write_seconds": ("time the store took for each write that succeeded", self._write_time),
            "ack_latency_seconds": ("from a message's arrival to its acknowledgement", self._ack_latency),
        }
        gauges: dict[str, int] = {}
        try:
            gauges["dead_letters_waiting"] = await self.dead_letters.count(LetterFilter(replayed=False))
            gauges["dead_letters_held"] = await self.dead_letters.count()
            gauges["dead_letter_bytes"] = await self.dead_letters.payload_bytes()
        except StoreError as exc:
            log.debug("dead-letter gauges left out of /metrics: %s", exc)
            gauges.clear()
        return render({**self.stats(), **gauges}, self._dead_letter_kinds, timings)

    # --- reading -------------------------------------------------------------------------------

    def _mqtt_client(self, protocol: str) -> aiomqtt.Client:
        if protocol == "3.1.1":
            return mqtt_client(
                self.settings.broker,
                identifier=self.settings.ingest.client_id,
                clean_session=False,
                timeout_s=MQTT_TIMEOUT_S,
            )
        connect = Properties(PacketTypes.CONNECT)
        connect.SessionExpiryInterval = SESSION_EXPIRY_S  # the persistent session: v5's clean_session=False
        connect.ReceiveMaximum = self.receive_maximum  # the broker's window of unacknowledged messages
        return mqtt_client(
            self.settings.broker,
            identifier=self.settings.ingest.client_id,
            timeout_s=MQTT_TIMEOUT_S,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=connect,
        )

    async def _read_loop(self) -> None:
        delay = BACKOFF_START_S
        while True:
            try:
                # A new client per connection: messages a closed connection left in aiomqtt's queue
                # carry that connection's packet ids; the broker sends them again on the new one.
                await self._session(self._mqtt_client(self.settings.ingest.mqtt_protocol))
            except aiomqtt.MqttError as exc:
                broker = self.settings.broker
                if self._broker_outage.lost("MQTT broker %s:%d lost (%s)", broker.host, broker.port, exc):
                    delay = BACKOFF_START_S
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
            finally:
                self.subscribed.clear()

    async def _session(self, client: aiomqtt.Client) -> None:
        """One connection: read until it drops (MqttError) or ingest stops.

        Connecting, subscribing and disconnecting each give up after MQTT_TIMEOUT_S with an MqttError;
        reading waits for messages as long as the connection lives (keepalive notices a dead one).
        """
        acknowledger = _manual_acknowledgement(client)
        self._connection += 1
        connection = self._connection
        try:
            async with client:
                self._acknowledger = acknowledger
                reporter = None
                if self._group is not None:
                    reporter = asyncio.create_task(self._report_to_group(client), name="ingest-group-reports")
                try:
                    await self._read_messages(client, connection)
                finally:
                    if reporter is not None:
                        await cancel_and_wait(reporter)
        finally:
            self._acknowledger = None
            self._unacked.clear()  # the broker sends these again on the next connection

    async def _read_messages(self, client: aiomqtt.Client, connection: int) -> None:
        subscription = self.settings.ingest.subscription(self.settings.uplink)
        await client.subscribe(subscription, qos=1)
        if self._group_topic is not None:
            await client.subscribe(f"{self._group_topic}/+", qos=1)  # every instance hears every report
        self.subscribed.set()
        log.info("subscribed to %s as %s", subscription, self.settings.ingest.client_id)
        self._broker_outage.back("MQTT broker %s:%d is back", self.settings.broker.host, self.settings.broker.port)
        async for message in client.messages:
            delivery = _Delivery(message.mid, message.qos, connection, asyncio.get_running_loop().time())
            self._unacked.append(delivery)
            topic = str(message.topic)
            if self._group_topic is not None and topic.startswith(f"{self._group_topic}/"):
                delivery.uplink = False
                await self._on_report(topic, _payload_bytes(message.payload))
            else:
                await self._on_message(topic, _payload_bytes(message.payload), delivery)
            self._acknowledge()
            if not self._room.is_set():
                self._counters["pauses"] += 1
                log.info(
                    "holding %d points (limit %d); taking no messages until the store catches up,"
                    " the broker queues meanwhile",
                    self._held(),
                    self.max_pending_points,
                )
                await self._room.wait()
                log.info("store caught up (%d points held); taking messages again", self._held())

    def _acknowledge(self) -> None:
        """Acknowledge, in arrival order, every delivery from the front whose points are all kept."""
        while self._unacked and self._unacked[0].done:
            delivery = self._unacked.popleft()
            if self._acknowledger is not None and delivery.qos > 0 and delivery.connection == self._connection:
                self._acknowledger.ack(delivery.mid, delivery.qos)
                if delivery.uplink:
                    self._counters["acks"] += 1
                    latency = asyncio.get_running_loop().time() - delivery.received
                    self._ack_latency = _timed(self._ack_latency, latency)

    async def _on_message(self, topic: str, payload: bytes, delivery: _Delivery) -> None:
        """The one boundary per message: whatever this message holds, it ends stored or dead-lettered.

        ``_admit`` decides; it queues nothing itself (it only counts and tells the sequence tracker).
        If it fails in a way nobody foresaw (a bug, not bad input: bad input has its reasons there),
        the message is kept whole as a dead letter naming the error, and the stream goes on.
        """
        self._counters["messages"] += 1
        received_at = datetime.now(UTC)
        try:
            chunk, letters = self._admit(topic, payload, received_at, delivery)
        except Exception as exc:
            log.exception("ingest failed on a message on %s; dead-lettering it whole", topic)
            reason = f"ingest failed on this message: {type(exc).__name__}: {exc}"
            chunk, letters = None, [DeadLetter(received_at, topic, None, None, reason, payload)]
        if letters:
            await self._dead_letter(letters)  # kept before the message can be acknowledged
        if chunk is not None:
            delivery.unwritten = len(chunk.points)
            self._pending.append(chunk)
            self._pending_points += len(chunk.points)
        self._arrived.set()
        self._update_room()

    def _admit(
        self, topic: str, payload: bytes, received_at: datetime, delivery: _Delivery
    ) -> tuple[_Chunk | None, list[DeadLetter]]:
        """Decode, check and map one message: the points to write (if any) and the dead letters to keep.

        The edge is the one the topic names: the broker's ACL lets each edge publish only there
        (deploy/mosquitto). A payload naming another edge is refused whole; a sample for equipment
        the asset model assigns to another gateway is refused on its own.

        A plain batch whose every sample becomes a line takes the fast path (``decode_plain``,
        ``LineEncoder``); any other message the reference path (``decode_batch``, ``admit_sample``),
        which gives each refusal its reason. Both end in the same points.
        """
        edge = edge_of(topic, self.settings.uplink.topic_prefix)
        if edge is None:
            not_uplink = not_an_uplink_topic(topic, self.settings.uplink.topic_prefix)
            return None, [DeadLetter(received_at, topic, None, None, not_uplink, payload)]
        plain = lines = None
        if self._line_encoder is not None:
            plain = decode_plain(payload, limits=self._wire_limits, now=received_at)
            lines = None if plain is None else self._line_encoder.lines(plain, edge)
        batch: PlainBatch | DecodedBatch
        if plain is not None and lines is not None:
            batch = plain
        else:
            try:
                batch = decode_batch(payload, limits=self._wire_limits, now=received_at)
            except WireFormatError as exc:
                return None, [DeadLetter(received_at, topic, edge, None, exc.reason, payload)]
        if (other := names_another_edge(batch.edge, edge)) is not None:
            self._counters["refused_batches"] += 1
            return None, [DeadLetter(received_at, topic, edge, batch.seq, other, payload)]
        if not self._check_sequence(edge, batch.seq, batch.fingerprint):
            original = self._in_progress.get((edge, batch.seq))
            delivery.after = original  # acknowledged once the first copy is stored, not before
            return None, []

        message = _Message(topic, edge, batch.seq, delivery, received_at)
        if isinstance(batch, PlainBatch):
            assert lines is not None
            self._counters["samples"] += len(lines)
            self._in_progress[(edge, batch.seq)] = delivery
            return _Chunk(lines, batch.samples, message), []
        return self._admit_samples(batch, message)

    def _admit_samples(self, batch: DecodedBatch, message: _Message) -> tuple[_Chunk | None, list[DeadLetter]]:
        """The reference path's points and dead letters for a decoded batch."""
        topic, edge, received_at = message.topic, message.edge, message.received_at
        sample_letter = LetterKind.SAMPLE
        letters = [
            DeadLetter(received_at, topic, edge, batch.seq, r.reason, r.payload, kind=sample_letter)
            for r in batch.rejected
        ]
        rejected_at = {r.index for r in batch.rejected}
        total = len(batch.samples) + len(batch.rejected)
        self._counters["samples"] += total
        indices = [i for i in range(total) if i not in rejected_at]
        points: list[Point | str] = []
        samples: list[Sample | PlainSample] = []
        for index, sample in zip(indices, batch.samples, strict=True):
            admitted: Point | str | Refused = admit_sample(sample, index, edge, self.assets)
            if isinstance(admitted, Point) and self._line_writer is not None:
                try:
                    admitted = encode_point(admitted)
                except StoreRejected as exc:  # what the store would refuse, refused here in its words
                    admitted = Refused(f"store rejected: {exc}")
            if isinstance(admitted, Refused):
                payload_json = json.dumps(sample_to_json(sample)).encode()
                letters.append(
                    DeadLetter(received_at, topic, edge, batch.seq, admitted.reason, payload_json, kind=sample_letter)
                )
            else:
                points.append(admitted)
                samples.append(sample)
        if not points:
            return None, letters
        self._in_progress[(edge, batch.seq)] = message.delivery
        return _Chunk(points, samples, message), letters

    def _check_sequence(self, edge: str, seq: int, fingerprint: Hashable) -> bool:
        """Count what the sequence number says; False for a duplicate, which is not written again.

        In a shared group each instance sees only some of an edge's batches, so what one instance
        sees says nothing of gaps: the group judges them together (``GroupSequence``; the reports
        and the count are ``_report_to_group``'s), and the batch is only recorded for it here.
        """
        check = self._sequences.observe(edge, seq, fingerprint)
        # In a group, gaps and late batches are the group's to judge, once every instance reported.
        late_in_group = (
            self._group is not None
            and check.verdict is not SeqVerdict.DUPLICATE
            and self._group.received(edge, seq, asyncio.get_running_loop().time())
        )
        if late_in_group:
            self._counters["seq_late"] += 1
            log.info("edge %s: seq %d arrived late and closes a gap", edge, seq)
        if check.verdict is SeqVerdict.GAP and self._group is None:
            self._counters["seq_gaps"] += check.missing
            self._warnings.warn(
                f"{edge}: sequence gap",
                "edge %s: %d batch(es) missing before seq %d (expected %s)",
                edge,
                check.missing,
                seq,
                check.expected,
            )
        elif check.verdict is SeqVerdict.DUPLICATE:
            self._counters["duplicates"] += 1
            log.debug("edge %s: seq %d received before; a duplicate, not written again", edge, seq)
            return False
        elif check.verdict is SeqVerdict.REUSED:
            self._counters["seq_reused"] += 1
            self._warnings.warn(
                f"{edge}: sequence reused",
                "edge %s: seq %d came before with other samples; the edge's numbering was reset? writing it",
                edge,
                seq,
            )
        elif check.verdict is SeqVerdict.REPEAT:
            self._counters["seq_repeats"] += 1
            log.debug("edge %s: seq %d seen long ago; writing it again (idempotent)", edge, seq)
        elif check.verdict is SeqVerdict.LATE and self._group is None:
            self._counters["seq_late"] += 1
            log.info("edge %s: seq %d arrived late and closes a gap", edge, seq)
        return True

    async def _report_to_group(self, client: aiomqtt.Client) -> None:
        """Every report interval: tell the group which numbers this instance received, count settled gaps."""
        assert self._group is not None and self._group_topic is not None
        topic = f"{self._group_topic}/{self.settings.ingest.client_id}"
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.ingest.sequence_report_interval_s)
            if numbers := self._group.outgoing():
                try:
                    await client.publish(topic, encode_report(self.settings.ingest.client_id, numbers), qos=1)
                except aiomqtt.MqttError as exc:
                    # The connection is going; the reader notices and reconnects. Report it with the next.
                    log.debug("could not report sequence numbers to the group: %s", exc)
                    for edge, listed in numbers.items():
                        self._group.outgoing_again(edge, listed)
            for gap in self._group.settle(loop.time()):
                self._counters["seq_gaps"] += gap.missing
                self._warnings.warn(
                    f"{gap.edge}: sequence gap",
                    "edge %s: %d batch(es) missing between seq %d and %d (no instance of group %s received them)",
                    gap.edge,
                    gap.missing,
                    gap.after,
                    gap.before,
                    self.settings.ingest.shared_group,
                )

    async def _on_report(self, topic: str, payload: bytes) -> None:
        """Another instance's report of the numbers it received; one that cannot be used is dead-lettered."""
        assert self._group is not None
        try:
            instance, numbers = decode_report(payload, self.settings.ingest.max_payload_bytes)
        except ReportError as exc:
            self._counters["seq_reports_refused"] += 1
            await self._dead_letter([DeadLetter(datetime.now(UTC), topic, None, None, str(exc), payload)])
            return
        if instance == self.settings.ingest.client_id:
            return  # our own, heard back
        self._counters["seq_reports"] += 1
        self._group.heard(numbers, asyncio.get_running_loop().time())

    async def _dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """Keep the letters, retrying while the dead-letter file is unusable (the reader waits meanwhile)."""
        for letter in letters:
            where = letter.edge if letter.edge is not None else letter.topic
            kind = _reason_kind(letter.reason)
            known = kind in self._dead_letter_kinds or len(self._dead_letter_kinds) < MAX_REASON_KINDS
            self._dead_letter_kinds[kind if known else "other"] += 1
            self._warnings.warn(
                f"{where}: {kind}",
                "dead letter from %s (seq %s): %s",
                where,
                letter.seq,
                letter.reason,
            )
        delay = BACKOFF_START_S
        while True:
            try:
                await self.dead_letters.add(letters)
            except StoreError as exc:
                unusable = "dead-letter store unusable; holding the stream until it is back: %s"
                self._dead_letters_outage.lost(unusable, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            break
        self._dead_letters_outage.back("dead-letter store is back")
        self._counters["dead_letters"] += len(letters)

    # --- writing -------------------------------------------------------------------------------

    def _held(self) -> int:
        return self._pending_points + self._in_flight

    def _update_room(self) -> None:
        held = self._held()
        if held >= self.max_pending_points or self._leaving:
            self._room.clear()
        elif held <= self.max_pending_points // 2:
            self._room.set()

    def _more_can_arrive(self) -> bool:
        # The broker sends no more until ingest acknowledges some of what it holds unacknowledged.
        return len(self._unacked) < self.receive_maximum

    async def _next_batch(self) -> list[_Chunk] | None:
        """Up to batch_max_points points, waiting at most flush_interval_s for a batch to fill.

        It does not wait when no more can arrive: the broker's in-flight window is full.
        """
        while not self._pending:
            if self._closing:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.flush_interval_s
        while (
            self._pending_points < self.batch_max_points
            and not (self._closing or self._leaving)
            and self._more_can_arrive()
        ):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                break
        batch: list[_Chunk] = []
        size = 0
        while self._pending and size < self.batch_max_points:
            chunk = self._pending.popleft()
            room = self.batch_max_points - size
            if len(chunk.points) > room:
                chunk, rest = chunk.split(room)
                self._pending.appendleft(rest)
            batch.append(chunk)
            size += len(chunk.points)
        self._pending_points -= size
        self._in_flight = size
        return batch

    async def _write_loop(self) -> None:
        while (batch := await self._next_batch()) is not None:
            await self._deliver(batch)
            self._in_flight = 0
            self._update_room()
            self._wrote.set()

    async def _deliver(self, batch: list[_Chunk]) -> None:
        """Write the batch; retry while the store is away; if it rejects some points, isolate them."""
        points: list[Point | str] = []
        for chunk in batch:
            points.extend(chunk.points)
        delay = BACKOFF_START_S
        while True:
            started = asyncio.get_running_loop().time()
            try:
                await self._write(points)
            except StoreRejected:
                one_by_one = [
                    (point, sample, chunk.message)
                    for chunk in batch
                    for point, sample in zip(chunk.points, chunk.samples, strict=True)
                ]
                await self._deliver_isolating(one_by_one)
                return
            except StoreError as exc:
                self._store_unavailable(exc)
                await asyncio.sleep(_retry_delay(exc, delay))
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            self._written(len(points), started)
            for chunk in batch:
                self._kept(chunk.message, len(chunk.points))
            self._acknowledge()
            return

    async def _deliver_isolating(self, batch: list[_Pending]) -> None:
        """Write a batch the store rejected in halves until the rejected points are isolated; each of
        those is dead-lettered with the store's reason, the rest written (retrying while the store is away)."""
        parts = [batch]  # a stack: halves of a rejected part go back on it, left half on top
        delay = BACKOFF_START_S
        while parts:
            part = parts[-1]
            started = asyncio.get_running_loop().time()
            try:
                await self._write(list(map(_POINT_OF, part)))
            except StoreRejected as exc:
                parts.pop()
                if len(part) > 1:
                    middle = len(part) // 2
                    parts.extend((part[middle:], part[:middle]))
                else:
                    await self._dead_letter_rejected(part[0], exc)
                    self._kept(part[0][2], 1)
                    self._acknowledge()
                continue
            except StoreError as exc:
                self._store_unavailable(exc)
                await asyncio.sleep(_retry_delay(exc, delay))
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            parts.pop()
            self._written(len(part), started)
            for message, count in Counter(map(_MESSAGE_OF, part)).items():
                self._kept(message, count)
            self._acknowledge()

    def _store_unavailable(self, exc: StoreError) -> None:
        # Unavailable, or refusing our credentials: neither is the data's fault, so hold it.
        self._store_outage.lost("store %s unavailable; holding points, retrying: %s", self.store.backend, exc)
        self._counters["write_retries"] += 1

    def _written(self, count: int, started: float) -> None:
        self._write_time = _timed(self._write_time, asyncio.get_running_loop().time() - started)
        self._counters["points_written"] += count
        if self._store_outage.ongoing:  # (the count of points held is worked out only then)
            self._store_outage.back("store %s is back; %d points held", self.store.backend, self._held())

    async def _write(self, points: list[Point | str]) -> None:
        # Every queued point is a line when the store takes lines, a Point otherwise (``_admit``).
        if self._line_writer is not None:
            await self._line_writer.write_lines(cast(list[str], points))
        else:
            await self.store.write(cast(list[Point], points))

    def _kept(self, message: _Message, count: int) -> None:
        """``count`` points of ``message`` are in the store or the dead letters (``_acknowledge`` next)."""
        delivery = message.delivery
        delivery.unwritten -= count
        if delivery.unwritten == 0:
            self._in_progress.pop((message.edge, message.seq), None)

    async def _dead_letter_rejected(self, pending: _Pending, exc: StoreRejected) -> None:
        _, sample, message = pending
        if isinstance(sample, PlainSample):
            payload = msgspec.json.encode(sample)  # the sample as it came (UNSET keys left out)
        else:
            payload = json.dumps(sample_to_json(sample)).encode()
        reason = f"store rejected: {exc}"
        letter = DeadLetter(
            message.received_at,
            message.topic,
            message.edge,
            message.seq,
            reason,
            payload,
            kind=LetterKind.SAMPLE,
        )
        await self._dead_letter([letter])
