"""One SQLite file shared by threads: opened lazily in WAL mode, errors mapped to the store family.

Used by the embedded store and by ingest's dead letters, which both run their queries through
``asyncio.to_thread`` and need the same lock, the same lazy open and the same error messages.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from core.errors import StoreError, StoreUnavailable

T = TypeVar("T")


class SqliteFile:
    def __init__(
        self,
        path: Path | str,
        schema: str,
        what: str,
        *,
        migrate: Callable[[sqlite3.Connection], None] | None = None,
    ):
        self.path = Path(path)
        self.what = what  # e.g. "SQLite store", "dead-letter store": how messages name the file
        self._schema = schema
        self._migrate = migrate  # brings a file an older version made up to the schema, after it ran
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(self._schema)
                if self._migrate is not None:
                    self._migrate(conn)
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"cannot open {self.what} {self.path}: {exc}") from exc
            self._conn = conn
        return self._conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.locked(lambda conn: conn.execute(sql, params).fetchall())

    def transaction(self, work: Callable[[sqlite3.Connection], T], *, immediate: bool = False) -> T:
        """Run ``work`` in one transaction, rolled back if it fails.

        ``immediate``: take the write lock at the start, for work that reads, decides, then writes
        (another process cannot write in between).
        """

        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return self.locked(run)

    def locked(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return work(self._connection())
            except sqlite3.Error as exc:
                raise StoreError(f"{self.what} {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
