"""Discovery by profile: find every machine instance of a companion specification and where its signals are.

``discover(space, discovery, equipment=...)`` runs once per session (from ``plan_source``):

1. the roots: ``discover.root`` (a browse path) or the profile's (Machinery's ``Machines`` folder;
   for robots also DI's ``DeviceSet``), by namespace URI;
2. their child objects whose type definition is one of the profile's machine types or a subtype
   of one (every object for the generic ``machinery`` profile);
3. per instance, its identification and the first candidate path of each of the profile's
   signals that the server has (``edge.profiles``), resolved with TranslateBrowsePathsToNodeIds
   in batches across all instances;
4. the equipment id: the ``discover.equipment`` key that equals the instance's BrowseName,
   SerialNumber or ProductInstanceUri; with no map, ``source.equipment`` the same way (or the
   only instance found); with neither, the BrowseName itself. An instance left out of a
   non-empty map is listed, not read; a map entry that matches no instance is unresolved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from asyncua import ua

from core.settings import Discovery
from edge.addressing import (
    AddressSpace,
    Namespace,
    PathSegment,
    Unresolvable,
    parse_browse_path,
    plain_node_id,
)
from edge.addressing import (
    node_id as make_node_id,
)
from edge.profiles import ANY_CHILD, IDENTIFICATION, INSTANCE, NAMESPACES, PROFILES, Profile, RelativePath

ALL_SIGNALS = "*"  # the signal of an unresolved entry that concerns a whole machine or source
EQUIPMENT_ID_MAX = 64


@dataclass(frozen=True, slots=True)
class MachineInstance:
    """A machine found on the server: where, what its nameplate says, and which equipment it is."""

    node_id: ua.NodeId
    browse_name: str
    address: str  # browse path from Objects, for messages
    identification: Mapping[str, str]  # manufacturer, model, serial_number, product_instance_uri (as found)
    equipment: str | None  # None: not in discover.equipment, not read


@dataclass(frozen=True, slots=True)
class DiscoveredSignal:
    equipment: str
    signal: str
    node_id: ua.NodeId
    address: str


@dataclass(slots=True)
class DiscoveryResult:
    machines: list[MachineInstance] = field(default_factory=list)
    signals: list[DiscoveredSignal] = field(default_factory=list)
    unresolved: list[tuple[str, str, str]] = field(default_factory=list)  # (equipment, signal, reason)


@dataclass(frozen=True, slots=True)
class _Found:
    node_id: ua.NodeId
    browse_name: ua.QualifiedName
    address: str


async def discover(space: AddressSpace, discovery: Discovery, *, equipment: str | None = None) -> DiscoveryResult:
    profile = PROFILES[discovery.profile]
    result = DiscoveryResult()
    roots = await _roots(space, profile, discovery, result)
    if result.unresolved:  # the configured root is not there
        return result
    found = await _instances(space, profile, roots)
    if not found:
        where = discovery.root or " or ".join(_root_text(root) for root in profile.roots)
        result.unresolved.append(("", ALL_SIGNALS, f"no {profile.name} instance under {where}"))
        return result
    identities = await _identify(space, found)
    wanted = discovery.equipment or ({equipment: equipment} if equipment else {})
    assigned = _assign(found, identities, wanted)
    if equipment and not discovery.equipment and not assigned and len(found) == 1:
        assigned[found[0].node_id] = equipment  # the one machine of a one-machine server
    for instance, ident in zip(found, identities, strict=True):
        eq = assigned.get(instance.node_id)
        if eq is None and not wanted:
            eq = instance.browse_name.Name or ""
            if not eq or len(eq) > EQUIPMENT_ID_MAX:
                reason = f"{instance.address}: its BrowseName is no equipment id (1 to {EQUIPMENT_ID_MAX} characters)"
                reason += "; name it in discover.equipment"
                result.unresolved.append((eq[:EQUIPMENT_ID_MAX], ALL_SIGNALS, reason))
                eq = None
        name = instance.browse_name.Name or ""
        result.machines.append(MachineInstance(instance.node_id, name, instance.address, ident, eq))
    for key, eq in wanted.items():
        if eq not in {m.equipment for m in result.machines}:
            result.unresolved.append(
                (eq, ALL_SIGNALS, f"no {profile.name} instance named {key!r} (BrowseName, SerialNumber or URI)")
            )
    read = [(m, inst) for m, inst in zip(result.machines, found, strict=True) if m.equipment is not None]
    located = await _locate(space, profile, [inst for _, inst in read])
    for (machine, _), signals in zip(read, located, strict=True):
        assert machine.equipment is not None
        for recipe in profile.signals:
            hit = signals.get(recipe.signal)
            if hit is not None:
                result.signals.append(DiscoveredSignal(machine.equipment, recipe.signal, hit[0], hit[1]))
    return result


def _root_text(root: tuple[str, int]) -> str:
    return f"nsu={NAMESPACES[root[0]]};i={root[1]}"


async def _roots(
    space: AddressSpace, profile: Profile, discovery: Discovery, result: DiscoveryResult
) -> list[tuple[ua.NodeId, str]]:
    if discovery.root is not None:
        path = parse_browse_path(discovery.root)
        (node,) = await space.resolve([path])
        if isinstance(node, Unresolvable):
            result.unresolved.append(("", ALL_SIGNALS, f"discover.root {discovery.root}: {node.reason}"))
            return []
        return [(node, str(path))]
    roots: list[tuple[ua.NodeId, str]] = []
    for key, number in profile.roots:
        try:
            node = make_node_id(number, space.namespaces.index(NAMESPACES[key]))
        except Unresolvable:
            continue  # the server does not implement that specification
        (value,) = await space.read([node], ua.AttributeIds.BrowseName)
        name = value.Value.Value if value.Value is not None else None
        if isinstance(name, ua.QualifiedName):
            roots.append((node, "/" + str(_segment(space, name))))
    return roots


def _segment(space: AddressSpace, name: ua.QualifiedName) -> PathSegment:
    return PathSegment(name.NamespaceIndex, name.Name or "")


async def _instances(space: AddressSpace, profile: Profile, roots: Sequence[tuple[ua.NodeId, str]]) -> list[_Found]:
    if not roots:
        return []
    wanted: set[ua.NodeId] = set()
    for key, number in profile.machine_types:
        try:
            wanted.add(make_node_id(number, space.namespaces.index(NAMESPACES[key])))
        except Unresolvable:
            continue
    if profile.machine_types and not wanted:
        return []
    verdicts: dict[ua.NodeId, bool] = {}
    found: dict[ua.NodeId, _Found] = {}
    children = await space.children([node for node, _ in roots])
    for (_, root_address), refs in zip(roots, children, strict=True):
        for ref in refs:
            node_id = _local(ref.NodeId, space)
            if node_id is None or node_id in found:
                continue
            if profile.machine_types:
                type_id = _local(ref.TypeDefinition, space)
                if type_id is None:
                    continue
                if type_id not in verdicts:
                    verdicts[type_id] = type_id in wanted or bool(wanted & set(await space.supertypes(type_id)))
                if not verdicts[type_id]:
                    continue
            address = f"{root_address}/{_segment(space, ref.BrowseName)}"
            found[node_id] = _Found(node_id, ref.BrowseName, address)
    return list(found.values())


def _local(target: ua.ExpandedNodeId | ua.NodeId, space: AddressSpace) -> ua.NodeId | None:
    """A reference's target as a node of this server; None for one elsewhere (another server, an unknown URI)."""
    try:
        return plain_node_id(target, space.namespaces)
    except Unresolvable:
        return None


