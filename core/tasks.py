"""Stopping background tasks reliably, shared by every room that keeps them."""

from __future__ import annotations

import asyncio
from typing import Any

CANCEL_AGAIN_AFTER_S = 1.0


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel the task and wait until it has ended, cancelling it again if it carried on instead.

    One cancel() is not always enough on Python 3.11: asyncio.wait_for, which aiomqtt and asyncua use
    to wait for a peer's reply, swallows a cancellation that arrives in the same loop iteration as the
    awaited reply (CPython gh-86296, fixed in 3.12). The task then carries on as if nothing had
    happened, and a shutdown waiting for it would wait forever. ``asyncio.wait`` rather than
    ``await task``: a cancellation of the caller itself must propagate, not be swallowed with the
    task's own CancelledError.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_AGAIN_AFTER_S)
