"""The pages over HTTP against a real SQLite store of generated history: sign-in, overview, report viewer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from api import web
from api.deps import KEY_COOKIE as COOKIE
from api.keys import key_id_of
from core.stores.sqlite import SqliteStore
from tests.web_support import MACHINES, OTHER_SITE, PARK, SITE, HistoryData, WebKeys, web_app, write_history_store

SCHEME = "cq-13fyp-pilot-targets"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> HistoryData:
    return asyncio.run(write_history_store(tmp_path_factory.mktemp("web-pages")))


@pytest.fixture
async def site(history: HistoryData, tmp_path: Path) -> AsyncIterator[tuple[httpx.ASGITransport, WebKeys]]:
    store = SqliteStore(history.store_path)
    app, keys, _ = web_app(history, store, tmp_path)
    yield httpx.ASGITransport(app=app), keys
    await store.close()


@pytest.fixture
async def browser(site: tuple[httpx.ASGITransport, WebKeys]) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies, as a browser does; not yet signed in."""
    async with httpx.AsyncClient(transport=site[0], base_url="http://factory.test") as client:
        yield client


@pytest.fixture
def keys(site: tuple[httpx.ASGITransport, WebKeys]) -> WebKeys:
    return site[1]


async def sign_in(browser: httpx.AsyncClient, key: str, lang: str = "en") -> httpx.Response:
    return await browser.post("/ui/signin", data={"key": key, "lang": lang})


def row_of(html: str, scope: str) -> str:
    match = re.search(rf'<tr class="kind-\w+" data-scope="{re.escape(scope)}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {scope}"
    return match.group(1)


async def test_home_sends_a_stranger_to_sign_in_and_a_signed_in_person_to_the_overview(
    browser: httpx.AsyncClient, keys: WebKeys
) -> None:
    home = await browser.get("/")
    assert home.status_code == 303 and home.headers["location"].startswith("/ui/signin")
    assert (await browser.get("/ui/overview")).headers["location"].startswith("/ui/signin")
    await sign_in(browser, keys.auditor)
    assert (await browser.get("/")).headers["location"] == "/ui/overview?lang=en"


async def test_sign_in_sets_an_httponly_strict_cookie_and_a_wrong_key_says_so(
    browser: httpx.AsyncClient, keys: WebKeys
) -> None:
    form = await browser.get("/ui/signin", params={"lang": "zh"})
    assert form.status_code == 200 and '<html lang="zh-CN">' in form.text
    assert '<label for="key">' in form.text

    wrong = await sign_in(browser, "fk_not-a-key-0123456789")
    assert wrong.status_code == 401 and "This key is not valid" in wrong.text
    assert COOKIE not in wrong.headers.get("set-cookie", "")

    right = await sign_in(browser, keys.auditor)
    assert right.status_code == 303 and right.headers["location"] == "/ui/overview?lang=en"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={keys.auditor};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie

    out = await browser.post("/ui/signout", data={"lang": "en"})
    assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]
    assert (await browser.get("/ui/overview")).status_code == 303


async def test_a_revoked_key_is_signed_out_at_once_and_cannot_sign_in(
    browser: httpx.AsyncClient, keys: WebKeys
) -> None:
    await sign_in(browser, keys.site_auditor)
    assert (await browser.get("/ui/overview")).status_code == 200
    key_id = key_id_of(keys.site_auditor)
    assert key_id is not None
    keys.store.revoke(key_id)
    assert (await browser.get("/ui/overview")).headers["location"].startswith("/ui/signin")
    again = await sign_in(browser, keys.site_auditor)
    assert again.status_code == 401 and "revoked" in again.text


