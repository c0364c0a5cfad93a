"""The simulated meter: exact energy integration, the payload contract, riding out a broker restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.assets import EnergyCarrier
from core.settings import BrokerSettings, MeterSource
from core.signals import MachineState
from edge.meter_source import parse_meter_payload
from simulators.clock import SimClock
from simulators.edgeconfig import meter_source
from simulators.ground_truth import GroundTruth
from simulators.meter import MeterModel, MeterPublisher, payload_paths, reading_values, render_payload
from simulators.scenario import PowerDraw, ResolvedMeter, load_scenario
from tests.servers import free_port

SCENARIOS = Path(__file__).resolve().parent.parent / "config" / "scenarios"
T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def machine(*states: tuple[float, MachineState]) -> GroundTruth:
    truth = GroundTruth("m")
    for seconds, state in states:
        truth.record_state(at(seconds), state)
    return truth


def resolved(carrier: EnergyCarrier, machines: tuple[str, ...], **kw: object) -> ResolvedMeter:
    base: dict[str, object] = dict(
        equipment_id="meter-x",
        carrier=carrier,
        topic=None,
        interval_s=None,
        payload={},
        base_load=1.5,
        nominal_voltage_v=400.0,
        machines=machines,
        machine_flow_m3_h={},
        initial_register=None,
    )
    return ResolvedMeter(**(base | kw))  # type: ignore[arg-type]


DRAW = PowerDraw(producing=8.0, setup=3.0, idle=2.0, down=0.5, planned_stop=0.2)


def test_energy_integrates_base_load_and_each_machines_state_draw() -> None:
    a = machine((0, MachineState.PRODUCING), (60, MachineState.IDLE))
    b = machine((30, MachineState.DOWN))
    model = MeterModel(resolved(EnergyCarrier.ELECTRICITY, ("a", "b")), {"a": DRAW, "b": DRAW})
    machines = {"a": a, "b": b}
    # base 1.5 kW × 120 s = 180 kWs; a: 8 kW × 60 s + 2 kW × 60 s = 600 kWs; b: 0.5 kW × 90 s = 45 kWs
    assert model.consumption(machines, at(0), at(120)) == pytest.approx(825 / 3600)
    # [50, 70): base 30 kWs; a: 8 × 10 + 2 × 10 = 100 kWs; b: 0.5 × 20 = 10 kWs
    assert model.consumption(machines, at(50), at(70)) == pytest.approx(140 / 3600)
    assert model.consumption(machines, at(70), at(70)) == 0.0
    assert model.rate(machines, at(10)) == pytest.approx(1.5 + 8.0)
    assert model.rate(machines, at(30)) == pytest.approx(1.5 + 8.0 + 0.5)


def test_consumption_is_integrated_in_model_time_so_speed_keeps_energy_per_part() -> None:
    a = machine((0, MachineState.PRODUCING))
    at_60x = MeterModel(resolved(EnergyCarrier.ELECTRICITY, ("a",)), {"a": DRAW}, speed=60.0)
    # one stamp minute at 60x is a model hour
    assert at_60x.consumption({"a": a}, at(0), at(60)) == pytest.approx(1.5 + 8.0)


def test_gas_and_water_flow_only_while_a_supplied_machine_produces() -> None:
    a = machine((0, MachineState.PRODUCING), (1800, MachineState.DOWN))
    b = machine((0, MachineState.IDLE), (900, MachineState.PRODUCING))
    flows = {"a": 2.0, "b": 1.0}
    gas = MeterModel(resolved(EnergyCarrier.NATURAL_GAS, ("a", "b"), base_load=0.2, machine_flow_m3_h=flows), {})
    # one hour: base 0.2 m³; a produces half an hour at 2 m³/h; b three quarters at 1 m³/h
    assert gas.consumption({"a": a, "b": b}, at(0), at(3600)) == pytest.approx(0.2 + 1.0 + 0.75)
    assert gas.rate({"a": a, "b": b}, at(1000)) == pytest.approx(0.2 + 2.0 + 1.0)
    assert gas.rate({"a": a, "b": b}, at(2000)) == pytest.approx(0.2 + 1.0)


def test_the_default_electricity_payload_follows_the_meter_contract() -> None:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    meter = scenario.meter("meter-s1")
    model = MeterModel(meter, {})
    values = reading_values(model, at(0.25), 12345.678901, 12.34567, random.Random(1))
    body = json.loads(json.dumps(render_payload(meter.payload, values)))
    assert body["ts"] == "2026-11-25T08:00:00.250000Z"
    assert body["energy"] == {"active_import_kwh": 12345.678901}
    assert body["power"] == {"active_kw": 12.346}
    assert 390 < body["voltage"]["l1_v"] < 410


@pytest.mark.parametrize(
    ("meter_id", "signal", "carrier"),
    [("gas-s1", "gas_m3", EnergyCarrier.NATURAL_GAS), ("water-s1", "water_m3", EnergyCarrier.WATER)],
)
def test_gas_and_water_payload_templates_are_read_back_by_the_edge(
    meter_id: str, signal: str, carrier: EnergyCarrier
) -> None:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    meter = scenario.meter(meter_id)
    assert meter.carrier == carrier
    values = reading_values(MeterModel(meter, {}), at(1.5), 4321.125, 2.75, random.Random(1))
    payload = json.dumps(render_payload(meter.payload, values)).encode()
    source = meter_source(scenario, meter_id, "t")
    reading = parse_meter_payload(source, payload, received_at=at(99))
    assert reading.problems == []
    got = {s.signal: s.value for s in reading.samples}
    assert got == {signal: 4321.125, signal.replace("_m3", "_flow_m3_h"): 2.75}
    assert {s.ts for s in reading.samples} == {at(1.5)}


def test_a_vendor_shaped_electricity_payload_is_read_back_by_the_edge() -> None:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    meter = scenario.meter("meter-s2")  # epoch seconds, readings in a list, nested grid values
    values = reading_values(MeterModel(meter, {}), at(2.0), 777.5, 9.25, random.Random(1))
    body = render_payload(meter.payload, values)
    assert body["device"] == "meter-s2"
    assert body["readings"][0] == {"name": "energy", "unit": "kWh", "value": 777.5}
    source = meter_source(scenario, "meter-s2", "t")
    assert source.fields["energy_kwh"] == "readings.0.value"
    assert source.timestamp_field == "time"
    reading = parse_meter_payload(source, json.dumps(body).encode(), received_at=at(99))
    got = {s.signal: s.value for s in reading.samples}
    assert (got["energy_kwh"], got["power_kw"]) == (777.5, 9.25)
    assert set(got) == {"energy_kwh", "power_kw", "voltage_v", "current_a"}
    assert abs((reading.samples[0].ts - at(2.0)).total_seconds()) < 1e-5


def test_placeholders_inside_text_are_formatted_and_only_exact_leaves_are_paths() -> None:
    template = {"status": "ok {meter_id}", "v": "{volume_m3}", "l": [{"x": "{flow_m3_h}"}]}
    assert render_payload(template, {"meter_id": "g1", "volume_m3": 1.5, "flow_m3_h": 0.5}) == {
        "status": "ok g1", "v": 1.5, "l": [{"x": 0.5}],
    }  # fmt: skip
    assert payload_paths(template) == {"volume_m3": "v", "flow_m3_h": "l.0.x"}
    assert isinstance(MeterSource(topic="t", equipment="g1", fields={"gas_m3": "v"}), MeterSource)


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
        MeterModel(resolved(EnergyCarrier.ELECTRICITY, ()), {}),
        broker=BrokerSettings(host="127.0.0.1", port=port),
        topic="meters/meter-x",
        clock=clock,
        interval_s=0.2,
        machines={},
        truth=truth,
        initial_register=100.0,
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
    # Nothing recorded for the outage: only acknowledged publishes are ground truth. An acked
    # publish before the outage is stamped before outage_start; the broker is back no earlier than
    # 1.0 s later, and the first slot published then is at most one interval (0.2 s) old.
    assert not any(outage_start < t < outage_start + timedelta(seconds=1.0 - 0.2) for t in times)
    # with no machines covered the register grows by exactly the base load, outage included
    first, last = truth.registers[0][1], truth.registers[-1][1]
    assert last - first == pytest.approx(1.5 * (frozen - clock.start).total_seconds() / 3600, abs=2e-6)
    messages = [r.getMessage() for r in caplog.records if r.name == "simulators.meter"]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("is back" in m for m in messages) == 1
