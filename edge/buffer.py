"""Durable store-and-forward buffer: samples wait in a local SQLite file until the broker has them.

Every sample is encoded once, when it enters the buffer, as its wire JSON (``encode_sample``: the
bytes ``core.wire.sample_to_json`` describes), and stored in insertion order in *chunks*: the JSON of
up to ``chunk_samples`` consecutive samples, comma-separated, one row each (a row per sample cost
the gateway more CPU in SQLite than everything else the buffer does). The forwarder peeks the oldest
chunks and sends them as they are, inside one batch envelope (``batch_payload``): nothing is parsed
or validated again on the way out. It acknowledges that batch with ``ack``, which deletes its chunks
*and* advances the per-edge batch sequence number in the same transaction, so after a crash either
both happened or neither did (and the batch is resent with the same sequence number, which ingest
tolerates because its writes are idempotent).

The buffer is bounded: when it holds more than ``max_samples``, the oldest chunks are dropped (so
up to ``chunk_samples - 1`` more samples than the excess), counted in the persisted ``dropped``
counter and logged when dropping starts and when it stops.

The file runs in WAL mode with ``synchronous=NORMAL``: a committed append survives a crash of the
agent process (``kill -9``); a power cut may lose the last commits (not corrupt the file). All calls
are short synchronous transactions made from the event loop.

Schema versions: 1 kept one sample per row as TEXT, without the time it was buffered; a version 1
file is migrated in place when opened (each row becomes a chunk of one, buffered "now"). A file from
a newer build is refused with its version.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from core.signals import Quality
from core.wire import WIRE_VERSION, Sample, TimestampSource, format_ts
from edge.errors import SampleBufferError
from edge.lifecycle import BackgroundComponent

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
CHUNK_SAMPLES = 100  # samples per row: the drop granularity, and few enough to split batches finely

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused, even once emptied
    body        BLOB NOT NULL,                      -- the samples' wire JSON, comma-separated: sent as it is
    samples     INTEGER NOT NULL,                   -- how many
    buffered_at REAL NOT NULL                       -- gateway time (epoch s) they entered the buffer
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('next_seq', 0), ('dropped', 0);
"""

# Version 1 kept one sample per row of `samples`, the same JSON as TEXT, without buffered_at.
_MIGRATE_FROM_1 = """
INSERT INTO chunks (id, body, samples, buffered_at) SELECT id, CAST(body AS BLOB), 1, {now} FROM samples ORDER BY id;
DROP TABLE samples;
"""


@dataclass(frozen=True, slots=True)
class BufferedBatch:
    """The oldest samples in the buffer, ready to send: ``ack(last_id)`` deletes them once delivered."""

    last_id: int
    samples_json: bytes  # the samples' wire JSON, comma-separated: the inside of a batch's "samples" array
    count: int


@functools.lru_cache(maxsize=4_096)
def _json_text(text: str) -> str:
    """A JSON string literal; cached, since equipment ids, state names and raw codes repeat."""
    return json.dumps(text)


# The opening of a sample's JSON per (equipment, signal), which a gateway has a few thousand of.
_HEADS: dict[tuple[str, str], str] = {}
_MAX_HEADS = 100_000


def _head(equipment: str, signal: str) -> str:
    head = f'{{"equipment":{_json_text(equipment)},"signal":{_json_text(signal)},"ts":"'
    if len(_HEADS) < _MAX_HEADS:
        _HEADS[(equipment, signal)] = head
    return head


# The closing fields per (quality, ts_source): a handful of combinations.
_TAILS: dict[tuple[Quality, TimestampSource], str] = {
    (q, s): f',"quality":"{q.value}","ts_source":"{s.value}"' for q in Quality for s in TimestampSource
}


# The text of recent timestamps: the samples of one OPC UA publish or one meter message share a few
# times (a publish of two ticks of a thousand signals holds two, alternating), and formatting one is
# a third of the encoding. Equal aware datetimes are the same instant, so the same UTC text.
_TS_TEXTS: dict[datetime, str] = {}
_MAX_TS_TEXTS = 256


def _ts_text(ts: datetime) -> str:
    text = _TS_TEXTS.get(ts)
    if text is None:
        if len(_TS_TEXTS) >= _MAX_TS_TEXTS:
            _TS_TEXTS.clear()
        utc = ts.astimezone(UTC) if ts.utcoffset() else ts
        # isoformat of a UTC time less its "+00:00" is what core.wire.format_ts writes, at a third of the cost.
        text = _TS_TEXTS[ts] = utc.isoformat(timespec="microseconds")[:26]
    return text


