"""The edge's durable sample buffer: FIFO order, acknowledged deletes, restart survival, the bound,
samples stored as wire JSON in chunks and sent as they are, and the migration of a version 1 file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.signals import OFFLINE, Quality
from core.wire import Sample, TimestampSource, decode_batch, decode_sample, encode_batch, sample_to_json
from edge.buffer import BufferedBatch, BufferWriter, SampleBuffer, batch_payload, encode_sample
from edge.errors import SampleBufferError

T0 = datetime(2026, 11, 25, 8, 0, 0, 123456, tzinfo=UTC)


def counter(n: int, equipment: str = "cnc-01") -> Sample:
    return Sample(equipment=equipment, signal="parts_total", ts=T0 + timedelta(seconds=n), value=n)


def decoded(batch: BufferedBatch | None) -> list[Sample]:
    """The samples of a peeked batch, read back the way ingest reads the message made of it."""
    assert batch is not None
    samples = decode_batch(batch_payload("gw-1", 0, batch.samples_json)).samples
    assert len(samples) == batch.count
    return samples


def peeked_id(batch: BufferedBatch | None) -> int:
    assert batch is not None
    return batch.last_id


# Every shape a sample can take: each kind of value, optional fields, text that JSON must escape,
# a time zone other than UTC, whole seconds, extreme numbers.
VARIED = [
    counter(0),
    Sample(equipment="cnc-01", signal="state", ts=T0, value="PRODUCING", raw="1"),
    Sample(
        equipment="cnc-01", signal="state", ts=T0, value=OFFLINE, ts_source=TimestampSource.GATEWAY, flags=("offline",)
    ),
    Sample(equipment="cnc-01", signal="spindle_speed", ts=T0.replace(microsecond=0), value=-0.0),
    Sample(
        equipment="cnc-01", signal="temperature_c", ts=T0, value=1e-310, status=0x40000000, quality=Quality.UNCERTAIN
    ),
    Sample(equipment="cnc-01", signal="load_pct", ts=T0, value=1.7976931348623157e308, flags=("a", 'b"c')),
    Sample(equipment="cnc-01", signal="door_open", ts=T0, value=True),
    Sample(equipment="cnc-01", signal="door_open", ts=T0, value=False),
    Sample(equipment="cnc-01", signal="counter_raw", ts=T0, value=-(2**63)),
    Sample(equipment="meter-a", signal="energy_kwh", ts=T0, value=12.0, status=0xFFFFFFFF),
    Sample(equipment='Prüfstand "7"\n', signal="state", ts=T0, value="IDLE", raw="Leerlauf ⏸ \\ \u0000"),
    Sample(
        equipment="cnc-01",
        signal="parts_good",
        ts=datetime(2026, 3, 29, 2, 30, 0, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        value=7,
    ),
    Sample(equipment="cnc-01", signal="parts_good", ts=datetime(1677, 9, 22, tzinfo=UTC), value=2**63 - 1),
]


@pytest.mark.parametrize("sample", VARIED, ids=range(len(VARIED)))
def test_encoded_sample_is_the_wire_json_and_decodes_to_the_same_sample(sample: Sample) -> None:
    row = encode_sample(sample)
    assert json.loads(row) == sample_to_json(sample)
    assert decode_sample(row) == sample


def test_encoding_in_a_row_samples_of_one_instant_in_two_zones_and_of_other_instants() -> None:
    """The encoder keeps the last timestamp's text: equal instants share it, any other gets its own."""
    india = timezone(timedelta(hours=5, minutes=30))
    times = [T0, T0.astimezone(india), T0, T0 + timedelta(microseconds=1), T0, T0 - timedelta(days=400)]
    samples = [counter(0).model_copy(update={"ts": ts}) for ts in times]
    assert [json.loads(encode_sample(s)) for s in samples] == [sample_to_json(s) for s in samples]


def test_batch_of_stored_rows_decodes_like_an_encoded_batch(tmp_path: Path) -> None:
    sent_at = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    payload = batch_payload("gw-1", 42, b",".join(encode_sample(s) for s in VARIED), sent_at)
    assert json.loads(payload) == json.loads(encode_batch("gw-1", 42, VARIED, sent_at))
    batch = decode_batch(payload)
    assert (batch.edge, batch.seq, batch.samples, batch.rejected) == ("gw-1", 42, VARIED, [])


