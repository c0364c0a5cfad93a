"""Where a signal sits on an OPC UA server: NodeIds and browse paths, parsed offline and resolved per session.

An address is written one of two ways (``parse_address``):

* a **NodeId** (OPC UA Part 6, 5.3.1.10): ``ns=<index>;`` or ``nsu=<namespace URI>;`` (or neither:
  namespace 0), then ``i=<UInt32>``, ``s=<string>`` (everything to the end, ``;`` and ``=``
  included), ``g=<GUID>`` or ``b=<base64>``. In a URI, ``;`` and ``%`` are written ``%3B`` and ``%25``.
* a **browse path** from the Objects folder: ``/4:Machines/8:CNC-07/2:Monitoring``. Each segment
  is a BrowseName with its namespace as a prefix: an index (``4:``), a URI in angle brackets
  (``<http://opcfoundation.org/UA/Machinery/>:Machines``) or none (namespace 0, as in Part 4's
  RelativePath). ``&`` escapes the next character, for names holding ``/``, ``<`` or ``&``.
  Each step follows hierarchical references (Organizes, HasComponent, HasProperty, ... and subtypes).

Parsing needs no server (``check_source`` refuses a bad address at start, as ``factory
check-config`` does). Resolving needs one: ``AddressSpace.open(client)`` reads the server's
NamespaceArray and operation limits once per session, then turns namespace URIs into indexes and
browse paths into NodeIds with TranslateBrowsePathsToNodeIds, batched within the server's limit.
A server restart may renumber namespaces and nodes, so every session resolves anew. What cannot
be resolved is an ``Unresolvable`` with a reason that names the namespace or the path segment.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from asyncua import Client, ua

from core.errors import FactoryError

# A server that reports no limit (0) still gets requests of at most this many operations.
DEFAULT_OPERATIONS_PER_CALL = 1000
FULL_MATCH = 0xFFFFFFFF  # RemainingPathIndex of a target that matched the whole path
_UINT32_MAX = 0xFFFFFFFF
_UINT16_MAX = 0xFFFF


def node_id(identifier: Identifier, namespace: int = 0) -> ua.NodeId:
    """A NodeId from plain Python values (asyncua annotates them with its own nominal types)."""
    return ua.NodeId(cast(Any, identifier), cast(Any, namespace))


HIERARCHICAL = node_id(ua.ObjectIds.HierarchicalReferences)
HAS_SUBTYPE = node_id(ua.ObjectIds.HasSubtype)
OBJECTS_FOLDER = node_id(ua.ObjectIds.ObjectsFolder)


class AddressError(FactoryError, ValueError):
    """An address that is not a NodeId or browse path; ``reason`` says where it goes wrong."""

    def __init__(self, address: str, reason: str):
        self.address = address
        self.reason = reason
        super().__init__(f"{address!r}: {reason}")


class Unresolvable(FactoryError):
    """An address this server does not have (an unknown namespace URI, a segment not found, ...)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


Namespace = int | str  # an index, or a URI looked up in the server's NamespaceArray
Identifier = int | str | uuid.UUID | bytes


def _escape_uri(uri: str) -> str:
    return uri.replace("%", "%25").replace(";", "%3B")


def _unescape_uri(uri: str) -> str:
    return re.sub(r"%(3[bB]|25)", lambda m: ";" if m.group(1).lower() == "3b" else "%", uri)


def _namespace_text(namespace: Namespace) -> str:
    return f"ns={namespace}" if isinstance(namespace, int) else f"nsu={_escape_uri(namespace)}"


@dataclass(frozen=True, slots=True)
class NodeIdAddress:
    """A NodeId whose namespace is an index or a URI (resolved with the server's NamespaceArray)."""

    namespace: Namespace
    identifier: Identifier

    def __str__(self) -> str:
        prefix = "" if self.namespace == 0 else _namespace_text(self.namespace) + ";"
        return prefix + _identifier_text(self.identifier)

    def resolve(self, namespaces: NamespaceTable) -> ua.NodeId:
        return node_id(self.identifier, namespaces.index(self.namespace))


