"""Turn rows from any backend into the DataFrame shape the Store interface documents."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from core.store import Point, TagFilter, empty_frame


def rows_to_frame(rows: Iterable[tuple[int, Mapping[str, str], Mapping[str, Any]]]) -> pd.DataFrame:
    """``(time_ns, tags, fields)`` rows -> DataFrame with a ``time`` column in datetime64[ns, UTC]."""
    records = [{"time": t, **tags, **fields} for t, tags, fields in rows]
    if not records:
        return empty_frame()
    frame = pd.DataFrame.from_records(records)
    # pandas 3 would infer microseconds from Python datetimes; build from exact integer ns instead.
    frame["time"] = pd.to_datetime(frame["time"].astype("int64"), unit="ns", utc=True).astype("datetime64[ns, UTC]")
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def points_to_frame(points: Iterable[Point]) -> pd.DataFrame:
    """Points of one measurement -> the documented DataFrame shape."""
    return rows_to_frame((p.time_ns, p.tags, p.fields) for p in points)


class FrameReads(ABC):
    """The DataFrame reads of the Store interface, from a store's point reads."""

    @abstractmethod
    async def read_points(
        self, measurement: str, start: datetime, end: datetime, tags: TagFilter | None = None
    ) -> list[Point]: ...

    @abstractmethod
    async def last_points(
        self, measurement: str, before: datetime, lookback: timedelta, tags: TagFilter | None = None
    ) -> list[Point]: ...

    async def read(
        self, measurement: str, start: datetime, end: datetime, tags: TagFilter | None = None
    ) -> pd.DataFrame:
        return points_to_frame(await self.read_points(measurement, start, end, tags))

    async def last_before(
        self, measurement: str, before: datetime, lookback: timedelta, tags: TagFilter | None = None
    ) -> pd.DataFrame:
        return points_to_frame(await self.last_points(measurement, before, lookback, tags))
