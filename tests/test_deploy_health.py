"""``factory healthcheck --service S``: the compose healthchecks say whether a service works.

The services run as the containers run them (``factory ingest|kpi|api`` subprocesses with
``FACTORY_HEARTBEAT_FILE`` set) against a real Mosquitto and a real InfluxDB; the healthcheck turns
unhealthy, naming the link, when the broker or the store goes away.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from paho.mqtt import publish

from core.wire import format_ts
from factory.health import judge_health_file, write_health_file
from tests.servers import InfluxServer, free_port, influxdb, mosquitto, stop_process

REPO = Path(__file__).resolve().parent.parent
NOW = 1_800_000_000.0


def health_file(tmp_path: Path, links: dict[str, bool], age_s: float = 0.0) -> Path:
    path = tmp_path / "health.json"
    write_health_file(path, links)
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def test_fresh_file_with_every_link_up_is_healthy(tmp_path: Path) -> None:
    verdict = judge_health_file(health_file(tmp_path, {"broker": True, "store": True}, 3), "ingest", 30, now=NOW)
    assert verdict.healthy and verdict.reason == "broker up, store up; updated 3s ago"


def test_a_link_down_is_unhealthy_and_named(tmp_path: Path) -> None:
    verdict = judge_health_file(health_file(tmp_path, {"broker": False, "store": True}), "ingest", 30, now=NOW)
    assert not verdict.healthy and verdict.reason.startswith("broker down")


def test_a_stale_file_is_a_stuck_service(tmp_path: Path) -> None:
    verdict = judge_health_file(health_file(tmp_path, {"store": True}, age_s=45), "kpi", 30, now=NOW)
    assert not verdict.healthy and "45s old" in verdict.reason and "stuck" in verdict.reason


def test_a_service_that_does_not_report_a_link_it_must_have_is_unhealthy(tmp_path: Path) -> None:
    verdict = judge_health_file(health_file(tmp_path, {"store": True}), "ingest", 30, now=NOW)
    assert not verdict.healthy and verdict.reason == "ingest does not report its broker link (reports: ['store'])"


def test_missing_or_foreign_file_is_unhealthy(tmp_path: Path) -> None:
    assert "missing" in judge_health_file(tmp_path / "nothing", "kpi", 30).reason
    (tmp_path / "junk").write_text("[1, 2")
    assert "not the JSON" in judge_health_file(tmp_path / "junk", None, 30).reason


# --- the services themselves ---------------------------------------------------------------------


def settings_file(tmp_path: Path, broker_port: int, influx_url: str, api_port: int) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(
        json.dumps(
            {
                "assets": str(REPO / "config" / "factory.yaml"),
                "broker": {"host": "127.0.0.1", "port": broker_port},
                "store": {"kind": "influxdb", "influx_url": influx_url, "influx_database": "health"},
                "ingest": {"dead_letter_path": str(tmp_path / "dl.sqlite"), "client_id": f"ingest-{uuid.uuid4().hex}"},
                "kpi": {"interval_s": 1},
                "api": {"host": "127.0.0.1", "port": api_port, "keys_path": str(tmp_path / "keys.sqlite")},
            }
        )
    )
    return path


@contextlib.contextmanager
def service(name: str, config: Path, tmp_path: Path, command: Sequence[str] = ()) -> Iterator[Path]:
    """``factory <name>`` (or ``factory <command>``) as its container runs it; yields its health file."""
    heartbeat = tmp_path / f"{name}.health"
    log = (tmp_path / f"{name}.log").open("w")
    env = {**os.environ, "FACTORY_HEARTBEAT_FILE": str(heartbeat)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "factory.cli", *(command or [name]), "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        yield heartbeat
    finally:
        stop_process(proc, timeout_s=15)
        log.close()


def healthcheck(name: str, heartbeat: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACTORY_HEARTBEAT_FILE": str(heartbeat)}
    command = [sys.executable, "-m", "factory.cli", "healthcheck", "--service", name, "--config", str(config)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)


def until(name: str, heartbeat: Path, config: Path, healthy: bool, within_s: float = 40) -> str:
    deadline = time.monotonic() + within_s
    while True:
        result = healthcheck(name, heartbeat, config)
        if (result.returncode == 0) == healthy:
            return result.stdout + result.stderr
        if time.monotonic() > deadline:
            log = (heartbeat.parent / f"{name}.log").read_text()[-2000:]
            pytest.fail(f"{name} not {'healthy' if healthy else 'unhealthy'}: {result.stderr}\n{log}")
        time.sleep(1)


def test_ingest_is_healthy_while_subscribed_and_not_once_the_broker_is_gone(
    tmp_path: Path, influx_server: InfluxServer
) -> None:
    url = influx_server.url
    with mosquitto(tmp_path / "mosquitto") as broker:
        config = settings_file(tmp_path, broker.port, url, free_port())
        with service("ingest", config, tmp_path) as heartbeat:
            assert "broker up, store up" in until("ingest", heartbeat, config, healthy=True)
            broker.proc.terminate()
            broker.proc.wait(timeout=10)
            assert "unhealthy: broker down" in until("ingest", heartbeat, config, healthy=False)


def test_ingest_is_unhealthy_once_a_write_finds_the_store_gone(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "mosquitto") as broker, influxdb(tmp_path / "influxdb") as store:
        config = settings_file(tmp_path, broker.port, store.url, free_port())
        with service("ingest", config, tmp_path) as heartbeat:
            assert "broker up, store up" in until("ingest", heartbeat, config, healthy=True)
            store.proc.terminate()
            store.proc.wait(timeout=10)
            sample = {"equipment": "cnc-01", "signal": "parts_total", "ts": format_ts(datetime.now(UTC)), "value": 1}
            batch = json.dumps({"v": 1, "edge": "gw-1", "seq": 0, "samples": [sample]})
            publish.single("factory/uplink/gw-1", batch, qos=1, hostname="127.0.0.1", port=broker.port)
            assert "unhealthy: store down" in until("ingest", heartbeat, config, healthy=False)


def test_kpi_and_api_are_healthy_while_they_reach_the_store_and_not_once_it_is_gone(tmp_path: Path) -> None:
    with influxdb(tmp_path / "influxdb") as store:
        config = settings_file(tmp_path, free_port(), store.url, free_port())
        with service("kpi", config, tmp_path) as kpi, service("api", config, tmp_path) as api:
            assert "store up" in until("kpi", kpi, config, healthy=True)
            assert "/healthz: ok" in until("api", api, config, healthy=True)
            store.proc.terminate()
            store.proc.wait(timeout=10)
            assert "unhealthy: store down" in until("kpi", kpi, config, healthy=False)
            assert "/healthz answered 503" in until("api", api, config, healthy=False)


def test_the_dashboard_feed_is_healthy_while_its_rounds_write_and_not_once_the_store_is_gone(tmp_path: Path) -> None:
    with influxdb(tmp_path / "influxdb") as store:
        config = settings_file(tmp_path, free_port(), store.url, free_port())
        feed = ["grafana", "feed", "--days", "1", "--every", "2"]  # compose's, with rounds 2 s apart
        with service("dashboard-feed", config, tmp_path, feed) as heartbeat:
            assert "store up" in until("dashboard-feed", heartbeat, config, healthy=True)
            store.proc.terminate()
            store.proc.wait(timeout=10)
            assert "unhealthy: store down" in until("dashboard-feed", heartbeat, config, healthy=False)
