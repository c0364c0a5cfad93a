"""CSV import of business inputs: one function the API and the command line both use.

The file (see docs/inputs.md, example config/demo-inputs.csv)::

    site,kind,period_start,period_end,value,note
    cq-demo,operating_cost,2026-01-01,2026-02-01,392.5,January ledger

UTF-8 (a byte-order mark is skipped), LF or CRLF line ends, a header naming the columns in any order
(``note`` may be left out), dates ``YYYY-MM-DD``, numbers written plainly (``1234.5``). A
dev_project's value may be left empty: it is then the days from period_start to period_end.

A file is stored whole or not at all: if any row is wrong nothing is stored, and the refusal lists
every bad row (up to ``core.inputs.MAX_PROBLEMS``) with its line number, field and reason.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Collection

from core.business import InputEntry
from core.inputs import (
    FieldProblem,
    InputDraft,
    InputFileTooLarge,
    InputOutOfScope,
    InputRejected,
    draft,
    input_problems,
    parse_date,
    parse_number,
    shown,
)
from core.stores.inputs import InputStore

CSV_COLUMNS = ("site", "kind", "period_start", "period_end", "value", "note")
CSV_HEADER = ",".join(CSV_COLUMNS)
REQUIRED_COLUMNS = frozenset(CSV_COLUMNS) - {"note"}
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_ROWS = 10_000


_ONLY = "may enter inputs for site {} only"


def _refused(problems: list[FieldProblem], site_scope: str | None = None) -> InputRejected:
    """The refusal of a file; ``InputOutOfScope`` if a row names a site outside ``site_scope``."""
    if _outside(site_scope, problems):
        return InputOutOfScope(problems, what="CSV file")
    return InputRejected(problems, what="CSV file")


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        reason = f"not UTF-8 (byte {exc.start + 1}: {exc.reason}); save the file as UTF-8"
        raise _refused([FieldProblem("file", reason, line)]) from None


def parse_inputs_csv(
    data: bytes,
    sites: Collection[str],
    *,
    site_scope: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> list[InputDraft]:
    """The checked drafts of every row; ``InputRejected`` listing every bad row if any row is wrong.

    ``sites``: the asset model's site ids. ``site_scope``: every row must be for this site (a site's
    key or ``--site``). Line numbers count physical lines from 1 (the header), as an editor shows them.
    """
    drafts, problems = _parse(data, sites, site_scope, max_bytes, max_rows)
    if problems:
        raise _refused(problems, site_scope)
    return drafts


def _outside(site_scope: str | None, problems: list[FieldProblem]) -> bool:
    return site_scope is not None and any(
        p.field == "site" and p.reason.endswith(_ONLY.format(site_scope)) for p in problems
    )


def _parse(
    data: bytes, sites: Collection[str], site_scope: str | None, max_bytes: int, max_rows: int
) -> tuple[list[InputDraft], list[FieldProblem]]:
    """The drafts of the good rows and the problems of the bad ones; a file that is not a table at all raises."""
    if len(data) > max_bytes:
        raise InputFileTooLarge(
            [FieldProblem("file", f"{len(data):,} bytes; at most {max_bytes:,} (split the file)")], what="CSV file"
        )
    reader = csv.reader(io.StringIO(_text(data), newline=""), strict=True)
    problems: list[FieldProblem] = []
    drafts: list[InputDraft] = []
    columns: list[str] | None = None
    rows = 0
    line = 1  # the line the next record starts on
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not record or all(not cell.strip() for cell in record):
                continue  # blank lines are allowed anywhere
            if columns is None:
                columns = [cell.strip().lower() for cell in record]
                header_problems = _header_problems(columns, start)
                if header_problems:
                    raise _refused(header_problems)
                continue
            rows += 1
            if rows > max_rows:
                problems.append(FieldProblem("file", f"more than {max_rows:,} rows (split the file)", start))
                break
            if len(record) != len(columns):
                problems.append(
                    FieldProblem(
                        "row", f"{len(record)} fields, the header has {len(columns)} ({','.join(columns)})", start
                    )
                )
                continue
            row_draft = _row(dict(zip(columns, record, strict=True)), sites, site_scope, start, problems)
            if row_draft is not None:
                drafts.append(row_draft)
    except csv.Error as exc:
        problems.append(FieldProblem("file", f"not readable as CSV: {exc}", line))
    if columns is None:
        raise _refused(problems or [FieldProblem("file", f"empty: the first line must be the header {CSV_HEADER}", 1)])
    if not drafts and not problems:
        raise _refused([FieldProblem("file", "no rows below the header", 2)])
    return drafts, problems


def _header_problems(columns: list[str], line: int) -> list[FieldProblem]:
    counts = Counter(columns)  # (a header of a million commas must not cost a million squared)
    unknown = [c for c in counts if c not in CSV_COLUMNS]
    problems = [
        FieldProblem("header", f"unknown column {shown(c)} (columns: {CSV_HEADER})", line) for c in unknown[:10]
    ]
    if len(unknown) > 10:
        problems.append(FieldProblem("header", f"{len(unknown) - 10} more unknown columns", line))
    problems += [
        FieldProblem("header", f"column {c!r} appears more than once", line) for c in CSV_COLUMNS if counts[c] > 1
    ]
    missing = [c for c in CSV_COLUMNS if c in REQUIRED_COLUMNS and c not in counts]
    if missing:
        problems.append(
            FieldProblem("header", f"missing column(s) {', '.join(missing)}; the header is {CSV_HEADER}", line)
        )
    return problems


def _row(
    cells: dict[str, str],
    sites: Collection[str],
    site_scope: str | None,
    line: int,
    problems: list[FieldProblem],
) -> InputDraft | None:
    site, kind, note = cells["site"].strip(), cells["kind"].strip(), cells.get("note", "")
    start = parse_date(cells["period_start"], "period_start", line)
    end = parse_date(cells["period_end"], "period_end", line)
    raw_value = cells["value"].strip()
    value = parse_number(raw_value, "value", line) if raw_value else None
    found = [p for p in (start, end, value) if isinstance(p, FieldProblem)]
    if site_scope is not None and site != site_scope:
        reason = f"{shown(site)}: this import " + _ONLY.format(site_scope)
        found.append(FieldProblem("site", reason, line))
    # The fields that did parse are still checked, so a row's every problem is reported at once.
    found += input_problems(
        site,
        kind,
        None if isinstance(start, FieldProblem) else start,
        None if isinstance(end, FieldProblem) else end,
        None if isinstance(value, FieldProblem) else value,
        note,
        sites,
        line,
        unparsed={p.field for p in found},
    )
    if found:
        problems.extend(sorted(found, key=lambda p: CSV_COLUMNS.index(p.field) if p.field in CSV_COLUMNS else 0))
        return None
    return draft(site, kind, start, end, value, note, sites, line)


def import_inputs_csv(
    store: InputStore,
    data: bytes,
    *,
    entered_by: str,
    site_scope: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> list[InputEntry]:
    """Check every row of a CSV file, then store them all in one transaction (or nothing, and say why)."""
    drafts, problems = _parse(data, store.sites, site_scope, max_bytes, max_rows)
    if problems:
        # The good rows are still checked against the store and each other, so the refusal lists every bad row.
        problems += store.clashes(drafts)
        raise _refused(sorted(problems, key=lambda p: p.line or 0), site_scope)
    try:
        return store.add_many(drafts, entered_by)
    except InputRejected as exc:
        raise InputRejected(exc.problems, exc.total, what="CSV file") from None
