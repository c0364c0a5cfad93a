"""deploy/systemd/factory-edge.service: runs what docs/gateway.md says, hardened, and systemd accepts it."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from factory.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "deploy" / "systemd" / "factory-edge.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(UNIT)
    return parser


def test_unit_runs_the_agent_as_its_own_user_with_its_state_directory_and_restarts() -> None:
    service = unit()["Service"]
    assert service["User"] == service["Group"] == "factory-edge"
    assert service["StateDirectory"] == "factory-edge"
    assert service["Restart"] == "always"
    assert service["RestartPreventExitStatus"] == "2"  # factory's exit status for a configuration error
    command = service["ExecStart"].split()
    assert command[0].endswith("/factory") and command[1:3] == ["edge", "run"]
    # The command line is one the CLI accepts.
    args = build_parser().parse_args([*command[1:3], "--config", "/etc/factory-edge/edge.yaml"])
    assert (args.command, args.action) == ("edge", "run")
    assert "check-config" in service["ExecStartPre"]


def test_unit_is_hardened() -> None:
    service = unit()["Service"]
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "UMask": "0077",
    }
    assert {key: service.get(key) for key in expected} == expected


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit() -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60, check=False
    )
    # The one complaint allowed here: the executable is not installed on this machine.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line and "No such file" not in line
    ]
    assert problems == []
