"""The simulated meter: exact energy integration, the payload contract, riding out a broker restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.settings import BrokerSettings
from core.signals import MachineState
from simulators.clock import SimClock
from simulators.ground_truth import GroundTruth
from simulators.meter import DEFAULT_POWER, MeterPublisher, energy_between_kwh, meter_payload, power_at_kw
from tests.servers import free_port

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def machine(*states: tuple[float, MachineState]) -> GroundTruth:
    truth = GroundTruth("m")
    for seconds, state in states:
        truth.record_state(at(seconds), state)
    return truth


def test_energy_integrates_base_load_and_each_machines_state_draw() -> None:
    a = machine((0, MachineState.PRODUCING), (60, MachineState.IDLE))
    b = machine((30, MachineState.DOWN))
    # base 1.5 kW × 120 s = 180 kWs; a: 8 kW × 60 s + 2 kW × 60 s = 600 kWs; b: 0.5 kW × 90 s = 45 kWs
    assert energy_between_kwh(DEFAULT_POWER, [a, b], at(0), at(120)) == pytest.approx(825 / 3600)
    # [50, 70): base 30 kWs; a: 8 × 10 + 2 × 10 = 100 kWs; b: 0.5 × 20 = 10 kWs
    assert energy_between_kwh(DEFAULT_POWER, [a, b], at(50), at(70)) == pytest.approx(140 / 3600)
    assert energy_between_kwh(DEFAULT_POWER, [a, b], at(70), at(70)) == 0.0


def test_power_counts_only_machines_that_have_a_state() -> None:
    a = machine((0, MachineState.SETUP))
    b = machine((30, MachineState.PLANNED_STOP))
    assert power_at_kw(DEFAULT_POWER, [a, b], at(10)) == pytest.approx(1.5 + 3.0)
    assert power_at_kw(DEFAULT_POWER, [a, b], at(30)) == pytest.approx(1.5 + 3.0 + 0.2)


def test_payload_follows_the_meter_contract() -> None:
    body = json.loads(meter_payload(at(0.25), 12345.678901, 12.34567))
    assert body == {
        "ts": "2026-11-25T08:00:00.250000Z",
        "energy": {"active_import_kwh": 12345.678901},
        "power": {"active_kw": 12.346},
    }


@contextlib.contextmanager
def mosquitto_on(port: int, workdir: Path) -> Iterator[None]:
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/bin")
    if binary is None:
        pytest.skip("mosquitto is not installed")
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("mosquitto did not start")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.integration
async def test_meter_keeps_integrating_while_the_broker_is_away_and_logs_loss_and_return_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="simulators.meter")
    port = free_port()
    clock = SimClock()
    truth = GroundTruth("meter-x")
    async with MeterPublisher(
        "meter-x",
        broker=BrokerSettings(host="127.0.0.1", port=port),
        topic="meters/meter-x",
        clock=clock,
        interval_s=0.2,
        covered=[],
        truth=truth,
        initial_kwh=100.0,
        reconnect_delay_s=0.1,
    ) as meter:
        with mosquitto_on(port, tmp_path):
            await asyncio.sleep(1.0)
        outage_start = clock.now()
        await asyncio.sleep(1.0)
        with mosquitto_on(port, tmp_path):
            await asyncio.sleep(1.2)
            frozen = clock.now()
            await meter.freeze(frozen)

    times = [t for t, _ in truth.registers]
    assert times[0] == clock.start
    assert times[-1] == frozen
    assert any(t > outage_start + timedelta(seconds=1) for t in times)
    # nothing recorded for the outage: only acknowledged publishes are ground truth
    assert not any(
        outage_start + timedelta(seconds=0.3) < t < outage_start + timedelta(seconds=0.9) for t in times
    )
    # with no machines covered the register grows by exactly the base load, outage included
    first, last = truth.registers[0][1], truth.registers[-1][1]
    assert last - first == pytest.approx(1.5 * (frozen - clock.start).total_seconds() / 3600, abs=2e-6)
    messages = [r.getMessage() for r in caplog.records if r.name == "simulators.meter"]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("is back" in m for m in messages) == 1
