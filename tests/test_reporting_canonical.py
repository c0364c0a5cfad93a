"""Canonical JSON (RFC 8785): the worked examples of the RFC and of ECMAScript number formatting."""

from __future__ import annotations

import json
import math
import random
import struct

import pytest

from api.reporting.canonical import CanonicalFormError, canonical_json, canonical_report, format_number, parse_json_int
from tests.reporting_fixtures import sample_report


def test_rfc8785_example_from_section_3_2_2() -> None:
    # RFC 8785 section 3.2.2: the input (as JSON text) and its canonical form, verbatim.
    source = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(source)) == expected.encode("utf-8")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),  # ECMAScript writes negative zero as 0
        (3.0, "3"),  # a whole double has no ".0"
        (100.0, "100"),
        (0.1, "0.1"),
        (0.85, "0.85"),
        (-0.5, "-0.5"),
        (0.000001, "0.000001"),  # 1e-6 is the last one written out ...
        (1e-7, "1e-7"),  # ... smaller ones get an exponent
        (1.5e-7, "1.5e-7"),
        (1e20, "100000000000000000000"),  # 1e20 still written out ...
        (1e21, "1e+21"),  # ... from 1e21 on, an exponent with its sign
        (123456789012345680000.0, "123456789012345680000"),  # shortest digits, padded with zeros
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (0.1 + 0.2, "0.30000000000000004"),  # shortest round trip, not rounded for display
        (7, "7"),
        (-42, "-42"),
    ],
)
def test_numbers_are_written_as_ecmascript_writes_them(value: float, text: str) -> None:
    assert format_number(value) == text


def test_every_double_reads_back_to_itself_and_rewrites_to_the_same_text() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        value = struct.unpack("d", rng.randbytes(8))[0]
        if not math.isfinite(value):
            continue
        text = format_number(value)
        assert float(text) == value
        assert format_number(json.loads(text, parse_int=parse_json_int)) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 2**53 + 1, "\ud800"])
def test_values_without_a_canonical_form_are_refused(value: object) -> None:
    with pytest.raises(CanonicalFormError):
        canonical_json({"x": value})


def test_members_sorted_by_utf16_code_units_and_no_whitespace() -> None:
    # U+E000 sorts after U+1F600 by code point, before it by UTF-16 code unit (0xD83D < 0xE000).
    data = {"b": 1, "a": [1, 2, {"d": None, "c": True}], "\ue000": 1, "😀": 2}
    assert canonical_json(data) == '{"a":[1,2,{"c":true,"d":null}],"b":1,"😀":2,"\ue000":1}'.encode()


def test_a_report_has_one_canonical_form() -> None:
    first, second = canonical_report(sample_report()), canonical_report(sample_report())
    assert first == second
    assert canonical_json(json.loads(first, parse_int=parse_json_int)) == first
