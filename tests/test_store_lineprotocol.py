"""Line-protocol encoding: escaping checked against influxdb-client's serializer, and refusals."""

from __future__ import annotations

import math

import pytest
from influxdb_client import Point as OraclePoint
from influxdb_client import WritePrecision

from core.errors import StoreRejected
from core.store import FieldValue, Point
from core.stores.lineprotocol import encode_point, encode_points

T = 1_764_057_600_123_456_789  # 2025-11-25T08:00:00.123456789Z: nanoseconds that a float would round


def oracle(point: Point) -> str:
    p = OraclePoint(point.measurement)
    for key, value in point.tags.items():
        p.tag(key, value)
    for key, field_value in point.fields.items():
        p.field(key, field_value)
    p.time(point.time_ns, WritePrecision.NS)
    return str(p.to_line_protocol())


TRICKY_POINTS = [
    Point("machine_state", {"site": "cq-demo", "equipment": "cnc-01"}, {"value": "PRODUCING"}, T),
    Point("with space,and comma", {"k": "v"}, {"value": 1.0}, T),
    Point("m=eq", {"a=b": "c=d"}, {"f=g": 1}, T),
    Point("m", {"tag key, spaced": "value, with=all of them"}, {"field key, spaced=": True}, T),
    Point("m", {"path": r"C:\data\file", "unicode": "车间 1"}, {"value": "温度"}, T),
    Point("m", {"z": "last", "a": "first", "m": "middle"}, {"b": 2, "a": 1}, T),
    Point("m", {}, {"text": 'say "hi" \\ back\\slash', "nl": "line1\nline2"}, T),
    Point("m", {}, {"v": 0.1, "w": 1e20, "x": 1e-7, "y": -0.0, "z": 1.2345678901234567}, T),
    Point("m", {}, {"whole": 5.0, "neg": -3.5, "huge": 1.7976931348623157e308}, T),
    Point("m", {}, {"i": 9_223_372_036_854_775_807, "j": -9_223_372_036_854_775_808, "k": 0}, T),
    Point("m", {}, {"t": True, "f": False}, -1_000_000_001),
    Point("m", {}, {"empty": ""}, 0),
]


@pytest.mark.parametrize("point", TRICKY_POINTS, ids=lambda p: f"{p.measurement}:{sorted(p.fields)}")
def test_encoding_matches_influxdb_client_serializer(point: Point) -> None:
    assert encode_point(point) == oracle(point)


def test_escaping_by_position_in_the_line() -> None:
    point = Point(
        "a b,c=d",
        {"t k": "v,w=x y"},
        {"f,k=": 'q"uote\\', "n": 7, "b": True, "x": 2.5},
        T,
    )
    assert encode_point(point) == (
        r"a\ b\,c=d,t\ k=v\,w\=x\ y "
        r'b=true,f\,k\=="q\"uote\\",n=7i,x=2.5 '
        f"{T}"
    )


def test_whole_floats_lose_their_point_but_stay_floats_and_ints_get_the_i_suffix() -> None:
    line = encode_point(Point("m", {}, {"f": 3.0, "i": 3, "big": 1e16}, 1))
    assert line == "m big=1e+16,f=3,i=3i 1"


def test_float_text_parses_back_to_the_same_double() -> None:
    for value in (0.1, 1 / 3, 2.0**-1074, 123456789.123456789, -1e-300):
        text = encode_point(Point("m", {}, {"v": value}, 1)).split(" ")[1].removeprefix("v=")
        assert float(text) == value


def test_timestamp_is_exact_nanoseconds() -> None:
    assert encode_point(Point("m", {}, {"v": 1}, T)).endswith(f" {T}")
    assert str(T).endswith("789")


def test_empty_tag_values_are_left_out_like_influxdb_does() -> None:
    assert encode_point(Point("m", {"a": "", "b": "x"}, {"v": 1}, 1)) == "m,b=x v=1i 1"


def test_a_batch_is_one_line_per_point() -> None:
    body = encode_points([Point("m", {}, {"v": 1}, 1), Point("m", {}, {"v": 2}, 2)])
    assert body == b"m v=1i 1\nm v=2i 2\n"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"value": math.nan}, "'value': nan is not finite"),
        ({"value": math.inf}, "'value': inf is not finite"),
        ({"value": -math.inf}, "'value': -inf is not finite"),
        ({"value": 2**63}, "does not fit in int64"),
        ({"value": -(2**63) - 1}, "does not fit in int64"),
        ({"value": None}, "unsupported type NoneType"),
        ({}, "has no fields"),
        ({"": 1}, "field key must not be empty"),
    ],
)
def test_values_line_protocol_cannot_carry_are_refused(fields: dict[str, FieldValue], reason: str) -> None:
    with pytest.raises(StoreRejected, match=reason.replace("(", r"\(")):
        encode_point(Point("m", {}, fields, 1))


@pytest.mark.parametrize(
    ("measurement", "tags", "reason"),
    [
        ("", {}, "measurement must not be empty"),
        ("#comment", {}, "reads as a comment"),
        ("line\nbreak", {}, "control character"),
        ("m", {"k": "tab\there"}, "control character"),
        ("m", {"k\r": "v"}, "control character"),
        ("m", {"k": "ends with\\"}, "backslash"),
        ("m", {"k": "back\\,comma"}, "backslash"),
        ("m\\ x", {}, "backslash"),
        ("m", {"": "v"}, "tag key must not be empty"),
    ],
)
def test_names_line_protocol_cannot_carry_are_refused(measurement: str, tags: dict[str, str], reason: str) -> None:
    with pytest.raises(StoreRejected, match=reason):
        encode_point(Point(measurement, tags, {"v": 1}, 1))


def test_a_refusal_in_one_point_refuses_the_whole_body() -> None:
    with pytest.raises(StoreRejected, match="nan"):
        encode_points([Point("m", {}, {"v": 1.0}, 1), Point("m", {}, {"v": math.nan}, 2)])


def test_series_keys_are_encoded_once_but_refusals_are_never_cached() -> None:
    good = Point("part_counter", {"site": "s", "equipment": "cnc 1"}, {"value": 1}, 5)
    again = Point("part_counter", {"equipment": "cnc 1", "site": "s"}, {"value": 2}, 6)  # same series, other order
    assert encode_point(good) == "part_counter,equipment=cnc\\ 1,site=s value=1i 5"
    assert encode_point(again) == "part_counter,equipment=cnc\\ 1,site=s value=2i 6"
    bad = Point("part_counter", {"equipment": "cnc\n1"}, {"value": 1}, 5)
    for _ in range(2):
        with pytest.raises(StoreRejected, match="control character"):
            encode_point(bad)
    # A tag or field that is not a string at all is refused with a reason, never a TypeError.
    for hostile in (
        Point("m", {"equipment": ["cnc-1"]}, {"value": 1}, 5),  # type: ignore[dict-item]
        Point("m", {1: "x", "a": "b"}, {"value": 1}, 5),  # type: ignore[dict-item]
        Point("m", {"a": "b"}, {1: 1, "value": 2}, 5),  # type: ignore[dict-item]
    ):
        with pytest.raises(StoreRejected, match="must be a string"):
            encode_point(hostile)
