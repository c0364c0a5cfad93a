"""Uplink wire format: one versioned JSON batch of canonical samples per MQTT message.

Example (version 1)::

    {"v": 1, "edge": "gw-machining", "seq": 42, "sent_at": "2026-11-25T08:00:01.250000Z",
     "samples": [{"equipment": "cnc-01", "signal": "state", "ts": "2026-11-25T08:00:00.912000Z",
                  "value": "PRODUCING", "raw": "1", "quality": "good", "ts_source": "device"}]}

Optional per sample: ``raw`` (the device's own value, e.g. a state code), ``flags`` (e.g.
``ts_fallback``, ``refresh``) and ``status`` (the device's status code, e.g. an OPC UA StatusCode as
a UInt32; ``quality`` is its severity).

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

import functools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import WireFormatError
from core.signals import ENERGY_COUNTERS, OFFLINE, PART_COUNTERS, MachineState, Quality, Signal
from core.yamlconfig import format_loc

WIRE_VERSION = 1
MAX_SAMPLES_PER_BATCH = 50_000
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024  # default for WireLimits; 50,000 samples of ~300 bytes fit
MAX_FLAGS = 16
MAX_FLAG_LENGTH = 64
STATUS_CODE_MAX = 0xFFFF_FFFF  # an OPC UA StatusCode is a UInt32
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
    status: int | None = Field(
        default=None,
        ge=0,
        le=STATUS_CODE_MAX,
        strict=True,
        description="the device's status code where it has one (OPC UA StatusCode, uint32); quality is its severity",
    )

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


# --- the fast path -------------------------------------------------------------------------------
#
# Nearly every sample an edge sends has the one shape ``encode_batch`` writes. ``fast_sample`` checks
# that shape in plain Python and builds the Sample without pydantic; whatever it is not sure about
# (another timestamp form, a non-ASCII string, a bool where a number goes, any bound crossed) it
# leaves to ``Sample.model_validate``, which then accepts or rejects with its own reason. So the fast
# path only ever accepts what the model accepts, with the same values, and every reason is the
# model's. tests/test_core_wire_fast.py holds the two against each other on generated samples.

_SAMPLE_KEYS = frozenset(Sample.model_fields)
_STATES = frozenset(MachineState.__members__) | {OFFLINE}
_QUALITIES = {q.value: q for q in Quality}
_TS_SOURCES = {s.value: s for s in TimestampSource}
_SIGNAL = re.compile(r"[a-z][a-z0-9_]*")
# The datetimes whose nanoseconds fit in int64 (datetimes hold whole microseconds).
_TS_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=-(-INT64_MIN // 1_000))
_TS_LATEST = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=INT64_MAX // 1_000)
_new = object.__new__
_set = object.__setattr__


def _plain_signal(signal: str) -> bool:
    return signal.isascii() and _SIGNAL.fullmatch(signal) is not None


@functools.lru_cache(maxsize=4_096)
def _signal_kind(signal: str) -> int:
    """0: not a name the fast path takes; 1: state; 2: part counter; 3: energy counter; 4: process value."""
    if not _plain_signal(signal):
        return 0
    if signal == Signal.STATE:
        return 1
    if signal in PART_COUNTERS:
        return 2
    if signal in ENERGY_COUNTERS:
        return 3
    return 4


def _utc_timestamp(text: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (what ``format_ts`` writes) within int64 ns; None for anything else."""
    size = len(text)
    if not (
        (size == 27 or size == 20)
        and text[-1] == "Z"
        and text[10] == "T"
        and text[4] == "-"
        and text[7] == "-"
        and text[13] == ":"
        and text[16] == ":"
        and (size == 20 or text[19] == ".")
        and text.isascii()
    ):
        return None
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if _TS_EARLIEST <= ts <= _TS_LATEST else None


def _fast_value(kind: int, value: Any) -> SampleValue | None:
    """The value as the model keeps it, for the plain cases only; None: let the model decide."""
    of = type(value)
    if kind == 1:
        return value if of is str and value in _STATES else None
    if of is int:
        if kind == 3:
            return float(value) if 0 <= value <= INT64_MAX else None
        return value if (0 if kind == 2 else INT64_MIN) <= value <= INT64_MAX else None
    if of is float and kind != 2 and math.isfinite(value) and (kind == 4 or value >= 0):
        return value
    return None


def _plain_text(text: Any, longest: int) -> bool:
    return type(text) is str and 0 < len(text) <= longest and text.isascii()


