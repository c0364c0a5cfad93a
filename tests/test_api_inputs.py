"""``/v1/inputs`` over the real app and a real SQLite input store: roles, site scope, versions,
problem documents with field (and line) and reason, CSV as text/csv and as a multipart upload."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.keys import KeyStore, Role
from core.settings import InputsSettings, Settings
from core.stores.inputs import InputStore
from core.stores.sqlite import SqliteStore
from tests.test_kpi_engine import ASSETS

REPO = Path(__file__).resolve().parent.parent
DEMO_CSV = REPO / "config" / "demo-inputs.csv"
HEADER = "site,kind,period_start,period_end,value,note\n"

# Keys of each role and scope, by name. ``_as(name)`` gives the headers that present a key, ``KEY_ID[name]``
# its id (what ``entered_by`` records); ``_app`` creates them in the key store of the app it builds.
KEY_SPECS: dict[str, tuple[Role, str | None]] = {
    "auditor-park": (Role.AUDITOR, None),
    "manager-park": (Role.MANAGER, None),
    "admin-park": (Role.ADMIN, None),
    "manager-demo": (Role.MANAGER, "cq-demo"),
    "auditor-two": (Role.AUDITOR, "cq-two"),
    "manager-two": (Role.MANAGER, "cq-two"),
}
SECRET: dict[str, str] = {}
KEY_ID: dict[str, str] = {}

ENTRY = {
    "site": "cq-demo",
    "kind": "operating_cost",
    "period_start": "2026-01-01",
    "period_end": "2026-02-01",
    "value": 392.5,
    "note": "January ledger",
}


def _as(name: str) -> dict[str, str]:
    return {"X-API-Key": SECRET.get(name, name)}


def _app(tmp_path: Path, example_assets_path: Path, inputs: InputStore, **limits: Any) -> FastAPI:
    """The app, with the keys of ``KEY_SPECS`` in its key store."""
    settings = Settings(assets=example_assets_path, inputs=InputsSettings(**limits))
    keys = KeyStore(tmp_path / "keys.sqlite")
    SECRET.clear()
    KEY_ID.clear()
    for name, (role, site) in KEY_SPECS.items():
        new = keys.create(name, role, site, "test")
        SECRET[name], KEY_ID[name] = new.secret, new.key.id
    return create_app(settings, SqliteStore(tmp_path / "store.sqlite"), ASSETS, keys, inputs=inputs)


@pytest.fixture
def inputs(tmp_path: Path) -> Iterator[InputStore]:
    store = InputStore(tmp_path / "inputs.sqlite", sites={"cq-demo", "cq-two"})
    yield store
    store.close()


@pytest.fixture
async def client(tmp_path: Path, example_assets_path: Path, inputs: InputStore) -> AsyncIterator[httpx.AsyncClient]:
    app = _app(tmp_path, example_assets_path, inputs)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        yield client


async def _add(client: httpx.AsyncClient, key: str = "manager-park", **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/inputs", json={**ENTRY, **fields}, headers=_as(key))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_enter_correct_withdraw_and_read_the_history(client: httpx.AsyncClient) -> None:
    first = await _add(client)
    assert first["version"] == 1 and first["entered_by"] == KEY_ID["manager-park"] and first["unit"] == "10k CNY"
    entry_id = first["entry_id"]
    corrected = await client.post(
        f"/v1/inputs/{entry_id}/versions", json={"value": 395, "based_on_version": 1}, headers=_as("manager-demo")
    )
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["version"] == 2 and corrected.json()["value"] == 395
    assert corrected.json()["note"] == "January ledger" and corrected.json()["entered_by"] == KEY_ID["manager-demo"]
    stale = await client.post(
        f"/v1/inputs/{entry_id}/versions", json={"value": 1, "based_on_version": 1}, headers=_as("manager-park")
    )
    assert stale.status_code == 409 and "version 2, not 1" in stale.json()["detail"]
    listed = (await client.get("/v1/inputs", headers=_as("auditor-park"))).json()
    assert listed["count"] == 1 and listed["entries"][0]["value"] == 395

    withdrawn = await client.delete(
        f"/v1/inputs/{entry_id}", params={"reason": "booked twice"}, headers=_as("manager-park")
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["deleted"] is True
    assert (await client.get("/v1/inputs", headers=_as("auditor-park"))).json()["count"] == 0
    shown = (await client.get("/v1/inputs", params={"withdrawn": "true"}, headers=_as("auditor-park"))).json()
    assert [e["version"] for e in shown["entries"]] == [3]
    history = await client.get(f"/v1/inputs/{entry_id}/history", headers=_as("auditor-park"))
    assert history.status_code == 200
    versions = history.json()["versions"]
    assert [(v["version"], v["value"], v["deleted"], v["note"]) for v in versions] == [
        (1, 392.5, False, "January ledger"),
        (2, 395, False, "January ledger"),
        (3, 395, True, "booked twice"),
    ]
    again = await client.delete(f"/v1/inputs/{entry_id}", params={"reason": "x"}, headers=_as("manager-park"))
    assert again.status_code == 409
    single = await client.get(f"/v1/inputs/{entry_id}", headers=_as("auditor-park"))
    assert single.json()["version"] == 3


async def test_list_filters_by_site_kind_and_period(client: httpx.AsyncClient) -> None:
    await _add(client)
    await _add(client, period_start="2026-02-01", period_end="2026-03-01", value=371)
    await _add(client, kind="headcount", value=48)
    await _add(client, site="cq-two", value=10)

    async def listed(**params: str) -> list[tuple[str, str, str]]:
        response = await client.get("/v1/inputs", params=params, headers=_as("auditor-park"))
        assert response.status_code == 200, response.text
        return [(e["site"], e["kind"], e["period_start"]) for e in response.json()["entries"]]

    assert len(await listed()) == 4
    assert await listed(site="cq-two") == [("cq-two", "operating_cost", "2026-01-01")]
    assert await listed(kind="headcount") == [("cq-demo", "headcount", "2026-01-01")]
    assert await listed(site="cq-demo", kind="operating_cost", **{"from": "2026-02-01"}) == [
        ("cq-demo", "operating_cost", "2026-02-01")
    ]
    assert len(await listed(to="2026-02-01")) == 3
    bad = await client.get("/v1/inputs", params={"from": "2026-02-30"}, headers=_as("auditor-park"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "from"
    unknown = await client.get("/v1/inputs", params={"kind": "happiness"}, headers=_as("auditor-park"))
    assert unknown.status_code == 422


async def test_reads_need_a_key_and_writes_the_manager_role(client: httpx.AsyncClient) -> None:
    entry = await _add(client)
    for method, path, body in [
        ("GET", "/v1/inputs", None),
        ("GET", f"/v1/inputs/{entry['entry_id']}/history", None),
        ("POST", "/v1/inputs", ENTRY),
    ]:
        for headers in ({}, _as("not-a-key")):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, headers)
    writes = [
        ("POST", "/v1/inputs", {"json": {**ENTRY, "period_start": "2026-05-01", "period_end": "2026-06-01"}}),
        ("POST", f"/v1/inputs/{entry['entry_id']}/versions", {"json": {"value": 1}}),
        ("DELETE", f"/v1/inputs/{entry['entry_id']}", {"params": {"reason": "r"}}),
        ("POST", "/v1/inputs/csv", {"content": DEMO_CSV.read_bytes(), "headers": {"Content-Type": "text/csv"}}),
    ]
    for method, path, kwargs in writes:
        headers = {**kwargs.pop("headers", {}), **_as("auditor-park")}  # type: ignore[dict-item]
        response = await client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 403, (method, path, response.text)
        assert "manager" in response.json()["detail"]
    assert (await client.get(f"/v1/inputs/{entry['entry_id']}/history", headers=_as("auditor-park"))).json()[
        "versions"
    ][-1]["version"] == 1  # none of the refused writes left a trace
    admin = await client.post("/v1/inputs", json={**ENTRY, "kind": "headcount", "value": 48}, headers=_as("admin-park"))
    assert admin.status_code == 201  # admin is above manager


async def test_a_site_key_sees_and_writes_its_own_site_only(client: httpx.AsyncClient) -> None:
    demo = await _add(client, key="manager-demo")
    two = await _add(client, key="manager-two", site="cq-two", value=10)

    own = (await client.get("/v1/inputs", headers=_as("auditor-two"))).json()
    assert [e["entry_id"] for e in own["entries"]] == [two["entry_id"]]  # no filter: its own site only
    refusals = [
        await client.get("/v1/inputs", params={"site": "cq-demo"}, headers=_as("auditor-two")),
        await client.get(f"/v1/inputs/{demo['entry_id']}", headers=_as("auditor-two")),
        await client.get(f"/v1/inputs/{demo['entry_id']}/history", headers=_as("auditor-two")),
        await client.post("/v1/inputs", json={**ENTRY, "kind": "headcount", "value": 1}, headers=_as("manager-two")),
        await client.post(f"/v1/inputs/{demo['entry_id']}/versions", json={"value": 1}, headers=_as("manager-two")),
        await client.delete(f"/v1/inputs/{demo['entry_id']}", params={"reason": "r"}, headers=_as("manager-two")),
    ]
    for refused in refusals:
        assert refused.status_code == 403, (refused.request.method, refused.request.url, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"].endswith(":out-of-scope") and problem["title"] == "Outside the key's scope"
        assert "cq-two" in problem["detail"]
    csv_other = await client.post(
        "/v1/inputs/csv",
        content=HEADER + "cq-two,headcount,2026-01-01,2026-02-01,12,\ncq-demo,headcount,2026-01-01,2026-02-01,48,\n",
        headers={"Content-Type": "text/csv", **_as("manager-two")},
    )
    assert csv_other.status_code == 403 and csv_other.json()["type"].endswith(":out-of-scope")
    [error] = csv_other.json()["errors"]
    assert (error["line"], error["field"], error["loc"]) == (3, "site", ["file", 3, "site"])
    assert error["reason"] == "'cq-demo': this import may enter inputs for site cq-two only"
    park = (await client.get("/v1/inputs", headers=_as("auditor-park"))).json()
    assert park["count"] == 2  # the park's key sees both sites, and nothing else was written


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"value": 1e30}, "value", "above the sane bound"),
        ({"value": -1}, "value", "below the range"),
        ({"kind": "headcount", "value": 47.5}, "value", "whole number"),
        ({"period_start": "0001-01-01"}, "period_start", "outside the years 1900-2200"),
        ({"period_end": "9999-12-31"}, "period_end", "outside the years 1900-2200"),
        ({"period_end": "2025-12-01"}, "period_end", "must be after period_start"),
        ({"period_start": "2026-01-01T08:00"}, "period_start", "not a date written YYYY-MM-DD"),
        ({"note": "x" * 5000}, "note", "5000 characters; at most 1000"),
        ({"site": "elsewhere"}, "site", "unknown site 'elsewhere'"),
        ({"value": None}, "value", "missing"),
    ],
)
async def test_hostile_json_is_refused_with_field_and_reason(
    client: httpx.AsyncClient, fields: dict[str, Any], field: str, reason: str
) -> None:
    response = await client.post("/v1/inputs", json={**ENTRY, **fields}, headers=_as("manager-park"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["title"] == "Input refused" and problem["instance"] == "/v1/inputs"
    assert problem["errors"][0]["loc"] == ["body", field]
    assert [e["field"] for e in problem["errors"]] == [field] and reason in problem["errors"][0]["reason"]
    assert (await client.get("/v1/inputs", headers=_as("auditor-park"))).json()["count"] == 0


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"1" + b"0" * 400])
async def test_non_finite_and_huge_json_numbers_are_refused(client: httpx.AsyncClient, literal: bytes) -> None:
    # Python's JSON parser reads NaN and Infinity although JSON has neither; 1e400 overflows to inf.
    body = b'{"site": "cq-demo", "kind": "operating_cost", "period_start": "2026-01-01", "period_end": "2026-02-01",'
    body += b' "value": ' + literal + b"}"
    response = await client.post(
        "/v1/inputs", content=body, headers={"Content-Type": "application/json", **_as("manager-park")}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "value"


async def test_an_unpaired_surrogate_in_json_is_refused_not_a_server_error(client: httpx.AsyncClient) -> None:
    # JSON may escape half a surrogate pair; Python decodes it to a string no UTF-8 store can hold.
    body = b'{"site": "cq-demo", "kind": "headcount", "period_start": "2026-01-01", "period_end": "2026-02-01",'
    body += b' "value": 48, "note": "\\ud800"}'
    response = await client.post(
        "/v1/inputs", content=body, headers={"Content-Type": "application/json", **_as("manager-park")}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "note" and "surrogate" in response.json()["errors"][0]["reason"]


@pytest.mark.parametrize(
    "fields", [{"value": True}, {"value": "392.5"}, {"kind": "happiness"}, {"surprise": 1}, {"period_start": 20260101}]
)
async def test_wrongly_typed_json_is_refused(client: httpx.AsyncClient, fields: dict[str, Any]) -> None:
    response = await client.post("/v1/inputs", json={**ENTRY, **fields}, headers=_as("manager-park"))
    assert response.status_code == 422


async def test_overlapping_entry_is_refused_and_names_the_existing_one(client: httpx.AsyncClient) -> None:
    first = await _add(client)
    response = await client.post(
        "/v1/inputs",
        json={**ENTRY, "period_start": "2026-01-15", "period_end": "2026-02-15"},
        headers=_as("manager-park"),
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "period" and first["entry_id"] in error["reason"]


async def test_unknown_entry_is_404_and_an_empty_correction_is_refused(client: httpx.AsyncClient) -> None:
    for method, path, kwargs in [
        ("GET", "/v1/inputs/in-0000000000000000/history", {}),
        ("POST", "/v1/inputs/in-0000000000000000/versions", {"json": {"value": 1}}),
        ("DELETE", "/v1/inputs/in-0000000000000000", {"params": {"reason": "r"}}),
    ]:
        response = await client.request(method, path, headers=_as("manager-park"), **kwargs)
        assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
    entry = await _add(client)
    empty = await client.post(f"/v1/inputs/{entry['entry_id']}/versions", json={}, headers=_as("manager-park"))
    assert empty.status_code == 422 and "changes nothing" in empty.json()["detail"]
    no_reason = await client.delete(f"/v1/inputs/{entry['entry_id']}", headers=_as("manager-park"))
    assert no_reason.status_code == 422


async def test_csv_as_text_body_imports_the_demo_file(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/inputs/csv",
        content=DEMO_CSV.read_bytes(),
        headers={"Content-Type": "text/csv; charset=utf-8", **_as("manager-demo")},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["imported"] == 38 and {e["entered_by"] for e in body["entries"]} == {KEY_ID["manager-demo"]}
    listed = await client.get("/v1/inputs", params={"kind": "dev_project"}, headers=_as("auditor-park"))
    assert sorted(e["value"] for e in listed.json()["entries"]) == [46, 49, 50, 71, 74, 84]


async def test_csv_as_multipart_upload_with_bom_and_crlf(client: httpx.AsyncClient) -> None:
    data = ("\ufeff" + HEADER + "cq-demo,headcount,2026-01-01,2026-02-01,48,HR 人力资源\n").replace("\n", "\r\n")
    response = await client.post(
        "/v1/inputs/csv",
        files={"file": ("inputs.csv", data.encode(), "text/csv")},
        headers=_as("manager-park"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["entries"][0]["note"] == "HR 人力资源"
    no_file = await client.post(
        "/v1/inputs/csv", data={"other": "x"}, files={"x": ("a", b"b")}, headers=_as("manager-park")
    )
    assert no_file.status_code == 422 and no_file.json()["errors"][0]["field"] == "file"


async def test_a_bad_csv_stores_nothing_and_lists_every_bad_row(client: httpx.AsyncClient) -> None:
    data = (
        HEADER
        + "cq-demo,headcount,2026-01-01,2026-02-01,48,\n"
        + "cq-demo,headcount,2026-02-01,2026-03-01,NaN,\n"
        + "cq-demo,operating_cost,0001-01-01,2026-02-01,1,\n"
        + "cq-demo,happiness,2026-01-01,2026-02-01,1,\n"
    )
    response = await client.post(
        "/v1/inputs/csv", content=data, headers={"Content-Type": "text/csv", **_as("manager-park")}
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["title"] == "CSV file refused" and problem["error_count"] == 3
    assert problem["type"].endswith(":problem:input-refused")
    assert [(e["line"], e["field"]) for e in problem["errors"]] == [(3, "value"), (4, "period_start"), (5, "kind")]
    assert "nothing was stored" in problem["detail"]
    assert (await client.get("/v1/inputs", headers=_as("auditor-park"))).json()["count"] == 0


async def test_csv_size_and_row_limits_and_content_type(
    tmp_path: Path, example_assets_path: Path, inputs: InputStore
) -> None:
    app = _app(tmp_path, example_assets_path, inputs, csv_max_bytes=1024, csv_max_rows=2)
    headers = {"Content-Type": "text/csv", **_as("manager-park")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        big = await client.post("/v1/inputs/csv", content=HEADER + "x" * 2000, headers=headers)
        assert big.status_code == 413 and big.json()["errors"][0]["field"] == "file"
        upload = await client.post(
            "/v1/inputs/csv", files={"file": ("a.csv", (HEADER + "x" * 1500).encode())}, headers=_as("manager-park")
        )
        assert upload.status_code == 413  # within the form's envelope allowance, but the file itself is too big
        rows = "".join(f"cq-demo,dev_project,2026-01-01,2026-02-01,,p{n}\n" for n in range(3))
        many = await client.post("/v1/inputs/csv", content=HEADER + rows, headers=headers)
        assert many.status_code == 422
        error = many.json()["errors"][0]
        assert (error["line"], error["field"], error["reason"]) == (4, "file", "more than 2 rows (split the file)")
        wrong_type = await client.post("/v1/inputs/csv", json={"a": 1}, headers=_as("manager-park"))
        assert wrong_type.status_code == 415


async def test_the_routes_are_in_the_openapi_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    assert set(paths["/v1/inputs"]) == {"get", "post"}
    assert set(paths["/v1/inputs/{entry_id}"]) == {"get", "delete"}
    assert "post" in paths["/v1/inputs/{entry_id}/versions"] and "get" in paths["/v1/inputs/{entry_id}/history"]
    assert set(paths["/v1/inputs/csv"]["post"]["requestBody"]["content"]) == {"text/csv", "multipart/form-data"}
