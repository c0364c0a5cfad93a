"""API keys: who may call the API, with which role, for which part of the park. Stored hashed in SQLite.

A key reads ``fk_<id>_<secret>``: ``id`` is 12 hex digits, public, and finds the row; ``secret`` is
43 URL-safe characters from ``secrets.token_urlsafe(32)``, 256 bits of randomness. Only the SHA-256
of the whole key is stored, so a copy of the file (a backup, a stolen disk) lets nobody call the API.

Why a fast hash is right here: slow password hashes (bcrypt, scrypt, Argon2) exist because people
choose passwords from a small space that an attacker can enumerate offline; every extra millisecond
per guess multiplies the cost of walking that space. A 256-bit random secret has no such space: even
at 10^12 SHA-256 evaluations per second, finding one secret takes ~10^57 years, so slowing the hash
down buys nothing, while it would cost every API request that much CPU and turn unauthenticated
requests into a cheap way to exhaust the server.
The presented key's digest is compared with ``hmac.compare_digest``; an unknown id is compared
against a dummy digest, so the time taken does not say whether an id exists.

Revocation is immediate: every request reads the key's row (an indexed lookup, tens of µs); nothing
caches a verdict. ``last_used`` is written at most once a minute per key, so a busy client does not
turn every read into a write.

The store opens a short-lived connection per operation, so the API (through ``asyncio.to_thread``)
and ``factory keys`` (another process) can use the same file at once; SQLite serialises the writes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from core.assets import AssetModel
from core.errors import FactoryError

KEY_PREFIX = "fk"
_KEY = re.compile(r"^fk_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
_DUMMY_DIGEST = hashlib.sha256(b"no such key").digest()
LAST_USED_RESOLUTION = timedelta(minutes=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id          TEXT PRIMARY KEY,
    key_sha256  BLOB NOT NULL,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('auditor', 'manager', 'admin')),
    site        TEXT,            -- NULL: the whole park
    created     TEXT NOT NULL,   -- ISO-8601, UTC
    created_by  TEXT NOT NULL,
    revoked_at  TEXT,
    last_used   TEXT
);
"""
_COLUMNS = "id, name, role, site, created, created_by, revoked_at, last_used"


class Role(StrEnum):
    """What a key may do; each role may do everything the ones before it may.

    auditor: read assets, KPIs and reports; manager: also enter business inputs;
    admin: also manage keys and schemes.
    """

    AUDITOR = "auditor"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


class KeyStoreUnavailable(FactoryError):
    """The key file cannot be opened or read; no request can be authenticated until it can."""


class UnknownKey(FactoryError):
    """No key has this id."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, as anyone may see it: everything but the secret."""

    id: str
    name: str
    role: Role
    site: str | None  # None: the whole park
    created: datetime
    created_by: str
    revoked_at: datetime | None = None
    last_used: datetime | None = None

    @property
    def scope(self) -> str:
        return self.site if self.site is not None else "park"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: the only moment its full text exists outside the client."""

    key: ApiKey
    secret: str  # the whole key, fk_<id>_<secret>; show it once, then forget it


PARK_SCOPE = "park"


def site_for_scope(assets: AssetModel, scope: str) -> str | None:
    """The site a key asked for ``scope`` is limited to; None for the park (``park`` or the park's id).

    A key's scope is a site or the park: a narrower scope (a workshop, a line) is refused, because
    the platform separates the data of sites, not of workshops.
    """
    if scope == PARK_SCOPE:
        return None
    sites = ", ".join(site.id for site in assets.sites)
    if not assets.has_scope(scope):
        raise ValueError(f"unknown scope {scope!r}: a key's scope is a site ({sites}) or {PARK_SCOPE!r}")
    site = assets.site_of(scope)
    if site is not None and site != scope:
        raise ValueError(f"{scope!r} lies in site {site!r}: a key's scope is a site ({sites}) or {PARK_SCOPE!r}")
    return site


def key_digest(presented: str) -> bytes:
    return hashlib.sha256(presented.encode()).digest()


def key_id_of(presented: str) -> str | None:
    """The id part of a well-formed key, else None."""
    found = _KEY.match(presented)
    return found["id"] if found else None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def _row_to_key(row: tuple[str, str, str, str | None, str, str, str | None, str | None]) -> ApiKey:
    key_id, name, role, site, created, created_by, revoked_at, last_used = row
    return ApiKey(
        id=key_id,
        name=name,
        role=Role(role),
        site=site,
        created=datetime.fromisoformat(created),
        created_by=created_by,
        revoked_at=_when(revoked_at),
        last_used=_when(last_used),
    )


class KeyStore:
    """The API keys in one SQLite file (settings ``api.keys_path``), created with mode 0600."""

    def __init__(self, path: Path | str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.path = Path(path)
        self._clock = clock
        self._ready = False
        self._lock = threading.Lock()
        self._last_used_written: dict[str, datetime] = {}  # one entry per key id that was used

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Created 0600 before SQLite opens it: the hashes are useless to a thief, names and
                # scopes still are nobody else's business.
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise KeyStoreUnavailable(f"cannot open the API key store {self.path}: {exc}") from exc
        try:
            if not self._ready:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                self._ready = True
            yield conn
        except sqlite3.Error as exc:
            raise KeyStoreUnavailable(f"the API key store {self.path} failed: {exc}") from exc
        finally:
            conn.close()

    def create(self, name: str, role: Role, site: str | None, created_by: str) -> NewKey:
        """A new key; its secret is in the returned value and nowhere else."""
        if not name.strip():
            raise ValueError("a key needs a name that says who or what uses it")
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            id=key_id,
            name=name.strip(),
            role=Role(role),
            site=site,
            created=self._clock().replace(microsecond=0),
            created_by=created_by,
        )
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, key_sha256, name, role, site, created, created_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key.id, key_digest(secret), key.name, key.role.value, key.site, key.created.isoformat(), created_by),
            )
        return NewKey(key, secret)

    def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created, rowid").fetchall()
        return [_row_to_key(row) for row in rows]

    def get(self, key_id: str) -> ApiKey:
        with self._connect() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise UnknownKey(f"no API key has the id {key_id!r} (see `factory keys list`)")
        return _row_to_key(row)

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key from now on; revoking a revoked key keeps its first revocation time."""
        now = self._clock().replace(microsecond=0).isoformat()
        with self._connect() as conn:
            conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, key_id))
        return self.get(key_id)

    def verify(self, presented: str) -> ApiKey | None:
        """The key whose secret this is (revoked or not: the caller decides), or None.

        None for a malformed key, an unknown id or a wrong secret alike.
        """
        key_id = key_id_of(presented)
        with self._connect() as conn:
            row = conn.execute(f"SELECT key_sha256, {_COLUMNS} FROM api_keys WHERE id = ?", (key_id or "",)).fetchone()
        stored = row[0] if row is not None else _DUMMY_DIGEST
        matches = hmac.compare_digest(key_digest(presented), stored)
        if row is None or not matches:
            return None
        key = _row_to_key(row[1:])
        if key.active:
            self._touch(key.id)
        return key

    def _touch(self, key_id: str) -> None:
        now = self._clock()
        with self._lock:
            last = self._last_used_written.get(key_id)
            if last is not None and now - last < LAST_USED_RESOLUTION:
                return
            self._last_used_written[key_id] = now
        stamp = now.replace(microsecond=0).isoformat()
        with self._connect() as conn:
            conn.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (stamp, key_id))
