"""Start real Mosquitto and InfluxDB 1.x servers on free loopback ports, data in a temp dir.

Used by the pytest fixtures in ``conftest.py`` and by the benchmarks under ``bench/``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


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


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
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
    binary = _require("mosquitto", "mosquitto")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 0\n"
        "log_dest stderr\n"
    )
    log = workdir / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, "mosquitto", log)
        yield MosquittoServer("127.0.0.1", port, proc)
    finally:
        _stop(proc)


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
        _stop(proc)
