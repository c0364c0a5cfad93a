"""Waiting for something that happens in the background, with a deadline that fails the test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_until(condition: Callable[[], bool], what: str, within_s: float = 15.0) -> None:
    """Return once ``condition()`` holds; fail with ``what`` if it does not within ``within_s``."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what}")
        await asyncio.sleep(0.05)
