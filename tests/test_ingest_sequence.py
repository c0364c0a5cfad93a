"""Per-edge sequence checking: next, gaps, late arrivals and repeats."""

from __future__ import annotations

from ingest.sequence import SeqCheck, SequenceTracker, SeqVerdict


def test_consecutive_batches_are_next_and_edges_are_independent() -> None:
    tracker = SequenceTracker()
    assert tracker.observe("gw-1", 41).verdict is SeqVerdict.FIRST
    assert tracker.observe("gw-1", 42) == SeqCheck(SeqVerdict.NEXT, 42)
    assert tracker.observe("gw-2", 7).verdict is SeqVerdict.FIRST
    assert tracker.observe("gw-1", 43).verdict is SeqVerdict.NEXT


def test_a_jump_reports_how_many_batches_are_missing() -> None:
    tracker = SequenceTracker()
    tracker.observe("gw-1", 0)
    assert tracker.observe("gw-1", 4) == SeqCheck(SeqVerdict.GAP, expected=1, missing=3)
    assert tracker.observe("gw-1", 5).verdict is SeqVerdict.NEXT


def test_a_missing_batch_that_shows_up_later_is_late_once_then_a_repeat() -> None:
    tracker = SequenceTracker()
    for seq in (0, 1, 3):
        tracker.observe("gw-1", seq)
    assert tracker.observe("gw-1", 2).verdict is SeqVerdict.LATE
    assert tracker.observe("gw-1", 2).verdict is SeqVerdict.REPEAT
    assert tracker.observe("gw-1", 3).verdict is SeqVerdict.REPEAT
    assert tracker.observe("gw-1", 4).verdict is SeqVerdict.NEXT


def test_huge_gaps_are_reported_without_remembering_every_number() -> None:
    tracker = SequenceTracker(max_remembered_missing=10)
    tracker.observe("gw-1", 0)
    assert tracker.observe("gw-1", 1_000_001).missing == 1_000_000
    assert tracker.observe("gw-1", 5).verdict is SeqVerdict.REPEAT
    tracker.observe("gw-1", 1_000_010)  # 8 missing: remembered
    tracker.observe("gw-1", 1_000_016)  # 5 more: only the newest 10 of the 13 are kept
    assert tracker.observe("gw-1", 1_000_004).verdict is SeqVerdict.REPEAT
    assert tracker.observe("gw-1", 1_000_005).verdict is SeqVerdict.LATE
    assert tracker.observe("gw-1", 1_000_015).verdict is SeqVerdict.LATE
