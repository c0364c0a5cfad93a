"""Prometheus metrics for ingest: its counters as text on ``GET /metrics``, served on loopback by default.

Served by ``core.metrics_http``'s small asyncio server (``ingest.metrics_port``; off when unset), so
no dependency is needed for a page of text. ``render`` is pure: it turns the service's counters into
the exposition format (version 0.0.4). Rates (points/s, dead letters/s) are Prometheus' ``rate()`` over the counters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from core.metrics_http import MetricsHttpServer

PREFIX = "factory_ingest"
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


class MetricsServer(MetricsHttpServer):
    """``async with MetricsServer(host, port, page) as server:`` serves ``await page()`` on /metrics."""

    def __init__(self, host: str, port: int, page: Callable[[], Awaitable[str]]):
        async def encoded() -> bytes:
            return (await page()).encode()

        super().__init__(host, port, encoded)  # port 0: any free port; the one chosen is here once started
