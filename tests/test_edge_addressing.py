"""Addressing: NodeIds of every identifier type with ns= or nsu=, and browse paths, against a real asyncua server.

The server here puts its nodes where real ones do and simple ones do not: namespaces at high
indexes (registered after a dozen others), a URI with a ';' in it, identifiers of every type
(numeric at the UInt32 limit, strings with ';', '=', '/' and CJK, GUIDs, opaque ByteStrings),
BrowseNames with '/' and the same name in two namespaces. A second server on the same port
registers the namespaces in another order, as a restarted server may: the next session resolves
every address anew.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from asyncua import Client, Server, ua

from core.errors import ConfigError
from core.settings import OpcUaSource
from core.wire import Sample
from edge.addressing import (
    AddressError,
    AddressSpace,
    BrowsePathAddress,
    NodeIdAddress,
    PathSegment,
    parse_address,
    parse_browse_path,
    parse_node_id,
)
from edge.opcua_source import OpcUaCollector
from edge.plan import check_source, plan_source
from edge.reconnect import Backoff
from factory.cli import main
from simulators.opcua_machine import quiet_asyncua_server_logs
from tests.servers import free_port
from tests.waiting import wait_until

PLC = "urn:example:plc"
WEIRD = "http://example.com/UA/Line;1/"  # a ';' in a namespace URI: written %3B in a NodeId
SENSORS = "urn:example:sensors"
GUID = uuid.UUID("72962b91-fa75-4ae6-8d28-b404dc7daf63")
OPAQUE = b"\x00\x01\xfe\xff"
ODD_STRING = "Line 1;Zelle=3/温度"


# -- parsing (no server) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("i=85", NodeIdAddress(0, 85)),
        ("ns=2;s=cnc-01.State", NodeIdAddress(2, "cnc-01.State")),
        ("ns=3;i=4294967295", NodeIdAddress(3, 4294967295)),
        (f"nsu={PLC};s=a;b=c", NodeIdAddress(PLC, "a;b=c")),
        ("nsu=http://example.com/UA/Line%3B1/;i=7", NodeIdAddress(WEIRD, 7)),
        (f"nsu={PLC};g={GUID}", NodeIdAddress(PLC, GUID)),
        ("ns=4;b=AAH+/w==", NodeIdAddress(4, OPAQUE)),
    ],
)
def test_node_ids_of_every_identifier_type_parse(text: str, expected: NodeIdAddress) -> None:
    assert parse_address(text) == expected
    assert parse_node_id(str(expected)) == expected  # written back in the same syntax


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty NodeId"),
        ("ns=x;i=1", "ns= takes a namespace index"),
        ("ns=70000;i=1", "ns= takes a namespace index"),
        ("nsu=;i=1", "nsu= takes a namespace URI"),
        ("nsu=urn:x", "nsu= takes a namespace URI followed by ';'"),
        ("ns=2;i=-1", "i= takes an unsigned 32-bit number"),
        ("ns=2;i=4294967296", "i= takes an unsigned 32-bit number"),
        ("ns=2;s=", "s= takes a non-empty string"),
        ("ns=2;g=not-a-guid", "g= takes a GUID"),
        ("ns=2;b=%%%", "b= takes base64"),
        ("ns=2;x=1", "expected i=<number>, s=<string>"),
        ("srv=1;ns=2;i=1", "another server"),
        ("cnc-01.State", "expected i=<number>"),
    ],
)
def test_a_malformed_node_id_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(AddressError, match=reason.replace("(", r"\(")):
        parse_address(text)


def test_browse_paths_take_index_uri_and_no_prefix_and_escapes() -> None:
    path = parse_browse_path(f"/4:Machines/<{WEIRD}>:Cell&/A/Name&&Co/<urn:x>:a:b")
    assert path == BrowsePathAddress(
        (
            PathSegment(4, "Machines"),
            PathSegment(WEIRD, "Cell/A"),
            PathSegment(0, "Name&Co"),
            PathSegment("urn:x", "a:b"),
        )
    )
    assert parse_browse_path(str(path)) == path


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("/", "empty segment"),
        ("/2:a//b", "empty segment"),
        ("/2:a/", "empty segment"),
        ("/<urn:x:a", "not closed"),
        ("/<urn:x>a", "write a URI prefix as <uri>:Name"),
        ("/2:", "has no name"),
        ("/99999:a", "beyond 65535"),
        ("/a&", "escapes nothing"),
    ],
)
def test_a_malformed_browse_path_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(AddressError, match=reason):
        parse_address(text)


def source(endpoint: str, nodes: dict[str, str], **kw: Any) -> OpcUaSource:
    return OpcUaSource(endpoint=endpoint, equipment="cnc-01", nodes=cast(Any, nodes), **kw)


def test_check_source_refuses_what_the_agent_would_refuse() -> None:
    check_source(source("opc.tcp://h:4840/", {"state": f"nsu={PLC};s=x", "speed": "/2:a/<urn:b>:c"}), "opcua[0]")
    with pytest.raises(ConfigError, match=r"opcua\[0\]\.nodes\.speed: invalid browse path '/2:a//c': empty segment"):
        check_source(source("opc.tcp://h:4840/", {"speed": "/2:a//c"}), "opcua[0]")
    with pytest.raises(ConfigError, match=r"opcua\[0\]\.state_map: state_map key 'ns=x;i=1'"):
        check_source(source("opc.tcp://h:4840/", {"state": "i=85"}, state_map={"ns=x;i=1": "IDLE"}), "opcua[0]")
    bad_root = {"profile": "robot", "root": "Machines"}
    discovering = OpcUaSource(endpoint="opc.tcp://h:4840/", discover=cast(Any, bad_root))
    with pytest.raises(ConfigError, match=r"opcua\[0\]\.discover\.root: invalid browse path 'Machines': .* with '/'"):
        check_source(discovering, "opcua[0]")


def test_check_config_refuses_a_malformed_address_and_accepts_paths_and_namespace_uris(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "assets.yaml").write_text(ASSETS)
    settings = tmp_path / "settings.yaml"
    good = f"{{state: 'nsu={PLC};s=State', parts_total: '/<{PLC}>:Plant/<{PLC}>:Count'}}"
    settings.write_text(
        "assets: assets.yaml\n"
        f"edge: {{id: gw, opcua: [{{endpoint: 'opc.tcp://127.0.0.1:4840/', equipment: cnc-01, nodes: {good}}}]}}\n"
    )
    assert main(["check-config", "--config", str(settings)]) == 0
    settings.write_text(
        "assets: assets.yaml\n"
        "edge: {id: gw, opcua: [{endpoint: 'opc.tcp://127.0.0.1:4840/', equipment: cnc-01, "
        "nodes: {state: 'nsu=urn:x'}}]}\n"
    )
    assert main(["check-config", "--config", str(settings)]) == 2
    assert "edge.opcua[0].nodes.state: invalid NodeId 'nsu=urn:x': nsu= takes" in capsys.readouterr().err


ASSETS = """\
version: 1
site:
  id: s
  workshops:
    - id: w
      lines:
        - id: l
          equipment:
            - {id: cnc-01, name: "Mill 1", type: cnc, ideal_cycle_time_s: 1.0}
