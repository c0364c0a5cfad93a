"""``factory deadletters list|show|purge`` on a real dead-letter file (replay: tests/test_ingest_replay.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from factory.cli import main
from ingest.deadletter import DeadLetter, DeadLetterStore, LetterKind
from tests.conftest import REPO
from tests.servers import free_port

NOW = datetime.now(UTC).replace(microsecond=0)
TOPIC = "factory/uplink/gw-1"


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(f"assets: {REPO / 'config' / 'factory.yaml'}\ningest: {{dead_letter_path: dead.sqlite}}\n")
    letters = [
        DeadLetter(NOW - timedelta(days=2), TOPIC, None, None, "payload is not JSON: Expecting value", b"\xff{"),
        DeadLetter(
            NOW - timedelta(hours=3),
            TOPIC,
            "gw-1",
            8,
            "samples[1].equipment: unknown equipment 'cnc-07' (not in the asset model config/factory.yaml)",
            b'{"equipment": "cnc-07", "signal": "parts_total", "ts": "2026-11-25T08:00:00.000000Z", "value": 3}',
            kind=LetterKind.SAMPLE,
        ),
        DeadLetter(
            NOW - timedelta(minutes=5),
            "factory/uplink/gw-2",
            "gw-2",
            9,
            "samples[0].value: Value error, inf is not a finite number",
            b'{"value": "Infinity"}',
            kind=LetterKind.SAMPLE,
        ),
    ]

    keep(path, *letters)
    return path


def keep(settings: Path, *letters: DeadLetter) -> None:
    async def add() -> None:
        async with DeadLetterStore(settings.parent / "dead.sqlite") as store:
            await store.add(letters)

    asyncio.run(add())


def run(settings: Path, *argv: str) -> int:
    return main(["deadletters", *argv, "--config", str(settings)])


def test_list_is_newest_first_bounded_and_filtered(settings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(settings, "list", "--limit", "2") == 0
    out, err = capsys.readouterr()
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "RECEIVED", "EDGE", "SEQ", "KIND", "STATE", "BYTES", "REASON"]
    assert [row.split()[0] for row in rows] == ["3", "2"]
    assert "2 of 3 letters, newest first; --limit 3 for all" in err

    assert run(settings, "list", "--since", "1d", "--reason", "UNKNOWN", "--json") == 0
    (only,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (only["id"], only["edge"], only["seq"], only["kind"], only["replayed_at"]) == (2, "gw-1", 8, "sample", None)
    assert only["reason"].startswith("samples[1].equipment: unknown equipment 'cnc-07'")

    assert run(settings, "list", "--edge", "gw-2", "--json") == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [3]
    until = (NOW - timedelta(days=1)).replace(tzinfo=None).isoformat()  # no zone: UTC
    assert run(settings, "list", "--until", until, "--json") == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [1]
    assert run(settings, "list", "--replayed") == 0
    assert "0 of 0 letters" in capsys.readouterr().err


def test_show_gives_the_whole_letter_with_its_payload(settings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(settings, "show", "2") == 0
    out = capsys.readouterr().out
    assert out.startswith("dead letter 2\n")
    assert "  topic    factory/uplink/gw-1\n" in out and "  state    waiting\n" in out
    assert "not in the asset model config/factory.yaml)\n" in out  # the reason whole
    assert '  "equipment": "cnc-07",\n' in out  # the payload, indented

    assert run(settings, "show", "1", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["payload_base64"] == "/3s=" and "payload" not in shown  # not UTF-8: as it was, in base64

    assert run(settings, "show", "42") == 1
    assert "no dead letter 42" in capsys.readouterr().err


def test_purge_needs_a_filter_or_all_and_can_count_first(settings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(settings, "purge") == 2
    assert "refusing to purge every dead letter" in capsys.readouterr().err
    assert run(settings, "purge", "--reason", "finite", "--dry-run") == 0
    assert capsys.readouterr().out.startswith("would delete 1 letter from ")
    assert run(settings, "purge", "--since", "1d", "--edge", "gw-1") == 0
    assert capsys.readouterr().out.startswith("deleted 1 letter from ")
    assert run(settings, "purge", "1") == 0
    assert capsys.readouterr().out.startswith("deleted 1 letter from ")
    assert run(settings, "purge", "--all") == 0
    assert capsys.readouterr().out.startswith("deleted 1 letter from ")
    assert run(settings, "list") == 0
    assert "0 of 0 letters" in capsys.readouterr().err


def test_a_time_that_is_neither_iso_nor_a_span_is_a_configuration_error(
    settings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "list", "--since", "yesterday") == 2
    assert "--since: 'yesterday' is neither ISO-8601" in capsys.readouterr().err
    assert run(settings, "list", "--since", "99999999999d") == 2
    assert run(settings, "list", "--since", "0001-01-01", "--until", "9999-12-31T23:59:59+00:00", "--json") == 0
    assert len(capsys.readouterr().out.splitlines()) == 3  # bounds beyond int64 nanoseconds select all
    assert run(settings, "purge", str(2**70), "--dry-run") == 0
    assert capsys.readouterr().out.startswith("would delete 0 letters")


def test_a_replay_with_the_store_away_says_so_and_leaves_the_letters_waiting(
    settings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with settings.open("a") as f:
        f.write(f"store: {{kind: influxdb, influx_url: 'http://127.0.0.1:{free_port()}', timeout_s: 1}}\n")
    good = b'{"equipment": "cnc-02", "signal": "parts_total", "ts": "2026-11-25T08:00:00.000000Z", "value": 3}'
    keep(settings, DeadLetter(NOW, TOPIC, "gw-1", 10, "samples[0].equipment: unknown", good, kind=LetterKind.SAMPLE))
    assert run(settings, "replay", "4") == 1
    err = capsys.readouterr().err
    assert "cannot connect" in err and "replay again for the rest" in err
    assert run(settings, "list", "--waiting", "--json") == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
