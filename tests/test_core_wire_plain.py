"""``decode_plain`` (ingest's hot path) accepts only what ``decode_batch`` accepts whole, with the same samples.

``decode_plain`` answers for a whole batch or returns None, leaving the payload to ``decode_batch``.
So the one property to hold is: whenever it answers, the reference (the pydantic models alone)
accepts every sample of the batch with the same values, the same times and the same fingerprint.
The generated payloads are mostly plain with one thing wrong (tests/test_core_wire_fast.py's
strategies), plus byte-level forms that ``json.dumps`` never writes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import WireFormatError
from core.signals import OFFLINE, MachineState, Quality
from core.wire import (
    INT64_MAX,
    INT64_MIN,
    DecodedBatch,
    PlainBatch,
    Sample,
    TimestampSource,
    WireLimits,
    decode_batch,
    decode_plain,
    encode_batch,
    sample_to_json,
)
from tests.test_core_wire_fast import BOUNDARY_VALUES, EDGE_TIMESTAMPS, ENVELOPE, NOW, _mostly, samples

LIMITS = WireLimits()
STATUS = st.one_of(
    st.sampled_from([0, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, -1, True, 1.0, None, "0"]), st.integers(0, 2**32)
)


PLAIN_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "state": st.sampled_from([*MachineState.__members__, OFFLINE]),
    "parts_good": st.integers(0, INT64_MAX),
    "energy_kwh": st.one_of(st.floats(0, 1e12), st.integers(0, INT64_MAX)),
    "spindle_speed": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(INT64_MIN, INT64_MAX)),
}
PLAIN_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "raw": st.text(alphabet=st.characters(max_codepoint=127), max_size=128),
    "quality": st.sampled_from([q.value for q in Quality]),
    "ts_source": st.sampled_from([s.value for s in TimestampSource]),
    "flags": st.lists(st.text(alphabet=st.characters(max_codepoint=127), min_size=1, max_size=64), max_size=16),
    "status": st.integers(0, 0xFFFF_FFFF),
}


@st.composite
def plain_samples(draw: st.DrawFn) -> Any:
    """A sample of the plain shape; one in four has one key replaced by a hostile draw (or is hostile whole)."""
    signal = draw(st.sampled_from(sorted(PLAIN_VALUES)))
    moment = draw(st.datetimes(min_value=datetime(2026, 10, 27), max_value=datetime(2026, 11, 25, 8, 5, 30)))
    sample: dict[str, Any] = {
        "equipment": draw(st.text(alphabet=st.characters(max_codepoint=127), min_size=1, max_size=64)),
        "signal": signal,
        "ts": moment.strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond or draw(st.booleans()) else "%Y-%m-%dT%H:%M:%SZ"
        ),
        "value": draw(PLAIN_VALUES[signal]),
    }
    for key, strategy in PLAIN_OPTIONAL.items():
        if draw(st.booleans()):
            sample[key] = draw(strategy)
    if draw(st.integers(0, 3)) == 0:
        hostile = draw(samples())
        if not isinstance(hostile, dict) or draw(st.integers(0, 5)) == 0:
            return hostile
        key = draw(st.sampled_from(sorted({*hostile, "status"})))
        if key in hostile:
            sample[key] = hostile[key]
        else:
            sample[key] = draw(STATUS)
    return sample


def _reference(payload: bytes, now: datetime | None = NOW) -> DecodedBatch | str:
    try:
        return decode_batch(payload, limits=LIMITS, now=now, reference=True)
    except WireFormatError as exc:
        return exc.reason


def _agrees(payload: bytes, now: datetime | None = NOW) -> PlainBatch | None:
    """decode_plain's answer, after checking that the reference gives the same."""
    plain = decode_plain(payload, limits=LIMITS, now=now)
    if plain is None:
        return None  # left to decode_batch: it decides, so nothing can differ
    reference = _reference(payload, now)
    assert isinstance(reference, DecodedBatch), f"decode_plain accepted a batch the reference refuses: {reference}"
    assert reference.rejected == [], f"decode_plain accepted a batch with a refused sample: {reference.rejected}"
    assert (plain.edge, plain.seq, plain.fingerprint) == (reference.edge, reference.seq, reference.fingerprint)
    sent = json.loads(payload)["samples"]
    assert len(plain.samples) == len(plain.ts_ns) == len(reference.samples) == len(sent)
    for came, as_sent, ts_ns, model in zip(plain.samples, sent, plain.ts_ns, reference.samples, strict=True):
        # The plain sample is the sample as it came (what a dead letter keeps), with its time read exactly.
        assert msgspec.to_builtins(came) == as_sent
        assert json.loads(msgspec.json.encode(came)) == as_sent
        assert ts_ns == model.ts_ns
        assert Sample.model_validate(as_sent) == model
    return plain


@settings(max_examples=3000, deadline=None)
@given(
    raws=_mostly(st.lists(plain_samples(), min_size=1, max_size=4), st.one_of(st.just([]), st.none())),
    envelope=_mostly(st.just({"sent_at": "2026-11-25T08:00:01.250000Z"}), ENVELOPE),
)
def test_decode_plain_accepts_only_whole_batches_the_reference_accepts(raws: Any, envelope: dict[str, Any]) -> None:
    _agrees(json.dumps({"v": 1, "edge": "gw-1", "seq": 3, "samples": raws, **envelope}).encode())