def fast_sample(raw: Any) -> Sample | None:
    """The Sample ``Sample.model_validate(raw)`` would give, when ``raw`` has the plain shape; else None."""
    if type(raw) is not dict or not _SAMPLE_KEYS.issuperset(raw):
        return None
    equipment = raw.get("equipment")
    signal = raw.get("signal")
    text = raw.get("ts")
    if not _plain_text(equipment, 64) or type(signal) is not str or len(signal) > 64 or type(text) is not str:
        return None
    kind = _signal_kind(signal)  # cached: only names of at most 64 characters get this far
    if kind == 0 or "value" not in raw:
        return None
    value = _fast_value(kind, raw["value"])
    ts = _utc_timestamp(text)
    if value is None or ts is None:
        return None
    raw_text = raw.get("raw")
    if raw_text is not None and not (type(raw_text) is str and len(raw_text) <= 128 and raw_text.isascii()):
        return None
    quality = raw.get("quality", "good")
    ts_source = raw.get("ts_source", "device")
    if type(quality) is not str or type(ts_source) is not str:
        return None
    quality = _QUALITIES.get(quality)
    ts_source = _TS_SOURCES.get(ts_source)
    if quality is None or ts_source is None:
        return None
    flags: tuple[str, ...] = ()
    if "flags" in raw:
        listed = raw["flags"]
        if type(listed) is not list or len(listed) > MAX_FLAGS:
            return None
        if not all(_plain_text(flag, MAX_FLAG_LENGTH) for flag in listed):
            return None
        flags = tuple(listed)
    status = raw.get("status")
    if status is not None and not (type(status) is int and 0 <= status <= STATUS_CODE_MAX):
        return None
    sample = _new(Sample)
    _set(
        sample,
        "__dict__",
        {
            "equipment": equipment,
            "signal": signal,
            "ts": ts,
            "value": value,
            "raw": raw_text,
            "quality": quality,
            "ts_source": ts_source,
            "flags": flags,
            "status": status,
        },
    )
    _set(sample, "__pydantic_fields_set__", set(raw))
    _set(sample, "__pydantic_extra__", None)
    _set(sample, "__pydantic_private__", None)
    return sample


@dataclass(frozen=True, slots=True)
class _PlainEnvelope:
    edge: str
    seq: int
    samples: list[dict[str, Any]]


_ENVELOPE_KEYS = frozenset(BatchEnvelope.model_fields)
_EDGE_ID = re.compile(EDGE_ID_PATTERN.removeprefix("^").removesuffix("$"))


def _fast_envelope(body: dict[str, Any]) -> _PlainEnvelope | None:
    """What ``BatchEnvelope.model_validate(body)`` keeps, when the envelope has the plain shape; else None.

    The samples are the parsed dicts themselves (the model copies them, to the same content).
    """
    if not _ENVELOPE_KEYS.issuperset(body):
        return None
    v, edge, seq, samples = body.get("v"), body.get("edge"), body.get("seq"), body.get("samples")
    if type(v) is not int or v != WIRE_VERSION or type(seq) is not int or not 0 <= seq <= INT64_MAX:
        return None
    if type(edge) is not str or not edge.isascii() or _EDGE_ID.fullmatch(edge) is None:
        return None
    sent_at = body.get("sent_at")
    if sent_at is not None and (type(sent_at) is not str or _utc_timestamp(sent_at) is None):
        return None
    if type(samples) is not list or not 1 <= len(samples) <= MAX_SAMPLES_PER_BATCH:
        return None
    if not all(type(sample) is dict for sample in samples):
        return None
    return _PlainEnvelope(edge, seq, samples)


# --- the plain batch, decoded without a Sample per sample ---------------------------------------
#
# Ingest's hot path. msgspec decodes the payload straight into the structs below (in C: types,
# lengths, unknown keys); ``decode_plain`` then checks in plain Python what ``fast_sample`` checks,
# with timestamps read to integers. It answers for the whole batch or not at all: if anything in it
# is not plain (a sample the model would refuse, a timestamp outside the window, a null, a key the
# format does not have, a payload msgspec will not read) it returns None and the caller decodes the
# payload with ``decode_batch``, which then gives every reason. So whatever ``decode_plain`` accepts,
# ``decode_batch`` accepts with the same samples and no rejection (tests/test_core_wire_plain.py).

