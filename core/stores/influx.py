"""InfluxDB store through the v1-compatible HTTP API that InfluxDB 1.x, 2.x and 3.x all serve.

Writes are line protocol on ``POST /write?db=&rp=&precision=ns``, in requests of at most
``batch_size`` points; reads are InfluxQL on ``POST /query`` with ``epoch=ns``, so timestamps come
back as exact integers. Authentication is a token (``Authorization: Token …``, what 2.x/3.x expect
on the v1 API, where the database is a bucket reached through its DBRP mapping) or a username and
password (HTTP basic auth, which 1.x and the 2.x v1 API both accept).

Where points are kept: every point goes to ``retention_policy`` (none: the database's default, as
before), except the measurements ``measurement_policies`` names, which go to theirs. From settings,
that puts the KPI rollups (``core.signals.ROLLUP_MEASUREMENTS``) in a long-lived policy of their own
while raw points expire (``store.influx_rollup_retention_policy``, docs/influxdb.md). Writes name the
policy (``rp=``), reads name it in the query (``"db"."rp"."measurement"``).

Bodies go gzip-compressed (``Content-Encoding: gzip``) unless ``gzip=False``. A body the server finds
too large (413) is split in halves until each part fits; a single point that is still too large is
refused as ``StoreTooLarge``.

Errors are mapped here, once: no connection, timeouts, 5xx and 429 raise ``StoreUnavailable`` (retry
later), carrying the server's ``Retry-After`` when it sent one (seconds or an HTTP date, at most
``MAX_RETRY_AFTER_S``); 401/403 (credentials), 404 (no such database or bucket) and a retention
policy that does not exist (which 1.x answers with a 500) raise plain ``StoreError``, since they are
configuration faults rather than bad data; any other 4xx raises ``StoreRejected`` with the server's
own reason.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self

import httpx

from core.errors import StoreError, StoreRejected, StoreTooLarge, StoreUnavailable
from core.settings import StoreSettings
from core.signals import ROLLUP_MEASUREMENTS
from core.store import BAD_QUALITY, Point, StoreHealth, TagFilter
from core.stores.frames import FrameReads
from core.stores.lineprotocol import encode_point
from core.wire import datetime_to_ns

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000
MAX_RETRY_AFTER_S = 120.0  # a longer Retry-After is taken as this: the writer tries again no later
GZIP_LEVEL = 1  # most of the size for a fraction of the time of the default level 9


GZIP_IN_THREAD_BYTES = 64 * 1024  # larger bodies are compressed beside the event loop (zlib lets go of the GIL)


async def _compressed(body: bytes) -> bytes:
    """``body`` gzip-compressed; a large one in a worker thread, so the loop reads and encodes meanwhile."""
    if len(body) < GZIP_IN_THREAD_BYTES:
        return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    return await asyncio.to_thread(gzip.compress, body, compresslevel=GZIP_LEVEL, mtime=0)


def _body(lines: Sequence[str]) -> bytes:
    """A ``/write`` request body: the lines, each ended by a newline."""
    return ("\n".join(lines) + "\n").encode()


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


def retry_after_s(header: str | None, now: datetime) -> float | None:
    """The wait a ``Retry-After`` header asks for (delay-seconds or an HTTP date), within 0..MAX_RETRY_AFTER_S.

    None when there is no header or it is unreadable: the caller then waits as it would anyway.
    """
    if header is None:
        return None
    text = header.strip()
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # HTTP dates are GMT; a date without a zone is read as such
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class InfluxStore(FrameReads):
    """The Store interface on InfluxDB's v1-compatible HTTP API."""

    backend = "influxdb"

    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        measurement_policies: Mapping[str, str] | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        gzip: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self.measurement_policies = dict(measurement_policies or {})
        self.batch_size = batch_size
        self.gzip = gzip
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
    def from_settings(cls, settings: StoreSettings, transport: httpx.AsyncBaseTransport | None = None) -> InfluxStore:
        rollups = settings.influx_rollup_retention_policy
        return cls(
            settings.influx_url,
            settings.influx_database,
            retention_policy=settings.influx_retention_policy,
            measurement_policies=dict.fromkeys(ROLLUP_MEASUREMENTS, rollups) if rollups else None,
            username=settings.influx_username,
            password=settings.influx_password.get_secret_value() if settings.influx_password else None,
            token=settings.influx_token.get_secret_value() if settings.influx_token else None,
            timeout_s=settings.timeout_s,
            gzip=settings.influx_gzip,
            transport=transport,
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
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        what = f"InfluxDB {self.url}{path}"
        try:
            response = await self._client.request(
                method, path, params=params, content=content, data=data, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise StoreUnavailable(f"{what}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"{what}: cannot connect: {str(exc) or type(exc).__name__}") from exc
        status = response.status_code
        if status < 300:
            return response
        reason = _error_text(response)
        if status >= 500 and reason.startswith("retention policy not found"):
            # 1.x answers a write to a policy that does not exist with a 500: no retry makes it exist.
            raise StoreError(
                f"{what}: HTTP {status}: {reason} (on database {self.database!r};"
                " `factory store setup` creates the policies the settings name)"
            )
        if status == 429 or status >= 500:
            header = response.headers.get("Retry-After")
            hint = f" (Retry-After: {header})" if header else ""
            raise StoreUnavailable(
                f"{what}: HTTP {status}: {reason}{hint}", retry_after_s=retry_after_s(header, datetime.now(UTC))
            )
        if status == 413:
            raise StoreTooLarge(f"{what}: HTTP 413: {reason}")
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

    def _db_params(self, policy: str | None = None) -> dict[str, str]:
        params = {"db": self.database}
        if policy:
            params["rp"] = policy
        return params

    def policy_of(self, measurement: str) -> str | None:
        """The retention policy ``measurement`` is kept in; None: the database's default."""
        return self.measurement_policies.get(measurement, self.retention_policy)

    def _source(self, measurement: str) -> str:
        """The measurement as a FROM clause names it: with its database and policy when it has one."""
        policy = self.policy_of(measurement)
        if policy is None:
            return quote_identifier(measurement)
        return f"{quote_identifier(self.database)}.{quote_identifier(policy)}.{quote_identifier(measurement)}"

    async def execute(self, statement: str) -> list[dict[str, Any]]:
        """Run one administrative InfluxQL statement (``factory store setup``'s SHOW, CREATE, ALTER).

        Sent without a database, so it names the database itself; results as ``_query`` gives them.
        """
        return await self._query(statement, params={})

    async def server_version(self) -> str:
        """What ``/ping`` says the server is (``1.6.7~rc0``, ``v2.7.10``); StoreError if it cannot be reached."""
        response = await self._request("GET", "/ping", params={})
        return response.headers.get("X-Influxdb-Version", "unknown")

    async def _query(self, statement: str, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL; return the results of every chunk, raising on a statement error."""
        base = self._db_params(self.retention_policy) if params is None else params
        params = {**base, "epoch": "ns", "chunked": "true"}
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
        by_policy: dict[str | None, Sequence[Point]] = {self.retention_policy: points}
        if self.measurement_policies:
            grouped: dict[str | None, list[Point]] = {}
            for point in points:
                grouped.setdefault(self.policy_of(point.measurement), []).append(point)
            by_policy = dict(grouped)
        # Encode everything first: a point line protocol cannot carry refuses the call before any I/O.
        lines = {policy: [encode_point(p) for p in group] for policy, group in by_policy.items()}
        await self._ensure_database()
        for policy, encoded in lines.items():
            await self._write_lines_in_requests(policy, encoded)

    async def write_lines(self, lines: Sequence[str]) -> None:
        """Write raw points given as line protocol, one point per line without its newline.

        The fast path of a writer that encodes its own lines (ingest): the points go to
        ``retention_policy`` (the raw measurements' policy), in requests of at most ``batch_size``
        lines, and errors are those of ``write``. The caller has encoded each line as
        ``encode_point`` would (ingest's tests hold its lines against it).
        """
        if not lines:
            return
        await self._ensure_database()
        await self._write_lines_in_requests(self.retention_policy, lines)

    async def _write_lines_in_requests(self, policy: str | None, lines: Sequence[str]) -> None:
        size = self.batch_size
        for i in range(0, len(lines), size):
            await self._write_fitting(policy, lines[i : i + size])

    async def _write_fitting(self, policy: str | None, lines: Sequence[str]) -> None:
        """Post ``lines``; on 413 post each half instead, down to one point."""
        body = _body(lines)
        try:
            await self._post_write(policy, body)
        except StoreTooLarge as exc:
            if len(lines) == 1:
                raise StoreTooLarge(
                    f"{exc}: one point of {len(body)} bytes ({lines[0][:80]!r}…)"
                    " is more than the server takes in a request"
                ) from exc
            middle = len(lines) // 2
            log.debug("InfluxDB refused %d bytes as too large; writing %d points in halves", len(body), len(lines))
            for half in (lines[:middle], lines[middle:]):
                await self._write_fitting(policy, half)

    async def _post_write(self, policy: str | None, body: bytes) -> None:
        params = {**self._db_params(policy), "precision": "ns"}
        if self.gzip:
            content = await _compressed(body)
            await self._request("POST", "/write", params=params, content=content, headers={"Content-Encoding": "gzip"})
        else:
            await self._request("POST", "/write", params=params, content=body)

    async def write_line_protocol(self, body: bytes) -> None:
        """Post ready-made line protocol (``precision=ns``) in one request; errors as for ``write``.

        For bulk loaders that encode in bulk themselves (the history generator): raw points only,
        which go to ``retention_policy``. The caller keeps each body to a sensible number of lines
        (``batch_size``) and has escaped it correctly.
        """
        if not body:
            return
        await self._ensure_database()
        await self._post_write(self.retention_policy, body)

    async def _types_of(self, measurement: str, columns: set[str]) -> dict[str, str]:
        known = self._field_types.get(measurement)
        if known is None or not columns <= known.keys():
            results = await self._query(f"SHOW FIELD KEYS FROM {self._source(measurement)}")
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
        statement = f"SELECT * FROM {self._source(measurement)} WHERE {where} GROUP BY *"
        return await self._select(measurement, statement)

    async def last_points(
        self, measurement: str, before: datetime, lookback: timedelta, tags: TagFilter | None = None
    ) -> list[Point]:
        end_ns = datetime_to_ns(before)
        where = where_clause(datetime_to_ns(before - lookback), end_ns, tags)
        if where is None:
            return []
        table = self._source(measurement)
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
                f'SELECT count("value") FROM {self._source(measurement)} WHERE {where}'
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
            version = await self.server_version()
        except StoreError as exc:
            return StoreHealth(False, self.backend, str(exc))
        return StoreHealth(True, self.backend, f"{self.url} (InfluxDB {version}, database {self.database!r})")
