"""Start real Mosquitto and InfluxDB 1.x servers on free loopback ports, data in a temp dir.

Used by the pytest fixtures in ``conftest.py`` and by the benchmarks under ``bench/``.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHIPPED_MOSQUITTO = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not open port {port} within {timeout}s: {log.read_text()[-2000:]}")


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 10) -> None:
    """SIGTERM (a clean stop), then SIGKILL if it has not gone within ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin")
    if path is None:
        raise RuntimeError(f"{binary} not found: install it with 'apt-get install {package}' (./run test does)")
    return path


@dataclass(frozen=True)
class MosquittoServer:
    host: str
    port: int
    proc: subprocess.Popen[bytes]


@contextlib.contextmanager
def mosquitto(workdir: Path) -> Iterator[MosquittoServer]:
    """An anonymous Mosquitto without limits on queued and in-flight messages."""
    port = free_port()
    conf = (
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 0\n"
        "log_dest stderr\n"
    )
    with mosquitto_on(workdir, conf, port) as proc:
        yield MosquittoServer("127.0.0.1", port, proc)


@contextlib.contextmanager
def mosquitto_on(workdir: Path, conf: str, *ports: int) -> Iterator[subprocess.Popen[bytes]]:
    """Mosquitto on the configuration ``conf`` (written to workdir), once it listens on every port.

    It runs as the current user: started as root, Mosquitto would switch to the user "mosquitto",
    who cannot read the files a test keeps in its temp dir. Its log is ``workdir/mosquitto.log``.
    """
    binary = _require("mosquitto", "mosquitto")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "mosquitto.conf"
    path.write_text(conf + f"user {getpass.getuser()}\n")
    log = workdir / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-c", str(path)], stdout=out, stderr=subprocess.STDOUT)
    try:
        for port in ports:
            _wait_for_port(port, proc, "mosquitto", log)
        yield proc
    finally:
        stop_process(proc)


def mosquitto_password_file(path: Path, passwords: Mapping[str, str]) -> Path:
    """A Mosquitto password file made with mosquitto_passwd: one user per entry of ``passwords``."""
    binary = _require("mosquitto_passwd", "mosquitto")
    for n, (user, password) in enumerate(passwords.items()):
        subprocess.run([binary, "-b", *(["-c"] if n == 0 else []), str(path), user, password], check=True)
    return path


def shipped_mosquitto_conf(workdir: Path, name: str, listener: int, port: int, paths: Mapping[str, Path]) -> str:
    """``deploy/mosquitto/<name>`` made to run in a test, beside a copy of the shipped ACL in workdir.

    Its ``listener <listener>`` listens on 127.0.0.1:``port``; each shipped path in ``paths`` (and the
    ACL's) is replaced by the test's; no persistence, and the log goes to stderr.
    """
    shutil.copy(SHIPPED_MOSQUITTO / "acl", workdir / "acl")
    conf = (SHIPPED_MOSQUITTO / name).read_text().replace(f"listener {listener}", f"listener {port} 127.0.0.1")
    for shipped, path in {"/mosquitto/config/acl": workdir / "acl", **paths}.items():
        assert shipped in conf, f"{name} no longer names {shipped}"
        conf = conf.replace(shipped, str(path))
    conf = conf.replace("persistence true", "persistence false").replace("log_dest stdout", "log_dest stderr")
    assert f"listener {port} 127.0.0.1" in conf and "persistence false" in conf, conf
    return conf


@dataclass(frozen=True)
class InfluxServer:
    url: str
    port: int
    proc: subprocess.Popen[bytes]


@contextlib.contextmanager
def influxdb(workdir: Path, *, max_body_size: int = 0) -> Iterator[InfluxServer]:
    """InfluxDB 1.x bound to 127.0.0.1 only, with reporting off and every directory under workdir.

    ``max_body_size``: larger write requests are refused with 413 (0: no limit).
    """
    binary = _require("influxd", "influxdb")
    workdir.mkdir(parents=True, exist_ok=True)
    http_port, rpc_port = free_port(), free_port()
    conf = workdir / "influxdb.conf"
    conf.write_text(
        f"""reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{workdir}/meta"
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  max-body-size = {max_body_size}
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""
    )
    log = workdir / "influxd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-config", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_for_port(http_port, proc, "influxd", log)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=1) as resp:
                    if resp.status == 204:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield InfluxServer(url, http_port, proc)
    finally:
        stop_process(proc)
