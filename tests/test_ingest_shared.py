"""Two ingest instances in one MQTT shared subscription group split the stream; each point is stored once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.assets import load_asset_model
from core.stores.influx import InfluxStore
from core.wire import Sample, encode_batch
from ingest import IngestService
from tests.ingest_support import EXAMPLE_ASSETS, bounded, ingest_settings, mqtt_publisher, publish_to, started
from tests.servers import InfluxServer, MosquittoServer
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
WINDOW = (NOW - timedelta(days=1), NOW + timedelta(days=1))
EDGES = ("gw-1", "gw-2", "gw-3")
BATCHES_PER_EDGE = 40


def batch(edge: str, seq: int) -> bytes:
    equipment = {"gw-1": "cnc-01", "gw-2": "cnc-04", "gw-3": "robot-01"}[edge]
    samples = [
        Sample(equipment=equipment, signal="parts_total", ts=NOW - timedelta(milliseconds=10 * seq + k), value=seq)
        for k in range(10)
    ]
    return encode_batch(edge, seq, samples)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_two_instances_in_one_shared_group_store_each_point_once(
    protocol: str, tmp_path: Path, mosquitto_server: MosquittoServer, influx_server: InfluxServer, influx_database: str
) -> None:
    group = f"ingest-{uuid.uuid4().hex[:6]}"
    first = ingest_settings(tmp_path / "a", mosquitto_server, shared_group=group, mqtt_protocol=protocol)
    # The same uplink topics; a client id and a dead-letter file of its own.
    second = first.model_copy(
        update={
            "ingest": first.ingest.model_copy(
                update={"client_id": f"{first.ingest.client_id}-b", "dead_letter_path": tmp_path / "b" / "dl.sqlite"}
            )
        }
    )
    assets = load_asset_model(EXAMPLE_ASSETS)
    expected = len(EDGES) * BATCHES_PER_EDGE * 10
    async with InfluxStore(influx_server.url, influx_database) as store:
        async with (
            bounded(60, "two instances sharing the stream"),
            IngestService(first, store, assets) as a,
            IngestService(second, store, assets) as b,
            mqtt_publisher(mosquitto_server) as publisher,
        ):
            await started(a)
            await started(b)
            for seq in range(BATCHES_PER_EDGE):
                for edge in EDGES:
                    await publish_to(publisher, first.uplink.topic(edge), batch(edge, seq))
            total = len(EDGES) * BATCHES_PER_EDGE
            await wait_until(lambda: a.stats()["acks"] + b.stats()["acks"] == total, "every batch acknowledged once")
            stats_a, stats_b = a.stats(), b.stats()
        frame = await store.read("part_counter", *WINDOW)

    assert len(frame) == expected
    assert stats_a["points_written"] + stats_b["points_written"] == expected  # none written by both
    assert stats_a["messages"] > 0 and stats_b["messages"] > 0  # both took a share
    assert stats_a["messages"] + stats_b["messages"] == len(EDGES) * BATCHES_PER_EDGE
    assert stats_a["seq_gaps"] == stats_b["seq_gaps"] == 0  # a share of an edge's batches is no gap


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_the_group_counts_each_gap_of_an_edge_once_and_a_late_batch_once(
    protocol: str, tmp_path: Path, mosquitto_server: MosquittoServer, influx_server: InfluxServer, influx_database: str
) -> None:
    """One edge's batches spread over two instances: no instance sees the whole numbering, the group does."""
    group = f"ingest-{uuid.uuid4().hex[:6]}"
    timing = {"sequence_report_interval_s": 0.1, "sequence_settle_s": 0.6}
    first = ingest_settings(tmp_path / "a", mosquitto_server, shared_group=group, mqtt_protocol=protocol, **timing)
    second = first.model_copy(
        update={
            "ingest": first.ingest.model_copy(
                update={"client_id": f"{first.ingest.client_id}-b", "dead_letter_path": tmp_path / "b" / "dl.sqlite"}
            )
        }
    )
    lost = {7, 8, 20, 33}
    sent = [seq for seq in range(BATCHES_PER_EDGE) if seq not in lost]
    assets = load_asset_model(EXAMPLE_ASSETS)
    async with (
        InfluxStore(influx_server.url, influx_database) as store,
        bounded(60, "two instances judging gaps together"),
        IngestService(first, store, assets) as a,
        IngestService(second, store, assets) as b,
        mqtt_publisher(mosquitto_server) as publisher,
    ):
        await started(a)
        await started(b)
        for seq in sent:
            await publish_to(publisher, first.uplink.topic("gw-1"), batch("gw-1", seq))
        await wait_until(lambda: a.stats()["acks"] + b.stats()["acks"] >= len(sent), "every batch acknowledged")
        both = ("seq_gaps", "seq_late", "seq_reports")
        await wait_until(lambda: a.stats()["seq_gaps"] + b.stats()["seq_gaps"] >= len(lost), "the gaps counted")
        await asyncio.sleep(1.0)  # time for a wrong second count to show
        gaps = {name: a.stats()[name] + b.stats()[name] for name in both}
        assert a.stats()["messages"] > 0 and b.stats()["messages"] > 0  # both took a share
        assert gaps["seq_gaps"] == len(lost)
        assert gaps["seq_late"] == 0
        assert a.stats()["seq_reports"] > 0 and b.stats()["seq_reports"] > 0  # each heard the other

        await publish_to(publisher, first.uplink.topic("gw-1"), batch("gw-1", 20))  # a lost one, after all
        await wait_until(lambda: a.stats()["seq_late"] + b.stats()["seq_late"] == 1, "the late batch counted")
        await asyncio.sleep(1.0)
        assert a.stats()["seq_gaps"] + b.stats()["seq_gaps"] == len(lost)
        assert a.stats()["seq_late"] + b.stats()["seq_late"] == 1
        assert a.stats()["seq_reports_refused"] == b.stats()["seq_reports_refused"] == 0
