"""MQTT meter collector: meters publish readings on topics; each configured field becomes a sample.

One ``MeterCollector`` serves every ``MeterSource`` of the edge over one MQTT session to the meter
broker (persistent: fixed client id, clean_session off, so readings published while the agent
restarts wait in the broker). ``check_meter_source`` compiles a source (topic filter, templates,
JSON paths, clock: ``edge.meter_addressing``, ``edge.meter_time``) at start and for
``factory check-config``; a mistake there is a ``ConfigError`` naming the field.

What a message becomes (docs/meters.md):

* on a source's topic: one sample per field, at the device's time (``edge.meter_time``) or the
  gateway's; a field that cannot be used is a counted rejection with its reason while the good
  fields of the same payload still go out; a payload that cannot be read at all (too large, not
  UTF-8, not JSON, nested too deep, a topic that makes no equipment id) is one counted rejection;
* on a source's availability topic (the meter's last will): the signal ``available``, 1.0 for
  Online and 0.0 for Offline, at gateway time;
* on a topic no source reads (a source's ``ignore`` filters, a device not in ``equipment_map``,
  subscriptions left in the persistent session by an older configuration), and a JSON payload
  with none of the source's fields on a topic that has not delivered a reading yet (a device's
  status or info topic under a broad filter): counted as ignored, said once at INFO, else DEBUG.

``MeterCollector.handle_message`` is the one boundary per message: whatever goes wrong with one
message for one source is counted under a reason and logged once per interval with the number of
repeats, and the next message is read. Nothing a payload holds can end the collector's task.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import aiomqtt
from pydantic import ValidationError

from core.errors import ConfigError
from core.mqtt import check_broker, mqtt_client
from core.once import RepeatedWarnings
from core.settings import BrokerSettings, MeterSource
from core.wire import INT64_MAX, INT64_MIN, Sample, TimestampSource
from edge.buffer import SampleSink
from edge.errors import UnusableReading
from edge.lifecycle import BackgroundComponent
from edge.meter_addressing import (
    JsonPath,
    Template,
    TopicFilter,
    compile_json_path,
    compile_template,
    compile_topic_filter,
)
from edge.meter_time import DeviceClock, StampedTime
from edge.reconnect import Backoff, LinkState

logger = logging.getLogger(__name__)

# A repeated problem of a source (same reason) is logged at most this often; every one is counted, and
# the count of those not logged follows when the interval is over (core.once.RepeatedWarnings).
MALFORMED_LOG_INTERVAL_S = 60.0
RETAINED_FLAG = "retained"
AVAILABILITY_ONLINE, AVAILABILITY_OFFLINE = 1.0, 0.0
# Bounds on what hostile topics can make the collector remember (one entry per equipment id).
MAX_TRACKED_EQUIPMENT = 10_000
_EQUIPMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SIGNAL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_RAW = 128  # Sample.raw


class MeterRejection(UnusableReading):
    """A message, or one field of it, that does not become a sample; ``kind`` is the counter's reason."""

    def __init__(self, kind: str, reason: str):
        self.kind = kind
        super().__init__(reason)

    def __str__(self) -> str:
        return self.reason


class UnknownDevice(Exception):
    """A topic of a device the source's ``equipment_map`` does not list: ignored, not an error."""


# --- compiled sources ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldPlan:
    signal: Template
    path: JsonPath
    scale: float


@dataclass(frozen=True, slots=True)
class AvailabilityPlan:
    topic: TopicFilter
    path: JsonPath | None
    online: frozenset[str]
    offline: frozenset[str]
    signal: str


