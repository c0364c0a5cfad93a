"""The dead-letter store keeps every letter with its reason, newest first, bounded by age and size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import StoreUnavailable
from ingest.deadletter import MAX_LETTER_BYTES, PRUNE_INTERVAL, DeadLetter, DeadLetterStore

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
