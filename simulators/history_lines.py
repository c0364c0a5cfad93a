"""Series of the history generator and how they become store points: line protocol in bulk, or Points.

A ``Series`` is one (measurement, tag set) exactly as ingest writes it (``ingest.mapping``): tags
``site, workshop, line, equipment, signal``; fields ``quality`` ("good"), ``value`` (string for
``machine_state``, integer for ``part_counter``, float for ``energy`` and ``process_value``) and
``raw`` (the device's state code) for states. Everything constant in a line is encoded once per
series with ``core.stores.lineprotocol``'s escaping; the hot path only formats a value and a
timestamp per point, and produces exactly the bytes ``encode_points`` would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import numpy.typing as npt

from core.assets import Placement
from core.signals import Measurement, Quality, measurement_for
from core.store import FieldValue, Point
from core.stores.lineprotocol import escape_key, escape_measurement
from simulators.history_model import RAW_STATE_CODE, STATES


class ValueKind(Enum):
    STATE = "state"  # values are state codes (indices into history_model.STATES)
    INTEGER = "integer"
    FLOAT = "float"


QUALITY = Quality.GOOD.value


def _kind_of(measurement: Measurement) -> ValueKind:
    if measurement is Measurement.STATE:
        return ValueKind.STATE
    if measurement is Measurement.COUNTER:
        return ValueKind.INTEGER
    return ValueKind.FLOAT


@dataclass(frozen=True, slots=True)
class Series:
    """One series of the store, with its constant line-protocol text worked out once."""

    measurement: str
    tags: Mapping[str, str]
    kind: ValueKind
    _head: str = field(repr=False, compare=False)  # "measurement,tags quality=\"good\","
    _state_heads: tuple[str, ...] = field(repr=False, compare=False)  # per state code, up to the timestamp

    @classmethod
    def of(cls, placement: Placement, signal: str) -> Series:
        measurement = measurement_for(signal)
        tags = {**placement.tags(), "signal": signal}
        key = ",".join(
            [escape_measurement(measurement.value)]
            + [f"{escape_key(k, 'tag key')}={escape_key(v, 'tag value')}" for k, v in sorted(tags.items()) if v]
        )
        head = f'{key} quality="{QUALITY}",'
        kind = _kind_of(measurement)
        state_heads = tuple(f'{head}raw="{RAW_STATE_CODE[s]}",value="{s.value}" ' for s in STATES)
        return cls(measurement.value, tags, kind, head, state_heads if kind is ValueKind.STATE else ())

    def lines(self, times: npt.NDArray[np.int64], values: npt.NDArray[np.generic]) -> list[str]:
        """One line (with its newline) per point; the same bytes as ``core.stores.lineprotocol``."""
        stamps = times.tolist()
        if self.kind is ValueKind.STATE:
            heads = self._state_heads
            return [f"{heads[c]}{t}\n" for c, t in zip(values.tolist(), stamps, strict=True)]
        head = f"{self._head}value="
        if self.kind is ValueKind.INTEGER:
            return [f"{head}{v}i {t}\n" for v, t in zip(values.tolist(), stamps, strict=True)]
        texts = list(map(repr, values.tolist()))
        # Like lineprotocol.format_field_value: a whole float is written without ".0".
        for i in np.flatnonzero(np.mod(values, 1) == 0).tolist():
            if texts[i].endswith(".0"):
                texts[i] = texts[i][:-2]
        return [f"{head}{v} {t}\n" for v, t in zip(texts, stamps, strict=True)]

    def points(self, times: npt.NDArray[np.int64], values: npt.NDArray[np.generic]) -> list[Point]:
        """The same data as ``core.store.Point`` objects, for stores without a bulk path."""
        stamps = times.tolist()
        fields: list[dict[str, FieldValue]]
        if self.kind is ValueKind.STATE:
            states = [(s.value, str(RAW_STATE_CODE[s])) for s in STATES]
            fields = [{"value": states[c][0], "quality": QUALITY, "raw": states[c][1]} for c in values.tolist()]
        else:
            cast = int if self.kind is ValueKind.INTEGER else float
            fields = [{"value": cast(v), "quality": QUALITY} for v in values.tolist()]
        return [Point(self.measurement, self.tags, f, t) for f, t in zip(fields, stamps, strict=True)]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Points of one series on one day."""

    series: Series
    times: npt.NDArray[np.int64]
    values: npt.NDArray[np.generic]

    def __len__(self) -> int:
        return len(self.times)


def chunks_to_points(chunks: Sequence[Chunk]) -> list[Point]:
    return [p for c in chunks for p in c.series.points(c.times, c.values)]


def chunks_to_lines(chunks: Sequence[Chunk]) -> list[str]:
    return [line for c in chunks for line in c.series.lines(c.times, c.values)]
