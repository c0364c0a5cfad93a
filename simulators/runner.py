"""Run the simulated factory: one OPC UA server per CNC machine or robot, one MQTT publisher per meter.

``async with Simulator(settings, assets) as sim:`` starts everything, stamps the initial values at
one start instant and drives every machine from its behaviour model in simulated time.
``await sim.freeze()`` stops all events at one instant so tests can compare the platform with the
ground truth for windows that end there; ``await sim.run()`` runs until cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from core.assets import AssetModel, EnergyCarrier, Equipment, EquipmentType
from core.settings import Settings
from core.wire import format_ts
from simulators.behaviour import (
    DEFAULT_PROFILE,
    BehaviourProfile,
    MachineBehaviour,
    MachineStatus,
    stable_seed,
)
from simulators.clock import SimClock
from simulators.ground_truth import GroundTruth
from simulators.meter import DEFAULT_POWER, MeterPublisher, PowerProfile
from simulators.opcua_machine import MachineServer, quiet_asyncua_server_logs

log = logging.getLogger(__name__)

MACHINE_TYPES = frozenset({EquipmentType.CNC, EquipmentType.ROBOT})


def simulated_machines(assets: AssetModel) -> list[Equipment]:
    """Equipment that gets an OPC UA server, in file order (which fixes the default ports)."""
    return [eq for eq in assets if eq.type in MACHINE_TYPES and eq.ideal_cycle_time_s is not None]


def simulated_meters(assets: AssetModel) -> list[Equipment]:
    """Meters that publish; only electricity meters, the only carrier the payload contract covers."""
    return [eq for eq in assets if eq.type == EquipmentType.METER and eq.carrier == EnergyCarrier.ELECTRICITY]


def meter_topic(prefix: str, meter_id: str) -> str:
    return f"{prefix}/{meter_id}"


@dataclass(slots=True)
class _Machine:
    equipment_id: str
    behaviour: MachineBehaviour
    server: MachineServer
    truth: GroundTruth


class Simulator:
    """The simulated factory for every CNC machine, robot and electricity meter in ``assets``."""

    def __init__(
        self,
        settings: Settings,
        assets: AssetModel,
        *,
        ports: Mapping[str, int] | None = None,
        behaviour: BehaviourProfile = DEFAULT_PROFILE,
        power: PowerProfile = DEFAULT_POWER,
    ):
        self.settings = settings
        self.assets = assets
        self._sim = settings.simulator
        self._ports = dict(ports or {})
        self._behaviour_profile = behaviour
        self._power = power
        self._machine_equipment = simulated_machines(assets)
        self._meter_equipment = simulated_meters(assets)
        unknown = set(self._ports) - {eq.id for eq in self._machine_equipment}
        if unknown:
            raise ValueError(f"ports given for equipment that is not a simulated machine: {sorted(unknown)}")
        self._machines: dict[str, _Machine] = {}
        self._meters: dict[str, MeterPublisher] = {}
        self._truths: dict[str, GroundTruth] = {}
        self._clock: SimClock | None = None
        self._stack: AsyncExitStack | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._freezing = asyncio.Event()
        self._frozen_at: datetime | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("simulator is already running")
        quiet_asyncua_server_logs()
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            await self._start(stack)
        except BaseException:
            await self._stop_tasks()
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop_tasks()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def run(self) -> None:
        """Run until cancelled; a machine driver that fails ends the run with its error."""
        async with self:
            await asyncio.gather(*self._tasks)
            # Frozen: the servers keep showing their last values until cancelled.
            await asyncio.Event().wait()

    async def _start(self, stack: AsyncExitStack) -> None:
        # Servers first: building an address space takes about a second each, and the start
        # instant should be close to the moment the first values become visible.
        for index, eq in enumerate(self._machine_equipment):
            assert eq.ideal_cycle_time_s is not None
            port = self._ports.get(eq.id, self._sim.base_port + index)
            server = await stack.enter_async_context(MachineServer(eq.id, host=self._sim.host, port=port))
            behaviour = MachineBehaviour(
                eq.id, eq.ideal_cycle_time_s, self._sim.seed, self._behaviour_profile
            )
            truth = GroundTruth(eq.id)
            self._machines[eq.id] = _Machine(eq.id, behaviour, server, truth)
            self._truths[eq.id] = truth

        clock = SimClock(speed=self._sim.speed)
        self._clock = clock
        for machine in self._machines.values():
            status = machine.behaviour.status
            await machine.server.show(clock.start, status)
            machine.truth.record_counters(
                clock.start, status.parts_total, status.parts_good, status.parts_scrap
            )
            _record_status(machine.truth, clock.start, status)

        for eq in self._meter_equipment:
            truth = GroundTruth(eq.id)
            self._truths[eq.id] = truth
            covered = [self._truths[c.id] for c in self.assets.covered_by(eq.id) if c.id in self._machines]
            initial = round(random.Random(stable_seed(self._sim.seed, eq.id)).uniform(10_000, 100_000), 3)
            self._meters[eq.id] = await stack.enter_async_context(
                MeterPublisher(
                    eq.id,
                    broker=self.settings.broker,
                    topic=meter_topic(self._sim.meter_topic_prefix, eq.id),
                    clock=clock,
                    interval_s=self._sim.meter_interval_s,
                    covered=covered,
                    truth=truth,
                    initial_kwh=initial,
                    profile=self._power,
                )
            )

        self._tasks = [
            asyncio.create_task(self._drive(machine, clock), name=f"machine-{machine.equipment_id}")
            for machine in self._machines.values()
        ]
        log.info(
            "simulating %d machines and %d meters from %s",
            len(self._machines),
            len(self._meters),
            format_ts(clock.start),
        )

    async def _stop_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _drive(self, machine: _Machine, clock: SimClock) -> None:
        at, event = machine.behaviour.next_event(clock.start)
        while True:
            await clock.sleep_until(at, self._freezing)
            # Freezing applies every event that is due before the freeze instant and nothing after.
            if self._frozen_at is not None and at >= self._frozen_at:
                return
            await machine.server.show(at, event.status)
            if event.part is not None:
                machine.truth.record_part(at, event.part)
            _record_status(machine.truth, at, event.status)
            at, event = machine.behaviour.next_event(at)

    async def freeze(self) -> datetime:
        """Stop generating events everywhere at one instant and return it.

        Machines keep showing their last values; meters publish one final register stamped at
        the freeze instant and stop. Freezing twice returns the first instant.
        """
        if self._clock is None or self._stack is None:
            raise RuntimeError("simulator is not running")
        if self._frozen_at is not None:
            return self._frozen_at
        at = self._clock.now()
        self._frozen_at = at
        self._freezing.set()
        # Machines first: the meters integrate the machines' states up to the freeze instant.
        await asyncio.gather(*self._tasks)
        await asyncio.gather(*(meter.freeze(at) for meter in self._meters.values()))
        for truth in self._truths.values():
            truth.freeze(at)
        log.info("simulation frozen at %s", format_ts(at))
        return at

    # -- views -------------------------------------------------------------------------------

    @property
    def started_at(self) -> datetime:
        if self._clock is None:
            raise RuntimeError("simulator is not running")
        return self._clock.start

    @property
    def frozen_at(self) -> datetime | None:
        return self._frozen_at

    @property
    def endpoints(self) -> dict[str, str]:
        """Equipment id -> ``opc.tcp://`` URL of its server (with the real port)."""
        return {eq_id: m.server.endpoint for eq_id, m in self._machines.items()}

    @property
    def meter_topics(self) -> dict[str, str]:
        """Meter id -> MQTT topic it publishes to."""
        prefix = self._sim.meter_topic_prefix
        return {eq.id: meter_topic(prefix, eq.id) for eq in self._meter_equipment}

    def ground_truth(self, equipment_id: str) -> GroundTruth:
        try:
            return self._truths[equipment_id]
        except KeyError:
            raise KeyError(f"{equipment_id!r} is not simulated (or the simulator has not started)") from None

    def status(self, equipment_id: str) -> MachineStatus:
        """What a machine shows right now (its behaviour's current status)."""
        return self._machines[equipment_id].behaviour.status

    def ground_truth_json(self) -> dict[str, Any]:
        return {
            "started_at": format_ts(self.started_at),
            "frozen_at": None if self._frozen_at is None else format_ts(self._frozen_at),
            "seed": self._sim.seed,
            "equipment": {eq_id: truth.to_json() for eq_id, truth in self._truths.items()},
        }

    def write_ground_truth(self, path: Path | str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.ground_truth_json(), indent=1) + "\n")


def _record_status(truth: GroundTruth, ts: datetime, status: MachineStatus) -> None:
    truth.record_state(ts, status.state)
    truth.record_process_value(ts, "cycle_time_s", status.cycle_time_s)
    truth.record_process_value(ts, "spindle_speed_rpm", status.spindle_speed_rpm)
