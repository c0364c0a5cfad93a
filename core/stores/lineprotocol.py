"""InfluxDB line protocol: encode ``core.store.Point`` exactly, or refuse it with a reason.

``measurement,tag=value,tag=value field=value,field=value time_ns`` — one point per line.

Escaping follows the parser that InfluxDB 1.x/2.x run (and that influxdb-client's serializer
targets): commas and spaces in measurements; commas, equals signs and spaces in tag keys, tag
values and field keys; double quotes and backslashes inside string field values. Tags and fields
are written in sorted key order, which InfluxDB recommends and which makes the output stable.

What line protocol cannot carry is refused with ``StoreRejected`` rather than written in a form the
server would mangle or drop silently:

* NaN and infinities (there is no literal for them);
* integers outside int64;
* control characters (newline, tab, …) in measurements, keys and tag values;
* a backslash right before a character that needs escaping, or at the end of a name (the parser
  would read it as an escape);
* an empty measurement, a measurement starting with ``#`` (a comment line), an empty key, a
  point without fields.

A tag whose value is the empty string is left out: to InfluxDB an empty tag and no tag are the same
series.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from core.errors import StoreRejected
from core.store import FieldValue, Point

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({'"': r"\"", "\\": r"\\"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A backslash before an escapable character (or at the end) is read as an escape by the parser, so
# the value that comes back would not be the value written.
_MEASUREMENT_AMBIGUOUS = re.compile(r"\\(?:[, ]|$)")
_KEY_AMBIGUOUS = re.compile(r"\\(?:[,= ]|$)")


def _checked(name: str, what: str, ambiguous: re.Pattern[str]) -> str:
    if not isinstance(name, str):
        raise StoreRejected(f"{what} must be a string, got {type(name).__name__} {name!r}")
    if not name:
        raise StoreRejected(f"{what} must not be empty")
    if _CONTROL.search(name):
        raise StoreRejected(f"{what} {name!r} contains a control character, which line protocol cannot carry")
    if ambiguous.search(name):
        raise StoreRejected(
            f"{what} {name!r} has a backslash before a separator or at the end, which line protocol cannot carry"
        )
    return name


def escape_measurement(name: str) -> str:
    name = _checked(name, "measurement", _MEASUREMENT_AMBIGUOUS)
    if name.startswith("#"):
        raise StoreRejected(f"measurement {name!r} starts with '#', which line protocol reads as a comment")
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(name: str, what: str = "key") -> str:
    """Escape a tag key, tag value or field key."""
    return _checked(name, what, _KEY_AMBIGUOUS).translate(_KEY_ESCAPES)


def float_text(value: float) -> str:
    """A finite float as a field value: the shortest text that parses back to the same double.

    A whole number needs no ".0", because a number without the "i" suffix is a float.
    """
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def string_text(value: str) -> str:
    """A string field value, quoted and escaped."""
    return f'"{value.translate(_STRING_ESCAPES)}"'


def format_field_value(key: str, value: FieldValue) -> str:
    # bool first: it is a subclass of int.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise StoreRejected(f"field {key!r}: integer {value} does not fit in int64")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StoreRejected(f"field {key!r}: {value} is not finite; line protocol cannot carry it")
        return float_text(value)
    if isinstance(value, str):
        return string_text(value)
    raise StoreRejected(f"field {key!r}: unsupported type {type(value).__name__} ({value!r})")


def _encode_series(measurement: str, tags: Iterable[tuple[str, str]]) -> str:
    """``measurement,tag=value,...`` with the tags in the order given; StoreRejected if any is unusable."""
    parts = [escape_measurement(measurement)]
    for key, value in tags:
        if value == "":
            continue
        parts.append(f"{escape_key(key, 'tag key')}={escape_key(value, f'tag {key!r} value')}")
    return ",".join(parts)


# A piece of equipment's series never changes, and checking and escaping it was most of the work of
# encoding a point: each distinct series is encoded once (errors are not cached; they raise again).
# The key is the tags in the order the point has them (sorting them for every point cost as much as
# the rest of the line); the encoding sorts them.
@functools.lru_cache(maxsize=65_536)
def _series(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    return _encode_series(measurement, sorted(tags))


def encode_series(measurement: str, tags: Mapping[str, str]) -> str:
    """``measurement,tag=value,...`` with the tags sorted and escaped, as ``encode_point`` writes it."""
    return _series(measurement, tuple(tags.items()))


@functools.lru_cache(maxsize=4_096)
def _field_keys(keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The field keys in sorted order, each with its escaped form."""
    return tuple((key, escape_key(key, "field key")) for key in sorted(keys))


def encode_point(point: Point) -> str:
    """One line (without the trailing newline) or StoreRejected saying what cannot be encoded."""
    try:
        series = _series(point.measurement, tuple(point.tags.items()))
    except TypeError:
        # A tag key or value that cannot be hashed or sorted (not a string): the uncached path says which.
        series = _encode_series(point.measurement, point.tags.items())
    if not point.fields:
        raise StoreRejected(f"point in {point.measurement!r} has no fields")
    fields = point.fields
    try:
        keys = _field_keys(tuple(fields))
    except (TypeError, StoreRejected):
        # A key that cannot be sorted or encoded: field by field, so the first fault is the one named.
        text = ",".join(
            f"{escape_key(key, 'field key')}={format_field_value(key, value)}" for key, value in fields.items()
        )
    else:
        text = ",".join(f"{escaped}={format_field_value(key, fields[key])}" for key, escaped in keys)
    if isinstance(point.time_ns, bool) or not isinstance(point.time_ns, int):
        raise StoreRejected(f"time_ns must be an integer number of nanoseconds, got {point.time_ns!r}")
    return f"{series} {text} {point.time_ns}"


def encode_points(points: Iterable[Point]) -> bytes:
    """A request body for ``/write?precision=ns``: one line per point, UTF-8."""
    return "".join(f"{encode_point(p)}\n" for p in points).encode()


@runtime_checkable
class LineProtocolWriter(Protocol):
    """A store that also takes raw points as ready-made lines (InfluxDB): a writer's fast path.

    Each line is what ``encode_point`` gives for the point (no newline); errors are those of
    ``Store.write``: StoreRejected (the server refused a point: split to find it), StoreUnavailable.
    """

    async def write_lines(self, lines: Sequence[str]) -> None: ...
