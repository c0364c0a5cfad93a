"""InfluxStore against a real InfluxDB 1.x on loopback (v1 HTTP API), plus HTTP status mapping."""

from __future__ import annotations

import gzip
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from core.errors import StoreError, StoreRejected, StoreTooLarge, StoreUnavailable
from core.settings import StoreSettings
from core.signals import Measurement
from core.store import Point, Store
from core.stores.influx import (
    MAX_RETRY_AFTER_S,
    InfluxStore,
    quote_identifier,
    quote_string,
    retry_after_s,
    where_clause,
)
from core.wire import datetime_to_ns
from tests.servers import InfluxServer, free_port, influxdb

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
NS0 = datetime_to_ns(T0)
TAGS = {"site": "cq-demo", "workshop": "machining", "line": "line-a", "equipment": "cnc-01"}


@pytest.fixture
async def store(influx_server: InfluxServer, influx_database: str) -> AsyncIterator[InfluxStore]:
    async with InfluxStore(influx_server.url, influx_database) as s:
        yield s


def tagged(**extra: str) -> dict[str, str]:
    return {**TAGS, **extra}


async def test_is_a_store_built_from_settings(influx_server: InfluxServer) -> None:
    settings = StoreSettings(kind="influxdb", influx_url=influx_server.url, influx_database="x", timeout_s=2)
    store = InfluxStore.from_settings(settings)
    try:
        assert isinstance(store, Store)
        assert (store.url, store.database) == (influx_server.url, "x")
    finally:
        await store.close()


async def test_every_value_type_round_trips_with_exact_nanoseconds(store: InfluxStore) -> None:
    points = [
        Point(
            "mixed", tagged(signal="a"), {"s": 'quote " and \\ back', "i": -42, "f": 5.0, "g": 0.1, "b": True}, NS0 + 1
        ),
        Point(
            "mixed", tagged(signal="a"), {"s": "温度", "i": 2**62, "f": 7.0, "g": 1e-300, "b": False}, NS0 + 999_999_999
        ),
    ]
    await store.write(points)
    frame = await store.read("mixed", T0, T0 + timedelta(seconds=1))

    assert frame["time"].dtype == "datetime64[ns, UTC]"
    assert [t.value for t in frame["time"]] == [NS0 + 1, NS0 + 999_999_999]
    assert frame["s"].tolist() == ['quote " and \\ back', "温度"]
    assert frame["i"].tolist() == [-42, 2**62]
    # InfluxQL's JSON writes the float 5.0 as 5; it must come back a float all the same.
    assert frame["f"].tolist() == [5.0, 7.0]
    assert frame["f"].dtype == "float64"
    assert frame["g"].tolist() == [0.1, 1e-300]
    assert frame["i"].dtype == "int64"
    assert frame["b"].tolist() == [True, False]
    for key, value in tagged(signal="a").items():
        assert frame[key].tolist() == [value, value]


async def test_tricky_tag_values_round_trip_and_filter(store: InfluxStore) -> None:
    tricky = ["a,b", "c d", "e=f", "it's", 'say "x"', r"C:\temp\x", "车间"]
    await store.write([Point("odd name, really", {"k": v}, {"value": i}, NS0 + i) for i, v in enumerate(tricky)])
    frame = await store.read("odd name, really", T0, T0 + timedelta(seconds=1))
    assert frame["k"].tolist() == tricky
    for i, v in enumerate(tricky):
        one = await store.read("odd name, really", T0, T0 + timedelta(seconds=1), {"k": v})
        assert one["value"].tolist() == [i], v


async def test_writing_the_same_series_and_timestamp_twice_keeps_one_point(store: InfluxStore) -> None:
    await store.write([Point("energy", tagged(signal="energy_kwh"), {"value": 1.5, "quality": "good"}, NS0)])
    await store.write([Point("energy", tagged(signal="energy_kwh"), {"value": 2.5, "quality": "good"}, NS0)])
    frame = await store.read("energy", T0, T0 + timedelta(hours=1))
    assert len(frame) == 1
    assert frame["value"].tolist() == [2.5]


