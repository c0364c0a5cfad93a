"""``factory deadletters list|show|replay|purge``: what ingest could not write, and what to do about it.

Works on the dead-letter file at settings ``ingest.dead_letter_path``, also while ingest runs (the
file is SQLite in WAL mode). Every action takes the same filters (``--reason``, ``--edge``,
``--since``, ``--until``, ``--waiting`` / ``--replayed``); ``replay`` and ``purge`` also take letter
ids. ``replay`` goes through the checks of ingest (``ingest.replay``) into the store of the settings;
``replay --dry-run`` makes the same checks and says what a replay would do, changing nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.assets import AssetModel
from core.errors import ConfigError, StoreError
from core.settings import Settings
from core.stores import open_store
from core.wire import format_ts
from factory.runtime import closing_store
from ingest.deadletter import DeadLetter, DeadLetterStore, LetterFilter, LetterKind
from ingest.replay import Replay

DEFAULT_LIMIT = 50
MAX_LIMIT = 100_000
REASON_WIDTH = 100  # characters of the reason in list's table; show and --json give it whole
MOST_COMMON_REASONS = 10

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def add_deadletters_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="settings YAML (default: $FACTORY_CONFIG)")
    # Also after the action (factory deadletters list --config X); SUPPRESS keeps one given before it.
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="settings YAML")
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--reason", help="letters whose reason contains this text (any case)")
    filters.add_argument("--edge", help="letters from this edge")
    filters.add_argument("--since", help="received at or after: ISO-8601 (no zone: UTC) or a span back (90m, 2h, 7d)")
    filters.add_argument("--until", help="received before: ISO-8601 (no zone: UTC) or a span back (90m, 2h, 7d)")
    state = filters.add_mutually_exclusive_group()
    state.add_argument("--waiting", action="store_true", help="only letters not replayed yet")
    state.add_argument("--replayed", action="store_true", help="only letters a replay has stored")
    ids = argparse.ArgumentParser(add_help=False)
    ids.add_argument("ids", nargs="*", type=int, metavar="ID", help="only these letters")

    actions = parser.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", parents=[config, filters], help="the newest letters first, without payloads")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"at most this many (default {DEFAULT_LIMIT})")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p = actions.add_parser("show", parents=[config], help="one letter whole, with its payload")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true", help="as JSON (a payload that is not UTF-8 as base64)")
    p = actions.add_parser(
        "replay", parents=[config, filters, ids], help="check waiting letters again as ingest does; store what passes"
    )
    p.add_argument("--json", action="store_true", help="the summary as JSON")
    p.add_argument(
        "--dry-run", action="store_true", help="check as a replay would and say what it would do; change nothing"
    )
    p = actions.add_parser("purge", parents=[config, filters, ids], help="delete the letters the filters select")
    p.add_argument("--all", action="store_true", help="allow deleting every letter when no filter is given")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")


def _moment(text: str | None, option: str, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        if span := _AGO.match(text.strip()):
            return now - timedelta(seconds=float(span.group(1)) * _UNIT_S[span.group(2)])
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        reason = f"{text!r} is neither ISO-8601 (2026-11-25T08:00) nor a span back (90m, 2h, 7d)"
        raise ConfigError(option, reason) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _filter(args: argparse.Namespace, now: datetime) -> LetterFilter:
    replayed = True if args.replayed else False if args.waiting else None
    return LetterFilter(
        reason=args.reason,
        edge=args.edge,
        since=_moment(args.since, "--since", now),
        until=_moment(args.until, "--until", now),
        replayed=replayed,
        ids=tuple(getattr(args, "ids", ())),
    )


def _state(letter: DeadLetter) -> str:
    return "waiting" if letter.replayed_at is None else f"replayed {format_ts(letter.replayed_at)}"


def _summary(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "received_at": format_ts(letter.received_at),
        "topic": letter.topic,
        "edge": letter.edge,
        "seq": letter.seq,
        "kind": letter.kind.value,
        "reason": letter.reason,
        "replayed_at": None if letter.replayed_at is None else format_ts(letter.replayed_at),
        "payload_bytes": len(letter.payload),
    }


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else f"{text[: width - 1]}…"


def _print_list(letters: list[DeadLetter], as_json: bool) -> None:
    if as_json:
        for letter in letters:
            print(json.dumps(_summary(letter), ensure_ascii=False))
        return
    header = ("ID", "RECEIVED", "EDGE", "SEQ", "KIND", "STATE", "BYTES", "REASON")
    table = [header] + [
        (
            str(d.id),
            format_ts(d.received_at),
            d.edge or "-",
            "-" if d.seq is None else str(d.seq),
            d.kind.value,
            "waiting" if d.replayed_at is None else "replayed",
            str(len(d.payload)),
            _cell(d.reason, REASON_WIDTH),
        )
        for d in letters
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _payload_shown(payload: bytes) -> str:
    """The payload as text; JSON indented, so a batch reads sample by sample."""
    text = payload.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return text


def _print_letter(letter: DeadLetter, as_json: bool) -> None:
    if as_json:
        body = _summary(letter)
        try:
            body["payload"] = letter.payload.decode("utf-8")
        except UnicodeDecodeError:
            body["payload_base64"] = base64.b64encode(letter.payload).decode()
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return
    kind = "one sample of its batch" if letter.kind is LetterKind.SAMPLE else "the whole message"
    rows = [
        ("received", format_ts(letter.received_at)),
        ("topic", letter.topic),
        ("edge", letter.edge or "-"),
        ("seq", "-" if letter.seq is None else str(letter.seq)),
        ("kind", f"{letter.kind.value} ({kind})"),
        ("state", _state(letter)),
        ("reason", letter.reason),
        ("payload", f"{len(letter.payload)} bytes"),
    ]
    print(f"dead letter {letter.id}")
    for name, value in rows:
        print(f"  {name:<9}{value}")
    print(_payload_shown(letter.payload))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


async def _deadletters(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    async with DeadLetterStore(settings.ingest.dead_letter_path) as letters:
        if args.action == "show":
            letter = await letters.get(args.id)
            if letter is None:
                print(f"factory: no dead letter {args.id} in {letters.path}", file=sys.stderr)
                return 1
            _print_letter(letter, args.json)
            return 0
        where = _filter(args, now)
        if args.action == "list":
            if not 1 <= args.limit <= MAX_LIMIT:
                raise ConfigError("--limit", f"must be between 1 and {MAX_LIMIT:,}")
            found = await letters.list(limit=args.limit, where=where)
            _print_list(found, args.json)
            total = await letters.count(where)
            sys.stdout.flush()  # the table before the count, in a terminal too
            if not args.json:
                more = f"; --limit {total} for all" if total > len(found) else ""
                print(f"{len(found):,} of {_plural(total, 'letter')}, newest first{more}", file=sys.stderr)
            return 0
        if args.action == "purge":
            return await _purge(letters, where, args)
        async with closing_store(open_store(settings.store)) as store:
            report = await Replay(settings, store, assets, letters).run(where, replayed_at=now, dry_run=args.dry_run)
    if args.json:
        summary = {f.name: getattr(report, f.name) for f in dataclasses.fields(report)}
        print(json.dumps({**summary, "dry_run": args.dry_run}))
        return 0
    # The same summary for a dry run, in the conditional: what a replay would do.
    dry = args.dry_run
    print(
        f"{'dry run, nothing changed: would replay' if dry else 'replayed'} {_plural(report.letters, 'letter')}:"
        f" {report.stored:,} {'would be stored' if dry else 'stored'}"
        f" ({_plural(report.points_written, 'point')} {'to write' if dry else 'written'}),"
        f" {report.refused:,} still refused"
        + (
            f"; {_plural(report.split, 'sample')} of stored messages {'would be ' if dry else ''}kept as letters"
            " of their own"
            if report.split
            else ""
        )
    )
    sys.stdout.flush()
    for reason, n in report.reasons.most_common(MOST_COMMON_REASONS):
        print(f"  {n:>6,}  {reason}", file=sys.stderr)
    return 0


async def _purge(letters: DeadLetterStore, where: LetterFilter, args: argparse.Namespace) -> int:
    if where.selects_everything and not args.all:
        print(
            "factory: refusing to purge every dead letter; give a filter (--reason, --edge, --since, --until,"
            " --waiting, --replayed, IDs) or --all",
            file=sys.stderr,
        )
        return 2
    if args.dry_run:
        print(f"would delete {_plural(await letters.count(where), 'letter')} from {letters.path}")
        return 0
    deleted = await letters.purge(where, everything=args.all)
    print(f"deleted {_plural(deleted, 'letter')} from {letters.path}")
    return 0


def run_deadletters(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_deadletters(settings, assets, args))
    except StoreError as exc:
        print(f"factory: {exc}", file=sys.stderr)
        if args.action == "replay":
            print("factory: letters settled before this are kept so; replay again for the rest", file=sys.stderr)
        return 1
