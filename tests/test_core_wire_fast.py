"""The fast decoder accepts exactly what the pydantic model accepts, with the same values and reasons.

``fast_sample`` builds a Sample without pydantic for the plain shape and leaves everything else to
``Sample.model_validate``. The reference is the model alone (``decode_batch(..., reference=True)``);
these properties hold the two against each other on generated samples, plain and hostile mixed.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.errors import WireFormatError
from core.signals import ENERGY_COUNTERS, OFFLINE, PART_COUNTERS, MachineState, Quality
from core.wire import (
    INT64_MAX,
    INT64_MIN,
    DecodedBatch,
    Sample,
    TimestampSource,
    WireLimits,
    decode_batch,
    decode_sample,
    encode_batch,
    fast_sample,
)

NOW = datetime(2026, 11, 25, 8, 0, 30, tzinfo=UTC)


def _mostly(plain: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The plain value three times in four, so samples with one thing wrong are common."""
    return st.one_of(plain, plain, plain, hostile)


BOUNDARY_VALUES: list[Any] = [0, -1, 1, INT64_MAX, INT64_MAX + 1, INT64_MIN, INT64_MIN - 1, 0.0, -0.0, -1.0, -0.5]
BOUNDARY_VALUES += [5.0, 0.5, True, False, math.inf, -math.inf, math.nan, 1e30, 2.0**63, None, "", "PRODUCING"]
BOUNDARY_VALUES += [OFFLINE, "RUNNING", "5", [1], {"a": 1}]
BOUNDARY_NUMBERS = st.sampled_from(BOUNDARY_VALUES)
EDGE_TIMESTAMPS = [
    "2026-11-25T08:00:00Z",
    "2026-11-25T08:00:00.912Z",
    "2026-11-25T08:00:00.912000Z",
    "2026-11-25T08:00:00.9120000Z",
    "2026-11-25T08:00:00.912000+00:00",
    "2026-11-25T08:00:00.912000+01:00",
    "2026-11-25T08:00:00.912000",
    "2026-11-25t08:00:00.912000z",
    "2026-11-25 08:00:00.912000Z",
    "2026-11-25T24:00:00.000000Z",
    "2026-11-25T23:59:60.000000Z",
    "2026-02-30T08:00:00.000000Z",
    "2026-11-25T08:00:00.+12345Z",
    "2026-11-25T08:00:00.1234 Z",
    "2026-11-25T08:00:00.12345aZ",
    "2026-11-25T08:0:000.123456Z",
    "+026-11-25T08:00:00.123456Z",
    "2026-11-25T08:00:00,123456Z",
    "20261125T080000.12345678Z",
    "1677-09-21T00:12:43.145224Z",
    "1677-09-21T00:12:43.145225Z",
    "2262-04-11T23:47:16.854775Z",
    "2262-04-11T23:47:16.854776Z",
    "0001-01-01T00:00:00.000000Z",
    "9999-12-31T23:59:59.999999Z",
    "\uff12026-11-25T08:00:00.123456Z",
    "2026-11-25T08:00:00Z\n",
]

INTS = st.one_of(
    st.integers(-5, 5),
    st.integers(INT64_MIN - 2, INT64_MIN + 2),
    st.integers(INT64_MAX - 2, INT64_MAX + 2),
    st.integers(-(10**30), 10**30),
)
FLOATS = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 5.0, -1.5, 1e30, 2.0**63, math.inf, -math.inf, math.nan]))
TEXT = st.one_of(
    st.sampled_from(["", "cnc-01", "é", "\ud800", "a" * 64, "a" * 65, "r" * 128, "r" * 129, "x y", "1"]),
    st.text(max_size=70),
)
STATES = st.sampled_from([*MachineState.__members__, OFFLINE, "RUNNING", "producing", ""])
SIGNALS = st.one_of(
    st.sampled_from(["state", *sorted(PART_COUNTERS), *sorted(ENERGY_COUNTERS), "load_pct", "spindle_speed"]),
    st.sampled_from(["", "Load", "9x", "a-b", "a" * 64, "a" * 65, "load_pct\n", "ä"]),
    st.text(max_size=10),
)


def _plain_ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