_PlainName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class PlainSample(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A sample as it came, absent keys UNSET (``msgspec.json.encode`` gives back the sample as sent)."""

    equipment: _PlainName
    signal: _PlainName
    ts: str
    value: bool | int | float | str
    raw: str | msgspec.UnsetType = msgspec.UNSET
    quality: str | msgspec.UnsetType = msgspec.UNSET
    ts_source: str | msgspec.UnsetType = msgspec.UNSET
    flags: list[str] | msgspec.UnsetType = msgspec.UNSET
    status: int | msgspec.UnsetType = msgspec.UNSET


class _PlainBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    v: int
    edge: str
    seq: int
    samples: Annotated[list[PlainSample], msgspec.Meta(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)]
    sent_at: str | msgspec.UnsetType = msgspec.UNSET


_PLAIN_DECODER = msgspec.json.Decoder(_PlainBody)
_UNSET = msgspec.UNSET
_US_EARLIEST = -(-INT64_MIN // 1_000)  # microseconds whose nanoseconds fit in int64
_US_LATEST = INT64_MAX // 1_000
_MAX_CACHED_SECONDS = 100_000


@dataclass(slots=True)
class PlainBatch:
    """A batch every sample of which passes the wire format as it is; ``ts_ns[i]`` is sample i's time."""

    edge: str
    seq: int
    samples: list[PlainSample]
    ts_ns: list[int]
    fingerprint: tuple[int, str, str]


_seconds_of_prefix: dict[str, int | None] = {}


def _epoch_seconds(prefix: str) -> int | None:
    """Seconds since the epoch of ``YYYY-MM-DDTHH:MM:SS`` read as UTC; None if it is no such time.

    The samples of one batch share a handful of seconds: each is worked out once (the cache is
    bounded), and ``decode_plain`` finds the ones it knows with a dictionary lookup.
    """
    seconds: int | None = None
    if (
        len(prefix) == 19
        and prefix[10] == "T"
        and prefix[4] == "-"
        and prefix[7] == "-"
        and prefix[13] == ":"
        and prefix[16] == ":"
        and prefix.isascii()
    ):
        try:
            when = datetime.fromisoformat(prefix).replace(tzinfo=UTC)
        except ValueError:
            pass
        else:
            delta = when - _EPOCH
            seconds = delta.days * 86_400 + delta.seconds
    if len(_seconds_of_prefix) >= _MAX_CACHED_SECONDS:
        _seconds_of_prefix.clear()
    _seconds_of_prefix[prefix] = seconds
    return seconds


_kind_of_signal: dict[str, int] = {}


def _cached_signal_kind(signal: str) -> int:
    kind = _signal_kind(signal)
    if len(_kind_of_signal) >= 4_096:
        _kind_of_signal.clear()
    _kind_of_signal[signal] = kind
    return kind


def _as_dict(sample: PlainSample) -> dict[str, Any]:
    return {key: value for key in sample.__struct_fields__ if (value := getattr(sample, key)) is not _UNSET}


def decode_plain(payload: bytes, *, limits: WireLimits | None = None, now: datetime | None = None) -> PlainBatch | None:
    """The batch when the whole payload has the plain shape and every sample passes; else None.

    None says nothing about the payload except that ``decode_batch`` must decide it. ``now`` is the
    receiver's clock, as for ``decode_batch``.
    """
    limits = limits or WireLimits()
    if len(payload) > limits.max_payload_bytes:
        return None
    try:
        body = _PLAIN_DECODER.decode(payload)
    except msgspec.DecodeError:
        return None
    edge, seq, sent_at = body.edge, body.seq, body.sent_at
    if body.v != WIRE_VERSION or not 0 <= seq <= INT64_MAX:
        return None
    if not edge.isascii() or _EDGE_ID.fullmatch(edge) is None:
        return None
    if sent_at is not _UNSET and _utc_timestamp(sent_at) is None:
        return None
    earliest, latest = _US_EARLIEST, _US_LATEST
    if now is not None:
        now_us = datetime_to_ns(now) // 1_000
        earliest = now_us - _microseconds(limits.max_past)
        latest = now_us + _microseconds(limits.max_future)
    earliest, latest = max(earliest, _US_EARLIEST), min(latest, _US_LATEST)
    kinds, seconds_of, qualities, sources, states = (
        _kind_of_signal,
        _seconds_of_prefix,
        _QUALITIES,
        _TS_SOURCES,
        _STATES,
    )
    ts_ns: list[int] = []
    for sample in body.samples:
        signal, value, text = sample.signal, sample.value, sample.ts
        kind = kinds.get(signal) or _cached_signal_kind(signal)
        if kind == 0 or not sample.equipment.isascii():
            return None
        if kind == 1:
            if type(value) is not str or value not in states:
                return None
        elif type(value) is int:
            if not (0 if kind != 4 else INT64_MIN) <= value <= INT64_MAX:
                return None
        elif type(value) is not float or kind == 2 or not math.isfinite(value) or (kind == 3 and value < 0):
            return None
        # What _utc_timestamp accepts, read straight to microseconds: the prefix's seconds from the
        # cache (which checked its form), the fraction's six ASCII digits (before int(): "²".isdigit()).
        prefix = text[:19]
        seconds = seconds_of.get(prefix)
        if seconds is None and (seconds := _epoch_seconds(prefix)) is None:
            return None
        size = len(text)
        if size == 27:
            fraction = text[20:26]
            if text[26] != "Z" or text[19] != "." or not (fraction.isascii() and fraction.isdigit()):
                return None
            us = seconds * 1_000_000 + int(fraction)
        elif size == 20 and text[19] == "Z":
            us = seconds * 1_000_000
        else:
            return None
        if not earliest <= us <= latest:
            return None
        raw, quality, source, flags, status = sample.raw, sample.quality, sample.ts_source, sample.flags, sample.status
        if raw is not _UNSET and (len(raw) > 128 or not raw.isascii()):
            return None
        if (quality is not _UNSET and quality not in qualities) or (source is not _UNSET and source not in sources):
            return None
        if flags is not _UNSET and (len(flags) > MAX_FLAGS or not all(_plain_text(f, MAX_FLAG_LENGTH) for f in flags)):
            return None
        if status is not _UNSET and not 0 <= status <= STATUS_CODE_MAX:
            return None
        ts_ns.append(us * 1_000)
    samples = body.samples
    first, last = (json.dumps(_as_dict(s), sort_keys=True) for s in (samples[0], samples[-1]))
    return PlainBatch(edge, seq, samples, ts_ns, (len(samples), first, last))


def _microseconds(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


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
    if sample.status is not None:
        out["status"] = sample.status
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


class _Window:
    """The receiver's window for one batch: each bound worked out once, when a sample first needs it."""

    __slots__ = ("_earliest", "_latest", "limits", "now")

    def __init__(self, limits: WireLimits, now: datetime | None):
        self.limits = limits
        self.now = now
        self._earliest: datetime | None = None
        self._latest: datetime | None = None

    def outside(self, ts: datetime) -> str | None:
        """What ``_outside_window`` says, without working out ``now ± limit`` for every sample."""
        if self.now is None:
            return None
        if self._earliest is None:
            self._earliest = self.now - self.limits.max_past
        if ts >= self._earliest:
            if self._latest is None:
                self._latest = self.now + self.limits.max_future
            if ts <= self._latest:
                return None
        return _outside_window(ts, self.now, self.limits)


def _sample_or_rejection(raw: Any, index: int, window: _Window, reference: bool) -> Sample | RejectedSample:
    sample = None if reference else fast_sample(raw)
    if sample is None:
        try:
            sample = Sample.model_validate(raw)
        except ValidationError as exc:
            return RejectedSample(index, raw, f"samples[{index}].{_first_error(exc)}")
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # what a validator did not foresee
            return RejectedSample(index, raw, f"samples[{index}]: {type(exc).__name__}: {exc}")
    outside = window.outside(sample.ts)
    if outside is None:
        return sample
    return RejectedSample(index, raw, f"samples[{index}].ts: {outside}")


def decode_batch(
    payload: bytes, *, limits: WireLimits | None = None, now: datetime | None = None, reference: bool = False
) -> DecodedBatch:
    """Parse one uplink message. A broken envelope raises WireFormatError; bad samples are listed.

    With ``now`` (the receiver's clock; never read here), samples whose timestamp lies outside
    ``limits.max_past`` / ``limits.max_future`` of it are refused. Nothing else escapes: whatever the
    payload holds, the result is a batch or a WireFormatError with the reason.

    ``reference=True`` validates every sample with the pydantic model alone, without ``fast_sample``:
    the same result, slower; the tests hold the fast path against it.
    """
    limits = limits or WireLimits()
    body = _parse_json(payload, limits)
    if not isinstance(body, dict):
        raise WireFormatError(f"payload must be a JSON object, got {type(body).__name__}")
    envelope: _PlainEnvelope | BatchEnvelope | None = None if reference else _fast_envelope(body)
    if envelope is None:
        try:
            envelope = BatchEnvelope.model_validate(body)
        except ValidationError as exc:
            raise WireFormatError(_first_error(exc)) from None
    batch = DecodedBatch(edge=envelope.edge, seq=envelope.seq, fingerprint=_fingerprint(envelope.samples))
    window = _Window(limits, now)
    for i, raw in enumerate(envelope.samples):
        decoded = _sample_or_rejection(raw, i, window, reference)
        if isinstance(decoded, Sample):
            batch.samples.append(decoded)
        else:
            batch.rejected.append(decoded)
    return batch


def decode_sample(
    payload: bytes,
    *,
    index: int = 0,
    limits: WireLimits | None = None,
    now: datetime | None = None,
    reference: bool = False,
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
    decoded = _sample_or_rejection(raw, index, _Window(limits, now), reference)
    if isinstance(decoded, RejectedSample):
        raise WireFormatError(decoded.reason)
    return decoded
