"""``factory deploy init|add-edge``: random secrets, private files, never overwritten by accident."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from factory.cli import main
from factory.deploy_files import ENV_SECRETS, parse_env_file


def passwd_users(root: Path) -> list[str]:
    return [line.split(":", 1)[0] for line in (root / "secrets/mosquitto/passwd").read_text().splitlines()]


def test_init_draws_a_distinct_random_secret_for_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "init", "--dir", str(tmp_path), "--edges", "gw-1, gw-2,gw-1"]) == 0
    env = parse_env_file((tmp_path / ".env").read_text())
    assert list(env) == [secret.name for secret in ENV_SECRETS]
    assert len(set(env.values())) == len(env) and all(len(value) >= 43 for value in env.values())
    assert passwd_users(tmp_path) == ["ingest", "healthcheck", "gw-1", "gw-2"]
    for path in (".env", "secrets/mosquitto/passwd", "secrets/mosquitto/acl", "secrets/edges/gw-1.env"):
        assert (tmp_path / path).stat().st_mode & 0o777 == 0o600, path
    gateway = parse_env_file((tmp_path / "secrets/edges/gw-2.env").read_text())
    assert gateway["FACTORY__BROKER__USERNAME"] == "gw-2" and gateway["FACTORY_BROKER_PASSWORD"] not in env.values()
    assert "wrote" in capsys.readouterr().out

    again = parse_env_file((tmp_path / ".env").read_text())
    assert main(["deploy", "init", "--dir", str(tmp_path / "other")]) == 0
    assert parse_env_file((tmp_path / "other" / ".env").read_text()).values() != again.values()


def test_init_never_overwrites_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "init", "--dir", str(tmp_path)]) == 0
    before = (tmp_path / ".env").read_text()
    assert main(["deploy", "init", "--dir", str(tmp_path)]) == 1
    assert "exists; keep it, or pass --force" in capsys.readouterr().err
    assert (tmp_path / ".env").read_text() == before
    assert main(["deploy", "init", "--dir", str(tmp_path), "--force"]) == 0
    assert (tmp_path / ".env").read_text() != before


def test_simulated_adds_the_simulator_and_its_edge_with_their_env_passwords(tmp_path: Path) -> None:
    assert main(["deploy", "init", "--dir", str(tmp_path), "--simulated"]) == 0
    assert passwd_users(tmp_path) == ["ingest", "healthcheck", "simulator", "gw-machining"]
    acl = (tmp_path / "secrets/mosquitto/acl").read_text()
    assert "user simulator\ntopic write meters/#\n" in acl
    assert "user gw-machining\ntopic write factory/uplink/gw-machining\ntopic read meters/#\n" in acl
    assert not (tmp_path / "secrets/edges").exists()  # its password is in .env, for its container


@pytest.mark.parametrize("edge", ["ingest", "gw/1", "gw+", "#", "a b", "-gw"])
def test_edge_ids_that_cannot_be_a_broker_user_and_topic_level_are_refused(
    tmp_path: Path, edge: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", "init", "--dir", str(tmp_path), f"--edges={edge}"]) == 1
    assert f"edge id {edge!r}" in capsys.readouterr().err
    assert not (tmp_path / ".env").exists()


def test_add_edge_adds_a_gateway_and_keeps_every_other_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", "init", "--dir", str(tmp_path), "--edges", "gw-1"]) == 0
    env_before = (tmp_path / ".env").read_text()
    passwd_before = (tmp_path / "secrets/mosquitto/passwd").read_text()
    assert main(["deploy", "add-edge", "--dir", str(tmp_path), "gw-2,gw-3"]) == 0
    assert (tmp_path / ".env").read_text() == env_before
    assert (tmp_path / "secrets/mosquitto/passwd").read_text().startswith(passwd_before)
    assert passwd_users(tmp_path) == ["ingest", "healthcheck", "gw-1", "gw-2", "gw-3"]
    acl = (tmp_path / "secrets/mosquitto/acl").read_text()
    for edge in ("gw-1", "gw-2", "gw-3"):
        assert f"user {edge}\ntopic write factory/uplink/{edge}\n" in acl
    assert "docker compose restart mosquitto" in capsys.readouterr().out
    assert main(["deploy", "add-edge", "--dir", str(tmp_path), "gw-1"]) == 1
    assert "already a broker user: gw-1" in capsys.readouterr().err


def test_add_edge_needs_init_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "add-edge", "--dir", str(tmp_path), "gw-1"]) == 1
    assert "run `factory deploy init` first" in capsys.readouterr().err


def test_mosquitto_passwd_reads_and_rewrites_the_file_deploy_init_writes(tmp_path: Path) -> None:
    """An operator revokes a gateway with Mosquitto's own tool (docs/operations.md)."""
    assert main(["deploy", "init", "--dir", str(tmp_path), "--edges", "gw-1,gw-2"]) == 0
    passwd = tmp_path / "secrets/mosquitto/passwd"
    before = passwd.read_text().splitlines()
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([tool, "-D", str(passwd), "gw-2"], check=True, capture_output=True, timeout=30)
    assert passwd.read_text().splitlines() == [line for line in before if not line.startswith("gw-2:")]
    assert main(["deploy", "add-edge", "--dir", str(tmp_path), "gw-3"]) == 0
    acl = (tmp_path / "secrets/mosquitto/acl").read_text()
    assert "user gw-2" not in acl and "user gw-1" in acl and "user gw-3" in acl


def test_remove_edge_revokes_a_gateway_and_keeps_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "init", "--dir", str(tmp_path), "--edges", "gw-1,gw-2"]) == 0
    passwd = (tmp_path / "secrets/mosquitto/passwd").read_text().splitlines()
    assert main(["deploy", "remove-edge", "--dir", str(tmp_path), "gw-1"]) == 0
    assert (tmp_path / "secrets/mosquitto/passwd").read_text().splitlines() == [
        line for line in passwd if not line.startswith("gw-1:")
    ]
    acl = (tmp_path / "secrets/mosquitto/acl").read_text()
    assert "user gw-1" not in acl and "user gw-2\ntopic write factory/uplink/gw-2\n" in acl
    assert not (tmp_path / "secrets/edges/gw-1.env").exists() and (tmp_path / "secrets/edges/gw-2.env").exists()
    assert main(["deploy", "remove-edge", "--dir", str(tmp_path), "gw-1"]) == 1
    assert "not a gateway's broker user: gw-1" in capsys.readouterr().err
    assert main(["deploy", "remove-edge", "--dir", str(tmp_path), "ingest"]) == 1
    assert "edge id 'ingest' is a broker user of the platform itself" in capsys.readouterr().err