def encode_sample(sample: Sample) -> bytes:
    """The sample's wire JSON, as ``json.dumps(core.wire.sample_to_json(sample))`` would read back.

    Written by hand because it runs once per sample on the gateway's busiest path (about a quarter
    of ``json.dumps`` of the dict). The model guarantees what is assumed here: the value is a
    finite float, an int64, a bool or a state name, flags short strings, the time aware.
    tests/test_edge_buffer.py holds it against ``sample_to_json``.
    """
    fields = sample.__dict__
    key = (fields["equipment"], fields["signal"])
    head = _HEADS.get(key) or _head(*key)
    value = fields["value"]
    if value is True:
        value_text = "true"
    elif value is False:
        value_text = "false"
    elif type(value) is str:
        value_text = _json_text(value)
    else:
        value_text = repr(value)  # int, or a finite float: what json.dumps writes for both
    text = f'{head}{_ts_text(fields["ts"])}Z","value":{value_text}{_TAILS[fields["quality"], fields["ts_source"]]}'
    if (raw := fields["raw"]) is not None:
        text += f',"raw":{_json_text(raw)}'
    if flags := fields["flags"]:
        text += f',"flags":{json.dumps(list(flags))}'
    if (status := fields["status"]) is not None:
        text += f',"status":{status:d}'
    return (text + "}").encode()


def batch_payload(edge: str, seq: int, samples_json: bytes, sent_at: datetime | None = None) -> bytes:
    """One uplink message (``core.wire`` version 1) around samples that are already wire JSON
    (comma-separated, as ``BufferedBatch.samples_json`` holds them).

    The same envelope ``core.wire.encode_batch`` writes; the samples are not re-encoded.
    """
    head = (
        f'{{"v":{WIRE_VERSION},"edge":{json.dumps(edge)},"seq":{seq:d},'
        f'"sent_at":"{format_ts(sent_at or datetime.now(UTC))}","samples":['
    )
    return head.encode() + samples_json + b"]}"


