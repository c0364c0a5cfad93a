"""``/v1/reports`` over HTTP against a real SQLite store of generated history: generate, archive, verify, download.

A park of two sites (tests/web_support.py): hist-site holds two weeks of history, east-site nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.keys import key_id_of
from core.stores.sqlite import SqliteStore
from tests.web_support import OTHER_SITE, PARK, SITE, HistoryData, WebKeys, web_app, write_history_store

SCHEME = "cq-13fyp-pilot-targets"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> HistoryData:
    return asyncio.run(write_history_store(tmp_path_factory.mktemp("web-reports")))


@pytest.fixture
def reports_dir(tmp_path: Path) -> Path:
    return tmp_path / "reports"


@pytest.fixture
async def web(history: HistoryData, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, WebKeys]]:
    store = SqliteStore(history.store_path)
    app, keys, _ = web_app(history, store, tmp_path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        yield client, keys
    await store.close()


def request_body(history: HistoryData, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "scope": SITE,
        "scheme": SCHEME,
        "baseline_start": history.baseline[0].isoformat(),
        "baseline_end": history.baseline[1].isoformat(),
        "assessment_start": history.assessment[0].isoformat(),
        "assessment_end": history.assessment[1].isoformat(),
        "language": "en",
    }
    body.update(changes)
    return body


def as_key(secret: str) -> dict[str, str]:
    return {"X-API-Key": secret}


async def test_a_generated_report_is_archived_signed_and_served_byte_for_byte(
    web: tuple[httpx.AsyncClient, WebKeys], history: HistoryData, reports_dir: Path
) -> None:
    client, keys = web
    response = await client.post("/v1/reports", headers=as_key(keys.auditor), json=request_body(history))
    assert response.status_code == 201, response.text
    created = response.json()
    report_id = created["id"]
    assert response.headers["Location"] == f"/v1/reports/{report_id}"
    assert created["verification"]["verified"] is True and created["verification"]["reason"] is None
    assert created["verification"]["key"] == SITE
    assert re.fullmatch(r"[0-9a-f]{64}", created["verification"]["fingerprint"])  # SHA-256 of the public key
    assert created["verdict"] in ("pass", "fail", "insufficient_evidence")
    assert created["scheme"] == SCHEME and created["scope"] == SITE
    assert created["links"]["pdf"] == f"/v1/reports/{report_id}.pdf"

    archived = list(reports_dir.iterdir())  # noqa: ASYNC240 (the test's own temporary files)
    assert [p.name for p in archived] == [f"{report_id}.json"]
    signed = await client.get(f"/v1/reports/{report_id}.json", headers=as_key(keys.auditor))
    assert signed.status_code == 200 and signed.headers["content-type"] == "application/json"
    assert signed.content == archived[0].read_bytes()
    document = json.loads(signed.content)
    assert document["report"]["scope"] == SITE and document["report"]["language"] == "en"
    assert document["report"]["provenance"]["query"]["assessment"] == (
        f"{history.assessment[0].isoformat()}/{history.assessment[1].isoformat()}"
    )
    assert document["signature"]["site"] == SITE

    again = await client.get(f"/v1/reports/{report_id}", headers=as_key(keys.auditor))
    assert again.json() == created


async def test_every_format_renders_in_either_language(
    web: tuple[httpx.AsyncClient, WebKeys], history: HistoryData
) -> None:
    client, keys = web
    auditor = as_key(keys.auditor)
    created = await client.post("/v1/reports", headers=auditor, json=request_body(history, language="zh"))
    report_id = created.json()["id"]
    pdf = await client.get(f"/v1/reports/{report_id}.pdf", headers=auditor)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"] == f'attachment; filename="{report_id}-zh.pdf"'
    english = await client.get(f"/v1/reports/{report_id}.html", headers=auditor, params={"lang": "en"})
    chinese = await client.get(f"/v1/reports/{report_id}.html", headers=auditor)
    assert english.status_code == chinese.status_code == 200
    assert re.search(r"<html lang=.en", english.text) and re.search(r"<html lang=.zh", chinese.text)
    assert "<svg" in english.text and "Defect rate" in english.text and "不良品率" in chinese.text
    csv = await client.get(f"/v1/reports/{report_id}.csv", headers=auditor, params={"lang": "en"})
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.search(r"Pass|Fail|Insufficient evidence", csv.text)


async def test_reports_are_never_overwritten_and_are_listed_newest_first(
    web: tuple[httpx.AsyncClient, WebKeys], history: HistoryData, reports_dir: Path
) -> None:
    client, keys = web
    auditor = as_key(keys.auditor)
    first = (await client.post("/v1/reports", headers=auditor, json=request_body(history))).json()
    second = (await client.post("/v1/reports", headers=auditor, json=request_body(history))).json()
    assert first["id"] != second["id"]
    assert len(list(reports_dir.iterdir())) == 2  # noqa: ASYNC240
    listed = (await client.get("/v1/reports", headers=auditor)).json()["reports"]
    assert [r["id"] for r in listed] == [second["id"], first["id"]]
    assert all(r["verification"]["verified"] for r in listed)


async def test_a_report_altered_by_one_byte_fails_verification_and_is_not_rendered(
    web: tuple[httpx.AsyncClient, WebKeys], history: HistoryData, reports_dir: Path
) -> None:
    client, keys = web
    auditor = as_key(keys.auditor)
    report_id = (await client.post("/v1/reports", headers=auditor, json=request_body(history))).json()["id"]
    path = reports_dir / f"{report_id}.json"
    data = bytearray(path.read_bytes())
    at = data.index(b'"verdict":"') + len(b'"verdict":"')
    data[at] = ord("x") if data[at] != ord("x") else ord("y")  # one byte of a verdict
    path.write_bytes(bytes(data))

    altered = (await client.get(f"/v1/reports/{report_id}", headers=auditor)).json()
    status = altered["verification"]
    assert status["verified"] is False and status["reason"]
    assert altered["verdict"] is None  # what the altered file claims is not shown as a verdict
    pdf = await client.get(f"/v1/reports/{report_id}.pdf", headers=auditor)
    assert pdf.status_code == 409
    assert pdf.headers["content-type"] == "application/problem+json"
    assert "fails verification" in pdf.json()["detail"] and pdf.json()["instance"] == f"/v1/reports/{report_id}.pdf"
    raw = await client.get(f"/v1/reports/{report_id}.json", headers=auditor)
    assert raw.status_code == 200 and raw.content == bytes(data)
    assert raw.headers["X-Report-Verified"] == "false"


async def test_a_report_signed_with_another_sites_key_fails_verification(
    web: tuple[httpx.AsyncClient, WebKeys], history: HistoryData, reports_dir: Path, tmp_path: Path
) -> None:
    client, keys = web
    auditor = as_key(keys.auditor)
    report_id = (await client.post("/v1/reports", headers=auditor, json=request_body(history))).json()["id"]
    # east-site's key in hist-site's place, as if east-site had signed hist-site's report.
    key_dir = tmp_path / "site-keys"
    for suffix in (".pem", ".pub"):
        (key_dir / f"{SITE}{suffix}").write_bytes((key_dir / f"{OTHER_SITE}{suffix}").read_bytes())
    status = (await client.get(f"/v1/reports/{report_id}", headers=auditor)).json()["verification"]
    assert status["verified"] is False and status["key"] == SITE


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({"scope": "no-such-line"}, 404, "unknown scope 'no-such-line'"),
        ({"scheme": "no-such-scheme"}, 422, "no scheme 'no-such-scheme'"),
        ({"assessment_end": "2020-01-01"}, 422, "must end after it starts"),
        ({"baseline_end": None}, 422, "baseline_start and baseline_end"),
        ({"assessment_start": "1999-12-31"}, 422, "must lie between 2000-01-01 and 2100-01-01"),
        ({"baseline_start": "2020-01-01"}, 422, "at most 366"),
    ],
)
async def test_a_request_that_cannot_be_served_says_why(
    web: tuple[httpx.AsyncClient, WebKeys],
    history: HistoryData,
    changes: dict[str, object],
    status: int,
    words: str,
) -> None:
    client, keys = web
    response = await client.post("/v1/reports", headers=as_key(keys.auditor), json=request_body(history, **changes))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]


async def test_a_site_without_a_signing_key_is_told_how_to_make_one(
    web: tuple[httpx.AsyncClient, WebKeys], history: HistoryData, tmp_path: Path
) -> None:
    client, keys = web
    for key in (tmp_path / "site-keys").glob(f"{SITE}.*"):
        key.unlink()
    response = await client.post("/v1/reports", headers=as_key(keys.auditor), json=request_body(history))
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert f"factory report keygen --site {SITE}" in response.json()["detail"]


async def test_a_park_report_is_signed_with_the_parks_key(
    web: tuple[httpx.AsyncClient, WebKeys], history: HistoryData
) -> None:
    client, keys = web
    created = await client.post("/v1/reports", headers=as_key(keys.auditor), json=request_body(history, scope=PARK))
    assert created.status_code == 201, created.text
    assert created.json()["verification"] == {**created.json()["verification"], "verified": True, "key": PARK}


async def test_a_sites_key_sees_and_generates_its_own_sites_reports_only(
    web: tuple[httpx.AsyncClient, WebKeys], history: HistoryData
) -> None:
    client, keys = web
    ours = await client.post("/v1/reports", headers=as_key(keys.site_auditor), json=request_body(history))
    assert ours.status_code == 201, ours.text
    theirs = await client.post(
        "/v1/reports", headers=as_key(keys.auditor), json=request_body(history, scope="east-line")
    )
    assert theirs.status_code == 201, theirs.text
    park = await client.post("/v1/reports", headers=as_key(keys.auditor), json=request_body(history, scope=PARK))
    ours_id, theirs_id, park_id = ours.json()["id"], theirs.json()["id"], park.json()["id"]

    listed = (await client.get("/v1/reports", headers=as_key(keys.site_auditor))).json()["reports"]
    assert [r["id"] for r in listed] == [ours_id]
    other_listed = (await client.get("/v1/reports", headers=as_key(keys.other_auditor))).json()["reports"]
    assert [r["id"] for r in other_listed] == [theirs_id]
    everything = (await client.get("/v1/reports", headers=as_key(keys.auditor))).json()["reports"]
    assert [r["id"] for r in everything] == [park_id, theirs_id, ours_id]

    for refused in (theirs_id, park_id):
        for path in (f"/v1/reports/{refused}", f"/v1/reports/{refused}.json", f"/v1/reports/{refused}.pdf"):
            response = await client.get(path, headers=as_key(keys.site_auditor))
            assert response.status_code == 403, path
            assert response.headers["content-type"] == "application/problem+json"
    for scope in ("east-line", OTHER_SITE, PARK):
        response = await client.post(
            "/v1/reports", headers=as_key(keys.site_auditor), json=request_body(history, scope=scope)
        )
        assert response.status_code == 403, scope


async def test_reports_need_a_working_key(web: tuple[httpx.AsyncClient, WebKeys], history: HistoryData) -> None:
    client, keys = web
    assert (await client.get("/v1/reports")).status_code == 401
    assert (await client.get("/v1/reports", headers=as_key("fk_not-a-key-0123456789"))).status_code == 401
    key_id = key_id_of(keys.site_auditor)
    assert key_id is not None
    keys.store.revoke(key_id)
    revoked = await client.post("/v1/reports", headers=as_key(keys.site_auditor), json=request_body(history))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert (await client.get("/v1/reports/nothing-here", headers=as_key(keys.auditor))).status_code == 404
    assert (await client.get("/v1/reports/..%2F..%2Fetc.json", headers=as_key(keys.auditor))).status_code == 404
