"""``factory inputs``: import a CSV file of business inputs, list them, show an entry's history.

The same import as ``POST /v1/inputs/csv`` (``core.inputs_csv``), on the store at settings
``inputs.path``. Versions entered here are recorded as entered by ``cli:<name>`` (``--by``,
default the login name).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from core.assets import AssetModel
from core.business import INPUT_UNIT, InputEntry, InputKind
from core.errors import ConfigError
from core.inputs import FieldProblem, InputError, InputRejected, parse_date
from core.inputs_csv import CSV_HEADER, import_inputs_csv
from core.settings import Settings
from core.stores.inputs import InputStore


def add_inputs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="settings YAML (default: $FACTORY_CONFIG)")
    # Also after the action (factory inputs list --config X); SUPPRESS keeps one given before it.
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="settings YAML")
    actions = parser.add_subparsers(dest="action", required=True)
    p = actions.add_parser("import", parents=[config], help=f"store every row of a CSV file ({CSV_HEADER}), or none")
    p.add_argument("file", type=Path)
    p.add_argument("--by", help="who is entering them (recorded as cli:NAME; default: the login name)")
    p.add_argument("--site", help="refuse rows of any other site")
    p = actions.add_parser("list", parents=[config], help="the latest version of each entry")
    p.add_argument("--site")
    p.add_argument("--kind", choices=[k.value for k in InputKind])
    p.add_argument("--from", dest="start", help="periods ending after this day (YYYY-MM-DD)")
    p.add_argument("--to", dest="end", help="periods starting before this day (YYYY-MM-DD)")
    p.add_argument("--withdrawn", action="store_true", help="also withdrawn entries")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p = actions.add_parser("history", parents=[config], help="every version of one entry")
    p.add_argument("entry_id")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    parsed = parse_date(text, option)
    if isinstance(parsed, FieldProblem):
        raise ConfigError(option, parsed.reason)
    return parsed


def _author(name: str | None) -> str:
    if name is None:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no login name (a container without /etc/passwd entry)
            reason = "no login name to record; say who is entering the inputs with --by NAME"
            raise ConfigError("--by", reason) from None
    return f"cli:{name}"


def _print(entries: Sequence[InputEntry], as_json: bool) -> None:
    if as_json:
        for e in entries:
            print(json.dumps({**e.model_dump(mode="json"), "unit": INPUT_UNIT[e.kind]}, ensure_ascii=False))
        return
    for e in entries:
        state = "withdrawn" if e.deleted else f"v{e.version}"
        print(
            f"{e.entry_id}  {state:>9}  {e.site}  {e.kind.value:<16} {e.period_start}..{e.period_end}"
            f"  {e.value:g} {INPUT_UNIT[e.kind]}  {e.entered_by} {e.entered_at:%Y-%m-%d %H:%M:%S}Z"
            + (f"  {e.note}" if e.note else "")
        )


def run_inputs(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> int:
    store = InputStore.for_assets(settings.inputs.path, assets)
    try:
        if args.action == "import":
            return _import(store, settings, args)
        if args.action == "list":
            entries = store.list(
                site=args.site,
                kind=args.kind,
                start=_day(args.start, "--from"),
                end=_day(args.end, "--to"),
                withdrawn=args.withdrawn,
            )
            _print(entries, args.json)
            if not args.json:
                print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}", file=sys.stderr)
            return 0
        _print(store.history(args.entry_id), args.json)
        return 0
    except InputRejected as exc:
        where = str(args.file) if args.action == "import" else "factory inputs"
        for problem in exc.problems:
            at = f"{where}:{problem.line}" if problem.line is not None else where
            print(f"{at}: {problem.field}: {problem.reason}", file=sys.stderr)
        if exc.total > len(exc.problems):
            print(f"{where}: ... and {exc.total - len(exc.problems)} more", file=sys.stderr)
        print(f"factory: {exc.what} refused, nothing was stored ({exc.total} problem(s))", file=sys.stderr)
        return 1
    except InputError as exc:
        print(f"factory: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _import(store: InputStore, settings: Settings, args: argparse.Namespace) -> int:
    if args.site is not None and args.site not in store.sites:
        raise ConfigError("--site", f"unknown site {args.site!r} (known: {', '.join(sorted(store.sites))})")
    limit = settings.inputs.csv_max_bytes
    try:
        with args.file.open("rb") as f:
            data = f.read(limit + 1)  # one byte over is enough to refuse it
    except OSError as exc:
        raise ConfigError(str(args.file), f"cannot read: {exc.strerror or exc}") from None
    entries = import_inputs_csv(
        store,
        data,
        entered_by=_author(args.by),
        site_scope=args.site,
        max_bytes=limit,
        max_rows=settings.inputs.csv_max_rows,
    )
    print(f"{args.file}: {len(entries)} entries stored in {store.path}")
    return 0
