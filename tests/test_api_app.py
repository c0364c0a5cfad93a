"""The HTTP API against a real SQLite store: authentication, health, validation and KPI numbers.

Access control in depth (every route, roles, scopes, throttling, problem+json) is in test_api_access.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.deps import Caller, RequireRole, Role
from api.keys import KeyStore
from api.problems import ApiProblem
from core.settings import KpiSettings, Settings
from core.store import Store
from core.stores.sqlite import SqliteStore
from kpi.report import KpiReport
from tests.test_kpi_engine import ASSETS, END, START, check_line_a_report, dataset

LINE_A = {"scope": "line-a", "start": START.isoformat(), "end": END.isoformat(), "group_by": "hour"}


def _app(store: Store, example_assets_path: Path, keys: KeyStore) -> FastAPI:
    # The engine test's dataset has readings tens of minutes apart: valid for 1440 intervals (24 h).
    settings = Settings(assets=example_assets_path, kpi=KpiSettings(gap_intervals=1440))
    return create_app(settings, store, ASSETS, keys)


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys.sqlite")


@pytest.fixture
def auditor_key(keys: KeyStore) -> str:
    return keys.create("auditor", Role.AUDITOR, None, "test").secret


@pytest.fixture
def admin_key(keys: KeyStore) -> str:
    return keys.create("admin", Role.ADMIN, None, "test").secret


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = SqliteStore(tmp_path / "api.sqlite")
    await store.write(dataset())
    yield store
    await store.close()


@pytest.fixture
async def client(
    store: Store, example_assets_path: Path, keys: KeyStore, auditor_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(store, example_assets_path, keys))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers={"X-API-Key": auditor_key}
    ) as client:
        yield client


async def test_healthz_needs_no_key_and_reports_the_store(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "store": {"backend": "sqlite", "ok": True}}


async def test_healthz_is_503_when_the_store_is_unreachable(
    tmp_path: Path, example_assets_path: Path, keys: KeyStore, auditor_key: str
) -> None:
    broken = tmp_path / "a-directory"
    broken.mkdir()
    transport = httpx.ASGITransport(app=_app(SqliteStore(broken), example_assets_path, keys))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        health = await client.get("/healthz")
        kpi = await client.get("/v1/kpi", params=LINE_A, headers={"X-API-Key": auditor_key})
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "store": {"backend": "sqlite", "ok": False}}
    assert str(broken) not in health.text  # no internals to anonymous callers
    assert kpi.status_code == 503
    assert kpi.headers["content-type"] == "application/problem+json"
    assert kpi.json()["type"].endswith(":store-unavailable")
    assert "cannot be reached" in kpi.json()["detail"]
    assert str(broken) not in kpi.text


@pytest.mark.parametrize("path", ["/v1/kpi?scope=line-a", "/v1/assets"])
async def test_missing_or_unknown_key_is_401_with_a_challenge(client: httpx.AsyncClient, path: str) -> None:
    client.headers.pop("X-API-Key")
    for headers in ({}, {"X-API-Key": "not-a-key-0123456789"}, {"Authorization": "Bearer nope"}):
        response = await client.get(path, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "X-API-Key" in (await client.get(path)).json()["detail"]


async def test_key_in_header_as_bearer_token_or_cookie_is_accepted(client: httpx.AsyncClient, admin_key: str) -> None:
    by_header = await client.get("/v1/assets")
    auditor_key = client.headers.pop("X-API-Key")
    by_bearer = await client.get("/v1/assets", headers={"Authorization": f"Bearer {admin_key}"})
    client.cookies.set("factory_key", auditor_key)
    by_cookie = await client.get("/v1/assets")
    assert by_header.status_code == by_bearer.status_code == by_cookie.status_code == 200
    assert by_header.json() == by_bearer.json() == by_cookie.json()


def test_roles_are_ranked_auditor_manager_admin() -> None:
    admin = Caller("k1", Role.ADMIN, None)
    auditor = Caller("k2", Role.AUDITOR, "cq-demo")
    assert RequireRole(Role.AUDITOR)(admin) == admin
    assert RequireRole(Role.MANAGER)(admin) == admin
    assert RequireRole(Role.AUDITOR)(auditor) == auditor
    for minimum in (Role.MANAGER, Role.ADMIN):
        with pytest.raises(ApiProblem) as refused:
            RequireRole(minimum)(auditor)
        assert refused.value.status_code == 403
        assert f"needs the {minimum} role" in str(refused.value.detail)


def test_a_site_key_sees_its_site_only_and_a_park_key_sees_all() -> None:
    site_key = Caller("k1", Role.AUDITOR, "cq-demo")
    park_key = Caller("k2", Role.AUDITOR, None)
    assert site_key.may_see("cq-demo") and not site_key.may_see("sz-plant") and not site_key.may_see(None)
    assert park_key.may_see("cq-demo") and park_key.may_see("sz-plant") and park_key.may_see(None)


async def test_asset_tree_lists_park_sites_workshops_lines_equipment(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/assets")
    body = response.json()
    park = body["park"]
    assert park["id"] == "cq-park" and "Chongqing" in park["name"] and "重庆" in park["name"]
    assert [s["id"] for s in park["sites"]] == ["cq-demo", "cq-east"]
    assert body["digest"] == ASSETS.digest() and len(body["digest"]) == 64
    site = park["sites"][0]
    assert site["id"] == "cq-demo"
    assert [w["id"] for w in site["workshops"]] == ["machining", "assembly"]
    line_a = site["workshops"][0]["lines"][0]
    assert [e["id"] for e in line_a["equipment"]] == ["cnc-01", "cnc-02", "cnc-03", "meter-a"]
    assert line_a["equipment"][0]["meter"] == "meter-a"


async def test_kpi_of_the_park_sums_its_sites(client: httpx.AsyncClient) -> None:
    params = {"start": START.isoformat(), "end": END.isoformat(), "kpis": "availability,oee"}
    park, demo, east = [
        (await client.get("/v1/kpi", params={**params, "scope": scope})).json()
        for scope in ("cq-park", "cq-demo", "cq-east")
    ]
    assert park["scope"] == "cq-park"
    assert park["equipment"] == demo["equipment"] + east["equipment"]
    assert "east-cnc-01" in park["equipment"]
    # The dataset has data of cq-demo only: the park's parts and times are cq-demo's, over more equipment.
    for name in ("parts_produced", "production_time_s", "covered_s", "expected_s"):
        assert park["base"][name] == demo["base"][name] + east["base"][name], name
    assert east["base"]["parts_produced"] == 0


async def test_kpi_report_numbers_equal_hand_computed_values(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/kpi", params=LINE_A)
    assert response.status_code == 200
    body = response.json()
    check_line_a_report(KpiReport.model_validate(body))
    # The same numbers straight from the JSON: OEE = 3180 x 700 / (8100 x 720) = 0.381687...
    oee = next(k for k in body["kpis"] if k["key"] == "oee")
    assert oee == {
        "key": "oee",
        "label_en": "OEE",
        "label_zh": "设备综合效率",
        "unit": "ratio",
        "direction": "up",
        "basis": "production",
        "value": pytest.approx(3180 * 700 / (8100 * 720)),
        "status": "ok",
        "coverage": pytest.approx(9900 / 16200),
        "reason": None,
    }
    assert body["base"]["planned_busy_time_s"] == 8100


async def test_window_with_offset_is_the_same_instant(client: httpx.AsyncClient) -> None:
    # 16:30+08:00 is 08:30Z: the same report as the UTC window.
    params = {**LINE_A, "start": "2026-11-25T16:30:00+08:00", "end": "2026-11-25T10:00:00Z"}
    response = await client.get("/v1/kpi", params=params)
    assert response.status_code == 200
    assert datetime.fromisoformat(response.json()["start"]) == START
    check_line_a_report(KpiReport.model_validate(response.json()))


async def test_default_window_is_the_last_hour(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/kpi", params={"scope": "cnc-03"})
    body = response.json()
    assert response.status_code == 200
    start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
    assert end - start == timedelta(hours=1) and end.utcoffset() == timedelta(0)
    # cnc-03 never reported: the report says so instead of inventing numbers; what it can say for
    # sure is that none of its expected report intervals arrived.
    kpis = {k["key"]: k for k in body["kpis"]}
    assert {k["status"] for k in kpis.values() if k["basis"] == "production" and k["key"] != "upload_rate"} == {
        "insufficient_evidence"
    }
    assert (kpis["upload_rate"]["value"], kpis["upload_rate"]["status"]) == (0.0, "ok")
    assert "below the minimum 0.5" in kpis["oee"]["reason"]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"start": END.isoformat(), "end": START.isoformat()}, "end", "must be after start"),
        ({"start": START.isoformat(), "end": START.isoformat()}, "end", "must be after start"),
        ({"start": "2025-01-01T00:00:00Z", "end": "2026-01-02T00:00:01Z"}, "start", "at most 366 days"),
        ({"start": "2026-11-25T08:30:00", "end": END.isoformat()}, "start", "timezone"),
        ({"start": START.isoformat(), "end": "2026-11-25T10:00:00"}, "end", "timezone"),
        ({"start": "yesterday"}, "start", "datetime"),
    ],
)
async def test_bad_windows_are_422_with_a_clear_message(
    client: httpx.AsyncClient, params: dict[str, str], field: str, message: str
) -> None:
    response = await client.get("/v1/kpi", params={"scope": "line-a", **params})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["loc"] == ["query", field]
    assert message in error["msg"]


async def test_window_of_exactly_366_days_is_accepted(client: httpx.AsyncClient) -> None:
    params = {"scope": "cnc-03", "start": "2025-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "group_by": "day"}
    response = await client.get("/v1/kpi", params=params)
    assert response.status_code == 200
    groups = response.json()["groups"]
    # Local days of Asia/Shanghai: 2025-01-01 from 08:00 (partial) to 2026-01-02 until 08:00 (partial).
    assert (len(groups), groups[0]["key"], groups[-1]["key"]) == (367, "2025-01-01", "2026-01-02")
    assert sum(g["base"]["expected_s"] for g in groups) == 366 * 86_400


async def test_kpis_and_group_by_choose_what_comes_back(client: httpx.AsyncClient) -> None:
    params = {**LINE_A, "kpis": "oee, availability", "group_by": "day"}
    response = await client.get("/v1/kpi", params=params)
    body = response.json()
    assert response.status_code == 200
    assert [k["key"] for k in body["kpis"]] == ["oee", "availability"]
    assert [g["key"] for g in body["groups"]] == ["2026-11-25"]
    assert set(body["groups"][0]["kpis"]) == {"oee", "availability"}
    raw = await client.get("/v1/kpi", params={**params, "source": "raw"})
    assert raw.json()["kpis"] == body["kpis"]
    assert raw.json()["read_path"]["rollup_hours"] == 0


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"kpis": "oee,happiness"}, "kpis", "unknown KPI happiness"),
        ({"kpis": " , "}, "kpis", "unknown KPI (none given)"),
        ({"group_by": "fortnight"}, "group_by", "Input should be"),
        ({"start": "2025-01-01T00:00:00Z", "end": "2025-06-01T00:00:00Z", "group_by": "hour"}, "group_by", "93 days"),
        ({"source": "cache"}, "source", "Input should be"),
    ],
)
async def test_bad_kpis_and_groupings_are_422_with_a_clear_message(
    client: httpx.AsyncClient, params: dict[str, str], field: str, message: str
) -> None:
    response = await client.get("/v1/kpi", params={**LINE_A, **params})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["loc"] == ["query", field]
    assert message in error["msg"]


async def test_unknown_scope_is_404_and_missing_scope_422(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/v1/kpi", params={**LINE_A, "scope": "line-z"})
    assert unknown.status_code == 404
    assert "unknown scope 'line-z'" in unknown.json()["detail"]
    assert unknown.json()["type"].endswith(":unknown-scope")
    missing = await client.get("/v1/kpi")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["query", "scope"]
    assert "query parameter 'scope'" in missing.json()["detail"]


async def test_openapi_names_the_response_family(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert {"KpiReportPublic", "AssetTreePublic", "HealthPublic"} <= schemas.keys()
