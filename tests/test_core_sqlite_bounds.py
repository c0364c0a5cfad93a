"""The SQLite store refuses what it cannot hold as StoreRejected, naming the point, and stays usable."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import StoreRejected
from core.store import FieldValue, Point
from core.stores.sqlite import SqliteStore

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
T0_NS = 1_795_593_600 * 10**9
TAGS = {"equipment": "cnc-01", "signal": "parts_total"}


@pytest.mark.parametrize(
    ("time_ns", "value", "reason"),
    [
        (10**30, 1, "time_ns 1000000000000000000000000000000 is not an int64"),
        (-(2**63) - 1, 1, "is not an int64 number of nanoseconds"),
        (T0_NS, 10**30, "field 'value' = 1000000000000000000000000000000 is not a finite number within int64"),
        (T0_NS, 2**63, "is not a finite number within int64"),
        (T0_NS, math.inf, "field 'value' = inf is not a finite number"),
        (T0_NS, math.nan, "field 'value' = nan is not a finite number"),
    ],
)
async def test_values_beyond_int64_or_not_finite_are_rejected_and_the_store_goes_on(
    tmp_path: Path, time_ns: int, value: FieldValue, reason: str
) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    try:
        good = Point("part_counter", TAGS, {"value": 7}, T0_NS)
        with pytest.raises(StoreRejected, match=reason.replace("(", r"\(")):
            await store.write([good, Point("part_counter", TAGS, {"value": value}, time_ns)])
        await store.write([good])  # nothing of the refused batch was written; the store still works
        frame = await store.read("part_counter", T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    finally:
        await store.close()
    assert frame["value"].tolist() == [7]


async def test_the_int64_extremes_themselves_are_stored_exactly(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    try:
        await store.write([Point("part_counter", TAGS, {"value": 2**63 - 1}, T0_NS)])
        frame = await store.read("part_counter", T0, T0 + timedelta(seconds=1))
    finally:
        await store.close()
    assert frame["value"].tolist() == [2**63 - 1]
