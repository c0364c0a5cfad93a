"""The store interface: write a batch of points, read a window of one measurement, report health.

Two implementations live in ``core.stores``: InfluxDB through the v1-compatible HTTP API
(line protocol on ``/write``, InfluxQL on ``/query``) and embedded SQLite. Both overwrite a point
with the same measurement, tag set and timestamp, so replaying a batch after a fault is safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    # pandas (about 45 MiB) is imported where a frame is made, not with the interface: the edge agent
    # reaches this module through the command line and never reads a frame.
    import pandas as pd

FieldValue = bool | int | float | str
TagFilter = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True, slots=True)
class Point:
    """One point: a measurement, its tags, its fields and an exact timestamp in ns since the epoch."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int


@dataclass(frozen=True, slots=True)
class StoreHealth:
    ok: bool
    backend: str
    detail: str = ""


BAD_QUALITY = "bad"  # the ``quality`` field value of a reading that must never be counted (core.signals.Quality)


@runtime_checkable
class Store(Protocol):
    """What every room needs from the time-series store."""

    backend: str

    async def write(self, points: Sequence[Point]) -> None:
        """Write all points or raise StoreError (StoreUnavailable: retry; StoreRejected: do not)."""

    async def read_points(
        self, measurement: str, start: datetime, end: datetime, tags: TagFilter | None = None
    ) -> list[Point]:
        """Points with start <= time < end whose tags match, sorted by time; no DataFrame in between."""

    async def last_points(
        self, measurement: str, before: datetime, lookback: timedelta, tags: TagFilter | None = None
    ) -> list[Point]:
        """For each series the last point with before - lookback <= time < before whose quality is not bad.

        A reading flagged bad is never anyone's prior: it is skipped, and the good reading before it
        counts. Only the ``value`` and ``quality`` fields are guaranteed.
        """

    async def count_by_hour(
        self, measurements: Sequence[str], start: datetime, end: datetime, tag_key: str
    ) -> dict[tuple[str, int], int]:
        """Points (any quality) per (value of ``tag_key``, UTC hour start in ns) in [start, end).

        ``start`` and ``end`` must fall on whole hours. Used to notice data that arrived late.
        """

    async def read(
        self, measurement: str, start: datetime, end: datetime, tags: TagFilter | None = None
    ) -> pd.DataFrame:
        """Points with start <= time < end whose tags match, sorted by time.

        Columns: ``time`` (datetime64[ns, UTC]), one column per tag key and one per field key.
        A tag filter value may be one string or a sequence of accepted strings.
        """

    async def last_before(
        self, measurement: str, before: datetime, lookback: timedelta, tags: TagFilter | None = None
    ) -> pd.DataFrame:
        """``last_points`` as a DataFrame with the same columns as ``read``."""

    async def health(self) -> StoreHealth: ...

    async def close(self) -> None: ...


def empty_frame(tag_keys: Sequence[str] = (), field_keys: Sequence[str] = ("value",)) -> pd.DataFrame:
    """An empty result with the documented columns, so callers need no special case."""
    import pandas as pd

    frame = pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]")})
    for key in (*tag_keys, *field_keys):
        frame[key] = pd.Series([], dtype="object")
    return frame
