"""The OPC UA face of simulated machines: one asyncua server per machine, or per group of machines.

Namespace 2 is the simulator's own (``urn:smart-factory:simulator:{name}``, the server's only or
first machine's id), then DI, Machinery, MachineTool and Robotics in that order. Each machine sits
under ``Objects/Machines`` (a robot also under ``Objects/DeviceSet``) with the node layout of
``simulators.companion``; its ``VendorData`` folder keeps the shared contract's NodeIds
``ns=2;s={equipment}.StateCode`` and friends, which the edge agent subscribes to.

This module only exposes values it is given: what a machine does lives in ``simulators.behaviour``,
which values its nodes show in ``simulators.companion``. Every write carries the SourceTimestamp
the caller gives (the device's clock: the event time, or a wrong 2000-era time during a PLC clock
jump) and the ServerTimestamp of the true event time.

``restart(down_for_s)`` closes the listening socket and every client connection, waits, and
listens again on the same port: the address space (and every value written meanwhile) is kept,
the sessions and subscriptions are gone, as after a real server restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, cast

from asyncua import Node, Server, ua
from asyncua.server.binary_server_asyncio import BinaryServer
from asyncua.server.event_generator import EventGenerator

from core.assets import EquipmentType
from simulators.behaviour import Alarm
from simulators.companion import (
    DEVICE_SET,
    MACHINES_FOLDER,
    NAMESPACE_ORDER,
    SPEC_NAMESPACES,
    STATE_CODES,
    TYPE_IDS,
    UA,
    VENDOR,
    MachineIdentity,
    QName,
    machine_type_name,
    objects_for,
    static_values,
    variables_for,
    vendor_namespace_uri,
    vendor_node_id,
)

log = logging.getLogger(__name__)

NAMESPACE_INDEX = 2
ENDPOINT_PATH = "/factory/"

__all__ = [
    "ENDPOINT_PATH",
    "NAMESPACE_INDEX",
    "STATE_CODES",
    "MachineServer",
    "endpoint_url",
    "namespace_uri",
    "node_id",
    "quiet_asyncua_server_logs",
]


def namespace_uri(equipment_id: str) -> str:
    return vendor_namespace_uri(equipment_id)


def endpoint_url(host: str, port: int) -> str:
    return f"opc.tcp://{host}:{port}{ENDPOINT_PATH}"


def node_id(equipment_id: str, variable: str) -> str:
    """The NodeId string of one vendor variable, e.g. ``ns=2;s=cnc-01.StateCode``."""
    return vendor_node_id(equipment_id, variable)


def quiet_asyncua_server_logs() -> None:
    """asyncua's server logs hundreds of INFO lines while building its address space.

    Only the server side is quieted, and only if nobody has set a level for it already, so a
    deliberate ``asyncua.server`` DEBUG setting still wins and client logs (edge) are untouched.
    """
    server_log = logging.getLogger("asyncua.server")
    if server_log.level == logging.NOTSET:
        server_log.setLevel(logging.WARNING)
    # Warns that no encrypting policy exists; the simulator is plain-text on loopback on purpose.
    server_log_main = logging.getLogger("asyncua.server.server")
    if server_log_main.level == logging.NOTSET:
        server_log_main.setLevel(logging.ERROR)


def _node_id(identifier: str | int, namespace: int) -> ua.NodeId:
    # asyncua annotates NodeId with its own nominal int/str subclasses; plain values are what it takes.
    return ua.NodeId(cast(Any, identifier), cast(Any, namespace))


def _zero(variant_type: ua.VariantType) -> Any:
    return {
        ua.VariantType.String: "",
        ua.VariantType.Double: 0.0,
        ua.VariantType.Boolean: False,
        ua.VariantType.LocalizedText: ua.LocalizedText(""),
        ua.VariantType.NodeId: ua.NodeId(),
    }.get(variant_type, 0)


class _MachineNodes:
    """The NodeIds of one machine's variables by value key, and what was last written to each."""

    def __init__(self, kind: EquipmentType):
        self.kind = kind
        self.by_key: dict[str, list[tuple[ua.NodeId, ua.VariantType]]] = {}
        self.shown: dict[str, Any] = {}
        self.messages: Node | None = None
        self.alarm_events: EventGenerator | None = None


