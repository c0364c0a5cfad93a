"""Simulated time for a live run: model time runs ``speed`` times faster than the wall clock.

Two time lines meet here:

* **model time** is what the behaviour model, the shift calendar and the scenario's durations live
  in. It starts at the wall-clock start instant and runs ``speed`` model seconds per wall second.
* **stamp time** is what the platform sees: every timestamp written over OPC UA or MQTT, and every
  instant in the ground truth. ``stamp(t) = start + (t - start) / speed``, i.e. wall-clock time, so
  a run at any speed never produces a timestamp in the future.

At speed 1 the two are the same instant. At speed 60 a model hour (a shift's worth of cycles,
breakdowns and breaks) passes in a wall minute and is stamped over that minute: the platform sees
a factory whose every duration, the cycle times included, is compressed by 60. Ratios —
availability, quality, energy per part — are the same as at speed 1; performance is too, provided
the platform's asset model gives the compressed ideal cycle times (``accelerated_asset_yaml``
writes one).
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
        """The model time now."""
        return self.start + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)

    def stamp(self, model_ts: datetime) -> datetime:
        """The wall-clock instant at which model time ``model_ts`` happens (exact at speed 1)."""
        if self.speed == 1.0:
            return model_ts
        return self.start + (model_ts - self.start) / self.speed

    def model_time(self, stamp_ts: datetime) -> datetime:
        """The model time happening at wall-clock instant ``stamp_ts`` (the inverse of ``stamp``)."""
        if self.speed == 1.0:
            return stamp_ts
        return self.start + (stamp_ts - self.start) * self.speed

    def stamp_now(self) -> datetime:
        return self.stamp(self.now())

    async def sleep_until(self, ts: datetime, interrupt: asyncio.Event) -> None:
        """Return at model time ``ts``, or as soon as ``interrupt`` is set."""
        while not interrupt.is_set():
            delay = (ts - self.now()).total_seconds() / self.speed
            if delay <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(interrupt.wait(), delay)

    async def sleep(self, seconds: float, interrupt: asyncio.Event) -> None:
        """Sleep ``seconds`` of model time, or until ``interrupt`` is set."""
        await self.sleep_until(self.now() + timedelta(seconds=seconds), interrupt)
