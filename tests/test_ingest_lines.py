"""``LineEncoder`` (ingest's hot path into InfluxDB) writes the lines the reference path writes, or none.

The reference: ``decode_batch(reference=True)`` → ``admit_sample`` (asset model, gateway) →
``sample_to_point`` → ``encode_point``. For a plain batch the encoder must give exactly those lines
(measurement, tags, every field — value typed per measurement, quality, raw, ts_source, flags,
status — and time), or None when the reference would refuse a sample, so that ingest takes the
reference path and dead-letters it with its reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.assets import AssetModel
from core.errors import StoreRejected
from core.stores.lineprotocol import encode_point
from core.wire import Sample, TimestampSource, decode_batch, decode_plain, encode_batch
from ingest.admission import Refused, admit_sample
from ingest.mapping import LineEncoder
from tests.ingest_support import GATEWAY_ASSETS, asset_model
from tests.test_core_wire_plain import plain_samples

NOW = datetime(2026, 11, 25, 8, 0, 30, tzinfo=UTC)
EQUIPMENT = ["cnc-a1", "cnc-b-on-a", "cnc-open", "cnc-unknown"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> AssetModel:
    return asset_model(Path(tmp_path_factory.mktemp("assets")) / "factory.yaml", GATEWAY_ASSETS)


def reference_lines(payload: bytes, edge: str, assets: AssetModel) -> list[str] | None:
    """What the reference path writes for a batch it accepts whole; None if it refuses any sample."""
    batch = decode_batch(payload, now=NOW, reference=True)
    assert not batch.rejected
    lines = []
    for index, sample in enumerate(batch.samples):
        point = admit_sample(sample, index, edge, assets)
        if isinstance(point, Refused):
            return None
        try:
            lines.append(encode_point(point))
        except StoreRejected:
            return None
    return lines


@st.composite
def batches_for_known_equipment(draw: st.DrawFn) -> Any:
    raws = draw(st.lists(plain_samples(), min_size=1, max_size=4))
    for raw in raws:
        if isinstance(raw, dict) and draw(st.integers(0, 5)) > 0:
            raw["equipment"] = draw(st.sampled_from(EQUIPMENT))
    return raws


ENCODER_SHARED_ACROSS_EXAMPLES: dict[int, LineEncoder] = {}


@settings(max_examples=1500, deadline=None)
@given(raws=batches_for_known_equipment(), edge=st.sampled_from(["gw-a", "gw-b", "gw-c"]))
def test_lines_are_the_reference_paths_lines_or_none(assets: AssetModel, raws: Any, edge: str) -> None:
    # One encoder for every example: its series cache must not carry one edge's verdict to another.
    encoder = ENCODER_SHARED_ACROSS_EXAMPLES.setdefault(id(assets), LineEncoder(assets))
    payload = json.dumps({"v": 1, "edge": edge, "seq": 1, "samples": raws}).encode()
    plain = decode_plain(payload, now=NOW)
    if plain is None:
        return  # not the plain path's
    assert encoder.lines(plain, edge) == reference_lines(payload, edge, assets)


def test_every_field_the_mapping_writes_is_in_the_line(assets: AssetModel) -> None:
    ts = NOW - timedelta(seconds=1)
    sent = [
        Sample(
            equipment="cnc-a1",
            signal="state",
            ts=ts,
            value="DOWN",
            raw='E-"7"\\',
            quality="uncertain",
            ts_source=TimestampSource.GATEWAY,
            flags=("ts_fallback", "ts_future"),
            status=0x4093_0000,
        ),
        Sample(equipment="cnc-a1", signal="parts_total", ts=ts, value=41),
        Sample(equipment="cnc-open", signal="energy_kwh", ts=ts, value=12, ts_source=TimestampSource.SERVER),
        Sample(equipment="cnc-open", signal="spindle_speed", ts=ts, value=1.5e-7, status=0),
    ]
    payload = encode_batch("gw-a", 1, sent, sent_at=NOW)
    plain = decode_plain(payload, now=NOW)
    assert plain is not None
    lines = LineEncoder(assets).lines(plain, "gw-a")
    assert lines == reference_lines(payload, "gw-a", assets)
    assert lines is not None
    tags = "equipment=cnc-a1,line=line-a,signal={},site=s,workshop=w"
    t = 1_795_593_629_000_000_000
    assert lines[0] == (
        f"machine_state,{tags.format('state')} "
        'flags="ts_fallback,ts_future",quality="uncertain",raw="E-\\"7\\"\\\\",status=1083375616i,'
        f'ts_source="gateway",value="DOWN" {t}'
    )
    assert lines[1] == f'part_counter,{tags.format("parts_total")} quality="good",ts_source="device",value=41i {t}'
    assert lines[2].endswith(f' quality="good",ts_source="server",value=12 {t}')
    assert lines[3].endswith(f' quality="good",status=0i,ts_source="device",value=1.5e-07 {t}')


@pytest.mark.parametrize(
    ("equipment", "edge"),
    [("cnc-unknown", "gw-a"), ("cnc-b-on-a", "gw-a"), ("cnc-a1", "gw-b")],
    ids=["unknown equipment", "another gateway's equipment", "the line's gateway is another"],
)
def test_a_sample_the_reference_refuses_leaves_the_batch_to_it(assets: AssetModel, equipment: str, edge: str) -> None:
    ts = NOW - timedelta(seconds=1)
    sent = [
        Sample(equipment="cnc-open", signal="parts_total", ts=ts, value=1),
        Sample(equipment=equipment, signal="parts_total", ts=ts, value=1),
    ]
    plain = decode_plain(encode_batch(edge, 1, sent), now=NOW)
    assert plain is not None
    assert LineEncoder(assets).lines(plain, edge) is None