def test_peek_returns_the_oldest_samples_first_as_their_wire_json(tmp_path: Path) -> None:
    state = Sample(
        equipment="cnc-01",
        signal="state",
        ts=T0,
        value="DOWN",
        raw="4",
        quality=Quality.UNCERTAIN,
        ts_source=TimestampSource.GATEWAY,
        flags=("ts_fallback",),
    )
    with SampleBuffer(tmp_path / "b.sqlite", 1000) as buffer:
        buffer.append([state, counter(1)])
        buffer.append([counter(2)])
        batch = buffer.peek(2)
        assert batch is not None and batch.count == 2
        assert batch.samples_json == encode_sample(state) + b"," + encode_sample(counter(1))
        assert buffer.count == 3
        # Peeking removes nothing.
        assert decoded(buffer.peek(10)) == [state, counter(1), counter(2)]


def test_samples_are_stored_in_chunks_and_a_batch_is_whole_chunks_up_to_the_limit(tmp_path: Path) -> None:
    with SampleBuffer(tmp_path / "b.sqlite", 1000, chunk_samples=4) as buffer:
        buffer.append([counter(n) for n in range(10)])  # chunks of 4, 4 and 2
        buffer.append([counter(10)])  # a chunk of its own
        with sqlite3.connect(tmp_path / "b.sqlite") as db:
            assert [n for (n,) in db.execute("SELECT samples FROM chunks ORDER BY id")] == [4, 4, 2, 1]
        assert decoded(buffer.peek(8)) == [counter(n) for n in range(8)]
        assert decoded(buffer.peek(7)) == [counter(n) for n in range(4)]  # never more than the limit ...
        assert decoded(buffer.peek(3)) == [counter(n) for n in range(4)]  # ... unless one chunk is more
        buffer.ack(peeked_id(buffer.peek(9)))
        assert buffer.count == 3
        assert decoded(buffer.peek(100)) == [counter(8), counter(9), counter(10)]


def test_ack_deletes_the_batch_and_advances_the_sequence_by_one(tmp_path: Path) -> None:
    with SampleBuffer(tmp_path / "b.sqlite", 1000, chunk_samples=1) as buffer:
        assert buffer.next_seq == 0
        buffer.append([counter(n) for n in range(5)])
        batch = buffer.peek(3)
        assert decoded(batch) == [counter(0), counter(1), counter(2)]
        buffer.append([counter(5)])  # arrives while the batch is in flight: must survive the ack
        buffer.ack(peeked_id(batch))
        assert buffer.next_seq == 1
        assert buffer.count == 3
        assert decoded(buffer.peek(10)) == [counter(3), counter(4), counter(5)]


def test_empty_peek_cannot_be_acknowledged(tmp_path: Path) -> None:
    with SampleBuffer(tmp_path / "b.sqlite", 1000) as buffer:
        assert buffer.peek(10) is None
        with pytest.raises(ValueError):
            buffer.ack(0)
        assert buffer.next_seq == 0


def test_samples_and_sequence_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    with SampleBuffer(path, 1000, chunk_samples=1) as buffer:
        buffer.append([counter(n) for n in range(4)])
        buffer.ack(peeked_id(buffer.peek(2)))
        buffer.ack(peeked_id(buffer.peek(1)))
    with SampleBuffer(path, 1000) as reopened:
        assert reopened.next_seq == 2
        assert reopened.count == 1
        batch = reopened.peek(10)
        assert decoded(batch) == [counter(3)]
        reopened.ack(peeked_id(batch))
        # Ids are not reused once the table is empty, so an old last_id can never delete new samples.
        reopened.append([counter(9)])
        assert peeked_id(reopened.peek(10)) > peeked_id(batch)


def test_full_buffer_drops_the_oldest_chunks_and_counts_them_persistently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "b.sqlite"
    with SampleBuffer(path, 1000, chunk_samples=10) as buffer:
        buffer.append([counter(n) for n in range(990)])
        assert buffer.dropped == 0
        buffer.append([counter(n) for n in range(990, 1015)])  # 15 too many: the two oldest chunks go
        assert (buffer.count, buffer.dropped) == (995, 20)
        assert decoded(buffer.peek(1)) == [counter(n) for n in range(20, 30)]
        buffer.append([counter(n) for n in range(1015, 1021)])  # one too many: one chunk goes
        assert (buffer.count, buffer.dropped) == (991, 30)
    assert sum("buffer full" in r.getMessage() for r in caplog.records) == 1  # logged once, not per append
    with SampleBuffer(path, 1000) as reopened:
        assert (reopened.count, reopened.dropped) == (991, 30)
        assert decoded(reopened.peek(1000)) == [counter(n) for n in range(30, 1021)]


