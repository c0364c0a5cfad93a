"""A simulated electricity meter: integrates the power of the machines it covers, publishes over MQTT.

Payload (the shared contract), QoS 1 on ``{meter_topic_prefix}/{meter_id}``::

    {"ts": "2026-11-25T08:00:00.000000Z", "energy": {"active_import_kwh": 123.456},
     "power": {"active_kw": 12.3}}

Power is a base load plus a draw per covered machine that depends on its canonical state, read
from the machines' ground truth. The register integrates that power exactly over the state
intervals between two publishes. Every published register is recorded in the meter's own ground
truth with the very timestamp that is in the payload, and only once the broker acknowledged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType, TracebackType
from typing import Self

import aiomqtt

from core.settings import BrokerSettings
from core.signals import MachineState
from core.wire import format_ts
from simulators.clock import SimClock
from simulators.ground_truth import GroundTruth

log = logging.getLogger(__name__)

REGISTER_DECIMALS = 6  # 1 mWh: finer than any real meter, coarse enough to print cleanly


@dataclass(frozen=True, slots=True)
class PowerProfile:
    """Electrical draw: a base load for the meter's circuit plus a draw per machine by state."""

    base_kw: float = 1.5
    state_kw: Mapping[MachineState, float] = field(
        default_factory=lambda: MappingProxyType(
            {
                MachineState.PRODUCING: 8.0,
                MachineState.SETUP: 3.0,
                MachineState.IDLE: 2.0,
                MachineState.DOWN: 0.5,
                MachineState.PLANNED_STOP: 0.2,
            }
        )
    )


DEFAULT_POWER = PowerProfile()


def energy_between_kwh(
    profile: PowerProfile, covered: Sequence[GroundTruth], start: datetime, end: datetime
) -> float:
    """Energy drawn in ``[start, end)`` by the base load and the covered machines' states."""
    if end <= start:
        return 0.0
    kws = profile.base_kw * (end - start).total_seconds()
    for machine in covered:
        for state, seconds in machine.state_durations(start, end).items():
            kws += profile.state_kw[MachineState(state)] * seconds
    return kws / 3600.0


def power_at_kw(profile: PowerProfile, covered: Sequence[GroundTruth], ts: datetime) -> float:
    """Instantaneous power at ``ts``; a machine with no state yet draws nothing."""
    kw = profile.base_kw
    for machine in covered:
        state = machine.state_at(ts)
        if state is not None:
            kw += profile.state_kw[state]
    return kw


def meter_payload(ts: datetime, register_kwh: float, power_kw: float) -> bytes:
    body = {
        "ts": format_ts(ts),
        "energy": {"active_import_kwh": register_kwh},
        "power": {"active_kw": round(power_kw, 3)},
    }
    return json.dumps(body, separators=(",", ":")).encode()


class MeterPublisher:
    """``async with MeterPublisher(...)`` publishes every ``interval_s`` until frozen or closed."""

    def __init__(
        self,
        meter_id: str,
        *,
        broker: BrokerSettings,
        topic: str,
        clock: SimClock,
        interval_s: float,
        covered: Sequence[GroundTruth],
        truth: GroundTruth,
        initial_kwh: float,
        profile: PowerProfile = DEFAULT_POWER,
        reconnect_delay_s: float = 1.0,
        publish_timeout_s: float = 5.0,
    ):
        if interval_s <= 0:
            raise ValueError(f"{meter_id}: publish interval must be positive, got {interval_s}")
        self.meter_id = meter_id
        self.topic = topic
        self._broker = broker
        self._clock = clock
        self._interval = timedelta(seconds=interval_s)
        self._covered = tuple(covered)
        self.truth = truth
        self._profile = profile
        self._reconnect_delay_s = reconnect_delay_s
        self._publish_timeout_s = publish_timeout_s
        self._register_kwh = initial_kwh
        self._integrated_to = clock.start
        self._next_publish = clock.start
        self._last_published: datetime | None = None
        self._frozen_at: datetime | None = None
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
        """Publish the register as of ``at`` (if the broker is reachable), then stop publishing."""
        self._frozen_at = at
        self._freezing.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self._broker.host,
                    self._broker.port,
                    username=self._broker.username,
                    password=self._broker.password.get_secret_value() if self._broker.password else None,
                    # Unique: two simulators on one broker must not take over each other's session.
                    identifier=f"sim-meter-{self.meter_id}-{uuid.uuid4().hex[:8]}",
                    keepalive=self._broker.keepalive_s,
                ) as client:
                    if self._lost:
                        log.info(
                            "%s: broker %s:%s is back", self.meter_id, self._broker.host, self._broker.port
                        )
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
                log.warning(
                    "%s: frozen while the broker is away; final register not published", self.meter_id
                )
                return
            await self._clock.sleep(self._reconnect_delay_s * self._clock.speed, self._freezing)

    async def _publish_until_frozen(self, client: aiomqtt.Client) -> None:
        while True:
            self._skip_missed_publishes()
            due = self._next_publish
            await self._clock.sleep_until(due, self._freezing)
            if self._frozen_at is not None and due >= self._frozen_at:
                if self._last_published != self._frozen_at:
                    await self._publish(client, self._frozen_at)
                return
            await self._publish(client, due)
            self._next_publish = due + self._interval

    def _skip_missed_publishes(self) -> None:
        # A meter without store-and-forward: slots missed while the broker was away are gone.
        behind = self._clock.now() - self._next_publish
        if behind > self._interval:
            self._next_publish += self._interval * (behind // self._interval)

    async def _publish(self, client: aiomqtt.Client, ts: datetime) -> None:
        self._register_kwh += energy_between_kwh(self._profile, self._covered, self._integrated_to, ts)
        self._integrated_to = ts
        register = round(self._register_kwh, REGISTER_DECIMALS)
        payload = meter_payload(ts, register, power_at_kw(self._profile, self._covered, ts))
        try:
            await client.publish(self.topic, payload, qos=1, timeout=self._publish_timeout_s)
        except aiomqtt.MqttError:
            self.failed += 1
            raise
        self.truth.record_register(ts, register)
        self._last_published = ts
        self.published += 1
