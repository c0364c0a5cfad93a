"""GroupSequence: the instances of a shared group count each gap of an edge's numbering once, between them.

Pure logic: instances are GroupSequence objects, the broker is a loop handing each batch to one of
them and each report to the others (tests/test_ingest_shared.py runs the same through Mosquitto).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.group_sequence import (
    MAX_NUMBERS_PER_REPORT,
    GroupSequence,
    ReportError,
    decode_report,
    encode_report,
    ranges,
)

SETTLE_S = 5.0


class Group:
    """Instances that report to each other every second of a simulated clock."""

    def __init__(self, size: int):
        self.instances = [GroupSequence(SETTLE_S) for _ in range(size)]
        self.gaps = [0] * size
        self.late = [0] * size
        self.now = 0.0

    def deliver(self, instance: int, edge: str, seq: int) -> None:
        if self.instances[instance].received(edge, seq, self.now):
            self.late[instance] += 1

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds
        reports = [encode_report(f"i{n}", g.outgoing()) for n, g in enumerate(self.instances)]
        for n, payload in enumerate(reports):
            _, numbers = decode_report(payload, 1 << 20)
            for other, instance in enumerate(self.instances):
                if other != n:
                    instance.heard(numbers, self.now)
        for n, instance in enumerate(self.instances):
            self.gaps[n] += sum(gap.missing for gap in instance.settle(self.now))

    def settle_all(self) -> None:
        for _ in range(int(SETTLE_S) + 2):
            self.tick()


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(1, 3),
    count=st.integers(1, 300),
    lost=st.sets(st.integers(1, 298), max_size=40),
    routing=st.randoms(use_true_random=False),
    per_tick=st.integers(1, 50),
)
def test_each_missing_number_is_counted_once_by_the_group(
    size: int, count: int, lost: set[int], routing: object, per_tick: int
) -> None:
    lost = {n for n in lost if n < count - 1}  # the last one arrives: a hole needs a number after it
    group = Group(size)
    for seq in range(count):
        if seq not in lost:
            group.deliver(routing.randrange(size), "gw-1", seq)  # type: ignore[attr-defined]
        if seq % per_tick == 0:
            group.tick()
    group.settle_all()
    assert sum(group.gaps) == len(lost)
    assert sum(group.late) == 0


def test_a_missing_number_that_arrives_after_all_is_late_once_at_the_instance_that_receives_it() -> None:
    group = Group(2)
    for seq, instance in [(0, 0), (1, 1), (3, 0), (4, 1)]:
        group.deliver(instance, "gw-1", seq)
    group.settle_all()
    assert group.gaps == [1, 0]  # instance 0 received 3, the batch after the hole
    group.deliver(1, "gw-1", 2)
    group.settle_all()
    assert group.late == [0, 1]
    assert group.gaps == [1, 0]
    group.deliver(0, "gw-1", 2)  # sent again: a repeat now, neither late nor a gap
    group.settle_all()
    assert group.late == [0, 1]


def test_a_share_of_an_edges_batches_is_no_gap_once_the_others_reported() -> None:
    group = Group(2)
    for seq in range(100):
        group.deliver(seq % 2, "gw-1", seq)  # every other batch to each instance
    group.settle_all()
    assert group.gaps == [0, 0]


def test_numbers_are_judged_only_once_settled() -> None:
    group = Group(1)
    group.deliver(0, "gw-1", 0)
    group.deliver(0, "gw-1", 5)
    group.tick(SETTLE_S - 1)
    assert group.gaps == [0]  # 1..4 may still be reported by another instance
    group.tick(2)
    assert group.gaps == [4]


def test_the_first_numbers_an_instance_hears_of_an_edge_start_its_numbering() -> None:
    group = Group(1)
    group.deliver(0, "gw-1", 1000)
    group.settle_all()
    assert group.gaps == [0]


def test_state_is_bounded_in_edges_and_unsettled_numbers() -> None:
    sequence = GroupSequence(SETTLE_S, max_edges=10, max_unsettled=100)
    for n in range(1000):
        sequence.received(f"made-up-{n}", 0, 0.0)
    assert len(sequence) == 10
    for seq in range(0, 1000, 2):  # every other number, within one settle time
        sequence.received("gw-1", seq, 0.0)
    gaps = sequence.settle(0.0)  # nothing is old enough, yet the lower numbers were settled to bound memory
    assert sum(gap.missing for gap in gaps) > 0
    assert sum(gap.missing for gap in gaps + sequence.settle(100.0)) == 499


def test_reports_round_trip_as_ranges() -> None:
    assert ranges([5, 1, 2, 3, 9, 8, 3]) == [[1, 3], [5, 5], [8, 9]]
    instance, numbers = decode_report(encode_report("ingest-a", {"gw-1": [4, 2, 3], "gw-2": [7]}), 1 << 20)
    assert instance == "ingest-a"
    assert numbers == {"gw-1": [2, 3, 4], "gw-2": [7]}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"[]", "not a version 1 object"),
        (b'{"v": 2, "instance": "a", "edges": {}}', "not a version 1 object"),
        (b'{"v": 1, "instance": 7, "edges": {}}', "needs 'instance'"),
        (b'{"v": 1, "instance": "a", "edges": {"gw/1": [[1, 2]]}}', "no edge id"),
        (b'{"v": 1, "instance": "a", "edges": {"gw-1": [[2, 1]]}}', r"not \[lo, hi\]"),
        (b'{"v": 1, "instance": "a", "edges": {"gw-1": [[-1, 1]]}}', r"not \[lo, hi\]"),
        (b'{"v": 1, "instance": "a", "edges": {"gw-1": [[1, 1e400]]}}', r"not \[lo, hi\]"),
        (b'{"v": 1, "instance": "a", "edges": {"gw-1": [[true, 1]]}}', r"not \[lo, hi\]"),
        (b'{"v": 1, "instance": "a", "edges": {"gw-1": [[0, 9223372036854775808]]}}', r"not \[lo, hi\]"),
        (json.dumps({"v": 1, "instance": "a", "edges": {"gw-1": [[0, MAX_NUMBERS_PER_REPORT]]}}).encode(), "more than"),
        (b"x" * 300_000, "exceeds the limit"),
    ],
)
def test_a_report_that_cannot_be_used_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ReportError, match=reason):
        decode_report(payload, 200_000)
