"""A meter's own clock: reading the time a payload carries, in the device's format and zone.

``DeviceClock`` is compiled once per source; ``DeviceClock.read(value, received_at, after)``
gives the reading's time, where it came from and its flags. A time that cannot be used (missing,
unreadable, written without a zone when none is configured, before the source's floor or too far
ahead of the gateway's clock) never costs the reading: it is stamped with gateway time instead,
flagged ``ts_fallback`` plus the reason (``ts_missing``, ``ts_unreadable``, ``ts_no_zone``,
``ts_too_old``, ``ts_future``), and the collector counts the reason.

Formats: ``iso`` (ISO-8601 text, with or without a zone), ``epoch_s``/``epoch_ms``/``epoch_us``
(a JSON number, or a string of one), a strptime pattern, and ``auto``: text is ISO-8601 (or an
epoch if it is a number), a number is an epoch whose unit its size tells (below 1e11 seconds —
until the year 5138 —, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds).

A time without a zone is local time in the source's ``timezone``. Where the zone's clocks go back
(the repeated hour of a DST end) one local time is two instants: the earliest that is not before
the meter's previous reading is taken (meters count forward), or, with no previous reading, the
one nearer the gateway's clock. A local time the clocks skipped (the missing hour of a DST start;
a device that keeps standard time all year) is read the same way and flagged ``ts_dst_gap``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from core.settings import MeterSource, zone_of
from core.wire import TimestampSource

TS_FALLBACK_FLAG = "ts_fallback"
TS_DST_GAP_FLAG = "ts_dst_gap"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_UNITS = {"epoch_s": 1, "epoch_ms": 1_000, "epoch_us": 1_000_000}


class UnusableTime(Exception):
    """Why a device time is not used; ``kind`` is the flag and counter name (``ts_unreadable``, ...)."""

    def __init__(self, kind: str, detail: str):
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


@dataclass(frozen=True, slots=True)
class StampedTime:
    """A reading's time: ``fallback`` names why gateway time stands in for the device's (else None)."""

    ts: datetime
    source: TimestampSource
    flags: tuple[str, ...] = ()
    fallback: UnusableTime | None = None


@dataclass(frozen=True, slots=True)
class DeviceClock:
    format: str
    zone: tzinfo | None
    earliest: datetime
    max_future: timedelta

    @classmethod
    def of(cls, source: MeterSource) -> DeviceClock:
        zone = zone_of(source.timezone) if source.timezone is not None else None
        return cls(
            source.timestamp_format, zone, source.earliest_timestamp, timedelta(seconds=source.max_future_skew_s)
        )

    def read(self, value: Any, received_at: datetime, after: datetime | None = None) -> StampedTime:
        """The device time ``value`` (None: the payload has none), or gateway time flagged with the reason."""
        try:
            if value is None:
                raise UnusableTime("ts_missing", "the payload has no time at the timestamp field")
            ts, flags = self._parse(value, received_at, after)
            if ts < self.earliest:
                raise UnusableTime("ts_too_old", f"{ts.isoformat()} is before {self.earliest.isoformat()}")
            if ts > received_at + self.max_future:
                ahead = (ts - received_at).total_seconds()
                raise UnusableTime("ts_future", f"{ts.isoformat()} is {ahead:.0f} s ahead of the gateway's clock")
        except UnusableTime as why:
            return StampedTime(received_at, TimestampSource.GATEWAY, (TS_FALLBACK_FLAG, why.kind), why)
        return StampedTime(ts, TimestampSource.DEVICE, flags)

    def _parse(self, value: Any, received_at: datetime, after: datetime | None) -> tuple[datetime, tuple[str, ...]]:
        fmt = self.format
        if isinstance(value, bool):
            raise UnusableTime("ts_unreadable", f"a time cannot be {value!r}")
        if fmt in _EPOCH_UNITS or (fmt == "auto" and not isinstance(value, str)) or (fmt == "auto" and _numeric(value)):
            return from_epoch(value, _EPOCH_UNITS.get(fmt)), ()
        if not isinstance(value, str | int):
            raise UnusableTime("ts_unreadable", f"expected text, got {type(value).__name__}")
        text = str(value).strip()
        if len(text) > 64:
            raise UnusableTime("ts_unreadable", f"{len(text)} characters is not a time")
        try:
            parsed = datetime.fromisoformat(text) if fmt in ("auto", "iso") else datetime.strptime(text, fmt)
        except ValueError:
            expected = "ISO-8601" if fmt in ("auto", "iso") else f"in the format {fmt!r}"
            raise UnusableTime("ts_unreadable", f"{text!r} is not {expected}") from None
        if parsed.tzinfo is not None:
            return _to_utc(parsed), ()
        if self.zone is None:
            raise UnusableTime("ts_no_zone", f"{text!r} has no zone and the source sets no timezone")
        return local_to_utc(parsed, self.zone, received_at, after)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _to_utc(ts: datetime) -> datetime:
    try:
        return ts.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00, 9999-12-31T23:59:59-01:00
        raise UnusableTime("ts_unreadable", f"{ts.isoformat()} is outside the calendar in UTC") from None


def from_epoch(value: Any, per_second: int | None) -> datetime:
    """An epoch number (or a string of one) in seconds (1), ms (1000), µs; ``None``: unit by size."""
    if isinstance(value, str):
        try:
            number: float | int = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise UnusableTime("ts_unreadable", f"{value[:64]!r} is not an epoch number") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = value
    else:
        raise UnusableTime("ts_unreadable", f"an epoch time is a number, got {type(value).__name__}")
    if isinstance(number, float) and not math.isfinite(number):
        raise UnusableTime("ts_unreadable", f"{number} is not a time")
    if per_second is None:
        size = abs(number)
        per_second = 1 if size < 1e11 else 1_000 if size < 1e14 else 1_000_000 if size < 1e17 else 1_000_000_000
    try:
        if isinstance(number, int):
            return EPOCH + timedelta(microseconds=number * 1_000_000 // per_second)
        return EPOCH + timedelta(seconds=number / per_second)
    except OverflowError:
        raise UnusableTime("ts_unreadable", f"epoch {number!r} is outside the calendar") from None


def local_to_utc(
    naive: datetime, zone: tzinfo, received_at: datetime, after: datetime | None = None
) -> tuple[datetime, tuple[str, ...]]:
    """A wall-clock time in ``zone`` as UTC; the module docstring says how folds and gaps are read."""
    try:
        candidates = sorted({naive.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)})
    except OverflowError:
        raise UnusableTime("ts_unreadable", f"{naive.isoformat()} in {zone} is outside the calendar") from None
    flags: tuple[str, ...] = ()
    if any(c.astimezone(zone).replace(tzinfo=None) != naive for c in candidates):
        flags = (TS_DST_GAP_FLAG,)
    if len(candidates) == 1:
        return candidates[0], flags
    if after is not None and (later := [c for c in candidates if c >= after]):
        return later[0], flags
    return min(candidates, key=lambda c: abs(c - received_at)), flags