async def test_overview_shows_the_tree_with_numbers_and_each_machines_state(
    browser: httpx.AsyncClient, keys: WebKeys
) -> None:
    await sign_in(browser, keys.auditor)
    page = await browser.get("/ui/overview", params={"period": "7d", "lang": "en"})
    assert page.status_code == 200
    html = page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for header in ("OEE", "Availability", "Effectiveness", "Quality ratio", "Key-process CNC rate"):
        assert f'<th scope="col" class="num">{header}' in html
    assert "Equipment networking rate" in html and "Energy per good part" in html
    scopes = re.findall(r'data-scope="([^"]+)"', html)
    assert scopes == [PARK, SITE, "hist-shop", "hist-line", *MACHINES, OTHER_SITE, "east-shop", "east-line", "cnc-e1"]
    for scope in (SITE, "hist-shop", "hist-line", *MACHINES):
        oee = re.search(r'<td class="num status-ok" >(\d+\.\d) %</td>', row_of(html, scope))
        assert oee and 30 < float(oee.group(1)) < 95, scope
    # The other site has no data: its numbers are withheld, not zeros.
    withheld = re.findall(
        r'<td class="num status-insufficient_evidence" title="insufficient evidence: ([^"]+)">—<span class="sr-only">',
        row_of(html, "cnc-e1"),
    )
    assert len(withheld) >= 4 and all(withheld), withheld  # OEE and its factors at least, each with its reason
    assert "no state reported" in row_of(html, "cnc-e1")
    # The history ends at midnight before today: every machine's last state is there, and stale.
    for machine in MACHINES:
        row = row_of(html, machine)
        assert re.search(r'class="badge state-[A-Z_]+ stale"', row) and "stale" in row
    assert "0 of 3 machines reporting" in row_of(html, "hist-line")
    assert re.search(r'data-chart="\{[^"]*&#34;bars&#34;', html), "the OEE chart's data"

    chinese = await browser.get("/ui/overview", params={"period": "30d", "lang": "zh"})
    assert '<html lang="zh-CN">' in chinese.text and "设备综合效率" in chinese.text and "已过期" in chinese.text


async def test_a_sites_key_sees_its_own_site_only(browser: httpx.AsyncClient, keys: WebKeys) -> None:
    await sign_in(browser, keys.site_auditor)
    html = (await browser.get("/ui/overview", params={"period": "7d"})).text
    assert re.findall(r'data-scope="([^"]+)"', html) == [SITE, "hist-shop", "hist-line", *MACHINES]
    reports = (await browser.get("/ui/reports")).text
    options = re.findall(r'<option value="([^"]+)"', reports)
    assert SITE in options and OTHER_SITE not in options and PARK not in options and "east-line" not in options


async def test_overview_takes_a_custom_period_of_local_days_and_refuses_a_backwards_one(
    browser: httpx.AsyncClient, keys: WebKeys, history: HistoryData
) -> None:
    await sign_in(browser, keys.auditor)
    first, end = history.baseline
    last = end - timedelta(days=1)
    page = await browser.get("/ui/overview", params={"period": "custom", "from": str(first), "to": str(last)})
    assert page.status_code == 200
    assert f"Window: {first} 00:00 CST – {end} 00:00 CST" in page.text
    backwards = await browser.get("/ui/overview", params={"period": "custom", "from": str(last), "to": str(first)})
    assert backwards.status_code == 422 and "is before the first" in backwards.text
    empty_dates = await browser.get("/ui/overview", params={"period": "24h", "from": "", "to": ""})
    assert empty_dates.status_code == 200  # what a form sends when its date fields are left empty


def report_form(history: HistoryData, **changes: str) -> dict[str, str]:
    form = {
        "lang": "en",
        "scope": SITE,
        "scheme": SCHEME,
        "baseline_first": str(history.baseline[0]),
        "baseline_last": str(history.baseline[1] - timedelta(days=1)),
        "assessment_first": str(history.assessment[0]),
        "assessment_last": str(history.assessment[1] - timedelta(days=1)),
        "report_lang": "zh",
    }
    return {**form, **changes}


