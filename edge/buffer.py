"""Durable store-and-forward buffer: samples wait in a local SQLite file until the broker has them.

Every sample is stored as its wire JSON (``core.wire.sample_to_json``) in insertion order. The
forwarder peeks the oldest samples, publishes them as one batch and acknowledges that batch with
``ack``, which deletes the samples *and* advances the per-edge batch sequence number in the same
transaction, so after a crash either both happened or neither did (and the batch is resent with the
same sequence number, which ingest tolerates because its writes are idempotent).

The buffer is bounded: when it is full, the oldest samples are dropped, counted in the persisted
``dropped`` counter and logged when dropping starts and when it stops.

The file runs in WAL mode with ``synchronous=NORMAL``: a committed append survives a crash of the
agent process; a power cut may lose the last commits (not corrupt the file). All calls are short
synchronous transactions made from the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from pydantic import ValidationError

from core.wire import Sample, sample_to_json
from edge.errors import SampleBufferError
from edge.lifecycle import BackgroundComponent

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused, even once emptied
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('next_seq', 0), ('dropped', 0);
"""


class SampleBuffer:
    """A bounded, durable FIFO of samples plus the edge's persisted batch sequence number."""

    def __init__(self, path: Path | str, max_samples: int):
        if max_samples < 1:
            raise ValueError("max_samples must be at least 1")
        self.path = Path(path)
        self.max_samples = max_samples
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise SampleBufferError(
                    f"{self.path}: buffer schema version {version} is not supported "
                    f"(this build reads version {SCHEMA_VERSION})"
                )
            # executescript commits on its own, so the script carries its own transaction.
            self._db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
            self._count: int = self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
            self._next_seq = self._counter("next_seq")
            self._dropped = self._counter("dropped")
        except sqlite3.Error as exc:
            raise SampleBufferError(f"{self.path}: cannot open the sample buffer: {exc}") from exc
        self._dropping = False
        if self._count:
            logger.info("sample buffer %s holds %d samples from before the restart", self.path, self._count)

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

    def append(self, samples: Sequence[Sample]) -> None:
        """Store samples in one transaction, dropping the oldest ones if the bound is exceeded."""
        if not samples:
            return
        rows = [(json.dumps(sample_to_json(s), separators=(",", ":")),) for s in samples]
        excess = max(0, self._count + len(rows) - self.max_samples)
        try:
            with self._transaction():
                self._db.executemany("INSERT INTO samples (body) VALUES (?)", rows)
                if excess:
                    self._db.execute(
                        "DELETE FROM samples WHERE id IN (SELECT id FROM samples ORDER BY id LIMIT ?)",
                        (excess,),
                    )
                    self._db.execute("UPDATE counters SET value = value + ? WHERE name = 'dropped'", (excess,))
        except sqlite3.Error as exc:
            raise SampleBufferError(f"{self.path}: cannot append {len(rows)} samples: {exc}") from exc
        self._count += len(rows) - excess
        if excess:
            self._dropped += excess
            if not self._dropping:
                self._dropping = True
                logger.warning(
                    "sample buffer full (%d samples): dropping the oldest until the uplink catches up",
                    self.max_samples,
                )

    def peek(self, limit: int) -> tuple[int, list[Sample]]:
        """The oldest ``limit`` samples and the id of the last one; ``(0, [])`` when empty.

        Nothing is removed: call ``ack(last_id)`` once the batch is safely delivered.
        """
        try:
            rows = self._db.execute("SELECT id, body FROM samples ORDER BY id LIMIT ?", (limit,)).fetchall()
        except sqlite3.Error as exc:
            raise SampleBufferError(f"{self.path}: cannot read samples: {exc}") from exc
        if not rows:
            return 0, []
        try:
            samples = [Sample.model_validate(json.loads(body)) for _, body in rows]
        except (ValueError, ValidationError) as exc:
            # Only this module writes the file, so this is corruption or a version mismatch.
            raise SampleBufferError(f"{self.path}: a stored sample cannot be read back: {exc}") from exc
        return int(rows[-1][0]), samples

    def ack(self, last_id: int) -> None:
        """The batch ending at ``last_id`` was delivered: delete it and advance ``next_seq`` by one."""
        if last_id < 1:
            raise ValueError("ack needs the last_id of a non-empty peek")
        try:
            with self._transaction():
                deleted = self._db.execute("DELETE FROM samples WHERE id <= ?", (last_id,)).rowcount
                self._db.execute("UPDATE counters SET value = value + 1 WHERE name = 'next_seq'")
        except sqlite3.Error as exc:
            raise SampleBufferError(f"{self.path}: cannot acknowledge up to sample {last_id}: {exc}") from exc
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
    disk write happens once per interval for everything that arrived meanwhile. On exit whatever
    is still pending is written, so a clean shutdown loses nothing.
    """

    def __init__(self, buffer: SampleBuffer, *, interval_s: float = 0.05, on_append: Callable[[], None] | None = None):
        self._buffer = buffer
        self._interval_s = interval_s
        self._on_append = on_append
        self._pending: list[Sample] = []
        self._has_pending = asyncio.Event()
        self.samples_written = 0

    def put(self, sample: Sample) -> None:
        self._pending.append(sample)
        self._has_pending.set()

    def flush(self) -> int:
        """Append everything pending now; returns how many samples were written."""
        pending, self._pending = self._pending, []
        self._has_pending.clear()
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
            await asyncio.sleep(self._interval_s)
            self.flush()
