"""Canonical JSON: the one byte sequence a report has, so that it can be hashed and signed.

The form is RFC 8785 (JSON Canonicalization Scheme, JCS), which any auditor can reproduce with an
off-the-shelf JCS library:

* objects with their members sorted by key (by UTF-16 code units, as JCS says; for the keys of a
  report that is plain alphabetical order), no whitespace anywhere, UTF-8 without a BOM;
* strings with only ``"``, ``\\`` and control characters escaped (``\\n``, ``\\t`` ... or
  ``\\u00XX`` in lowercase hex); every other character as itself;
* numbers as ECMAScript writes an IEEE-754 double: the shortest decimal that reads back as the
  same double, without a trailing ``.0`` (3.0 is ``3``), in exponent form only below 1e-6 and from
  1e21 on (``1e-7``, ``1e+21``); ``-0`` is ``0``. NaN and infinities have no JSON form and are refused,
  as are integers beyond 2**53 (a double cannot hold them exactly).

Reading a canonical file back with ``json.loads`` and writing it again gives the same bytes, which is
how ``verify_report_bytes`` checks that a file is in canonical form.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from kpi.certification_models import CertificationReport

_MAX_SAFE_INTEGER = 2**53


class CanonicalFormError(ValueError):
    """A value has no canonical JSON form (NaN, an infinity, a huge integer, a lone surrogate ...)."""


def format_number(value: float | int) -> str:
    """A number as RFC 8785 writes it (ECMAScript's Number.prototype.toString)."""
    if isinstance(value, bool):
        raise CanonicalFormError("a boolean is not a number")
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise CanonicalFormError(f"integer {value} is beyond 2**53 and has no exact JSON number")
        return str(value)
    if not math.isfinite(value):
        raise CanonicalFormError(f"{value!r} has no JSON form")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest round-tripping digits; rewrite them in ECMAScript's layout.
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # value = 0.<digits> x 10^point
    exponent10 = int(exp_text) if exp_text else 0
    # 0.00123: the point sits before the fraction's leading zeros
    leading_zeros = len(fraction) - len(fraction.lstrip("0"))
    point = exponent10 - leading_zeros if whole == "0" else len(whole) + exponent10
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= point <= 21:
        text = digits + "0" * (point - k)
    elif 0 < point <= 21:
        text = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        exponent = point - 1
        head = digits[0] if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{head}e{'+' if exponent > 0 else '-'}{abs(exponent)}"
    return sign + text


def parse_json_int(text: str) -> int | float:
    """For ``json.loads(parse_int=...)``: integers a double holds exactly stay int, larger become float."""
    value = int(text)
    return value if abs(value) <= _MAX_SAFE_INTEGER else float(value)


def _string(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalFormError(f"string {text[:40]!r} holds a lone surrogate") from exc
    return json.dumps(text, ensure_ascii=False)


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int | float):
        out.append(format_number(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for n, key in enumerate(sorted(value, key=_utf16_key)):
            if not isinstance(key, str):
                raise CanonicalFormError(f"object key {key!r} is not a string")
            if n:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, Sequence):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise CanonicalFormError(f"{type(value).__name__} has no JSON form")


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 bytes of a JSON value (dicts, lists, strings, numbers, booleans, None)."""
    out: list[str] = []
    try:
        _write(value, out)
    except RecursionError:
        raise CanonicalFormError("the value is nested too deeply") from None
    return "".join(out).encode("utf-8")


def report_document(report: CertificationReport) -> dict[str, Any]:
    """The report as JSON data (datetimes as ISO-8601 strings, tuples as arrays)."""
    return report.model_dump(mode="json")


def canonical_report(report: CertificationReport) -> bytes:
    """The canonical JSON of a report: what is hashed and signed."""
    return canonical_json(report_document(report))
