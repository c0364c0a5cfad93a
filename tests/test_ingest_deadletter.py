"""The dead-letter store keeps every letter with its reason; newest first; survives reopening."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import StoreUnavailable
from ingest.deadletter import DeadLetter, DeadLetterStore

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
