"""Turn rows from any backend into the DataFrame shape the Store interface documents."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from core.store import Point, empty_frame


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