def _steps(space: AddressSpace, steps: RelativePath, instance: _Found) -> list[PathSegment | None] | None:
    """Profile steps as segments (None for any child); None if a namespace is not on the server."""
    out: list[PathSegment | None] = []
    for key, name in steps:
        if key == ANY_CHILD:
            out.append(None)
            continue
        namespace: Namespace
        if key == INSTANCE:
            namespace = instance.browse_name.NamespaceIndex
        elif key == "0":
            namespace = 0
        else:
            try:
                namespace = space.namespaces.index(NAMESPACES[key])
            except Unresolvable:
                return None
        out.append(PathSegment(namespace, name))
    return out


def _address(instance: _Found, segments: Sequence[PathSegment]) -> str:
    return instance.address + "".join(f"/{s}" for s in segments)


async def _identify(space: AddressSpace, found: Sequence[_Found]) -> list[dict[str, str]]:
    """Each instance's nameplate (the fields it has), read in batches."""
    paths: list[tuple[int, str, ua.NodeId, list[PathSegment]]] = []
    for n, instance in enumerate(found):
        for key, steps in IDENTIFICATION.items():
            segments = _steps(space, steps, instance)
            if segments is not None:
                paths.append((n, key, instance.node_id, [s for s in segments if s is not None]))
    nodes = await space.translate([(start, segments) for _, _, start, segments in paths])
    located = [(n, key, node) for (n, key, _, _), node in zip(paths, nodes, strict=True) if isinstance(node, ua.NodeId)]
    values = await space.read([node for _, _, node in located], ua.AttributeIds.Value)
    out: list[dict[str, str]] = [{} for _ in found]
    for (n, key, _), value in zip(located, values, strict=True):
        text = _text(value.Value.Value if value.Value is not None else None)
        if text:
            out[n][key] = text
    return out


