"""Sequence gaps of edges whose batches are shared among the instances of an ingest group.

In a shared subscription (``ingest.shared_group``) the broker hands each batch of an edge to one
instance or another, so no instance sees an edge's whole numbering, and a jump in what one
instance sees is no gap. So the instances tell each other, through the broker, which numbers they
received: every ``report_interval_s`` each publishes the numbers it received since its last report
(ranges per edge, ``encode_report``) on ``<group topic>/<client id>`` and reads the others'
(``heard``). A number is judged only once it is **settled**: ``settle_s`` after it was first known
here, by which time the other instances have reported what they received around it. Then every
number between the last settled one and it that nobody reported is missing.

Each gap is counted once in the group: by the instance that received the batch right after the
hole (every instance knows who received what; exactly one received that batch). A missing number
that arrives after all is counted as late by the instance that receives it.

State is bounded like ``SequenceTracker``'s: per edge the unsettled numbers (at most
``max_unsettled``; beyond that the lowest half is settled at once) and at most
``max_remembered_missing`` missing numbers, for at most ``max_edges`` edges, the least recently
heard forgotten first. A forgotten edge starts afresh (no gap before its next number).

What this cannot see: a report lost on its way (an instance killed between receiving batches and
reporting them) makes another instance count the numbers it had as gaps; QoS 1 and a persistent
session make that rare, and a resent batch then shows as late. The broker's ACL must let ingest
write and read the group topic (deploy/mosquitto/acl).
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core.wire import EDGE_ID_PATTERN, INT64_MAX

REPORT_VERSION = 1
MAX_NUMBERS_PER_REPORT = 100_000  # a report naming more is refused: it would cost memory, not tell gaps
MAX_UNSETTLED = 100_000
MAX_REMEMBERED_MISSING = 10_000
MAX_EDGES = 10_000

_EDGE_ID = re.compile(EDGE_ID_PATTERN)


class ReportError(ValueError):
    """A group report that cannot be used, with the reason."""


@dataclass(frozen=True, slots=True)
class Gap:
    edge: str
    missing: int  # how many numbers
    after: int  # the last number before the hole
    before: int  # the number that came after it


@dataclass(slots=True)
class _Known:
    learned: float  # when this instance first knew of the number (its clock)
    here: bool  # received by this instance


@dataclass(slots=True)
class _EdgeNumbers:
    floor: int | None = None  # every number up to here is settled; None: nothing settled yet
    unsettled: dict[int, _Known] = field(default_factory=dict)
    missing: OrderedDict[int, None] = field(default_factory=OrderedDict)


def ranges(numbers: Iterable[int]) -> list[list[int]]:
    """``[[lo, hi], ...]`` covering ``numbers`` (sorted, merged)."""
    out: list[list[int]] = []
    for n in sorted(set(numbers)):
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def encode_report(instance: str, numbers: dict[str, list[int]]) -> bytes:
    body = {"v": REPORT_VERSION, "instance": instance, "edges": {e: ranges(n) for e, n in numbers.items()}}
    return json.dumps(body, separators=(",", ":")).encode()


def decode_report(payload: bytes, max_bytes: int) -> tuple[str, dict[str, list[int]]]:
    """(the reporting instance, the numbers per edge) or ReportError; nothing else escapes."""
    if len(payload) > max_bytes:
        raise ReportError(f"report of {len(payload)} bytes exceeds the limit of {max_bytes}")
    try:
        body: Any = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise ReportError(f"report is not JSON: {type(exc).__name__}") from None
    if not isinstance(body, dict) or body.get("v") != REPORT_VERSION:
        raise ReportError("report is not a version 1 object")
    instance, edges = body.get("instance"), body.get("edges")
    if not isinstance(instance, str) or not isinstance(edges, dict):
        raise ReportError("report needs 'instance' (a string) and 'edges' (an object)")
    numbers: dict[str, list[int]] = {}
    total = 0
    for edge, spans in edges.items():
        if not _EDGE_ID.fullmatch(edge) or not isinstance(spans, list):
            raise ReportError(f"report names no edge id or no ranges: {edge[:80]!r}")
        listed = numbers.setdefault(edge, [])
        for span in spans:
            if not (
                isinstance(span, list)
                and len(span) == 2
                and all(type(n) is int and 0 <= n <= INT64_MAX for n in span)
                and span[0] <= span[1]
            ):
                raise ReportError(f"report has a range that is not [lo, hi] within 0 … 2**63-1: {str(span)[:80]}")
            total += span[1] - span[0] + 1
            if total > MAX_NUMBERS_PER_REPORT:
                raise ReportError(f"report names more than {MAX_NUMBERS_PER_REPORT} numbers")
            listed.extend(range(span[0], span[1] + 1))
    return instance, numbers


class GroupSequence:
    """What the group received of each edge's numbering, and the gaps this instance is to count."""

    def __init__(
        self,
        settle_s: float,
        *,
        max_unsettled: int = MAX_UNSETTLED,
        max_remembered_missing: int = MAX_REMEMBERED_MISSING,
        max_edges: int = MAX_EDGES,
    ):
        self.settle_s = settle_s
        self._edges: OrderedDict[str, _EdgeNumbers] = OrderedDict()
        self._outgoing: dict[str, list[int]] = {}
        self._forced: list[Gap] = []  # gaps found settling early (too many numbers unsettled)
        self._max_unsettled = max_unsettled
        self._max_missing = max_remembered_missing
        self._max_edges = max_edges

    def __len__(self) -> int:
        """How many edges are remembered."""
        return len(self._edges)

    def _edge(self, edge: str) -> _EdgeNumbers:
        state = self._edges.get(edge)
        if state is None:
            while len(self._edges) >= self._max_edges:
                self._edges.popitem(last=False)
            state = self._edges[edge] = _EdgeNumbers()
        else:
            self._edges.move_to_end(edge)
        return state

    def received(self, edge: str, seq: int, now: float) -> bool:
        """This instance received batch ``seq`` of ``edge``; True if it was counted missing before (late)."""
        state = self._edge(edge)
        self._outgoing.setdefault(edge, []).append(seq)
        if state.floor is not None and seq <= state.floor:
            if seq in state.missing:
                del state.missing[seq]
                return True
            return False
        known = state.unsettled.get(seq)
        if known is None:
            state.unsettled[seq] = _Known(now, True)
            self._bound(edge, state)
        else:
            known.here = True
        return False

    def heard(self, numbers: dict[str, list[int]], now: float) -> None:
        """Numbers another instance of the group received."""
        for edge, listed in numbers.items():
            state = self._edge(edge)
            for seq in listed:
                if state.floor is not None and seq <= state.floor:
                    state.missing.pop(seq, None)  # late, counted by the instance that received it
                elif seq not in state.unsettled:
                    state.unsettled[seq] = _Known(now, False)
            self._bound(edge, state)

    def outgoing(self) -> dict[str, list[int]]:
        """The numbers received here since the last call, to report to the group."""
        numbers, self._outgoing = self._outgoing, {}
        return numbers

    def outgoing_again(self, edge: str, numbers: list[int]) -> None:
        """Numbers whose report could not be sent: they go out with the next."""
        self._outgoing.setdefault(edge, []).extend(numbers)

    def settle(self, now: float) -> list[Gap]:
        """Settle what is older than ``settle_s``; the gaps this instance is to count."""
        gaps, self._forced = self._forced, []
        horizon = now - self.settle_s
        for edge, state in self._edges.items():
            old = [seq for seq, known in state.unsettled.items() if known.learned <= horizon]
            if old:
                gaps.extend(self._settle_up_to(edge, state, max(old)))
        return gaps

    def _bound(self, edge: str, state: _EdgeNumbers) -> None:
        if len(state.unsettled) > self._max_unsettled:
            # Too many numbers within settle_s (or reports that never end): settle the lower half now.
            numbers = sorted(state.unsettled)
            self._forced.extend(self._settle_up_to(edge, state, numbers[len(numbers) // 2]))

    def _settle_up_to(self, edge: str, state: _EdgeNumbers, top: int) -> Iterator[Gap]:
        previous = state.floor
        for seq in sorted(n for n in state.unsettled if n <= top):
            known = state.unsettled.pop(seq)
            if previous is not None and seq > previous + 1:
                if seq - previous - 1 <= self._max_missing:
                    state.missing.update(dict.fromkeys(range(previous + 1, seq)))
                    while len(state.missing) > self._max_missing:
                        state.missing.popitem(last=False)
                if known.here:
                    yield Gap(edge, seq - previous - 1, previous, seq)
            previous = seq
        state.floor = top if state.floor is None else max(state.floor, top)