@dataclass(frozen=True, slots=True)
class MeterPlan:
    """A ``MeterSource`` compiled: what ``check_meter_source`` returns and the collector reads with."""

    source: MeterSource
    topic: TopicFilter
    ignore: tuple[TopicFilter, ...]
    equipment: Template
    fields: tuple[FieldPlan, ...]
    time_path: JsonPath | None
    clock: DeviceClock
    availability: AvailabilityPlan | None

    @property
    def label(self) -> str:
        return self.source.label

    def equipment_of(self, topic: TopicFilter, captured: tuple[str, ...]) -> str:
        """The equipment id a topic names; MeterRejection if it cannot be one, UnknownDevice if unmapped."""
        device = self.equipment.render(topic, captured)
        if self.source.equipment_map:
            if device not in self.source.equipment_map:
                raise UnknownDevice(device)
            return self.source.equipment_map[device]
        if not _EQUIPMENT_ID.match(device):
            raise MeterRejection("bad_equipment", f"topic makes the equipment id {_shown(device)}, not a valid id")
        return device


def check_meter_source(source: MeterSource, where: str = "meters[0]") -> MeterPlan:
    """Compile a source, or raise ConfigError naming the field (``where`` is its place in the settings)."""

    def fail(name: str, exc: ValueError) -> ConfigError:
        return ConfigError("edge settings", str(exc), field=f"{where}.{name}")

    try:
        topic = compile_topic_filter(source.topic)
    except ValueError as exc:
        raise fail("topic", exc) from None
    ignore: list[TopicFilter] = []
    for n, text in enumerate(source.ignore):
        try:
            ignore.append(compile_topic_filter(text))
        except ValueError as exc:
            raise fail(f"ignore[{n}]", exc) from None
    try:
        equipment = compile_template(source.equipment)
        equipment.check(topic)
    except ValueError as exc:
        raise fail("equipment", exc) from None
    if equipment.is_plain and not source.equipment_map and not _EQUIPMENT_ID.match(source.equipment):
        raise fail("equipment", ValueError(f"{source.equipment!r} is not an equipment id"))
    for device, equipment_id in source.equipment_map.items():
        if not _EQUIPMENT_ID.match(equipment_id):
            raise fail(f"equipment_map.{device}", ValueError(f"{equipment_id!r} is not an equipment id"))
    fields: list[FieldPlan] = []
    for signal in source.fields:
        spec = source.field_spec(signal)
        try:
            name = compile_template(signal)
            name.check(topic)
            if name.is_plain and not _SIGNAL_NAME.match(signal):
                raise ValueError(f"signal {signal!r} must be lower_snake_case (a letter first, at most 64 characters)")
        except ValueError as exc:
            raise fail(f"fields.{signal}", exc) from None
        try:
            fields.append(FieldPlan(name, compile_json_path(spec.path), spec.scale))
        except ValueError as exc:
            raise fail(f"fields.{signal}.path", exc) from None
    try:
        time_path = compile_json_path(source.timestamp_field) if source.timestamp_field is not None else None
    except ValueError as exc:
        raise fail("timestamp_field", exc) from None
    availability = None
    if (will := source.availability) is not None:
        try:
            will_topic = compile_topic_filter(will.topic)
        except ValueError as exc:
            raise fail("availability.topic", exc) from None
        try:
            equipment.check(will_topic)
        except ValueError as exc:
            raise fail("availability.topic", ValueError(f"equipment template: {exc}")) from None
        try:
            will_path = compile_json_path(will.path) if will.path is not None else None
        except ValueError as exc:
            raise fail("availability.path", exc) from None
        online = frozenset(w.strip() for w in will.online)
        offline = frozenset(w.strip() for w in will.offline)
        availability = AvailabilityPlan(will_topic, will_path, online, offline, will.signal)
    return MeterPlan(
        source, topic, tuple(ignore), equipment, tuple(fields), time_path, DeviceClock.of(source), availability
    )


# --- one payload -----------------------------------------------------------------------------------


