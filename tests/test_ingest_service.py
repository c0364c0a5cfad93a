"""IngestService end to end: real Mosquitto, real InfluxDB (or the SQLite store), real dead-letter file."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from core.assets import AssetModel, load_asset_model
from core.settings import BrokerSettings, IngestSettings, Settings, UplinkSettings
from core.signals import measurement_for
from core.store import Point, Store
from core.stores.influx import InfluxStore
from core.stores.sqlite import SqliteStore
from core.wire import Sample, datetime_to_ns, encode_batch, sample_to_json
from ingest import IngestService
from ingest.mapping import sample_to_point
from tests.ingest_support import bounded, started
from tests.servers import InfluxServer, MosquittoServer
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
WINDOW = (T0 - timedelta(hours=1), T0 + timedelta(hours=1))
EDGE = "gw-machining"
SCENARIO_WITHIN_S = 60.0  # a whole test's service block, stopping included; the waits inside are bounded too


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sample(equipment: str, signal: str, seconds: float, value: Any, **extra: Any) -> Sample:
    return Sample.model_validate({"equipment": equipment, "signal": signal, "ts": at(seconds), "value": value, **extra})


def raw_batch(seq: int, samples: list[dict[str, Any]]) -> bytes:
    """A batch built by hand, so it can carry samples the wire format refuses."""
    return json.dumps({"v": 1, "edge": EDGE, "seq": seq, "samples": samples}).encode()


@pytest.fixture
def assets(example_assets_path: Path) -> AssetModel:
    return load_asset_model(example_assets_path)


@pytest.fixture
def make_settings(
    tmp_path: Path, mosquitto_server: MosquittoServer, example_assets_path: Path
) -> Callable[..., Settings]:
    prefix = f"test/{uuid.uuid4().hex[:8]}/uplink"  # topics and sessions of other tests never mix in
    client_id = f"ingest-{uuid.uuid4().hex[:8]}"

    def make(**ingest: Any) -> Settings:
        return Settings(
            assets=example_assets_path,
            broker=BrokerSettings(host=mosquitto_server.host, port=mosquitto_server.port),
            uplink=UplinkSettings(topic_prefix=prefix),
            ingest=IngestSettings(
                dead_letter_path=tmp_path / "dead-letters.sqlite",
                client_id=client_id,
                # T0 is a fixed day; the window around ingest's clock must reach it for years to come.
                **{"flush_interval_s": 0.05, "max_past_days": 36_500, **ingest},
            ),
        )

    return make


@pytest.fixture
async def publisher(mosquitto_server: MosquittoServer) -> AsyncIterator[aiomqtt.Client]:
    identifier = f"pub-{uuid.uuid4().hex[:6]}"
    async with aiomqtt.Client(mosquitto_server.host, mosquitto_server.port, identifier=identifier) as client:
        yield client


async def publish(client: aiomqtt.Client, settings: Settings, payload: bytes) -> None:
    topic = settings.uplink.topic(EDGE)
    async with bounded(5, f"publishing to {topic} (QoS 1 PUBACK)"):
        await client.publish(topic, payload, qos=1)


def expected_point(s: Sample, assets: AssetModel) -> dict[str, Any]:
    p: Point = sample_to_point(s, assets.placement(s.equipment))
    return {"time": p.time_ns, **p.tags, **p.fields}


async def stored(store: Store, measurement: str) -> list[dict[str, Any]]:
    frame = await store.read(measurement, *WINDOW)
    rows = []
    for record in frame.to_dict("records"):
        row = {k: v for k, v in record.items() if not (isinstance(v, float) and v != v)}  # drop NaN gaps
        row["time"] = record["time"].value
        rows.append(row)
    return sorted(rows, key=lambda r: (r["time"], r["equipment"], r["signal"]))


def by_measurement(samples: list[Sample], assets: AssetModel) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for s in samples:
        out.setdefault(measurement_for(s.signal).value, []).append(expected_point(s, assets))
    return {m: sorted(rows, key=lambda r: (r["time"], r["equipment"], r["signal"])) for m, rows in out.items()}


async def test_good_samples_reach_influxdb_exactly_and_bad_input_is_dead_lettered(
    make_settings: Callable[..., Settings],
    assets: AssetModel,
    publisher: aiomqtt.Client,
    influx_server: InfluxServer,
    influx_database: str,
) -> None:
    settings = make_settings()
    first = [
        sample("cnc-01", "state", 0.000_001, "PRODUCING", raw="1"),
        sample("cnc-01", "parts_total", 0.5, 100),
        sample("cnc-01", "parts_good", 0.5, 98),
        sample("meter-a", "energy_kwh", 1, 1234.5),
        sample("cnc-01", "spindle_speed", 1, 12000),  # an integer process value: stored as float
        sample("robot-01", "state", 2, "DOWN", raw="4", quality="uncertain"),
    ]
    good_in_mixed = [sample("cnc-02", "state", 3, "IDLE", raw="2"), sample("cnc-02", "parts_total", 3, 7)]
    mixed = [
        sample_to_json(good_in_mixed[0]),
        {"equipment": "cnc-99", "signal": "parts_total", "ts": "2026-11-25T08:00:03.000000Z", "value": 3},
        {"equipment": "cnc-01", "signal": "state", "ts": "2026-11-25T08:00:03.000000Z", "value": "EXPLODED"},
        sample_to_json(good_in_mixed[1]),
    ]
    last = [sample("cnc-01", "state", 4, "SETUP", raw="3"), sample("meter-a", "energy_kwh", 4, 1240.0)]

    async with InfluxStore(influx_server.url, influx_database) as store:
        async with (
            bounded(SCENARIO_WITHIN_S, "ingest of good and bad input"),
            IngestService(settings, store, assets) as service,
        ):
            await started(service)
            await publish(publisher, settings, encode_batch(EDGE, 0, first))
            await publish(publisher, settings, b'{"v": 1, "edge": "gw-machining", "seq": 1, "samples": [')
            await publish(publisher, settings, raw_batch(1, mixed))
            await publish(publisher, settings, encode_batch(EDGE, 2, last))
            good = [*first, *good_in_mixed, *last]
            await wait_until(lambda: service.stats()["points_written"] == len(good), "all good points written")
            stats = service.stats()
            letters = await service.dead_letters.list()

        for measurement, rows in by_measurement(good, assets).items():
            assert await stored(store, measurement) == rows, measurement
        assert (await store.read("process_value", *WINDOW))["value"].tolist() == [12000.0]

    assert stats == {
        "messages": 4,
        "samples": 12,
        "points_written": 10,
        "dead_letters": 3,
        "refused_batches": 0,
        "duplicates": 0,
        "seq_gaps": 0,
        "seq_repeats": 0,
        "seq_reused": 0,
        "seq_late": 0,
        "seq_reports": 0,  # no shared group: no reports
        "seq_reports_refused": 0,
        "write_retries": 0,
        "pauses": 0,
        "acks": 4,  # every message, once its points were written or dead-lettered
        "pending_points": 0,
        "unacked": 0,
    }
    letters.reverse()  # oldest first
    topic = settings.uplink.topic(EDGE)
    assert [(d.topic, d.edge, d.seq) for d in letters] == [(topic, EDGE, None), (topic, EDGE, 1), (topic, EDGE, 1)]
    assert letters[0].reason.startswith("payload is not JSON")
    assert letters[0].payload == b'{"v": 1, "edge": "gw-machining", "seq": 1, "samples": ['
    # Samples the wire format refuses come first (decode_batch), then the ones the asset model refuses.
    assert letters[1].reason.startswith("samples[2].value: Value error, state must be one of PRODUCING")
    assert "got 'EXPLODED'" in letters[1].reason
    assert json.loads(letters[1].payload) == mixed[2]
    assert letters[2].reason == (
        f"samples[1].equipment: unknown equipment 'cnc-99' (not in the asset model {assets.source})"
    )
    assert json.loads(letters[2].payload)["equipment"] == "cnc-99"


async def test_points_the_store_rejects_are_isolated_and_only_they_are_dead_lettered(
    make_settings: Callable[..., Settings],
    assets: AssetModel,
    publisher: aiomqtt.Client,
    influx_server: InfluxServer,
    influx_database: str,
) -> None:
    settings = make_settings()
    samples = [sample("cnc-01", "state", i, "PRODUCING") for i in range(6)]
    samples.insert(3, sample("cnc-01", "spindle_speed", 3, 9000.0))
    async with InfluxStore(influx_server.url, influx_database) as store:
        # Someone wrote process_value.value as a string before: InfluxDB now refuses floats there.
        await store.write([Point("process_value", {"equipment": "legacy"}, {"value": "fast"}, datetime_to_ns(T0))])
        async with (
            bounded(SCENARIO_WITHIN_S, "ingest of a batch the store rejects in part"),
            IngestService(settings, store, assets) as service,
        ):
            await started(service)
            await publish(publisher, settings, encode_batch(EDGE, 0, samples))
            await wait_until(lambda: service.stats()["dead_letters"] == 1, "the float dead-lettered")
            await wait_until(lambda: service.stats()["points_written"] == 6, "the states written")
            (letter,) = await service.dead_letters.list()
        assert len(await store.read("machine_state", *WINDOW)) == 6

    assert letter.reason.startswith("store rejected: ")
    assert "field type conflict" in letter.reason
    assert json.loads(letter.payload) == sample_to_json(samples[3])
    assert (letter.edge, letter.seq) == (EDGE, 0)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "store.sqlite")
    yield store
    await store.close()


async def test_sqlite_store_ingest_with_sequence_gaps_and_duplicates(
    make_settings: Callable[..., Settings],
    assets: AssetModel,
    publisher: aiomqtt.Client,
    sqlite_store: SqliteStore,
) -> None:
    settings = make_settings()
    batches = {seq: [sample("cnc-03", "parts_total", seq, seq * 10)] for seq in range(5)}
    async with (
        bounded(SCENARIO_WITHIN_S, "ingest with gaps and repeats"),
        IngestService(settings, sqlite_store, assets) as service,
    ):
        await started(service)
        for seq in (0, 1, 3, 4, 4, 2):  # 2 missing, then late; 4 twice (resent: sent_at differs)
            await publish(publisher, settings, encode_batch(EDGE, seq, batches[seq]))
        await wait_until(lambda: service.stats()["acks"] == 6, "six messages acknowledged")
        stats = service.stats()
    frame = await sqlite_store.read("part_counter", *WINDOW, {"equipment": "cnc-03"})
    assert frame["value"].tolist() == [0, 10, 20, 30, 40]
    assert [t.value for t in frame["time"]] == [datetime_to_ns(at(seq)) for seq in range(5)]
    assert stats["points_written"] == 5  # the duplicate changed nothing
    assert (stats["seq_gaps"], stats["seq_late"], stats["duplicates"], stats["seq_repeats"]) == (1, 1, 1, 0)


async def test_store_outage_holds_points_pauses_reading_and_loses_nothing(
    make_settings: Callable[..., Settings],
    assets: AssetModel,
    publisher: aiomqtt.Client,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ingest.service")
    blocker = tmp_path / "store-dir"
    blocker.write_text("a file where the store's directory should be: the store cannot open")
    store = SqliteStore(blocker / "store.sqlite")
    settings = make_settings(batch_max_points=2)
    batches = [[sample("cnc-04", "parts_total", 2 * n + k, 2 * n + k) for k in range(2)] for n in range(10)]

    async with (
        bounded(SCENARIO_WITHIN_S, "the store outage, the recovery and stopping ingest"),
        IngestService(settings, store, assets, max_pending_points=4) as service,
    ):
        await started(service)
        for seq, batch in enumerate(batches):
            await publish(publisher, settings, encode_batch(EDGE, seq, batch))
        await wait_until(lambda: service.stats()["pauses"] >= 1 and service.stats()["write_retries"] >= 2, "pause")
        await asyncio.sleep(0.3)
        held = service.stats()
        assert held["messages"] == 2  # stopped taking messages at the limit; the broker keeps the rest
        assert (held["points_written"], held["pending_points"], held["acks"]) == (0, 4, 0)
        assert service.subscribed.is_set()  # the connection stays up, so finished messages can be acknowledged

        blocker.unlink()
        await wait_until(lambda: service.stats()["acks"] == 10, "every batch written and acknowledged")
        stats = service.stats()

    async with bounded(10, "reading back and closing the store"):
        frame = await store.read("part_counter", *WINDOW)
        await store.close()
    assert frame["value"].tolist() == list(range(20))
    # Nothing was sent twice: pausing kept the connection, so no acknowledgement was lost with it.
    assert (stats["messages"], stats["points_written"], stats["seq_repeats"]) == (10, 20, 0)
    assert (stats["dead_letters"], stats["seq_gaps"]) == (0, 0)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in m for m in messages) == 1, messages
    assert sum("is back" in m for m in messages) == 1, messages


async def test_a_message_is_acknowledged_only_once_its_points_are_written(
    make_settings: Callable[..., Settings],
    assets: AssetModel,
    publisher: aiomqtt.Client,
    tmp_path: Path,
) -> None:
    # With MQTT v5 the broker sends at most receive_maximum unacknowledged messages. Were they
    # acknowledged on receipt, all ten would arrive while the store is away; after the write, three do.
    blocker = tmp_path / "store-dir"
    blocker.write_text("the store cannot open")
    store = SqliteStore(blocker / "store.sqlite")
    settings = make_settings(mqtt_protocol="5", receive_maximum=3, batch_max_points=1000)
    async with (
        bounded(SCENARIO_WITHIN_S, "ingest against a store that is away, then back"),
        IngestService(settings, store, assets) as service,
    ):
        await started(service)
        for seq in range(10):
            await publish(publisher, settings, encode_batch(EDGE, seq, [sample("cnc-05", "parts_total", seq, seq)]))
        await wait_until(lambda: service.stats()["write_retries"] >= 3, "the writer retrying")
        await asyncio.sleep(0.5)
        assert (service.stats()["messages"], service.stats()["unacked"], service.stats()["acks"]) == (3, 3, 0)
        blocker.unlink()
        await wait_until(lambda: service.stats()["acks"] == 10, "all ten written and acknowledged")
        stats = service.stats()
    async with bounded(10, "reading back and closing the store"):
        frame = await store.read("part_counter", *WINDOW)
        await store.close()
    assert frame["value"].tolist() == list(range(10))
    assert (stats["messages"], stats["seq_repeats"]) == (10, 0)


async def test_the_broker_queues_batches_while_ingest_is_down(
    make_settings: Callable[..., Settings],
    assets: AssetModel,
    publisher: aiomqtt.Client,
    sqlite_store: SqliteStore,
) -> None:
    settings = make_settings()
    first = IngestService(settings, sqlite_store, assets)
    running = asyncio.create_task(first.run())
    await started(first)
    running.cancel()
    async with bounded(SCENARIO_WITHIN_S, "the first ingest stopping"):
        with pytest.raises(asyncio.CancelledError):
            await running

    for seq in range(3):  # nobody is subscribed now; the persistent session keeps these
        await publish(publisher, settings, encode_batch(EDGE, seq, [sample("cnc-05", "parts_total", seq, seq)]))

    async with (
        bounded(SCENARIO_WITHIN_S, "the second ingest catching up"),
        IngestService(settings, sqlite_store, assets) as second,
    ):
        await wait_until(lambda: second.stats()["points_written"] == 3, "queued batches delivered")
    assert (await sqlite_store.read("part_counter", *WINDOW))["value"].tolist() == [0, 1, 2]


async def test_leaving_flushes_points_still_waiting_for_a_full_batch(
    make_settings: Callable[..., Settings],
    assets: AssetModel,
    publisher: aiomqtt.Client,
    sqlite_store: SqliteStore,
) -> None:
    settings = make_settings(flush_interval_s=60, batch_max_points=1000)
    async with (
        bounded(SCENARIO_WITHIN_S, "ingest flushing on leaving"),
        IngestService(settings, sqlite_store, assets) as service,
    ):
        await started(service)
        for seq in range(3):
            await publish(publisher, settings, encode_batch(EDGE, seq, [sample("cnc-06", "parts_total", seq, seq)]))
        await wait_until(lambda: service.stats()["messages"] == 3, "received")
        assert service.stats()["points_written"] == 0
        loop = asyncio.get_running_loop()
        leaving = loop.time()
    assert loop.time() - leaving < 5
    assert service.stats()["points_written"] == 3
    assert (await sqlite_store.read("part_counter", *WINDOW))["value"].tolist() == [0, 1, 2]


async def test_on_the_demos_embedded_broker_mqtt_3_1_1_acknowledges_after_write_too(
    make_settings: Callable[..., Settings], assets: AssetModel, sqlite_store: SqliteStore
) -> None:
    from factory.broker import EmbeddedBroker
    from tests.servers import free_port

    port = free_port()
    settings = make_settings().model_copy(update={"broker": BrokerSettings(host="127.0.0.1", port=port)})
    assert settings.ingest.mqtt_protocol == "3.1.1"  # the default: amqtt speaks nothing else
    async with (
        bounded(SCENARIO_WITHIN_S, "ingest on amqtt"),
        EmbeddedBroker("127.0.0.1", port),
        aiomqtt.Client("127.0.0.1", port, identifier=f"pub-{uuid.uuid4().hex[:6]}") as amqtt_publisher,
        IngestService(settings, sqlite_store, assets) as service,
    ):
        await started(service)
        for seq in range(3):
            batch = encode_batch(EDGE, seq, [sample("cnc-06", "parts_total", seq, seq)])
            await publish(amqtt_publisher, settings, batch)
        await wait_until(lambda: service.stats()["acks"] == 3, "three batches written and acknowledged")
    assert (await sqlite_store.read("part_counter", *WINDOW))["value"].tolist() == [0, 1, 2]


async def test_a_clean_restart_is_not_sent_again_what_the_last_run_wrote(
    make_settings: Callable[..., Settings],
    assets: AssetModel,
    publisher: aiomqtt.Client,
    sqlite_store: SqliteStore,
) -> None:
    # Points wait for a full batch (60 s), unacknowledged; leaving writes them and acknowledges
    # them before disconnecting, so the next run with the same session receives nothing again.
    settings = make_settings(flush_interval_s=60, batch_max_points=1000)
    async with (
        bounded(SCENARIO_WITHIN_S, "the first run leaving"),
        IngestService(settings, sqlite_store, assets) as first,
    ):
        await started(first)
        for seq in range(5):
            await publish(publisher, settings, encode_batch(EDGE, seq, [sample("cnc-02", "parts_total", seq, seq)]))
        await wait_until(lambda: first.stats()["messages"] == 5, "received")
        assert (first.stats()["acks"], first.stats()["points_written"]) == (0, 0)
    assert first.stats()["acks"] == 5
    async with (
        bounded(SCENARIO_WITHIN_S, "the second run"),
        IngestService(settings, sqlite_store, assets) as second,
    ):
        await started(second)
        await publish(publisher, settings, encode_batch(EDGE, 5, [sample("cnc-02", "parts_total", 5, 5)]))
        await wait_until(lambda: second.stats()["messages"] >= 1, "the new batch")
        await asyncio.sleep(0.5)
        assert second.stats()["messages"] == 1  # only the new one: nothing of the first run came again
    assert (await sqlite_store.read("part_counter", *WINDOW, {"equipment": "cnc-02"}))["value"].tolist() == list(
        range(6)
    )


# --- The writer against InfluxDB's answers that the real server cannot be made to give ----------------


class InfluxAnswering(httpx.AsyncBaseTransport):
    """Answers /write as a busy or size-limited InfluxDB would; keeps each write's time and lines."""

    def __init__(self, answers: list[tuple[int, Callable[[], dict[str, str]]]], too_large: str | None = None):
        self.answers = list(answers)  # the first writes' statuses and headers (made when answering); 204 after
        self.too_large = too_large  # a body holding this text is refused with 413
        self.writes: list[tuple[float, int]] = []  # (loop time, lines)
        self.stored: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        body = gzip.decompress(await request.aread())
        self.writes.append((asyncio.get_running_loop().time(), body.count(b"\n")))
        if self.too_large is not None and self.too_large.encode() in body:
            return httpx.Response(413, json={"error": "Request Entity Too Large"})
        if self.answers:
            status, headers = self.answers.pop(0)
            return httpx.Response(status, json={"error": "engine busy"}, headers=headers())
        self.stored.extend(body.splitlines())
        return httpx.Response(204)


