"""The OPC UA face of a simulated CNC machine or robot: one asyncua Server per machine.

Address space (the shared contract): namespace ``urn:smart-factory:simulator:{equipment_id}`` at
index 2, an object ``{eq}`` under Objects with the variables below as string NodeIds in ns=2.
Every value is written with SourceTimestamp and ServerTimestamp set to the simulated event time,
the same instant the ground truth records.

This module only exposes a ``MachineStatus``; what the machine does lives in
``simulators.behaviour``, so a richer address space (companion specifications) can replace this
one without touching the behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self, cast

from asyncua import Server, ua

from core.signals import MachineState
from simulators.behaviour import MachineStatus

log = logging.getLogger(__name__)

NAMESPACE_INDEX = 2
ENDPOINT_PATH = "/factory/"

STATE_CODES: Mapping[MachineState, int] = {
    MachineState.PRODUCING: 1,
    MachineState.IDLE: 2,
    MachineState.SETUP: 3,
    MachineState.DOWN: 4,
    MachineState.PLANNED_STOP: 5,
}


def namespace_uri(equipment_id: str) -> str:
    return f"urn:smart-factory:simulator:{equipment_id}"


def endpoint_url(host: str, port: int) -> str:
    return f"opc.tcp://{host}:{port}{ENDPOINT_PATH}"


def node_id(equipment_id: str, variable: str) -> str:
    """The NodeId string of one variable, e.g. ``ns=2;s=cnc-01.StateCode``."""
    return f"ns={NAMESPACE_INDEX};s={equipment_id}.{variable}"


@dataclass(frozen=True, slots=True)
class MachineVariable:
    name: str
    variant_type: ua.VariantType
    read: Callable[[MachineStatus], Any]


VARIABLES: tuple[MachineVariable, ...] = (
    MachineVariable("State", ua.VariantType.String, lambda s: s.state.value),
    MachineVariable("StateCode", ua.VariantType.Int32, lambda s: STATE_CODES[s.state]),
    MachineVariable("PartsTotal", ua.VariantType.UInt32, lambda s: s.parts_total),
    MachineVariable("PartsGood", ua.VariantType.UInt32, lambda s: s.parts_good),
    MachineVariable("PartsScrap", ua.VariantType.UInt32, lambda s: s.parts_scrap),
    MachineVariable("CycleTime", ua.VariantType.Double, lambda s: float(s.cycle_time_s)),
    MachineVariable("SpindleSpeed", ua.VariantType.Double, lambda s: float(s.spindle_speed_rpm)),
)


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


class MachineServer:
    """``async with MachineServer(...) as server:`` serves one machine until the block ends."""

    def __init__(self, equipment_id: str, *, host: str = "127.0.0.1", port: int = 0):
        self.equipment_id = equipment_id
        self.host = host
        self._requested_port = port
        self._server: Server | None = None
        self._nodes: dict[str, ua.NodeId] = {}
        self._shown: MachineStatus | None = None
        self.writes = 0

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        if self._server is None or self._server.bserver is None:
            raise RuntimeError(f"{self.equipment_id}: OPC UA server is not running")
        return int(self._server.bserver.port)

    @property
    def endpoint(self) -> str:
        return endpoint_url(self.host, self.port)

    async def __aenter__(self) -> Self:
        server = Server()
        await server.init()
        server.set_endpoint(endpoint_url(self.host, self._requested_port))
        server.set_server_name(f"Smart-factory simulator {self.equipment_id}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(namespace_uri(self.equipment_id))
        if idx != NAMESPACE_INDEX:
            raise RuntimeError(
                f"{self.equipment_id}: namespace registered at {idx}, contract says {NAMESPACE_INDEX}"
            )
        machine = await server.nodes.objects.add_object(
            ua.NodeId.from_string(f"ns={idx};s={self.equipment_id}"), self.equipment_id
        )
        for var in VARIABLES:
            nid = ua.NodeId.from_string(node_id(self.equipment_id, var.name))
            initial = ua.Variant(_zero(var.variant_type), var.variant_type)
            await machine.add_variable(nid, var.name, initial, varianttype=var.variant_type)
            self._nodes[var.name] = nid
        try:
            await server.start()
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"{self.equipment_id}: cannot listen on {self.host}:{self._requested_port}: {exc.strerror}",
            ) from exc
        self._server = server
        log.info("%s: OPC UA server on %s", self.equipment_id, self.endpoint)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()

    async def show(self, ts: datetime, status: MachineStatus) -> None:
        """Expose ``status`` as of ``ts``: every value that changed is written stamped ``ts``."""
        if self._server is None:
            raise RuntimeError(f"{self.equipment_id}: OPC UA server is not running")
        for var in VARIABLES:
            value = var.read(status)
            if self._shown is not None and var.read(self._shown) == value:
                continue
            stamp = cast(ua.DateTime, ts)  # ua.DateTime is a nominal subclass; any aware datetime works
            dv = ua.DataValue(
                ua.Variant(value, var.variant_type), SourceTimestamp=stamp, ServerTimestamp=stamp
            )
            # Server.write_attribute_value drops the status code; the address space returns it,
            # so a type mismatch fails loudly instead of leaving a stale value on the wire.
            result = await self._server.iserver.aspace.write_attribute_value(
                self._nodes[var.name], ua.AttributeIds.Value, dv
            )
            if not result.is_good():
                raise RuntimeError(
                    f"{self.equipment_id}.{var.name}: write of {value!r} refused: {result.name}"
                )
            self.writes += 1
        self._shown = status


def _zero(variant_type: ua.VariantType) -> Any:
    return (
        "" if variant_type == ua.VariantType.String else 0.0 if variant_type == ua.VariantType.Double else 0
    )