TIMESTAMPS = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: _plain_ts(d) if d.year >= 1000 else d.isoformat() + "Z"
    ),
    st.sampled_from(EDGE_TIMESTAMPS),
    st.integers(-(10**12), 10**12),
    st.floats(),
    st.text(max_size=30),
)
VALUES = st.one_of(
    INTS, FLOATS, STATES, st.booleans(), st.none(), TEXT, st.lists(st.integers(), max_size=2), st.just({"a": 1})
)
FLAGS = st.one_of(
    st.lists(st.sampled_from(["offline", "stale", "", "f" * 64, "f" * 65, "é"]), max_size=18),
    st.lists(st.integers(), max_size=2),
    st.just("offline"),
    st.tuples(st.just("offline")),
    st.none(),
)
OPTIONAL = {
    "raw": _mostly(st.sampled_from(["1", "0x2A", ""]), st.one_of(st.none(), TEXT, st.integers())),
    "quality": _mostly(
        st.sampled_from(["good", "uncertain", "bad"]),
        st.one_of(st.sampled_from(["GOOD", ""]), st.integers(), st.none(), st.lists(st.integers(), max_size=1)),
    ),
    "ts_source": _mostly(
        st.sampled_from(["device", "server", "gateway"]), st.one_of(st.just("edge"), st.lists(st.text(max_size=2)))
    ),
    "flags": _mostly(st.lists(st.sampled_from(["offline", "stale"]), max_size=3), FLAGS),
    "extra": st.integers(),
}


@st.composite
def samples(draw: st.DrawFn) -> Any:
    """Mostly the plain shape with some fields replaced, left out or added; sometimes not a dict at all."""
    if draw(st.integers(0, 30)) == 0:
        return draw(st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)))
    signal = draw(_mostly(st.sampled_from(["state", "parts_total", "energy_kwh", "load_pct"]), SIGNALS))
    value: Any
    if signal == "state":
        value = draw(_mostly(STATES, VALUES))
    elif signal in PART_COUNTERS:
        value = draw(_mostly(st.integers(0, 10**6), st.one_of(BOUNDARY_NUMBERS, VALUES)))
    elif signal in ENERGY_COUNTERS:
        value = draw(_mostly(st.floats(0, 1e9), st.one_of(st.integers(0, 10**9), BOUNDARY_NUMBERS, VALUES)))
    else:
        value = draw(_mostly(st.floats(-1e9, 1e9), st.one_of(st.integers(-(10**9), 10**9), BOUNDARY_NUMBERS, VALUES)))
    moment = draw(st.datetimes(min_value=datetime(2026, 11, 1), max_value=datetime(2026, 11, 26)))
    sample: dict[str, Any] = {
        "equipment": draw(_mostly(st.sampled_from(["cnc-01", "meter-a"]), TEXT)),
        "signal": signal,
        "ts": draw(_mostly(st.just(_plain_ts(moment)), TIMESTAMPS)),
        "value": value,
    }
    for key, strategy in OPTIONAL.items():
        if draw(st.integers(0, 3)) == 0:
            sample[key] = draw(strategy)
    if draw(st.integers(0, 9)) == 0:
        del sample[draw(st.sampled_from(["equipment", "signal", "ts", "value"]))]
    return sample


def _same_sample(fast: Sample, reference: Sample) -> None:
    assert fast == reference
    assert fast.model_dump() == reference.model_dump()
    assert type(fast.value) is type(reference.value)
    assert fast.ts.utcoffset() == reference.ts.utcoffset()
    assert fast.ts_ns == reference.ts_ns
    assert fast.model_fields_set == reference.model_fields_set


@settings(max_examples=3000, deadline=None)
@given(raw=samples())
def test_fast_sample_accepts_only_what_the_model_accepts_with_the_same_values(raw: Any) -> None:
    _agrees(raw)


def _agrees(raw: Any) -> None:
    fast = fast_sample(raw)
    if fast is None:
        return  # left to the model: the model decides, so nothing can differ
    try:
        reference = Sample.model_validate(raw)
    except (ValidationError, ValueError, TypeError, OverflowError) as exc:
        raise AssertionError(f"the fast path accepted {raw!r}, the model refuses it: {exc}") from None
    _same_sample(fast, reference)


@pytest.mark.parametrize("signal", ["state", "parts_total", "energy_kwh", "load_pct"])
@pytest.mark.parametrize("value", BOUNDARY_VALUES, ids=repr)
def test_fast_sample_agrees_with_the_model_on_every_boundary_value(signal: str, value: Any) -> None:
    _agrees({"equipment": "cnc-01", "signal": signal, "ts": "2026-11-25T08:00:00.912000Z", "value": value})


