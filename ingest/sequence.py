"""Per-edge batch sequence checking: every edge numbers its batches 0, 1, 2, … across restarts.

A jump forward means batches are missing (lost in the edge's buffer or not yet delivered). A batch
whose number and content (its ``fingerprint``: sample count, first and last sample) match one of
the edge's recent batches is a **duplicate** (QoS 1 redelivery, an edge resending after a lost
acknowledgement): ingest counts it and writes nothing. A recent number with other content is
**reused** (an edge whose buffer, and with it its numbering, was reset): written and counted. An
older number beyond the recent window is a **repeat**: written again, which is harmless since
writes are idempotent.

State is bounded: ``recent_batches`` fingerprints and ``max_missing`` open gap numbers per edge,
for at most ``max_edges`` edges; the edge heard from least recently is forgotten first (its next
batch is then FIRST again). Memory does not grow with made-up edge names.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from enum import StrEnum

MAX_REMEMBERED_MISSING = 10_000
RECENT_BATCHES = 1_000
MAX_EDGES = 10_000


class SeqVerdict(StrEnum):
    FIRST = "first"  # the first batch of this edge since ingest started (or since it was forgotten)
    NEXT = "next"  # exactly one more than the highest seen
    GAP = "gap"  # beyond the next: ``missing`` batches were skipped
    LATE = "late"  # fills a gap reported earlier
    DUPLICATE = "duplicate"  # the same batch again: nothing to write
    REUSED = "reused"  # a recent number with other content: written
    REPEAT = "repeat"  # an older number beyond the recent window: written again (idempotent)


@dataclass(frozen=True, slots=True)
class SeqCheck:
    verdict: SeqVerdict
    expected: int | None = None  # the sequence number that would have been NEXT
    missing: int = 0


@dataclass(slots=True)
class _EdgeState:
    highest: int
    missing: set[int] = field(default_factory=set)
    recent: OrderedDict[int, Hashable] = field(default_factory=OrderedDict)


class SequenceTracker:
    """Remembers per edge the highest sequence number, the gaps still open and the recent batches."""

    def __init__(
        self,
        max_remembered_missing: int = MAX_REMEMBERED_MISSING,
        recent_batches: int = RECENT_BATCHES,
        max_edges: int = MAX_EDGES,
    ):
        self._edges: OrderedDict[str, _EdgeState] = OrderedDict()
        self._max_missing = max_remembered_missing
        self._recent_batches = recent_batches
        self._max_edges = max_edges

    def __len__(self) -> int:
        """How many edges are remembered."""
        return len(self._edges)

    def observe(self, edge: str, seq: int, fingerprint: Hashable = None) -> SeqCheck:
        state = self._edges.get(edge)
        if state is None:
            while len(self._edges) >= self._max_edges:
                self._edges.popitem(last=False)
            state = self._edges[edge] = _EdgeState(seq)
            self._remember(state, seq, fingerprint)
            return SeqCheck(SeqVerdict.FIRST)
        self._edges.move_to_end(edge)
        expected = state.highest + 1
        if seq in state.recent:
            if state.recent[seq] == fingerprint:
                return SeqCheck(SeqVerdict.DUPLICATE, expected)
            self._remember(state, seq, fingerprint)
            return SeqCheck(SeqVerdict.REUSED, expected)
        self._remember(state, seq, fingerprint)
        if seq == expected:
            state.highest = seq
            return SeqCheck(SeqVerdict.NEXT, expected)
        if seq > expected:
            state.highest = seq
            # A huge jump (an edge whose buffer was reset) is reported but not remembered number by number.
            if seq - expected <= self._max_missing:
                state.missing.update(range(expected, seq))
                while len(state.missing) > self._max_missing:
                    state.missing.discard(min(state.missing))
            return SeqCheck(SeqVerdict.GAP, expected, missing=seq - expected)
        if seq in state.missing:
            state.missing.discard(seq)
            return SeqCheck(SeqVerdict.LATE, expected)
        return SeqCheck(SeqVerdict.REPEAT, expected)

    def _remember(self, state: _EdgeState, seq: int, fingerprint: Hashable) -> None:
        state.recent[seq] = fingerprint
        state.recent.move_to_end(seq)
        while len(state.recent) > self._recent_batches:
            state.recent.popitem(last=False)
