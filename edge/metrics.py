"""Prometheus metrics of the edge agent, served on ``GET /metrics`` when ``edge.metrics_port`` is set.

Nothing is counted twice: the components keep their own counters (collectors, buffer, writer,
forwarder, link states) and ``EdgeMetricsCollector`` reads them when Prometheus scrapes, turning them
into metric families with ``prometheus_client``'s types and exposition format. The families, all
prefixed ``factory_edge_``:

* ``samples_in_total`` (samples the sources produced), ``samples_out_total`` (acknowledged by the
  broker), ``batches_sent_total``, ``publish_failures_total``;
* ``buffer_samples`` and ``buffer_oldest_age_seconds`` (how long the oldest waiting sample has been
  in the file: the uplink's backlog in time), ``pending_samples`` (in memory, not yet in the file),
  ``buffer_dropped_total`` (dropped because the buffer was full);
* ``rejected_total{source, reason}``: readings that did not become samples, by reason;
* ``source_up{kind, source}`` 1/0 per OPC UA server, the meter broker and the uplink, with
  ``source_connects_total`` and ``source_reconnects_total`` (connects after the first);
* ``opcua_<counter>_total{source}`` and ``meter_<counter>_total{source}``: every other counter the
  collectors keep (notifications, refreshes, overflows, ...), as they keep them.

The page is served by ``core.metrics_http`` in the agent's own event loop (no thread reads the
components while they change).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.metrics_http import MetricsHttpServer

logger = logging.getLogger(__name__)

PREFIX = "factory_edge"
# Collector counters shown as reasons of ``rejected_total`` rather than as counters of their own: a
# count by reason (a dict), or one count (an int) under the reason named here. A collector that keeps
# both a total and the count by reason (``rejected`` and ``rejected_by_reason``) shows the reasons.
# (``malformed``, the meters' count of messages with any rejection, overlaps the reasons, so it stays
# a counter of its own.)
_REJECTION_COUNTERS = {"rejected": "unusable", "rejected_by_reason": "unusable", "unmapped_states": "unmapped_state"}


@dataclass(frozen=True, slots=True)
class SourceState:
    """One link of the agent as the metrics show it."""

    kind: str  # opcua | meters | uplink
    name: str
    up: bool
    connects: int


@dataclass(frozen=True, slots=True)
class CollectorView:
    """One collector's counters: a dataclass of ints, and dicts of ints by reason."""

    kind: str  # opcua | meter
    source: str
    counters: Any  # a dataclass instance (CollectorCounters, MeterCounters)


@dataclass(frozen=True, slots=True)
class EdgeSnapshot:
    """Everything the metrics page shows, read from the components at one instant."""

    samples_in: int
    samples_out: int
    batches_sent: int
    publish_failures: int
    buffered: int
    pending: int
    dropped: int
    oldest_age_s: float
    next_seq: int
    sources: list[SourceState] = field(default_factory=list)
    collectors: list[CollectorView] = field(default_factory=list)


def _reason_counts(value: int | Mapping[str, int], default_reason: str) -> Iterable[tuple[str, int]]:
    if isinstance(value, Mapping):
        return sorted(value.items())
    return [(default_reason, value)]