def _identifier_text(identifier: Identifier) -> str:
    if isinstance(identifier, int):
        return f"i={identifier}"
    if isinstance(identifier, uuid.UUID):
        return f"g={identifier}"
    if isinstance(identifier, bytes):
        return "b=" + base64.b64encode(identifier).decode("ascii")
    return f"s={identifier}"


@dataclass(frozen=True, slots=True)
class PathSegment:
    """One step of a browse path: a BrowseName (namespace and name)."""

    namespace: Namespace
    name: str

    def __str__(self) -> str:
        name = re.sub(r"([/&<])", r"&\1", self.name)
        if isinstance(self.namespace, int):
            return name if self.namespace == 0 else f"{self.namespace}:{name}"
        return f"<{self.namespace}>:{name}"

    def qualified_name(self, namespaces: NamespaceTable) -> ua.QualifiedName:
        return ua.QualifiedName(self.name, namespaces.index(self.namespace))


@dataclass(frozen=True, slots=True)
class BrowsePathAddress:
    """A browse path from the Objects folder."""

    segments: tuple[PathSegment, ...]

    def __str__(self) -> str:
        return "/" + "/".join(str(s) for s in self.segments)


Address = NodeIdAddress | BrowsePathAddress


def parse_address(text: str) -> Address:
    """A NodeId or (starting with ``/``) a browse path; AddressError says what is wrong with it."""
    if text.startswith("/"):
        return parse_browse_path(text)
    return parse_node_id(text)


def parse_node_id(text: str) -> NodeIdAddress:
    """``ns=2;s=cnc-01.State``, ``nsu=urn:x;i=5``, ``i=85``, ``ns=3;g=<GUID>``, ``ns=3;b=<base64>``."""
    namespace: Namespace = 0
    rest = text.strip()
    if not rest:
        raise AddressError(text, "empty NodeId")
    if rest.startswith("srv="):
        raise AddressError(text, "a NodeId on another server (srv=) cannot be read through this one")
    if rest.startswith("ns="):
        head, sep, rest = rest[3:].partition(";")
        if not sep or not head.isdigit() or int(head) > _UINT16_MAX:
            raise AddressError(text, "ns= takes a namespace index (0..65535) followed by ';'")
        namespace = int(head)
    elif rest.startswith("nsu="):
        head, sep, rest = rest[4:].partition(";")
        if not sep or not head:
            raise AddressError(text, "nsu= takes a namespace URI followed by ';' (a ';' in the URI is written %3B)")
        namespace = _unescape_uri(head)
    kind, sep, value = rest.partition("=")
    if not sep or kind not in ("i", "s", "g", "b"):
        raise AddressError(text, "expected i=<number>, s=<string>, g=<GUID> or b=<base64> after the namespace")
    return NodeIdAddress(namespace, _parse_identifier(text, kind, value))


def _parse_identifier(text: str, kind: str, value: str) -> Identifier:
    if kind == "i":
        if not value.isdigit() or int(value) > _UINT32_MAX:
            raise AddressError(text, f"i= takes an unsigned 32-bit number, got {value!r}")
        return int(value)
    if kind == "s":
        if not value:
            raise AddressError(text, "s= takes a non-empty string")
        return value
    if kind == "g":
        try:
            return uuid.UUID(value)
        except ValueError:
            raise AddressError(text, f"g= takes a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got {value!r}") from None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise AddressError(text, f"b= takes base64, got {value!r}") from None
    if not decoded:
        raise AddressError(text, "b= takes a non-empty ByteString")
    return decoded


def parse_browse_path(text: str) -> BrowsePathAddress:
    """``/4:Machines/<urn:vendor>:CNC-07/Name`` -> segments; AddressError names the bad segment."""
    if not text.startswith("/"):
        raise AddressError(text, "a browse path starts at the Objects folder with '/'")
    segments = [_parse_segment(text, raw) for raw in _split_path(text, text[1:])]
    if not segments:
        raise AddressError(text, "a browse path names at least one node under Objects")
    return BrowsePathAddress(tuple(segments))