@pytest.mark.parametrize("signal", ["state", "parts_total", "energy_kwh", "load_pct"])
@pytest.mark.parametrize("value", BOUNDARY_VALUES, ids=repr)
def test_decode_plain_agrees_on_every_boundary_value(signal: str, value: Any) -> None:
    sample = {"equipment": "cnc-01", "signal": signal, "ts": "2026-11-25T08:00:00.912000Z", "value": value}
    _agrees(json.dumps({"v": 1, "edge": "gw-1", "seq": 3, "samples": [sample]}).encode())


@pytest.mark.parametrize("ts", EDGE_TIMESTAMPS)
@pytest.mark.parametrize("now", [NOW, None], ids=["window", "no-window"])
def test_decode_plain_agrees_on_every_timestamp_form(ts: str, now: datetime | None) -> None:
    sample = {"equipment": "cnc-01", "signal": "parts_total", "ts": ts, "value": 3}
    _agrees(json.dumps({"v": 1, "edge": "gw-1", "seq": 3, "samples": [sample]}).encode(), now)


def _window_edges() -> list[str]:
    past, future = NOW - LIMITS.max_past, NOW + LIMITS.max_future
    microsecond = timedelta(microseconds=1)
    moments = [past - microsecond, past, past + microsecond, future - microsecond, future, future + microsecond]
    return [m.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for m in moments]


@pytest.mark.parametrize("ts", _window_edges())
def test_decode_plain_draws_the_receivers_window_where_the_reference_does(ts: str) -> None:
    sample = {"equipment": "cnc-01", "signal": "parts_total", "ts": ts, "value": 3}
    payload = json.dumps({"v": 1, "edge": "gw-1", "seq": 3, "samples": [sample]}).encode()
    reference = _reference(payload)
    accepted = isinstance(reference, DecodedBatch) and not reference.rejected
    assert (_agrees(payload) is not None) == accepted


SAMPLE = '{"equipment":"cnc-01","signal":"parts_total","ts":"2026-11-25T08:00:00.912000Z","value":3}'
BYTE_FORMS = [
    # What json.dumps never writes but a parser may meet: each either agrees or is left to decode_batch.
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE + "]}",
    ' {"v" : 1 , "edge":"gw-1","seq":3,"samples":[ ' + SAMPLE + " ] } ",
    '{"v":1,"edge":"gw-1","edge":"gw-2","seq":3,"samples":[' + SAMPLE + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"seq":4,"samples":[' + SAMPLE + "]}",
    '{"v":1,"edge":"gw\\u002d1","seq":3,"samples":[' + SAMPLE + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":3,"value":-3') + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":3.0') + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":3e0') + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":-0') + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":1e400') + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":NaN') + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":Infinity') + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":' + "9" * 30) + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":' + "9" * 5000) + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace("cnc-01", "cnc\\ud800") + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace("cnc-01", "cnc-\\u0030\\u0031") + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":3,"raw":null') + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":3,"status":null') + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":3,"status":true') + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE.replace('"value":3', '"value":3,"flags":[]') + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"sent_at":null,"samples":[' + SAMPLE + "]}",
    '{"v":1.0,"edge":"gw-1","seq":3,"samples":[' + SAMPLE + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE + "]} trailing",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE + "]}\n",
    '{"v":1,"edge":"gw-1","seq":' + str(INT64_MAX + 1) + ',"samples":[' + SAMPLE + "]}",
    '{"v":1,"edge":"gw-1","seq":3,"samples":[' + ",".join([SAMPLE] * 3) + "]}",
    '\ufeff{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE + "]}",
]


@pytest.mark.parametrize("text", BYTE_FORMS)
def test_decode_plain_agrees_on_forms_json_dumps_never_writes(text: str) -> None:
    _agrees(text.encode())
    _agrees(text.encode("utf-16"))


def test_decode_plain_leaves_a_payload_over_the_size_limit_to_decode_batch() -> None:
    payload = ('{"v":1,"edge":"gw-1","seq":3,"samples":[' + SAMPLE + "]}").encode()
    assert decode_plain(payload, limits=WireLimits(max_payload_bytes=len(payload) - 1)) is None
    assert decode_plain(payload, limits=WireLimits(max_payload_bytes=len(payload))) is not None


def test_what_edges_send_takes_the_plain_path() -> None:
    """The shape ``encode_batch`` writes; if decode_plain missed it, ingest would be slow."""
    ts = datetime.now(UTC) - timedelta(seconds=5)
    sent = [
        Sample(equipment="cnc-01", signal="state", ts=ts, value="PRODUCING", raw="1", status=0),
        Sample(equipment="cnc-01", signal="parts_total", ts=ts, value=1042),
        Sample(equipment="meter-a", signal="energy_kwh", ts=ts, value=12.5, quality=Quality.UNCERTAIN),
        Sample(equipment="meter-a", signal="energy_kwh", ts=ts.replace(microsecond=0), value=13),
        Sample(
            equipment="cnc-01", signal="load_pct", ts=ts, value=-3, ts_source=TimestampSource.GATEWAY, flags=("stale",)
        ),
        Sample(equipment="cnc-01", signal="state", ts=ts, value=OFFLINE, flags=("offline",), status=0x8000_0000),
    ]
    payload = encode_batch("gw-1", 7, sent)
    plain = _agrees(payload, datetime.now(UTC))
    assert plain is not None
    assert [json.loads(msgspec.json.encode(s)) for s in plain.samples] == [sample_to_json(s) for s in sent]
