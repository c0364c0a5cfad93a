"""``/v1/reports`` over HTTP against a real SQLite store of generated history: generate, archive, verify, download."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from core.stores.sqlite import SqliteStore
from tests.web_support import AUDITOR_KEY, VIEWER_KEY, HistoryData, web_app, write_history_store

AUDITOR = {"X-API-Key": AUDITOR_KEY}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> HistoryData:
    return asyncio.run(write_history_store(tmp_path_factory.mktemp("web-reports")))


@pytest.fixture
def reports_dir(tmp_path: Path) -> Path:
    return tmp_path / "reports"


@pytest.fixture
async def client(history: HistoryData, reports_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = SqliteStore(history.store_path)
    transport = httpx.ASGITransport(app=web_app(history, store, reports_dir))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client
    await store.close()


def request_body(history: HistoryData, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "scope": "hist-site",
        "scheme": "pilot_targets",
        "baseline_start": history.baseline[0].isoformat(),
        "baseline_end": history.baseline[1].isoformat(),
        "assessment_start": history.assessment[0].isoformat(),
        "assessment_end": history.assessment[1].isoformat(),
        "language": "en",
    }
    body.update(changes)
    return body


async def test_a_generated_report_is_archived_signed_and_served_byte_for_byte(
    client: httpx.AsyncClient, history: HistoryData, reports_dir: Path
) -> None:
    response = await client.post("/v1/reports", headers=AUDITOR, json=request_body(history))
    assert response.status_code == 201, response.text
    created = response.json()
    report_id = created["id"]
    assert response.headers["Location"] == f"/v1/reports/{report_id}"
    assert created["verification"]["verified"] is True and created["verification"]["reason"] is None
    assert created["verification"]["key"] == "hist-site"
    assert re.fullmatch(r"[0-9a-f]{64}", created["verification"]["fingerprint"])  # SHA-256 of the public key
    assert created["verdict"] in ("pass", "fail", "insufficient_evidence")
    assert created["links"]["pdf"] == f"/v1/reports/{report_id}.pdf"

    archived = list(reports_dir.iterdir())  # noqa: ASYNC240 (the test's own temporary files)
    assert [p.stem for p in archived] == [report_id]
    signed = await client.get(f"/v1/reports/{report_id}.json", headers=AUDITOR)
    assert signed.status_code == 200 and signed.headers["content-type"] == "application/json"
    assert signed.content == archived[0].read_bytes()
    document = json.loads(signed.content)
    assert document["report"]["scope"] == "hist-site" and document["report"]["language"] == "en"
    assert document["report"]["provenance"]["query"]["assessment"] == (
        f"{history.assessment[0].isoformat()}/{history.assessment[1].isoformat()}"
    )

    again = await client.get(f"/v1/reports/{report_id}", headers=AUDITOR)
    assert again.json() == created


async def test_every_format_renders_in_either_language(client: httpx.AsyncClient, history: HistoryData) -> None:
    report_id = (await client.post("/v1/reports", headers=AUDITOR, json=request_body(history, language="zh"))).json()[
        "id"
    ]
    pdf = await client.get(f"/v1/reports/{report_id}.pdf", headers=AUDITOR)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"] == f'attachment; filename="{report_id}-zh.pdf"'
    english = await client.get(f"/v1/reports/{report_id}.html", headers=AUDITOR, params={"lang": "en"})
    chinese = await client.get(f"/v1/reports/{report_id}.html", headers=AUDITOR)
    assert english.status_code == chinese.status_code == 200
    assert "lang='en'" in english.text or 'lang="en"' in english.text
    assert "<svg" in english.text and english.text != chinese.text
    csv = await client.get(f"/v1/reports/{report_id}.csv", headers=AUDITOR, params={"lang": "en"})
    assert csv.headers["content-type"] == "text/csv; charset=utf-8" and "OEE" in csv.text


async def test_reports_are_never_overwritten_and_are_listed_newest_first(
    client: httpx.AsyncClient, history: HistoryData, reports_dir: Path
) -> None:
    first = (await client.post("/v1/reports", headers=AUDITOR, json=request_body(history))).json()
    second = (await client.post("/v1/reports", headers=AUDITOR, json=request_body(history))).json()
    assert first["id"] != second["id"]
    assert len(list(reports_dir.iterdir())) == 2  # noqa: ASYNC240
    listed = (await client.get("/v1/reports", headers=AUDITOR)).json()["reports"]
    assert [r["id"] for r in listed] == [second["id"], first["id"]]
    assert all(r["verification"]["verified"] for r in listed)


async def test_a_report_altered_by_one_byte_fails_verification_and_is_not_rendered(
    client: httpx.AsyncClient, history: HistoryData, reports_dir: Path
) -> None:
    report_id = (await client.post("/v1/reports", headers=AUDITOR, json=request_body(history))).json()["id"]
    path = reports_dir / f"{report_id}.json"
    data = bytearray(path.read_bytes())
    at = data.index(b'"verdict":"') + len(b'"verdict":"')
    data[at] = ord("x") if data[at] != ord("x") else ord("y")  # one byte of the overall verdict
    path.write_bytes(bytes(data))

    status = (await client.get(f"/v1/reports/{report_id}", headers=AUDITOR)).json()["verification"]
    assert status["verified"] is False and status["reason"]
    pdf = await client.get(f"/v1/reports/{report_id}.pdf", headers=AUDITOR)
    assert pdf.status_code == 409
    assert pdf.headers["content-type"] == "application/problem+json"
    assert "fails verification" in pdf.json()["detail"]
    raw = await client.get(f"/v1/reports/{report_id}.json", headers=AUDITOR)
    assert raw.status_code == 200 and raw.content == bytes(data)
    assert raw.headers["X-Report-Verified"] == "false"


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({"scope": "no-such-line"}, 404, "unknown scope"),
        ({"scheme": "no-such-scheme"}, 422, "no scheme 'no-such-scheme'"),
        ({"assessment_end": "2020-01-01"}, 422, "must end after it starts"),
        ({"baseline_end": None}, 422, "baseline_start and baseline_end"),
    ],
)
async def test_a_request_that_cannot_be_served_says_why(
    client: httpx.AsyncClient, history: HistoryData, changes: dict[str, object], status: int, words: str
) -> None:
    response = await client.post("/v1/reports", headers=AUDITOR, json=request_body(history, **changes))
    assert response.status_code == status, response.text
    assert words in response.text


async def test_a_site_without_a_signing_key_is_told_how_to_make_one(history: HistoryData, tmp_path: Path) -> None:
    store = SqliteStore(history.store_path)
    app = web_app(history, store, tmp_path / "reports")
    for key in (tmp_path / "site-keys").iterdir():
        key.unlink()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        response = await client.post("/v1/reports", headers=AUDITOR, json=request_body(history))
    await store.close()
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "factory report keygen --site hist-site" in response.json()["detail"]


async def test_reports_need_an_auditor_key(client: httpx.AsyncClient, history: HistoryData) -> None:
    assert (await client.get("/v1/reports")).status_code == 401
    assert (await client.get("/v1/reports", headers={"X-API-Key": "not-a-key-0123456789"})).status_code == 401
    assert (await client.get("/v1/reports", headers={"X-API-Key": VIEWER_KEY})).status_code == 403
    created = await client.post("/v1/reports", headers={"X-API-Key": VIEWER_KEY}, json=request_body(history))
    assert created.status_code == 403
    assert (await client.get("/v1/reports/nothing-here", headers=AUDITOR)).status_code == 404
    assert (await client.get("/v1/reports/..%2F..%2Fetc.json", headers=AUDITOR)).status_code == 404
