"""The simulated machines' address spaces: a client that knows only the companion specifications finds its way.

The client below knows browse paths from OPC 40501 (Machine Tools), OPC 40010 (Robotics),
OPC 40001 (Machinery) and DI, and looks the namespace indexes up by URI; it never uses a NodeId.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, Node, ua

from core.assets import EquipmentType, load_asset_model
from core.settings import BrokerSettings, Settings, SimulatorSettings
from core.signals import MachineState
from simulators.behaviour import BREAKDOWN_ALARMS
from simulators.companion import MachineIdentity, identity_for
from simulators.opcua_machine import MachineServer
from simulators.runner import Simulator
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration

DI = "http://opcfoundation.org/UA/DI/"
MACHINERY = "http://opcfoundation.org/UA/Machinery/"
MACHINE_TOOL = "http://opcfoundation.org/UA/MachineTool/"
ROBOTICS = "http://opcfoundation.org/UA/Robotics/"

ASSETS = """\
version: 1
site:
  id: s
  workshops:
    - id: w
      lines:
        - id: l
          equipment:
            - {id: cnc-b1, name: "Mill B1", type: cnc, ideal_cycle_time_s: 0.3, meter: meter-b1}
            - {id: robot-b1, name: "Robot B1", type: robot, ideal_cycle_time_s: 0.4, meter: meter-b1}
            - {id: meter-b1, type: meter, carrier: electricity}