"""


# -- a server with nodes in unusual namespaces ----------------------------------------------------


@dataclass
class OddServer:
    server: Server
    endpoint: str
    ns: dict[str, int]

    async def write(self, node: ua.NodeId, value: Any, variant_type: ua.VariantType) -> None:
        await self.server.write_attribute_value(node, ua.DataValue(ua.Variant(value, variant_type)))


def _nid(identifier: Any, ns: int, kind: ua.NodeIdType | None = None) -> ua.NodeId:
    return ua.NodeId(identifier, cast(Any, ns), kind) if kind else ua.NodeId(identifier, cast(Any, ns))


@asynccontextmanager
async def odd_server(port: int, order: Sequence[str] = (PLC, WEIRD, SENSORS)) -> AsyncIterator[OddServer]:
    quiet_asyncua_server_logs()
    server = Server()
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{port}/odd/"
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    for n in range(10):  # push the interesting namespaces to high indexes
        await server.register_namespace(f"urn:example:filler:{n}")
    ns = {uri: await server.register_namespace(uri) for uri in order}
    plc, weird, sensors = ns[PLC], ns[WEIRD], ns[SENSORS]
    objects = server.nodes.objects
    plant = await objects.add_folder(_nid("Plant", plc), ua.QualifiedName("Plant", plc))
    cell = await plant.add_object(_nid(4242, weird), ua.QualifiedName("Cell/A", weird))
    count = ua.Variant(7, ua.VariantType.UInt32)
    await cell.add_variable(_nid(4294967295, weird), ua.QualifiedName("Count", weird), count)
    await cell.add_variable(_nid(ODD_STRING, sensors), ua.QualifiedName("Temp", sensors), 21.5)
    # the same BrowseName in two namespaces: the prefix decides
    await cell.add_variable(_nid(GUID, plc), ua.QualifiedName("Speed", plc), 100.0)
    await cell.add_variable(_nid(OPAQUE, sensors, ua.NodeIdType.ByteString), ua.QualifiedName("Speed", sensors), 200.0)
    state = await plant.add_variable(_nid("State", plc), ua.QualifiedName("State", plc), "PRODUCING")
    await state.set_writable()
    await server.start()
    try:
        yield OddServer(server, endpoint, ns)
    finally:
        await server.stop()


async def _read(client: Client, node: ua.NodeId) -> Any:
    return await client.get_node(node).read_value()


NSU_NODES = {
    "count": f"nsu={WEIRD.replace(';', '%3B')};i=4294967295",
    "temperature": f"nsu={SENSORS};s={ODD_STRING}",
    "speed": f"nsu={PLC};g={GUID}",
    "feed": f"nsu={SENSORS};b=AAH+/w==",
}
PATH_NODES = {
    "count": f"/<{PLC}>:Plant/<{WEIRD}>:Cell&/A/<{WEIRD}>:Count",
    "temperature": f"/<{PLC}>:Plant/<{WEIRD}>:Cell&/A/<{SENSORS}>:Temp",
    "speed": f"/<{PLC}>:Plant/<{WEIRD}>:Cell&/A/<{PLC}>:Speed",
    "feed": f"/<{PLC}>:Plant/<{WEIRD}>:Cell&/A/<{SENSORS}>:Speed",
}
EXPECTED = {"count": 7, "temperature": 21.5, "speed": 100.0, "feed": 200.0}


@pytest.mark.integration
@pytest.mark.parametrize("nodes", [NSU_NODES, PATH_NODES], ids=["nsu-node-ids", "browse-paths-by-uri"])
async def test_addresses_by_namespace_uri_resolve_to_the_servers_nodes(nodes: dict[str, str]) -> None:
    async with odd_server(free_port()) as odd, Client(odd.endpoint) as client:
        plan = await plan_source(client, source(odd.endpoint, nodes))
        assert plan.unresolved == []
        values = {p.signal: await _read(client, p.node_id) for p in plan.signals}
        assert values == EXPECTED
        assert {p.signal: p.address for p in plan.signals} == nodes


@pytest.mark.integration
async def test_browse_paths_with_namespace_indexes_resolve() -> None:
    async with odd_server(free_port()) as odd, Client(odd.endpoint) as client:
        plc, weird, sensors = odd.ns[PLC], odd.ns[WEIRD], odd.ns[SENSORS]
        nodes = {"temperature": f"/{plc}:Plant/{weird}:Cell&/A/{sensors}:Temp", "state": f"ns={plc};s=State"}
        plan = await plan_source(client, source(odd.endpoint, nodes))
        assert plan.unresolved == []
        assert {p.signal: await _read(client, p.node_id) for p in plan.signals} == {
            "temperature": 21.5,
            "state": "PRODUCING",
        }


@pytest.mark.integration
async def test_what_does_not_resolve_is_unresolved_with_a_reason_that_names_it() -> None:
    async with odd_server(free_port()) as odd, Client(odd.endpoint) as client:
        nodes = {
            "state": "nsu=urn:nobody:here;s=State",
            "temperature": f"/<{PLC}>:Plant/<{WEIRD}>:Cell&/A/<{PLC}>:Temp",  # Temp is in the sensors namespace
            "speed": f"/<{PLC}>:Plant/<{PLC}>:Nowhere/<{PLC}>:Speed",
            "feed": f"nsu={PLC};s=NoSuchNode",
            "count": NSU_NODES["count"],
        }
        plan = await plan_source(client, source(odd.endpoint, nodes))
        assert [p.signal for p in plan.signals] == ["count"]
        reasons = {signal: reason for _, signal, reason in plan.unresolved}
        assert "namespace 'urn:nobody:here' is not on the server (its namespaces: " in reasons["state"]
        assert f"no '<{PLC}>:Temp' under '/<{PLC}>:Plant/<{WEIRD}>:Cell&/A' (BadNoMatch)" in reasons["temperature"]
        assert f"no '<{PLC}>:Nowhere' under '/<{PLC}>:Plant'" in reasons["speed"]
        assert "BadNodeIdUnknown" in reasons["feed"]


@pytest.mark.integration
async def test_paths_are_translated_in_batches_within_the_servers_limit() -> None:
    async with odd_server(free_port()) as odd:
        limit = odd.server.get_node(
            _nid(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds, 0)
        )
        await limit.write_value(ua.Variant(7, ua.VariantType.UInt32))
        async with Client(odd.endpoint) as client:
            space = await AddressSpace.open(client)
            assert space.per_translate == 7
            paths = [parse_browse_path(PATH_NODES[k]) for k in sorted(PATH_NODES)] * 10  # 40 paths
            before = space.requests
            resolved = await space.resolve(paths)
            assert all(isinstance(r, ua.NodeId) for r in resolved)
            translate_calls = space.requests - before - 1  # one read checks the nodes exist
            assert translate_calls == 6  # ceil(40 / 7)


@pytest.mark.integration
async def test_every_session_resolves_again_when_a_restarted_server_renumbered_its_namespaces() -> None:
    port = free_port()
    nodes = {**NSU_NODES, "state": f"/<{PLC}>:Plant/<{PLC}>:State"}
    async with odd_server(port, (PLC, WEIRD, SENSORS)) as odd, Client(odd.endpoint) as client:
        first = {p.signal: p.node_id for p in (await plan_source(client, source(odd.endpoint, nodes))).signals}
    async with odd_server(port, (SENSORS, PLC, WEIRD)) as odd, Client(odd.endpoint) as client:
        plan = await plan_source(client, source(odd.endpoint, nodes))
        second = {p.signal: p.node_id for p in plan.signals}
        assert {p.signal: await _read(client, p.node_id) for p in plan.signals} == {**EXPECTED, "state": "PRODUCING"}
    assert all(first[s].NamespaceIndex != second[s].NamespaceIndex for s in nodes)


class ListSink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def put(self, sample: Sample) -> None:
        self.samples.append(sample)


@pytest.mark.integration
async def test_the_collector_reads_by_namespace_uri_and_an_unknown_uri_does_not_make_it_loop() -> None:
    async with odd_server(free_port()) as odd:
        nodes = {
            "temperature": NSU_NODES["temperature"],
            "state": f"/<{PLC}>:Plant/<{PLC}>:State",
            "speed": "nsu=urn:nobody:here;i=1",
        }
        sink = ListSink()
        collector = OpcUaCollector(source(odd.endpoint, nodes), sink, backoff=Backoff(0.05, 0.2))
        async with collector:
            await wait_until(lambda: {s.signal for s in sink.samples} == {"temperature", "state"}, "both signals")
            await odd.write(_nid("State", odd.ns[PLC]), "IDLE", ua.VariantType.String)
            await wait_until(lambda: any(s.signal == "state" and s.value == "IDLE" for s in sink.samples), "IDLE")
            await asyncio.sleep(0.5)
            assert collector.counters.connects == 1  # one session, no reconnect loop
        assert {s.equipment for s in sink.samples} == {"cnc-01"}
        assert next(s for s in sink.samples if s.signal == "temperature").value == 21.5
        assert datetime.now(UTC) > sink.samples[0].ts


@pytest.mark.integration
async def test_a_state_enumeration_maps_by_name_from_the_servers_data_type() -> None:
    from asyncua.common.structures104 import new_enum

    async with odd_server(free_port()) as odd:
        plc = odd.ns[PLC]
        server = odd.server
        # OPC UA 1.04 style: the names in the DataTypeDefinition
        mode_type = await new_enum(server, plc, "MachineMode", ["Manual", "Automatic", "Setup"])
        plant = server.get_node(_nid("Plant", plc))
        mode = ua.QualifiedName("Mode", plc)
        await plant.add_variable(_nid("Mode", plc), mode, 2, ua.VariantType.Int32, mode_type.nodeid)
        # older style: an EnumStrings property on the type
        legacy = await server.nodes.enum_data_type.add_data_type(_nid("Legacy", plc), ua.QualifiedName("Legacy", plc))
        texts = [ua.LocalizedText("Off"), ua.LocalizedText("Running")]
        await legacy.add_property(
            _nid("Legacy.EnumStrings", plc), ua.QualifiedName("EnumStrings", 0), texts, ua.VariantType.LocalizedText
        )
        await plant.add_variable(_nid("Run", plc), ua.QualifiedName("Run", plc), 1, ua.VariantType.Int32, legacy.nodeid)
        state_map = {"Automatic": "PRODUCING", "Setup": "SETUP", "Running": "PRODUCING", "Off": "PLANNED_STOP"}
        async with Client(odd.endpoint) as client:
            for address, expected in ((f"nsu={PLC};s=Mode", "SETUP"), (f"nsu={PLC};s=Run", "PRODUCING")):
                plan = await plan_source(client, source(odd.endpoint, {"state": address}, state_map=state_map))
                (state,) = plan.signals
                assert state.states is not None
                value = await _read(client, state.node_id)
                assert (value, state.states.map(value)) == (2 if "Mode" in address else 1, expected)


@pytest.mark.integration
async def test_the_collector_resolves_again_after_the_server_came_back_with_other_namespace_indexes() -> None:
    port = free_port()
    nodes = {"temperature": NSU_NODES["temperature"], "speed": PATH_NODES["speed"]}
    sink = ListSink()
    collector = OpcUaCollector(source(f"opc.tcp://127.0.0.1:{port}/odd/", nodes), sink, backoff=Backoff(0.05, 0.2))
    async with collector:
        async with odd_server(port, (PLC, WEIRD, SENSORS)):
            await wait_until(lambda: {s.signal for s in sink.samples} == {"temperature", "speed"}, "first session")
        async with odd_server(port, (SENSORS, WEIRD, PLC)) as odd:
            await odd.write(_nid(GUID, odd.ns[PLC]), 150.0, ua.VariantType.Double)
            await odd.write(_nid(ODD_STRING, odd.ns[SENSORS]), 30.5, ua.VariantType.Double)
            await wait_until(lambda: any(s.value == 150.0 for s in sink.samples), "speed from the second server")
            await wait_until(lambda: any(s.value == 30.5 for s in sink.samples), "temperature from the second server")
    assert collector.counters.connects == 2
    assert {(s.signal, s.value) for s in sink.samples if s.signal != "state"} >= {
        ("temperature", 21.5),
        ("speed", 100.0),
        ("temperature", 30.5),
        ("speed", 150.0),
    }
