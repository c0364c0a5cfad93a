"""InfluxStore against a real InfluxDB 1.x on loopback (v1 HTTP API), plus HTTP status mapping."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from core.errors import StoreError, StoreRejected, StoreUnavailable
from core.settings import StoreSettings
from core.store import Point, Store
from core.stores.influx import InfluxStore, quote_identifier, quote_string, where_clause
from core.wire import datetime_to_ns
from tests.servers import InfluxServer, free_port

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
    assert write.content == line.encode()


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
