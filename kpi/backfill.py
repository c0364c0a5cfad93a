"""Backfill: recompute the rollups of any range, one day at a time, in bounded memory, idempotently.

``factory kpi backfill --start --end [--scope]`` runs it; the worker runs it too when the rollups'
schema or configuration changed. Each chunk is read, folded hour by hour (carrying each equipment's
last readings into the next chunk), written, and forgotten; rewriting a range overwrites its rows.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from core.wire import datetime_to_ns
from kpi.base import HOUR_NS
from kpi.engine import RAW_CHUNK_NS, KpiEngine
from kpi.fold import Carry


@dataclass(frozen=True, slots=True)
class BackfillSummary:
    hours: int  # hours of the range
    rows: int  # hourly rows written
    days: int  # daily rows written
    raw_points: int  # raw points read
    seconds: float

    @property
    def points_per_s(self) -> float:
        return self.raw_points / self.seconds if self.seconds > 0 else 0.0


class ProgressBar:
    """A one-line progress bar on a terminal (a line per 10 % elsewhere)."""

    def __init__(self, total: int, stream: TextIO | None = None):
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._shown = -1

    def update(self, done: int, points: int) -> None:
        share = min(done / self.total, 1.0)
        step = int(share * (100 if self.tty else 10))
        if step == self._shown:
            return
        self._shown = step
        bar = "#" * int(share * 30)
        line = f"backfill [{bar:<30}] {share:6.1%}  {points:,} raw points"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and share >= 1.0:
            self.stream.write("\n")
        self.stream.flush()


async def backfill(
    engine: KpiEngine,
    equipment_ids: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    progress: ProgressBar | None = None,
) -> BackfillSummary:
    """Recompute and write the hourly rollups of [start, end) (whole UTC hours) and their daily sums."""
    began = time.perf_counter()
    start_ns = datetime_to_ns(start)
    start_ns -= start_ns % HOUR_NS
    end_ns = datetime_to_ns(end)
    end_ns -= end_ns % HOUR_NS
    settled = engine.settled_before_ns(now)
    ids = list(dict.fromkeys(equipment_ids))
    rows = days = points = 0
    # What was known at the start: the rollup of the hour before, else a look-back in the raw series.
    before = await engine.rollups.read_hours(ids, start_ns - HOUR_NS, start_ns)
    carries: dict[str, Carry] = {eq: row.carry for (eq, _), row in before.items()}
    chunk = start_ns
    while chunk < end_ns:
        chunk_end = min(end_ns, chunk + RAW_CHUNK_NS)
        computed = await engine.raw_hours(ids, chunk, chunk_end, carries=carries)
        hour_rows = [r.row() for r in computed]
        await engine.rollups.write_hours(hour_rows)
        days += await engine.rollups.refresh(ids, (r.hour_ns for r in hour_rows), settled)
        carries = {r.equipment: r.carry for r in computed}
        rows += len(hour_rows)
        points += sum(r.raw_points for r in computed)
        chunk = chunk_end
        if progress is not None:
            progress.update((chunk - start_ns) // HOUR_NS, points)
    return BackfillSummary(
        hours=max(0, (end_ns - start_ns) // HOUR_NS),
        rows=rows,
        days=days,
        raw_points=points,
        seconds=time.perf_counter() - began,
    )
