"""One OPC UA data value of one signal -> one canonical sample, or a rejection with its reason (pure).

This is the boundary every notification and every polled value passes (``SignalReader.read``).
Whatever a device sends ends as one of three things:

* a sample, with the device's status code (``status``: the StatusCode as a UInt32, left out when
  it is plain Good) and its severity as ``quality``: bad and uncertain values are kept and marked;
* a flagged sample: a chosen timestamp that is missing, before the source's ``earliest_timestamp``
  or more than ``max_future_skew_s`` ahead of the gateway's clock is replaced by the gateway's time,
  ts_source ``gateway``, flags ``ts_fallback`` plus ``ts_missing`` / ``ts_too_old`` / ``ts_future``;
  a value whose status carries the Overflow bit (the server's queue for the item overflowed, so
  changes before it were lost) gets the flag ``overflow``;
* a ``RejectedReading`` with a reason key (``REJECT_*``) and a message: no value, ±Inf/NaN, an
  integer beyond int64, a negative or fractional counter, a string, array, byte string or structure
  where a number goes; ``UnmappedState`` for a state value the signal's map does not know.

The sample is built without pydantic's validation (which costs more than the rest of the
per-notification path together): the checks here guarantee everything ``core.wire.Sample``'s
validators would (value type and bounds per signal kind, timestamp within int64 nanoseconds, raw
text at most 128 characters, a UInt32 status), and equipment and signal names are validated once
per reader by building one sample the ordinary way.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import ua
from pydantic import ValidationError

from core.signals import ENERGY_COUNTERS, PART_COUNTERS, MachineState, Quality, Signal
from core.wire import STATUS_CODE_MAX, Sample, TimestampSource
from edge.errors import UnmappedState, UnusableReading
from edge.states import StateMapper

TS_FALLBACK_FLAG = "ts_fallback"
TS_MISSING_FLAG = "ts_missing"
TS_TOO_OLD_FLAG = "ts_too_old"
TS_FUTURE_FLAG = "ts_future"
OVERFLOW_FLAG = "overflow"

REJECT_NO_VALUE = "no_value"
REJECT_NOT_FINITE = "not_finite"
REJECT_OUT_OF_RANGE = "out_of_range"
REJECT_NEGATIVE = "negative_counter"
REJECT_FRACTIONAL = "fractional_counter"
REJECT_WRONG_TYPE = "wrong_type"
REJECT_INVALID_SIGNAL = "invalid_signal"
REJECT_UNEXPECTED = "unexpected_error"

# A device clock before this is not plausible (a PLC that lost its clock restarts in 2000 or 1601).
EARLIEST_PLAUSIBLE_TS = datetime(2001, 1, 1, tzinfo=UTC)
DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)
# The timestamps whose nanoseconds fit in int64 (what the wire format carries).
_INT64_TS_EARLIEST = datetime(1677, 9, 22, tzinfo=UTC)
_MAX_FUTURE_SKEW = timedelta(days=1)
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# StatusCode bits (OPC 10000-4, 7.39): severity in the top two, the InfoType in bits 10-11
# (01: DataValue) and, with it, the Overflow bit 7.
_INFO_TYPE_MASK = 0x0C00
_INFO_TYPE_DATA_VALUE = 0x0400
_OVERFLOW_BIT = 0x0080

_KIND_STATE, _KIND_PART_COUNTER, _KIND_ENERGY_COUNTER, _KIND_PROCESS = range(4)
_QUALITY_BY_SEVERITY = (Quality.GOOD, Quality.UNCERTAIN, Quality.BAD, Quality.BAD)
# Shared by every sample built here: pydantic copies it before changing it (model_copy), and a
# frozen model is never changed in place.
_ALL_FIELDS = set(Sample.model_fields)
_new = object.__new__
_set = object.__setattr__


class RejectedReading(UnusableReading):
    """A value that cannot become a sample; ``kind`` is the reason's key for counters (``REJECT_*``)."""

    def __init__(self, kind: str, reason: str):
        self.kind = kind
        super().__init__(reason)


def quality_of(status: ua.StatusCode | None) -> Quality:
    """OPC UA severity bits (the top two) -> quality. A missing status code means Good."""
    if status is None:
        return Quality.GOOD
    return _QUALITY_BY_SEVERITY[(status.value >> 30) & 0b11]


