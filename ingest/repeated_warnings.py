"""Repeated warnings, logged once per interval with a count, so a flood of bad input cannot flood the log.

Whoever can publish decides how often ingest warns: one bad sample per message at a thousand
messages a second would be a thousand lines a second. The first warning of a kind is logged at
once; the repeats of that kind within ``interval_s`` are counted (and logged at debug level), and
the count is logged when the interval is over: on the next warning of any kind, or on ``flush()``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_KINDS = 1000  # kinds whose interval is running; beyond this the oldest is summarised early


@dataclass(slots=True)
class _Window:
    started: float
    repeats: int = 0


class RepeatedWarnings:
    def __init__(self, logger: logging.Logger, interval_s: float, clock: Callable[[], float] = time.monotonic):
        self._log = logger
        self.interval_s = interval_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def warn(self, kind: str, message: str, *args: object) -> None:
        now = self._clock()
        self._summarise(lambda w: now - w.started >= self.interval_s)
        window = self._windows.get(kind)
        if window is None:
            while len(self._windows) >= MAX_KINDS:
                self._summarise_one(next(iter(self._windows)))
            self._windows[kind] = _Window(now)
            self._log.warning(message, *args)
        else:
            window.repeats += 1
            self._log.debug(message, *args)

    def flush(self) -> None:
        """Log the counts of every running interval now (e.g. on shutdown)."""
        self._summarise(lambda w: True)

    def _summarise(self, due: Callable[[_Window], bool]) -> None:
        for kind in [k for k, w in self._windows.items() if due(w)]:
            self._summarise_one(kind)

    def _summarise_one(self, kind: str) -> None:
        window = self._windows.pop(kind)
        if window.repeats:
            seconds = self._clock() - window.started
            self._log.warning("%d more like %r in the last %.0f s", window.repeats, kind, seconds)
