"""What the KPI engine relies on, pinned down for both stores alike (real InfluxDB 1.6.7 and SQLite).

The two stores once disagreed about a reading flagged bad just before a window: InfluxDB used it as
the prior, SQLite dropped the prior altogether. Both must skip it and give the good reading before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.store import Point, Store
from core.wire import datetime_to_ns

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
NS0 = datetime_to_ns(T0)
MIN = 60 * 1_000_000_000


@pytest.fixture
def store(each_store: Store) -> Store:
    return each_store


def reading(eq: str, minutes: float, value: int, quality: str = "good", signal: str = "parts_total") -> Point:
    tags = {"site": "s", "line": "l", "equipment": eq, "signal": signal}
    return Point("part_counter", tags, {"value": value, "quality": quality}, NS0 + int(minutes * MIN))


async def test_a_bad_reading_is_never_the_prior_and_the_good_one_before_it_is(store: Store) -> None:
    await store.write(
        [
            reading("cnc-01", -10, 100),
            reading("cnc-01", -5, 999_999, quality="bad"),  # the last reading, but flagged bad
            reading("cnc-02", -3, 7, quality="uncertain"),  # uncertain readings still count
            reading("cnc-03", -2, 5, quality="bad"),  # only a bad reading: no prior at all
        ]
    )
    prior = await store.last_points("part_counter", T0, timedelta(hours=1))
    assert {(p.tags["equipment"], p.time_ns, p.fields["value"]) for p in prior} == {
        ("cnc-01", NS0 - 10 * MIN, 100),
        ("cnc-02", NS0 - 3 * MIN, 7),
    }
    frame = await store.last_before("part_counter", T0, timedelta(hours=1), {"equipment": "cnc-01"})
    assert frame["value"].tolist() == [100]


async def test_read_points_come_sorted_with_their_tags_and_fields(store: Store) -> None:
    await store.write([reading("cnc-02", 2, 3), reading("cnc-01", 1, 1), reading("cnc-01", 3, 5, "bad")])
    points = await store.read_points("part_counter", T0, T0 + timedelta(minutes=3), {"equipment": ["cnc-01", "x"]})
    assert [(p.tags["equipment"], p.time_ns - NS0, p.fields["value"], p.fields["quality"]) for p in points] == [
        ("cnc-01", 1 * MIN, 1, "good"),
    ]
    everything = await store.read_points("part_counter", T0, T0 + timedelta(hours=1))
    assert [p.time_ns - NS0 for p in everything] == [1 * MIN, 2 * MIN, 3 * MIN]
    assert everything[1].tags == {"site": "s", "line": "l", "equipment": "cnc-02", "signal": "parts_total"}


async def test_points_are_counted_per_equipment_and_hour_whatever_their_quality(store: Store) -> None:
    energy = Point("energy", {"equipment": "m-1", "signal": "energy_kwh"}, {"value": 1.5, "quality": "good"}, NS0)
    state = Point(
        "machine_state", {"equipment": "cnc-01", "signal": "state"}, {"value": "IDLE", "quality": "good"}, NS0
    )
    await store.write(
        [
            reading("cnc-01", 0, 1),
            reading("cnc-01", 59.9, 2, "bad"),
            reading("cnc-01", 60, 3),  # the next hour
            reading("cnc-01", 60, 3, signal="parts_good"),
            reading("cnc-02", 130, 4),  # outside the window
            energy,
            state,  # a string value: counted as well (InfluxDB 1.6 drops it from a multi-measurement count)
        ]
    )
    measurements = ["part_counter", "energy", "machine_state"]
    counts = await store.count_by_hour(measurements, T0, T0 + timedelta(hours=2), "equipment")
    hour = 3_600 * 1_000_000_000
    assert counts == {("cnc-01", NS0): 3, ("cnc-01", NS0 + hour): 2, ("m-1", NS0): 1}
    assert await store.count_by_hour([], T0, T0 + timedelta(hours=2), "equipment") == {}
