"""The uplink wire format round-trips exactly and rejects bad input precisely, sample by sample."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.errors import WireFormatError
from core.wire import Sample, datetime_to_ns, decode_batch, encode_batch, ns_to_datetime

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
            ]
        )
    )
    assert [s.value for s in batch.samples] == [3]
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