def parse_relative_path(text: str) -> tuple[PathSegment, ...]:
    """Segments of a path relative to some node, in the browse path syntax without the leading '/'."""
    return tuple(_parse_segment(text, raw) for raw in _split_path(text, text))


def _split_path(text: str, body: str) -> list[str]:
    """Split at unescaped '/', keeping escapes for the segment parser; '/' inside <URI> does not split."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    in_uri = False
    while i < len(body):
        ch = body[i]
        if ch == "&" and not in_uri:
            if i + 1 == len(body):
                raise AddressError(text, "'&' at the end escapes nothing")
            current.append(body[i : i + 2])
            i += 2
            continue
        if ch == "<" and not current:
            in_uri = True
        elif ch == ">" and in_uri:
            in_uri = False
        elif ch == "/" and not in_uri:
            parts.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    if in_uri:
        raise AddressError(text, "a namespace URI opened with '<' is not closed with '>'")
    parts.append("".join(current))
    return parts


def _parse_segment(text: str, raw: str) -> PathSegment:
    if not raw:
        raise AddressError(text, "empty segment (two '/' in a row, or a '/' at the end)")
    namespace: Namespace = 0
    name = raw
    if raw.startswith("<"):
        uri, _, rest = raw[1:].partition(">")
        if not uri or not rest.startswith(":"):
            raise AddressError(text, f"segment {raw!r}: write a URI prefix as <uri>:Name")
        namespace, name = uri, rest[1:]
    elif (m := re.match(r"(\d+):", raw)) is not None:
        if int(m.group(1)) > _UINT16_MAX:
            raise AddressError(text, f"segment {raw!r}: namespace index beyond 65535")
        namespace, name = int(m.group(1)), raw[m.end() :]
    name = re.sub(r"&(.)", r"\1", name)
    if not name:
        raise AddressError(text, f"segment {raw!r} has no name")
    return PathSegment(namespace, name)


class NamespaceTable:
    """The server's NamespaceArray of this session: URI <-> index."""

    def __init__(self, uris: Sequence[str]):
        self.uris = list(uris)
        self._index = {uri: i for i, uri in reversed(list(enumerate(self.uris)))}

    def index(self, namespace: Namespace) -> int:
        if isinstance(namespace, int):
            return namespace
        try:
            return self._index[namespace]
        except KeyError:
            raise Unresolvable(
                f"namespace {namespace!r} is not on the server (its namespaces: {', '.join(self.uris)})"
            ) from None

    def uri(self, index: int) -> str | None:
        return self.uris[index] if 0 <= index < len(self.uris) else None

    def show(self, node_id: ua.NodeId) -> str:
        """``nsu=<uri>;s=...`` (stable across servers) for a resolved NodeId; namespace 0 plain."""
        identifier = cast(Identifier, node_id.Identifier)
        uri = self.uri(node_id.NamespaceIndex)
        namespace: Namespace = node_id.NamespaceIndex if uri is None or node_id.NamespaceIndex == 0 else uri
        return str(NodeIdAddress(namespace, identifier))


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _limit(value: ua.DataValue) -> int:
    limit = value.Value.Value if value.Value is not None else None
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        return DEFAULT_OPERATIONS_PER_CALL
    return min(limit, DEFAULT_OPERATIONS_PER_CALL)


def plain_node_id(target: ua.ExpandedNodeId | ua.NodeId, namespaces: NamespaceTable) -> ua.NodeId:
    """A browse or translate result's ExpandedNodeId as a NodeId of this server."""
    index = int(target.NamespaceIndex)
    if isinstance(target, ua.ExpandedNodeId):
        if target.ServerIndex:
            raise Unresolvable(f"{target.to_string()} is on another server (ServerIndex {target.ServerIndex})")
        if target.NamespaceUri:
            index = namespaces.index(target.NamespaceUri)
    return ua.NodeId(target.Identifier, cast(Any, index), target.NodeIdType)


