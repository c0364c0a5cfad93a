"""Dead letters: input ingest could not write, kept with the reason so nothing bad vanishes silently.

One SQLite file (WAL mode). A message whose envelope is broken is kept whole; a bad sample inside a
good batch is kept on its own, as the JSON of that sample, with the edge and sequence number of its
batch so it can be traced back to the gateway.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from core.errors import StoreError, StoreUnavailable
from core.wire import datetime_to_ns, ns_to_datetime

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


class DeadLetterStore:
    """Append-only store of dead letters with the newest-first listing operators look at."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def open(self) -> None:
        """Create the file and table now, so a bad path fails at start rather than at the first letter."""
        await asyncio.to_thread(self._run, "SELECT 1", ())

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"cannot open dead-letter store {self.path}: {exc}") from exc
            self._conn = conn
        return self._conn

    def _run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"dead-letter store {self.path}: {exc}") from exc

    def _add_sync(self, letters: Sequence[DeadLetter]) -> None:
        rows = [
            (datetime_to_ns(d.received_at), d.topic, d.edge, d.seq, d.reason, bytes(d.payload))
            for d in letters
        ]
        with self._lock:
            conn = self._connection()
            try:
                with conn:  # one transaction for the whole message's letters
                    conn.execute("BEGIN")
                    conn.executemany(
                        "INSERT INTO dead_letters (received_ns, topic, edge, seq, reason, payload)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        rows,
                    )
            except sqlite3.Error as exc:
                raise StoreError(f"dead-letter store {self.path}: {exc}") from exc

    async def add(self, letters: Sequence[DeadLetter]) -> None:
        if letters:
            await asyncio.to_thread(self._add_sync, letters)

    async def list(self, limit: int = 100) -> DeadLetters:
        """The newest ``limit`` dead letters, newest first."""
        rows = await asyncio.to_thread(
            self._run,
            "SELECT id, received_ns, topic, edge, seq, reason, payload"
            " FROM dead_letters ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            DeadLetter(ns_to_datetime(ns), topic, edge, seq, reason, bytes(payload), id=row_id)
            for row_id, ns, topic, edge, seq, reason, payload in rows
        ]

    async def count(self) -> int:
        rows = await asyncio.to_thread(self._run, "SELECT COUNT(*) FROM dead_letters", ())
        return int(rows[0][0])

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