async def test_the_writer_waits_as_long_as_a_429_or_503_asks_before_writing_again(
    make_settings: Callable[..., Settings], assets: AssetModel, publisher: aiomqtt.Client
) -> None:
    def in_three_seconds() -> dict[str, str]:
        return {"Retry-After": (datetime.now(UTC) + timedelta(seconds=3)).strftime("%a, %d %b %Y %H:%M:%S GMT")}

    answers = [(503, lambda: {"Retry-After": "1"}), (429, in_three_seconds), (503, dict)]
    transport = InfluxAnswering(answers)
    settings = make_settings()
    async with (
        bounded(SCENARIO_WITHIN_S, "ingest against a busy InfluxDB"),
        InfluxStore("http://influx.invalid", "factory", transport=transport) as store,
        IngestService(settings, store, assets) as service,
    ):
        await started(service)
        await publish(publisher, settings, encode_batch(EDGE, 0, [sample("cnc-01", "parts_total", 0, 1)]))
        await wait_until(lambda: service.stats()["acks"] == 1, "the batch written after three refusals")
        stats = service.stats()
    times = [t for t, _ in transport.writes]
    waits = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(waits) == 3
    assert 0.95 <= waits[0] < 1.5  # Retry-After: 1 (the backoff alone would wait 0.2 s)
    assert 1.9 <= waits[1] < 3.5  # an HTTP date three seconds ahead (in whole seconds: 2 .. 3 s)
    assert waits[2] < 0.9  # no Retry-After: the writer's own backoff (0.4 s by then)
    assert (stats["write_retries"], stats["points_written"], stats["dead_letters"]) == (3, 1, 0)


