"""Per-edge sequence checking: next, gaps, late arrivals, duplicates and repeats; bounded state."""

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


def test_a_missing_batch_that_shows_up_later_is_late_once_then_a_duplicate() -> None:
    tracker = SequenceTracker()
    for seq in (0, 1, 3):
        tracker.observe("gw-1", seq, f"batch {seq}")
    assert tracker.observe("gw-1", 2, "batch 2").verdict is SeqVerdict.LATE
    assert tracker.observe("gw-1", 2, "batch 2").verdict is SeqVerdict.DUPLICATE
    assert tracker.observe("gw-1", 3, "batch 3").verdict is SeqVerdict.DUPLICATE
    assert tracker.observe("gw-1", 4, "batch 4").verdict is SeqVerdict.NEXT


def test_a_recent_number_with_other_samples_is_reused_not_a_duplicate() -> None:
    tracker = SequenceTracker()
    tracker.observe("gw-1", 0, "before the buffer was reset")
    tracker.observe("gw-1", 1, "x")
    assert tracker.observe("gw-1", 0, "after the buffer was reset").verdict is SeqVerdict.REUSED
    assert tracker.observe("gw-1", 0, "after the buffer was reset").verdict is SeqVerdict.DUPLICATE


def test_beyond_the_recent_window_an_old_number_is_a_repeat() -> None:
    tracker = SequenceTracker(recent_batches=3)
    for seq in range(6):
        tracker.observe("gw-1", seq, seq)
    assert tracker.observe("gw-1", 2, 2).verdict is SeqVerdict.REPEAT  # forgotten: written again, idempotent
    assert tracker.observe("gw-1", 5, 5).verdict is SeqVerdict.DUPLICATE


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


def test_made_up_edge_names_cannot_grow_the_state_the_least_recently_heard_go_first() -> None:
    tracker = SequenceTracker(max_edges=100)
    tracker.observe("gw-real", 0, "a")
    for n in range(10_000):
        tracker.observe(f"made-up-{n}", 0)
        if n % 50 == 0:
            tracker.observe("gw-real", 1 + n // 50, n)  # heard from regularly: kept
    assert len(tracker) == 100
    assert tracker.observe("gw-real", 1 + 9950 // 50, 9950).verdict is SeqVerdict.DUPLICATE
    assert tracker.observe("made-up-0", 0).verdict is SeqVerdict.FIRST  # forgotten long ago
