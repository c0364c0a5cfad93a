"""The embedded SQLite store honours the Store contract: exact ns, tag filters, idempotent overwrite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.store import Point, Store
from core.stores.sqlite import SqliteStore
from core.wire import datetime_to_ns

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
NS0 = datetime_to_ns(T0)


def _p(eq: str, value: object, offset_ns: int, **extra: object) -> Point:
    return Point("part_counter", {"equipment": eq, "signal": "parts_total"}, {"value": value, **extra}, NS0 + offset_ns)


async def test_read_filters_tags_and_window_with_exact_ns(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    assert isinstance(store, Store)
    await store.write([_p("a", 1, 1), _p("b", 2, 2), _p("a", 3, 10**9), _p("c", 9, 5)])
    frame = await store.read("part_counter", T0, T0 + timedelta(seconds=1), {"equipment": ["a", "b"]})
    assert list(frame["equipment"]) == ["a", "b"]
    assert [t.value for t in frame["time"]] == [NS0 + 1, NS0 + 2]
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    await store.close()


async def test_same_series_and_time_overwrites_and_merges_fields(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    await store.write([_p("a", 1, 0, quality="good")])
    await store.write([_p("a", 2, 0)])
    frame = await store.read("part_counter", T0, T0 + timedelta(seconds=1))
    assert len(frame) == 1
    assert (frame["value"].iloc[0], frame["quality"].iloc[0]) == (2, "good")


async def test_last_before_gives_one_row_per_series(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    await store.write([_p("a", 1, -3 * 10**9), _p("a", 2, -(10**9)), _p("b", 7, -2 * 10**9), _p("a", 5, 0)])
    frame = await store.last_before("part_counter", T0, timedelta(hours=1))
    rows = {row.equipment: (row.value, row.time.value) for row in frame.itertuples()}
    assert rows == {"a": (2, NS0 - 10**9), "b": (7, NS0 - 2 * 10**9)}
    empty = await store.last_before("part_counter", T0, timedelta(seconds=0.5))
    assert empty.empty and "time" in empty.columns
