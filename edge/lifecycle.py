"""Starting and stopping the background tasks that every long-lived edge component keeps."""

from __future__ import annotations

import asyncio
import logging

from core.tasks import cancel_and_wait

logger = logging.getLogger(__name__)


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel a component's background task and wait until it has finished cleaning up.

    A task that had already failed is not re-raised here (``EdgeAgent.run`` reports it when it
    happens), so stopping never masks the exception that made the caller leave its ``async with``.
    See ``core.tasks.cancel_and_wait`` for why one cancel() is not always enough.
    """
    if task.done():
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.debug("task %s had already failed: %r", task.get_name(), exc)
        return
    await cancel_and_wait(task)
    if not task.cancelled() and (exc := task.exception()) is not None:
        raise exc