@pytest.mark.parametrize("ts", EDGE_TIMESTAMPS)
def test_fast_sample_agrees_with_the_model_on_every_timestamp_form(ts: str) -> None:
    _agrees({"equipment": "cnc-01", "signal": "parts_total", "ts": ts, "value": 3})


def _outcome(payload: bytes, *, reference: bool) -> DecodedBatch | str:
    try:
        batch = decode_batch(payload, limits=WireLimits(), now=NOW, reference=reference)
    except WireFormatError as exc:
        return exc.reason
    return batch


ENVELOPE = st.fixed_dictionaries(
    {},
    optional={
        "v": _mostly(st.just(1), st.sampled_from([2, 0, True, 1.0, "1", None])),
        "edge": _mostly(
            st.just("gw-1"), st.sampled_from(["", "gw/1", "g" * 64, "g" * 65, "é", "-gw", "gw-1\n", "gw.1_a", 7])
        ),
        "seq": _mostly(st.just(3), st.sampled_from([0, -1, INT64_MAX, INT64_MAX + 1, True, 3.0, "3", None])),
        "sent_at": _mostly(st.just("2026-11-25T08:00:01.250000Z"), st.one_of(st.none(), TIMESTAMPS)),
        "extra": st.integers(),
    },
)


@settings(max_examples=500, deadline=None)
@given(
    raws=_mostly(
        st.lists(samples(), min_size=1, max_size=8),
        st.one_of(st.just([]), st.lists(st.integers(), max_size=2), st.none(), st.just({"a": 1})),
    ),
    envelope=ENVELOPE,
    missing=st.lists(st.sampled_from(["v", "edge", "seq", "samples"]), max_size=1),
)
def test_decode_batch_gives_what_the_reference_gives(raws: Any, envelope: dict[str, Any], missing: list[str]) -> None:
    body = {"v": 1, "edge": "gw-1", "seq": 3, "samples": raws, **envelope}
    for key in missing:
        del body[key]
    payload = json.dumps(body).encode()
    fast, reference = _outcome(payload, reference=False), _outcome(payload, reference=True)
    if isinstance(reference, str):
        assert fast == reference
        return
    assert not isinstance(fast, str)
    assert (fast.edge, fast.seq, fast.fingerprint) == (reference.edge, reference.seq, reference.fingerprint)
    assert [(r.index, r.sample, r.reason) for r in fast.rejected] == [
        (r.index, r.sample, r.reason) for r in reference.rejected
    ]
    assert len(fast.samples) == len(reference.samples)
    for one, other in zip(fast.samples, reference.samples, strict=True):
        _same_sample(one, other)


@settings(max_examples=300, deadline=None)
@given(raw=samples())
def test_decode_sample_gives_what_the_reference_gives(raw: Any) -> None:
    payload = json.dumps(raw).encode()
    outcomes: list[Sample | str] = []
    for reference in (False, True):
        try:
            outcomes.append(decode_sample(payload, index=2, now=NOW, reference=reference))
        except WireFormatError as exc:
            outcomes.append(exc.reason)
    fast, slow = outcomes
    if isinstance(slow, Sample):
        assert isinstance(fast, Sample)
        _same_sample(fast, slow)
    else:
        assert fast == slow


def test_what_edges_send_takes_the_fast_path() -> None:
    """The plain shape is what ``encode_batch`` writes; if the fast path missed it, ingest would be slow."""
    ts = NOW - timedelta(seconds=5)
    sent = [
        Sample(equipment="cnc-01", signal="state", ts=ts, value="PRODUCING", raw="1"),
        Sample(equipment="cnc-01", signal="parts_total", ts=ts, value=1042),
        Sample(equipment="meter-a", signal="energy_kwh", ts=ts, value=12.5, quality=Quality.UNCERTAIN),
        Sample(
            equipment="cnc-01", signal="load_pct", ts=ts, value=-3, ts_source=TimestampSource.GATEWAY, flags=("stale",)
        ),
        Sample(equipment="cnc-01", signal="state", ts=ts, value=OFFLINE, flags=("offline",)),
    ]
    body = json.loads(encode_batch("gw-1", 1, sent))
    for raw, sample in zip(body["samples"], sent, strict=True):
        fast = fast_sample(raw)
        assert fast is not None, raw
        _same_sample(fast, Sample.model_validate(raw))
        assert fast == sample
