"""The broker as docker-compose.yml runs it, on a real Mosquitto: deploy/mosquitto/start.sh with the
shipped mosquitto.conf and the password and ACL files that ``factory deploy init`` writes.

The password file's PBKDF2-SHA512 hashes are made in Python (``factory/deploy_files.py``); here the
broker itself checks them. Only the listener and the paths of the config are changed for the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
import yaml

from factory.deploy_cli import add_edges, init
from factory.deploy_files import mosquitto_hash, parse_env_file
from tests.servers import _wait_for_port, free_port, stop_process

REPO = Path(__file__).resolve().parent.parent
START = REPO / "deploy" / "mosquitto" / "start.sh"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
AS_ROOT = os.geteuid() == 0
# Started as root, Mosquitto runs as the config's `user` (the image's and Debian's: mosquitto).
BROKER_USER = "mosquitto" if AS_ROOT else pwd.getpwuid(os.geteuid()).pw_name
PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin"


@dataclass(frozen=True)
class Deployment:
    root: Path  # what `factory deploy init` wrote (.env, secrets/)
    workdir: Path  # the broker's config, auth and data, readable by the broker's user

    def password(self, variable: str) -> str:
        return parse_env_file((self.root / ".env").read_text())[variable]

    def edge_password(self, edge: str) -> str:
        return parse_env_file((self.root / "secrets" / "edges" / f"{edge}.env").read_text())["FACTORY_BROKER_PASSWORD"]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    init(tmp_path, ["gw-1", "gw-2"], simulated=False, force=False)
    # The broker's user must reach its files: a directory of our own under /tmp, open to it.
    workdir = Path(tempfile.mkdtemp(prefix="deploy-mosquitto-", dir="/tmp"))
    workdir.chmod(0o755)
    try:
        yield Deployment(tmp_path, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def broker_config(deployment: Deployment, port: int, data: Path) -> Path:
    shipped = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    conf = (
        shipped.replace("listener 1883", f"listener {port} 127.0.0.1")
        .replace("/mosquitto/auth/", f"{deployment.workdir}/auth/")
        .replace("persistence_location /mosquitto/data/", f"persistence_location {data}/")
        .replace("log_dest stdout", "log_dest stderr")
    )
    assert f"listener {port} 127.0.0.1" in conf and f"{deployment.workdir}/auth/passwd" in conf
    assert f"{deployment.workdir}/auth/acl" in conf and f"persistence_location {data}/" in conf
    path = deployment.workdir / "mosquitto.conf"
    path.write_text(conf + f"user {BROKER_USER}\n")
    path.chmod(0o644)
    return path


def data_dir(deployment: Deployment, *, writable: bool) -> Path:
    """The persistence directory: the broker's user may write it, or not."""
    data = deployment.workdir / "data"
    data.mkdir()
    if AS_ROOT:  # owned by root, mode 0755: only the owner writes
        if writable:
            os.chown(data, pwd.getpwnam(BROKER_USER).pw_uid, -1)
    else:
        data.chmod(0o755 if writable else 0o555)
    return data


def start(deployment: Deployment, config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            ["/bin/sh", str(START), str(config), str(deployment.root / "secrets" / "mosquitto"),
             str(deployment.workdir / "auth")],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PATH": PATH},
        )  # fmt: skip


@contextlib.contextmanager
def broker(deployment: Deployment) -> Iterator[int]:
    port = free_port()
    config = broker_config(deployment, port, data_dir(deployment, writable=True))
    log = deployment.workdir / "mosquitto.log"
    proc = start(deployment, config, log)
    try:
        _wait_for_port(port, proc, "mosquitto (start.sh)", log)
        yield port
    finally:
        stop_process(proc)


@contextlib.asynccontextmanager
async def client(port: int, user: str, password: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        "127.0.0.1", port, username=user, password=password, identifier=f"{user}-{uuid.uuid4().hex[:6]}", timeout=5
    ) as connected:
        yield connected


async def received(subscriber: aiomqtt.Client, within_s: float) -> list[tuple[str, bytes]]:
    messages: list[tuple[str, bytes]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within_s):
            async for message in subscriber.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                messages.append((str(message.topic), payload))
    return messages


def test_the_hash_is_mosquittos_pbkdf2_sha512_format() -> None:
    # The shape `mosquitto_passwd` 2.0 writes: $7$<iterations>$<base64 salt, 12 bytes>$<base64 hash, 64 bytes>.
    line = mosquitto_hash("secret", salt=bytes(range(12)))
    kind, iterations, salt, digest = line.split("$")[1:]
    assert (kind, iterations, salt) == ("7", "101", "AAECAwQFBgcICQoL")
    assert len(digest) == 88 and digest.endswith("==")  # 64 bytes of PBKDF2-HMAC-SHA512


