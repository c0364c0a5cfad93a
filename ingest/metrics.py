"""Prometheus metrics for ingest: its counters as text on ``GET /metrics``, served on loopback by default.

One small asyncio server (``ingest.metrics_port``; off when unset) so no dependency is needed for
a page of text. ``render`` is pure: it turns the service's counters into the exposition format
(version 0.0.4). Rates (points/s, dead letters/s) are Prometheus' ``rate()`` over the counters.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

PREFIX = "factory_ingest"
REQUEST_TIMEOUT_S = 5.0
MAX_REQUEST_BYTES = 8192
GAUGES = {
    "pending_points": "points held in memory, not yet written",
    "unacked": "messages not yet acknowledged",
    # What the dead-letter file holds now, read at each scrape: after `factory deadletters replay`
    # or `purge` (another process) these change, while the *_total counters count what ingest kept.
    "dead_letters_waiting": "dead letters not replayed yet, in the file now",
    "dead_letters_held": "dead letters in the file now, replayed or not",
    "dead_letter_bytes": "bytes of dead-letter payloads in the file now",
}


@dataclass(frozen=True, slots=True)
class Timing:
    """A Prometheus summary without quantiles: how many, and the seconds they took together."""

    count: int = 0
    seconds: float = 0.0


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(
    stats: Mapping[str, int], dead_letters_by_reason: Mapping[str, int], timings: Mapping[str, tuple[str, Timing]]
) -> str:
    """The exposition text: counters as ``<prefix>_<name>_total``, gauges, dead letters by reason, timings."""
    lines: list[str] = []
    for name, value in stats.items():
        if name in GAUGES:
            lines += [f"# HELP {PREFIX}_{name} {GAUGES[name]}", f"# TYPE {PREFIX}_{name} gauge"]
            lines.append(f"{PREFIX}_{name} {value}")
        else:
            lines += [f"# TYPE {PREFIX}_{name}_total counter", f"{PREFIX}_{name}_total {value}"]
    lines += [
        f"# HELP {PREFIX}_dead_letters_by_reason_total dead letters by the field or cause of their reason",
        f"# TYPE {PREFIX}_dead_letters_by_reason_total counter",
    ]
    for reason, count in sorted(dead_letters_by_reason.items()):
        lines.append(f'{PREFIX}_dead_letters_by_reason_total{{reason="{_label(reason)}"}} {count}')
    for name, (help_text, timing) in timings.items():
        lines += [f"# HELP {PREFIX}_{name} {help_text}", f"# TYPE {PREFIX}_{name} summary"]
        lines += [f"{PREFIX}_{name}_count {timing.count}", f"{PREFIX}_{name}_sum {timing.seconds:.6f}"]
    return "\n".join(lines) + "\n"


class MetricsServer:
    """``async with MetricsServer(host, port, page) as server:`` serves ``await page()`` on /metrics."""

    def __init__(self, host: str, port: int, page: Callable[[], Awaitable[str]]):
        self.host = host
        self.port = port  # 0: any free port; the one chosen is here once started
        self._page = page
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._answer, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            method, path, *_ = head[:MAX_REQUEST_BYTES].decode("latin-1").split(" ", 2)
            if method == "GET" and path.split("?", 1)[0] == "/metrics":
                body = (await self._page()).encode()
                status, content_type = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
            else:
                body, status, content_type = b"not found\n", "404 Not Found", "text/plain"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a scraper that hangs up or sends nonsense gets nothing; the service is not its concern
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
