"""MQTT meter collector: energy meters publish JSON readings; each configured field becomes a sample.

The collector subscribes (QoS 1) to every ``MeterSource`` topic on the meter broker, takes each
signal from the payload by its dotted path (``energy.active_import_kwh``) and the time from
``timestamp_field`` (ISO-8601 with an offset or ``Z``, or epoch seconds), else gateway time.

A malformed payload (not JSON, a missing path, a value that is not a number, a bad timestamp) is
counted and logged with the topic and the reason; the stream carries on. Fields of the same
payload that are fine are still forwarded, so one broken field does not cost the good ones.

The MQTT session is persistent (fixed client id, clean_session off), so readings published while
the agent restarts are queued by the broker and delivered when it is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiomqtt
from pydantic import ValidationError

from core.errors import ConfigError
from core.mqtt import check_broker, mqtt_client
from core.settings import BrokerSettings, MeterSource
from core.wire import Sample, TimestampSource
from edge.buffer import SampleSink
from edge.errors import UnusableReading
from edge.lifecycle import BackgroundComponent
from edge.reconnect import Backoff, LinkState

logger = logging.getLogger(__name__)

# A topic with a malformed payload is logged at most this often; every occurrence is counted.
MALFORMED_LOG_INTERVAL_S = 60.0


def extract_path(document: Any, path: str) -> Any:
    """The value at a dotted path (``energy.active_import_kwh``; list items by index: ``phases.0.kw``)."""
    node = document
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise UnusableReading(f"no field {'.'.join(walked)!r}")
    return node


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 text with ``Z`` or an offset, or epoch seconds as a JSON number -> aware UTC datetime."""
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise UnusableReading(f"timestamp {value!r} is not ISO-8601") from None
        if ts.tzinfo is None:
            raise UnusableReading(f"timestamp {value!r} has no time zone (expected Z or an offset)")
        return ts.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise UnusableReading(f"epoch timestamp {value!r} is out of range") from None
    raise UnusableReading(f"timestamp must be ISO-8601 text or epoch seconds, got {value!r}")


@dataclass
class MeterReading:
    """What one payload yielded: the good samples and, per bad field, why it was not used."""

    samples: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_meter_payload(meter: MeterSource, payload: bytes, received_at: datetime) -> MeterReading:
    """Turn one meter message into samples. A payload unusable as a whole raises UnusableReading."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnusableReading(f"payload is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UnusableReading(f"payload must be a JSON object, got {type(document).__name__}")
    if meter.timestamp_field is None:
        ts, ts_source = received_at, TimestampSource.GATEWAY
    else:
        ts, ts_source = parse_timestamp(extract_path(document, meter.timestamp_field)), TimestampSource.DEVICE

    reading = MeterReading()
    for signal, path in meter.fields.items():
        try:
            value = extract_path(document, path)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise UnusableReading(f"{path} must be a finite number, got {value!r}")
            reading.samples.append(
                Sample(equipment=meter.equipment, signal=signal, ts=ts, value=value, ts_source=ts_source)
            )
        except UnusableReading as exc:
            reading.problems.append(f"{signal}: {exc.reason}")
        except ValidationError as exc:
            reading.problems.append(f"{signal}: {exc.errors(include_url=False)[0]['msg']}")
    return reading


@dataclass
class MeterCounters:
    messages: int = 0
    samples: int = 0
    malformed: int = 0
    connects: int = 0


class MeterCollector(BackgroundComponent):
    """Subscribes to the meter topics and puts a sample per configured field into the sink."""

    def __init__(
        self,
        client_id: str,
        meters: list[MeterSource],
        broker: BrokerSettings,
        sink: SampleSink,
        *,
        backoff: Backoff | None = None,
    ):
        self._client_id = client_id
        self.meters = list(meters)
        for meter in self.meters:
            try:
                aiomqtt.Wildcard(meter.topic)
            except ValueError:
                raise ConfigError(
                    "edge settings",
                    f"not a valid MQTT topic filter: {meter.topic!r}",
                    field=f"meters[{meter.equipment}].topic",
                ) from None
        if self.meters:
            check_broker(broker)
        self._broker = broker
        self._sink = sink
        self._backoff = backoff or Backoff(0.5, 10.0)
        self.counters = MeterCounters()
        self.link = LinkState(logger, f"meter broker {broker.host}:{broker.port}")
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def _task_name(self) -> str:
        return "meters"

    def _wanted(self) -> bool:
        return bool(self.meters)

    async def _run(self) -> None:
        topics = sorted({meter.topic for meter in self.meters})
        while True:
            try:
                async with self._client() as client:
                    for topic in topics:
                        await client.subscribe(topic, qos=1)
                    self.counters.connects += 1
                    self.link.up()
                    self._backoff.reset()
                    async for message in client.messages:
                        self.handle_message(message.topic, _payload_bytes(message.payload), datetime.now(UTC))
            except aiomqtt.MqttError as exc:
                self.link.down(str(exc))
            await asyncio.sleep(self._backoff.next_delay())

    def _client(self) -> aiomqtt.Client:
        # Named per attempt: the settings may have been re-pointed since the last one.
        self.link.name = f"meter broker {self._broker.host}:{self._broker.port}"
        return mqtt_client(self._broker, identifier=self._client_id, clean_session=False)

    def handle_message(self, topic: aiomqtt.Topic | str, payload: bytes, received_at: datetime) -> None:
        """One meter message: samples to the sink, problems counted and logged."""
        topic = aiomqtt.Topic(str(topic))
        self.counters.messages += 1
        for meter in self.meters:
            if not topic.matches(meter.topic):
                continue
            try:
                reading = parse_meter_payload(meter, payload, received_at)
            except UnusableReading as exc:
                self._malformed(topic.value, meter.equipment, exc.reason)
                continue
            if reading.problems:
                self._malformed(topic.value, meter.equipment, "; ".join(reading.problems))
            for sample in reading.samples:
                self.counters.samples += 1
                self._sink.put(sample)

    def _malformed(self, topic: str, equipment: str, reason: str) -> None:
        self.counters.malformed += 1
        now = time.monotonic()
        last = self._last_logged.get(topic)
        if last is not None and now - last < MALFORMED_LOG_INTERVAL_S:
            self._suppressed[topic] = self._suppressed.get(topic, 0) + 1
            logger.debug("malformed meter payload on %s (%s): %s", topic, equipment, reason)
            return
        self._last_logged[topic] = now
        also = self._suppressed.pop(topic, 0)
        logger.warning(
            "malformed meter payload on %s (%s): %s%s",
            topic,
            equipment,
            reason,
            f" ({also} more since the last report)" if also else "",
        )


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()
