"""The business-input store: one SQLite file of versions, appended to and never changed.

Each row is one version of one entry. ``add`` writes version 1 of a new entry, ``correct`` and
``withdraw`` write the next version of an existing one; no row is ever updated or deleted. Triggers
in the file refuse an UPDATE or a DELETE, an INSERT that would replace a version or skip a number,
and a version that changes its entry's site or kind, so not even a hand-written statement (or an
``INSERT OR REPLACE``) can rewrite history. (They guard against mistakes, not against someone who
may drop the triggers: that is what file permissions and backups are for.)

Readers ask for the latest version of each entry as of an instant (default now), so a report can be
regenerated over exactly the inputs it was made from. ``entered_at`` never goes backwards in one
file, even if the clock does, so a later version is never hidden from an ``as_of`` that saw it.

Within one site and kind the periods of live entries do not overlap (a second figure for the same
months would be counted twice), except for development projects, which run side by side; an exact
duplicate project (same dates and note) is refused.
"""

from __future__ import annotations

import bisect
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.business import InputEntry, InputKind
from core.inputs import (
    FieldProblem,
    InputConflict,
    InputDraft,
    InputNotFound,
    InputRejected,
    check_entered_by,
    check_note,
    draft,
    is_clean_text,
    shown,
)
from core.stores.sqlitefile import SqliteFile

if TYPE_CHECKING:
    from core.assets import AssetModel

_SCHEMA = """
CREATE TABLE IF NOT EXISTS input_versions (
    entry_id      TEXT NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 1),
    site          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    period_start  TEXT NOT NULL,  -- ISO date, local to the site; the period is [start, end)
    period_end    TEXT NOT NULL,
    value         REAL NOT NULL,
    note          TEXT NOT NULL,
    entered_by    TEXT NOT NULL,
    entered_at_us INTEGER NOT NULL,  -- microseconds since the Unix epoch, UTC
    deleted       INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    PRIMARY KEY (entry_id, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS input_versions_by_site_kind ON input_versions (site, kind, entry_id, version);
CREATE INDEX IF NOT EXISTS input_versions_by_time ON input_versions (entered_at_us);

CREATE TRIGGER IF NOT EXISTS input_versions_no_update BEFORE UPDATE ON input_versions
BEGIN
    SELECT RAISE(ABORT, 'business inputs are append-only: a correction is a new version, not an update');
END;
CREATE TRIGGER IF NOT EXISTS input_versions_no_delete BEFORE DELETE ON input_versions
BEGIN
    SELECT RAISE(ABORT, 'business inputs are append-only: a withdrawal is a new version, not a delete');
END;
CREATE TRIGGER IF NOT EXISTS input_versions_next_version BEFORE INSERT ON input_versions
WHEN NEW.version <> 1 + COALESCE((SELECT MAX(version) FROM input_versions WHERE entry_id = NEW.entry_id), 0)
BEGIN
    SELECT RAISE(ABORT, 'business inputs are append-only: a version must follow the latest one');
END;
CREATE TRIGGER IF NOT EXISTS input_versions_same_entry BEFORE INSERT ON input_versions
WHEN NEW.version > 1 AND EXISTS (
    SELECT 1 FROM input_versions
    WHERE entry_id = NEW.entry_id AND version = 1 AND (site <> NEW.site OR kind <> NEW.kind)
)
BEGIN
    SELECT RAISE(ABORT, 'a version may not change its entry''s site or kind');
END;
"""

_COLUMNS = "entry_id, version, site, kind, period_start, period_end, value, note, entered_by, entered_at_us, deleted"
_INSERT = f"INSERT INTO input_versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

# The latest version of each entry entered at or before :as_of, restricted by the caller's conditions.
_LATEST = f"""
SELECT {_COLUMNS} FROM input_versions AS v
WHERE v.version = (
    SELECT MAX(w.version) FROM input_versions AS w WHERE w.entry_id = v.entry_id AND w.entered_at_us <= ?
)"""

_ALL_TIME = 2**62  # an as_of after every version ever written

# The method ``list`` below shadows the builtin inside the class: its annotations use these.
Entries = list[InputEntry]
Problems = list[FieldProblem]
Drafts = list[InputDraft]