def has_overflow(status: ua.StatusCode | None) -> bool:
    """The server's queue for this item overflowed before this value (changes were lost)."""
    if status is None:
        return False
    code = status.value
    return (code & _INFO_TYPE_MASK) == _INFO_TYPE_DATA_VALUE and bool(code & _OVERFLOW_BIT)


def status_name(status: ua.StatusCode | None) -> str:
    return "Good" if status is None else status.name


def _described(value: Any) -> str:
    """A short description of a device value for a rejection message (never its whole content)."""
    if isinstance(value, str | bytes | bytearray):
        shown = value[:32]
        return f"{type(value).__name__} {shown!r}{'…' if len(value) > 32 else ''}"
    if isinstance(value, list | tuple):
        return f"an array of {len(value)}"
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 32 else f"an integer of {len(str(abs(int(value))))} digits"
    return f"a {type(value).__name__}"


class SignalReader:
    """Reads one planned signal: its data values to samples, with the signal's own timestamp rules.

    Built once per session for each signal, so the per-notification work is only what depends on
    the value.
    """

    __slots__ = (
        "_earliest",
        "_invalid",
        "_kind",
        "_max_future_skew",
        "_states",
        "_timestamp_source",
        "equipment",
        "key",
        "signal",
    )

    def __init__(
        self,
        equipment: str,
        signal: str,
        *,
        timestamp_source: TimestampSource = TimestampSource.DEVICE,
        earliest_timestamp: datetime = EARLIEST_PLAUSIBLE_TS,
        max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
        states: StateMapper | None = None,
    ):
        self.equipment = equipment
        self.signal = signal
        self.key = (equipment, signal)
        if signal == Signal.STATE:
            self._kind = _KIND_STATE
        elif signal in PART_COUNTERS:
            self._kind = _KIND_PART_COUNTER
        elif signal in ENERGY_COUNTERS:
            self._kind = _KIND_ENERGY_COUNTER
        else:
            self._kind = _KIND_PROCESS
        self._timestamp_source = timestamp_source
        if earliest_timestamp.tzinfo is None:
            earliest_timestamp = earliest_timestamp.replace(tzinfo=UTC)
        self._earliest = max(earliest_timestamp, _INT64_TS_EARLIEST)
        # At most a day (as the settings allow), so a time that passes lies before 2262 (int64 nanoseconds).
        self._max_future_skew = min(max_future_skew, _MAX_FUTURE_SKEW)
        self._states = states if states is not None else StateMapper({})
        self._invalid = self._check_names()

    def _check_names(self) -> str | None:
        """Why equipment or signal cannot name a sample (checked once, by the model itself), or None."""
        probe = "IDLE" if self._kind == _KIND_STATE else 0
        try:
            Sample(equipment=self.equipment, signal=self.signal, ts=EARLIEST_PLAUSIBLE_TS, value=probe)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        return None

    def read(self, data_value: ua.DataValue, received_at: datetime) -> Sample:
        """The sample for ``data_value``, received at ``received_at``; RejectedReading or UnmappedState."""
        if self._invalid is not None:
            raise RejectedReading(REJECT_INVALID_SIGNAL, f"{self.equipment}.{self.signal}: {self._invalid}")
        variant = data_value.Value
        status = data_value.StatusCode
        device_value = None if variant is None else variant.Value
        if device_value is None:
            raise RejectedReading(
                REJECT_NO_VALUE, f"{self.signal}: data value carries no value (status {status_name(status)})"
            )
        raw: str | None = None
        value: bool | int | float | str
        if self._kind == _KIND_STATE:
            raw, value = self._state(device_value)
        else:
            value = self._number(device_value)

        source = self._timestamp_source
        ts: datetime | None
        if source is TimestampSource.DEVICE:
            ts = data_value.SourceTimestamp
        elif source is TimestampSource.SERVER:
            ts = data_value.ServerTimestamp
        else:
            ts = received_at
        flags: tuple[str, ...] = ()
        if ts is None:
            ts, source, flags = received_at, TimestampSource.GATEWAY, (TS_FALLBACK_FLAG, TS_MISSING_FLAG)
        else:
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)  # OPC UA DateTime is UTC by definition
            if ts < self._earliest:
                ts, source, flags = received_at, TimestampSource.GATEWAY, (TS_FALLBACK_FLAG, TS_TOO_OLD_FLAG)
            elif ts - received_at > self._max_future_skew:
                ts, source, flags = received_at, TimestampSource.GATEWAY, (TS_FALLBACK_FLAG, TS_FUTURE_FLAG)

        code: int | None = None
        quality = Quality.GOOD
        if status is not None and status.value:
            code = status.value
            if type(code) is not int or not 0 <= code <= STATUS_CODE_MAX:
                raise RejectedReading(REJECT_OUT_OF_RANGE, f"{self.signal}: status code {code!r} is not a UInt32")
            quality = _QUALITY_BY_SEVERITY[code >> 30]
            if (code & _INFO_TYPE_MASK) == _INFO_TYPE_DATA_VALUE and code & _OVERFLOW_BIT:
                flags = (*flags, OVERFLOW_FLAG)

        sample = _new(Sample)
        _set(
            sample,
            "__dict__",
            {
                "equipment": self.equipment,
                "signal": self.signal,
                "ts": ts,
                "value": value,
                "raw": raw,
                "quality": quality,
                "ts_source": source,
                "flags": flags,
                "status": code,
            },
        )
        _set(sample, "__pydantic_fields_set__", _ALL_FIELDS)
        _set(sample, "__pydantic_extra__", None)
        _set(sample, "__pydantic_private__", None)
        return sample

    def _state(self, device_value: Any) -> tuple[str, str]:
        """(raw text, canonical state) of a state value; UnmappedState when the map does not know it."""
        raw = self._states.raw(device_value)[:128]
        mapped = self._states.map(device_value)
        if mapped is None:
            raise UnmappedState(raw)
        return raw, mapped.value

    def _number(self, value: Any) -> bool | int | float:
        """The value as the signal's kind keeps it (counters: int, energy: float), or RejectedReading."""
        of = type(value)
        kind = self._kind
        if of is float:
            if not math.isfinite(value):
                raise RejectedReading(REJECT_NOT_FINITE, f"{self.signal}: {value} is not a finite number")
            if kind == _KIND_PROCESS:
                return value
            if value < 0:
                raise RejectedReading(REJECT_NEGATIVE, f"{self.signal}: a counter must not be negative, got {value}")
            if kind == _KIND_ENERGY_COUNTER:
                return value
            if value != int(value):
                raise RejectedReading(REJECT_FRACTIONAL, f"{self.signal}: a part count must be whole, got {value}")
            if value > _INT64_MAX:
                raise RejectedReading(REJECT_OUT_OF_RANGE, f"{self.signal}: a part count of {value} exceeds int64")
            return int(value)
        if of is int:
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise RejectedReading(REJECT_OUT_OF_RANGE, f"{self.signal}: {_described(value)} does not fit in int64")
            if kind != _KIND_PROCESS:
                if value < 0:
                    raise RejectedReading(
                        REJECT_NEGATIVE, f"{self.signal}: a counter must not be negative, got {value}"
                    )
                return float(value) if kind == _KIND_ENERGY_COUNTER else value
            return value
        if of is bool and kind == _KIND_PROCESS:
            return bool(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            # An int or float subclass (an IntEnum, a numpy scalar): judged as the plain number.
            return self._number(float(value) if isinstance(value, float) else int(value))
        raise RejectedReading(REJECT_WRONG_TYPE, f"{self.signal}: expected a number, got {_described(value)}")


def datavalue_to_sample(
    equipment: str,
    signal: str,
    value: ua.DataValue,
    received_at: datetime,
    *,
    timestamp_source: TimestampSource = TimestampSource.DEVICE,
    state_map: dict[str, MachineState] | None = None,
    states: StateMapper | None = None,
    earliest_timestamp: datetime = EARLIEST_PLAUSIBLE_TS,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
) -> Sample:
    """One data value read as ``SignalReader`` reads it (for a single value; collectors keep readers)."""
    if states is None and state_map is not None:
        states = StateMapper(state_map)
    reader = SignalReader(
        equipment,
        signal,
        timestamp_source=timestamp_source,
        earliest_timestamp=earliest_timestamp,
        max_future_skew=max_future_skew,
        states=states,
    )
    return reader.read(value, received_at)
