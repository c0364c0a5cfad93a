"""The dead-letter store keeps every letter with its reason, newest first, bounded by age and size;
filters select letters for listing and purging, and a replay's outcome is recorded once."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import StoreUnavailable
from ingest.deadletter import (
    MAX_LETTER_BYTES,
    PRUNE_INTERVAL,
    DeadLetter,
    DeadLetterStore,
    LetterFilter,
    LetterKind,
    Settled,
)

AT = datetime(2026, 11, 25, 8, 0, 0, 123_456, tzinfo=UTC)


async def test_letters_are_listed_newest_first_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "dl" / "dead.sqlite"
    async with DeadLetterStore(path) as store:
        await store.add([DeadLetter(AT, "factory/uplink/gw-1", None, None, "payload is not JSON", b"\xff{")])
        await store.add(
            [
                DeadLetter(AT, "factory/uplink/gw-1", "gw-1", 7, "samples[0].equipment: unknown", b'{"a":1}'),
                DeadLetter(AT, "factory/uplink/gw-1", "gw-1", 7, "samples[2].value: bad", b'{"b":2}'),
            ]
        )
    async with DeadLetterStore(path) as store:
        assert await store.count() == 3
        letters = await store.list(limit=2)
    assert [d.reason for d in letters] == ["samples[2].value: bad", "samples[0].equipment: unknown"]
    first = letters[1]
    assert (first.received_at, first.topic, first.edge, first.seq, first.payload) == (
        AT,
        "factory/uplink/gw-1",
        "gw-1",
        7,
        b'{"a":1}',
    )
    assert first.id is not None


async def test_binary_payloads_are_kept_exactly(tmp_path: Path) -> None:
    async with DeadLetterStore(tmp_path / "dead.sqlite") as store:
        await store.add([DeadLetter(AT, "t", None, None, "not JSON", b"\x00\xff garbage")])
        (letter,) = await store.list()
    assert letter.payload == b"\x00\xff garbage"
    assert letter.payload_text == "\x00\ufffd garbage"


async def test_an_unusable_path_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable, match="cannot open dead-letter store"):
        async with DeadLetterStore(blocker / "dead.sqlite"):
            pass


def letter(at: datetime, size: int = 10, reason: str = "r") -> DeadLetter:
    return DeadLetter(at, "factory/uplink/gw-1", "gw-1", 1, reason, b"x" * size)


async def test_letters_older_than_the_maximum_age_are_deleted(tmp_path: Path) -> None:
    async with DeadLetterStore(tmp_path / "dead.sqlite", max_age=timedelta(days=7)) as store:
        await store.add([letter(AT - timedelta(days=8), reason="old"), letter(AT - timedelta(days=6), reason="kept")])
        assert await store.count() == 2  # the first add prunes by the newest letter's time: nothing is 7 days older
        assert await store.prune(AT) == 1
        assert [d.reason for d in await store.list()] == ["kept"]


async def test_beyond_the_size_limit_the_oldest_letters_go_first(tmp_path: Path) -> None:
    async with DeadLetterStore(tmp_path / "dead.sqlite", max_bytes=1000) as store:
        for n in range(10):
            await store.add([letter(AT + timedelta(seconds=n), size=300, reason=f"letter {n}")])
        # Each add of 300 bytes is more than a tenth of the limit, so each add prunes.
        assert [d.reason for d in await store.list()] == ["letter 9", "letter 8", "letter 7"]
        assert await store.payload_bytes() == 900


async def test_pruning_waits_for_its_interval_unless_the_size_runs_ahead(tmp_path: Path) -> None:
    async with DeadLetterStore(tmp_path / "dead.sqlite", max_age=timedelta(seconds=10)) as store:
        await store.add([letter(AT)])
        await store.add([letter(AT + timedelta(seconds=30))])  # due by age, but pruned a minute at most
        assert await store.count() == 2
        await store.add([letter(AT + PRUNE_INTERVAL)])
        assert await store.count() == 1


async def test_a_huge_payload_is_cut_and_the_reason_says_so(tmp_path: Path) -> None:
    async with DeadLetterStore(tmp_path / "dead.sqlite") as store:
        await store.add([letter(AT, size=MAX_LETTER_BYTES + 5, reason="payload of … bytes exceeds the limit")])
        (kept,) = await store.list()
    assert len(kept.payload) == MAX_LETTER_BYTES
    assert kept.reason == (
        f"payload of … bytes exceeds the limit (payload cut to its first {MAX_LETTER_BYTES} of"
        f" {MAX_LETTER_BYTES + 5} bytes)"
    )


def from_edge(edge: str | None, at: datetime, reason: str) -> DeadLetter:
    return DeadLetter(at, f"factory/uplink/{edge}", edge, 1, reason, b"{}", kind=LetterKind.SAMPLE)


async def test_filters_select_by_reason_edge_time_and_state(tmp_path: Path) -> None:
    async with DeadLetterStore(tmp_path / "dead.sqlite") as store:
        await store.add(
            [
                from_edge("gw-1", AT, "samples[0].equipment: unknown equipment 'cnc-07'"),
                from_edge("gw-2", AT + timedelta(hours=1), "samples[1].equipment: Unknown Equipment 'cnc-08'"),
                from_edge("gw-1", AT + timedelta(hours=2), "samples[0].value: inf is not a finite number"),
                from_edge(None, AT + timedelta(hours=3), "payload is not JSON"),
            ]
        )
        await store.settle([Settled(1)], AT + timedelta(days=1))

        async def reasons(**where: Any) -> list[str]:
            return [d.reason[:10] for d in await store.list(where=LetterFilter(**where))]

        assert await reasons(reason="UNKNOWN equipment") == ["samples[1]", "samples[0]"]  # newest first, any case
        assert await reasons(edge="gw-1") == ["samples[0]", "samples[0]"]
        assert await reasons(since=AT + timedelta(hours=1), until=AT + timedelta(hours=3)) == [
            "samples[0]",
            "samples[1]",
        ]
        assert await reasons(replayed=True) == ["samples[0]"]
        assert await reasons(replayed=False, edge="gw-1") == ["samples[0]"]
        assert await reasons(ids=(2, 4)) == ["payload is", "samples[1]"]
        assert await store.count(LetterFilter(reason="unknown")) == 2
        assert [d.id for d in await store.list(limit=2)] == [4, 3]
        (replayed,) = await store.list(where=LetterFilter(replayed=True))
        assert replayed.replayed_at == AT + timedelta(days=1) and replayed.kind is LetterKind.SAMPLE
        assert await store.get(99) is None
        assert (await store.get(3)) == (await store.list(where=LetterFilter(ids=(3,))))[0]


async def test_a_replay_outcome_updates_the_reason_or_marks_the_letter_once(tmp_path: Path) -> None:
    later = AT + timedelta(days=1)
    split = from_edge("gw-1", AT, "samples[2].value: still bad")
    async with DeadLetterStore(tmp_path / "dead.sqlite") as store:
        await store.add([letter(AT, reason="old reason"), letter(AT, reason="message")])
        await store.settle([Settled(1, reason="new reason"), Settled(2, split=(split,))], later)
        # A second replay settling the same letter keeps the first one's time and adds nothing.
        await store.settle([Settled(2, split=(split,))], later + timedelta(hours=1))
        kept = await store.list()
    assert [(d.id, d.reason, d.replayed_at) for d in kept] == [
        (3, "samples[2].value: still bad", None),
        (2, "message", later),
        (1, "new reason", None),
    ]
    assert kept[0].received_at == AT and kept[0].kind is LetterKind.SAMPLE


async def test_purge_deletes_what_the_filter_selects_and_everything_only_when_asked(tmp_path: Path) -> None:
    async with DeadLetterStore(tmp_path / "dead.sqlite") as store:
        await store.add([from_edge("gw-1", AT, "a"), from_edge("gw-2", AT, "b"), from_edge("gw-2", AT, "c")])
        assert await store.purge(LetterFilter(edge="gw-2", reason="b")) == 1
        with pytest.raises(ValueError, match="without a filter"):
            await store.purge(LetterFilter())
        assert await store.count() == 2
        assert await store.purge(LetterFilter(), everything=True) == 2
        assert await store.count() == 0


async def test_a_file_from_before_replay_gains_its_columns_and_tells_the_kinds_apart(tmp_path: Path) -> None:
    path = tmp_path / "dead.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, received_ns INTEGER NOT NULL,"
            " topic TEXT NOT NULL, edge TEXT, seq INTEGER, reason TEXT NOT NULL, payload BLOB NOT NULL);"
        )
        conn.executemany(
            "INSERT INTO dead_letters (received_ns, topic, edge, seq, reason, payload) VALUES (1, 't', ?, ?, ?, ?)",
            [
                (None, None, "payload is not JSON", b"{"),
                ("gw-1", 4, "samples[0].equipment: unknown", b'{"equipment": "cnc-07"}'),
                ("gw-1", 5, "edge: the payload names edge 'gw-2'", b'{"v": 1, "edge": "gw-2", "samples": []}'),
            ],
        )
    conn.close()
    async with DeadLetterStore(path) as store:
        kept = await store.list()
        await store.settle([Settled(2)], AT)
        assert await store.count(LetterFilter(replayed=True)) == 1
    assert [d.kind for d in kept] == [LetterKind.MESSAGE, LetterKind.SAMPLE, LetterKind.MESSAGE]
