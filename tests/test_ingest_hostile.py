"""Nothing an edge sends stops ingest: every message ends stored, dead-lettered with a reason, or counted.

A real IngestService, a real Mosquitto, a real store (SQLite, and InfluxDB for the issue's own
examples) and a real dead-letter file. The property test sends hypothesis-made messages, good and
hostile mixed, and checks that the service is still running and that every sample is accounted for.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.assets import load_asset_model
from core.store import Store
from core.stores.influx import InfluxStore
from core.stores.sqlite import SqliteStore
from core.wire import datetime_to_ns, format_ts
from ingest import IngestService
from tests.ingest_support import EXAMPLE_ASSETS, bounded, ingest_settings, mqtt_publisher, publish_to, started
from tests.servers import InfluxServer, MosquittoServer
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

EDGE = "gw-fuzz"
ASSETS = load_asset_model(EXAMPLE_ASSETS)
NOW = datetime.now(UTC).replace(microsecond=0)  # samples sit just before the test's start: inside the window
WINDOW = (NOW - timedelta(days=1), NOW + timedelta(days=1))


def good_sample(n: int) -> dict[str, Any]:
    """A sample the platform must store, unique by (equipment, signal, ts)."""
    equipment = ("cnc-02", "cnc-03", "robot-01", "meter-b")[n % 4]
    signal, value = {
        "cnc-02": ("parts_total", n),
        "cnc-03": ("state", "PRODUCING"),
        "robot-01": ("spindle_load", n / 7),
        "meter-b": ("energy_kwh", 1000 + n / 3),
    }[equipment]
    return {"equipment": equipment, "signal": signal, "ts": format_ts(NOW - timedelta(milliseconds=n)), "value": value}


def envelope(seq: Any, samples: list[Any], **fields: Any) -> bytes:
    return json.dumps({"v": 1, "edge": EDGE, "seq": seq, "samples": samples, **fields}).encode()


BASE = {"equipment": "cnc-01", "signal": "parts_total", "ts": format_ts(NOW), "value": 1}

# The issue's own examples, each a message that once stopped ingest.
HOSTILE_MESSAGES: dict[str, bytes] = {
    "parts_total Infinity": envelope(0, [{**BASE, "value": math.inf}]),
    "seq 10^30": envelope(10**30, [BASE]),
    "value 10^30": envelope(0, [{**BASE, "value": 10**30}]),
    "process value 10^400": envelope(0, [{**BASE, "signal": "load", "value": 10**400}]),
    "energy NaN": envelope(0, [{**BASE, "signal": "energy_kwh", "value": math.nan}]),
    "year 0001": envelope(0, [{**BASE, "ts": "0001-01-01T00:00:00+01:00"}]),
    "year 9999": envelope(0, [{**BASE, "ts": "9999-12-31T23:59:59-14:00"}]),
    "a year ahead": envelope(0, [{**BASE, "ts": format_ts(NOW + timedelta(days=365))}]),
    "deep 200 kB": b'{"v": 1, "edge": "gw-fuzz", "seq": 0, "samples": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "5000 digits": b'{"v": 1, "edge": "gw-fuzz", "seq": 1' + b"0" * 5000 + b', "samples": []}',
    "oversized": envelope(0, [{**BASE, "raw": "r" * 100}] * 2000),
    "not UTF-8": b"\xff\xfe\x00",
    "sent_at year 0001": envelope(0, [BASE], sent_at="0001-01-01T00:00:00+01:00"),
    "flags galore": envelope(0, [{**BASE, "flags": ["f" * 1000] * 20}]),
}
WHOLE = {"seq 10^30", "deep 200 kB", "5000 digits", "oversized", "not UTF-8", "sent_at year 0001"}


async def count_points(store: Store) -> int:
    frames = [await store.read(m, *WINDOW) for m in ("machine_state", "part_counter", "energy", "process_value")]
    return sum(len(f) for f in frames)


@pytest.mark.parametrize("backend", ["sqlite", "influxdb"])
async def test_the_issues_hostile_messages_are_dead_lettered_and_the_stream_goes_on(
    backend: str, tmp_path: Path, mosquitto_server: MosquittoServer, influx_server: InfluxServer, influx_database: str
) -> None:
    settings = ingest_settings(tmp_path, mosquitto_server, max_payload_bytes=300_000)
    topic = settings.uplink.topic(EDGE)
    sqlite = backend == "sqlite"
    store: Store = SqliteStore(tmp_path / "s.sqlite") if sqlite else InfluxStore(influx_server.url, influx_database)
    goods = [good_sample(n) for n in range(len(HOSTILE_MESSAGES) + 1)]
    async with mqtt_publisher(mosquitto_server) as publisher:
        service = IngestService(settings, store, ASSETS)
        running = asyncio.create_task(service.run())
        try:
            async with bounded(60, "hostile messages, each followed by a good one"):
                await started(service)
                await publish_to(publisher, topic, envelope(0, [goods[0]]))
                for n, payload in enumerate(HOSTILE_MESSAGES.values(), start=1):
                    await publish_to(publisher, topic, payload)
                    await publish_to(publisher, topic, envelope(n, [goods[n]]))
                await wait_until(lambda: service.stats()["points_written"] == len(goods), "every good sample written")
                assert not running.done()
                letters = await service.dead_letters.list(limit=100)
                stored = await count_points(store)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await store.close()

    assert stored == len(goods)
    assert len(letters) == len(HOSTILE_MESSAGES)
    letters.reverse()
    for (name, payload), letter in zip(HOSTILE_MESSAGES.items(), letters, strict=True):
        assert letter.reason, name
        if name in WHOLE:
            assert (letter.edge, letter.seq) == (EDGE, None), name  # the edge its topic names
            assert letter.payload == payload[: len(letter.payload)], name
        else:
            assert (letter.edge, letter.seq, letter.reason[:11]) == (EDGE, 0, "samples[0]."), name
    reasons = {name: letter.reason for name, letter in zip(HOSTILE_MESSAGES, letters, strict=True)}
    assert "inf is not a finite number" in reasons["parts_total Infinity"]
    assert reasons["seq 10^30"] == "seq: Input should be less than or equal to 9223372036854775807"
    assert "more than 300 s after the receiver's clock" in reasons["a year ahead"]
    assert reasons["deep 200 kB"] == "payload nests deeper than the JSON decoder allows"
    assert reasons["oversized"].startswith("payload of ") and "exceeds the limit of 300000" in reasons["oversized"]


# --- the property: hypothesis-made messages through the running service -----------------------------

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=70),
    st.sampled_from(
        [format_ts(NOW), "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "PRODUCING", "cnc-01", "state"]
    ),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
)
FUZZED_SAMPLE = st.builds(
    lambda base, changes: {**base, **changes},
    st.sampled_from(
        [BASE, {**BASE, "signal": "state", "value": "IDLE"}, {**BASE, "signal": "energy_kwh", "value": 2.5}]
    ),
    st.dictionaries(
        st.sampled_from(["equipment", "signal", "ts", "value", "raw", "quality", "ts_source", "flags", "x"]),
        JSON_VALUES,
        max_size=3,
    ),
)
# A message: ("batch", good count, fuzzed samples) has a valid envelope; ("raw", bytes) has none that
# could be stored: an extra envelope field ("x") is refused whatever else the envelope holds.
MESSAGES = st.one_of(
    st.tuples(st.just("batch"), st.integers(min_value=0, max_value=3), st.lists(FUZZED_SAMPLE, max_size=3)),
    st.tuples(st.just("raw"), st.sampled_from(sorted(HOSTILE_MESSAGES.values()))),
    st.tuples(st.just("raw"), st.binary(max_size=64)),
    st.tuples(
        st.just("raw"),
        st.builds(
            lambda fields, extra, samples: json.dumps(
                {"v": 1, "edge": EDGE, "seq": 0, "samples": samples, **fields, "x": extra}
            ).encode(),
            st.dictionaries(st.sampled_from(["v", "edge", "seq", "sent_at", "samples"]), JSON_VALUES, max_size=2),
            JSON_VALUES,
            st.lists(FUZZED_SAMPLE, max_size=2),
        ),
    ),
)


# Into SQLite (every message by the reference path) and into InfluxDB, where plain batches take the
# fast path (decode_plain, LineEncoder, write_lines) and the others the reference path, mixed.
@pytest.mark.parametrize("kind", ["sqlite", "influxdb"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(MESSAGES, min_size=1, max_size=12))
async def test_fuzzed_messages_never_stop_the_service_and_every_sample_is_stored_or_dead_lettered(
    kind: str, mosquitto_server: MosquittoServer, influx_server: InfluxServer, messages: list[tuple[Any, ...]]
) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        settings = ingest_settings(Path(workdir), mosquitto_server, max_payload_bytes=300_000)
        topic = settings.uplink.topic(EDGE)
        store: Store
        if kind == "sqlite":
            store = SqliteStore(Path(workdir) / "store.sqlite")
        else:
            store = InfluxStore(influx_server.url, f"fuzz_{uuid.uuid4().hex[:12]}")
        service = IngestService(settings, store, ASSETS)
        running = asyncio.create_task(service.run())
        goods: list[dict[str, Any]] = []
        in_batches = 0  # samples inside messages whose envelope is valid by construction
        seq = 1_000  # seq 0 belongs to the raw messages; batches count up from here, so none repeats
        try:
            async with bounded(60, "fuzzed messages through ingest"), mqtt_publisher(mosquitto_server) as publisher:
                await started(service)
                for message in messages:
                    if message[0] == "batch":
                        _, good_count, fuzzed = message
                        batch_goods = [good_sample(len(goods) + k) for k in range(good_count)]
                        goods.extend(batch_goods)
                        samples = [*batch_goods, *fuzzed]
                        if not samples:
                            samples = [good_sample(len(goods))]
                            goods.append(samples[0])
                        in_batches += len(samples)
                        seq += 1
                        await publish_to(publisher, topic, envelope(seq, samples))
                    else:
                        await publish_to(publisher, topic, message[1])

                def settled() -> bool:
                    stats = service.stats()
                    return stats["messages"] == len(messages) and stats["pending_points"] == 0

                await wait_until(settled, "every message handled and written")
                await asyncio.sleep(0.1)  # a last write in flight shows in the counters before it is done
                await wait_until(settled, "every message handled and written")
                assert not running.done(), "the service stopped"
                stats = service.stats()
                letters = await service.dead_letters.list(limit=10_000)
                frames = {m: await store.read(m, *WINDOW) for m in ("machine_state", "part_counter", "energy")}
                frames["process_value"] = await store.read("process_value", *WINDOW)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await store.close()

    assert all(letter.reason for letter in letters)
    of_batches = [d for d in letters if d.edge == EDGE and d.seq is not None and d.seq > 1_000]
    # Every sample of a valid envelope is either written or dead-lettered, exactly once.
    assert stats["points_written"] + len(of_batches) == in_batches
    # Every good sample is in the store with its value.
    stored = {
        (row["equipment"], row["signal"], row["time"].value): row["value"]
        for frame in frames.values()
        for row in frame.to_dict("records")
    }
    for good in goods:
        key = (good["equipment"], good["signal"], datetime_to_ns(datetime.fromisoformat(good["ts"])))
        assert stored.get(key) == good["value"], good
