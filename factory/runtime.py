"""Shared plumbing for running services from the command line: logging, signals, stop event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import uvicorn

from core.settings import Settings
from factory.health import ReportsLinks, write_health_file

NOISY_LOGGERS = ("asyncua", "amqtt", "transitions", "httpx", "uvicorn.access")


def configure_logging(settings: Settings | None, verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else getattr(logging, settings.log_level.value if settings else "INFO")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # asyncua logs every failed reconnect attempt with a traceback; the edge logs lost/back once itself.
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    # When a server goes away asyncua's session logs "Publish iteration crashed" with a traceback
    # every second; the edge's collector already reports the loss and the return once each.
    logging.getLogger("asyncua.client.ua_session").setLevel(logging.CRITICAL)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


HEARTBEAT_ENV = "FACTORY_HEARTBEAT_FILE"
HEARTBEAT_INTERVAL_S = 5.0


async def beat_health_file(path: str, services: Sequence[object] = ()) -> None:
    """Write the health file while the event loop is alive: its age and the services' links
    (``factory/health.py``) are what ``factory healthcheck`` judges."""
    heartbeat = Path(path)
    reporters = [service for service in services if isinstance(service, ReportsLinks)]
    while True:
        links = {name: up for service in reporters for name, up in service.links().items()}
        await asyncio.to_thread(write_health_file, heartbeat, links)
        await asyncio.sleep(HEARTBEAT_INTERVAL_S)


@runtime_checkable
class Supervised(Protocol):
    """A service whose background tasks can die of an error retrying cannot mend (a broker's TLS refusal)."""

    async def supervise(self) -> None:
        """Wait while the service works; raise the error of a task of it that died."""


async def serve_until_stopped(
    *services: contextlib.AbstractAsyncContextManager[Any],
    on_started: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Enter every service in order, wait for SIGINT/SIGTERM, then leave them in reverse order.

    A supervised service whose task dies ends the wait too, and its error is raised once every
    service has been left: the process stops with the reason instead of idling with a dead task.
    """
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with contextlib.AsyncExitStack() as stack:
        for service in services:
            await stack.enter_async_context(service)
        if on_started is not None:
            await on_started()
        heartbeat_file = os.environ.get(HEARTBEAT_ENV)
        beat = asyncio.create_task(beat_health_file(heartbeat_file, services)) if heartbeat_file else None
        stopping = asyncio.create_task(stop.wait(), name="stop-signal")
        watchers = [asyncio.create_task(s.supervise()) for s in services if isinstance(s, Supervised)]
        try:
            done, _ = await asyncio.wait({stopping, *watchers}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting: list[asyncio.Task[Any]] = [stopping, *watchers, *([beat] if beat is not None else [])]
            for task in waiting:
                task.cancel()
        for failed in done - {stopping}:
            failed.result()  # a service failed: leave them all, then say why
        logging.getLogger("factory").info("stopping")


class EmbeddedUvicorn(uvicorn.Server):
    """A uvicorn server that leaves signal handling to our own loop, so Ctrl-C stops every room cleanly."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


class ApiServer:
    """The FastAPI app served by uvicorn as one more async context manager."""

    def __init__(self, app: Any, host: str, port: int):
        self.server = EmbeddedUvicorn(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        servers = getattr(self.server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.server.config.port)

    async def __aenter__(self) -> ApiServer:
        self._task = asyncio.create_task(self.server.serve(), name="api-server")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises the reason (port in use, …)
                raise RuntimeError("API server stopped during start")
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task


@contextlib.asynccontextmanager
async def closing_store(store: Any) -> AsyncIterator[Any]:
    try:
        yield store
    finally:
        await store.close()
