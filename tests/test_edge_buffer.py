"""The edge's durable sample buffer: FIFO order, acknowledged deletes, restart survival, the bound."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.signals import Quality
from core.wire import Sample, TimestampSource
from edge.buffer import BufferWriter, SampleBuffer
from edge.errors import SampleBufferError

T0 = datetime(2026, 11, 25, 8, 0, 0, 123456, tzinfo=UTC)


def counter(n: int, equipment: str = "cnc-01") -> Sample:
    return Sample(equipment=equipment, signal="parts_total", ts=T0 + timedelta(seconds=n), value=n)


def test_peek_returns_the_oldest_samples_first_rebuilt_as_samples(tmp_path: Path) -> None:
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
        last_id, samples = buffer.peek(2)
        assert samples == [state, counter(1)]
        assert buffer.count == 3
        # Peeking removes nothing.
        assert buffer.peek(10)[1] == [state, counter(1), counter(2)]
        assert last_id > 0


def test_ack_deletes_the_batch_and_advances_the_sequence_by_one(tmp_path: Path) -> None:
    with SampleBuffer(tmp_path / "b.sqlite", 1000) as buffer:
        assert buffer.next_seq == 0
        buffer.append([counter(n) for n in range(5)])
        last_id, samples = buffer.peek(3)
        assert samples == [counter(0), counter(1), counter(2)]
        buffer.append([counter(5)])  # arrives while the batch is in flight: must survive the ack
        buffer.ack(last_id)
        assert buffer.next_seq == 1
        assert buffer.count == 3
        assert buffer.peek(10)[1] == [counter(3), counter(4), counter(5)]


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
        last_id, samples = reopened.peek(10)
        assert samples == [counter(3)]
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
        assert buffer.peek(1)[1] == [counter(15)]
        buffer.append([counter(1015)])
        assert buffer.dropped == 16
    assert sum("buffer full" in r.getMessage() for r in caplog.records) == 1  # logged once, not per append
    with SampleBuffer(path, 1000) as reopened:
        assert reopened.dropped == 16
        assert reopened.count == 1000
        assert reopened.peek(1000)[1][-1] == counter(1015)


def test_a_file_from_a_newer_build_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(SampleBufferError, match="schema version 99"):
        SampleBuffer(path, 1000)


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
