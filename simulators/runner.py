"""Run the simulated factory live: OPC UA servers for CNC machines and robots, MQTT publishers for meters.

``async with Simulator(settings, assets, scenario=...) as sim:`` builds the servers, stamps the
initial values at one start instant and drives every machine from its behaviour model
(``simulators.behaviour``) at ``settings.simulator.speed`` model seconds per wall second (see
``simulators.clock`` for what the platform sees at speeds other than 1). Without a scenario the
machines behave by ``simulators.scenario.default_scenario``: around the clock, busy, no faults.

Faults come from the behaviour model and are carried out here: a power cycle shows DOWN and then
counters at 0, a PLC clock jump stamps every value of that machine with its wrong clock until it
is set right, a server restart takes the machine's OPC UA server away for a few wall seconds.
Every one of them lands in the ground truth.

``await sim.freeze()`` stops all events at one instant so tests can compare the platform with the
ground truth for windows that end there; ``await sim.run()`` runs until cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from core.assets import DEFAULT_PARK_ID, AssetModel, Equipment, EquipmentType
from core.errors import ConfigError
from core.settings import Settings
from core.wire import format_ts
from simulators.behaviour import FaultKind, MachineBehaviour, MachineEvent, MachineStatus
from simulators.clock import SimClock
from simulators.companion import MachineIdentity, Telemetry, event_values, identity_for
from simulators.ground_truth import GroundTruth
from simulators.meter import UNITS, MeterModel, MeterPublisher, initial_register
from simulators.opcua_machine import MachineServer, quiet_asyncua_server_logs
from simulators.scenario import FactoryScenario, default_scenario

log = logging.getLogger(__name__)

MACHINE_TYPES = frozenset({EquipmentType.CNC, EquipmentType.ROBOT})


def simulated_machines(assets: AssetModel, site: str | None = None) -> list[Equipment]:
    """Equipment of one site (default: the park's only one) that gets an OPC UA server, in file order
    (which fixes the default ports)."""
    scope = assets.scope(assets.one_site(site).id)
    return [eq for eq in scope if eq.type in MACHINE_TYPES and eq.ideal_cycle_time_s is not None]


def simulated_meters(assets: AssetModel, site: str | None = None) -> list[Equipment]:
    """Meters of one site (default: the park's only one) that publish: every meter with a carrier."""
    scope = assets.scope(assets.one_site(site).id)
    return [eq for eq in scope if eq.type == EquipmentType.METER and eq.carrier is not None]


def meter_topic(prefix: str, meter_id: str) -> str:
    return f"{prefix}/{meter_id}"


def server_groups(machine_ids: list[str], machines_per_server: int) -> list[list[str]]:
    """Machines in file order, ``machines_per_server`` to a server; a server is named after its first machine."""
    return [machine_ids[i : i + machines_per_server] for i in range(0, len(machine_ids), machines_per_server)]


@dataclass(slots=True)
class _Machine:
    identity: MachineIdentity
    behaviour: MachineBehaviour
    server: MachineServer
    truth: GroundTruth
    telemetry: Telemetry
    last_stamp: datetime
    shown: MachineStatus  # what the machine shows now (the behaviour is one event ahead)

    @property
    def equipment_id(self) -> str:
        return self.identity.equipment_id


@dataclass(slots=True)
class _Counters:
    events: int = 0
    telemetry_ticks: int = 0
    restarts: int = 0
    late_telemetry_ticks: int = 0
    restarting: set[str] = field(default_factory=set)


class Simulator:
    """The simulated factory for every CNC machine, robot and meter in ``assets`` (or the scenario's)."""

    def __init__(
        self,
        settings: Settings,
        assets: AssetModel,
        *,
        scenario: FactoryScenario | None = None,
        ports: Mapping[str, int] | None = None,
        speed: float | None = None,
        machines_per_server: int | None = None,
        telemetry_interval_s: float | None = None,
    ):
        self.settings = settings
        if scenario is None:
            try:
                scenario = default_scenario(assets, settings.simulator.seed, site=settings.simulator.site)
            except (KeyError, ValueError) as exc:  # no such site, or a park of several and none named
                raise ConfigError(
                    str(settings.source or "settings"), str(exc.args[0]), field="simulator.site"
                ) from None
        self.scenario = scenario
        self.assets = self.scenario.assets
        self._sim = settings.simulator
        self.speed = speed if speed is not None else self._sim.speed
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, got {self.speed}")
        self._ports = dict(ports or {})
        self._machines_per_server = machines_per_server or self.scenario.machines_per_server
        self._telemetry_interval = (
            self.scenario.spec.opcua.telemetry_interval if telemetry_interval_s is None else telemetry_interval_s
        )
        self._machine_equipment = simulated_machines(self.assets, self.scenario.site.id)
        self._meter_equipment = simulated_meters(self.assets, self.scenario.site.id)
        unknown = set(self._ports) - {eq.id for eq in self._machine_equipment}
        if unknown:
            raise ValueError(f"ports given for equipment that is not a simulated machine: {sorted(unknown)}")
        self._servers: list[MachineServer] = []
        self._machines: dict[str, _Machine] = {}
        self._meters: dict[str, MeterPublisher] = {}
        self._truths: dict[str, GroundTruth] = {}
        self._clock: SimClock | None = None
        self._stack: AsyncExitStack | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._fault_tasks: set[asyncio.Task[None]] = set()
        self._freezing = asyncio.Event()
        self._frozen_at: datetime | None = None  # stamp time
        self._frozen_model: datetime | None = None
        self.counters = _Counters()

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
        seed = self.scenario.seed
        identities = {eq.id: identity_for(eq.id, eq.name, eq.type, seed) for eq in self._machine_equipment}
        # Servers first: building an address space takes about a second per server, and the
        # start instant should be close to the moment the first values become visible.
        groups = server_groups([eq.id for eq in self._machine_equipment], self._machines_per_server)
        server_of: dict[str, MachineServer] = {}
        for index, group in enumerate(groups):
            port = self._ports.get(group[0], self._sim.base_port + index)
            server = await stack.enter_async_context(
                MachineServer(group[0], [identities[eq] for eq in group], host=self._sim.host, port=port, listen=False)
            )
            self._servers.append(server)
            for member in group:
                server_of[member] = server

        clock = SimClock(speed=self.speed)
        self._clock = clock
        for eq in self._machine_equipment:
            assert eq.ideal_cycle_time_s is not None
            behaviour = MachineBehaviour(
                eq.id,
                eq.ideal_cycle_time_s,
                self.scenario.behaviour(eq.id),
                seed,
                start=clock.start,
                kind=eq.type,
                calendar=self.scenario.calendar,
                tz=self.scenario.timezone,
                speed=self.speed,
            )
            truth = GroundTruth(eq.id)
            machine = _Machine(
                identities[eq.id],
                behaviour,
                server_of[eq.id],
                truth,
                Telemetry(identities[eq.id], seed),
                clock.start,
                behaviour.status,
            )
            self._machines[eq.id] = machine
            self._truths[eq.id] = truth
            status = behaviour.status
            await machine.server.show(eq.id, event_values(eq.type, status, self.speed), clock.start)
            truth.record_counters(
                clock.start, status.parts_total, status.parts_good, status.parts_scrap, status.parts_rework
            )
            self._record_status(machine, clock.start, status)
        for eq in self._meter_equipment:
            assert eq.carrier is not None
            resolved = self.scenario.meter(eq.id)
            truth = GroundTruth(eq.id, unit=UNITS[eq.carrier], carrier=eq.carrier.value)
            self._truths[eq.id] = truth
            machines = {m: self._truths[m] for m in resolved.machines if m in self._machines}
            power = {m: self.scenario.behaviour(m).power_kw for m in machines}
            self._meters[eq.id] = await stack.enter_async_context(
                MeterPublisher(
                    MeterModel(resolved, power, self.speed),
                    broker=self.settings.broker,
                    topic=resolved.topic or meter_topic(self._sim.meter_topic_prefix, eq.id),
                    clock=clock,
                    interval_s=resolved.interval_s or self._sim.meter_interval_s,
                    machines=machines,
                    truth=truth,
                    initial_register=initial_register(resolved, seed),
                    seed=seed,
                )
            )

        self._tasks = [
            asyncio.create_task(self._drive(machine, clock), name=f"machine-{machine.equipment_id}")
            for machine in self._machines.values()
        ]
        if self._telemetry_interval > 0 and self._machines:
            self._tasks.append(asyncio.create_task(self._telemetry(clock), name="telemetry"))
        # Only now may clients connect: a server listening before its machines showed their first
        # values would show counters at 0, which a client takes for a reset (and the jump to the
        # real count after it for production). The machines run meanwhile: were they to wait for
        # the servers, their first events would be written late with past timestamps.
        for server in self._servers:
            await server.listen()
        log.info(
            "simulating %d machines on %d OPC UA servers and %d meters from %s at %gx (%s)",
            len(self._machines),
            len(self._servers),
            len(self._meters),
            format_ts(clock.start),
            self.speed,
            self.scenario.source,
        )

    async def _stop_tasks(self) -> None:
        for task in [*self._tasks, *self._fault_tasks]:
            task.cancel()
        for task in [*self._tasks, *self._fault_tasks]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._fault_tasks = set()

    # -- driving -----------------------------------------------------------------------------

    async def _drive(self, machine: _Machine, clock: SimClock) -> None:
        while True:
            event = machine.behaviour.next_event()
            await clock.sleep_until(event.at, self._freezing)
            # Freezing applies every event that is due before the freeze instant and nothing after.
            if self._frozen_model is not None and event.at >= self._frozen_model:
                return
            await self._apply(machine, event, clock)

    def _stamp(self, machine: _Machine, model_ts: datetime, clock: SimClock) -> datetime:
        stamp = clock.stamp(model_ts)
        # Two events are never stamped alike, even when the speed squeezes them together.
        if stamp <= machine.last_stamp:
            stamp = machine.last_stamp + timedelta(microseconds=1)
        machine.last_stamp = stamp
        return stamp

    @staticmethod
    def _device_time(status: MachineStatus, stamp: datetime, clock: SimClock) -> datetime:
        """The PLC's clock at true time ``stamp``: right, or run on from the year it jumped back to."""
        jump = status.clock_jump
        if jump is None:
            return stamp
        return jump.jump_to + (stamp - clock.stamp(jump.since))

    async def _apply(self, machine: _Machine, event: MachineEvent, clock: SimClock) -> None:
        stamp = self._stamp(machine, event.at, clock)
        if self._frozen_at is not None and stamp >= self._frozen_at:
            return
        self.counters.events += 1
        truth, status = machine.truth, event.status
        eq = machine.equipment_id
        if event.part is not None:
            truth.record_part(stamp, event.part)
        if event.fault == FaultKind.POWER_LOSS:
            truth.record_fault_start(FaultKind.POWER_LOSS.value, stamp, "power failure; counters restart at 0")
        elif event.fault == FaultKind.COUNTER_RESET:
            truth.record_fault_end(FaultKind.POWER_LOSS.value, stamp)
            truth.record_reset(stamp)
        elif event.fault == FaultKind.CLOCK_JUMP:
            assert status.clock_jump is not None
            truth.record_fault_start(
                FaultKind.CLOCK_JUMP.value, stamp, f"device clock set back to {format_ts(status.clock_jump.jump_to)}"
            )
        elif event.fault == FaultKind.CLOCK_RESYNC:
            truth.record_fault_end(FaultKind.CLOCK_JUMP.value, stamp)
        self._record_status(machine, stamp, status)

        device_ts = self._device_time(status, stamp, clock)
        raised = status.alarm is not None and status.alarm != machine.shown.alarm
        machine.shown = status
        await machine.server.show(eq, event_values(machine.identity.kind, status, self.speed), device_ts, stamp)
        if raised and status.alarm is not None:
            await machine.server.raise_alarm(eq, status.alarm, device_ts)
        if event.fault == FaultKind.SERVER_RESTART:
            self._restart_server(machine.server, stamp, event.restart_for_s)

    def _record_status(self, machine: _Machine, ts: datetime, status: MachineStatus) -> None:
        truth = machine.truth
        truth.record_state(ts, status.state, status.reason.value)
        truth.record_process_value(ts, "cycle_time_s", round(status.cycle_time_s / self.speed, 6))
        truth.record_process_value(ts, "spindle_speed_rpm", status.spindle_speed_rpm)
        truth.record_process_value(ts, "program", status.program)

    def _restart_server(self, server: MachineServer, stamp: datetime, down_for_s: float) -> None:
        if server.name in self.counters.restarting:
            return  # already away: another machine of this server asked for it
        self.counters.restarting.add(server.name)
        affected = [m for m in self._machines.values() if m.server is server]
        for m in affected:
            m.truth.record_fault_start(
                FaultKind.SERVER_RESTART.value, stamp, f"OPC UA server away for {down_for_s:g} s"
            )
        task = asyncio.create_task(self._restart(server, affected, down_for_s), name=f"restart-{server.name}")
        self._fault_tasks.add(task)
        task.add_done_callback(self._fault_tasks.discard)

    async def _restart(self, server: MachineServer, affected: list[_Machine], down_for_s: float) -> None:
        assert self._clock is not None
        log.info("%s: OPC UA server restarting (away for %.1f s)", server.name, down_for_s)
        try:
            await server.go_away()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freezing.wait(), down_for_s)
        finally:
            await server.come_back()
            back = self._clock.stamp_now()
            if self._frozen_at is not None:
                back = min(back, self._frozen_at)
            for m in affected:
                began = m.truth.faults_of(FaultKind.SERVER_RESTART.value)[-1].start
                m.truth.record_fault_end(FaultKind.SERVER_RESTART.value, max(back, began))
            self.counters.restarts += 1
            self.counters.restarting.discard(server.name)

    async def _telemetry(self, clock: SimClock) -> None:
        """Every telemetry interval (wall clock), write each machine's live process values."""
        loop = asyncio.get_running_loop()
        interval = self._telemetry_interval
        next_tick = loop.time() + interval
        while not self._freezing.is_set():
            delay = next_tick - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._freezing.wait(), delay)
                if self._freezing.is_set():
                    return
            else:
                self.counters.late_telemetry_ticks += 1
            next_tick = max(next_tick + interval, loop.time())
            model_now = clock.now()
            stamp_now = clock.stamp(model_now)
            t = (model_now - clock.start).total_seconds()
            for machine in self._machines.values():
                status = machine.shown
                values = machine.telemetry.sample(status, t, stamp_now)
                device_ts = self._device_time(status, stamp_now, clock)
                await machine.server.show(machine.equipment_id, values, device_ts, stamp_now)
            self.counters.telemetry_ticks += 1

    async def freeze(self) -> datetime:
        """Stop generating events everywhere at one instant and return it (stamp time).

        Machines keep showing their last values (a server away for a restart comes back); meters
        publish one final register stamped at the freeze instant and stop. Freezing twice returns
        the first instant.
        """
        if self._clock is None or self._stack is None:
            raise RuntimeError("simulator is not running")
        if self._frozen_at is not None:
            return self._frozen_at
        model_now = self._clock.now()
        at = self._clock.stamp(model_now)
        self._frozen_model = model_now
        self._frozen_at = at
        self._freezing.set()
        # Machines first: the meters integrate the machines' states up to the freeze instant.
        await asyncio.gather(*self._tasks)
        if self._fault_tasks:
            await asyncio.gather(*list(self._fault_tasks))
        await asyncio.gather(*(meter.freeze(at) for meter in self._meters.values()))
        for truth in self._truths.values():
            truth.freeze(at)
        log.info("simulation frozen at %s", format_ts(at))
        return at

    # -- views -------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the simulator got as far as its start instant (its ground truth has a beginning)."""
        return self._clock is not None

    @property
    def started_at(self) -> datetime:
        if self._clock is None:
            raise RuntimeError("simulator is not running")
        return self._clock.start

    @property
    def frozen_at(self) -> datetime | None:
        return self._frozen_at

    @property
    def clock(self) -> SimClock:
        if self._clock is None:
            raise RuntimeError("simulator is not running")
        return self._clock

    @property
    def endpoints(self) -> dict[str, str]:
        """Equipment id -> ``opc.tcp://`` URL of its server (with the real port); grouped machines share one."""
        return {eq_id: m.server.endpoint for eq_id, m in self._machines.items()}

    @property
    def servers(self) -> list[MachineServer]:
        return list(self._servers)

    @property
    def meter_topics(self) -> dict[str, str]:
        """Meter id -> MQTT topic it publishes to."""
        prefix = self._sim.meter_topic_prefix
        return {eq.id: self.scenario.meter(eq.id).topic or meter_topic(prefix, eq.id) for eq in self._meter_equipment}

    def ground_truth(self, equipment_id: str) -> GroundTruth:
        try:
            return self._truths[equipment_id]
        except KeyError:
            raise KeyError(f"{equipment_id!r} is not simulated (or the simulator has not started)") from None

    def status(self, equipment_id: str) -> MachineStatus:
        """What a machine shows right now (the status of its last event)."""
        return self._machines[equipment_id].shown

    def ground_truth_json(self) -> dict[str, Any]:
        now = self.clock.stamp_now()
        equipment = {eq_id: truth.to_json(until=self._frozen_at or now) for eq_id, truth in self._truths.items()}
        totals: dict[str, Any] = {"parts": {"total": 0, "good": 0, "scrap": 0, "rework": 0}, "consumption": {}}
        for data in equipment.values():
            summary = data.get("summary", {})
            for key, n in summary.get("parts", {}).items():
                totals["parts"][key] += n
            if "consumption" in summary:
                unit = f"{summary['carrier']} ({summary['unit']})"
                totals["consumption"][unit] = totals["consumption"].get(unit, 0.0) + summary["consumption"]
        return {
            "started_at": format_ts(self.started_at),
            "frozen_at": None if self._frozen_at is None else format_ts(self._frozen_at),
            "written_at": format_ts(now),
            "seed": self.scenario.seed,
            "speed": self.speed,
            "scenario": self.scenario.source,
            "totals": totals,
            "equipment": equipment,
        }

    def write_ground_truth(self, path: Path | str) -> None:
        """Write the ground truth as JSON; atomically, so a reader never sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.ground_truth_json(), indent=1) + "\n")
        os.replace(tmp, path)


def accelerated_assets(assets: AssetModel, speed: float) -> AssetModel:
    """The asset model as an accelerated run shows it: every ideal cycle time divided by ``speed``.

    Give this to the platform's KPI worker when it evaluates a run at ``speed`` != 1, so the
    performance it computes (ideal cycle time x parts / run time) means what it means at speed 1.
    """

    def faster(eq: Equipment) -> Equipment:
        if eq.ideal_cycle_time_s is None:
            return eq
        return eq.model_copy(update={"ideal_cycle_time_s": eq.ideal_cycle_time_s / speed})

    sites = [
        site.model_copy(
            update={
                "workshops": [
                    ws.model_copy(
                        update={
                            "lines": [
                                line.model_copy(update={"equipment": [faster(eq) for eq in line.equipment]})
                                for line in ws.lines
                            ]
                        }
                    )
                    for ws in site.workshops
                ]
            }
        )
        for site in assets.sites
    ]
    return AssetModel(assets.park.model_copy(update={"sites": sites}), source=f"{assets.source} at {speed:g}x")


def asset_yaml(assets: AssetModel) -> str:
    """An asset model as a YAML asset file (defaults left out): a site file for a park of one site."""
    park = assets.park
    if len(park.sites) == 1 and park.id == DEFAULT_PARK_ID and not park.name and park.timezone is None:
        data = {"site": park.sites[0].model_dump(mode="json", exclude_defaults=True)}
    else:
        data = {"park": park.model_dump(mode="json", exclude_defaults=True)}
    return yaml.safe_dump({"version": 1, **data}, sort_keys=False, allow_unicode=True)
