"""Samples to store points: which measurement, which tags, which fields and value type (pure)."""

from __future__ import annotations

import functools
import math

from core.assets import Placement
from core.signals import Measurement, Quality, measurement_for
from core.store import FieldValue, Point
from core.wire import Sample, TimestampSource


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