async def test_a_point_too_large_for_the_server_is_dead_lettered_with_its_reason_and_the_rest_written(
    make_settings: Callable[..., Settings], assets: AssetModel, publisher: aiomqtt.Client
) -> None:
    transport = InfluxAnswering([], too_large="cnc-02")
    settings = make_settings()
    samples = [sample(eq, "parts_total", i, i) for i, eq in enumerate(["cnc-01", "cnc-03", "cnc-02", "cnc-04"])]
    async with (
        bounded(SCENARIO_WITHIN_S, "ingest against an InfluxDB refusing one point as too large"),
        InfluxStore("http://influx.invalid", "factory", transport=transport) as store,
        IngestService(settings, store, assets) as service,
    ):
        await started(service)
        await publish(publisher, settings, encode_batch(EDGE, 0, samples))
        await wait_until(lambda: service.stats()["acks"] == 1, "the batch written or dead-lettered")
        (letter,) = await service.dead_letters.list()
        stats = service.stats()
    assert letter.reason.startswith("store rejected: InfluxDB http://influx.invalid/write: HTTP 413:")
    assert "Request Entity Too Large: one point of" in letter.reason
    assert json.loads(letter.payload) == sample_to_json(samples[2])
    written = {eq for line in transport.stored for eq in re.findall(rb"equipment=([^,]+)", line)}
    assert written == {b"cnc-01", b"cnc-03", b"cnc-04"}
    assert (stats["points_written"], stats["dead_letters"]) == (3, 1)