class AddressSpace:
    """One session's view of the server for resolving addresses: namespaces and operation limits.

    ``await AddressSpace.open(client)`` after connect; every request it makes is batched within
    the server's OperationLimits (at most ``DEFAULT_OPERATIONS_PER_CALL`` per request).
    """

    def __init__(self, client: Client, namespaces: NamespaceTable, *, per_translate: int, per_read: int):
        self.client = client
        self.namespaces = namespaces
        self.per_translate = per_translate
        self.per_read = per_read
        self.requests = 0  # service calls made, for tests and logs

    @classmethod
    async def open(cls, client: Client) -> AddressSpace:
        limits = ua.ObjectIds
        values = await client.uaclient.read_attributes(
            [
                node_id(limits.Server_NamespaceArray),
                node_id(limits.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds),
                node_id(limits.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead),
            ],
            ua.AttributeIds.Value,
        )
        uris = values[0].Value.Value if values[0].Value is not None else None
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise ua.UaError(f"the server's NamespaceArray is unreadable ({values[0].StatusCode})")
        space = cls(client, NamespaceTable(uris), per_translate=_limit(values[1]), per_read=_limit(values[2]))
        space.requests = 1
        return space

    async def read(self, node_ids: Sequence[ua.NodeId], attribute: ua.AttributeIds) -> list[ua.DataValue]:
        """One attribute of many nodes, in requests of at most the server's MaxNodesPerRead."""
        out: list[ua.DataValue] = []
        for chunk in _chunks(node_ids, self.per_read):
            self.requests += 1
            out += await self.client.uaclient.read_attributes(list(chunk), attribute)
        return out

    async def translate(
        self, paths: Sequence[tuple[ua.NodeId, Sequence[PathSegment]]]
    ) -> list[ua.NodeId | Unresolvable]:
        """Each (start node, segments) to the node it names, or why not (which segment is missing)."""
        out: list[ua.NodeId | Unresolvable | None] = [None] * len(paths)
        requests: list[tuple[int, ua.BrowsePath]] = []
        for n, (start, segments) in enumerate(paths):
            try:
                requests.append((n, self._browse_path(start, segments)))
            except Unresolvable as exc:
                out[n] = exc
        failed: list[int] = []
        for chunk in _chunks(requests, self.per_translate):
            self.requests += 1
            results = await self.client.uaclient.translate_browsepaths_to_nodeids([bp for _, bp in chunk])
            for (n, _), result in zip(chunk, results, strict=True):
                out[n] = target = self._target(result)
                if isinstance(target, Unresolvable) and target.reason.startswith("Bad"):
                    failed.append(n)  # the server found no such node: say where the path stops
        if failed:
            await self._explain([(n, paths[n]) for n in failed], out)
        return [cast(ua.NodeId | Unresolvable, r) for r in out]

    def _browse_path(self, start: ua.NodeId, segments: Sequence[PathSegment]) -> ua.BrowsePath:
        elements = [
            ua.RelativePathElement(
                ReferenceTypeId=HIERARCHICAL,
                IsInverse=cast(Any, False),
                IncludeSubtypes=cast(Any, True),
                TargetName=segment.qualified_name(self.namespaces),
            )
            for segment in segments
        ]
        return ua.BrowsePath(StartingNode=start, RelativePath=ua.RelativePath(Elements=elements))

    def _target(self, result: ua.BrowsePathResult) -> ua.NodeId | Unresolvable:
        if not result.StatusCode.is_good():
            return Unresolvable(result.StatusCode.name)
        for target in result.Targets or ():
            if target.RemainingPathIndex == FULL_MATCH:
                try:
                    return plain_node_id(target.TargetId, self.namespaces)
                except Unresolvable as exc:
                    return exc
        return Unresolvable("the path leads to another server")

    async def _explain(
        self,
        failed: Sequence[tuple[int, tuple[ua.NodeId, Sequence[PathSegment]]]],
        out: list[ua.NodeId | Unresolvable | None],
    ) -> None:
        """Name the first missing segment of each failed path (one more batch: all their prefixes)."""
        prefixes: list[tuple[int, int]] = []
        batch: list[ua.BrowsePath] = []
        for n, (start, segments) in failed:
            for k in range(1, len(segments)):
                prefixes.append((n, k))
                batch.append(self._browse_path(start, segments[:k]))
        reached: dict[int, int] = {}  # path -> the most segments of it that resolve
        done = 0
        for chunk in _chunks(batch, self.per_translate):
            self.requests += 1
            for result in await self.client.uaclient.translate_browsepaths_to_nodeids(list(chunk)):
                n, k = prefixes[done]
                if result.StatusCode.is_good():
                    reached[n] = max(reached.get(n, 0), k)
                done += 1
        for n, (_, segments) in failed:
            status = cast(Unresolvable, out[n]).reason
            k = reached.get(n, 0)
            under = "/" + "/".join(str(s) for s in segments[:k])
            out[n] = Unresolvable(f"no {str(segments[k])!r} under {under!r} ({status})")

    async def resolve(self, addresses: Sequence[Address]) -> list[ua.NodeId | Unresolvable]:
        """Each address to this server's NodeId, or why not; existence of NodeIds is checked too."""
        out: list[ua.NodeId | Unresolvable | None] = [None] * len(addresses)
        paths: list[tuple[int, BrowsePathAddress]] = []
        for n, address in enumerate(addresses):
            if isinstance(address, BrowsePathAddress):
                paths.append((n, address))
                continue
            try:
                out[n] = address.resolve(self.namespaces)
            except Unresolvable as exc:
                out[n] = exc
        translated = await self.translate([(OBJECTS_FOLDER, p.segments) for _, p in paths])
        for (n, _), result in zip(paths, translated, strict=True):
            out[n] = result
        await self._check_exist(out)
        return [cast(ua.NodeId | Unresolvable, r) for r in out]

    async def _check_exist(self, out: list[ua.NodeId | Unresolvable | None]) -> None:
        """A NodeId the server does not know is unresolved here, not a failed monitored item later."""
        todo = [(n, r) for n, r in enumerate(out) if isinstance(r, ua.NodeId)]
        classes = await self.read([r for _, r in todo], ua.AttributeIds.NodeClass)
        for (n, node), value in zip(todo, classes, strict=True):
            if value.StatusCode is not None and not value.StatusCode.is_good():
                out[n] = Unresolvable(f"{self.namespaces.show(node)}: {value.StatusCode.name}")

    async def children(self, node_ids: Sequence[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
        """The objects each node organises or holds (forward hierarchical references), all pages."""
        return await self._browse(node_ids, HIERARCHICAL, ua.BrowseDirection.Forward, ua.NodeClass.Object)

    async def supertypes(self, type_id: ua.NodeId) -> list[ua.NodeId]:
        """``type_id``'s supertypes, nearest first (inverse HasSubtype, at most 16 levels)."""
        chain: list[ua.NodeId] = []
        current = type_id
        for _ in range(16):
            (refs,) = await self._browse([current], HAS_SUBTYPE, ua.BrowseDirection.Inverse, 0)
            if not refs:
                break
            try:
                current = plain_node_id(refs[0].NodeId, self.namespaces)
            except Unresolvable:
                break
            chain.append(current)
        return chain

    async def _browse(
        self, node_ids: Sequence[ua.NodeId], reference: ua.NodeId, direction: ua.BrowseDirection, node_class: int
    ) -> list[list[ua.ReferenceDescription]]:
        out: list[list[ua.ReferenceDescription]] = []
        for chunk in _chunks(node_ids, self.per_read):
            params = ua.BrowseParameters()
            params.NodesToBrowse = [
                ua.BrowseDescription(
                    NodeId=node_id,
                    BrowseDirection=direction,
                    ReferenceTypeId=reference,
                    IncludeSubtypes=True,
                    NodeClassMask=node_class,
                    ResultMask=ua.BrowseResultMask.All,
                )
                for node_id in chunk
            ]
            self.requests += 1
            for result in await self.client.uaclient.browse(params):
                refs = list(result.References or []) if result.StatusCode.is_good() else []
                continuation = result.ContinuationPoint
                while continuation:
                    self.requests += 1
                    more = await self.client.uaclient.browse_next(
                        ua.BrowseNextParameters(ReleaseContinuationPoints=False, ContinuationPoints=[continuation])
                    )
                    refs += list(more[0].References or [])
                    continuation = more[0].ContinuationPoint
                out.append(refs)
        return out
