"""Logging that says a thing once: something lost and back again, and a warning that keeps repeating.

Loops that retry (a store away, a broker lost, a KPI round failing) or that hear the same complaint
from outside (a flood of bad samples) would otherwise log a line per attempt. Two helpers:

* ``Outage``: "log once on loss, once on recovery". ``lost(message, *args)`` logs the first failure
  (retries after it at debug level); ``back(message, *args)`` logs once when it works again. Used by
  ingest (store, broker, dead-letter file), the KPI worker (its rounds) and ``GET /healthz`` (the
  store, which load balancers poll every few seconds), and under ``edge.reconnect.LinkState``, the
  edge's links, which add attempt counts, time away and "not reachable yet".
* ``RepeatedWarnings``: a warning of one kind is logged at once, its repeats within ``interval_s``
  are counted (at debug level) and logged as one line with the count when the interval is over.
  Used by ingest (bad samples and envelopes) and the edge's meter collector (malformed payloads).

Each caller keeps its own words: the helpers decide only whether a line is logged and at which level.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_KINDS = 1000  # kinds whose interval is running; beyond this the oldest is summarised early


class Outage:
    """Whether something is lost, logging once when it is lost and once when it is back.

    ``known=False``: nothing is known yet, so the first report logs either way (a health check's
    first answer); otherwise it starts as working, and only a loss is news.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        known: bool = True,
        lost_level: int = logging.WARNING,
        back_level: int = logging.INFO,
    ):
        self._logger = logger
        self._lost: bool | None = False if known else None
        self._lost_level = lost_level
        self._back_level = back_level

    @property
    def ongoing(self) -> bool:
        """True while lost (since the last ``lost`` not followed by ``back``)."""
        return self._lost is True

    def lost(self, message: str, *args: object) -> bool:
        """It failed: log ``message`` unless it was already lost (then at debug). True if it was news."""
        if self._lost is True:
            self._logger.debug(message, *args)
            return False
        self._lost = True
        self._logger.log(self._lost_level, message, *args)
        return True

    def back(self, message: str, *args: object) -> bool:
        """It works: log ``message`` if it was lost (or nothing was known). True if it was news."""
        if self._lost is False:
            return False
        self._lost = False
        self._logger.log(self._back_level, message, *args)
        return True


@dataclass(slots=True)
class _Window:
    started: float
    repeats: int = 0


class RepeatedWarnings:
    """Warnings by kind, each kind logged once per ``interval_s`` and then as a count.

    Whoever can publish decides how often ingest warns: one bad sample per message at a thousand
    messages a second would be a thousand lines a second. The count is logged when the interval is
    over: on the next warning of any kind, or on ``flush()``.
    """

    def __init__(self, logger: logging.Logger, interval_s: float, clock: Callable[[], float] = time.monotonic):
        self._log = logger
        self.interval_s = interval_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def warn(self, kind: str, message: str, *args: object, exc_info: BaseException | None = None) -> None:
        """Log ``message % args`` as a warning unless ``kind`` was warned of in this interval (then at debug).

        ``exc_info``, the exception behind the warning, is logged with its traceback on the warning only.
        """
        now = self._clock()
        self._summarise(lambda w: now - w.started >= self.interval_s)
        window = self._windows.get(kind)
        if window is None:
            while len(self._windows) >= MAX_KINDS:
                self._summarise_one(next(iter(self._windows)))
            self._windows[kind] = _Window(now)
            self._log.warning(message, *args, exc_info=exc_info)
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
