"""``factory healthcheck``: is the service in this container doing its work, not only alive?

A long-running service (``factory ingest|kpi|edge|simulator``) writes its health file
(``$FACTORY_HEARTBEAT_FILE``) every few seconds from its event loop (``factory/runtime.py``): a JSON
object with the state of each of its links, as the service itself sees them, e.g.
``{"links": {"broker": true, "store": true}}`` for ingest. A stale file means the loop is stuck or
the process is gone; a link that is down means the service cannot do its work. The API is asked
over HTTP instead: ``GET /healthz`` answers 200 only while it can reach its store.

The links a service must report are named per service (``REQUIRED_LINKS``): a service that stops
reporting one is unhealthy too, so a renamed link cannot pass unnoticed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import httpx

# What each service must report up. Ingest: its subscription to the uplink topics and its writes;
# the KPI worker: its rounds against the store (reads and rollup writes).
REQUIRED_LINKS: Mapping[str, tuple[str, ...]] = {
    "ingest": ("broker", "store"),
    "kpi": ("store",),
    "dashboard-feed": ("store",),  # factory grafana feed --every: its last round wrote the dashboards' indicators
    "edge": (),
    "simulator": (),
}
SERVICES = ("api", *REQUIRED_LINKS)


@runtime_checkable
class ReportsLinks(Protocol):
    """A service that says whether each of its links (broker, store, ...) works right now."""

    def links(self) -> Mapping[str, bool]:
        """Link name -> up, as the service saw it last (cheap: no I/O)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    reason: str


def write_health_file(path: Path, links: Mapping[str, bool]) -> None:
    """Replace the health file atomically, so a reader never sees half of it."""
    partial = path.with_name(path.name + ".new")
    partial.write_text(json.dumps({"links": dict(links)}))
    os.replace(partial, path)


def judge_health_file(path: Path, service: str | None, max_age_s: float, now: float | None = None) -> Verdict:
    """Healthy when the file is fresh and every link is up (and, for a named service, every link it must have)."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
        text = path.read_text()
    except FileNotFoundError:
        return Verdict(False, f"health file {path} missing: the service has not started (or not in this container)")
    if age > max_age_s:
        return Verdict(False, f"health file {path} is {age:.0f}s old (limit {max_age_s:.0f}s): the service is stuck")
    try:
        links = json.loads(text).get("links", {}) if text.strip() else {}
    except (json.JSONDecodeError, AttributeError):
        return Verdict(False, f"health file {path} is not the JSON a service writes: {text[:80]!r}")
    missing = [name for name in REQUIRED_LINKS.get(service or "", ()) if name not in links]
    if missing:
        return Verdict(False, f"{service} does not report its {', '.join(missing)} link (reports: {sorted(links)})")
    down = sorted(name for name, up in links.items() if not up)
    if down:
        return Verdict(False, f"{', '.join(down)} down (as the service saw it {age:.0f}s ago)")
    shown = ", ".join(f"{name} up" for name in sorted(links)) or "no links to report"
    return Verdict(True, f"{shown}; updated {age:.0f}s ago")


def probe_api(url: str, timeout_s: float = 4.0) -> Verdict:
    """``GET <url>/healthz``: healthy on 200 with status ok (the API answers and reaches its store)."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/healthz", timeout=timeout_s)
    except httpx.HTTPError as exc:
        return Verdict(False, f"{url}/healthz: {type(exc).__name__}: {exc}")
    try:
        body = response.json()
    except ValueError:
        body = {}
    status = body.get("status") if isinstance(body, dict) else None
    if response.status_code != 200 or status != "ok":
        return Verdict(False, f"{url}/healthz answered {response.status_code} {status or response.text[:80]!r}")
    return Verdict(True, f"{url}/healthz: ok")
