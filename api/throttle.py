"""Failed-authentication throttling: per client address, a sliding window of recent failures.

After ``max_failures`` wrong keys from one address within ``window_s`` seconds, that address gets
429 with ``Retry-After`` until the oldest of those failures leaves the window, even for a right key
(otherwise the throttle would still answer the guess). Defaults (settings ``api.throttle_*``):
10 failures per 60 s, i.e. at most 14,400 guesses a day per address, against 2^256 possible secrets.

Memory is bounded: at most ``max_clients`` addresses are remembered, each with at most
``max_failures`` timestamps; when full, the address heard from least recently is forgotten.
A missing key is not a failure (a browser opening a page without one is not guessing).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureThrottle:
    def __init__(
        self,
        max_failures: int = 10,
        window_s: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        if max_failures < 1 or window_s <= 0 or max_clients < 1:
            raise ValueError("max_failures and max_clients must be >= 1 and window_s > 0")
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int | None:
        """Seconds this client must wait before it may try a key again, or None if it may now."""
        failures = self._failures.get(client)
        if failures is None:
            return None
        now = self._clock()
        while failures and now - failures[0] >= self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        if len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(self.window_s - (now - failures[0])))

    def record_failure(self, client: str) -> None:
        failures = self._failures.get(client)
        if failures is None:
            failures = self._failures[client] = deque(maxlen=self.max_failures)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(client)
        failures.append(self._clock())

    def __len__(self) -> int:
        return len(self._failures)