async def test_tag_filters_accept_one_value_or_a_list(store: InfluxStore) -> None:
    points = [
        Point("part_counter", tagged(equipment=eq, signal=sig), {"value": n}, NS0 + n)
        for n, (eq, sig) in enumerate(
            [("cnc-01", "parts_total"), ("cnc-02", "parts_total"), ("cnc-03", "parts_total"), ("cnc-01", "parts_good")]
        )
    ]
    await store.write(points)
    window = (T0, T0 + timedelta(minutes=1))

    both = await store.read("part_counter", *window, {"equipment": ["cnc-01", "cnc-03"], "signal": "parts_total"})
    assert sorted(zip(both["equipment"], both["value"], strict=True)) == [("cnc-01", 0), ("cnc-03", 2)]
    one = await store.read("part_counter", *window, {"equipment": "cnc-01"})
    assert sorted(one["signal"]) == ["parts_good", "parts_total"]
    assert len(await store.read("part_counter", *window)) == 4
    assert (await store.read("part_counter", *window, {"equipment": []})).empty
    assert (await store.read("part_counter", *window, {"equipment": "cnc-99"})).empty


async def test_read_window_includes_start_and_excludes_end(store: InfluxStore) -> None:
    offsets = [-1, 0, 999, 1000]
    await store.write([Point("process_value", TAGS, {"value": float(o)}, NS0 + o) for o in offsets])
    frame = await store.read("process_value", T0, T0 + timedelta(microseconds=1))
    assert frame["value"].tolist() == [0.0, 999.0]


async def test_empty_results_have_the_documented_columns(store: InfluxStore) -> None:
    frame = await store.read("nothing_here", T0, T0 + timedelta(hours=1))
    assert frame.empty
    assert list(frame.columns) == ["time", "value"]
    assert frame["time"].dtype == "datetime64[ns, UTC]"


async def test_large_writes_are_sent_in_chunks(influx_server: InfluxServer, influx_database: str) -> None:
    class CountingTransport(httpx.AsyncHTTPTransport):
        writes = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/write":
                CountingTransport.writes += 1
            return await super().handle_async_request(request)

    async with InfluxStore(influx_server.url, influx_database, batch_size=40, transport=CountingTransport()) as store:
        await store.write([Point("process_value", TAGS, {"value": float(i)}, NS0 + i) for i in range(100)])
        frame = await store.read("process_value", T0, T0 + timedelta(seconds=1))
    assert CountingTransport.writes == 3
    assert frame["value"].tolist() == [float(i) for i in range(100)]


async def test_last_before_gives_the_last_point_of_each_series_in_the_lookback(store: InfluxStore) -> None:
    def state(eq: str, minute: int, value: str) -> Point:
        return Point(
            "machine_state",
            tagged(equipment=eq, signal="state"),
            {"value": value, "quality": "good"},
            NS0 + minute * 60_000_000_000,
        )

    await store.write(
        [
            state("cnc-01", -120, "DOWN"),  # outside the lookback
            state("cnc-01", -30, "IDLE"),
            state("cnc-01", -10, "PRODUCING"),
            state("cnc-01", 0, "SETUP"),  # at `before`: excluded
            state("cnc-02", -50, "SETUP"),
            state("cnc-03", -90, "DOWN"),  # only point is outside the lookback
        ]
    )
    frame = await store.last_before("machine_state", T0, timedelta(hours=1))
    got = {eq: (v, t.value) for eq, v, t in zip(frame["equipment"], frame["value"], frame["time"], strict=True)}
    assert got == {
        "cnc-01": ("PRODUCING", NS0 - 10 * 60_000_000_000),
        "cnc-02": ("SETUP", NS0 - 50 * 60_000_000_000),
    }
    assert set(frame.columns) >= {"time", "value", *TAGS, "signal"}

    filtered = await store.last_before("machine_state", T0, timedelta(hours=1), {"equipment": ["cnc-02", "cnc-03"]})
    assert filtered["equipment"].tolist() == ["cnc-02"]
    assert (await store.last_before("machine_state", T0 - timedelta(hours=3), timedelta(hours=1))).empty


async def test_last_before_keeps_float_values_floats(store: InfluxStore) -> None:
    await store.write([Point("energy", tagged(signal="energy_kwh"), {"value": 12.0}, NS0 - 1000)])
    frame = await store.last_before("energy", T0, timedelta(minutes=5))
    assert frame["value"].tolist() == [12.0]
    assert isinstance(frame["value"].iloc[0], float)


async def test_a_field_type_conflict_is_rejected_with_the_servers_reason(store: InfluxStore) -> None:
    await store.write([Point("part_counter", TAGS, {"value": 1}, NS0)])
    with pytest.raises(StoreRejected, match="field type conflict"):
        await store.write([Point("part_counter", TAGS, {"value": "one"}, NS0 + 1)])