async def test_report_viewer_generates_opens_and_links_every_format(
    browser: httpx.AsyncClient, keys: WebKeys, history: HistoryData
) -> None:
    await sign_in(browser, keys.auditor)
    page = await browser.get("/ui/reports", params={"lang": "en"})
    assert page.status_code == 200 and "No reports yet." in page.text
    assert f'<option value="{SITE}"' in page.text and f'<option value="{SCHEME}"' in page.text

    created = await browser.post("/ui/reports", data=report_form(history))
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    archive_id = location.split("/")[-1].split("?")[0]

    report = await browser.get(location)
    assert report.status_code == 200
    assert re.search(
        r'id="verification" class="ok"[^>]*>\s*<strong>Verification:</strong> '
        rf"verified \(key {SITE}, fingerprint [0-9a-f]{{64}}\)",
        report.text,
    )
    assert 'id="overall-verdict"' in report.text and report.text.count('class="chart"') == 4  # one per rule
    assert "Defect rate" in report.text
    assert f'src="/v1/reports/{archive_id}.html?lang=en"' in report.text
    for fmt in ("pdf", "csv", "json"):
        assert f'id="download-{fmt}" href="/v1/reports/{archive_id}.{fmt}' in report.text
    # The links work with the sign-in cookie alone.
    pdf = await browser.get(f"/v1/reports/{archive_id}.pdf", params={"lang": "en"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    listed = await browser.get("/ui/reports", params={"lang": "zh"})
    assert f'data-report="{archive_id}"' in listed.text and "已验证" in listed.text
    # The form's inclusive last day became the report's exclusive end.
    document = (await browser.get(f"/v1/reports/{archive_id}.json")).json()
    assert document["report"]["provenance"]["query"]["assessment"] == (
        f"{history.assessment[0]}/{history.assessment[1]}"
    )


async def test_the_report_form_offers_a_suggested_report_to_keys_that_may_see_it(
    site: tuple[httpx.ASGITransport, WebKeys], browser: httpx.AsyncClient, keys: WebKeys, history: HistoryData
) -> None:
    web.suggest_report(site[0].app, "hist-line", history.assessment, history.baseline, scheme=SCHEME)  # type: ignore[arg-type]
    await sign_in(browser, keys.site_auditor)
    page = (await browser.get("/ui/reports")).text
    assert '<option value="hist-line" selected>' in page and f'<option value="{SCHEME}" selected>' in page
    last = history.assessment[1] - timedelta(days=1)  # shown inclusive
    assert f'id="assessment_first" name="assessment_first" required value="{history.assessment[0]}"' in page
    assert f'id="assessment_last" name="assessment_last" required value="{last}"' in page
    await sign_in(browser, keys.other_auditor)  # not its site: the usual defaults
    assert '<option value="hist-line"' not in (await browser.get("/ui/reports")).text


async def test_report_viewer_says_why_a_report_cannot_be_generated(
    browser: httpx.AsyncClient, keys: WebKeys, history: HistoryData
) -> None:
    await sign_in(browser, keys.site_auditor)
    backwards = await browser.post(
        "/ui/reports", data=report_form(history, assessment_first="2026-01-10", assessment_last="2026-01-01")
    )
    assert backwards.status_code == 422 and "must end after it starts" in backwards.text
    half = await browser.post("/ui/reports", data=report_form(history, baseline_last=""))
    assert half.status_code == 422 and "Give the baseline" in half.text
    elsewhere = await browser.post("/ui/reports", data=report_form(history, scope="east-line"))
    assert elsewhere.status_code == 403 and "may not see" in elsewhere.text


async def test_pages_load_nothing_from_another_host(browser: httpx.AsyncClient, keys: WebKeys) -> None:
    await sign_in(browser, keys.auditor)
    for path in ("/ui/signin", "/ui/overview?period=24h", "/ui/reports"):
        html = (await browser.get(path)).text
        links = re.findall(r'(?:src|href|action)="([^"]*)"', html)
        assert links and all(link.startswith(("/", "#")) for link in links), (path, links)
    for asset, kind in (("app.css", "text/css"), ("charts.js", "javascript"), ("app.js", "javascript")):
        response = await browser.get(f"/ui/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
        text = response.text.replace('"http://www.w3.org/2000/svg"', "")  # a namespace's name, never fetched
        assert "http://" not in text and "https://" not in text
