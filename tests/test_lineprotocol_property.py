"""Line protocol for any input: escaping and typing against an independent serializer.

The oracle is influxdb-client's ``Point`` (a dev dependency used here only, never by the
platform). For any measurement, tags and fields — names with commas, spaces, equals signs, quotes,
backslashes, any Unicode; integers, floats, booleans and strings of any value — ``encode_point``
either writes exactly the line the oracle writes, or refuses the point with ``StoreRejected``, and
it refuses exactly the points line protocol cannot carry faithfully. Those are decided here on their
own (``carriable``), not by asking the encoder: where the oracle writes something for them, what it
writes is not what was given (it drops a NaN field, escapes a newline that InfluxDB's parser keeps as
two characters, appends a space to a tag value ending in a backslash, writes an integer beyond int64
that the server refuses).
"""

from __future__ import annotations

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client import Point as OraclePoint
from influxdb_client import WritePrecision

from core.errors import StoreRejected
from core.store import FieldValue, Point
from core.stores.lineprotocol import INT64_MAX, INT64_MIN, encode_point, encode_points

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TRICKY = ",= \"'\\#\n\t\r\x00\x7f车é𝄞"
NAMES = st.one_of(
    st.text(alphabet=st.sampled_from([*TRICKY, "a", "b", "_", "-", "1"]), max_size=8),
    st.text(max_size=12),
    st.sampled_from(["machine_state", "value", "#comment", "a\\", "a\\,b", "a\\ b", "a\\=b", "a\\b", "\\"]),
)
INTEGERS = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([INT64_MIN, INT64_MAX, INT64_MIN - 1, INT64_MAX + 1, 0, -1]),
    st.integers(-(2**70), 2**70),
)
FLOATS = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 5.0, 1e16, 1e-7, 1.7976931348623157e308, 5e-324]))
VALUES: st.SearchStrategy[FieldValue] = st.one_of(INTEGERS, FLOATS, st.booleans(), NAMES, st.text())
TIMES = st.one_of(st.integers(INT64_MIN, INT64_MAX), st.sampled_from([0, -1, 1_764_057_600_123_456_789]))


def oracle(point: Point) -> str:
    p = OraclePoint(point.measurement)
    for key, value in point.tags.items():
        p.tag(key, value)
    for key, field_value in point.fields.items():
        p.field(key, field_value)
    p.time(point.time_ns, WritePrecision.NS)
    return str(p.to_line_protocol())


def _plain_name(name: str, separators: str) -> bool:
    """Non-empty, no control character, and no backslash the parser would read as an escape."""
    if not name or CONTROL.search(name):
        return False
    return re.search(r"\\(?:[" + re.escape(separators) + r"]|$)", name) is None


def carriable(point: Point) -> bool:
    """Whether line protocol can carry the point as it is (decided without the encoder)."""
    if not _plain_name(point.measurement, ", ") or point.measurement.startswith("#") or not point.fields:
        return False
    for key, value in point.tags.items():
        if value == "":
            continue  # no tag: an empty tag and no tag are the same series to InfluxDB
        if not (_plain_name(key, ",= ") and _plain_name(value, ",= ")):
            return False
    for key, field_value in point.fields.items():
        if not _plain_name(key, ",= "):
            return False
        if isinstance(field_value, float) and not math.isfinite(field_value):
            return False
        if type(field_value) is int and not INT64_MIN <= field_value <= INT64_MAX:
            return False
    return True


POINTS = st.builds(
    Point,
    measurement=NAMES,
    tags=st.dictionaries(NAMES, NAMES, max_size=4),
    fields=st.dictionaries(NAMES, VALUES, max_size=4),
    time_ns=TIMES,
)


@settings(max_examples=3000, deadline=None)
@given(point=POINTS)
def test_a_point_is_written_as_the_oracle_writes_it_or_refused_when_line_protocol_cannot_carry_it(
    point: Point,
) -> None:
    try:
        line = encode_point(point)
    except StoreRejected:
        assert not carriable(point), f"refused a point line protocol can carry: {point!r}"
        return
    assert carriable(point), f"wrote {line!r} for a point line protocol cannot carry"
    assert line == oracle(point)


PLAIN_NAMES = st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters="\\"), min_size=1)


@settings(max_examples=1000, deadline=None)
@given(
    measurement=PLAIN_NAMES.filter(lambda name: not name.startswith("#")),
    tags=st.dictionaries(PLAIN_NAMES, PLAIN_NAMES, max_size=5),
    fields=st.dictionaries(
        PLAIN_NAMES,
        st.one_of(
            st.integers(INT64_MIN, INT64_MAX),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.text(),
        ),
        min_size=1,
        max_size=5,
    ),
    time_ns=TIMES,
)
def test_every_point_without_control_characters_or_backslashes_in_its_names_is_written_as_the_oracle_writes_it(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], time_ns: int
) -> None:
    point = Point(measurement, tags, fields, time_ns)
    assert encode_point(point) == oracle(point)


@settings(max_examples=300, deadline=None)
@given(points=st.lists(POINTS, max_size=5))
def test_a_body_is_the_oracles_lines_or_refused_whole(points: list[Point]) -> None:
    if all(carriable(p) for p in points):
        assert encode_points(points) == "".join(f"{oracle(p)}\n" for p in points).encode()
    else:
        try:
            encode_points(points)
        except StoreRejected:
            return
        raise AssertionError("a body with a point line protocol cannot carry was written")
