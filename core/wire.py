"""Uplink wire format: one versioned JSON batch of canonical samples per MQTT message.

Example (version 1)::

    {"v": 1, "edge": "gw-machining", "seq": 42, "sent_at": "2026-11-25T08:00:01.250000Z",
     "samples": [{"equipment": "cnc-01", "signal": "state", "ts": "2026-11-25T08:00:00.912000Z",
                  "value": "PRODUCING", "raw": "1", "quality": "good", "ts_source": "device"}]}

``seq`` is per edge and monotonic (one per batch), so ingest can detect gaps. A batch whose
envelope is broken is rejected whole; a batch with some bad samples keeps the good ones and
reports the bad ones individually, so nothing good is lost with the bad.

Everything here is bounded, because the payload comes from outside (an edge, or whoever holds a
broker credential): ``seq`` and integer values fit in int64, numbers are finite, every timestamp
fits in int64 nanoseconds (1677-09-21 .. 2262-04-11) and, when ``decode_batch`` is given the
receiver's clock, lies within ``WireLimits.max_past`` / ``max_future`` of it; strings, flags, the
number of samples and the payload have maximum sizes. ``decode_batch`` is the one place where what
the input can raise (OverflowError from ``int(inf)``, RecursionError from deeply nested JSON,
ValueError from an integer of 5,000 digits) becomes a precise reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import WireFormatError
from core.signals import ENERGY_COUNTERS, OFFLINE, PART_COUNTERS, MachineState, Quality, Signal
from core.yamlconfig import format_loc

WIRE_VERSION = 1
MAX_SAMPLES_PER_BATCH = 50_000
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024  # default for WireLimits; 50,000 samples of ~300 bytes fit
MAX_FLAGS = 16
MAX_FLAG_LENGTH = 64
MAX_NESTING = 8  # a sample kept as a dead letter is cut at this depth; the format itself nests 4 deep
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
EDGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # also one MQTT topic level: no '/', '+' or '#'


class TimestampSource(StrEnum):
    DEVICE = "device"  # the device's own clock (OPC UA SourceTimestamp, meter payload)
    SERVER = "server"  # the OPC UA server's receive time (ServerTimestamp)
    GATEWAY = "gateway"  # the edge agent's clock when it received the reading


SampleValue = bool | int | float | str


def _int64_nanoseconds(ts: datetime) -> datetime:
    if not INT64_MIN <= datetime_to_ns(ts) <= INT64_MAX:
        raise ValueError(f"{ts.isoformat()} is outside the range of int64 nanoseconds (1677-09-21 .. 2262-04-11)")
    return ts


Timestamp = Annotated[AwareDatetime, AfterValidator(_int64_nanoseconds)]
Flag = Annotated[str, Field(min_length=1, max_length=MAX_FLAG_LENGTH)]


def _bounded_number(value: SampleValue) -> SampleValue:
    """Refuse numbers no store can hold: ±Inf, NaN and integers beyond int64."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"integer with {len(str(abs(value)))} digits does not fit in int64")
    return value