class _HugeInteger:
    """A JSON integer too long to be a reading, kept unparsed so the field gets a precise reason."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits


def _parse_int(text: str) -> int | _HugeInteger:
    # int() of a 4,301-digit string raises for the whole payload, and long ones cost quadratic time.
    return int(text) if len(text) <= 20 else _HugeInteger(len(text.lstrip("-")))


def decode_payload(payload: bytes, max_bytes: int, max_depth: int) -> Any:
    """The JSON document of a payload, within the source's bounds; MeterRejection says what is wrong."""
    if len(payload) > max_bytes:
        raise MeterRejection("too_large", f"payload of {len(payload):,} bytes is over the limit of {max_bytes:,}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MeterRejection(
            "not_utf8", f"payload is not UTF-8 (byte {payload[exc.start]:#04x} at {exc.start})"
        ) from None
    text = text.removeprefix("\ufeff")
    try:
        document = json.loads(text, parse_int=_parse_int)
    except RecursionError:
        raise MeterRejection("too_deep", f"payload is nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError
        raise MeterRejection("not_json", f"payload is not JSON: {exc}") from None
    # Counting brackets (text, in C) bounds the depth; only a payload with many is walked.
    if (text.count("[") + text.count("{")) > max_depth and _depth(document) > max_depth:
        raise MeterRejection("too_deep", f"payload is nested deeper than {max_depth} levels")
    return document


def _depth(document: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node)
    return deepest


def reading_value(value: Any, scale: float) -> int | float:
    """A JSON value as a reading: a finite number within int64, times ``scale``; else MeterRejection."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, _HugeInteger):
            raise MeterRejection("huge_int", f"an integer of {value.digits} digits does not fit in int64")
        raise MeterRejection("not_a_number", f"expected a number, got {_json_kind(value)}")
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise MeterRejection("huge_int", f"integer {value} does not fit in int64")
    if isinstance(value, float) and not math.isfinite(value):
        raise MeterRejection("not_finite", f"{value} is not a finite number")
    if scale == 1.0:
        return value
    scaled = value * scale
    if not math.isfinite(scaled):
        raise MeterRejection("not_finite", f"{value} x {scale} is not a finite number")
    return scaled


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {_shown(value)}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _shown(text: str, limit: int = 64) -> str:
    return repr(text if len(text) <= limit else f"{text[:limit]}…")


@dataclass
class MeterReading:
    """What one payload yielded: the good samples, the time they carry, and why each bad field was not used."""

    samples: list[Sample] = field(default_factory=list)
    problems: list[MeterRejection] = field(default_factory=list)
    time: StampedTime | None = None


def read_payload(
    plan: MeterPlan,
    equipment: str,
    topic: TopicFilter,
    captured: tuple[str, ...],
    payload: bytes,
    received_at: datetime,
    *,
    after: datetime | None = None,
    retained: bool = False,
) -> MeterReading:
    """Turn one reading message into samples. A payload unusable as a whole raises MeterRejection."""
    source = plan.source
    document = decode_payload(payload, source.max_payload_bytes, source.max_depth)
    if plan.time_path is None:
        stamped = StampedTime(received_at, TimestampSource.GATEWAY)
    else:
        try:
            device_time = plan.time_path.extract(document)
        except KeyError:
            device_time = None
        stamped = plan.clock.read(device_time, received_at, after)
    flags = (*stamped.flags, RETAINED_FLAG) if retained else stamped.flags

    reading = MeterReading(time=stamped)
    for spec in plan.fields:
        signal = spec.signal.text
        try:
            signal = spec.signal.render(topic, captured)
            if not _SIGNAL_NAME.match(signal):
                raise MeterRejection("bad_signal", f"the topic makes the signal name {_shown(signal)}")
            try:
                raw_value = spec.path.extract(document)
            except KeyError as missing:
                raise MeterRejection("field_missing", f"no field {missing.args[0]!r}") from None
            value = reading_value(raw_value, spec.scale)
            reading.samples.append(_sample(equipment, signal, value, stamped, flags))
        except MeterRejection as exc:
            reading.problems.append(MeterRejection(exc.kind, f"{signal}: {exc.reason}"))
    return reading


def _sample(
    equipment: str, signal: str, value: Any, stamped: StampedTime, flags: tuple[str, ...], raw: str | None = None
) -> Sample:
    try:
        return Sample(
            equipment=equipment,
            signal=signal,
            ts=stamped.ts,
            value=value,
            raw=raw,
            ts_source=stamped.source,
            flags=flags,
        )
    except ValidationError as exc:
        raise MeterRejection("invalid_value", exc.errors(include_url=False)[0]["msg"]) from None


def parse_meter_payload(
    meter: MeterSource, payload: bytes, received_at: datetime, *, topic: str | None = None
) -> MeterReading:
    """One payload of ``meter`` on ``topic`` (default: the source's filter itself) as samples."""
    plan = check_meter_source(meter)
    name = topic if topic is not None else meter.topic
    captured = plan.topic.match(name)
    if captured is None:
        raise MeterRejection("not_a_reading", f"{name!r} is not a topic of {meter.topic!r}")
    equipment = plan.equipment_of(plan.topic, captured)
    return read_payload(plan, equipment, plan.topic, captured, payload, received_at)


def read_availability(
    plan: AvailabilityPlan,
    equipment: str,
    payload: bytes,
    received_at: datetime,
    *,
    max_bytes: int,
    max_depth: int,
    retained: bool = False,
) -> Sample:
    """A last-will message (Online/Offline) as the availability signal: 1.0 online, 0.0 offline."""
    if plan.path is None:
        if len(payload) > max_bytes:
            raise MeterRejection("too_large", f"payload of {len(payload):,} bytes is over the limit of {max_bytes:,}")
        try:
            word: Any = payload.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise MeterRejection("not_utf8", f"payload is not UTF-8 (byte {payload[exc.start]:#04x})") from None
    else:
        try:
            word = plan.path.extract(decode_payload(payload, max_bytes, max_depth))
        except KeyError as missing:
            raise MeterRejection("field_missing", f"no field {missing.args[0]!r}") from None
        if isinstance(word, bool):
            word = "true" if word else "false"
        elif isinstance(word, int | str) and not isinstance(word, _HugeInteger):
            word = str(word).strip()
        else:
            raise MeterRejection("availability_unknown", f"availability must be a word, got {_json_kind(word)}")
    if word in plan.online:
        value = AVAILABILITY_ONLINE
    elif word in plan.offline:
        value = AVAILABILITY_OFFLINE
    else:
        raise MeterRejection(
            "availability_unknown", f"{_shown(word)} is neither online ({', '.join(sorted(plan.online))}) nor offline"
        )
    stamped = StampedTime(received_at, TimestampSource.GATEWAY)
    flags = (RETAINED_FLAG,) if retained else ()
    return _sample(equipment, plan.signal, value, stamped, flags, raw=word[:_MAX_RAW])


# --- the collector ---------------------------------------------------------------------------------


@dataclass
class MeterCounters:
    messages: int = 0
    samples: int = 0
    malformed: int = 0  # messages with at least one rejection (whole or a field)
    ignored: int = 0  # messages no source reads (other topics of a device, unmapped devices)
    availability: int = 0  # availability samples (also in samples)
    connects: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # by reason: not_json, not_finite, ...
    ts_replaced: dict[str, int] = field(default_factory=dict)  # device times replaced by gateway time, by reason


class MeterCollector(BackgroundComponent):
    """Subscribes to every meter source's topics and puts a sample per usable field into the sink."""

    def __init__(
        self,
        client_id: str,
        meters: Iterable[MeterSource],
        broker: BrokerSettings,
        sink: SampleSink,
        *,
        backoff: Backoff | None = None,
    ):
        self._client_id = client_id
        self.meters = list(meters)
        self.plans = [check_meter_source(meter, f"meters[{n}]") for n, meter in enumerate(self.meters)]
        if self.meters:
            check_broker(broker)
        self._broker = broker
        self._sink = sink
        self._backoff = backoff or Backoff(0.5, 10.0)
        self.counters = MeterCounters()
        self.link = LinkState(logger, f"meter broker {broker.host}:{broker.port}")
        self._warnings = RepeatedWarnings(logger, MALFORMED_LOG_INTERVAL_S)
        self._last_device_time: dict[tuple[int, str], datetime] = {}
        self._unknown_devices: set[tuple[int, str]] = set()
        # Topics that have delivered a reading: from then on a payload without any field is a rejection.
        self._reading_topics: set[str] = set()
        self._said_not_a_reading: set[int] = set()

    def subscriptions(self) -> dict[str, int]:
        """Topic filter -> QoS the collector asks the broker for.

        A filter that another one covers is left out (its QoS raised onto the wider one): the broker
        would deliver a message once per matching subscription, and the reading would be read twice.
        """
        qos: dict[str, int] = {}
        filters: dict[str, TopicFilter] = {}
        for plan in self.plans:
            for topic in [plan.topic] + ([plan.availability.topic] if plan.availability is not None else []):
                filters[topic.subscription] = compile_topic_filter(topic.subscription)
                qos[topic.subscription] = max(qos.get(topic.subscription, 0), plan.source.qos)
        wanted: dict[str, int] = {}
        for text, topic in filters.items():
            wider = [t for t, f in filters.items() if t != text and f.covers(topic) and not topic.covers(f)]
            if not wider:
                wanted[text] = max(wanted.get(text, 0), qos[text])
        for text, topic in filters.items():
            if text not in wanted:
                for t in wanted:
                    if filters[t].covers(topic):
                        wanted[t] = max(wanted[t], qos[text])
        return dict(sorted(wanted.items()))

    def _task_name(self) -> str:
        return "meters"

    def _wanted(self) -> bool:
        return bool(self.meters)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        self._warnings.flush()  # repeats counted since their last warning, said before the collector goes

    async def _run(self) -> None:
        subscriptions = self.subscriptions()
        while True:
            try:
                async with self._client() as client:
                    for topic, qos in subscriptions.items():
                        await client.subscribe(topic, qos=qos)
                    self.counters.connects += 1
                    self.link.up()
                    self._backoff.reset()
                    async for message in client.messages:
                        self.handle_message(
                            message.topic, _payload_bytes(message.payload), datetime.now(UTC), retained=message.retain
                        )
            except aiomqtt.MqttError as exc:
                self.link.down(str(exc))
            await asyncio.sleep(self._backoff.next_delay())

    def _client(self) -> aiomqtt.Client:
        # Named per attempt: the settings may have been re-pointed since the last one.
        self.link.name = f"meter broker {self._broker.host}:{self._broker.port}"
        return mqtt_client(self._broker, identifier=self._client_id, clean_session=False)

    def handle_message(
        self, topic: aiomqtt.Topic | str, payload: bytes, received_at: datetime, *, retained: bool = False
    ) -> None:
        """One meter message through every source it concerns; see the module docstring."""
        name = str(topic)
        self.counters.messages += 1
        used = False
        for index, plan in enumerate(self.plans):
            # The boundary: whatever this message does to this source stays with this message.
            try:
                used |= self._through(index, plan, name, payload, received_at, retained)
            except MeterRejection as exc:
                used = True
                self._rejected(plan, name, exc.kind, exc.reason)
            except Exception as exc:  # a bug met by one message must not end the collector: counted, logged
                used = True
                self._rejected(plan, name, "unexpected", f"{type(exc).__name__}: {exc}", exc_info=exc)
        if not used:
            self.counters.ignored += 1
            logger.debug("meter message on %s: no source reads this topic; ignored", name)

    def _through(
        self, index: int, plan: MeterPlan, name: str, payload: bytes, received_at: datetime, retained: bool
    ) -> bool:
        """Read one message as ``plan``'s availability or reading; False if it is not the source's.

        The availability topic is never a reading, even under a reading filter as broad as ``tele/+/#``.
        """
        will = plan.availability
        if will is not None and (will_captured := will.topic.match(name)) is not None:
            try:
                equipment = plan.equipment_of(will.topic, will_captured)
            except UnknownDevice as unknown:
                self._unknown_device(index, plan, name, str(unknown))
                return False
            sample = read_availability(
                will,
                equipment,
                payload,
                received_at,
                max_bytes=plan.source.max_payload_bytes,
                max_depth=plan.source.max_depth,
                retained=retained,
            )
            self.counters.availability += 1
            self._put(sample)
            return True
        captured = plan.topic.match(name)
        if captured is None or any(f.match(name) is not None for f in plan.ignore):
            return False
        return self._reading(index, plan, name, captured, payload, received_at, retained)

    def _reading(
        self,
        index: int,
        plan: MeterPlan,
        name: str,
        captured: tuple[str, ...],
        payload: bytes,
        received_at: datetime,
        retained: bool,
    ) -> bool:
        try:
            equipment = plan.equipment_of(plan.topic, captured)
        except UnknownDevice as unknown:
            self._unknown_device(index, plan, name, str(unknown))
            return False
        key = (index, equipment)
        reading = read_payload(
            plan,
            equipment,
            plan.topic,
            captured,
            payload,
            received_at,
            after=self._last_device_time.get(key),
            retained=retained,
        )
        if not reading.samples and all(p.kind == "field_missing" for p in reading.problems):
            if name not in self._reading_topics:
                self._not_a_reading(index, plan, name)
                return False
        elif reading.samples and len(self._reading_topics) < MAX_TRACKED_EQUIPMENT:
            self._reading_topics.add(name)
        stamped = reading.time
        if stamped is not None and stamped.fallback is not None:
            kind = stamped.fallback.kind
            self.counters.ts_replaced[kind] = self.counters.ts_replaced.get(kind, 0) + 1
            self._warnings.warn(
                f"{plan.label}: {kind}",
                "meter time on %s (%s) replaced by gateway time: %s",
                name,
                equipment,
                stamped.fallback.detail,
            )
        elif stamped is not None and stamped.source is TimestampSource.DEVICE:
            if len(self._last_device_time) >= MAX_TRACKED_EQUIPMENT and key not in self._last_device_time:
                self._last_device_time.clear()  # only hostile topics get here; folds are then read by the clock
            self._last_device_time[key] = stamped.ts
        for problem in reading.problems:
            self._rejected(plan, name, problem.kind, problem.reason, count_message=False)
        if reading.problems:
            self.counters.malformed += 1
        for sample in reading.samples:
            self._put(sample)
        return True

    def _put(self, sample: Sample) -> None:
        self.counters.samples += 1
        self._sink.put(sample)

    def _rejected(
        self,
        plan: MeterPlan,
        name: str,
        kind: str,
        reason: str,
        *,
        count_message: bool = True,
        exc_info: BaseException | None = None,
    ) -> None:
        self.counters.rejected[kind] = self.counters.rejected.get(kind, 0) + 1
        if count_message:
            self.counters.malformed += 1
        self._warnings.warn(
            f"{plan.label}: {kind}", "malformed meter payload on %s: %s", name, reason, exc_info=exc_info
        )

    def _not_a_reading(self, index: int, plan: MeterPlan, name: str) -> None:
        if index in self._said_not_a_reading:
            logger.debug("meter message on %s carries none of the source's fields; ignored", name)
            return
        self._said_not_a_reading.add(index)
        logger.info(
            "meter source %s: messages on %s carry none of its fields; taken as not readings (a status or info"
            " topic) and ignored, until the topic has delivered a reading (list such topics under ignore)",
            plan.label,
            name,
        )

    def _unknown_device(self, index: int, plan: MeterPlan, name: str, device: str) -> None:
        if (index, device) in self._unknown_devices or len(self._unknown_devices) >= MAX_TRACKED_EQUIPMENT:
            logger.debug("meter message on %s: device %r is not in equipment_map; ignored", name, device)
            return
        self._unknown_devices.add((index, device))
        logger.info(
            "meter source %s: device %s (topic %s) is not in equipment_map; its messages are ignored",
            plan.label,
            _shown(device),
            name,
        )


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()
