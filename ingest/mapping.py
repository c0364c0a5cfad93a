"""Samples to store points: which measurement, which tags, which fields and value type (pure)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import msgspec

from core.assets import AssetModel, Placement
from core.errors import StoreRejected
from core.signals import OFFLINE, MachineState, Measurement, Quality, measurement_for
from core.store import FieldValue, Point
from core.stores.lineprotocol import encode_series, string_text
from core.wire import PlainBatch, Sample, TimestampSource


class UnmappableSample(ValueError):
    """A sample passed the wire format but cannot become a point (e.g. a NaN process value)."""


_STATE, _COUNTER = Measurement.STATE, Measurement.COUNTER  # a member looked up on its class costs a descriptor call


def _typed_value(measurement: Measurement, sample: Sample) -> FieldValue:
    # InfluxDB refuses a field-type change within a measurement, so each measurement has one type.
    value = sample.value
    if measurement is _STATE:
        return str(value)
    if measurement is _COUNTER:
        return int(value)
    if isinstance(value, str):
        raise UnmappableSample(f"{measurement.value} needs a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise UnmappableSample(f"{value!r} is not a finite number")
    return number


# A piece of equipment's signals keep their measurement and tags: worked out once per series (the
# signals that get here passed the wire format, at most 64 characters each; the cache is bounded).
@functools.lru_cache(maxsize=65_536)
def _series(placement: Placement, signal: str) -> tuple[Measurement, str, dict[str, str]]:
    measurement = measurement_for(signal)
    return measurement, measurement.value, {**placement.tags(), "signal": signal}


_QUALITY_TEXT = {quality: quality.value for quality in Quality}
_TS_SOURCE_TEXT = {source: source.value for source in TimestampSource}


def sample_to_point(sample: Sample, placement: Placement) -> Point:
    """The point ingest writes for one sample of equipment at ``placement``."""
    measurement, measurement_name, tags = _series(placement, sample.signal)
    fields: dict[str, FieldValue] = {
        "value": _typed_value(measurement, sample),
        "quality": _QUALITY_TEXT[sample.quality],
    }
    if sample.raw is not None:
        fields["raw"] = sample.raw
    # Where the timestamp came from, and what the edge said of the reading, travel with it.
    fields["ts_source"] = _TS_SOURCE_TEXT[sample.ts_source]
    if sample.flags:
        fields["flags"] = ",".join(sample.flags)
    if sample.status is not None:
        fields["status"] = sample.status
    return Point(
        measurement=measurement_name,
        tags=dict(tags),  # each point its own, as before: the cached one is never handed out
        fields=fields,
        time_ns=sample.ts_ns,
    )


# --- plain samples straight to line protocol -------------------------------------------------------
#
# Ingest's hot path into InfluxDB: the lines ``encode_point(sample_to_point(sample, placement))``
# gives, written from a ``core.wire.PlainBatch`` without a Sample or a Point per sample. Same
# measurement, tags, fields (value typed as above, quality, raw, ts_source, flags, status) and
# time; tests/test_ingest_lines.py holds the two against each other.

_VALUE_OF_STATE = {state: f"value={string_text(state)}" for state in (*MachineState.__members__, OFFLINE)}
_QUALITY_FIELD = {quality.value: f"quality={string_text(quality.value)}" for quality in Quality}
_TS_SOURCE_FIELD = {source.value: f"ts_source={string_text(source.value)}" for source in TimestampSource}
_DEFAULT_QUALITY = _QUALITY_FIELD[Quality.GOOD.value]
_DEFAULT_TS_SOURCE = _TS_SOURCE_FIELD[TimestampSource.DEVICE.value]
_UNSET = msgspec.UNSET
# Absent (UNSET) is the default; quality and ts_source together for the samples that have nothing else.
_QUALITY_FIELDS: dict[object, str] = {_UNSET: _DEFAULT_QUALITY}
_QUALITY_FIELDS.update(_QUALITY_FIELD)
_TS_SOURCE_FIELDS: dict[object, str] = {_UNSET: _DEFAULT_TS_SOURCE}
_TS_SOURCE_FIELDS.update(_TS_SOURCE_FIELD)
_QUALITY_AND_TS_SOURCE = {
    (quality, source): f"{quality_field},{source_field}"
    for quality, quality_field in _QUALITY_FIELDS.items()
    for source, source_field in _TS_SOURCE_FIELDS.items()
}
MAX_CACHED_SERIES = 65_536


@dataclass(frozen=True, slots=True)
class _LineSeries:
    head: str  # ``measurement,tags `` with the space before the fields
    measurement: Measurement
    gateway: str | None


class LineEncoder:
    """Plain batches to the lines ingest writes, for equipment the edge may report; None where in doubt.

    ``lines`` answers None when a sample is not for this path (equipment the asset model does not
    know, or assigns to another gateway; a series line protocol cannot carry): the caller then
    takes the reference path, which gives each its reason. Each (equipment, signal) is looked up
    and its series encoded once (bounded: an edge may invent signals).
    """

    def __init__(self, assets: AssetModel):
        self._assets = assets
        self._series: dict[tuple[str, str], _LineSeries | None] = {}

    def _series_of(self, equipment: str, signal: str) -> _LineSeries | None:
        if equipment not in self._assets:
            return None
        placement = self._assets.placement(equipment)
        measurement, name, tags = _series(placement, signal)
        try:
            head = f"{encode_series(name, tags)} "
        except StoreRejected:
            return None
        return _LineSeries(head, measurement, placement.gateway)

    def lines(self, batch: PlainBatch, edge: str) -> list[str] | None:
        known = self._series
        lines: list[str] = []
        for sample, ts_ns in zip(batch.samples, batch.ts_ns, strict=True):
            key = (sample.equipment, sample.signal)
            series = known.get(key, _UNSET)
            if series is _UNSET:
                if len(known) >= MAX_CACHED_SERIES:
                    known.clear()
                series = known[key] = self._series_of(*key)
            if series is None or (series.gateway is not None and series.gateway != edge):
                return None
            value = sample.value
            measurement = series.measurement
            if measurement is _STATE:
                value_field = _VALUE_OF_STATE[value]  # type: ignore[index]  # decode_plain let only states through
            elif measurement is _COUNTER:
                value_field = f"value={value}i"
            else:  # float_text, inline: this runs for every energy and process value
                text = repr(float(value))
                value_field = f"value={text[:-2] if text.endswith('.0') else text}"
            quality, source, raw, status, flags = (
                sample.quality,
                sample.ts_source,
                sample.raw,
                sample.status,
                sample.flags,
            )
            if raw is _UNSET and status is _UNSET and not flags:  # what nearly every sample is
                fields = _QUALITY_AND_TS_SOURCE[quality, source]
            else:  # sorted field keys: flags, quality, raw, status, ts_source, value
                fields = _QUALITY_FIELDS[quality]
                if raw is not _UNSET:
                    fields = f"{fields},raw={string_text(raw)}"
                if status is not _UNSET:
                    fields = f"{fields},status={status}i"
                if flags:
                    fields = f"flags={string_text(','.join(flags))},{fields}"
                fields = f"{fields},{_TS_SOURCE_FIELDS[source]}"
            lines.append(f"{series.head}{fields},{value_field} {ts_ns}")
        return lines
