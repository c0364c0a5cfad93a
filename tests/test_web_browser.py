"""The pages in Debian's headless Chromium, driven by Selenium, with every network but loopback cut off.

Chromium and chromedriver are Debian's (``/usr/bin/chromium``, ``/usr/bin/chromedriver``), given to
Selenium explicitly so that nothing is downloaded. The browser's proxy is a closed loopback port and
only loopback bypasses it (Chromium's default, spelled out), so any request to another host would
fail; the performance log then shows every request the pages made, and the test checks that each
went to the app on loopback.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pypdf import PdfReader
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from api.reporting import SiteKeys, verify_report_bytes
from core.stores.sqlite import SqliteStore
from factory.runtime import ApiServer
from tests.web_support import SITE, HistoryData, web_app, write_history_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; ./run does)",
)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when this returns: nothing listens there


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> HistoryData:
    return asyncio.run(write_history_store(tmp_path_factory.mktemp("web-browser")))


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    path = tmp_path / "downloads"
    path.mkdir()
    return path


@pytest.fixture
def driver(downloads: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        f"--proxy-server=127.0.0.1:{closed_port()}",
        # Loopback bypasses a proxy by default; "<-loopback>" would remove that and cut the app off too.
        "--proxy-bypass-list=127.0.0.1;localhost;[::1]",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield browser
    finally:
        browser.quit()


def wait_for(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {condition}")


def requested_urls(driver: WebDriver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def set_value(driver: WebDriver, element_id: str, value: str) -> None:
    driver.execute_script("document.getElementById(arguments[0]).value = arguments[1];", element_id, value)


def drive(driver: WebDriver, base: str, key: str, history: HistoryData, downloads: Path) -> list[str]:
    """Sign in, look at the overview, generate a report, open it, download its PDF and JSON."""
    urls: list[str] = []
    driver.get(base + "/")
    wait = WebDriverWait(driver, 20)
    wait.until(lambda d: d.find_elements(By.ID, "key"))
    assert driver.current_url.startswith(base + "/ui/signin")
    driver.find_element(By.ID, "key").send_keys("a-wrong-key-0123456789")
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait.until(lambda d: d.find_elements(By.ID, "key-error"))
    assert "not valid" in driver.find_element(By.ID, "key-error").text
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait.until(lambda d: d.find_elements(By.ID, "overview-table"))
    # The cookie is out of the page's reach (HttpOnly).
    assert driver.execute_script("return document.cookie") == ""

    # Overview: last 7 days, numbers for every node, the OEE chart drawn by the local script.
    Select(driver.find_element(By.ID, "period")).select_by_value("7d")
    assert not driver.find_element(By.CSS_SELECTOR, "[data-show-for=custom]").is_displayed()
    driver.find_element(By.CSS_SELECTOR, "#period-form button").click()
    wait.until(lambda d: "period=7d" in d.current_url)
    rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#overview-table tbody tr"))
    assert len(rows) == 11  # the park, two sites, their workshops, lines and machines
    for row in rows[:7]:  # the park, hist-site down to its machines: two weeks of history
        oee = row.find_elements(By.CSS_SELECTOR, "td.num")[0].text
        assert oee.endswith("%") and 30 < float(oee.rstrip(" %")) < 95, row.text
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".chart svg.bar-chart rect"))
    assert "stale" in rows[6].text
    withheld = rows[-1].find_elements(By.CSS_SELECTOR, "td.status-insufficient_evidence")
    assert withheld and all(c.text.startswith("—") and c.get_attribute("title") for c in withheld)
    driver.set_window_size(800, 1000)  # a tablet: the wide table scrolls in its frame, the page does not
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    driver.set_window_size(1280, 1000)
    urls += requested_urls(driver)

    # Language switch, then the report viewer in Chinese.
    driver.find_element(By.ID, "switch-lang").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN")
    assert "设备综合效率" in driver.page_source
    driver.get(base + "/ui/reports?lang=zh")
    Select(driver.find_element(By.ID, "scope")).select_by_value(SITE)
    last = lambda end: end.fromordinal(end.toordinal() - 1).isoformat()  # noqa: E731
    set_value(driver, "baseline_first", history.baseline[0].isoformat())
    set_value(driver, "baseline_last", last(history.baseline[1]))
    set_value(driver, "assessment_first", history.assessment[0].isoformat())
    set_value(driver, "assessment_last", last(history.assessment[1]))
    Select(driver.find_element(By.ID, "report_lang")).select_by_value("en")
    driver.find_element(By.ID, "generate").click()
    wait.until(lambda d: d.find_elements(By.ID, "verification"))

    # The report: verified with the site key's fingerprint, verdicts, numbers, charts.
    verification = driver.find_element(By.ID, "verification").text
    assert "已验证" in verification and SITE in verification, verification
    verdicts = {"通过", "未通过", "证据不足"}
    assert driver.find_element(By.ID, "overall-verdict").text in verdicts
    rule_rows = driver.find_elements(By.CSS_SELECTOR, "#rules tbody tr")
    assert rule_rows
    judged = 0
    for row in rule_rows:
        cells = row.find_elements(By.TAG_NAME, "td")
        verdict = cells[-1].text.split()[0]
        assert verdict in verdicts, row.text
        if verdict != "证据不足":  # a pass or a fail rests on both periods' numbers, shown
            judged += 1
            assert all(c.text not in ("", "—") for c in cells[:2]), row.text
    assert judged >= 2, "efficiency and defect rate are judged on two weeks of history"
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".charts svg")) >= len(rule_rows))
    urls += requested_urls(driver)

    # On a tablet the page still fits: wide tables scroll inside their frame, the page does not.
    driver.set_window_size(800, 1000)
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    driver.set_window_size(1280, 1000)

    # The HTML rendering, embedded: its own charts and verdicts.
    driver.switch_to.frame(driver.find_element(By.ID, "rendering"))
    wait.until(lambda d: d.find_elements(By.TAG_NAME, "svg"))
    framed = driver.find_element(By.TAG_NAME, "body").text
    assert any(v in framed for v in verdicts), framed[:500]
    driver.switch_to.default_content()

    # Downloads: the PDF and the signed JSON.
    driver.find_element(By.ID, "download-pdf").click()
    driver.find_element(By.ID, "download-json").click()
    wait_for(lambda: len([p for p in downloads.iterdir() if not p.name.endswith(".crdownload")]) == 2)
    urls += requested_urls(driver)
    return urls


async def test_sign_in_overview_generate_open_and_download_with_the_network_cut_off(
    history: HistoryData, driver: WebDriver, downloads: Path, tmp_path: Path
) -> None:
    store = SqliteStore(history.store_path)
    try:
        app, keys, settings = web_app(history, store, tmp_path)
        async with ApiServer(app, "127.0.0.1", 0) as server:
            base = f"http://127.0.0.1:{server.port}"
            urls = await asyncio.to_thread(drive, driver, base, keys.auditor, history, downloads)
    finally:
        await store.close()

    hosts = {urlsplit(u).hostname for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts and hosts <= LOOPBACK, hosts
    assert any(u.endswith("/ui/static/charts.js") for u in urls)

    files = {p.suffix: p for p in downloads.iterdir()}  # noqa: ASYNC240 (the test's own temporary files)
    pdf, signed = files[".pdf"], files[".json"]
    # pypdf may space out CJK glyphs (and break lines anywhere): compare without whitespace and NULs.
    text = "".join("".join(page.extract_text() or "" for page in PdfReader(pdf).pages).replace("\x00", "").split())
    verification = verify_report_bytes(signed.read_bytes(), SiteKeys(settings.reports.keys_dir).public(SITE))
    assert verification.ok and verification.report is not None
    assert verification.report.scope == SITE and verification.report.language == "en"
    # The PDF (downloaded from the Chinese page, so in Chinese) states every rule's verdict and the overall one.
    words = {"pass": "通过", "fail": "未通过", "insufficient_evidence": "证据不足"}
    for verdict in [verification.report.verdict, *(r.verdict for r in verification.report.rules)]:
        assert words[verdict] in text, verdict
    (archived,) = (tmp_path / "reports").iterdir()
    assert signed.read_bytes() == archived.read_bytes()
