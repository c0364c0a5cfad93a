"""Discovery by profile: the agent finds machine tools and robots on real asyncua servers without a NodeId list.

Two address spaces: the simulators' (``simulators/companion.py``: OPC 40501 machine tools and OPC
40010 robots on OPC 40001-1 Machinery, several machines on one server), and a small server built
here the way other vendors do it (the specifications' namespaces registered in another order, a
vendor subtype of MachineToolType, MachineryItemState referenced straight from the machine with
only a LocalizedText CurrentState, an object of another type in the Machines folder).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from asyncua import Client, Server, ua

from core.assets import EquipmentType
from core.settings import OpcUaSource
from core.wire import Sample
from edge.addressing import AddressSpace
from edge.discovery import ALL_SIGNALS, discover
from edge.opcua_source import OpcUaCollector
from edge.plan import SourcePlan, plan_source
from edge.profiles import MACHINE_TOOL_URI, MACHINERY_URI
from edge.reconnect import Backoff
from simulators.companion import identity_for, machinery_item_state_id
from simulators.opcua_machine import MachineServer, quiet_asyncua_server_logs
from tests.servers import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

MACHINES = [
    identity_for("cnc-01", "Mill 1", EquipmentType.CNC, 7),
    identity_for("cnc-02", "Mill 2", EquipmentType.CNC, 7),
    identity_for("robot-01", "Robot 1", EquipmentType.ROBOT, 7),
]
MACHINE_TOOL_SIGNALS = {"state", "parts_total", "operation_mode", "alarm_code"}
ROBOT_SIGNALS = {"state", "parts_total", "operation_mode", "emergency_stop", "protective_stop"}


def discovering(endpoint: str, profile: str, **discover: Any) -> OpcUaSource:
    return OpcUaSource(endpoint=endpoint, discover=cast(Any, {"profile": profile, **discover}))


async def plan(endpoint: str, source: OpcUaSource) -> SourcePlan:
    async with Client(endpoint) as client:
        return await plan_source(client, source)


def signals_by_equipment(p: SourcePlan) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for s in p.signals:
        out.setdefault(s.equipment, set()).add(s.signal)
    return out


async def show_state(server: MachineServer, equipment: str, state: str, **values: Any) -> None:
    await server.show(
        equipment,
        {
            "MachineryItemState": ua.LocalizedText(state, "en"),
            "MachineryItemStateId": machinery_item_state_id(state),
            **values,
        },
        datetime.now(UTC),
    )


@pytest.fixture
async def cell() -> AsyncIterator[MachineServer]:
    async with MachineServer("cell", MACHINES) as server:
        yield server


async def test_machine_tools_are_found_with_state_counters_alarms_and_identification(cell: MachineServer) -> None:
    p = await plan(cell.endpoint, discovering(cell.endpoint, "machine-tool"))
    assert p.unresolved == []
    assert signals_by_equipment(p) == {"cnc-01": MACHINE_TOOL_SIGNALS, "cnc-02": MACHINE_TOOL_SIGNALS}
    plates = {m.equipment: m.identification for m in p.machines}
    for identity in MACHINES[:2]:
        assert plates[identity.equipment_id] == {
            "manufacturer": identity.manufacturer,
            "model": identity.model,
            "serial_number": identity.serial_number,
            "product_instance_uri": f"urn:{identity.manufacturer.lower().replace(' ', '-')}:{identity.serial_number}",
        }
    state = next(s for s in p.signals if s.equipment == "cnc-01" and s.signal == "state")
    assert state.address.endswith(":MachineryItemState/CurrentState/Id")  # the id, not the localized text
    parts = next(s for s in p.signals if s.equipment == "cnc-01" and s.signal == "parts_total")
    assert parts.address.endswith("/5:Statistics/5:PartsProducedInLifetime")


async def test_robots_are_found_by_their_type_with_wildcard_paths_into_controllers_and_safety(
    cell: MachineServer,
) -> None:
    p = await plan(cell.endpoint, discovering(cell.endpoint, "robot"))
    assert p.unresolved == []
    assert signals_by_equipment(p) == {"robot-01": ROBOT_SIGNALS}
    assert p.machines[0].identification["serial_number"] == MACHINES[2].serial_number
    parts = next(s for s in p.signals if s.signal == "parts_total")
    assert "/2:Controller/" in parts.address and parts.address.endswith("/2:CycleCount")


async def test_the_generic_machinery_profile_finds_every_machine_and_its_state(cell: MachineServer) -> None:
    p = await plan(cell.endpoint, discovering(cell.endpoint, "machinery"))
    assert signals_by_equipment(p) == {"cnc-01": {"state"}, "cnc-02": {"state"}, "robot-01": {"state"}}


async def test_instances_map_to_equipment_by_serial_number_uri_or_name_and_the_rest_is_listed_not_read(
    cell: MachineServer,
) -> None:
    cnc1, cnc2 = MACHINES[0], MACHINES[1]
    uri2 = f"urn:{cnc2.manufacturer.lower().replace(' ', '-')}:{cnc2.serial_number}"
    equipment = {cnc1.serial_number: "mill-7", "cnc-99": "mill-9"}
    p = await plan(cell.endpoint, discovering(cell.endpoint, "machine-tool", equipment=equipment))
    assert signals_by_equipment(p) == {"mill-7": MACHINE_TOOL_SIGNALS}
    assert {m.browse_name: m.equipment for m in p.machines} == {"cnc-01": "mill-7", "cnc-02": None}
    missing = "no machine-tool instance named 'cnc-99' (BrowseName, SerialNumber or URI)"
    assert p.unresolved == [("mill-9", ALL_SIGNALS, missing)]
    p = await plan(cell.endpoint, discovering(cell.endpoint, "machine-tool", equipment={uri2: "mill-8"}))
    assert signals_by_equipment(p) == {"mill-8": MACHINE_TOOL_SIGNALS}


async def test_configured_nodes_win_over_discovered_ones(cell: MachineServer) -> None:
    source = OpcUaSource(
        endpoint=cell.endpoint,
        equipment="cnc-01",
        nodes={"state": "ns=2;s=cnc-01.State", "spindle_speed": "ns=2;s=cnc-01.SpindleSpeed"},
        discover=cast(Any, {"profile": "machine-tool", "equipment": {"cnc-01": "cnc-01"}}),
    )
    p = await plan(cell.endpoint, source)
    assert signals_by_equipment(p) == {"cnc-01": MACHINE_TOOL_SIGNALS | {"spindle_speed"}}
    state = next(s for s in p.signals if s.signal == "state")
    assert state.address == "ns=2;s=cnc-01.State"
    assert state.states is not None and state.states.map("SETUP") == "SETUP"  # canonical names, not the profile's map


class ListSink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def put(self, sample: Sample) -> None:
        self.samples.append(sample)

    def has(self, equipment: str, signal: str, value: Any) -> bool:
        return any((s.equipment, s.signal, s.value) == (equipment, signal, value) for s in self.samples)


async def test_discovered_machines_flow_through_the_collector_with_canonical_states(cell: MachineServer) -> None:
    await show_state(cell, "cnc-01", "Executing", PartsProducedInLifetime=42)
    await show_state(cell, "robot-01", "OutOfService", CycleCount=5, EmergencyStop=True)
    await show_state(cell, "cnc-02", "NotExecuting")
    sink = ListSink()
    collector = OpcUaCollector(discovering(cell.endpoint, "machinery"), sink, backoff=Backoff(0.05, 0.2))
    async with collector:
        await wait_until(lambda: sink.has("cnc-01", "state", "PRODUCING"), "cnc-01 PRODUCING")
        await wait_until(lambda: sink.has("robot-01", "state", "DOWN"), "robot-01 DOWN")
        await show_state(cell, "cnc-01", "NotExecuting")
        await wait_until(lambda: sink.has("cnc-01", "state", "IDLE"), "cnc-01 IDLE")
        await show_state(cell, "cnc-01", "NotAvailable")
        await wait_until(lambda: sink.has("cnc-01", "state", "DOWN"), "cnc-01 DOWN")
    states = [(s.value, s.raw) for s in sink.samples if s.equipment == "cnc-01" and s.signal == "state"]
    assert ("PRODUCING", "Executing") in states and ("IDLE", "NotExecuting") in states
    assert ("DOWN", "NotAvailable") in states
    assert collector.counters.unmapped_states == 0


async def test_machine_tool_counters_and_robot_safety_flags_flow(cell: MachineServer) -> None:
    await show_state(cell, "cnc-01", "Executing", PartsProducedInLifetime=42)
    await show_state(cell, "robot-01", "OutOfService", CycleCount=5, EmergencyStop=True)
    sink = ListSink()
    async with OpcUaCollector(discovering(cell.endpoint, "machine-tool"), sink, backoff=Backoff(0.05, 0.2)):
        await wait_until(lambda: sink.has("cnc-01", "parts_total", 42), "cnc-01 parts")
    sink_robot = ListSink()
    async with OpcUaCollector(discovering(cell.endpoint, "robot"), sink_robot, backoff=Backoff(0.05, 0.2)):
        await wait_until(lambda: sink_robot.has("robot-01", "parts_total", 5), "robot cycles")
        await wait_until(lambda: sink_robot.has("robot-01", "emergency_stop", True), "emergency stop")


# -- another vendor's way --------------------------------------------------------------------------


def _nid(identifier: Any, ns: int) -> ua.NodeId:
    return ua.NodeId(identifier, cast(Any, ns))


@asynccontextmanager
async def vendor_server() -> AsyncIterator[str]:
    """MachineTool registered before Machinery, a vendor subtype, MachineryItemState as an AddIn."""
    quiet_asyncua_server_logs()
    server = Server()
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/vendor/"
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    for n in range(3):
        await server.register_namespace(f"urn:filler:{n}")
    mt = await server.register_namespace(MACHINE_TOOL_URI)
    vendor = await server.register_namespace("urn:acme:machines")
    machinery = await server.register_namespace(MACHINERY_URI)
    base = server.nodes.base_object_type
    machine_tool_type = await base.add_object_type(_nid(13, mt), ua.QualifiedName("MachineToolType", mt))
    acme_mill = await machine_tool_type.add_object_type(_nid("AcmeMill", vendor), ua.QualifiedName("AcmeMill", vendor))
    other_type = await base.add_object_type(_nid("Conveyor", vendor), ua.QualifiedName("ConveyorType", vendor))
    folder = await server.nodes.objects.add_folder(_nid(1001, machinery), ua.QualifiedName("Machines", machinery))
    mill = await folder.add_object(_nid("M1", vendor), ua.QualifiedName("Mill 1", vendor), objecttype=acme_mill.nodeid)
    state = await mill.add_object(_nid("M1.State", vendor), ua.QualifiedName("MachineryItemState", machinery))
    executing = ua.LocalizedText("Executing")
    await state.add_variable(_nid("M1.Current", vendor), ua.QualifiedName("CurrentState", 0), executing)
    await folder.add_object(_nid("C1", vendor), ua.QualifiedName("Conveyor 1", vendor), objecttype=other_type.nodeid)
    await server.start()
    try:
        yield endpoint
    finally:
        await server.stop()


async def test_a_vendor_subtype_is_a_machine_tool_and_an_other_type_is_not() -> None:
    async with vendor_server() as endpoint:
        p = await plan(endpoint, discovering(endpoint, "machine-tool", equipment={"Mill 1": "mill-1"}))
        assert signals_by_equipment(p) == {"mill-1": {"state"}}
        state = p.signals[0]
        assert state.address.endswith(":MachineryItemState/CurrentState")  # no Id here: the text is read
        async with Client(endpoint) as client:
            value = await client.get_node(state.node_id).read_value()
        assert state.states is not None and state.states.map(value) == "PRODUCING"
        both = {"Mill 1": "m1", "Conveyor 1": "c1"}
        generic = await plan(endpoint, discovering(endpoint, "machinery", equipment=both))
        assert {m.equipment for m in generic.machines} == {"m1", "c1"}
        assert signals_by_equipment(generic) == {"m1": {"state"}}  # the conveyor has no MachineryItemState


async def test_no_instance_of_the_profile_is_an_unresolved_source() -> None:
    async with vendor_server() as endpoint:
        p = await plan(endpoint, discovering(endpoint, "robot"))
        assert p.signals == [] and p.machines == []
        assert p.unresolved == [
            (
                "",
                ALL_SIGNALS,
                f"no robot instance under nsu={MACHINERY_URI};i=1001 or nsu=http://opcfoundation.org/UA/DI/;i=5001",
            )
        ]
        p = await plan(endpoint, discovering(endpoint, "machinery", root=f"/<{MACHINERY_URI}>:Nowhere"))
        (unresolved,) = p.unresolved
        assert "discover.root" in unresolved[2] and "no '<" in unresolved[2]


async def test_a_root_by_browse_path_narrows_the_search() -> None:
    async with vendor_server() as endpoint:
        p = await plan(endpoint, discovering(endpoint, "machinery", root=f"/<{MACHINERY_URI}>:Machines"))
        assert {m.browse_name for m in p.machines} == {"Mill 1", "Conveyor 1"}


async def test_discovery_asks_the_same_few_requests_for_ten_machines_as_for_one() -> None:
    async def requests(machines: int) -> tuple[int, int]:
        identities = [identity_for(f"cnc-{n:02d}", f"Mill {n}", EquipmentType.CNC, 7) for n in range(machines)]
        async with MachineServer(f"hall-{machines}", identities) as server, Client(server.endpoint) as client:
            space = await AddressSpace.open(client)
            profile = discovering(server.endpoint, "machine-tool").discover
            assert profile is not None
            found = await discover(space, profile)
            assert len({s.equipment for s in found.signals}) == machines
            return space.requests, len(found.signals)

    one, ten = await requests(1), await requests(10)
    assert ten[1] == 10 * one[1]
    assert ten[0] == one[0] <= 10