"""


class Browser:
    """Browse-path reads with prefixes resolved from namespace URIs: ``mt:Monitoring`` etc."""

    def __init__(self, client: Client, vendor_uri: str):
        self.client = client
        self.uris = {"di": DI, "m": MACHINERY, "mt": MACHINE_TOOL, "r": ROBOTICS, "v": vendor_uri}
        self.ns: dict[str, int] = {}

    async def resolve(self) -> None:
        array = await self.client.get_namespace_array()
        self.ns = {prefix: array.index(uri) for prefix, uri in self.uris.items()}

    async def node(self, *path: str) -> Node:
        parts = []
        for part in path:
            prefix, _, name = part.partition(":")
            parts.append(f"{self.ns[prefix]}:{name}" if prefix in self.ns else f"0:{part}")
        return await self.client.nodes.objects.get_child(parts)

    async def read(self, *path: str) -> Any:
        return await (await self.node(*path)).read_value()


@pytest.fixture
def settings(tmp_path: Path, mosquitto_server: MosquittoServer) -> Settings:
    path = tmp_path / "assets.yaml"
    path.write_text(ASSETS)
    return Settings(
        assets=path,
        broker=BrokerSettings(host=mosquitto_server.host, port=mosquitto_server.port),
        simulator=SimulatorSettings(seed=5, meter_interval_s=0.5),
    )


async def test_a_client_that_knows_only_browse_paths_reads_state_and_counters_of_a_cnc_and_a_robot(
    settings: Settings,
) -> None:
    assets = load_asset_model(settings.assets)
    events: list[Any] = []

    class AlarmHandler:
        def event_notification(self, event: Any) -> None:
            events.append(event)

    sim = Simulator(settings, assets, ports={"cnc-b1": 0, "robot-b1": 0})
    async with sim:
        async with Client(sim.endpoints["cnc-b1"]) as client:
            cnc = Browser(client, "urn:smart-factory:simulator:cnc-b1")
            await cnc.resolve()
            machine = await cnc.node("m:Machines", "v:cnc-b1")
            messages = await cnc.node("m:Machines", "v:cnc-b1", "mt:Notification", "mt:Messages")
            subscription = await client.create_subscription(50, AlarmHandler())
            await subscription.subscribe_events(messages)
            # the showcase round brings a breakdown within a few seconds
            for _ in range(100):
                if any(i.reason == "breakdown" for i in sim.ground_truth("cnc-b1").intervals):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            frozen = await sim.freeze()
            await asyncio.sleep(0.3)

            truth = sim.ground_truth("cnc-b1")
            status = sim.status("cnc-b1")
            state = truth.state_at(frozen)
            assert (await machine.read_display_name()).Text == "Mill B1"
            assert await machine.read_type_definition() == ua.NodeId(13, cnc.ns["mt"])  # MachineToolType
            ident = ("m:Machines", "v:cnc-b1", "di:Identification")
            assert (await cnc.read(*ident, "di:Manufacturer")).Text
            assert (await cnc.read(*ident, "di:SerialNumber")).count("-") == 1
            monitoring = ("m:Machines", "v:cnc-b1", "mt:Monitoring")
            item_state = (await cnc.read(*monitoring, "mt:MachineTool", "m:MachineryItemState", "CurrentState")).Text
            assert (item_state == "Executing") == (state == MachineState.PRODUCING)
            operation_mode = await cnc.read(*monitoring, "mt:MachineTool", "mt:OperationMode")
            assert operation_mode == (2 if state == MachineState.SETUP else 1 if state in (
                MachineState.PRODUCING, MachineState.IDLE) else 0)  # fmt: skip
            channel_state = await cnc.read(*monitoring, "v:Channel1", "mt:ChannelState")
            assert (channel_state == 0) == (state == MachineState.PRODUCING)
            assert await cnc.read(*monitoring, "v:Channel1", "mt:FeedOverride") in (50.0, 100.0)
            assert await cnc.read(*monitoring, "v:Spindle1", "mt:IsRotating") == (state == MachineState.PRODUCING)
            production = ("m:Machines", "v:cnc-b1", "mt:Production")
            assert await cnc.read(*production, "mt:ActiveProgram", "mt:Name") == status.program
            assert await cnc.read(*production, "mt:ProductionPlan", "v:Job", "mt:RunsCompleted") == status.batch_done
            assert await cnc.read(*production, "mt:Statistics", "mt:PartsProducedInLifetime") == status.parts_lifetime
            counters = truth.counters()
            vendor = ("m:Machines", "v:cnc-b1", "v:VendorData")
            for name, key in (("PartsTotal", "total"), ("PartsGood", "good"), ("PartsScrap", "scrap")):
                assert await cnc.read(*vendor, f"v:{name}") == counters[key]
            assert await cnc.read(*vendor, "v:State") == state.value

            # the breakdown raised an event from Notification/Messages, stamped when it happened
            texts = {f"{a.code}: {a.text}" for a in BREAKDOWN_ALARMS[EquipmentType.CNC]}
            breakdowns = {i.start for i in truth.intervals if i.reason == "breakdown"}
            seen = [e for e in events if e.Message.Text in texts]
            assert seen, [e.Message.Text for e in events]
            assert {e.Time.replace(tzinfo=UTC) for e in seen} <= breakdowns

        async with Client(sim.endpoints["robot-b1"]) as client:
            robot = Browser(client, "urn:smart-factory:simulator:robot-b1")
            await robot.resolve()
            truth = sim.ground_truth("robot-b1")
            status = sim.status("robot-b1")
            state = truth.state_at(frozen)
            system = ("m:Machines", "v:robot-b1")
            node = await robot.node(*system)
            assert await node.read_type_definition() == ua.NodeId(1002, robot.ns["r"])  # MotionDeviceSystemType
            task = (*system, "r:Controllers", "v:Controller", "r:TaskControls", "v:Task1", "di:ParameterSet")
            assert await robot.read(*task, "r:TaskProgramName") == status.program
            assert await robot.read(*task, "v:CycleCount") == truth.counters()["total"]
            # the same robot under DI's DeviceSet, as OPC 40010 places it
            safety = ("di:DeviceSet", "v:robot-b1", "r:SafetyStates", "v:SafetyState", "di:ParameterSet")
            assert await robot.read(*safety, "r:OperationalMode") in (1, 3)
            assert await robot.read(*safety, "r:EmergencyStop") is False or state == MachineState.DOWN
            arm = (*system, "r:MotionDevices", "v:Arm")
            assert await robot.read(*arm, "di:ParameterSet", "r:OnPath") == (state == MachineState.PRODUCING)
            assert isinstance(await robot.read(*arm, "r:Axes", "v:A3", "di:ParameterSet", "r:ActualPosition"), float)
            assert await robot.read(*system, "v:VendorData", "v:StateCode") == {
                MachineState.PRODUCING: 1, MachineState.IDLE: 2, MachineState.SETUP: 3,
                MachineState.DOWN: 4, MachineState.PLANNED_STOP: 5,
            }[state]  # fmt: skip


async def test_several_machines_share_one_server_and_keep_their_contract_node_ids(settings: Settings) -> None:
    assets = load_asset_model(settings.assets)
    async with Simulator(settings, assets, ports={"cnc-b1": 0}, machines_per_server=2, telemetry_interval_s=0.2) as sim:
        assert len(sim.servers) == 1
        assert sim.endpoints["cnc-b1"] == sim.endpoints["robot-b1"]
        async with Client(sim.endpoints["cnc-b1"]) as client:
            assert await client.get_namespace_index("urn:smart-factory:simulator:cnc-b1") == 2
            await asyncio.sleep(1.0)
            for eq in ("cnc-b1", "robot-b1"):
                assert await client.get_node(f"ns=2;s={eq}.State").read_value() == sim.status(eq).state.value
            power = client.get_node("ns=2;s=robot-b1.PowerActive")
            first = await power.read_data_value()
            await asyncio.sleep(0.5)
            second = await power.read_data_value()
            # telemetry ticks: a fresh value stamped with the time it was sampled
            assert second.SourceTimestamp > first.SourceTimestamp
            assert abs(second.SourceTimestamp.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(seconds=1)


async def test_a_restarted_server_comes_back_on_its_port_with_its_address_space() -> None:
    identity: MachineIdentity = identity_for("cnc-r1", "Mill R1", EquipmentType.CNC, 1)
    t0 = datetime.now(UTC)
    async with MachineServer("cnc-r1", [identity], initial_timestamp=t0) as server:
        endpoint, port = server.endpoint, server.port
        await server.show("cnc-r1", {"PartsTotal": 10}, t0)
        async with Client(endpoint) as client:
            assert await client.get_node("ns=2;s=cnc-r1.PartsTotal").read_value() == 10
        await server.go_away()
        assert not server.listening
        with pytest.raises((OSError, TimeoutError)):
            async with Client(endpoint, timeout=1):
                pass
        # written while away: shown once it is back
        await server.show("cnc-r1", {"PartsTotal": 11}, t0 + timedelta(seconds=1))
        await server.come_back()
        assert server.port == port and server.restarts == 1
        async with Client(endpoint) as client:
            value = await client.get_node("ns=2;s=cnc-r1.PartsTotal").read_data_value()
            assert value.Value.Value == 11
            assert value.SourceTimestamp.replace(tzinfo=UTC) == t0 + timedelta(seconds=1)
            manufacturer = await client.nodes.objects.get_child(
                [
                    f"{await client.get_namespace_index(MACHINERY)}:Machines",
                    "2:cnc-r1",
                    f"{await client.get_namespace_index(DI)}:Identification",
                    f"{await client.get_namespace_index(DI)}:Manufacturer",
                ]
            )
            assert (await manufacturer.read_value()).Text == identity.manufacturer