async def test_the_generated_password_file_lets_each_client_in_and_the_acl_confines_each_edge(
    deployment: Deployment,
) -> None:
    with broker(deployment) as port:
        ingest = deployment.password("BROKER_INGEST_PASSWORD")
        async with (
            client(port, "ingest", ingest) as reader,
            client(port, "gw-1", deployment.edge_password("gw-1")) as gw_1,
            client(port, "gw-2", deployment.edge_password("gw-2")) as gw_2,
        ):
            await reader.subscribe("factory/uplink/+", qos=1)
            await gw_1.publish("factory/uplink/gw-1", b"own topic", qos=1)
            await gw_1.publish("factory/uplink/gw-2", b"another edge's topic", qos=1)  # the ACL drops it
            await gw_2.publish("factory/uplink/gw-2", b"own topic", qos=1)
            await reader.publish("factory/uplink/gw-1", b"ingest writing", qos=1)  # ingest only reads
            messages = await received(reader, within_s=2.0)
        assert sorted(messages) == [("factory/uplink/gw-1", b"own topic"), ("factory/uplink/gw-2", b"own topic")]

        # Wrong password, a user the file does not hold, another edge's password, anonymous: refused.
        for user, password in (
            ("gw-1", "wrong"), ("nobody", ingest), ("gw-1", deployment.edge_password("gw-2")), ("ingest", "")
        ):  # fmt: skip
            with pytest.raises(aiomqtt.MqttCodeError, match=r"Not authorized|Bad user name or password"):
                async with client(port, user, password):
                    pass
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", port, identifier="anonymous", timeout=5):
                pass


async def test_a_gateway_added_later_signs_in_and_writes_only_its_own_topic(deployment: Deployment) -> None:
    add_edges(deployment.root, ["gw-3"])
    with broker(deployment) as port:
        async with (
            client(port, "ingest", deployment.password("BROKER_INGEST_PASSWORD")) as reader,
            client(port, "gw-3", deployment.edge_password("gw-3")) as gw_3,
            client(port, "gw-1", deployment.edge_password("gw-1")) as gw_1,
        ):
            await reader.subscribe("factory/uplink/+", qos=1)
            await gw_3.publish("factory/uplink/gw-1", b"not mine", qos=1)
            await gw_3.publish("factory/uplink/gw-3", b"mine", qos=1)
            await gw_1.publish("factory/uplink/gw-1", b"still works", qos=1)
            messages = await received(reader, within_s=2.0)
        assert sorted(messages) == [("factory/uplink/gw-1", b"still works"), ("factory/uplink/gw-3", b"mine")]


def test_the_compose_healthcheck_signs_in_and_reads_the_uptime_only_with_its_password(
    deployment: Deployment,
) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    command = compose["services"]["mosquitto"]["healthcheck"]["test"][1].replace("$$", "$")
    with broker(deployment) as port:
        command = command.replace("-p 1883", f"-p {port}")
        env = {**os.environ, "PATH": PATH}
        right = {**env, "BROKER_HEALTHCHECK_PASSWORD": deployment.password("BROKER_HEALTHCHECK_PASSWORD")}
        assert subprocess.run(["/bin/sh", "-c", command], env=right, timeout=20).returncode == 0
        wrong = {**env, "BROKER_HEALTHCHECK_PASSWORD": "wrong"}
        assert subprocess.run(["/bin/sh", "-c", command], env=wrong, timeout=20).returncode != 0
        # The healthcheck's user reads the uptime and nothing else: not the uplink.
        other = command.replace("'$SYS/broker/uptime'", shlex.quote("factory/uplink/#")).replace("-W 5", "-W 2")
        assert subprocess.run(["/bin/sh", "-c", other], env=right, timeout=20).returncode != 0


def test_start_refuses_a_persistence_directory_the_broker_user_cannot_write(deployment: Deployment) -> None:
    port = free_port()
    config = broker_config(deployment, port, data_dir(deployment, writable=False))
    log = deployment.workdir / "mosquitto.log"
    proc = start(deployment, config, log)
    try:
        assert proc.wait(timeout=20) == 1
    finally:
        if proc.poll() is None:
            stop_process(proc)
    said = log.read_text()
    assert f"user '{BROKER_USER}' cannot write the persistence directory {deployment.workdir}/data" in said
    assert "would lose every queued message" in said
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        pass  # no broker was started


def test_start_refuses_a_saved_database_the_broker_user_cannot_replace_or_read(deployment: Deployment) -> None:
    data = data_dir(deployment, writable=True)
    saved = data / "mosquitto.db"
    saved.write_bytes(b"")
    saved.chmod(0o600 if AS_ROOT else 0o400)  # root's own file, or read-only for us
    config = broker_config(deployment, free_port(), data)
    log = deployment.workdir / "mosquitto.log"
    assert start(deployment, config, log).wait(timeout=20) == 1
    assert f"user '{BROKER_USER}' cannot read and write {data}/mosquitto.db" in log.read_text()


def test_start_refuses_without_the_files_deploy_init_writes(deployment: Deployment) -> None:
    (deployment.root / "secrets" / "mosquitto" / "passwd").unlink()
    config = broker_config(deployment, free_port(), data_dir(deployment, writable=True))
    log = deployment.workdir / "mosquitto.log"
    assert start(deployment, config, log).wait(timeout=20) == 1
    assert "passwd is missing or empty: run 'factory deploy init'" in log.read_text()