async def test_a_missing_database_is_a_configuration_fault_not_bad_data(
    store: InfluxStore, influx_server: InfluxServer, influx_database: str
) -> None:
    await store.write([Point("energy", TAGS, {"value": 1.0}, NS0)])
    async with httpx.AsyncClient(base_url=influx_server.url) as admin:
        (await admin.post("/query", data={"q": f'DROP DATABASE "{influx_database}"'})).raise_for_status()
    with pytest.raises(StoreError, match="database not found") as caught:
        await store.write([Point("energy", TAGS, {"value": 2.0}, NS0)])
    assert not isinstance(caught.value, StoreRejected | StoreUnavailable)


async def test_a_point_line_protocol_cannot_carry_is_rejected_before_sending(store: InfluxStore) -> None:
    with pytest.raises(StoreRejected, match="not finite"):
        await store.write([Point("process_value", TAGS, {"value": float("nan")}, NS0)])


async def test_a_closed_port_is_unavailable_and_unhealthy() -> None:
    async with InfluxStore(f"http://127.0.0.1:{free_port()}", "factory", timeout_s=2) as store:
        with pytest.raises(StoreUnavailable, match="cannot connect"):
            await store.write([Point("energy", TAGS, {"value": 1.0}, NS0)])
        with pytest.raises(StoreUnavailable):
            await store.read("energy", T0, T0 + timedelta(hours=1))
        health = await store.health()
    assert not health.ok
    assert health.backend == "influxdb"


async def test_health_reports_the_server_version(store: InfluxStore) -> None:
    health = await store.health()
    assert health.ok
    assert "InfluxDB 1." in health.detail


# --- Status mapping and auth, through a stand-in transport (the server cannot be made to send these) ---


def replying(status: int, body: str = "", headers: dict[str, str] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        return httpx.Response(status, text=body, headers=headers)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "text"),
    [
        (503, '{"error":"engine busy"}', {}, StoreUnavailable, "HTTP 503: engine busy"),
        (500, "boom", {}, StoreUnavailable, "HTTP 500: boom"),
        (
            429,
            '{"code":"too many requests","message":"slow down"}',
            {"Retry-After": "7"},
            StoreUnavailable,
            "slow down (Retry-After: 7)",
        ),
        (400, '{"error":"unable to parse line"}', {}, StoreRejected, "HTTP 400: unable to parse line"),
        (413, '{"error":"Request Entity Too Large"}', {}, StoreRejected, "HTTP 413"),
        (404, '{"code":"not found","message":"bucket not found"}', {}, StoreError, "bucket not found"),
        (401, '{"error":"authorization failed"}', {}, StoreError, "credentials"),
        (403, '{"code":"forbidden","message":"insufficient permissions"}', {}, StoreError, "credentials"),
    ],
)
async def test_http_statuses_map_to_store_errors(
    status: int, body: str, headers: dict[str, str], error: type[StoreError], text: str
) -> None:
    async with InfluxStore("http://influx.invalid", "factory", transport=replying(status, body, headers)) as store:
        with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")) as caught:
            await store.write([Point("energy", TAGS, {"value": 1.0}, NS0)])
    if error is StoreError:  # a configuration fault: neither "retry the same" nor "the data is bad"
        assert not isinstance(caught.value, StoreRejected | StoreUnavailable)


async def test_a_timeout_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    async with InfluxStore("http://influx.invalid", "factory", transport=httpx.MockTransport(handler)) as store:
        with pytest.raises(StoreUnavailable, match="timed out"):
            await store.write([Point("energy", TAGS, {"value": 1.0}, NS0)])


async def test_token_auth_and_a_refused_create_database_as_on_influxdb_2() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/query":
            # InfluxDB 2.x: the v1 API does not run CREATE DATABASE; the bucket is mapped already.
            return httpx.Response(403, json={"code": "forbidden", "message": "not allowed"})
        return httpx.Response(204)

    async with InfluxStore(
        "http://influx.invalid",
        "factory",
        retention_policy="autogen",
        token="s3cr3t-token",
        transport=httpx.MockTransport(handler),
    ) as store:
        await store.write([Point("energy", TAGS, {"value": 1.0}, NS0)])
        await store.write([Point("energy", TAGS, {"value": 2.0}, NS0 + 1)])

    assert [r.url.path for r in seen] == ["/query", "/write", "/write"]  # CREATE DATABASE tried once
    write = seen[1]
    assert write.headers["Authorization"] == "Token s3cr3t-token"
    assert dict(write.url.params) == {"db": "factory", "rp": "autogen", "precision": "ns"}
    line = f"energy,equipment=cnc-01,line=line-a,site=cq-demo,workshop=machining value=1 {NS0}\n"
    assert write.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(write.content) == line.encode()


