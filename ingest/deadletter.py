"""Dead letters: input ingest could not write, kept with the reason so nothing bad vanishes silently.

One SQLite file (WAL mode). A message whose envelope is broken is kept whole (up to
``MAX_LETTER_BYTES``; the reason says when it was cut); a bad sample inside a good batch is kept on
its own, as the JSON of that sample, with the edge and sequence number of its batch so it can be
traced back to the gateway.

Retention is bounded twice, since whoever can publish can also fill this file: letters older than
``max_age`` are deleted, and beyond ``max_bytes`` of payloads the oldest go first. Pruning runs
when letters are added, at most once a minute (or sooner when a tenth of ``max_bytes`` arrived).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from core.stores.sqlitefile import SqliteFile
from core.wire import datetime_to_ns, ns_to_datetime

log = logging.getLogger(__name__)

MAX_LETTER_BYTES = 1024 * 1024
PRUNE_INTERVAL = timedelta(minutes=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ns INTEGER NOT NULL,
    topic       TEXT NOT NULL,
    edge        TEXT,
    seq         INTEGER,
    reason      TEXT NOT NULL,
    payload     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (received_ns);
"""

# Deletes the oldest letters whose newer neighbours already hold max_bytes of payload.
_PRUNE_BY_SIZE = """
DELETE FROM dead_letters WHERE id <= (
    SELECT id FROM (
        SELECT id, SUM(LENGTH(payload)) OVER (ORDER BY id DESC) AS newer_bytes FROM dead_letters
    ) WHERE newer_bytes > ? ORDER BY id DESC LIMIT 1
)
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: datetime
    topic: str
    edge: str | None
    seq: int | None
    reason: str
    payload: bytes
    id: int | None = None

    @property
    def payload_text(self) -> str:
        """The payload for display; bytes that are not UTF-8 are shown as replacement characters."""
        return self.payload.decode("utf-8", errors="replace")


DeadLetters = list[DeadLetter]


def _cut(letter: DeadLetter) -> DeadLetter:
    if len(letter.payload) <= MAX_LETTER_BYTES:
        return letter
    reason = f"{letter.reason} (payload cut to its first {MAX_LETTER_BYTES} of {len(letter.payload)} bytes)"
    return replace(letter, reason=reason, payload=bytes(letter.payload[:MAX_LETTER_BYTES]))


class DeadLetterStore:
    """Store of dead letters, bounded by age and size, with the newest-first listing operators look at."""

    def __init__(self, path: Path | str, *, max_age: timedelta | None = None, max_bytes: int | None = None):
        self.path = Path(path)
        self.max_age = max_age
        self.max_bytes = max_bytes
        self._file = SqliteFile(self.path, _SCHEMA, "dead-letter store")
        self._pruned_at: datetime | None = None
        self._bytes_since_prune = 0

    async def open(self) -> None:
        """Create the file and table now, so a bad path fails at start rather than at the first letter."""
        await asyncio.to_thread(self._file.query, "SELECT 1")

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _add_sync(self, letters: Sequence[DeadLetter]) -> None:
        rows = [
            (datetime_to_ns(d.received_at), d.topic, d.edge, d.seq, d.reason, bytes(d.payload))
            for d in map(_cut, letters)
        ]
        self._file.transaction(  # one transaction for the whole message's letters
            lambda conn: conn.executemany(
                "INSERT INTO dead_letters (received_ns, topic, edge, seq, reason, payload) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        )
        self._bytes_since_prune += sum(len(row[5]) for row in rows)

    async def add(self, letters: Sequence[DeadLetter]) -> None:
        """Keep the letters (one transaction); then prune if it is due, by the newest letter's time."""
        if not letters:
            return
        await asyncio.to_thread(self._add_sync, letters)
        now = max(d.received_at for d in letters)
        size_due = self.max_bytes is not None and self._bytes_since_prune > self.max_bytes // 10
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_INTERVAL or size_due:
            await self.prune(now)

    def _prune_sync(self, now: datetime) -> int:
        def work(conn: sqlite3.Connection) -> int:
            deleted = 0
            if self.max_age is not None:
                cutoff = datetime_to_ns(now - self.max_age)
                deleted += conn.execute("DELETE FROM dead_letters WHERE received_ns < ?", (cutoff,)).rowcount
            if self.max_bytes is not None:
                deleted += conn.execute(_PRUNE_BY_SIZE, (self.max_bytes,)).rowcount
            return deleted

        return self._file.transaction(work)

    async def prune(self, now: datetime) -> int:
        """Delete letters older than ``max_age`` before ``now``, then the oldest beyond ``max_bytes``."""
        deleted = await asyncio.to_thread(self._prune_sync, now)
        self._pruned_at = now
        self._bytes_since_prune = 0
        if deleted:
            log.info("dead-letter store %s: deleted %d old letters (retention by age and size)", self.path, deleted)
        return deleted

    async def list(self, limit: int = 100) -> DeadLetters:
        """The newest ``limit`` dead letters, newest first."""
        rows = await asyncio.to_thread(
            self._file.query,
            "SELECT id, received_ns, topic, edge, seq, reason, payload FROM dead_letters ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            DeadLetter(ns_to_datetime(ns), topic, edge, seq, reason, bytes(payload), id=row_id)
            for row_id, ns, topic, edge, seq, reason, payload in rows
        ]

    async def count(self) -> int:
        rows = await asyncio.to_thread(self._file.query, "SELECT COUNT(*) FROM dead_letters", ())
        return int(rows[0][0])

    async def payload_bytes(self) -> int:
        rows = await asyncio.to_thread(self._file.query, "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM dead_letters")
        return int(rows[0][0])

    async def close(self) -> None:
        self._file.close()
