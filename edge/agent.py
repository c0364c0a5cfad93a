"""The edge agent: devices in, durable buffer in the middle, acknowledged MQTT uplink out.

``EdgeAgent`` composes one ``OpcUaCollector`` per OPC UA source and one ``MeterCollector`` for all
meters (all putting samples into one ``BufferWriter``), the ``SampleBuffer`` file and the
``Forwarder``. ``async with EdgeAgent(...) as agent:`` starts everything; ``await agent.run()``
runs until cancelled, or raises if a component fails for good (e.g. the buffer file is unwritable).
With ``edge.metrics_port`` set, the components' counters are served to Prometheus (``edge.metrics``).

Given the asset model, the agent checks at construction that every OPC UA source refreshes its
signals at least as often as its equipment's ``report_interval_s`` promises the platform
(``check_refresh_intervals``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Self

from core.assets import AssetModel
from core.errors import ConfigError, FactoryError
from core.settings import BrokerSettings, EdgeSettings, UplinkSettings
from edge.buffer import CHUNK_SAMPLES, BufferWriter, SampleBuffer
from edge.forwarder import Forwarder
from edge.meter_source import MeterCollector
from edge.metrics import CollectorView, EdgeSnapshot, MetricsServer, SourceState, age_s
from edge.opcua_source import OpcUaCollector

logger = logging.getLogger(__name__)


def check_refresh_intervals(edge: EdgeSettings, assets: AssetModel) -> None:
    """ConfigError if a source refreshes less often than its equipment's ``report_interval_s``.

    Equipment the asset model does not know is left to ingest, which dead-letters its samples.
    """
    for n, source in enumerate(edge.opcua):
        for equipment in source.equipment_ids():
            if equipment not in assets:
                continue
            report_interval_s = assets.equipment(equipment).report_interval_s
            if source.refresh_interval_s > report_interval_s:
                raise ConfigError(
                    "edge settings",
                    f"{source.refresh_interval_s:g} s is longer than the report_interval_s of {equipment} "
                    f"({report_interval_s:g} s in {assets.source}); the platform would see gaps between refreshes",
                    field=f"edge.opcua[{n}].refresh_interval_s",
                )


class EdgeAgent:
    """One gateway's agent, configured by ``EdgeSettings``; see the module docstring."""

    def __init__(
        self,
        edge: EdgeSettings,
        uplink_broker: BrokerSettings,
        uplink: UplinkSettings,
        *,
        assets: AssetModel | None = None,
    ):
        if assets is not None:
            check_refresh_intervals(edge, assets)
        self.settings = edge
        self._uplink_broker = uplink_broker
        self._uplink = uplink
        self._stack: contextlib.AsyncExitStack | None = None
        self.buffer: SampleBuffer | None = None
        self.forwarder: Forwarder | None = None
        self.writer: BufferWriter | None = None
        self.opcua: list[OpcUaCollector] = []
        self.meters: MeterCollector | None = None
        self.metrics: MetricsServer | None = None

    async def __aenter__(self) -> Self:
        edge = self.settings
        async with contextlib.AsyncExitStack() as stack:
            self.buffer = stack.enter_context(
                SampleBuffer(
                    edge.buffer_path,
                    edge.buffer_max_samples,
                    chunk_samples=min(CHUNK_SAMPLES, edge.batch_max_samples),  # a batch is whole chunks
                )
            )
            self.forwarder = await stack.enter_async_context(
                Forwarder(
                    edge.id,
                    self.buffer,
                    self._uplink_broker,
                    self._uplink,
                    batch_max_samples=edge.batch_max_samples,
                )
            )
            # Entered after the forwarder and before the sources, so on exit the sources stop first,
            # then the writer flushes their last samples into the still-open file, where they wait.
            self.writer = await stack.enter_async_context(
                BufferWriter(self.buffer, interval_s=edge.flush_interval_s, on_append=self.forwarder.notify)
            )
            self.opcua = [await stack.enter_async_context(OpcUaCollector(source, self.writer)) for source in edge.opcua]
            self.meters = await stack.enter_async_context(
                MeterCollector(f"{edge.id}-meters", edge.meters, edge.meter_broker or self._uplink_broker, self.writer)
            )
            if edge.metrics_port is not None:
                self.metrics = await stack.enter_async_context(
                    MetricsServer(edge.metrics_host, edge.metrics_port, self.snapshot)
                )
            logger.info(
                "edge agent %s started: %d OPC UA sources, %d meters, %d samples waiting in %s",
                edge.id,
                len(edge.opcua),
                len(edge.meters),
                self.buffer.count,
                edge.buffer_path,
            )
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()
            logger.info("edge agent %s stopped", self.settings.id)

    async def run(self) -> None:
        """Run until cancelled (starting the agent if needed); raise the error of a component that died."""
        if self._stack is not None:
            await self.supervise()
            return
        async with self:
            await self.supervise()

    async def supervise(self) -> None:
        """Wait while every component works; raise the error of one that died."""
        # Every component task loops forever (reconnecting on its own), so one that ends has failed.
        done, _ = await asyncio.wait(self._tasks(), return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and (exc := task.exception()) is not None:
                raise exc
        raise FactoryError(f"edge component {next(iter(done)).get_name()} stopped unexpectedly")

    def _tasks(self) -> list[asyncio.Task[None]]:
        components = [self.forwarder, self.writer, self.meters, *self.opcua]
        return [c.task for c in components if c is not None and c.task is not None]

    def snapshot(self) -> EdgeSnapshot:
        """The components' counters at this instant, for the metrics page."""
        buffer, writer, forwarder = self.buffer, self.writer, self.forwarder
        if buffer is None or writer is None or forwarder is None:
            raise RuntimeError("the edge agent is not started")
        sources = [SourceState("uplink", forwarder.topic, forwarder.link.connected, forwarder.counters.connects)]
        collectors: list[CollectorView] = []
        for collector in self.opcua:
            label = collector.source.label
            sources.append(SourceState("opcua", label, collector.link.connected, collector.counters.connects))
            collectors.append(CollectorView("opcua", label, collector.counters))
        if self.meters is not None and self.settings.meters:
            sources.append(
                SourceState("meters", self.meters.link.name, self.meters.link.connected, self.meters.counters.connects)
            )
            collectors.append(CollectorView("meter", "meters", self.meters.counters))
        return EdgeSnapshot(
            samples_in=writer.samples_written + writer.pending,
            samples_out=forwarder.counters.samples_sent,
            batches_sent=forwarder.counters.batches_sent,
            publish_failures=forwarder.counters.publish_failures,
            buffered=buffer.count,
            pending=writer.pending,
            dropped=buffer.dropped,
            oldest_age_s=age_s(buffer.oldest_buffered_at()),
            next_seq=buffer.next_seq,
            sources=sources,
            collectors=collectors,
        )

    def stats(self) -> dict[str, int]:
        """Counters of every component, summed over sources, for logs, health checks and tests."""
        stats: dict[str, int] = {}
        if self.buffer is not None:
            stats |= {
                "buffered": self.buffer.count,
                "dropped": self.buffer.dropped,
                "next_seq": self.buffer.next_seq,
            }
        if self.writer is not None:
            stats["samples_written"] = self.writer.samples_written
        if self.forwarder is not None:
            c = self.forwarder.counters
            stats |= {
                "uplink_connected": int(self.forwarder.link.connected),
                "batches_sent": c.batches_sent,
                "samples_sent": c.samples_sent,
                "publish_failures": c.publish_failures,
            }
        stats |= {
            "opcua_sources_connected": sum(int(c.link.connected) for c in self.opcua),
            "opcua_notifications": sum(c.counters.notifications for c in self.opcua),
            "opcua_samples": sum(c.counters.samples for c in self.opcua),
            "opcua_refreshes": sum(c.counters.refreshes for c in self.opcua),
            "opcua_refresh_corrections": sum(c.counters.refresh_corrections for c in self.opcua),
            "opcua_unmapped_states": sum(c.counters.unmapped_states for c in self.opcua),
            "opcua_rejected": sum(c.counters.rejected for c in self.opcua),
        }
        if self.meters is not None:
            m = self.meters.counters
            stats |= {
                "meter_broker_connected": int(self.meters.link.connected),
                "meter_messages": m.messages,
                "meter_samples": m.samples,
                "meter_malformed": m.malformed,
            }
        return stats
