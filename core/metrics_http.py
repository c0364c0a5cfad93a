"""The page Prometheus scrapes: a small asyncio server answering ``GET /metrics``, for any room.

The edge agent and ingest each serve their counters this way (``edge.metrics_port``,
``ingest.metrics_port``). What the page says is the room's own (``edge/metrics.py``,
``ingest/metrics.py``); this module only answers HTTP: ``GET /metrics`` gets the page, any other
path a 404, and a scraper that hangs up, stalls or sends nonsense gets nothing. The server runs in
the room's own event loop, so no thread reads the components while they change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus text exposition format 0.0.4
REQUEST_TIMEOUT_S = 5.0
MAX_REQUEST_BYTES = 8192


class MetricsHttpServer:
    """``async with MetricsHttpServer(host, port, page):`` answers ``GET /metrics`` with ``await page()``.

    ``port`` 0 takes a free port; the one chosen is in ``port`` once started. ``not_found`` is the
    body of the 404 for any other path.
    """

    def __init__(
        self,
        host: str,
        port: int,
        page: Callable[[], Awaitable[bytes]],
        *,
        not_found: bytes = b"not found\n",
    ):
        self.host = host
        self.port = port
        self._page = page
        self._not_found = not_found
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._answer, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            await server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            method, path, *_ = head[:MAX_REQUEST_BYTES].decode("latin-1").split(" ", 2)
            if method == "GET" and path.split("?", 1)[0] == "/metrics":
                status, content_type, body = "200 OK", CONTENT_TYPE, await self._page()
            else:
                status, content_type, body = "404 Not Found", "text/plain", self._not_found
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a scraper that hangs up or sends nonsense gets nothing; the room is not its concern
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