def _text(value: object) -> str:
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    return "" if value is None else str(value)


def _assign(
    found: Sequence[_Found], identities: Sequence[Mapping[str, str]], wanted: Mapping[str, str]
) -> dict[ua.NodeId, str]:
    """Instance -> equipment by the map's keys (BrowseName, SerialNumber or ProductInstanceUri)."""
    out: dict[ua.NodeId, str] = {}
    for instance, ident in zip(found, identities, strict=True):
        names = {instance.browse_name.Name, ident.get("serial_number"), ident.get("product_instance_uri")}
        for key, equipment in wanted.items():
            if key in names:
                out[instance.node_id] = equipment
                break
    return out


async def _locate(
    space: AddressSpace, profile: Profile, instances: Sequence[_Found]
) -> list[dict[str, tuple[ua.NodeId, str]]]:
    """Per instance, signal -> (node, address): the first candidate of each recipe that the server has.

    Candidates without a wildcard are translated in batches across all instances; a wildcard one
    browses, and only when no better-ranked candidate of its signal was found.
    """
    plain: list[tuple[int, str, int, list[PathSegment]]] = []
    patterns: list[tuple[int, str, int, list[PathSegment | None]]] = []
    for n, instance in enumerate(instances):
        for recipe in profile.signals:
            for rank, steps in enumerate(recipe.candidates):
                segments = _steps(space, steps, instance)
                if segments is None:
                    continue
                if None in segments:
                    patterns.append((n, recipe.signal, rank, segments))
                else:
                    plain.append((n, recipe.signal, rank, [s for s in segments if s is not None]))
    hits: list[dict[str, tuple[int, ua.NodeId, str]]] = [{} for _ in instances]

    def keep(n: int, signal: str, rank: int, node: ua.NodeId, segments: Sequence[PathSegment]) -> None:
        if signal not in hits[n] or rank < hits[n][signal][0]:
            hits[n][signal] = (rank, node, _address(instances[n], segments))

    nodes = await space.translate([(instances[n].node_id, segments) for n, _, _, segments in plain])
    for (n, signal, rank, path_found), node in zip(plain, nodes, strict=True):
        if isinstance(node, ua.NodeId):
            keep(n, signal, rank, node, path_found)
    for n, signal, rank, pattern in patterns:
        if signal in hits[n] and hits[n][signal][0] < rank:
            continue
        match = await _match(space, instances[n].node_id, pattern, [])
        if match is not None:
            keep(n, signal, rank, match[0], match[1])
    return [{signal: (node, address) for signal, (_, node, address) in h.items()} for h in hits]


async def _match(
    space: AddressSpace, start: ua.NodeId, pattern: Sequence[PathSegment | None], walked: list[PathSegment]
) -> tuple[ua.NodeId, list[PathSegment]] | None:
    """The first node matching ``pattern`` (None: any child object) from ``start``, depth first."""
    cut = pattern.index(None) if None in pattern else len(pattern)
    head = [s for s in pattern[:cut] if s is not None]
    node = start
    if head:
        (resolved,) = await space.translate([(start, head)])
        if isinstance(resolved, Unresolvable):
            return None
        node = resolved
    if cut == len(pattern):
        return node, walked + head
    (refs,) = await space.children([node])
    for ref in refs:
        child = _local(ref.NodeId, space)
        if child is None:
            continue
        step = PathSegment(ref.BrowseName.NamespaceIndex, ref.BrowseName.Name or "")
        match = await _match(space, child, pattern[cut + 1 :], [*walked, *head, step])
        if match is not None:
            return match
    return None
