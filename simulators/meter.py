"""Simulated utility meters: electricity (kWh, kW, V, A), natural gas and water (m³), published over MQTT.

A meter's register integrates what its machines draw, read from their ground truth: electricity
is a base load plus each covered machine's ``power_kw`` for the state it was in; gas and water are
a base flow plus a flow per supplied machine while it is producing. Consumption is integrated in
model time (an accelerated run compresses time, not consumption), so energy per part is the same
at any speed.

The payload is the scenario's template (``simulators.scenario``): a JSON-shaped mapping whose
string leaves ``"{energy_kwh}"``, ``"{ts}"``, … are replaced by the reading. The default for
electricity is the shared contract's payload, QoS 1 on ``{meter_topic_prefix}/{meter_id}``::

    {"ts": "2026-11-25T08:00:00.000000Z", "energy": {"active_import_kwh": 123.456},
     "power": {"active_kw": 12.3}, "voltage": {"l1_v": 400.2}}

Every published register is recorded in the meter's ground truth with the very timestamp that is
in the payload, and only once the broker acknowledged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import aiomqtt

from core.assets import EnergyCarrier
from core.mqtt import check_broker, mqtt_client
from core.settings import BrokerSettings
from core.signals import MachineState, Signal
from core.wire import datetime_to_ns, format_ts
from simulators.behaviour import stable_seed
from simulators.clock import SimClock
from simulators.ground_truth import GroundTruth
from simulators.scenario import PowerDraw, ResolvedMeter, template_placeholders

log = logging.getLogger(__name__)

REGISTER_DECIMALS = 6  # 1 mWh or 1 cm³: finer than any real meter, coarse enough to print cleanly
UNITS: Mapping[EnergyCarrier, str] = {
    EnergyCarrier.ELECTRICITY: "kWh",
    EnergyCarrier.NATURAL_GAS: "m3",
    EnergyCarrier.WATER: "m3",
}


def placeholder_signal(carrier: EnergyCarrier, placeholder: str) -> str | None:
    """The canonical signal the edge should map a payload placeholder to; None for ts and meter_id."""
    if placeholder in ("ts", "ts_epoch", "meter_id"):
        return None
    if placeholder == "volume_m3":
        return Signal.GAS_M3.value if carrier == EnergyCarrier.NATURAL_GAS else Signal.WATER_M3.value
    if placeholder == "flow_m3_h":
        return "gas_flow_m3_h" if carrier == EnergyCarrier.NATURAL_GAS else "water_flow_m3_h"
    return placeholder  # energy_kwh, power_kw, voltage_v, current_a


@dataclass(frozen=True)
class MeterModel:
    """What a meter measures: pure functions of its machines' ground truth (stamp-time intervals)."""

    meter: ResolvedMeter
    machine_power: Mapping[str, PowerDraw]  # electricity: each covered machine's draw per state
    speed: float = 1.0  # model seconds per stamp second

    @property
    def carrier(self) -> EnergyCarrier:
        return self.meter.carrier

    def consumption(self, machines: Mapping[str, GroundTruth], start: datetime, end: datetime) -> float:
        """kWh or m³ drawn in ``[start, end)`` (stamp time) by the base load and the machines."""
        if end <= start:
            return 0.0
        hours = (end - start).total_seconds() * self.speed / 3600.0
        total = self.meter.base_load * hours
        for machine_id in self.meter.machines:
            truth = machines.get(machine_id)
            if truth is None:
                continue
            durations = truth.state_durations(start, end)
            if self.carrier == EnergyCarrier.ELECTRICITY:
                draw = self.machine_power[machine_id]
                kw_seconds = sum(draw.kw(MachineState(s)) * secs for s, secs in durations.items())
                total += kw_seconds * self.speed / 3600.0
            else:
                flow = self.meter.machine_flow_m3_h.get(machine_id, 0.0)
                total += flow * durations[MachineState.PRODUCING.value] * self.speed / 3600.0
        return total

    def rate(self, machines: Mapping[str, GroundTruth], ts: datetime) -> float:
        """Instantaneous kW or m³/h at ``ts``; a machine with no state yet draws nothing."""
        rate = self.meter.base_load
        for machine_id in self.meter.machines:
            truth = machines.get(machine_id)
            state = truth.state_at(ts) if truth is not None else None
            if state is None:
                continue
            if self.carrier == EnergyCarrier.ELECTRICITY:
                rate += self.machine_power[machine_id].kw(state)
            elif state == MachineState.PRODUCING:
                rate += self.meter.machine_flow_m3_h.get(machine_id, 0.0)
        return rate


def reading_values(model: MeterModel, ts: datetime, register: float, rate: float, rng: random.Random) -> dict[str, Any]:
    """The placeholder values of one reading."""
    values: dict[str, Any] = {
        "ts": format_ts(ts),
        "ts_epoch": datetime_to_ns(ts) / 1e9,
        "meter_id": model.meter.equipment_id,
    }
    if model.carrier == EnergyCarrier.ELECTRICITY:
        voltage = round(model.meter.nominal_voltage_v * (1 + rng.gauss(0, 0.004)), 1)
        values |= {
            "energy_kwh": register,
            "power_kw": round(rate, 3),
            "voltage_v": voltage,
            "current_a": round(rate * 1000 / (math.sqrt(3) * voltage * 0.92), 2),
        }
    else:
        values |= {"volume_m3": register, "flow_m3_h": round(rate, 4)}
    return values


