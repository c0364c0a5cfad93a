"""What one OPC UA source reads: every signal resolved to a node, with its options and state mapper.

``plan_source(client, source)`` runs once per session, after connect: NodeIds written with a
namespace URI and browse paths are resolved anew after every reconnect (a server restart may
renumber them; ``edge.addressing``), and discovery (``source.discover``, ``edge.discovery``) finds
the machines of a companion-spec profile again. The collector subscribes (or polls) what the plan
lists; ``unresolved`` holds each configured signal (or discovered machine) that could not be found,
with the reason, for the collector to report once and ``factory edge check`` to print. Signals
listed in ``nodes`` win over discovered ones of the same equipment and name.

``check_source`` is the offline half: what can be known wrong without a server (signal names,
address syntax, state map keys, the discovery root) is a ConfigError at start and in ``factory
check-config`` alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

from asyncua import Client, ua

from core.errors import ConfigError
from core.settings import Deadband, OpcUaSource, SignalSpec
from core.signals import MachineState, Signal
from core.wire import TimestampSource
from edge.addressing import (
    AddressError,
    AddressSpace,
    PathSegment,
    Unresolvable,
    parse_address,
    parse_browse_path,
)
from edge.discovery import MachineInstance, discover
from edge.profiles import COMPANION_STATE_NAMES, PROFILES
from edge.states import StateMapper, check_state_map

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """One signal's effective options: its spec's where set, else the source's."""

    sampling_interval_ms: float
    queue_size: int
    deadband: Deadband | None
    trigger: Literal["status", "status_value", "status_value_timestamp"]
    mode: Literal["subscribe", "poll"]
    poll_interval_ms: int
    timestamp_source: TimestampSource
    earliest_timestamp: datetime
    max_future_skew_s: float


@dataclass(frozen=True, slots=True)
class PlannedSignal:
    equipment: str
    signal: str
    node_id: ua.NodeId
    address: str  # as configured or discovered, for messages
    options: ReadOptions
    states: StateMapper | None  # for the state signal only


@dataclass(slots=True)
class SourcePlan:
    signals: list[PlannedSignal] = field(default_factory=list)
    unresolved: list[tuple[str, str, str]] = field(default_factory=list)  # (equipment, signal, reason)
    machines: list[MachineInstance] = field(default_factory=list)  # found by discovery, with identification
    namespaces: list[str] = field(default_factory=list)  # the server's NamespaceArray in this session

    @property
    def equipment(self) -> list[str]:
        return list(dict.fromkeys(s.equipment for s in self.signals))


T = TypeVar("T")


def _pick(own: T | None, default: T) -> T:
    return default if own is None else own


def read_options(source: OpcUaSource, spec: SignalSpec) -> ReadOptions:
    return ReadOptions(
        sampling_interval_ms=_pick(spec.sampling_interval_ms, float(source.sampling_interval_ms)),
        queue_size=_pick(spec.queue_size, source.queue_size),
        deadband=_pick(spec.deadband, source.deadband),
        trigger=_pick(spec.trigger, source.trigger),
        mode=_pick(spec.mode, source.mode),
        poll_interval_ms=_pick(spec.poll_interval_ms, source.poll_interval_ms),
        timestamp_source=_pick(spec.timestamp_source, source.timestamp_source),
        earliest_timestamp=source.earliest_timestamp,
        max_future_skew_s=source.max_future_skew_s,
    )


def check_source(source: OpcUaSource, where: str) -> None:
    """ConfigError for what can be known wrong without a server (called at start and by check-config)."""
    if (reason := check_state_map(source.state_map)) is not None:
        raise ConfigError("edge settings", reason, field=f"{where}.state_map")
    for signal in source.nodes:
        if not signal.isascii() or not signal.replace("_", "a").isalnum() or not signal[0].islower():
            raise ConfigError("edge settings", "a signal name is lower_snake_case", field=f"{where}.nodes.{signal}")
        spec = source.spec(signal)
        try:
            parse_address(spec.address)
        except AddressError as exc:
            kind = "browse path" if spec.address.startswith("/") else "NodeId"
            raise ConfigError("edge settings", f"invalid {kind} {exc}", field=f"{where}.nodes.{signal}") from None
        if spec.state_map is not None and (reason := check_state_map(spec.state_map)) is not None:
            raise ConfigError("edge settings", reason, field=f"{where}.nodes.{signal}.state_map")
    if source.discover is not None and source.discover.root is not None:
        try:
            parse_browse_path(source.discover.root)
        except AddressError as exc:
            raise ConfigError("edge settings", f"invalid browse path {exc}", field=f"{where}.discover.root") from None