def families(snapshot: EdgeSnapshot) -> list[Metric]:
    """The snapshot as Prometheus metric families (pure: no clock, no I/O)."""
    s = snapshot
    out: list[Metric] = [
        CounterMetricFamily(f"{PREFIX}_samples_in", "samples produced by the sources", value=s.samples_in),
        CounterMetricFamily(f"{PREFIX}_samples_out", "samples acknowledged by the uplink broker", value=s.samples_out),
        CounterMetricFamily(f"{PREFIX}_batches_sent", "uplink batches acknowledged", value=s.batches_sent),
        CounterMetricFamily(
            f"{PREFIX}_publish_failures", "uplink publishes failed or unacknowledged", s.publish_failures
        ),
        GaugeMetricFamily(f"{PREFIX}_buffer_samples", "samples waiting in the buffer file", value=s.buffered),
        GaugeMetricFamily(
            f"{PREFIX}_buffer_oldest_age_seconds",
            "how long the oldest waiting sample has been in the buffer (0: empty)",
            value=s.oldest_age_s,
        ),
        GaugeMetricFamily(f"{PREFIX}_pending_samples", "samples in memory, not yet in the buffer file", s.pending),
        CounterMetricFamily(f"{PREFIX}_buffer_dropped", "samples dropped because the buffer was full", s.dropped),
        GaugeMetricFamily(f"{PREFIX}_next_seq", "sequence number of the next uplink batch", value=s.next_seq),
    ]
    up = GaugeMetricFamily(f"{PREFIX}_source_up", "1 while the link is connected", labels=["kind", "source"])
    connects = CounterMetricFamily(f"{PREFIX}_source_connects", "connections made", labels=["kind", "source"])
    reconnects = CounterMetricFamily(
        f"{PREFIX}_source_reconnects", "connections made after the first", labels=["kind", "source"]
    )
    for link in s.sources:
        up.add_metric([link.kind, link.name], int(link.up))
        connects.add_metric([link.kind, link.name], link.connects)
        reconnects.add_metric([link.kind, link.name], max(0, link.connects - 1))
    out += [up, connects, reconnects]

    rejected = CounterMetricFamily(
        f"{PREFIX}_rejected", "readings that did not become samples, by reason", labels=["source", "reason"]
    )
    generic: dict[str, CounterMetricFamily] = {}
    for view in s.collectors:
        by_reason = isinstance(getattr(view.counters, "rejected_by_reason", None), Mapping)
        for f in dataclasses.fields(view.counters):
            value = getattr(view.counters, f.name)
            if f.name == "rejected" and by_reason:
                continue  # the total of rejected_by_reason, shown by reason
            if f.name in _REJECTION_COUNTERS:
                for reason, count in _reason_counts(value, _REJECTION_COUNTERS[f.name]):
                    rejected.add_metric([view.source, reason], count)
                continue
            name = f"{PREFIX}_{view.kind}_{f.name}"
            if isinstance(value, Mapping):
                family = generic.setdefault(
                    name, CounterMetricFamily(name, f"{view.kind} collectors: {f.name}", labels=["source", "reason"])
                )
                for reason, count in sorted(value.items()):
                    family.add_metric([view.source, str(reason)], count)
            elif isinstance(value, int | float):
                family = generic.setdefault(
                    name, CounterMetricFamily(name, f"{view.kind} collectors: {f.name}", labels=["source"])
                )
                family.add_metric([view.source], value)
    out.append(rejected)
    out += generic.values()
    return out


class SnapshotCollector(Collector):
    """A ``prometheus_client`` collector that reads a fresh snapshot at every scrape."""

    def __init__(self, snapshot: Callable[[], EdgeSnapshot]):
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from families(self._snapshot())


def render(snapshot: Callable[[], EdgeSnapshot]) -> bytes:
    """The exposition page (text format 0.0.4) for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)


class MetricsServer(MetricsHttpServer):
    """``async with MetricsServer(host, port, snapshot):`` serves the metrics on ``/metrics``.

    ``port`` 0 takes a free port; the one chosen is in ``port`` once started.
    """

    def __init__(self, host: str, port: int, snapshot: Callable[[], EdgeSnapshot]):
        async def page() -> bytes:
            return render(snapshot)

        super().__init__(host, port, page, not_found=b"not found; try /metrics\n")

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        logger.info("edge metrics on http://%s:%d/metrics", self.host, self.port)
        return self


def age_s(since: float | None, now: float | None = None) -> float:
    """Seconds from ``since`` (epoch s) to ``now`` (default: the clock); 0 for None."""
    if since is None:
        return 0.0
    return max(0.0, (time.time() if now is None else now) - since)
