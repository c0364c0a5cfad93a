"""Reconnect helpers shared by every link the edge holds: backoff delays and log-once link state."""

from __future__ import annotations

import logging
import time

from core.once import Outage


class Backoff:
    """Exponential delays between attempts: ``initial_s`` doubling up to ``max_s``; reset on success."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 10.0):
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("need 0 < initial_s <= max_s")
        self.initial_s = initial_s
        self.max_s = max_s
        self._next = initial_s

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._next = self.initial_s


class LinkState:
    """Whether a link (an OPC UA server, a broker) is up, logging once when lost and once when back.

    The logging once is ``core.once.Outage``'s; this adds what a link knows besides. Retries in
    between stay at DEBUG so an outage of hours does not flood the log. A link that was never up
    logs the first failure as "not reachable yet". The line saying it is back tells after how many
    attempts and how long it was away (the metrics show the state itself: ``factory_edge_source_up``).
    """

    def __init__(self, logger: logging.Logger, name: str):
        self._logger = logger
        self.name = name
        self.connected = False
        self._ever_connected = False
        self._outage = Outage(logger, lost_level=logging.WARNING, back_level=logging.WARNING)
        self._down_since: float | None = None
        self.failed_attempts = 0

    def up(self) -> None:
        if not self.connected:
            attempts = f"{self.failed_attempts} failed attempt{'s' if self.failed_attempts != 1 else ''}"
            if self._ever_connected:
                away = "" if self._down_since is None else f" and {time.monotonic() - self._down_since:.1f} s"
                back = self._outage.back("%s is back after %s%s", self.name, attempts, away)
            else:
                back = self._outage.back("%s connected after %s", self.name, attempts)
            if not back:  # nothing was reported lost: a plain connect
                self._logger.info("%s connected", self.name)
        self.connected = True
        self._ever_connected = True
        self._down_since = None
        self.failed_attempts = 0

    def down(self, reason: str) -> None:
        self.failed_attempts += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
        if self._outage.ongoing:
            self._logger.debug("%s still unreachable: %s", self.name, reason)
        elif self._ever_connected:
            self._outage.lost("%s lost: %s; reconnecting with backoff", self.name, reason)
        else:
            self._outage.lost("%s not reachable yet: %s; retrying with backoff", self.name, reason)
        self.connected = False