async def plan_source(client: Client, source: OpcUaSource) -> SourcePlan:
    """Every configured and discovered signal of ``source`` resolved on the connected ``client``."""
    space = await AddressSpace.open(client)
    plan = SourcePlan(namespaces=list(space.namespaces.uris))
    # equipment, signal, spec, node, and the state map when the spec has none
    wanted: list[tuple[str, str, SignalSpec, ua.NodeId, dict[str, MachineState]]] = []
    if source.nodes:
        assert source.equipment is not None  # the settings model insists
        specs = [(signal, source.spec(signal)) for signal in source.nodes]
        nodes = await space.resolve([parse_address(spec.address) for _, spec in specs])
        for (signal, spec), node in zip(specs, nodes, strict=True):
            if isinstance(node, Unresolvable):
                plan.unresolved.append((source.equipment, signal, f"{spec.address}: {node.reason}"))
            else:
                wanted.append((source.equipment, signal, spec, node, source.state_map))
    if source.discover is not None:
        found = await discover(space, source.discover, equipment=source.equipment)
        plan.machines = found.machines
        plan.unresolved += found.unresolved
        taken = {(eq, signal) for eq, signal, *_ in wanted}
        profile_map = source.state_map or dict(PROFILES[source.discover.profile].state_map)
        for d in found.signals:
            if (d.equipment, d.signal) not in taken:
                wanted.append((d.equipment, d.signal, SignalSpec(address=d.address), d.node_id, profile_map))
        for machine in found.machines:
            _log_machine(source, machine, sum(1 for d in found.signals if d.equipment == machine.equipment))
    state_nodes = [node for _, signal, _, node, _ in wanted if signal == Signal.STATE]
    enum_names = await _enum_names(space, state_nodes)
    for equipment, signal, spec, node, default_map in wanted:
        states = None
        if signal == Signal.STATE:
            state_map = spec.state_map if spec.state_map is not None else default_map
            states = _state_mapper(state_map, plan.namespaces, enum_names.get(node))
        plan.signals.append(
            PlannedSignal(
                equipment=equipment,
                signal=signal,
                node_id=node,
                address=spec.address,
                options=read_options(source, spec),
                states=states,
            )
        )
    return plan


def _state_mapper(
    state_map: dict[str, MachineState], namespaces: list[str], enum_names: dict[int, str] | None
) -> StateMapper:
    return StateMapper(state_map, namespaces=namespaces, enum_names=enum_names, names=COMPANION_STATE_NAMES)


def _log_machine(source: OpcUaSource, machine: MachineInstance, signals: int) -> None:
    ident = machine.identification
    plate = ", ".join(f"{k} {ident[k]}" for k in ("manufacturer", "model", "serial_number") if k in ident)
    target = f"equipment {machine.equipment}, {signals} signals" if machine.equipment else "not in discover.equipment"
    logger.info("%s: found %s (%s) at %s -> %s", source.label, machine.browse_name, plate, machine.address, target)


async def _enum_names(space: AddressSpace, nodes: list[ua.NodeId]) -> dict[ua.NodeId, dict[int, str]]:
    """For state nodes of an enumeration DataType: value -> name (its definition, EnumStrings or EnumValues)."""
    if not nodes:
        return {}
    types = await space.read(nodes, ua.AttributeIds.DataType)
    by_type: dict[ua.NodeId, list[ua.NodeId]] = {}
    for node, value in zip(nodes, types, strict=True):
        data_type = value.Value.Value if value.Value is not None else None
        # Built-in types (ns 0, ids up to 29) are no enumerations; anything else may be one.
        if not isinstance(data_type, ua.NodeId):
            continue
        if data_type.NamespaceIndex == 0 and isinstance(data_type.Identifier, int) and data_type.Identifier <= 29:
            continue
        by_type.setdefault(data_type, []).append(node)
    if not by_type:
        return {}
    names: dict[ua.NodeId, dict[int, str]] = {}
    data_types = list(by_type)
    definitions = await space.read(data_types, ua.AttributeIds.DataTypeDefinition)  # OPC UA 1.04 on
    for data_type, value in zip(data_types, definitions, strict=True):
        definition = value.Value.Value if value.Value is not None else None
        if isinstance(definition, ua.EnumDefinition):
            names[data_type] = {int(f.Value): f.Name for f in definition.Fields or [] if f.Name}
    lookups = [(t, name) for t in data_types if t not in names for name in ("EnumStrings", "EnumValues")]
    props = await space.translate([(t, [PathSegment(0, name)]) for t, name in lookups])
    found = [(t, node) for (t, _), node in zip(lookups, props, strict=True) if isinstance(node, ua.NodeId)]
    values = await space.read([node for _, node in found], ua.AttributeIds.Value)
    for (data_type, _), value in zip(found, values, strict=True):
        items = value.Value.Value if value.Value is not None else None
        table: dict[int, str] = {}
        for n, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, ua.LocalizedText) and item.Text:
                table[n] = item.Text
            elif isinstance(item, ua.EnumValueType) and item.DisplayName is not None and item.DisplayName.Text:
                table[int(item.Value)] = item.DisplayName.Text
        if table:
            names.setdefault(data_type, {}).update(table)
    return {node: names[t] for t, nodes_of in by_type.items() if t in names for node in nodes_of}
