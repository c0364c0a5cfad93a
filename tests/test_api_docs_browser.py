"""``/docs`` renders in a real browser with no route to the internet, and asks for nothing remote.

A static check of the HTML is not enough: Swagger UI 4 loads fine from local files and then shows
"unable to render this definition" for FastAPI's OpenAPI 3.1; only a browser sees the operations.

Debian's chromium and chromedriver (never a downloaded browser) load the page from the API served
by uvicorn on loopback. Every address outside loopback goes to a proxy that does not exist, so a
CDN script could not load; the browser's network log must show loopback addresses only.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from api.app import create_app
from api.keys import KeyStore
from core.settings import Settings
from core.stores.sqlite import SqliteStore
from factory.runtime import ApiServer
from tests.conftest import REPO
from tests.test_kpi_engine import ASSETS

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (./run test installs them)"
)


def _render_docs(url: str) -> tuple[list[str], list[str]]:
    """(operations shown, every URL the browser requested) for the docs page at ``url``."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch anything either
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    # Loopback bypasses proxies; everything else goes to a closed port: the internet is cut off.
    options.add_argument("--proxy-server=http://127.0.0.1:9")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(url)
        WebDriverWait(driver, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 3)
        shown = [e.text.replace("\n", " ") for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary")]
        requested = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                requested.append(message["params"]["request"]["url"])
        return shown, requested
    finally:
        driver.quit()


async def test_docs_render_offline_from_local_assets(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite")
    app = create_app(
        Settings(assets=REPO / "config" / "factory.yaml"), store, ASSETS, KeyStore(tmp_path / "keys.sqlite")
    )
    try:
        async with ApiServer(app, "127.0.0.1", 0) as server:
            base = f"http://127.0.0.1:{server.port}"
            shown, requested = await asyncio.to_thread(_render_docs, f"{base}/docs")
    finally:
        await store.close()
    assert any("/v1/kpi" in op for op in shown), shown
    assert any("/v1/keys" in op for op in shown), shown
    assert f"{base}/docs-assets/swagger-ui-bundle.js" in requested
    remote = [url for url in requested if not url.startswith((base, "data:", "blob:"))]
    assert remote == [], remote
