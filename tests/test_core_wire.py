"""The uplink wire format round-trips exactly and rejects bad input precisely, sample by sample.

Hostile input (±Inf, huge integers, years 0001 and 9999, deep or huge JSON) ends in a precise reason,
never in an exception nobody expects.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import WireFormatError
from core.wire import (
    MAX_NESTING,
    MAX_SAMPLES_PER_BATCH,
    Sample,
    WireLimits,
    datetime_to_ns,
    decode_batch,
    encode_batch,
    ns_to_datetime,
)

TS = datetime(2026, 11, 25, 8, 0, 0, 912345, tzinfo=UTC)


def test_batch_round_trips_values_and_timestamps_exactly() -> None:
    samples = [
        Sample(equipment="cnc-01", signal="state", ts=TS, value="PRODUCING", raw="1"),
        Sample(equipment="cnc-01", signal="parts_total", ts=TS, value=1042),
        Sample(equipment="meter-a", signal="energy_kwh", ts=TS, value=12.5),
    ]
    batch = decode_batch(encode_batch("gw-1", 7, samples))
    assert (batch.edge, batch.seq, batch.rejected) == ("gw-1", 7, [])
    assert batch.samples == samples
    assert batch.samples[0].ts_ns == 1_795_593_600_912_345_000


def test_ns_conversion_is_exact_far_from_the_epoch() -> None:
    # 2026-11-25T08:00:00Z = 1,795,593,600 s since the epoch; float seconds would lose the last digits.
    assert datetime_to_ns(TS) == 1_795_593_600 * 10**9 + 912_345_000
    assert ns_to_datetime(datetime_to_ns(TS)) == TS


def _payload(samples: list[dict[str, object]], **envelope: object) -> bytes:
    body = {"v": 1, "edge": "gw-1", "seq": 1, "samples": samples, **envelope}
    return json.dumps(body).encode()


GOOD = {"equipment": "cnc-01", "signal": "parts_good", "ts": "2026-11-25T08:00:00Z", "value": 3}


def test_bad_samples_are_listed_and_good_ones_kept() -> None:
    batch = decode_batch(
        _payload(
            [
                GOOD,
                {**GOOD, "signal": "state", "value": "RUNNING"},
                {**GOOD, "value": -1},
                {**GOOD, "ts": "2026-11-25T08:00:00"},
                {**GOOD, "signal": "state", "value": "OFFLINE", "ts_source": "gateway", "flags": ["offline"]},
            ]
        )
    )
    # OFFLINE is no canonical state, but the edge's word that it stopped listening: it passes.
    assert [s.value for s in batch.samples] == [3, "OFFLINE"]
    reasons = [r.reason for r in batch.rejected]
    assert [r.index for r in batch.rejected] == [1, 2, 3]
    assert reasons[0].startswith("samples[1].value:") and "RUNNING" in reasons[0]
    assert reasons[1].startswith("samples[2].value:") and "non-negative integer" in reasons[1]
    assert reasons[2].startswith("samples[3].ts:") and "timezone" in reasons[2]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (_payload([GOOD], v=2), "v: Value error, unsupported wire version 2"),
        (_payload([]), "samples: List should have at least 1 item"),
        (_payload([GOOD], seq=-4), "seq: Input should be greater than or equal to 0"),
        (json.dumps({"v": 1, "seq": 1, "samples": [GOOD]}).encode(), "edge: Field required"),
    ],
)
def test_broken_envelope_is_rejected_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireFormatError, match=reason):
        decode_batch(payload)


NOW = datetime(2026, 11, 25, 8, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        ({**GOOD, "value": math.inf}, "samples[0].value: Value error, inf is not a finite number"),
        ({**GOOD, "value": math.nan}, "samples[0].value: Value error, nan is not a finite number"),
        ({**GOOD, "signal": "energy_kwh", "value": -math.inf}, "samples[0].value: Value error, -inf is not a finite"),
        ({**GOOD, "signal": "load_pct", "value": math.inf}, "samples[0].value: Value error, inf is not a finite"),
        ({**GOOD, "value": 10**30}, "samples[0].value: Value error, integer with 31 digits does not fit in int64"),
        ({**GOOD, "value": 1e30}, "samples[0].value: Value error, integer with 31 digits does not fit in int64"),
        ({**GOOD, "signal": "energy_kwh", "value": 10**400}, "integer with 401 digits does not fit in int64"),
        ({**GOOD, "signal": "load_pct", "value": -(2**63) - 1}, "integer with 19 digits does not fit in int64"),
        ({**GOOD, "ts": "0001-01-01T00:00:00Z"}, "samples[0].ts: Value error, 0001-01-01T00:00:00+00:00 is outside"),
        ({**GOOD, "ts": "0001-01-01T00:00:00+01:00"}, "samples[0].ts: Value error, 0001-01-01T00:00:00+01:00 is"),
        ({**GOOD, "ts": "9999-12-31T23:59:59-14:00"}, "samples[0].ts: Value error, 9999-12-31T23:59:59-14:00 is"),
        ({**GOOD, "ts": "2262-04-12T00:00:00Z"}, "outside the range of int64 nanoseconds"),
        ({**GOOD, "ts": 1e30}, "samples[0].ts: Input should be a valid datetime"),
        ({**GOOD, "value": [[[[1]]]]}, "samples[0].value: Value error, must be a number or a state name, got list"),
        ({**GOOD, "value": {"a": 1}}, "samples[0].value: Value error, must be a number or a state name, got dict"),
        ({**GOOD, "value": None}, "must be a number or a state name, got NoneType"),
        ({**GOOD, "signal": "state", "value": "X" * 100_000}, "state must be one of"),
        ({**GOOD, "equipment": "e" * 65}, "samples[0].equipment: String should have at most 64 characters"),
        ({**GOOD, "raw": "r" * 129}, "samples[0].raw: String should have at most 128 characters"),
        ({**GOOD, "flags": ["f"] * 17}, "samples[0].flags: Tuple should have at most 16 items"),
        ({**GOOD, "flags": ["f" * 65]}, "samples[0].flags[0]: String should have at most 64 characters"),
        ({**GOOD, "extra": [1]}, "samples[0].extra: Extra inputs are not permitted"),
    ],
)
def test_hostile_samples_are_rejected_with_a_precise_reason(sample: dict[str, object], reason: str) -> None:
    batch = decode_batch(_payload([GOOD, sample]), now=NOW)
    assert [s.value for s in batch.samples] == [3]
    (rejected,) = batch.rejected
    assert reason.replace("samples[0]", "samples[1]") in rejected.reason
    assert len(rejected.reason) < 400  # a 100 kB state name is not echoed whole
    json.loads(rejected.payload)  # the dead letter keeps valid JSON, ±Inf as the literal Python writes


def test_timestamps_outside_the_window_around_the_receivers_clock_are_rejected() -> None:
    limits = WireLimits(max_past=timedelta(days=2), max_future=timedelta(seconds=60))
    samples = [
        {**GOOD, "ts": "2026-11-23T08:00:30Z"},  # exactly two days back: inside
        {**GOOD, "ts": "2026-11-23T08:00:29Z"},
        {**GOOD, "ts": "2026-11-25T08:01:30Z"},  # exactly one minute ahead: inside
        {**GOOD, "ts": "2026-11-25T08:01:31Z"},
    ]
    batch = decode_batch(_payload(samples), limits=limits, now=NOW)
    assert [datetime_to_ns(s.ts) for s in batch.samples] == [
        datetime_to_ns(datetime(2026, 11, 23, 8, 0, 30, tzinfo=UTC)),
        datetime_to_ns(datetime(2026, 11, 25, 8, 1, 30, tzinfo=UTC)),
    ]
    assert [r.reason for r in batch.rejected] == [
        "samples[1].ts: 2026-11-23T08:00:29.000000Z is more than 2 days before the receiver's clock"
        " (2026-11-25T08:00:30.000000Z)",
        "samples[3].ts: 2026-11-25T08:01:31.000000Z is more than 60 s after the receiver's clock"
        " (2026-11-25T08:00:30.000000Z)",
    ]
    # Without the receiver's clock only the int64 bound applies (decode_batch never reads a clock).
    assert len(decode_batch(_payload(samples), limits=limits).samples) == 4


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_payload([GOOD], seq=10**30), "seq: Input should be less than or equal to 9223372036854775807"),
        (_payload([GOOD], seq=math.inf), "seq: Input should be a finite number"),
        (_payload([GOOD], v=math.inf), "v: Input should be a finite number"),
        (_payload([GOOD], seq="7"), None),  # lax JSON: a numeric string is a number; fine, and bounded
        (_payload([GOOD], edge="gw/other"), "edge: String should match pattern"),
        (_payload([GOOD], edge="x" * 65), "edge: String should match pattern"),
        (_payload([GOOD], sent_at="0001-01-01T00:00:00+01:00"), "sent_at: Value error, 0001-01-01T00:00:00+01:00"),
        (b'{"v": 1, "edge": "gw-1", "seq": 1, "samples": ' + _nested(100_000) + b"}", "nests deeper than"),
        (_nested(50_000), "nests deeper than"),
        (b'{"v": 1, "edge": "gw-1", "seq": 1' + b"0" * 5000 + b', "samples": []}', "not usable JSON: Exceeds"),
        (_payload([GOOD] * (MAX_SAMPLES_PER_BATCH + 1)), "samples: List should have at most 50000 items"),
        (_payload([{**GOOD, "raw": "x" * 100}] * 12), "payload of 2"),
    ],
)
def test_hostile_envelopes_are_refused_with_a_precise_reason(payload: bytes, reason: str | None) -> None:
    limits = WireLimits(max_payload_bytes=2000) if reason == "payload of 2" else WireLimits()
    if reason is None:
        assert decode_batch(payload, limits=limits).seq == 7
        return
    with pytest.raises(WireFormatError) as caught:
        decode_batch(payload, limits=limits)
    assert reason in caught.value.reason


def test_a_deeply_nested_sample_is_kept_as_a_dead_letter_cut_at_the_nesting_limit() -> None:
    deep: object = 1
    for _ in range(900):
        deep = [deep]
    batch = decode_batch(_payload([{**GOOD, "value": deep}]))
    (rejected,) = batch.rejected
    kept = json.loads(rejected.payload)
    depth, node = 2, kept["value"]  # the sample is level 1, its value level 2
    while isinstance(node, list):
        node, depth = node[0], depth + 1
    assert depth == MAX_NESTING  # the marker takes the place of the first level too deep
    assert node == f"<list nested deeper than {MAX_NESTING} levels, not kept>"


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
    st.sampled_from(["2026-11-25T08:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "state"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)
SAMPLE_KEYS = st.sampled_from(["equipment", "signal", "ts", "value", "raw", "quality", "ts_source", "flags", "x"])
FUZZED_SAMPLES = st.builds(
    lambda base, changes: {**base, **changes},
    st.sampled_from([GOOD, {**GOOD, "signal": "state", "value": "IDLE"}, {**GOOD, "signal": "energy_kwh"}]),
    st.dictionaries(SAMPLE_KEYS, JSON_VALUES, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    samples=st.lists(FUZZED_SAMPLES, min_size=1, max_size=5),
    envelope=st.dictionaries(st.sampled_from(["v", "edge", "seq", "sent_at", "extra"]), JSON_VALUES, max_size=2),
)
def test_decode_batch_ends_in_a_batch_or_a_wire_format_error_whatever_the_input(
    samples: list[dict[str, object]], envelope: dict[str, object]
) -> None:
    try:
        batch = decode_batch(_payload(samples, **envelope), now=NOW)
    except WireFormatError as exc:
        assert exc.reason
        return
    assert len(batch.samples) + len(batch.rejected) == len(samples)
    assert 0 <= batch.seq <= 2**63 - 1
    for sample in batch.samples:
        assert -(2**63) <= sample.ts_ns <= 2**63 - 1
        if isinstance(sample.value, float):
            assert math.isfinite(sample.value)
        elif isinstance(sample.value, int):
            assert -(2**63) <= sample.value <= 2**63 - 1
    for rejected in batch.rejected:
        assert rejected.reason.startswith(f"samples[{rejected.index}]")
        json.loads(rejected.payload)