class SampleBuffer:
    """A bounded, durable FIFO of encoded samples plus the edge's persisted batch sequence number."""

    def __init__(self, path: Path | str, max_samples: int, *, chunk_samples: int = CHUNK_SAMPLES):
        if max_samples < 1 or chunk_samples < 1:
            raise ValueError("max_samples and chunk_samples must be at least 1")
        self.path = Path(path)
        self.max_samples = max_samples
        self.chunk_samples = chunk_samples
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._open_schema()
            self._count: int = self._db.execute("SELECT COALESCE(SUM(samples), 0) FROM chunks").fetchone()[0]
            self._next_seq = self._counter("next_seq")
            self._dropped = self._counter("dropped")
        except sqlite3.Error as exc:
            raise SampleBufferError(f"{self.path}: cannot open the sample buffer: {exc}") from exc
        self._dropping = False
        if self._count:
            logger.info("sample buffer %s holds %d samples from before the restart", self.path, self._count)

    def _open_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, 1, SCHEMA_VERSION):
            raise SampleBufferError(
                f"{self.path}: buffer schema version {version} is not supported "
                f"(this build reads versions 1 and {SCHEMA_VERSION}; it was written by a newer build: "
                "forward its samples with that build, or move the file away to start an empty buffer)"
            )
        script = _SCHEMA
        if version == 1:
            script += _MIGRATE_FROM_1.format(now=time.time())
        # executescript commits on its own, so the script carries its own transaction.
        self._db.executescript(f"BEGIN IMMEDIATE;{script}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
        if version == 1:
            logger.warning("sample buffer %s migrated from schema version 1 to %d", self.path, SCHEMA_VERSION)

    @property
    def count(self) -> int:
        """Samples waiting to be forwarded."""
        return self._count

    @property
    def next_seq(self) -> int:
        """Sequence number of the next batch to send; advances by one per acknowledged batch."""
        return self._next_seq

    @property
    def dropped(self) -> int:
        """Samples dropped because the buffer was full, over the whole life of the file."""
        return self._dropped

    def oldest_buffered_at(self) -> float | None:
        """Gateway time (epoch s) the oldest waiting sample entered the buffer; None when empty."""
        if not self._count:
            return None
        try:
            row = self._db.execute("SELECT buffered_at FROM chunks ORDER BY id LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            raise SampleBufferError(f"{self.path}: cannot read the oldest sample: {exc}") from exc
        return None if row is None else float(row[0])

    def append(self, samples: Sequence[Sample]) -> None:
        """Encode samples once and store them in one transaction (see ``append_encoded``)."""
        self.append_encoded([encode_sample(s) for s in samples])

    def append_encoded(self, rows: Sequence[bytes]) -> None:
        """Store samples' wire JSON in one transaction, dropping the oldest chunks beyond the bound."""
        if not rows:
            return
        now = time.time()
        size = self.chunk_samples
        chunks = [(b",".join(rows[i : i + size]), len(rows[i : i + size]), now) for i in range(0, len(rows), size)]
        dropped = 0
        try:
            with self._transaction():
                self._db.executemany("INSERT INTO chunks (body, samples, buffered_at) VALUES (?, ?, ?)", chunks)
                if self._count + len(rows) > self.max_samples:
                    dropped = self._drop_oldest(self._count + len(rows) - self.max_samples)
        except sqlite3.Error as exc:
            raise SampleBufferError(f"{self.path}: cannot append {len(rows)} samples: {exc}") from exc
        self._count += len(rows) - dropped
        if dropped:
            self._dropped += dropped
            if not self._dropping:
                self._dropping = True
                logger.warning(
                    "sample buffer full (%d samples): dropping the oldest until the uplink catches up",
                    self.max_samples,
                )

    def _drop_oldest(self, excess: int) -> int:
        """Delete the oldest chunks holding at least ``excess`` samples; how many samples went."""
        dropped, upto = 0, 0
        cursor = self._db.execute("SELECT id, samples FROM chunks ORDER BY id")
        try:
            for chunk_id, count in cursor:
                dropped, upto = dropped + count, chunk_id
                if dropped >= excess:
                    break
        finally:
            cursor.close()
        self._db.execute("DELETE FROM chunks WHERE id <= ?", (upto,))
        self._db.execute("UPDATE counters SET value = value + ? WHERE name = 'dropped'", (dropped,))
        return dropped

    def peek(self, limit: int) -> BufferedBatch | None:
        """The oldest chunks holding at most ``limit`` samples (at least one chunk); None when empty.

        Nothing is removed: call ``ack(batch.last_id)`` once the batch is safely delivered.
        """
        bodies: list[bytes] = []
        count = last_id = 0
        try:
            cursor = self._db.execute("SELECT id, body, samples FROM chunks ORDER BY id")
            try:
                for chunk_id, body, samples in cursor:  # read lazily: stop at the limit
                    if bodies and count + samples > limit:
                        break
                    bodies.append(body)
                    count, last_id = count + samples, chunk_id
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            raise SampleBufferError(f"{self.path}: cannot read samples: {exc}") from exc
        if not bodies:
            return None
        return BufferedBatch(last_id, b",".join(bodies), count)

    def ack(self, last_id: int) -> None:
        """The batch ending at ``last_id`` was delivered: delete it and advance ``next_seq`` by one."""
        if last_id < 1:
            raise ValueError("ack needs the last_id of a peeked batch")
        try:
            with self._transaction():
                # The chunks may be gone already (dropped while the batch was in flight): count what is.
                deleted = self._db.execute(
                    "SELECT COALESCE(SUM(samples), 0) FROM chunks WHERE id <= ?", (last_id,)
                ).fetchone()[0]
                self._db.execute("DELETE FROM chunks WHERE id <= ?", (last_id,))
                self._db.execute("UPDATE counters SET value = value + 1 WHERE name = 'next_seq'")
        except sqlite3.Error as exc:
            raise SampleBufferError(f"{self.path}: cannot acknowledge up to chunk {last_id}: {exc}") from exc
        self._count -= deleted
        self._next_seq += 1
        if self._dropping and self._count < self.max_samples:
            self._dropping = False
            logger.warning("sample buffer has room again; %d samples dropped so far in total", self._dropped)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _counter(self, name: str) -> int:
        return int(self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


class SampleSink(Protocol):
    """Where sources put the samples they produce."""

    def put(self, sample: Sample) -> None: ...


class BufferWriter(BackgroundComponent):
    """Collects samples from every source in memory and appends them to the buffer every ``interval_s``.

    Sources call ``put`` from their notification handlers, which stays cheap (a list append); the
    encoding and the disk write happen once per interval for everything that arrived meanwhile, so
    one OPC UA publish response (hundreds of notifications handled in one go) becomes one
    transaction. ``interval_s`` is short (``edge.flush_interval_s``, 5 ms by default): it is the
    time a sample waits in memory, so it adds to the latency, and a ``kill -9`` loses at most that
    much (a clean shutdown loses nothing: whatever is pending is written on exit). More than
    ``max_pending`` samples are written at once without waiting for the interval.
    """

    def __init__(
        self,
        buffer: SampleBuffer,
        *,
        interval_s: float = 0.005,
        max_pending: int = 10_000,
        on_append: Callable[[], None] | None = None,
    ):
        self._buffer = buffer
        self._interval_s = interval_s
        self._max_pending = max_pending
        self._on_append = on_append
        self._pending: list[Sample] = []
        self._has_pending = asyncio.Event()
        self._full = asyncio.Event()
        self.samples_written = 0

    def put(self, sample: Sample) -> None:
        pending = self._pending
        pending.append(sample)
        if len(pending) == 1:
            self._has_pending.set()
        elif len(pending) >= self._max_pending:
            self._full.set()

    @property
    def pending(self) -> int:
        """Samples received and not yet in the buffer file."""
        return len(self._pending)

    def flush(self) -> int:
        """Append everything pending now; returns how many samples were written."""
        pending, self._pending = self._pending, []
        self._has_pending.clear()
        self._full.clear()
        if not pending:
            return 0
        try:
            self._buffer.append(pending)
        except SampleBufferError:
            # Keep them for the next attempt rather than losing them with the failed transaction.
            self._pending[:0] = pending
            raise
        self.samples_written += len(pending)
        if self._on_append is not None:
            self._on_append()
        return len(pending)

    def _task_name(self) -> str:
        return "edge-buffer-writer"

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        self.flush()

    async def _run(self) -> None:
        while True:
            await self._has_pending.wait()
            # Let one interval's worth of samples gather so they share one transaction.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._interval_s)
            self.flush()
