"""``factory simulator`` from the command line: scenario, speed, ground-truth dumps, and broken scenarios."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from core.settings import EdgeSettings
from tests.servers import MosquittoServer, free_port

REPO = Path(__file__).resolve().parent.parent
SMALL = REPO / "config" / "scenarios" / "small.yaml"


def factory(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "factory.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.integration
def test_the_simulator_runs_a_scenario_accelerated_and_dumps_its_ground_truth(
    tmp_path: Path, mosquitto_server: MosquittoServer
) -> None:
    scenario = yaml.safe_load(SMALL.read_text())
    scenario["assets"] = str(SMALL.parent / scenario["assets"])
    scenario["opcua"]["machines_per_server"] = 3  # one server, one free port
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    (tmp_path / "settings.yaml").write_text(
        f"assets: {scenario['assets']}\n"
        f"broker: {{host: {mosquitto_server.host}, port: {mosquitto_server.port}}}\n"
        f"simulator: {{host: 127.0.0.1, base_port: {free_port()}}}\n"
    )
    proc = factory(
        "simulator", "--config", "settings.yaml", "--scenario", "scenario.yaml", "--speed", "5",
        "--ground-truth", "out/truth.json", "--ground-truth-interval", "0.5", "--edge-config", "out/edge.yaml",
        cwd=tmp_path,
    )  # fmt: skip
    truth_file = tmp_path / "out" / "truth.json"
    try:
        deadline = time.monotonic() + 30
        while not truth_file.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "no periodic ground-truth dump"
            time.sleep(0.2)
        time.sleep(1.5)
        running = json.loads(truth_file.read_text())  # written atomically: always whole
        assert running["speed"] == 5.0 and running["frozen_at"] is None
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
    final = json.loads(truth_file.read_text())
    assert final["written_at"] >= running["written_at"]
    assert set(final["equipment"]) == {"cnc-s1", "cnc-s2", "robot-s1", "meter-s1", "meter-s2", "gas-s1", "water-s1"}
    assert final["totals"]["parts"]["total"] > 0
    edge = EdgeSettings(id="gw-1", **yaml.safe_load((tmp_path / "out" / "edge.yaml").read_text()))
    assert len({s.endpoint for s in edge.opcua}) == 1 and len(edge.meters) == 4


def test_a_broken_scenario_stops_the_simulator_at_start_naming_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text(
        f"assets: {SMALL.parent / 'small-assets.yaml'}\ndefaults:\n  quality:\n    scrap_probability: 1.5\n"
    )
    (tmp_path / "settings.yaml").write_text(f"assets: {SMALL.parent / 'small-assets.yaml'}\n")
    proc = factory("simulator", "--config", "settings.yaml", "--scenario", "scenario.yaml", cwd=tmp_path)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 2, output
    assert "scenario.yaml:4: defaults.quality.scrap_probability: Input should be less than 1" in output