def _us(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"as_of must carry a time zone, got {moment.isoformat()}")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _moment(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def _entry(row: Sequence[Any]) -> InputEntry:
    entry_id, version, site, kind, start, end, value, note, by, at_us, deleted = row
    return InputEntry(
        entry_id=entry_id,
        version=version,
        site=site,
        kind=InputKind(kind),
        period_start=date.fromisoformat(start),
        period_end=date.fromisoformat(end),
        value=value,
        note=note,
        entered_by=by,
        entered_at=_moment(at_us),
        deleted=bool(deleted),
    )


def new_entry_id() -> str:
    return f"in-{uuid.uuid4().hex[:16]}"


def _span(entry: InputEntry | InputDraft) -> str:
    return f"{entry.period_start.isoformat()}..{entry.period_end.isoformat()}"


class InputStore:
    """Business inputs of a park's sites, versioned, in one SQLite file (implements ``BusinessInputs``).

    ``sites`` are the site ids of the asset model: an entry for any other site is refused.
    ``clock`` is for tests; it returns an aware datetime.
    """

    def __init__(
        self, path: Path | str, *, sites: Iterable[str], clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ):
        self.path = Path(path)
        self.sites = frozenset(sites)
        self._clock = clock
        self._file = SqliteFile(self.path, _SCHEMA, "business-input store")

    @classmethod
    def for_assets(cls, path: Path | str, assets: AssetModel) -> InputStore:
        """The store at ``path`` for the sites of this asset model."""
        return cls(path, sites=asset_site_ids(assets))

    # -- writing ---------------------------------------------------------------------------------

    def add(
        self,
        site: str,
        kind: InputKind | str,
        period_start: date,
        period_end: date,
        value: float | None,
        note: str = "",
        *,
        entered_by: str,
    ) -> InputEntry:
        """A new entry (version 1). ``value`` None: a dev_project, whose value is its length in days."""
        return self.add_many([draft(site, kind, period_start, period_end, value, note, self.sites)], entered_by)[0]

    def add_many(self, drafts: Sequence[InputDraft], entered_by: str) -> Entries:
        """New entries from checked drafts, all in one transaction: all stored, or none.

        Refused (``InputRejected``, each problem with its draft's line) if a draft overlaps a live entry
        or another draft of the same site and kind.
        """
        self._check_by(entered_by)
        for d in drafts:  # drafts are built by ``core.inputs.draft``; a hand-made one is checked again
            draft(d.site, d.kind, d.period_start, d.period_end, d.value, d.note, self.sites, d.line)

        def work(conn: sqlite3.Connection) -> Entries:
            problems = self._clashes(conn, drafts)
            if problems:
                raise InputRejected(problems)
            at_us = self._now_us(conn)
            rows = [
                (new_entry_id(), 1, *self._content(d), entered_by, at_us, 0)
                for d in drafts  # one instant for the whole batch: one import, one moment
            ]
            conn.executemany(_INSERT, rows)
            return [_entry(row) for row in rows]

        return self._file.transaction(work, immediate=True)

    def correct(
        self,
        entry_id: str,
        *,
        entered_by: str,
        period_start: date | None = None,
        period_end: date | None = None,
        value: float | None = None,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> InputEntry:
        """A new version of ``entry_id`` with the given fields changed; the others as in the latest version.

        ``expected_version``: refuse (``InputConflict``) unless the latest version is this one, so two people
        correcting the same entry at once do not silently overwrite each other's figure. A dev_project's
        value follows its dates unless given.
        """
        self._check_by(entered_by)

        def work(conn: sqlite3.Connection) -> InputEntry:
            latest = self._latest(conn, entry_id)
            if latest.deleted:
                raise InputConflict(
                    f"entry {entry_id} was withdrawn (version {latest.version}); enter a new entry instead"
                )
            if expected_version is not None and expected_version != latest.version:
                raise InputConflict(
                    f"entry {entry_id} is at version {latest.version}, not {expected_version}: someone corrected it"
                    " since; read its history and correct the latest version"
                )
            start = latest.period_start if period_start is None else period_start
            end = latest.period_end if period_end is None else period_end
            new_value: float | None = latest.value if value is None else value
            if value is None and latest.kind is InputKind.DEV_PROJECT:
                new_value = None  # follows the (possibly corrected) dates
            new_note = latest.note if note is None else note
            checked = draft(latest.site, latest.kind, start, end, new_value, new_note, self.sites | {latest.site})
            if (checked.period_start, checked.period_end, checked.value, checked.note) == (
                latest.period_start,
                latest.period_end,
                latest.value,
                latest.note,
            ):
                raise InputRejected([FieldProblem("entry", f"the correction changes nothing in {entry_id}")])
            problems = self._clashes(conn, [checked], exclude=entry_id)
            if problems:
                raise InputRejected(problems)
            row = (entry_id, latest.version + 1, *self._content(checked), entered_by, self._now_us(conn), 0)
            conn.execute(_INSERT, row)
            return _entry(row)

        return self._file.transaction(work, immediate=True)

    def withdraw(self, entry_id: str, *, entered_by: str, reason: str) -> InputEntry:
        """A version marking ``entry_id`` withdrawn (``deleted``), its note the reason; history stays."""
        self._check_by(entered_by)
        problem = check_note(reason, "reason")
        if problem is None and not reason.strip():
            problem = "say why the entry is withdrawn"
        if problem is not None:
            raise InputRejected([FieldProblem("reason", problem)])

        def work(conn: sqlite3.Connection) -> InputEntry:
            latest = self._latest(conn, entry_id)
            if latest.deleted:
                raise InputConflict(f"entry {entry_id} is already withdrawn (version {latest.version})")
            row = (
                entry_id,
                latest.version + 1,
                latest.site,
                latest.kind.value,
                latest.period_start.isoformat(),
                latest.period_end.isoformat(),
                latest.value,
                reason,
                entered_by,
                self._now_us(conn),
                1,
            )
            conn.execute(_INSERT, row)
            return _entry(row)

        return self._file.transaction(work, immediate=True)

    # -- reading ---------------------------------------------------------------------------------

    def entries(self, site: str, kind: InputKind, start: date, end: date, *, as_of: datetime | None = None) -> Entries:
        """Latest version (at ``as_of``, default now) of every live entry whose period overlaps [start, end)."""
        return self.list(site=site, kind=kind, start=start, end=end, as_of=as_of)

    def list(
        self,
        *,
        site: str | None = None,
        kind: InputKind | str | None = None,
        start: date | None = None,
        end: date | None = None,
        as_of: datetime | None = None,
        withdrawn: bool = False,
        limit: int | None = None,
    ) -> Entries:
        """Latest versions (at ``as_of``) of the entries matching every filter given, by period then id.

        ``start``/``end``: periods overlapping [start, end). ``withdrawn``: include withdrawn entries.
        """
        sql = _LATEST
        params: list[Any] = [_us(as_of) if as_of is not None else self._clock_us()]
        if site is not None:
            if not is_clean_text(site):
                return []  # no site has such an id (and SQLite could not bind it)
            sql += " AND v.site = ?"
            params.append(site)
        if kind is not None:
            sql += " AND v.kind = ?"
            params.append(InputKind(kind).value)
        if end is not None:
            sql += " AND v.period_start < ?"
            params.append(end.isoformat())
        if start is not None:
            sql += " AND v.period_end > ?"
            params.append(start.isoformat())
        if not withdrawn:
            sql += " AND v.deleted = 0"
        sql += " ORDER BY v.period_start, v.site, v.kind, v.entry_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_entry(row) for row in self._file.query(sql, params)]

    def clashes(self, drafts: Sequence[InputDraft]) -> Problems:
        """What ``add_many`` would refuse these drafts for (overlaps, duplicate projects), without writing."""
        return self._file.locked(lambda conn: self._clashes(conn, drafts))

    def history(self, entry_id: str) -> Entries:
        """Every version of ``entry_id``, oldest first; ``InputNotFound`` if there is no such entry."""
        rows = (
            self._file.query(f"SELECT {_COLUMNS} FROM input_versions WHERE entry_id = ? ORDER BY version", [entry_id])
            if is_clean_text(entry_id)
            else []
        )
        if not rows:
            raise InputNotFound(f"no business input has the id {shown(entry_id)}")
        return [_entry(row) for row in rows]

    def latest(self, entry_id: str) -> InputEntry:
        """The latest version of ``entry_id`` (withdrawn or not)."""
        return self.history(entry_id)[-1]

    def close(self) -> None:
        self._file.close()

    # -- inside ----------------------------------------------------------------------------------

    @staticmethod
    def _check_by(entered_by: str) -> None:
        problem = check_entered_by(entered_by)
        if problem is not None:
            raise InputRejected([FieldProblem("entered_by", problem)])

    @staticmethod
    def _content(d: InputDraft) -> tuple[str, str, str, str, float, str]:
        return d.site, d.kind.value, d.period_start.isoformat(), d.period_end.isoformat(), d.value, d.note

    def _latest(self, conn: sqlite3.Connection, entry_id: str) -> InputEntry:
        sql = f"SELECT {_COLUMNS} FROM input_versions WHERE entry_id = ? ORDER BY version DESC LIMIT 1"
        row = conn.execute(sql, [entry_id]).fetchone() if is_clean_text(entry_id) else None
        if row is None:
            raise InputNotFound(f"no business input has the id {shown(entry_id)}")
        return _entry(row)

    def _clock_us(self) -> int:
        return _us(self._clock())

    def _now_us(self, conn: sqlite3.Connection) -> int:
        """Now, but never before the last version written: ``entered_at`` only moves forward."""
        (last,) = conn.execute("SELECT MAX(entered_at_us) FROM input_versions").fetchone()
        return max(self._clock_us(), last or 0)

    def _clashes(self, conn: sqlite3.Connection, drafts: Sequence[InputDraft], exclude: str | None = None) -> Problems:
        """Drafts that overlap a live entry (other than ``exclude``) or another draft of the same site and kind.

        One query per site and kind, then a binary search per draft: a file of 10,000 rows is checked
        in well under a second, against a store of as many.
        """
        problems: Problems = []
        fresh: Drafts = []
        live = {slot: self._live(conn, *slot, exclude) for slot in {(d.site, d.kind) for d in drafts}}
        for d in drafts:
            existing = live[(d.site, d.kind)]
            clash = (
                existing.same_project(d.period_start, d.period_end, d.note)
                if d.kind is InputKind.DEV_PROJECT
                else existing.overlapping(d.period_start, d.period_end)
            )
            if clash is not None:
                problems.append(FieldProblem("period", self._clash_reason(d, clash), d.line))
            else:
                fresh.append(d)
        problems += _overlaps_within(fresh)
        return sorted(problems, key=lambda p: p.line or 0)

    @staticmethod
    def _live(conn: sqlite3.Connection, site: str, kind: InputKind, exclude: str | None) -> _Timeline:
        sql = (
            _LATEST + " AND v.site = ? AND v.kind = ? AND v.deleted = 0 AND v.entry_id IS NOT ? ORDER BY v.period_start"
        )
        return _Timeline([_entry(row) for row in conn.execute(sql, [_ALL_TIME, site, kind.value, exclude])])

    @staticmethod
    def _clash_reason(d: InputDraft, existing: InputEntry) -> str:
        if d.kind is InputKind.DEV_PROJECT:
            return (
                f"the same project ({_span(d)}, same note) is already entry {existing.entry_id};"
                " correct it rather than entering it twice"
            )
        return (
            f"{_span(d)} overlaps entry {existing.entry_id} ({_span(existing)}) of {d.kind.value} at {d.site}:"
            " the same months would be counted twice; correct or withdraw that entry first"
        )


class _Timeline:
    """The live entries of one site and kind, sorted by start: which one overlaps a period?"""

    def __init__(self, entries: list[InputEntry]):
        self.entries = entries
        self.starts = [e.period_start for e in entries]
        self.reach: list[int] = []  # reach[i]: the entry with the latest end among entries[: i + 1]
        for i, e in enumerate(entries):
            self.reach.append(
                i if not self.reach or e.period_end > entries[self.reach[-1]].period_end else self.reach[-1]
            )
        self.projects = {(e.period_start, e.period_end, e.note): e for e in entries}

    def overlapping(self, start: date, end: date) -> InputEntry | None:
        before = bisect.bisect_left(self.starts, end)  # entries[:before] start before ``end``
        if before == 0:
            return None
        latest = self.entries[self.reach[before - 1]]
        return latest if latest.period_end > start else None

    def same_project(self, start: date, end: date, note: str) -> InputEntry | None:
        return self.projects.get((start, end, note))


def _overlaps_within(drafts: Sequence[InputDraft]) -> list[FieldProblem]:
    """Drafts of one batch that overlap another of the same site and kind (or repeat a project)."""

    def where(d: InputDraft) -> str:
        return "another entry of this batch" if d.line is None else f"line {d.line} of this file"

    problems: list[FieldProblem] = []
    projects: dict[tuple[str, date, date, str], InputDraft] = {}
    periods: dict[tuple[str, InputKind], list[InputDraft]] = {}
    for d in drafts:
        if d.kind is InputKind.DEV_PROJECT:
            first = projects.setdefault((d.site, d.period_start, d.period_end, d.note), d)
            if first is not d:
                problems.append(
                    FieldProblem("period", f"the same project ({_span(d)}, same note) as {where(first)}", d.line)
                )
        else:
            periods.setdefault((d.site, d.kind), []).append(d)
    for group in periods.values():
        reach: InputDraft | None = None  # of the drafts so far (by start), the one ending last
        for d in sorted(group, key=lambda d: (d.period_start, d.line or 0)):
            if reach is not None and d.period_start < reach.period_end:
                problems.append(FieldProblem("period", f"{_span(d)} overlaps {where(reach)} ({_span(reach)})", d.line))
            elif reach is None or d.period_end > reach.period_end:
                reach = d
    return problems


def asset_site_ids(assets: AssetModel) -> frozenset[str]:
    """The site ids an entry may name: every site of the park."""
    return frozenset(site.id for site in assets.sites)