_FORMATTER = string.Formatter()


def render_payload(template: Any, values: Mapping[str, Any]) -> Any:
    """The template with placeholders substituted: an exact ``"{name}"`` leaf takes the value's type."""
    if isinstance(template, dict):
        return {key: render_payload(child, values) for key, child in template.items()}
    if isinstance(template, list):
        return [render_payload(child, values) for child in template]
    if isinstance(template, str):
        fields = [name for _, name, _, _ in _FORMATTER.parse(template) if name is not None]
        if len(fields) == 1 and template == "{" + fields[0] + "}":
            return values[fields[0]]
        if fields:
            return template.format_map(values)
    return template


def payload_paths(template: Any) -> dict[str, str]:
    """Placeholder -> dotted path of the leaf that is exactly it (list items by index: ``readings.0.value``)."""
    return {name: ".".join(str(p) for p in path) for path, name, exact in template_placeholders(template) if exact}


class MeterPublisher:
    """``async with MeterPublisher(...)`` publishes every ``interval_s`` (wall clock) until frozen or closed."""

    def __init__(
        self,
        model: MeterModel,
        *,
        broker: BrokerSettings,
        topic: str,
        clock: SimClock,
        interval_s: float,
        machines: Mapping[str, GroundTruth],
        truth: GroundTruth,
        initial_register: float,
        seed: int = 1,
        reconnect_delay_s: float = 1.0,
        publish_timeout_s: float = 5.0,
    ):
        if interval_s <= 0:
            raise ValueError(f"{model.meter.equipment_id}: publish interval must be positive, got {interval_s}")
        check_broker(broker)
        self.model = model
        self.meter_id = model.meter.equipment_id
        self.topic = topic
        self._broker = broker
        self._clock = clock
        self._interval = timedelta(seconds=interval_s)
        self._machines = machines
        self.truth = truth
        self._rng = random.Random(stable_seed(seed, f"{self.meter_id}/meter"))
        self._reconnect_delay_s = reconnect_delay_s
        self._publish_timeout_s = publish_timeout_s
        self._register = initial_register
        start = clock.stamp(clock.start)
        self._integrated_to = start
        self._next_publish = start
        self._last_published: datetime | None = None
        self._frozen_at: datetime | None = None  # stamp time
        self._freezing = asyncio.Event()
        self._lost = False
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.failed = 0

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name=f"meter-{self.meter_id}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def freeze(self, at: datetime) -> None:
        """Publish the register as of stamp time ``at`` (if the broker is reachable), then stop."""
        self._frozen_at = at
        self._freezing.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with mqtt_client(
                    self._broker,
                    # Unique: two simulators on one broker must not take over each other's session.
                    identifier=f"sim-meter-{self.meter_id}-{uuid.uuid4().hex[:8]}",
                ) as client:
                    if self._lost:
                        log.info("%s: broker %s:%s is back", self.meter_id, self._broker.host, self._broker.port)
                        self._lost = False
                    await self._publish_until_frozen(client)
                    return
            except aiomqtt.MqttError as exc:
                if not self._lost:
                    log.warning(
                        "%s: broker %s:%s unreachable (%s); retrying every %.1f s",
                        self.meter_id,
                        self._broker.host,
                        self._broker.port,
                        exc,
                        self._reconnect_delay_s,
                    )
                    self._lost = True
            if self._frozen_at is not None:
                log.warning("%s: frozen while the broker is away; final register not published", self.meter_id)
                return
            await self._clock.sleep(self._reconnect_delay_s * self._clock.speed, self._freezing)

    async def _publish_until_frozen(self, client: aiomqtt.Client) -> None:
        while True:
            self._skip_missed_publishes()
            due = self._next_publish
            await self._clock.sleep_until(self._clock.model_time(due), self._freezing)
            if self._frozen_at is not None and due >= self._frozen_at:
                if self._last_published != self._frozen_at:
                    await self._publish(client, self._frozen_at)
                return
            await self._publish(client, due)
            self._next_publish = due + self._interval

    def _skip_missed_publishes(self) -> None:
        # A meter without store-and-forward: slots missed while the broker was away are gone.
        behind = self._clock.stamp_now() - self._next_publish
        if behind > self._interval:
            self._next_publish += self._interval * (behind // self._interval)

    async def _publish(self, client: aiomqtt.Client, ts: datetime) -> None:
        self._register += self.model.consumption(self._machines, self._integrated_to, ts)
        self._integrated_to = ts
        register = round(self._register, REGISTER_DECIMALS)
        values = reading_values(self.model, ts, register, self.model.rate(self._machines, ts), self._rng)
        body = render_payload(self.model.meter.payload, values)
        payload = json.dumps(body, separators=(",", ":")).encode()
        try:
            await client.publish(self.topic, payload, qos=1, timeout=self._publish_timeout_s)
        except aiomqtt.MqttError:
            self.failed += 1
            raise
        self.truth.record_register(ts, register)
        self._last_published = ts
        self.published += 1


def initial_register(meter: ResolvedMeter, seed: int) -> float:
    """The register a meter shows when the simulation starts: the scenario's, or a seeded plausible one."""
    if meter.initial_register is not None:
        return meter.initial_register
    rng = random.Random(stable_seed(seed, meter.equipment_id))
    electricity = meter.carrier == EnergyCarrier.ELECTRICITY
    return round(rng.uniform(10_000, 100_000) if electricity else rng.uniform(500, 9_000), 3)
