"""Replaying dead letters: through ingest's checks into a real store, once, and never twice.

The first test is the operator's story end to end: a real ingest on Mosquitto refuses a sample for
equipment the asset model does not know; the asset model gains it; ``factory deadletters replay``
stores it, exactly once however often it runs, and the sample that is still bad keeps its letter
and its reason. The others replay letters kept as ingest keeps them into each store (SQLite and a
real InfluxDB).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.assets import load_asset_model
from core.settings import IngestSettings, Settings, load_settings
from core.signals import measurement_for
from core.store import Store
from core.stores.sqlite import SqliteStore
from core.wire import format_ts
from factory.cli import main
from factory.runtime import closing_store
from ingest import IngestService
from ingest.deadletter import DeadLetter, DeadLetterStore, LetterFilter, LetterKind
from ingest.replay import Replay
from tests.ingest_support import EXAMPLE_ASSETS, bounded, mqtt_publisher, publish_to, started
from tests.servers import MosquittoServer
from tests.waiting import wait_until

EDGE = "gw-machining"
TOPIC = f"factory/uplink/{EDGE}"
NEW_MACHINE = (
    '                - {id: cnc-07, name: "Mill 3", type: cnc, numerically_controlled: true,'
    " process_step: rough-milling, key_process: false, ideal_cycle_time_s: 4.0, meter: meter-a}\n"
)
COUNTER = measurement_for("parts_total").value
STATE = measurement_for("state").value


def with_new_machine(source: Path, target: Path) -> None:
    """The example asset model with cnc-07 added to line A."""
    lines = source.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if "{id: meter-a," in line)
    target.write_text("".join([*lines[:at], NEW_MACHINE, *lines[at:]]))


def batch(seq: int, samples: list[dict[str, Any]], edge: str = EDGE) -> bytes:
    return json.dumps({"v": 1, "edge": edge, "seq": seq, "samples": samples}).encode()


def reading(equipment: str, signal: str, ts: datetime, value: Any) -> dict[str, Any]:
    return {"equipment": equipment, "signal": signal, "ts": format_ts(ts), "value": value}


def deadletters(settings: Path, *argv: str) -> int:
    return main(["deadletters", *argv, "--config", str(settings)])


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.integration
async def test_a_sample_for_unknown_equipment_is_stored_once_after_the_asset_model_gains_it(
    tmp_path: Path, mosquitto_server: MosquittoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assets = tmp_path / "assets.yaml"
    assets.write_text(EXAMPLE_ASSETS.read_text())
    prefix = f"test/{uuid.uuid4().hex[:8]}/uplink"
    config = tmp_path / "settings.yaml"
    config.write_text(
        f"assets: {assets}\n"
        f"broker: {{host: {mosquitto_server.host}, port: {mosquitto_server.port}}}\n"
        f"uplink: {{topic_prefix: {prefix}}}\n"
        "store: {kind: sqlite, sqlite_path: store.sqlite}\n"
        f"ingest: {{dead_letter_path: dead.sqlite, client_id: ingest-{uuid.uuid4().hex[:8]}, flush_interval_s: 0.05}}\n"
    )
    settings = load_settings(config)
    now = datetime.now(UTC).replace(microsecond=0)
    at = now - timedelta(minutes=1)
    samples = [
        reading("cnc-01", "state", at, "PRODUCING"),
        reading("cnc-07", "parts_total", at, 41),
        reading("cnc-01", "state", at + timedelta(seconds=1), "EXPLODED"),
    ]

    async with (
        bounded(30, "ingest of a batch with an unknown machine"),
        closing_store(SqliteStore(settings.store.sqlite_path)) as store,
        IngestService(settings, store, load_asset_model(assets)) as service,
    ):
        await started(service)
        async with mqtt_publisher(mosquitto_server) as publisher:
            await publish_to(publisher, settings.uplink.topic(EDGE), batch(3, samples))
        await wait_until(lambda: service.stats()["acks"] == 1, "the batch written and dead-lettered")
        assert (service.stats()["points_written"], service.stats()["dead_letters"]) == (1, 2)

    with_new_machine(EXAMPLE_ASSETS, assets)
    assert await asyncio.to_thread(deadletters, config, "list", "--json") == 0
    letters_before = json_lines(capsys.readouterr().out)
    assert await asyncio.to_thread(deadletters, config, "replay", "--dry-run", "--json") == 0
    dry = json.loads(capsys.readouterr().out)
    assert await asyncio.to_thread(deadletters, config, "list", "--json") == 0
    assert json_lines(capsys.readouterr().out) == letters_before  # a dry run changes no letter
    async with closing_store(SqliteStore(settings.store.sqlite_path)) as store:
        assert len(await store.read(COUNTER, at - timedelta(hours=1), now)) == 0  # and writes nothing
    assert await asyncio.to_thread(deadletters, config, "replay", "--dry-run") == 0
    assert capsys.readouterr().out.startswith(
        "dry run, nothing changed: would replay 2 letters: 1 would be stored (1 point to write), 1 still refused"
    )
    assert await asyncio.to_thread(deadletters, config, "replay", "--json") == 0
    first = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] is True and first["dry_run"] is False
    assert {k: v for k, v in dry.items() if k != "dry_run"} == {k: v for k, v in first.items() if k != "dry_run"}
    assert await asyncio.to_thread(deadletters, config, "replay", "--json") == 0
    second = json.loads(capsys.readouterr().out)
    assert await asyncio.to_thread(deadletters, config, "list", "--json") == 0
    letters = json_lines(capsys.readouterr().out)

    unknown = "unknown equipment 'cnc-07'"
    assert {k: first[k] for k in ("letters", "stored", "refused", "split", "points_written")} == {
        "letters": 2,
        "stored": 1,
        "refused": 1,
        "split": 0,
        "points_written": 1,
    }
    # The second run skips the stored letter and refuses the bad one again: nothing written.
    assert (second["letters"], second["stored"], second["refused"], second["points_written"]) == (1, 0, 1, 0)
    (bad_reason,) = second["reasons"]
    assert bad_reason.startswith("samples[2].value: Value error, state must be one of")

    async with closing_store(SqliteStore(settings.store.sqlite_path)) as store:
        counters = await store.read(COUNTER, at - timedelta(hours=1), now)
        states = await store.read(STATE, at - timedelta(hours=1), now)
    assert counters[["equipment", "line", "value"]].to_dict("records") == [
        {"equipment": "cnc-07", "line": "line-a", "value": 41}
    ]
    assert len(states) == 1  # the good sample, written by ingest; the bad one never

    still_bad, stored = sorted(letters, key=lambda d: d["id"])  # wire-format refusals come first
    assert unknown in stored["reason"] and stored["replayed_at"] is not None
    assert (stored["edge"], stored["seq"], stored["kind"]) == (EDGE, 3, "sample")
    assert still_bad["reason"] == bad_reason and still_bad["replayed_at"] is None


@pytest.fixture
def received() -> datetime:
    return datetime(2026, 11, 25, 8, 0, 1, tzinfo=UTC)


def as_ingest_keeps(received: datetime) -> list[DeadLetter]:
    """Letters of the kinds ingest keeps, received at ``received``."""
    t = received - timedelta(seconds=1)
    whole = batch(5, [reading("cnc-02", "parts_total", t, 7), reading("cnc-77", "parts_total", t, 1), {"x": 1}])
    too_old = reading("cnc-03", "parts_total", received - timedelta(days=40), 12)
    ahead = reading("cnc-04", "parts_total", received + timedelta(minutes=10), 3)
    return [
        DeadLetter(received, TOPIC, None, None, "ingest failed on this message: KeyError: 'x'", whole),
        DeadLetter(
            received,
            TOPIC,
            EDGE,
            6,
            "samples[0].ts: … is more than 30 days before the receiver's clock",
            json.dumps(too_old).encode(),
            kind=LetterKind.SAMPLE,
        ),
        DeadLetter(
            received,
            TOPIC,
            EDGE,
            6,
            "samples[1].ts: … after the receiver's clock",
            json.dumps(ahead).encode(),
            kind=LetterKind.SAMPLE,
        ),
        DeadLetter(received, "elsewhere/gw-1", None, None, "topic 'elsewhere/gw-1' is not an uplink topic", b"{}"),
    ]


@pytest.mark.integration
async def test_replay_stores_what_now_passes_splits_messages_and_changes_nothing_when_repeated(
    tmp_path: Path, each_store: Store, received: datetime
) -> None:
    # max_past_days raised to 60: the operator's fix for the sample 40 days older than its arrival.
    settings = Settings(
        assets=EXAMPLE_ASSETS, ingest=IngestSettings(dead_letter_path=tmp_path / "dead.sqlite", max_past_days=60)
    )
    assets = load_asset_model(EXAMPLE_ASSETS)
    replayed_at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    window = (received - timedelta(days=60), received + timedelta(days=1))
    async with DeadLetterStore(settings.ingest.dead_letter_path) as letters:
        await letters.add(as_ingest_keeps(received))
        before = await letters.list()
        dry = await Replay(settings, each_store, assets, letters).run(LetterFilter(), replayed_at, dry_run=True)
        assert await letters.list() == before  # nothing settled, nothing split off
        assert len(await each_store.read(COUNTER, *window)) == 0  # nothing written
        first = await Replay(settings, each_store, assets, letters).run(LetterFilter(), replayed_at)
        assert dry == first  # the dry run said what the replay did
        after_first = await each_store.read(COUNTER, *window)
        second = await Replay(settings, each_store, assets, letters).run(LetterFilter(), replayed_at)
        after_second = await each_store.read(COUNTER, *window)
        kept = sorted(await letters.list(), key=lambda d: d.id or 0)

    assert (first.letters, first.stored, first.refused, first.split, first.points_written) == (4, 2, 2, 2, 2)
    assert sorted(after_first["equipment"]) == ["cnc-02", "cnc-03"]
    # Again: the two stored letters are skipped, the four waiting ones (two split off) still fail.
    assert (second.letters, second.stored, second.refused, second.split, second.points_written) == (4, 0, 4, 0, 0)
    assert after_second.equals(after_first)

    message, old, ahead, elsewhere, *split = kept
    assert message.replayed_at == replayed_at and old.replayed_at == replayed_at
    assert ahead.replayed_at is None and elsewhere.replayed_at is None
    # Judged against its arrival, not the replay's clock: still ten minutes ahead.
    assert ahead.reason.startswith("samples[1].ts: 2026-11-25T08:10:01.000000Z is more than 300 s after")
    assert elsewhere.reason == "topic 'elsewhere/gw-1' is not an uplink topic factory/uplink/<edge id>"
    assert [(d.kind, d.edge, d.seq, d.received_at, d.replayed_at) for d in split] == [
        (LetterKind.SAMPLE, EDGE, 5, received, None)
    ] * 2
    assert split[0].reason.startswith("samples[2].equipment: Field required")
    assert json.loads(split[0].payload) == {"x": 1}
    assert split[1].reason.startswith("samples[1].equipment: unknown equipment 'cnc-77'")
    assert json.loads(split[1].payload)["equipment"] == "cnc-77"


async def test_a_replay_respects_the_gateway_the_asset_model_assigns(tmp_path: Path, received: datetime) -> None:
    assets_path = tmp_path / "assets.yaml"
    assets_path.write_text(
        EXAMPLE_ASSETS.read_text().replace("- id: line-a\n", "- id: line-a\n              gateway: gw-assembly\n")
    )
    settings = Settings(assets=assets_path, ingest=IngestSettings(dead_letter_path=tmp_path / "dead.sqlite"))
    sample = reading("cnc-01", "parts_total", received, 9)
    letter = DeadLetter(received, TOPIC, EDGE, 1, "samples[4].x", json.dumps(sample).encode(), kind=LetterKind.SAMPLE)
    async with (
        closing_store(SqliteStore(tmp_path / "store.sqlite")) as store,
        DeadLetterStore(tmp_path / "dead.sqlite") as letters,
    ):
        await letters.add([letter])
        report = await Replay(settings, store, load_asset_model(assets_path), letters).run(LetterFilter(), received)
        (kept,) = await letters.list()
        assert len(await store.read(COUNTER, received - timedelta(days=1), received + timedelta(days=1))) == 0
    assert (report.stored, report.refused) == (0, 1)
    assert kept.reason == (
        "samples[4].equipment: 'cnc-01' is reported by gateway 'gw-assembly' in the asset model,"
        " not by edge 'gw-machining'"
    )
