"""deploy/influxdb/init/10-factory.sh: the DBRP mapping and one v1 authorization per client.

No InfluxDB 2.x can be installed here (Debian ships 1.x), so the script runs against a stand-in for
the ``influx`` CLI that records its arguments: this checks what the script asks for (which flags,
which bucket, which password for whom) and that it refuses to run without the passwords. That the
2.x CLI takes these flags is from its documentation (``influx v1 dbrp create``, ``influx v1 auth
create``); docs/operations.md says how to check the result on a running stack.
"""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "deploy" / "influxdb" / "init" / "10-factory.sh"
PASSWORDS = {
    "INFLUX_INGEST_PASSWORD": "ingest-password-0123456789",
    "INFLUX_KPI_PASSWORD": "kpi-password-0123456789",
    "INFLUX_API_PASSWORD": "api-password-0123456789",
    "INFLUX_GRAFANA_PASSWORD": "grafana-password-0123456789",
}


def run(tmp_path: Path, **overrides: str) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    influx = bin_dir / "influx"
    influx.write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done >> {shlex.quote(str(calls))}\necho >> {calls}\n'
    )
    influx.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DOCKER_INFLUXDB_INIT_BUCKET_ID": "0a1b2c3d4e5f6a7b",
        "DOCKER_INFLUXDB_INIT_ORG": "factory",
        "DOCKER_INFLUXDB_INIT_BUCKET": "factory",
        **PASSWORDS,
        **overrides,
    }
    result = subprocess.run(["/bin/sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
    recorded = calls.read_text().split("\n") if calls.exists() else []
    return result, [line.strip("\0").split("\0") for line in recorded if line]


def flags(call: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in itertools.pairwise(call):
        if name.startswith("--"):
            found.setdefault(name, []).append(value)
    return found


def test_maps_the_database_and_makes_one_least_privilege_authorization_per_client(tmp_path: Path) -> None:
    result, calls = run(tmp_path)
    assert result.returncode == 0, result.stderr
    dbrp, *auths = calls
    assert dbrp[:3] == ["v1", "dbrp", "create"] and "--default" in dbrp
    assert {k: flags(dbrp)[k] for k in ("--bucket-id", "--db", "--rp")} == {
        "--bucket-id": ["0a1b2c3d4e5f6a7b"], "--db": ["factory"], "--rp": ["autogen"]
    }  # fmt: skip
    granted = {}
    for call in auths:
        assert call[:3] == ["v1", "auth", "create"]
        given = flags(call)
        user = given["--username"][0]
        assert given["--password"] == [PASSWORDS[f"INFLUX_{user.upper()}_PASSWORD"]]
        granted[user] = {name for name in given if name.endswith("-bucket")}
        assert all(given[name] == ["0a1b2c3d4e5f6a7b"] for name in granted[user])
    assert granted == {
        "ingest": {"--write-bucket"},
        "kpi": {"--read-bucket", "--write-bucket"},
        "api": {"--read-bucket"},
        "grafana": {"--read-bucket"},
    }
    assert PASSWORDS["INFLUX_KPI_PASSWORD"] not in result.stdout + result.stderr  # passwords never printed


@pytest.mark.parametrize("password", ["", "short"])
def test_refuses_a_missing_or_short_password(tmp_path: Path, password: str) -> None:
    result, calls = run(tmp_path, INFLUX_API_PASSWORD=password)
    assert result.returncode == 1
    assert "INFLUX_API_PASSWORD is unset or shorter than 16 characters: run 'factory deploy init'" in result.stderr
    assert all(flags(call).get("--username") != ["api"] for call in calls)
