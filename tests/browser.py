"""Debian's headless Chromium driven by Selenium, with the network cut off.

No step downloads a browser or a driver: both paths are given explicitly (``/usr/bin/chromium`` and
``/usr/bin/chromedriver``, Debian's ``chromium`` and ``chromium-driver``) and Selenium Manager is
told to stay offline. Every request the page might make goes to a proxy on a loopback port that
nothing listens on, so a page that needs the network shows it by failing.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def closed_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_chromium() -> None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(path)):
            pytest.skip(f"{path} is not installed (Debian packages chromium and chromium-driver; ./run installs them)")


@contextmanager
def offline_chromium(width: int = 1280, height: int = 1600) -> Iterator[object]:
    """A headless Chromium whose only way out is a closed loopback port."""
    require_chromium()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        f"--proxy-server=http://127.0.0.1:{closed_loopback_port()}",
        "--proxy-bypass-list=<-loopback>",  # loopback goes through the (closed) proxy too, unless a test opens it
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
