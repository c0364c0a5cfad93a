"""Per-edge batch sequence checking: every edge numbers its batches 0, 1, 2, … across restarts.

A jump forward means batches are missing (lost in the edge's buffer or not yet delivered); a number
seen before is a replay (QoS 1 redelivery, an edge resending after a lost acknowledgement). Replays
are still written, since writes are idempotent; the verdict is for counters and logs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

MAX_REMEMBERED_MISSING = 10_000


class SeqVerdict(StrEnum):
    FIRST = "first"  # the first batch of this edge since ingest started
    NEXT = "next"  # exactly one more than the highest seen
    GAP = "gap"  # beyond the next: ``missing`` batches were skipped
    LATE = "late"  # fills a gap reported earlier
    REPEAT = "repeat"  # seen before


@dataclass(frozen=True, slots=True)
class SeqCheck:
    verdict: SeqVerdict
    expected: int | None = None  # the sequence number that would have been NEXT
    missing: int = 0


@dataclass(slots=True)
class _EdgeState:
    highest: int
    missing: set[int] = field(default_factory=set)


class SequenceTracker:
    """Remembers the highest sequence number per edge and the gaps still open below it."""

    def __init__(self, max_remembered_missing: int = MAX_REMEMBERED_MISSING):
        self._edges: dict[str, _EdgeState] = {}
        self._max_missing = max_remembered_missing

    def observe(self, edge: str, seq: int) -> SeqCheck:
        state = self._edges.get(edge)
        if state is None:
            self._edges[edge] = _EdgeState(seq)
            return SeqCheck(SeqVerdict.FIRST)
        expected = state.highest + 1
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
