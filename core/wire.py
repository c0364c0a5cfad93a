"""Uplink wire format: one versioned JSON batch of canonical samples per MQTT message.

Example (version 1)::

    {"v": 1, "edge": "gw-machining", "seq": 42, "sent_at": "2026-11-25T08:00:01.250000Z",
     "samples": [{"equipment": "cnc-01", "signal": "state", "ts": "2026-11-25T08:00:00.912000Z",
                  "value": "PRODUCING", "raw": "1", "quality": "good", "ts_source": "device"}]}

``seq`` is per edge and monotonic (one per batch), so ingest can detect gaps. A batch whose
envelope is broken is rejected whole; a batch with some bad samples keeps the good ones and
reports the bad ones individually, so nothing good is lost with the bad.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import WireFormatError
from core.signals import ENERGY_COUNTERS, PART_COUNTERS, MachineState, Quality, Signal
from core.yamlconfig import format_loc

WIRE_VERSION = 1
MAX_SAMPLES_PER_BATCH = 50_000


class TimestampSource(StrEnum):
    DEVICE = "device"  # the device's own clock (OPC UA SourceTimestamp, meter payload)
    SERVER = "server"  # the OPC UA server's receive time (ServerTimestamp)
    GATEWAY = "gateway"  # the edge agent's clock when it received the reading


SampleValue = bool | int | float | str


class Sample(BaseModel):
    """One reading of one signal of one piece of equipment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    equipment: str = Field(min_length=1, max_length=64)
    signal: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    ts: AwareDatetime
    value: SampleValue
    raw: str | None = Field(default=None, max_length=128)
    quality: Quality = Quality.GOOD
    ts_source: TimestampSource = TimestampSource.DEVICE
    flags: tuple[str, ...] = ()

    @field_validator("value")
    @classmethod
    def _value_fits_signal(cls, value: SampleValue, info: Any) -> SampleValue:
        signal = info.data.get("signal")
        if signal == Signal.STATE:
            if value not in MachineState.__members__:
                raise ValueError(f"state must be one of {', '.join(MachineState)}, got {value!r}")
        elif signal in PART_COUNTERS:
            if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 0:
                raise ValueError(f"part counter must be a non-negative integer, got {value!r}")
            return int(value)
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
    edge: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0)
    sent_at: AwareDatetime | None = None
    samples: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)

    @field_validator("v")
    @classmethod
    def _supported_version(cls, v: int) -> int:
        if v != WIRE_VERSION:
            raise ValueError(f"unsupported wire version {v} (this build reads version {WIRE_VERSION})")
        return v


@dataclass(frozen=True, slots=True)
class RejectedSample:
    index: int
    sample: Any
    reason: str


@dataclass(slots=True)
class DecodedBatch:
    edge: str
    seq: int
    samples: list[Sample] = field(default_factory=list)
    rejected: list[RejectedSample] = field(default_factory=list)


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


def decode_batch(payload: bytes) -> DecodedBatch:
    """Parse one uplink message. A broken envelope raises WireFormatError; bad samples are listed."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireFormatError(f"payload is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise WireFormatError(f"payload must be a JSON object, got {type(body).__name__}")
    try:
        envelope = BatchEnvelope.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise WireFormatError(f"{format_loc(first['loc'])}: {first['msg']}") from None
    batch = DecodedBatch(edge=envelope.edge, seq=envelope.seq)
    for i, raw in enumerate(envelope.samples):
        try:
            batch.samples.append(Sample.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            reason = f"samples[{i}].{format_loc(first['loc'])}: {first['msg']}"
            batch.rejected.append(RejectedSample(i, raw, reason))
    return batch
