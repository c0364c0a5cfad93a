"""Dead letters: input ingest could not write, kept with the reason so nothing bad vanishes silently.

One SQLite file (WAL mode). A message whose envelope is broken is kept whole (up to
``MAX_LETTER_BYTES``; the reason says when it was cut); a bad sample inside a good batch is kept on
its own, as the JSON of that sample, with the edge and sequence number of its batch so it can be
traced back to the gateway. ``kind`` says which of the two a letter is.

A letter can be replayed (``ingest.replay``, ``factory deadletters replay``) once its cause is
fixed: a letter that then passes is marked replayed (``replayed_at``) and kept, as the record of
what arrived and when it was let in, until retention removes it; one that still fails stays
pending with the reason it fails for now. ``LetterFilter`` selects letters by reason, edge, time
and state, for listing, replaying and purging alike.

Retention is bounded twice, since whoever can publish can also fill this file: letters older than
``max_age`` are deleted, and beyond ``max_bytes`` of payloads the oldest go first. Pruning runs
when letters are added, at most once a minute (or sooner when a tenth of ``max_bytes`` arrived).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from core.stores.sqlitefile import SqliteFile
from core.wire import INT64_MAX, INT64_MIN, datetime_to_ns, ns_to_datetime

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
    payload     BLOB NOT NULL,
    kind        TEXT,     -- 'message' or 'sample'; NULL in files written before it existed
    replayed_ns INTEGER   -- when a replay stored it; NULL while it waits
);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (received_ns);
"""

