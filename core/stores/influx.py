"""InfluxDB store through the v1-compatible HTTP API that InfluxDB 1.x, 2.x and 3.x all serve.

Writes are line protocol on ``POST /write?db=&rp=&precision=ns``, in requests of at most
``batch_size`` points; reads are InfluxQL on ``POST /query`` with ``epoch=ns``, so timestamps come
back as exact integers. Authentication is a token (``Authorization: Token …``, what 2.x/3.x expect
on the v1 API, where the database is a bucket reached through its DBRP mapping) or a username and
password (HTTP basic auth, which 1.x and the 2.x v1 API both accept).

Errors are mapped here, once: no connection, timeouts, 5xx and 429 raise ``StoreUnavailable`` (retry
later); 401/403 (credentials) and 404 (no such database or bucket) raise plain ``StoreError``, since
they are configuration faults rather than bad data; any other 4xx raises ``StoreRejected`` with the
server's own reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import httpx

from core.errors import StoreError, StoreRejected, StoreUnavailable
from core.settings import StoreSettings
from core.store import BAD_QUALITY, Point, StoreHealth, TagFilter
from core.stores.frames import FrameReads
from core.stores.lineprotocol import encode_points
from core.wire import datetime_to_ns

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000


def quote_identifier(name: str) -> str:
    """An InfluxQL identifier in double quotes (measurement, tag key, field key)."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes (a tag value in a WHERE clause)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def where_clause(start_ns: int, end_ns: int, tags: TagFilter | None) -> str | None:
    """``time >= … AND time < … AND ("k" = 'a' OR "k" = 'b') …``; None if a filter accepts nothing."""
    conditions = [f"time >= {start_ns}", f"time < {end_ns}"]
    for key, wanted in (tags or {}).items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        if not values:
            return None
        alternatives = " OR ".join(f"{quote_identifier(key)} = {quote_string(v)}" for v in values)
        conditions.append(f"({alternatives})" if len(values) > 1 else alternatives)
    return " AND ".join(conditions)


@dataclass(slots=True)
class _Series:
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]] = field(default_factory=list)


def _error_text(response: httpx.Response) -> str:
    """The server's reason: 1.x sends {"error": …}, 2.x {"code": …, "message": …}."""
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return text[:500]


