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
from typing import IO

import httpx
import pytest

from tests.conftest import REPO
from tests.servers import InfluxServer, MosquittoServer, free_port

pytestmark = pytest.mark.integration


def _demo_config(tmp_path: Path) -> Path:
    text = (REPO / "config" / "demo.yaml").read_text()
    text = text.replace("assets: factory.yaml", f"assets: {REPO / 'config' / 'factory.yaml'}")
    text = text.replace("energy_factors: energy.yaml", f"energy_factors: {REPO / 'config' / 'energy.yaml'}")
    text = text.replace("../var/demo/", f"{tmp_path}/")
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return path


def _start_demo(tmp_path: Path, log: IO[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY")} | (extra_env or {})
    command = [sys.executable, "-m", "factory.cli", "demo", "--config", str(_demo_config(tmp_path))]
    return subprocess.Popen(
        [*command, "--api-port", "0", "--duration", "150"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
    )


def _banner(demo: subprocess.Popen[bytes], log: IO[str], within_s: float = 60) -> tuple[str, str, str, str]:
    """(API url, key, window start, MQTT line) from the banner the demo prints once everything runs."""
    deadline = time.monotonic() + within_s
    while True:
        text = Path(log.name).read_text()
        assert demo.poll() is None, text[-3000:]
        found = re.search(r"API\s+(http://\S+).*?API key\s+(\S+).*?MQTT\s+([^\n]+).*?start=(\S+?)'", text, re.S)
        if found:
            url, key, mqtt, since = found.groups()
            return url, key, since, mqtt
        assert time.monotonic() < deadline, f"no banner within {within_s} s"
        time.sleep(0.5)


def _offered(page: str) -> dict[str, str]:
    """The values the report form offers: its selected options and its date fields."""
    offered = {}
    for name in ("scope", "scheme"):
        select = re.search(rf'<select id="{name}" name="{name}">(.*?)</select>', page, re.S)
        assert select, name
        chosen = re.search(r'<option value="([^"]+)" selected>', select.group(1))
        assert chosen, f"nothing offered for {name}"
        offered[name] = chosen.group(1)
    for name in ("baseline_first", "baseline_last", "assessment_first", "assessment_last"):
        field = re.search(rf'id="{name}" name="{name}"[^>]*value="([^"]*)"', page)
        assert field and field.group(1), name
        offered[name] = field.group(1)
    return offered


def _stop_with_ctrl_c(demo: subprocess.Popen[bytes], log: IO[str]) -> str:
    demo.send_signal(signal.SIGINT)
    assert demo.wait(timeout=30) == 0
    output = Path(log.name).read_text()
    assert "Traceback" not in output, output[-3000:]
    assert "stopping the demo" in output
    return output


def test_demo_serves_a_non_trivial_oee_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    log = (tmp_path / "demo.log").open("w+")
    demo = _start_demo(tmp_path, log)
    try:
        deadline = time.monotonic() + 60
        url, key, since, mqtt = _banner(demo, log)
        assert "embedded" in mqtt
        # The admin key is kept for the next run in a file only this user can read.
        key_file = tmp_path / "demo-admin.key"
        assert key_file.read_text().strip() == key and key_file.stat().st_mode & 0o077 == 0
        assert f"kept in {key_file}" in Path(log.name).read_text()
        # Before anything else: the web page and the key to sign in with; and it works.
        first = Path(log.name).read_text().splitlines()[0]
        assert first == f"Open {url}/ in a browser and sign in with the key {key}"
        with httpx.Client(base_url=url, timeout=60) as browser:
            assert browser.get("/").headers["location"].startswith("/ui/signin")
            assert browser.post("/ui/signin", data={"key": key}).status_code == 303
            overview = browser.get("/ui/overview")
            assert overview.status_code == 200 and 'data-scope="cq-demo"' in overview.text
            # A newcomer's first report: the form offers the weeks of the demo's history; generated as offered,
            # it is verified and the pilot targets pass (the history was made with that improvement).
            form = _offered(browser.get("/ui/reports").text)
            assert form["scope"] == "cq-demo" and form["scheme"] == "cq-13fyp-pilot-targets", form
            created = browser.post("/ui/reports", data={**form, "lang": "en", "report_lang": "en"})
            assert created.status_code == 303, created.text
            report = browser.get(created.headers["location"]).text
            assert re.search(r'id="verification" class="ok"', report), report[-3000:]
            assert 'id="overall-verdict">Pass<' in report, re.findall(r"verdict-\w+\">[^<]+<", report)
            archive_id = created.headers["location"].split("/")[-1].split("?")[0]
            pdf = browser.get(f"/v1/reports/{archive_id}.pdf", params={"lang": "zh"})
            assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert (tmp_path / "keys" / "cq-demo.pem").is_file() and (tmp_path / "keys" / "cq-park.pub").is_file()

        oee = None
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=10) as client:
            while oee is None and time.monotonic() < deadline + 40:
                time.sleep(3)
                report = client.get("/v1/kpi", params={"scope": "cq-demo", "start": since}).json()
                value = next(k for k in report["kpis"] if k["key"] == "oee")
                if value["status"] == "ok" and report["base"]["parts_produced"] > 0:
                    oee = value["value"]
            assert client.get("/v1/kpi", params={"scope": "cq-demo"}, headers={"X-API-Key": ""}).status_code == 401
            assert client.get("/docs").status_code == 200
        assert oee is not None and 0 < oee < 1, Path(log.name).read_text()[-3000:]
        _stop_with_ctrl_c(demo, log)
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


def test_demo_runs_on_a_real_broker_and_influxdb_by_config(
    tmp_path: Path, mosquitto_server: MosquittoServer, influx_server: InfluxServer, influx_database: str
) -> None:
    log = (tmp_path / "demo.log").open("w+")
    demo = _start_demo(
        tmp_path,
        log,
        {
            "FACTORY__DEMO__EMBEDDED_BROKER": "false",
            "FACTORY__BROKER__PORT": str(mosquitto_server.port),
            "FACTORY__STORE__KIND": "influxdb",
            "FACTORY__STORE__INFLUX_URL": influx_server.url,
            "FACTORY__STORE__INFLUX_DATABASE": influx_database,
        },
    )
    try:
        url, _, _, mqtt = _banner(demo, log)
        assert mqtt.startswith(f"127.0.0.1:{mosquitto_server.port} (external)")
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{url}/healthz").json()["store"] == {"backend": "influxdb", "ok": True}
            # The samples reached InfluxDB, so they went through Mosquitto: no other broker runs.
            deadline = time.monotonic() + 40
            series: list[object] = []
            while not series:
                assert time.monotonic() < deadline, "no part counters in InfluxDB within 40 s"
                time.sleep(2)
                result = client.get(
                    f"{influx_server.url}/query",
                    params={"db": influx_database, "q": 'SELECT count(*) FROM "part_counter"'},
                ).json()["results"][0]
                series = result.get("series", [])
        output = _stop_with_ctrl_c(demo, log)
        assert "embedded MQTT broker" not in output
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        log.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"FACTORY__DEMO__EMBEDDED_BROKER": "false", "FACTORY__BROKER__PORT": "{port}"},
            "cannot start: MQTT broker 127.0.0.1:{port} does not answer",
        ),
        (
            {"FACTORY__STORE__KIND": "influxdb", "FACTORY__STORE__INFLUX_URL": "http://127.0.0.1:{port}"},
            "cannot start: influxdb store does not answer",
        ),
    ],
    ids=["broker", "store"],
)
def test_demo_stops_at_start_when_a_configured_server_does_not_answer(
    tmp_path: Path, settings: dict[str, str], message: str
) -> None:
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY")}
    result = subprocess.run(
        [sys.executable, "-m", "factory.cli", "demo", "--config", str(_demo_config(tmp_path)), "--api-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env | {key: value.format(port=port) for key, value in settings.items()},
    )
    assert result.returncode == 1, result.stderr
    assert message.format(port=port) in result.stderr
    assert "Traceback" not in result.stderr
