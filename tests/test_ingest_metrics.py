"""Prometheus metrics: the exposition text (pure), and a running service answering GET /metrics."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from core.assets import load_asset_model
from core.stores.sqlite import SqliteStore
from core.wire import format_ts
from ingest import IngestService
from ingest.deadletter import DeadLetterStore, LetterFilter
from ingest.metrics import Timing, render
from ingest.replay import Replay
from tests.ingest_support import EXAMPLE_ASSETS, bounded, ingest_settings, mqtt_publisher, publish_to, started
from tests.servers import MosquittoServer
from tests.waiting import wait_until


def test_counters_gauges_reasons_and_timings_in_the_text_format() -> None:
    text = render(
        {"messages": 3, "pending_points": 7},
        {'odd "reason"\\': 2, "samples[].value": 1},
        {"write_seconds": ("time per write", Timing(2, 0.5))},
    )
    assert text.splitlines() == [
        "# TYPE factory_ingest_messages_total counter",
        "factory_ingest_messages_total 3",
        "# HELP factory_ingest_pending_points points held in memory, not yet written",
        "# TYPE factory_ingest_pending_points gauge",
        "factory_ingest_pending_points 7",
        "# HELP factory_ingest_dead_letters_by_reason_total dead letters by the field or cause of their reason",
        "# TYPE factory_ingest_dead_letters_by_reason_total counter",
        'factory_ingest_dead_letters_by_reason_total{reason="odd \\"reason\\"\\\\"} 2',
        'factory_ingest_dead_letters_by_reason_total{reason="samples[].value"} 1',
        "# HELP factory_ingest_write_seconds time per write",
        "# TYPE factory_ingest_write_seconds summary",
        "factory_ingest_write_seconds_count 2",
        "factory_ingest_write_seconds_sum 0.500000",
    ]


@pytest.mark.integration
async def test_a_running_service_answers_get_metrics(tmp_path: Path, mosquitto_server: MosquittoServer) -> None:
    settings = ingest_settings(tmp_path, mosquitto_server, metrics_port=0)
    now = format_ts(datetime.now(UTC) - timedelta(minutes=1))
    good = {"equipment": "cnc-01", "signal": "parts_total", "ts": now, "value": 5}
    bad = [{**good, "value": -1}, {**good, "value": "many"}]
    store = SqliteStore(tmp_path / "store.sqlite")
    try:
        async with (
            bounded(30, "ingest with metrics"),
            IngestService(settings, store, load_asset_model(EXAMPLE_ASSETS)) as service,
            mqtt_publisher(mosquitto_server) as publisher,
        ):
            await started(service)
            payload = json.dumps({"v": 1, "edge": "gw-m", "seq": 0, "samples": [good, *bad]}).encode()
            await publish_to(publisher, settings.uplink.topic("gw-m"), payload)
            await publish_to(publisher, settings.uplink.topic("gw-m"), b"not json")
            await wait_until(lambda: service.stats()["acks"] == 2, "both messages handled")
            assert service.metrics is not None
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.metrics.port}") as client:
                page = await client.get("/metrics")
                missing = await client.get(f"/{uuid.uuid4().hex}")
    finally:
        await store.close()
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = set(page.text.splitlines())
    assert {
        "factory_ingest_messages_total 2",
        "factory_ingest_points_written_total 1",
        "factory_ingest_dead_letters_total 3",
        'factory_ingest_dead_letters_by_reason_total{reason="samples[].value"} 2',
        'factory_ingest_dead_letters_by_reason_total{reason="payload is not JSON"} 1',
        "factory_ingest_pending_points 0",
        "factory_ingest_write_seconds_count 1",
        "factory_ingest_ack_latency_seconds_count 2",
    } <= lines, page.text
    assert missing.status_code == 404


def _gauges(page: str) -> dict[str, int]:
    names = ("dead_letters_waiting", "dead_letters_held", "dead_letters_total")
    values = {}
    for line in page.splitlines():
        name, _, value = line.partition(" ")
        short = name.removeprefix("factory_ingest_")
        if short in names:
            values[short] = int(float(value))
    return values


@pytest.mark.integration
async def test_the_dead_letter_gauges_follow_a_replay_and_a_purge_by_another_process(
    tmp_path: Path, mosquitto_server: MosquittoServer
) -> None:
    """The *_total counters count what ingest kept; the gauges say what the file holds now."""
    settings = ingest_settings(tmp_path, mosquitto_server, metrics_port=0)
    assets = load_asset_model(EXAMPLE_ASSETS)
    now = datetime.now(UTC)
    good = {"equipment": "cnc-01", "signal": "parts_total", "ts": format_ts(now - timedelta(minutes=1)), "value": 5}
    too_old = {**good, "ts": format_ts(now - timedelta(days=40))}  # beyond max_past_days (30)
    store = SqliteStore(tmp_path / "store.sqlite")
    try:
        async with (
            bounded(30, "ingest with metrics while dead letters are replayed and purged"),
            IngestService(settings, store, assets) as service,
            mqtt_publisher(mosquitto_server) as publisher,
            httpx.AsyncClient() as client,
        ):
            await started(service)
            assert service.metrics is not None
            url = f"http://127.0.0.1:{service.metrics.port}/metrics"
            payload = json.dumps({"v": 1, "edge": "gw-m", "seq": 0, "samples": [good, too_old]}).encode()
            await publish_to(publisher, settings.uplink.topic("gw-m"), payload)
            await publish_to(publisher, settings.uplink.topic("gw-m"), b"not json")
            await wait_until(lambda: service.stats()["acks"] == 2, "both messages handled")
            assert _gauges((await client.get(url)).text) == {
                "dead_letters_total": 2,
                "dead_letters_waiting": 2,
                "dead_letters_held": 2,
            }

            # The operator raises max_past_days and replays (factory deadletters replay: another process).
            raised = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"max_past_days": 60})})
            async with DeadLetterStore(settings.ingest.dead_letter_path) as letters:
                report = await Replay(raised, store, assets, letters).run(LetterFilter(), datetime.now(UTC))
                assert (report.stored, report.refused) == (1, 1)
                after_replay = _gauges((await client.get(url)).text)
                assert await letters.purge(LetterFilter(replayed=True)) == 1  # purge --replayed
                after_purge = _gauges((await client.get(url)).text)
                assert await letters.purge(LetterFilter(reason="not JSON")) == 1
                after_second_purge = _gauges((await client.get(url)).text)
    finally:
        await store.close()
    assert after_replay == {"dead_letters_total": 2, "dead_letters_waiting": 1, "dead_letters_held": 2}
    assert after_purge == {"dead_letters_total": 2, "dead_letters_waiting": 1, "dead_letters_held": 1}
    assert after_second_purge == {"dead_letters_total": 2, "dead_letters_waiting": 0, "dead_letters_held": 0}
