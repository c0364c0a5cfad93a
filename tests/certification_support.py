"""Test helpers for certification: business inputs held in memory (until the SQLite store is on main)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

from core.business import InputEntry, InputKind


class MemoryInputs:
    """The ``BusinessInputs`` read side over a list of entry versions: the latest live version of each entry."""

    def __init__(self, entries: Iterable[InputEntry] = ()):
        self.versions = list(entries)

    def entries(
        self, site: str, kind: InputKind, start: date, end: date, *, as_of: datetime | None = None
    ) -> list[InputEntry]:
        latest: dict[str, InputEntry] = {}
        for e in self.versions:
            if as_of is not None and e.entered_at > as_of:
                continue
            if e.entry_id not in latest or e.version > latest[e.entry_id].version:
                latest[e.entry_id] = e
        return [
            e
            for e in latest.values()
            if e.site == site and e.kind == kind and not e.deleted and e.period_start < end and start < e.period_end
        ]


def entry(
    entry_id: str,
    kind: InputKind,
    start: date,
    end: date,
    value: float,
    *,
    site: str = "hist-site",
    version: int = 1,
    entered_by: str = "cli:auditor",
) -> InputEntry:
    return InputEntry(
        entry_id=entry_id,
        version=version,
        site=site,
        kind=kind,
        period_start=start,
        period_end=end,
        value=value,
        entered_by=entered_by,
        entered_at=datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
    )