_COLUMNS = "id, received_ns, topic, edge, seq, reason, payload, kind, replayed_ns"


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the columns a file from before replay lacks (under the write lock: ingest may open it too)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        have = {row[1] for row in conn.execute("PRAGMA table_info(dead_letters)")}
        for column, kind in (("kind", "TEXT"), ("replayed_ns", "INTEGER")):
            if column not in have:
                conn.execute(f"ALTER TABLE dead_letters ADD COLUMN {column} {kind}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# Deletes the oldest letters whose newer neighbours already hold max_bytes of payload.
_PRUNE_BY_SIZE = """
DELETE FROM dead_letters WHERE id <= (
    SELECT id FROM (
        SELECT id, SUM(LENGTH(payload)) OVER (ORDER BY id DESC) AS newer_bytes FROM dead_letters
    ) WHERE newer_bytes > ? ORDER BY id DESC LIMIT 1
)
"""


class LetterKind(StrEnum):
    MESSAGE = "message"  # the payload is the whole message as it arrived
    SAMPLE = "sample"  # the payload is one sample of a batch, as JSON; edge and seq are the batch's


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: datetime
    topic: str
    edge: str | None
    seq: int | None
    reason: str
    payload: bytes
    id: int | None = None
    kind: LetterKind = LetterKind.MESSAGE
    replayed_at: datetime | None = None  # when a replay stored what it holds; None while it waits

    @property
    def payload_text(self) -> str:
        """The payload for display; bytes that are not UTF-8 are shown as replacement characters."""
        return self.payload.decode("utf-8", errors="replace")


DeadLetters = list[DeadLetter]


def _legacy_kind(edge: str | None, seq: int | None, payload: bytes) -> LetterKind:
    """The kind of a letter kept before letters said it: a sample has its batch's edge and seq and no
    ``samples`` of its own (the one whole message with both, a payload naming another edge, has them)."""
    if edge is None or seq is None:
        return LetterKind.MESSAGE
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        return LetterKind.MESSAGE
    return LetterKind.SAMPLE if isinstance(body, dict) and "samples" not in body else LetterKind.MESSAGE


def _letter(row: Sequence[Any]) -> DeadLetter:
    row_id, ns, topic, edge, seq, reason, payload, kind, replayed_ns = row
    payload = bytes(payload)
    return DeadLetter(
        ns_to_datetime(ns),
        topic,
        edge,
        seq,
        reason,
        payload,
        id=row_id,
        kind=LetterKind(kind) if kind is not None else _legacy_kind(edge, seq, payload),
        replayed_at=None if replayed_ns is None else ns_to_datetime(replayed_ns),
    )


def _int64(n: int) -> int:
    """SQLite binds nothing beyond int64 (OverflowError); a bound out there selects the same clamped."""
    return max(INT64_MIN, min(INT64_MAX, n))


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """Which letters: every condition given must hold; none given selects every letter."""

    reason: str | None = None  # a part of the reason, in any case ("unknown equipment")
    edge: str | None = None
    since: datetime | None = None  # received at or after
    until: datetime | None = None  # received before
    replayed: bool | None = None  # True: only letters replayed; False: only letters waiting
    ids: tuple[int, ...] = ()

    @property
    def selects_everything(self) -> bool:
        return self == LetterFilter()

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE clause (or "") and its parameters."""
        terms: list[str] = []
        params: list[Any] = []
        if self.reason is not None:
            terms.append("instr(lower(reason), lower(?)) > 0")
            params.append(self.reason)
        if self.edge is not None:
            terms.append("edge = ?")
            params.append(self.edge)
        if self.since is not None:
            terms.append("received_ns >= ?")
            params.append(_int64(datetime_to_ns(self.since)))
        if self.until is not None:
            terms.append("received_ns < ?")
            params.append(_int64(datetime_to_ns(self.until)))
        if self.replayed is not None:
            terms.append("replayed_ns IS NOT NULL" if self.replayed else "replayed_ns IS NULL")
        if self.ids:
            terms.append(f"id IN ({', '.join('?' * len(self.ids))})")
            params.extend(map(_int64, self.ids))
        return (f"WHERE {' AND '.join(terms)}" if terms else ""), params


@dataclass(frozen=True, slots=True)
class Settled:
    """What a replay decided for one letter: stored (``reason`` None), or still refused for ``reason``.

    ``split`` holds the letters of a whole message whose envelope now passes but some of whose
    samples do not: they take its place as letters of their own, as ingest would have kept them.
    """

    letter_id: int
    reason: str | None = None
    split: tuple[DeadLetter, ...] = ()


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
        self._file = SqliteFile(self.path, _SCHEMA, "dead-letter store", migrate=_migrate)
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

    @staticmethod
    def _insert(conn: sqlite3.Connection, letters: Sequence[DeadLetter]) -> int:
        """Insert the letters; returns the payload bytes they hold."""
        rows = [
            (datetime_to_ns(d.received_at), d.topic, d.edge, d.seq, d.reason, bytes(d.payload), d.kind.value)
            for d in map(_cut, letters)
        ]
        conn.executemany(
            "INSERT INTO dead_letters (received_ns, topic, edge, seq, reason, payload, kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return sum(len(row[5]) for row in rows)

    def _add_sync(self, letters: Sequence[DeadLetter]) -> None:
        # one transaction for the whole message's letters
        self._bytes_since_prune += self._file.transaction(lambda conn: self._insert(conn, letters))

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

    async def list(self, limit: int = 100, where: LetterFilter | None = None) -> DeadLetters:
        """The newest ``limit`` dead letters that ``where`` selects, newest first."""
        clause, params = (where or LetterFilter()).sql()
        rows = await asyncio.to_thread(
            self._file.query,
            f"SELECT {_COLUMNS} FROM dead_letters {clause} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [_letter(row) for row in rows]

    async def get(self, letter_id: int) -> DeadLetter | None:
        rows = await asyncio.to_thread(
            self._file.query, f"SELECT {_COLUMNS} FROM dead_letters WHERE id = ?", (letter_id,)
        )
        return _letter(rows[0]) if rows else None

    async def count(self, where: LetterFilter | None = None) -> int:
        clause, params = (where or LetterFilter()).sql()
        rows = await asyncio.to_thread(self._file.query, f"SELECT COUNT(*) FROM dead_letters {clause}", params)
        return int(rows[0][0])

    async def waiting(
        self, where: LetterFilter | None = None, *, after_id: int = 0, through_id: int | None = None, limit: int = 1000
    ) -> DeadLetters:
        """A page of the letters not replayed yet that ``where`` selects, oldest first: ids after
        ``after_id`` up to ``through_id`` (inclusive; None: to the last)."""
        clause, params = replace(where or LetterFilter(), replayed=False).sql()
        through = INT64_MAX if through_id is None else through_id
        rows = await asyncio.to_thread(
            self._file.query,
            f"SELECT {_COLUMNS} FROM dead_letters {clause} AND id > ? AND id <= ? ORDER BY id LIMIT ?",
            (*params, after_id, through, limit),
        )
        return [_letter(row) for row in rows]

    def _settle_sync(self, outcomes: Sequence[Settled], replayed_at: datetime) -> None:
        replayed_ns = datetime_to_ns(replayed_at)

        def work(conn: sqlite3.Connection) -> int:
            added = 0
            for outcome in outcomes:
                # "replayed_ns IS NULL": a replay running beside this one that settled the letter
                # first keeps its time, and the letters it split off are not added twice.
                if outcome.reason is None:
                    marked = conn.execute(
                        "UPDATE dead_letters SET replayed_ns = ? WHERE id = ? AND replayed_ns IS NULL",
                        (replayed_ns, outcome.letter_id),
                    ).rowcount
                    if marked:
                        added += self._insert(conn, outcome.split)
                else:
                    conn.execute(
                        "UPDATE dead_letters SET reason = ? WHERE id = ? AND replayed_ns IS NULL",
                        (outcome.reason, outcome.letter_id),
                    )
            return added

        self._bytes_since_prune += self._file.transaction(work)

    async def settle(self, outcomes: Sequence[Settled], replayed_at: datetime) -> None:
        """Record a replay's outcomes in one transaction: stored letters are marked replayed at
        ``replayed_at``, refused ones take their new reason, split messages' letters are added."""
        if outcomes:
            await asyncio.to_thread(self._settle_sync, outcomes, replayed_at)

    async def purge(self, where: LetterFilter, *, everything: bool = False) -> int:
        """Delete the letters ``where`` selects; returns how many. A filter that selects every letter
        is refused unless ``everything`` says that is meant."""
        if where.selects_everything and not everything:
            raise ValueError("refusing to delete every dead letter without a filter (everything=True deletes all)")
        clause, params = where.sql()
        return await asyncio.to_thread(
            self._file.transaction, lambda conn: conn.execute(f"DELETE FROM dead_letters {clause}", params).rowcount
        )

    async def payload_bytes(self) -> int:
        rows = await asyncio.to_thread(self._file.query, "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM dead_letters")
        return int(rows[0][0])

    async def close(self) -> None:
        self._file.close()