class Sample(BaseModel):
    """One reading of one signal of one piece of equipment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    equipment: str = Field(min_length=1, max_length=64)
    signal: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    ts: Timestamp
    value: SampleValue
    raw: str | None = Field(default=None, max_length=128)
    quality: Quality = Quality.GOOD
    ts_source: TimestampSource = TimestampSource.DEVICE
    flags: tuple[Flag, ...] = Field(default=(), max_length=MAX_FLAGS)

    @field_validator("value", mode="before")
    @classmethod
    def _value_is_a_scalar(cls, value: Any) -> Any:
        # Without this a list or an object gets the union's least helpful message ("value.bool: …").
        if not isinstance(value, bool | int | float | str):
            raise ValueError(f"must be a number or a state name, got {type(value).__name__}")
        return _bounded_number(value)

    @field_validator("value")
    @classmethod
    def _value_fits_signal(cls, value: SampleValue, info: Any) -> SampleValue:
        signal = info.data.get("signal")
        if signal == Signal.STATE:
            if value not in MachineState.__members__ and value != OFFLINE:
                shown = value if not isinstance(value, str) or len(value) <= 64 else f"{value[:64]}…"
                raise ValueError(f"state must be one of {', '.join(MachineState)} or {OFFLINE}, got {shown!r}")
        elif signal in PART_COUNTERS:
            if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 0:
                raise ValueError(f"part counter must be a non-negative integer, got {value!r}")
            return _bounded_number(int(value))
        elif signal in ENERGY_COUNTERS:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"energy counter must be a non-negative number, got {value!r}")
            return float(value)
        elif isinstance(value, str):
            raise ValueError(f"process value must be a number, got {value!r}")
        return value

    @property
    def ts_ns(self) -> int:
        return datetime_to_ns(self.ts)


class BatchEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int
    edge: str = Field(pattern=EDGE_ID_PATTERN)
    seq: int = Field(ge=0, le=INT64_MAX)
    sent_at: Timestamp | None = None
    samples: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)

    @field_validator("v")
    @classmethod
    def _supported_version(cls, v: int) -> int:
        if v != WIRE_VERSION:
            raise ValueError(f"unsupported wire version {v} (this build reads version {WIRE_VERSION})")
        return v


@dataclass(frozen=True, slots=True)
class WireLimits:
    """What ingest accepts beyond the format itself (``ingest.max_payload_bytes``, ``max_past_days``, …)."""

    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    max_past: timedelta = timedelta(days=30)
    max_future: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RejectedSample:
    index: int
    sample: Any
    reason: str

    @property
    def payload(self) -> bytes:
        """The sample as JSON for a dead letter; anything nested deeper than MAX_NESTING is cut off."""
        return json.dumps(_cut(self.sample, MAX_NESTING), default=repr).encode()


def _cut(value: Any, depth: int) -> Any:
    if not isinstance(value, dict | list):
        return value
    if depth <= 1:
        return f"<{type(value).__name__} nested deeper than {MAX_NESTING} levels, not kept>"
    if isinstance(value, dict):
        return {str(k): _cut(v, depth - 1) for k, v in value.items()}
    return [_cut(v, depth - 1) for v in value]


@dataclass(slots=True)
class DecodedBatch:
    edge: str
    seq: int
    samples: list[Sample] = field(default_factory=list)
    rejected: list[RejectedSample] = field(default_factory=list)
    fingerprint: tuple[int, str, str] = (0, "", "")  # tells a resent batch from another under the same seq


def _fingerprint(samples: list[dict[str, Any]]) -> tuple[int, str, str]:
    """The number of samples and the first and last as canonical JSON: what an edge resends unchanged
    (``sent_at`` changes between sends, so the payload's bytes cannot serve)."""
    first, last = (json.dumps(_cut(s, MAX_NESTING), sort_keys=True, default=repr) for s in (samples[0], samples[-1]))
    return len(samples), first, last


def datetime_to_ns(ts: datetime) -> int:
    """Exact integer nanoseconds since the epoch (no float rounding)."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def ns_to_datetime(ns: int) -> datetime:
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1_000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_batch(edge: str, seq: int, samples: list[Sample], sent_at: datetime | None = None) -> bytes:
    body = {
        "v": WIRE_VERSION,
        "edge": edge,
        "seq": seq,
        "sent_at": format_ts(sent_at or datetime.now(UTC)),
        "samples": [sample_to_json(s) for s in samples],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def sample_to_json(sample: Sample) -> dict[str, Any]:
    out: dict[str, Any] = {
        "equipment": sample.equipment,
        "signal": sample.signal,
        "ts": format_ts(sample.ts),
        "value": sample.value,
        "quality": sample.quality.value,
        "ts_source": sample.ts_source.value,
    }
    if sample.raw is not None:
        out["raw"] = sample.raw
    if sample.flags:
        out["flags"] = list(sample.flags)
    return out


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    return f"{format_loc(first['loc'])}: {first['msg']}"


def _span(span: timedelta) -> str:
    seconds = span.total_seconds()
    return f"{seconds / 86_400:g} days" if seconds >= 86_400 else f"{seconds:g} s"


def _outside_window(ts: datetime, now: datetime, limits: WireLimits) -> str | None:
    if ts < now - limits.max_past:
        return f"{format_ts(ts)} is more than {_span(limits.max_past)} before the receiver's clock ({format_ts(now)})"
    if ts > now + limits.max_future:
        return f"{format_ts(ts)} is more than {_span(limits.max_future)} after the receiver's clock ({format_ts(now)})"
    return None


def _parse_json(payload: bytes, limits: WireLimits) -> Any:
    """The payload's JSON, within the size limit; what the parser can raise becomes a WireFormatError."""
    if len(payload) > limits.max_payload_bytes:
        raise WireFormatError(f"payload of {len(payload)} bytes exceeds the limit of {limits.max_payload_bytes}")
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireFormatError(f"payload is not JSON: {exc}") from None
    except RecursionError:
        raise WireFormatError("payload nests deeper than the JSON decoder allows") from None
    except ValueError as exc:  # an integer literal beyond sys.get_int_max_str_digits()
        raise WireFormatError(f"payload is not usable JSON: {exc}") from None


def _sample_or_rejection(raw: Any, index: int, limits: WireLimits, now: datetime | None) -> Sample | RejectedSample:
    try:
        sample = Sample.model_validate(raw)
    except ValidationError as exc:
        reason = f"samples[{index}].{_first_error(exc)}"
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # what a validator did not foresee
        reason = f"samples[{index}]: {type(exc).__name__}: {exc}"
    else:
        window = None if now is None else _outside_window(sample.ts, now, limits)
        if window is None:
            return sample
        reason = f"samples[{index}].ts: {window}"
    return RejectedSample(index, raw, reason)


def decode_batch(payload: bytes, *, limits: WireLimits | None = None, now: datetime | None = None) -> DecodedBatch:
    """Parse one uplink message. A broken envelope raises WireFormatError; bad samples are listed.

    With ``now`` (the receiver's clock; never read here), samples whose timestamp lies outside
    ``limits.max_past`` / ``limits.max_future`` of it are refused. Nothing else escapes: whatever the
    payload holds, the result is a batch or a WireFormatError with the reason.
    """
    limits = limits or WireLimits()
    body = _parse_json(payload, limits)
    if not isinstance(body, dict):
        raise WireFormatError(f"payload must be a JSON object, got {type(body).__name__}")
    try:
        envelope = BatchEnvelope.model_validate(body)
    except ValidationError as exc:
        raise WireFormatError(_first_error(exc)) from None
    batch = DecodedBatch(edge=envelope.edge, seq=envelope.seq, fingerprint=_fingerprint(envelope.samples))
    for i, raw in enumerate(envelope.samples):
        decoded = _sample_or_rejection(raw, i, limits, now)
        if isinstance(decoded, Sample):
            batch.samples.append(decoded)
        else:
            batch.rejected.append(decoded)
    return batch


def decode_sample(
    payload: bytes, *, index: int = 0, limits: WireLimits | None = None, now: datetime | None = None
) -> Sample:
    """Parse one sample on its own (as a dead letter keeps it), within the bounds it has in a batch.

    ``index`` is its place in the batch it came in, for the reason (``samples[3].value: …``).
    Whatever the payload holds, the result is a sample or a WireFormatError with the reason.
    """
    limits = limits or WireLimits()
    try:
        raw = _parse_json(payload, limits)
    except WireFormatError as exc:
        raise WireFormatError(f"samples[{index}]: {exc.reason}") from None
    decoded = _sample_or_rejection(raw, index, limits, now)
    if isinstance(decoded, RejectedSample):
        raise WireFormatError(decoded.reason)
    return decoded
