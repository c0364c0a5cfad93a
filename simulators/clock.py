"""Simulated time: starts at a wall-clock instant and runs ``speed`` simulated seconds per real second.

With the default speed 1.0 simulated time is UTC wall-clock time. A faster clock runs ahead of the
wall clock (timestamps lie in the future), which is what a time-lapse demo wants and what a
platform test does not; tests run at speed 1.0.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    def __init__(self, start: datetime | None = None, speed: float = 1.0):
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self.start = start if start is not None else datetime.now(UTC)
        self.speed = speed
        # Elapsed time comes from the monotonic clock, so a wall-clock step cannot reorder events.
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)

    async def sleep_until(self, ts: datetime, interrupt: asyncio.Event) -> None:
        """Return at simulated time ``ts``, or as soon as ``interrupt`` is set."""
        while not interrupt.is_set():
            delay = (ts - self.now()).total_seconds() / self.speed
            if delay <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(interrupt.wait(), delay)

    async def sleep(self, seconds: float, interrupt: asyncio.Event) -> None:
        """Sleep ``seconds`` of simulated time, or until ``interrupt`` is set."""
        await self.sleep_until(self.now() + timedelta(seconds=seconds), interrupt)
