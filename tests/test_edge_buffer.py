"""The edge's durable sample buffer: FIFO order, acknowledged deletes, restart survival, the bound,
rows stored as wire JSON and sent as they are, and the migration of a version 1 file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.signals import OFFLINE, Quality
from core.wire import Sample, TimestampSource, decode_batch, decode_sample, encode_batch, sample_to_json
from edge.buffer import BufferWriter, SampleBuffer, batch_payload, encode_sample
from edge.errors import SampleBufferError

T0 = datetime(2026, 11, 25, 8, 0, 0, 123456, tzinfo=UTC)


def counter(n: int, equipment: str = "cnc-01") -> Sample:
    return Sample(equipment=equipment, signal="parts_total", ts=T0 + timedelta(seconds=n), value=n)


def decoded(rows: Sequence[bytes]) -> list[Sample]:
    return [decode_sample(row) for row in rows]


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


def test_batch_of_stored_rows_decodes_like_an_encoded_batch(tmp_path: Path) -> None:
    sent_at = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    payload = batch_payload("gw-1", 42, [encode_sample(s) for s in VARIED], sent_at)
    assert json.loads(payload) == json.loads(encode_batch("gw-1", 42, VARIED, sent_at))
    batch = decode_batch(payload)
    assert (batch.edge, batch.seq, batch.samples, batch.rejected) == ("gw-1", 42, VARIED, [])


def test_peek_returns_the_oldest_rows_first_as_wire_json(tmp_path: Path) -> None:
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
        last_id, rows = buffer.peek(2)
        assert rows == [encode_sample(state), encode_sample(counter(1))]
        assert buffer.count == 3
        # Peeking removes nothing.
        assert decoded(buffer.peek(10)[1]) == [state, counter(1), counter(2)]
        assert last_id > 0


def test_ack_deletes_the_batch_and_advances_the_sequence_by_one(tmp_path: Path) -> None:
    with SampleBuffer(tmp_path / "b.sqlite", 1000) as buffer:
        assert buffer.next_seq == 0
        buffer.append([counter(n) for n in range(5)])
        last_id, rows = buffer.peek(3)
        assert decoded(rows) == [counter(0), counter(1), counter(2)]
        buffer.append([counter(5)])  # arrives while the batch is in flight: must survive the ack
        buffer.ack(last_id)
        assert buffer.next_seq == 1
        assert buffer.count == 3
        assert decoded(buffer.peek(10)[1]) == [counter(3), counter(4), counter(5)]


def test_empty_peek_cannot_be_acknowledged(tmp_path: Path) -> None:
    with SampleBuffer(tmp_path / "b.sqlite", 1000) as buffer:
        assert buffer.peek(10) == (0, [])
        with pytest.raises(ValueError):
            buffer.ack(0)
        assert buffer.next_seq == 0


def test_samples_and_sequence_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    with SampleBuffer(path, 1000) as buffer:
        buffer.append([counter(n) for n in range(4)])
        buffer.ack(buffer.peek(2)[0])
        buffer.ack(buffer.peek(1)[0])
    with SampleBuffer(path, 1000) as reopened:
        assert reopened.next_seq == 2
        assert reopened.count == 1
        last_id, rows = reopened.peek(10)
        assert decoded(rows) == [counter(3)]
        reopened.ack(last_id)
        # Ids are not reused once the table is empty, so an old last_id can never delete new samples.
        reopened.append([counter(9)])
        assert reopened.peek(10)[0] > last_id


def test_full_buffer_drops_the_oldest_and_counts_them_persistently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "b.sqlite"
    with SampleBuffer(path, 1000) as buffer:
        buffer.append([counter(n) for n in range(990)])
        assert buffer.dropped == 0
        buffer.append([counter(n) for n in range(990, 1015)])
        assert buffer.count == 1000
        assert buffer.dropped == 15
        assert decoded(buffer.peek(1)[1]) == [counter(15)]
        buffer.append([counter(1015)])
        assert buffer.dropped == 16
    assert sum("buffer full" in r.getMessage() for r in caplog.records) == 1  # logged once, not per append
    with SampleBuffer(path, 1000) as reopened:
        assert reopened.dropped == 16
        assert reopened.count == 1000
        assert decoded(reopened.peek(1000)[1][-1:]) == [counter(1015)]


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
        last_id, rows = buffer.peek(10)
        assert all(type(row) is bytes for row in rows)
        assert decoded(rows) == [counter(0), counter(1), counter(2)]
        assert last_id == 42
        buffer.ack(last_id)
        buffer.append([counter(3)])
        assert buffer.peek(1)[0] == 43  # ids go on from the old file's
    assert any("migrated from schema version 1" in r.getMessage() for r in caplog.records)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_oldest_buffered_at_is_when_the_oldest_waiting_row_came_in(tmp_path: Path) -> None:
    with SampleBuffer(tmp_path / "b.sqlite", 1000) as buffer:
        assert buffer.oldest_buffered_at() is None
        before = datetime.now(UTC).timestamp()
        buffer.append([counter(0)])
        first = buffer.oldest_buffered_at()
        assert first is not None and before <= first <= datetime.now(UTC).timestamp()
        buffer.append([counter(1)])
        assert buffer.oldest_buffered_at() == first
        buffer.ack(buffer.peek(1)[0])
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