class MachineServer:
    """``async with MachineServer(name, machines) as server:`` serves the machines until the block ends.

    With ``listen=False`` the address space is built but nobody can connect until ``listen()``:
    show the machines' first values before that, or a client would read the placeholders (counters
    at 0) as the machine's and see a reset when the real values appear.
    """

    def __init__(
        self,
        name: str,
        machines: Sequence[MachineIdentity],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        initial_timestamp: datetime | None = None,
        listen: bool = True,
    ):
        if not machines:
            raise ValueError(f"server {name}: no machines to serve")
        self.name = name
        self.machines = tuple(machines)
        self.host = host
        self._requested_port = port
        self._initial_ts = initial_timestamp
        self._server: Server | None = None
        self._port: int | None = None
        self._nodes: dict[str, _MachineNodes] = {}
        self._ns: dict[str, int] = {}
        self._listening = False
        self._listen_on_enter = listen
        self._started = False
        self.writes = 0
        self.restarts = 0

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        if self._port is None:
            raise RuntimeError(f"{self.name}: OPC UA server is not running")
        return self._port

    @property
    def endpoint(self) -> str:
        return endpoint_url(self.host, self.port)

    @property
    def listening(self) -> bool:
        return self._listening

    @property
    def namespace_indexes(self) -> dict[str, int]:
        """Namespace URI -> index on this server."""
        uris = {VENDOR: vendor_namespace_uri(self.name), **SPEC_NAMESPACES}
        return {uris[key]: idx for key, idx in self._ns.items() if key in uris}

    async def __aenter__(self) -> Self:
        server = Server()
        await server.init()
        server.set_endpoint(endpoint_url(self.host, self._requested_port))
        server.set_server_name(f"Smart-factory simulator {self.name}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        uris = {VENDOR: vendor_namespace_uri(self.name), **SPEC_NAMESPACES}
        for key in NAMESPACE_ORDER:
            self._ns[key] = await server.register_namespace(uris[key])
        if self._ns[VENDOR] != NAMESPACE_INDEX:
            raise RuntimeError(f"{self.name}: namespace registered at {self._ns[VENDOR]}, contract says 2")
        self._ns[UA] = 0
        self._server = server
        await self._build(server)
        if self._listen_on_enter:
            await self.listen()
        return self

    async def listen(self) -> None:
        """Start accepting clients (``__aenter__`` does this unless ``listen=False``)."""
        if self._server is None:
            raise RuntimeError(f"{self.name}: OPC UA server is not built")
        if self._started:
            return
        try:
            await self._server.start()
        except OSError as exc:
            raise OSError(
                exc.errno, f"{self.name}: cannot listen on {self.host}:{self._requested_port}: {exc.strerror}"
            ) from exc
        self._started = True
        assert self._server.bserver is not None
        self._port = int(self._server.bserver.port)
        self._listening = True
        served = ", ".join(m.equipment_id for m in self.machines)
        log.info("OPC UA server %s on %s (%s)", self.name, self.endpoint, served)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            self._listening = False
            if self._started:
                self._started = False
                await server.stop()

    # -- building ------------------------------------------------------------------------------

    def _qname(self, q: QName) -> ua.QualifiedName:
        return ua.QualifiedName(q[1], self._ns[q[0]])

    async def _build(self, server: Server) -> None:
        types: dict[str, ua.NodeId] = {}
        for type_name, (ns_key, number) in TYPE_IDS.items():
            nid = _node_id(number, self._ns[ns_key])
            await server.nodes.base_object_type.add_object_type(nid, ua.QualifiedName(type_name, self._ns[ns_key]))
            types[type_name] = nid
        machines_folder = await server.nodes.objects.add_folder(
            _node_id(MACHINES_FOLDER[1], self._ns[MACHINES_FOLDER[0]]),
            ua.QualifiedName("Machines", self._ns[MACHINES_FOLDER[0]]),
        )
        device_set: Node | None = None
        if any(m.kind == EquipmentType.ROBOT for m in self.machines):
            device_set = await server.nodes.objects.add_object(
                _node_id(DEVICE_SET[1], self._ns[DEVICE_SET[0]]),
                ua.QualifiedName("DeviceSet", self._ns[DEVICE_SET[0]]),
            )
        for identity in self.machines:
            await self._build_machine(server, identity, machines_folder, device_set, types)

    async def _build_machine(
        self,
        server: Server,
        identity: MachineIdentity,
        machines_folder: Node,
        device_set: Node | None,
        types: Mapping[str, ua.NodeId],
    ) -> None:
        eq = identity.equipment_id
        vendor = self._ns[VENDOR]
        nodes = _MachineNodes(identity.kind)
        root = await machines_folder.add_object(
            _node_id(f"{eq}", vendor), ua.QualifiedName(eq, vendor), objecttype=types[machine_type_name(identity.kind)]
        )
        display = ua.Variant(ua.LocalizedText(identity.name), ua.VariantType.LocalizedText)
        await root.write_attribute(ua.AttributeIds.DisplayName, ua.DataValue(display))
        if device_set is not None and identity.kind == EquipmentType.ROBOT:
            await device_set.add_reference(root.nodeid, ua.ObjectIds.Organizes, forward=True, bidirectional=False)

        objects: dict[tuple[QName, ...], Node] = {(): root}

        async def ensure(path: tuple[QName, ...]) -> Node:
            if path in objects:
                return objects[path]
            parent = await ensure(path[:-1])
            nid = _node_id(f"{eq}/" + "/".join(name for _, name in path), vendor)
            node = await parent.add_object(nid, self._qname(path[-1]))
            objects[path] = node
            return node

        for obj in objects_for(identity.kind):
            parent = await ensure(obj.path[:-1])
            nid = _node_id(f"{eq}/" + "/".join(name for _, name in obj.path), vendor)
            if obj.folder:
                node = await parent.add_folder(nid, self._qname(obj.path[-1]))
            else:
                type_id = types[obj.type_name] if obj.type_name else _node_id(ua.ObjectIds.BaseObjectType, 0)
                node = await parent.add_object(nid, self._qname(obj.path[-1]), objecttype=type_id)
            objects[obj.path] = node
            if obj.event_notifier:
                nodes.messages = node

        initial = static_values(identity)
        stamp = cast(ua.DateTime, self._initial_ts) if self._initial_ts else None
        for var in variables_for(identity.kind):
            parent = await ensure(var.path[:-1])
            if var.vendor_name is not None:
                nid = _node_id(f"{eq}.{var.vendor_name}", vendor)
            else:
                nid = _node_id(f"{eq}/" + "/".join(name for _, name in var.path), vendor)
            value = initial.get(var.key, _zero(var.variant_type))
            if var.variant_type == ua.VariantType.DateTime:
                value = self._initial_ts
            variant = ua.Variant(value, var.variant_type)
            if var.is_property:
                node = await parent.add_property(nid, self._qname(var.path[-1]), variant, varianttype=var.variant_type)
            else:
                node = await parent.add_variable(nid, self._qname(var.path[-1]), variant, varianttype=var.variant_type)
            objects[var.path] = node  # a variable may have properties (CurrentState/Id)
            nodes.by_key.setdefault(var.key, []).append((nid, var.variant_type))
            if var.key in initial:
                nodes.shown[var.key] = value
                if stamp is not None:
                    await self._write(nid, value, var.variant_type, stamp, stamp)
        if nodes.messages is not None:
            nodes.alarm_events = await server.get_event_generator(ua.ObjectIds.BaseEventType, nodes.messages.nodeid)
        self._nodes[eq] = nodes

    # -- writing -------------------------------------------------------------------------------

    async def show(
        self, equipment_id: str, values: Mapping[str, Any], source_ts: datetime, server_ts: datetime | None = None
    ) -> int:
        """Write every value that changed, stamped ``source_ts`` (device) and ``server_ts``; returns the count.

        Writes go into the address space even while the server is away for a restart, so it comes
        back showing the machine as it is then.
        """
        if self._server is None:
            raise RuntimeError(f"{self.name}: OPC UA server is not running")
        nodes = self._nodes[equipment_id]
        src = cast(ua.DateTime, source_ts)  # ua.DateTime is a nominal subclass; any aware datetime works
        srv = cast(ua.DateTime, server_ts or source_ts)
        written = 0
        for key, value in values.items():
            if nodes.shown.get(key, _MISSING) == value:
                continue
            targets = nodes.by_key.get(key)
            if targets is None:
                continue  # a value this kind of machine has no node for
            for nid, variant_type in targets:
                await self._write(nid, value, variant_type, src, srv)
                written += 1
            nodes.shown[key] = value
        self.writes += written
        return written

    async def _write(
        self, nid: ua.NodeId, value: Any, variant_type: ua.VariantType, src: ua.DateTime, srv: ua.DateTime
    ) -> None:
        assert self._server is not None
        dv = ua.DataValue(ua.Variant(value, variant_type), SourceTimestamp=src, ServerTimestamp=srv)
        # Server.write_attribute_value drops the status code; the address space returns it, so a
        # type mismatch fails loudly instead of leaving a stale value on the wire.
        result = await self._server.iserver.aspace.write_attribute_value(nid, ua.AttributeIds.Value, dv)
        if not result.is_good():
            raise RuntimeError(f"{self.name}: write of {value!r} to {nid.to_string()} refused: {result.name}")

    async def raise_alarm(self, equipment_id: str, alarm: Alarm, source_ts: datetime) -> None:
        """Emit an event from the machine's Notification/Messages node (subscribers see it if listening)."""
        generator = self._nodes[equipment_id].alarm_events
        if generator is None or not self._listening:
            return
        generator.event.Message = ua.LocalizedText(f"{alarm.code}: {alarm.text}")
        generator.event.Severity = alarm.severity
        await generator.trigger(time_attr=source_ts)

    # -- faults --------------------------------------------------------------------------------

    async def go_away(self) -> None:
        """Stop listening and drop every client connection; the address space stays."""
        if self._server is None or not self._listening:
            return
        bserver = self._server.bserver
        self._listening = False
        if bserver is not None:
            await bserver.stop()
        self._server.bserver = None

    async def come_back(self) -> None:
        """Listen again on the same port."""
        if self._server is None or self._listening:
            return
        server = self._server
        # Server.start() would rebuild the server nodes and restart its clock task; only the
        # transport needs to come back, so the binary server is recreated as Server.start does it.
        bserver = BinaryServer(server.iserver, self.host, self.port, server.limits)
        bserver.set_policies(server._policies)
        await bserver.start()
        server.bserver = bserver
        self._listening = True
        self.restarts += 1

    async def restart(self, down_for_s: float) -> None:
        """Go away for ``down_for_s`` wall seconds, then come back on the same port."""
        await self.go_away()
        try:
            await asyncio.sleep(down_for_s)
        finally:
            await self.come_back()


_MISSING = object()
