"""Starting and stopping the background tasks that every long-lived edge component keeps."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

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


class BackgroundComponent(ABC):
    """A component whose work is one background task: started on ``async with``, stopped on exit.

    Subclasses implement ``_run`` (loop forever, reconnecting on their own) and name the task; one
    that has nothing to do can say so in ``_wanted``.
    """

    task: asyncio.Task[None] | None = None

    @abstractmethod
    async def _run(self) -> None: ...

    @abstractmethod
    def _task_name(self) -> str: ...

    def _wanted(self) -> bool:
        return True

    async def __aenter__(self) -> Self:
        if self._wanted():
            self.task = asyncio.create_task(self._run(), name=self._task_name())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.task is not None:
            task, self.task = self.task, None
            await stop_task(task)