class InfluxStore(FrameReads):
    """The Store interface on InfluxDB's v1-compatible HTTP API."""

    backend = "influxdb"

    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self.batch_size = batch_size
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username and not token else None
        self._client = httpx.AsyncClient(
            base_url=self.url, headers=headers, auth=auth, timeout=timeout_s, transport=transport
        )
        self._database_ready = False
        self._database_lock = asyncio.Lock()
        # Field types per measurement: InfluxQL's JSON writes the float 5.0 as 5, so reads need them.
        self._field_types: dict[str, dict[str, str]] = {}

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> InfluxStore:
        return cls(
            settings.influx_url,
            settings.influx_database,
            retention_policy=settings.influx_retention_policy,
            username=settings.influx_username,
            password=settings.influx_password.get_secret_value() if settings.influx_password else None,
            token=settings.influx_token.get_secret_value() if settings.influx_token else None,
            timeout_s=settings.timeout_s,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.aclose()

    # --- HTTP boundary -------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        what = f"InfluxDB {self.url}{path}"
        try:
            response = await self._client.request(method, path, params=params, content=content, data=data)
        except httpx.TimeoutException as exc:
            raise StoreUnavailable(f"{what}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"{what}: cannot connect: {str(exc) or type(exc).__name__}") from exc
        status = response.status_code
        if status < 300:
            return response
        reason = _error_text(response)
        if status == 429 or status >= 500:
            retry_after = response.headers.get("Retry-After")
            hint = f" (Retry-After: {retry_after})" if retry_after else ""
            raise StoreUnavailable(f"{what}: HTTP {status}: {reason}{hint}")
        if status in (401, 403):
            raise StoreError(
                f"{what}: HTTP {status}: the server refused the credentials (check the token or"
                f" username/password and their permissions on {self.database!r}): {reason}"
            )
        if status == 404:
            # The database (2.x/3.x: the bucket's DBRP mapping) or the URL is wrong: not the data's fault.
            raise StoreError(
                f"{what}: HTTP 404: {reason} (check the URL, database {self.database!r}"
                f" and retention policy {self.retention_policy!r})"
            )
        raise StoreRejected(f"{what}: HTTP {status}: {reason}")

    def _db_params(self) -> dict[str, str]:
        params = {"db": self.database}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        return params

    async def _query(self, statement: str) -> list[dict[str, Any]]:
        """Run InfluxQL; return the results of every chunk, raising on a statement error."""
        params = {**self._db_params(), "epoch": "ns", "chunked": "true"}
        response = await self._request("POST", "/query", params=params, data={"q": statement})
        results: list[dict[str, Any]] = []
        # chunked=true streams one JSON document per line; without it there is just one document.
        for line in response.text.splitlines():
            if not line.strip():
                continue
            try:
                document = json.loads(line)
            except ValueError as exc:
                raise StoreError(f"InfluxDB {self.url}: unreadable query response: {line[:200]!r}") from exc
            if "error" in document:
                raise StoreRejected(f"InfluxDB {self.url}: query refused: {document['error']}")
            for result in document.get("results", ()):
                if "error" in result:
                    raise StoreRejected(f"InfluxDB {self.url}: {result['error']} (query: {statement})")
                results.append(result)
        return results

    async def _ensure_database(self) -> None:
        """CREATE DATABASE once (a no-op if it exists on 1.x; 2.x/3.x map the bucket instead)."""
        if self._database_ready:
            return
        async with self._database_lock:
            if self._database_ready:
                return
            try:
                statement = f"CREATE DATABASE {quote_identifier(self.database)}"
                await self._request("POST", "/query", params={}, data={"q": statement})
            except StoreUnavailable:
                raise
            except StoreError as exc:
                # 2.x/3.x refuse CREATE DATABASE on the v1 API; the DBRP mapping already exists there.
                log.info("InfluxDB did not create database %r (%s); assuming it exists", self.database, exc)
            self._database_ready = True

    # --- Store interface -----------------------------------------------------------------------

    async def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        # Encode everything first: a point line protocol cannot carry refuses the call before any I/O.
        size = self.batch_size
        bodies = [encode_points(points[i : i + size]) for i in range(0, len(points), size)]
        await self._ensure_database()
        params = {**self._db_params(), "precision": "ns"}
        for body in bodies:
            await self._request("POST", "/write", params=params, content=body)

    async def write_line_protocol(self, body: bytes) -> None:
        """Post ready-made line protocol (``precision=ns``) in one request; errors as for ``write``.

        For bulk loaders that encode in bulk themselves (the history generator); the caller keeps
        each body to a sensible number of lines (``batch_size``) and has escaped it correctly.
        """
        if not body:
            return
        await self._ensure_database()
        await self._request("POST", "/write", params={**self._db_params(), "precision": "ns"}, content=body)

    async def _types_of(self, measurement: str, columns: set[str]) -> dict[str, str]:
        known = self._field_types.get(measurement)
        if known is None or not columns <= known.keys():
            results = await self._query(f"SHOW FIELD KEYS FROM {quote_identifier(measurement)}")
            known = {row[0]: row[1] for s in self._series(results) for row in s.values if len(row) >= 2}
            self._field_types[measurement] = known
        return known

    @staticmethod
    def _series(results: list[dict[str, Any]]) -> Iterator[_Series]:
        for result in results:
            for raw in result.get("series", ()):
                tags = dict(raw.get("tags") or {})
                yield _Series(tags, list(raw["columns"]), list(raw.get("values") or ()))

    async def _select(self, measurement: str, statement: str) -> list[Point]:
        await self._ensure_database()
        series = list(self._series(await self._query(statement)))
        if not series:
            return []
        fields = {c for s in series for c in s.columns if c != "time"}
        types = await self._types_of(measurement, fields)
        points: list[Point] = []
        for s in series:
            # GROUP BY * reports a tag the series lacks as "": to InfluxDB that is no tag at all.
            tags = {k: v for k, v in s.tags.items() if v != ""}
            time_index = s.columns.index("time")
            # InfluxQL's JSON writes the float 5.0 as 5: cast the float fields back once per column.
            columns = [
                (i, c, float if types.get(c) == "float" else None) for i, c in enumerate(s.columns) if i != time_index
            ]
            for values in s.values:
                row_fields = {
                    c: (cast(values[i]) if cast else values[i]) for i, c, cast in columns if values[i] is not None
                }
                points.append(Point(measurement, tags, row_fields, int(values[time_index])))
        points.sort(key=lambda p: p.time_ns)
        return points

    async def read_points(
        self, measurement: str, start: datetime, end: datetime, tags: TagFilter | None = None
    ) -> list[Point]:
        where = where_clause(datetime_to_ns(start), datetime_to_ns(end), tags)
        if where is None:
            return []
        # GROUP BY * hands back the tags per series, so tags and fields never need telling apart.
        statement = f"SELECT * FROM {quote_identifier(measurement)} WHERE {where} GROUP BY *"
        return await self._select(measurement, statement)

    async def last_points(
        self, measurement: str, before: datetime, lookback: timedelta, tags: TagFilter | None = None
    ) -> list[Point]:
        end_ns = datetime_to_ns(before)
        where = where_clause(datetime_to_ns(before - lookback), end_ns, tags)
        if where is None:
            return []
        table = quote_identifier(measurement)
        usable = f'"quality" != {quote_string(BAD_QUALITY)}'
        statement = f'SELECT last("value") AS "value" FROM {table} WHERE {where} AND {usable} GROUP BY *'
        return await self._select(measurement, statement)

    async def count_by_hour(
        self, measurements: Sequence[str], start: datetime, end: datetime, tag_key: str
    ) -> dict[tuple[str, int], int]:
        await self._ensure_database()
        where = f"time >= {datetime_to_ns(start)} AND time < {datetime_to_ns(end)}"
        counts: dict[tuple[str, int], int] = {}
        # One query per measurement: InfluxDB 1.6 leaves string-valued measurements (machine_state)
        # out of a count over several measurements at once.
        for measurement in measurements:
            statement = (
                f'SELECT count("value") FROM {quote_identifier(measurement)} WHERE {where}'
                f" GROUP BY time(1h), {quote_identifier(tag_key)} fill(none)"
            )
            for s in self._series(await self._query(statement)):
                tag = s.tags.get(tag_key, "")
                if not tag:
                    continue
                for time_ns, count in s.values:
                    key = (tag, int(time_ns))
                    counts[key] = counts.get(key, 0) + int(count)
        return counts

    async def health(self) -> StoreHealth:
        try:
            response = await self._request("GET", "/ping", params={})
        except StoreError as exc:
            return StoreHealth(False, self.backend, str(exc))
        version = response.headers.get("X-Influxdb-Version", "unknown version")
        return StoreHealth(True, self.backend, f"{self.url} (InfluxDB {version}, database {self.database!r})")