async def test_username_and_password_are_sent_as_basic_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"results": [{"statement_id": 0}]})

    async with InfluxStore(
        "http://influx.invalid",
        "factory",
        username="ingest",
        password="pw-1234567",
        transport=httpx.MockTransport(handler),
    ) as store:
        await store.read("energy", T0, T0 + timedelta(hours=1))
    assert all(r.headers["Authorization"].startswith("Basic ") for r in seen)


async def test_chunked_multi_series_responses_are_merged() -> None:
    chunks = [
        {
            "results": [
                {
                    "statement_id": 0,
                    "series": [
                        {
                            "name": "m",
                            "tags": {"equipment": "a", "missing": ""},
                            "columns": ["time", "value"],
                            "values": [[NS0 + 2, 2]],
                            "partial": True,
                        }
                    ],
                    "partial": True,
                }
            ]
        },
        {
            "results": [
                {
                    "statement_id": 0,
                    "series": [
                        {
                            "name": "m",
                            "tags": {"equipment": "a", "missing": ""},
                            "columns": ["time", "value"],
                            "values": [[NS0 + 3, 3]],
                        },
                        {
                            "name": "m",
                            "tags": {"equipment": "b", "missing": "x"},
                            "columns": ["time", "value"],
                            "values": [[NS0 + 1, 1.5]],
                        },
                    ],
                }
            ]
        },
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        q = dict(httpx.QueryParams(request.content.decode()))["q"]
        if q.startswith("SHOW FIELD KEYS"):
            return httpx.Response(
                200,
                json={
                    "results": [
                        {
                            "statement_id": 0,
                            "series": [
                                {"name": "m", "columns": ["fieldKey", "fieldType"], "values": [["value", "float"]]}
                            ],
                        }
                    ]
                },
            )
        if q.startswith("SELECT"):
            return httpx.Response(200, text="\n".join(json.dumps(c) for c in chunks) + "\n")
        return httpx.Response(200, json={"results": [{"statement_id": 0}]})

    async with InfluxStore("http://influx.invalid", "db", transport=httpx.MockTransport(handler)) as store:
        frame = await store.read("m", T0, T0 + timedelta(seconds=1))
    assert [t.value - NS0 for t in frame["time"]] == [1, 2, 3]
    assert frame["value"].tolist() == [1.5, 2.0, 3.0]
    assert frame["equipment"].tolist() == ["b", "a", "a"]
    assert frame["missing"].iloc[0] == "x"
    assert frame["missing"].iloc[1:].isna().all()


def test_influxql_quoting() -> None:
    assert quote_identifier('we"ird\\name') == '"we\\"ird\\\\name"'
    assert quote_string("it's \\ here") == "'it\\'s \\\\ here'"
    assert where_clause(1, 2, {"a": ["x", "y"], "b": "z"}) == (
        "time >= 1 AND time < 2 AND (\"a\" = 'x' OR \"a\" = 'y') AND \"b\" = 'z'"
    )
    assert where_clause(1, 2, {"a": []}) is None


# --- Where points are kept: one policy by default, rollups apart when the settings say so ---------


class RecordingTransport(httpx.AsyncHTTPTransport):
    """The real transport, keeping every request it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await super().handle_async_request(request)

    def statements(self) -> list[str]:
        return [dict(httpx.QueryParams(r.content.decode()))["q"] for r in self.requests if r.url.path == "/query"]


async def admin_query(url: str, statement: str) -> list[list[object]]:
    async with httpx.AsyncClient(base_url=url) as admin:
        response = await admin.post("/query", data={"q": statement})
        response.raise_for_status()
    series = response.json()["results"][0].get("series", [])
    return [row for s in series for row in s["values"]]


async def test_by_default_every_point_goes_to_the_default_policy_as_before(
    influx_server: InfluxServer, influx_database: str
) -> None:
    transport = RecordingTransport()
    settings = StoreSettings(kind="influxdb", influx_url=influx_server.url, influx_database=influx_database)
    async with InfluxStore.from_settings(settings, transport=transport) as store:
        hourly = Point(Measurement.BASE_HOURLY, TAGS, {"value": 1.0}, NS0)
        await store.write([Point("energy", TAGS, {"value": 1.0}, NS0), hourly])
        assert len(await store.read_points(Measurement.BASE_HOURLY, T0, T0 + timedelta(hours=1))) == 1
    writes = [r for r in transport.requests if r.url.path == "/write"]
    assert [dict(r.url.params) for r in writes] == [{"db": influx_database, "precision": "ns"}]
    assert any('SELECT * FROM "kpi_base_hourly" WHERE' in q for q in transport.statements())


async def test_rollups_are_written_to_and_read_from_their_own_policy(
    influx_server: InfluxServer, influx_database: str
) -> None:
    for statement in (
        f'CREATE DATABASE "{influx_database}"',
        f'CREATE RETENTION POLICY "raw" ON "{influx_database}" DURATION 36500d REPLICATION 1 DEFAULT',
        f'CREATE RETENTION POLICY "rollups" ON "{influx_database}" DURATION INF REPLICATION 1',
    ):
        await admin_query(influx_server.url, statement)
    settings = StoreSettings(
        kind="influxdb",
        influx_url=influx_server.url,
        influx_database=influx_database,
        influx_retention_policy="raw",
        influx_rollup_retention_policy="rollups",
    )
    kpi_tags = {**TAGS, "signal": "base"}
    counter = tagged(signal="parts_total")
    raw = [Point("part_counter", counter, {"value": n, "quality": "good"}, NS0 + n) for n in (1, 2)]
    rollups = [
        Point(Measurement.BASE_HOURLY, kpi_tags, {"value": 3.0, "quality": "good"}, NS0),
        Point(Measurement.BASE_DAILY, kpi_tags, {"value": 4.0, "quality": "good"}, NS0),
        Point(Measurement.ROLLUP_META, {"site": "cq-demo"}, {"value": "digest", "quality": "good"}, NS0),
    ]
    async with InfluxStore.from_settings(settings) as store:
        await store.write([raw[0], rollups[0], raw[1], rollups[1], rollups[2]])  # mixed in one call
        window = (T0, T0 + timedelta(hours=1))
        assert [p.fields["value"] for p in await store.read_points("part_counter", *window)] == [1, 2]
        hourly = await store.read_points(Measurement.BASE_HOURLY, *window)
        assert [p.fields["value"] for p in hourly] == [3.0]
        assert isinstance(hourly[0].fields["value"], float)  # the field types come from the rollups' policy
        last = await store.last_points(Measurement.BASE_DAILY, T0 + timedelta(seconds=1), timedelta(hours=1))
        assert [p.fields["value"] for p in last] == [4.0]
        counts = await store.count_by_hour(["part_counter", Measurement.BASE_HOURLY], *window, "equipment")
        assert counts == {("cnc-01", NS0): 3}
        assert (await store.read(Measurement.ROLLUP_META, *window))["value"].tolist() == ["digest"]

    db = f'"{influx_database}"'
    assert await admin_query(influx_server.url, f'SELECT count("value") FROM {db}."rollups"."part_counter"') == []
    assert await admin_query(influx_server.url, f'SELECT count("value") FROM {db}."raw"."kpi_base_hourly"') == []
    measurements = await admin_query(influx_server.url, f"SHOW MEASUREMENTS ON {db}")
    assert sorted(row[0] for row in measurements) == sorted(
        ["part_counter", "kpi_base_hourly", "kpi_base_daily", "kpi_rollup_meta"]
    )


async def test_a_retention_policy_that_does_not_exist_is_a_configuration_fault(
    influx_server: InfluxServer, influx_database: str
) -> None:
    # InfluxDB 1.x answers with a 500, which would otherwise read as "unavailable: retry forever".
    async with InfluxStore(influx_server.url, influx_database, retention_policy="nope") as store:
        with pytest.raises(StoreError, match=r"retention policy not found.*factory store setup") as caught:
            await store.write([Point("energy", TAGS, {"value": 1.0}, NS0)])
    assert not isinstance(caught.value, StoreRejected | StoreUnavailable)


# --- gzip and requests too large (413), on the real server -----------------------------------------


async def test_write_bodies_are_gzip_compressed_and_the_server_takes_them(
    influx_server: InfluxServer, influx_database: str
) -> None:
    transport = RecordingTransport()
    async with InfluxStore(influx_server.url, influx_database, transport=transport) as store:
        await store.write([Point("process_value", TAGS, {"value": float(i)}, NS0 + i) for i in range(500)])
        frame = await store.read("process_value", T0, T0 + timedelta(seconds=1))
    (write,) = [r for r in transport.requests if r.url.path == "/write"]
    assert write.headers["Content-Encoding"] == "gzip"
    assert len(gzip.decompress(write.content)) > 5 * len(write.content)
    assert frame["value"].tolist() == [float(i) for i in range(500)]


@pytest.fixture(scope="module")
def small_influx(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InfluxServer]:
    """An InfluxDB that takes write requests of at most 4,000 bytes (as sent: compressed when gzip)."""
    with influxdb(tmp_path_factory.mktemp("influx-small"), max_body_size=4000) as server:
        yield server


@pytest.mark.parametrize("compress", [False, True])
async def test_a_request_too_large_is_split_until_each_part_fits(
    small_influx: InfluxServer, influx_database: str, compress: bool
) -> None:
    transport = RecordingTransport()
    # Random text does not compress, so the compressed body is too large as well.
    points = [Point("process_value", TAGS, {"value": i, "note": secrets.token_hex(40)}, NS0 + i) for i in range(300)]
    async with InfluxStore(small_influx.url, influx_database, gzip=compress, transport=transport) as store:
        await store.write(points)
        frame = await store.read("process_value", T0, T0 + timedelta(seconds=1))
    assert frame["value"].tolist() == list(range(300))
    assert frame["note"].tolist() == [p.fields["note"] for p in points]
    writes = [r for r in transport.requests if r.url.path == "/write"]
    assert len(writes) > 8  # refused, then halves of halves
    assert max(len(r.content) for r in writes) > 4000  # the first, refused


async def test_a_single_point_too_large_is_refused_with_the_servers_reason(
    small_influx: InfluxServer, influx_database: str
) -> None:
    big = Point("process_value", TAGS, {"value": 1, "note": secrets.token_hex(5000)}, NS0)
    async with InfluxStore(small_influx.url, influx_database) as store:
        with pytest.raises(StoreTooLarge, match=r"HTTP 413: Request Entity Too Large: one point of \d+ bytes"):
            await store.write([Point("process_value", TAGS, {"value": 0}, NS0 - 1), big])
        assert (await store.read("process_value", T0 - timedelta(seconds=1), T0))["value"].tolist() == [0]


# --- Retry-After --------------------------------------------------------------------------------


def test_retry_after_is_read_as_seconds_or_an_http_date_and_bounded() -> None:
    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("7", now) == 7.0
    assert retry_after_s(" 0 ", now) == 0.0
    assert retry_after_s("Sun, 29 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_s("Sun, 29 Nov 2026 11:59:00 GMT", now) == 0.0  # already past
    assert retry_after_s("86400", now) == MAX_RETRY_AFTER_S
    assert retry_after_s("Mon, 29 Nov 2027 12:00:00 GMT", now) == MAX_RETRY_AFTER_S
    for unreadable in (None, "", "soon", "-5", "1.5e3", "Xyz, 99 Foo 2026"):
        assert retry_after_s(unreadable, now) is None, unreadable


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [(429, "3", 3.0), (503, "1", 1.0), (503, None, None), (500, "2", 2.0), (429, "whenever", None)],
)
async def test_an_unavailable_store_passes_on_how_long_it_asked_to_be_left_alone(
    status: int, header: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    transport = replying(status, '{"error":"busy"}', headers)
    async with InfluxStore("http://influx.invalid", "factory", transport=transport) as store:
        with pytest.raises(StoreUnavailable) as caught:
            await store.write([Point("energy", TAGS, {"value": 1.0}, NS0)])
    assert caught.value.retry_after_s == expected


def replying_too_large(limit_lines: int, seen: list[int]) -> httpx.MockTransport:
    """Answers a write of more than ``limit_lines`` lines as InfluxDB does when its body limit is exceeded."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        lines = gzip.decompress(request.content).count(b"\n")
        seen.append(lines)
        if lines > limit_lines:
            return httpx.Response(413, json={"error": "Request Entity Too Large"})
        return httpx.Response(204)

    return httpx.MockTransport(handler)


async def test_a_413_splits_the_request_in_halves_down_to_what_fits() -> None:
    seen: list[int] = []
    async with InfluxStore("http://influx.invalid", "factory", transport=replying_too_large(3, seen)) as store:
        await store.write([Point("energy", TAGS, {"value": float(i)}, NS0 + i) for i in range(10)])
    assert seen == [10, 5, 2, 3, 5, 2, 3]