def test_a_batch_dropped_while_in_flight_is_acknowledged_without_miscounting(tmp_path: Path) -> None:
    with SampleBuffer(tmp_path / "b.sqlite", 1000, chunk_samples=100) as buffer:
        buffer.append([counter(n) for n in range(1000)])
        in_flight = buffer.peek(100)
        buffer.append([counter(1000)])  # drops the chunk that is in flight
        assert (buffer.count, buffer.dropped) == (901, 100)
        buffer.ack(peeked_id(in_flight))
        assert buffer.count == 901
        assert decoded(buffer.peek(1)) == [counter(n) for n in range(100, 200)]


def test_a_file_from_a_newer_build_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(SampleBufferError, match=r"schema version 99 is not supported.*newer build"):
        SampleBuffer(path, 1000)


def test_a_version_1_file_is_migrated_with_its_samples_sequence_and_drop_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Version 1 (before this build) kept the same wire JSON as TEXT, without the time it was buffered."""
    path = tmp_path / "b.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE samples (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
            CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT INTO counters (name, value) VALUES ('next_seq', 17), ('dropped', 3);
            PRAGMA user_version = 1;
            """
        )
        db.executemany(
            "INSERT INTO samples (id, body) VALUES (?, ?)",
            [(40 + n, json.dumps(sample_to_json(counter(n)), separators=(",", ":"))) for n in range(3)],
        )
    with SampleBuffer(path, 1000) as buffer:
        assert (buffer.count, buffer.next_seq, buffer.dropped) == (3, 17, 3)
        assert buffer.oldest_buffered_at() is not None
        batch = buffer.peek(10)
        assert decoded(batch) == [counter(0), counter(1), counter(2)]
        assert peeked_id(batch) == 42
        buffer.ack(peeked_id(batch))
        buffer.append([counter(3)])
        assert peeked_id(buffer.peek(1)) == 43  # ids go on from the old file's
    assert any("migrated from schema version 1" in r.getMessage() for r in caplog.records)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_oldest_buffered_at_is_when_the_oldest_waiting_row_came_in(tmp_path: Path) -> None:
    with SampleBuffer(tmp_path / "b.sqlite", 1000, chunk_samples=1) as buffer:
        assert buffer.oldest_buffered_at() is None
        before = datetime.now(UTC).timestamp()
        buffer.append([counter(0)])
        first = buffer.oldest_buffered_at()
        assert first is not None and before <= first <= datetime.now(UTC).timestamp()
        buffer.append([counter(1)])
        assert buffer.oldest_buffered_at() == first
        buffer.ack(peeked_id(buffer.peek(1)))
        second = buffer.oldest_buffered_at()
        assert second is not None and second >= first


async def test_writer_appends_in_batches_and_flushes_what_is_pending_on_exit(tmp_path: Path) -> None:
    notified: list[int] = []
    with SampleBuffer(tmp_path / "b.sqlite", 1000) as buffer:
        async with BufferWriter(buffer, interval_s=0.05, on_append=lambda: notified.append(buffer.count)) as writer:
            for n in range(3):
                writer.put(counter(n))
            assert buffer.count == 0  # the handler path only collects
            await asyncio.sleep(0.2)
            assert buffer.count == 3
            assert notified == [3]  # three puts, one transaction, one wake-up for the forwarder
            writer.put(counter(3))
        assert buffer.count == 4  # flushed on exit, not lost
        assert writer.samples_written == 4


async def test_writer_does_not_wait_for_the_interval_once_max_pending_samples_arrived(tmp_path: Path) -> None:
    with SampleBuffer(tmp_path / "b.sqlite", 1000) as buffer:
        async with BufferWriter(buffer, interval_s=30, max_pending=10) as writer:
            for n in range(10):
                writer.put(counter(n))
            assert writer.pending == 10
            for _ in range(50):
                await asyncio.sleep(0.01)
                if buffer.count == 10:
                    break
            assert (buffer.count, writer.pending) == (10, 0)
