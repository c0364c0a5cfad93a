"""The README's first command: `factory demo` serves a non-trivial OEE and stops cleanly.

The demo runs as a real subprocess on a copy of config/demo.yaml whose data lives in a temp dir;
ports that are taken are replaced by free ones, so the test does not collide with anything.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def _demo_config(tmp_path: Path) -> Path:
    text = (REPO / "config" / "demo.yaml").read_text()
    text = text.replace("assets: factory.yaml", f"assets: {REPO / 'config' / 'factory.yaml'}")
    text = text.replace("../var/demo/", f"{tmp_path}/")
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return path


def test_demo_serves_a_non_trivial_oee_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY")}
    log = (tmp_path / "demo.log").open("w+")
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "factory.cli",
            "demo",
            "--config",
            str(_demo_config(tmp_path)),
            "--api-port",
            "0",
            "--duration",
            "150",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        banner = None
        while banner is None:
            assert demo.poll() is None, Path(log.name).read_text()[-3000:]
            assert time.monotonic() < deadline, "no banner within 60 s"
            banner = re.search(
                r"API\s+(http://\S+).*?API key\s+(\S+).*?start=(\S+?)'", Path(log.name).read_text(), re.S
            )
            time.sleep(0.5)
        url, key, since = banner.groups()

        oee = None
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=10) as client:
            while oee is None and time.monotonic() < deadline + 40:
                time.sleep(3)
                report = client.get("/v1/kpi", params={"scope": "cq-demo", "start": since}).json()
                value = next(k for k in report["kpis"] if k["key"] == "oee")
                if value["status"] == "ok" and report["base"]["parts_produced"] > 0:
                    oee = value["value"]
            assert client.get("/v1/kpi", params={"scope": "cq-demo"}, headers={"X-API-Key": ""}).status_code == 401
        assert oee is not None and 0 < oee < 1, Path(log.name).read_text()[-3000:]
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=30) == 0
        output = Path(log.name).read_text()
        assert "Traceback" not in output, output[-3000:]
        assert "stopping the demo" in output
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        log.close()


def test_demo_refuses_a_broken_scenario_before_starting_anything(tmp_path: Path) -> None:
    scenario = tmp_path / "broken.yaml"
    scenario.write_text("version: 1\nassets: nowhere.yaml\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "factory.cli",
            "demo",
            "--config",
            str(_demo_config(tmp_path)),
            "--scenario",
            str(scenario),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert str(scenario) in result.stderr and "configuration error" in result.stderr
    assert "listening" not in result.stderr
