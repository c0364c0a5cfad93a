"""Embedded SQLite store for the demo and for single-machine installs.

Points are keyed by (measurement, tag set, timestamp) like InfluxDB, and a second write of the same
key merges its fields into the first, so replays are idempotent here too.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import StoreError, StoreRejected
from core.store import BAD_QUALITY, FieldValue, Point, StoreHealth, TagFilter
from core.stores.frames import FrameReads
from core.stores.sqlitefile import SqliteFile
from core.wire import INT64_MAX, INT64_MIN, datetime_to_ns

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    series      TEXT NOT NULL,
    time_ns     INTEGER NOT NULL,
    fields      TEXT NOT NULL,
    PRIMARY KEY (measurement, series, time_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_time ON points (measurement, time_ns);
"""

_HOUR_NS = 3_600_000_000_000

_UPSERT = """
INSERT INTO points (measurement, series, time_ns, fields) VALUES (?, ?, ?, ?)
ON CONFLICT (measurement, series, time_ns) DO UPDATE SET fields = json_patch(points.fields, excluded.fields)
"""


def _series_key(tags: dict[str, str] | Any) -> str:
    return json.dumps(dict(sorted(tags.items())), separators=(",", ":"), ensure_ascii=False)


def _tag_clause(tags: TagFilter | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for key, wanted in (tags or {}).items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        if not values:
            clauses.append("0")
            continue
        clauses.append(f"json_extract(series, ?) IN ({','.join('?' * len(values))})")
        params.append(f'$."{key}"')
        params.extend(values)
    return "".join(f" AND {c}" for c in clauses), params


def _fits(value: FieldValue | int) -> bool:
    """What SQLite can bind and JSON can carry, the same bounds InfluxDB enforces: int64, finite floats."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int):
        return INT64_MIN <= value <= INT64_MAX
    return True


def _row(point: Point) -> tuple[str, str, int, str]:
    # Refused here, as StoreRejected naming the point, rather than as an OverflowError from parameter
    # binding (or malformed JSON from json.dumps(inf)) that no caller expects.
    if isinstance(point.time_ns, bool) or not isinstance(point.time_ns, int) or not _fits(point.time_ns):
        raise StoreRejected(f"{point.measurement}: time_ns {point.time_ns!r} is not an int64 number of nanoseconds")
    for key, value in point.fields.items():
        if not _fits(value):
            raise StoreRejected(f"{point.measurement}: field {key!r} = {value!r} is not a finite number within int64")
    fields = json.dumps(dict(point.fields), separators=(",", ":"))
    return point.measurement, _series_key(point.tags), point.time_ns, fields


class SqliteStore(FrameReads):
    """The Store interface on one SQLite file (WAL mode; safe for one writer and many readers)."""

    backend = "sqlite"

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._file = SqliteFile(self.path, _SCHEMA, "SQLite store")

    def _write_sync(self, points: Sequence[Point]) -> None:
        rows = [_row(p) for p in points]
        self._file.transaction(lambda conn: conn.executemany(_UPSERT, rows))

    async def write(self, points: Sequence[Point]) -> None:
        if points:
            await asyncio.to_thread(self._write_sync, points)

    async def read_points(
        self, measurement: str, start: datetime, end: datetime, tags: TagFilter | None = None
    ) -> list[Point]:
        where, params = _tag_clause(tags)
        sql = (
            "SELECT time_ns, series, fields FROM points"
            f" WHERE measurement = ? AND time_ns >= ? AND time_ns < ?{where} ORDER BY time_ns"
        )
        rows = await asyncio.to_thread(
            self._file.query, sql, [measurement, datetime_to_ns(start), datetime_to_ns(end), *params]
        )
        return [Point(measurement, json.loads(s), json.loads(f), t) for t, s, f in rows]

    async def last_points(
        self, measurement: str, before: datetime, lookback: timedelta, tags: TagFilter | None = None
    ) -> list[Point]:
        where, params = _tag_clause(tags)
        # SQLite returns the other columns of the row that holds MAX(time_ns): the last good reading.
        # INDEXED BY: left alone, the planner walks the primary key for GROUP BY series, i.e. every
        # row of the measurement, to find the few in a short look-back (0.4 s -> 0.1 ms on 4 M rows).
        sql = (
            "SELECT MAX(time_ns), series, fields FROM points INDEXED BY points_by_time"
            " WHERE measurement = ? AND time_ns >= ? AND time_ns < ?"
            f" AND json_extract(fields, '$.quality') IS NOT ?{where} GROUP BY series ORDER BY 1"
        )
        end_ns = datetime_to_ns(before)
        start_ns = datetime_to_ns(before - lookback)
        rows = await asyncio.to_thread(self._file.query, sql, [measurement, start_ns, end_ns, BAD_QUALITY, *params])
        return [Point(measurement, json.loads(s), json.loads(f), t) for t, s, f in rows]

    async def count_by_hour(
        self, measurements: Sequence[str], start: datetime, end: datetime, tag_key: str
    ) -> dict[tuple[str, int], int]:
        if not measurements:
            return {}
        sql = (
            "SELECT json_extract(series, ?), time_ns / ?, COUNT(*) FROM points"
            f" WHERE measurement IN ({','.join('?' * len(measurements))}) AND time_ns >= ? AND time_ns < ?"
            " GROUP BY 1, 2"
        )
        params = [f'$."{tag_key}"', _HOUR_NS, *measurements, datetime_to_ns(start), datetime_to_ns(end)]
        rows = await asyncio.to_thread(self._file.query, sql, params)
        return {(str(tag), int(hour) * _HOUR_NS): int(count) for tag, hour, count in rows if tag is not None}

    async def health(self) -> StoreHealth:
        try:
            await asyncio.to_thread(self._file.query, "SELECT 1", [])
        except StoreError as exc:
            return StoreHealth(False, self.backend, str(exc))
        return StoreHealth(True, self.backend, str(self.path))

    async def close(self) -> None:
        self._file.close()
