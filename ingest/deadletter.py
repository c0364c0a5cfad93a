"""Dead letters: input ingest could not write, kept with the reason so nothing bad vanishes silently.

One SQLite file (WAL mode). A message whose envelope is broken is kept whole; a bad sample inside a
good batch is kept on its own, as the JSON of that sample, with the edge and sequence number of its
batch so it can be traced back to the gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from core.stores.sqlitefile import SqliteFile
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
        self._file = SqliteFile(self.path, _SCHEMA, "dead-letter store")

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
        rows = [(datetime_to_ns(d.received_at), d.topic, d.edge, d.seq, d.reason, bytes(d.payload)) for d in letters]
        self._file.transaction(  # one transaction for the whole message's letters
            lambda conn: conn.executemany(
                "INSERT INTO dead_letters (received_ns, topic, edge, seq, reason, payload) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        )

    async def add(self, letters: Sequence[DeadLetter]) -> None:
        if letters:
            await asyncio.to_thread(self._add_sync, letters)

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

    async def close(self) -> None:
        self._file.close()
