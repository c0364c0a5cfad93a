"""The edge's Prometheus page: what each family says (pure), and a live agent's page over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from asyncua import Server, ua
from prometheus_client.parser import text_string_to_metric_families

from core.settings import BrokerSettings, EdgeSettings, OpcUaSource, UplinkSettings
from edge.agent import EdgeAgent
from edge.metrics import CollectorView, EdgeSnapshot, SourceState, age_s, render
from tests.servers import MosquittoServer, free_port
from tests.waiting import wait_until


def values(page: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on the page by (name, sorted labels); parsing it also proves the format."""
    out = {}
    for family in text_string_to_metric_families(page.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@dataclass
class NewCounters:
    """A collector's counters as edge-collect's branch keeps them: rejections by reason."""

    notifications: int = 0
    samples: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    unmapped_states: int = 0
    overflows: int = 0


@dataclass
class TotalAndReasons:
    """Counters that keep the total and the count by reason beside it."""

    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    ts_replaced_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass
class OldCounters:
    notifications: int = 0
    rejected: int = 0
    malformed: int = 0


def snapshot() -> EdgeSnapshot:
    return EdgeSnapshot(
        samples_in=120,
        samples_out=100,
        batches_sent=7,
        publish_failures=1,
        buffered=20,
        pending=3,
        dropped=0,
        oldest_age_s=4.5,
        next_seq=7,
        sources=[
            SourceState("uplink", "factory/uplink/gw-1", True, 3),
            SourceState("opcua", "cnc-01", False, 1),
        ],
        collectors=[
            CollectorView("opcua", "cnc-01", NewCounters(50, 45, {"not_finite": 2, "wrong_type": 1}, 4, 9)),
            CollectorView("meter", "meters", OldCounters(10, 2, 5)),
            CollectorView(
                "opcua", "robot-01", TotalAndReasons(3, {"no_value": 1, "out_of_range": 2}, {"ts_future": 4})
            ),
        ],
    )


def test_page_shows_flow_buffer_links_and_rejections_by_reason() -> None:
    page = values(render(snapshot))
    assert page[("factory_edge_samples_in_total", ())] == 120
    assert page[("factory_edge_samples_out_total", ())] == 100
    assert page[("factory_edge_buffer_samples", ())] == 20
    assert page[("factory_edge_buffer_oldest_age_seconds", ())] == 4.5
    assert page[("factory_edge_pending_samples", ())] == 3
    assert page[("factory_edge_buffer_dropped_total", ())] == 0
    assert page[("factory_edge_source_up", (("kind", "opcua"), ("source", "cnc-01")))] == 0
    assert page[("factory_edge_source_up", (("kind", "uplink"), ("source", "factory/uplink/gw-1")))] == 1
    assert page[("factory_edge_source_reconnects_total", (("kind", "uplink"), ("source", "factory/uplink/gw-1")))] == 2
    rejected = {labels: v for (name, labels), v in page.items() if name == "factory_edge_rejected_total"}
    assert rejected == {
        (("reason", "not_finite"), ("source", "cnc-01")): 2,
        (("reason", "wrong_type"), ("source", "cnc-01")): 1,
        (("reason", "unmapped_state"), ("source", "cnc-01")): 4,
        (("reason", "unusable"), ("source", "meters")): 2,
        (("reason", "no_value"), ("source", "robot-01")): 1,  # the reasons, not the total beside them
        (("reason", "out_of_range"), ("source", "robot-01")): 2,
    }
    # Every other counter a collector keeps shows as it is, whatever its branch added.
    assert page[("factory_edge_opcua_overflows_total", (("source", "cnc-01"),))] == 9
    assert page[("factory_edge_meter_notifications_total", (("source", "meters"),))] == 10
    assert page[("factory_edge_meter_malformed_total", (("source", "meters"),))] == 5
    assert (
        page[("factory_edge_opcua_ts_replaced_by_reason_total", (("reason", "ts_future"), ("source", "robot-01")))] == 4
    )


def test_oldest_age_is_zero_for_an_empty_buffer_and_never_negative() -> None:
    assert age_s(None, now=100.0) == 0.0
    assert age_s(90.0, now=100.0) == 10.0
    assert age_s(110.0, now=100.0) == 0.0  # a clock step back does not make a negative age


@contextlib.asynccontextmanager
async def one_variable_server(port: int):  # type: ignore[no-untyped-def]
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/metrics/")
    ns = await server.register_namespace("urn:smart-factory:test:metrics")
    node = await server.nodes.objects.add_variable(
        ua.NodeId("m-01.Temp", ns), "Temp", ua.Variant(0.0, ua.VariantType.Double)
    )
    await server.start()
    try:
        yield node
    finally:
        await server.stop()


@pytest.mark.integration
async def test_live_agent_serves_its_counters_and_shows_a_source_going_down(
    tmp_path: Path, mosquitto_server: MosquittoServer
) -> None:
    port = free_port()
    edge = EdgeSettings(
        id="gw-metrics",
        buffer_path=tmp_path / "buffer.sqlite",
        metrics_port=0,  # any free port; the agent's MetricsServer knows which
        opcua=[
            OpcUaSource(
                endpoint=f"opc.tcp://127.0.0.1:{port}/metrics/",
                equipment="m-01",
                nodes={"temperature_c": "ns=2;s=m-01.Temp"},
                sampling_interval_ms=50,
            )
        ],
    )
    uplink = UplinkSettings(topic_prefix=f"test/{uuid.uuid4().hex[:8]}/uplink")
    broker = BrokerSettings(host=mosquitto_server.host, port=mosquitto_server.port)
    async with EdgeAgent(edge, broker, uplink) as agent, httpx.AsyncClient(timeout=5) as http:
        assert agent.metrics is not None
        url = f"http://127.0.0.1:{agent.metrics.port}/metrics"
        opcua = (("kind", "opcua"), ("source", "m-01"))
        async with one_variable_server(port) as node:
            await wait_until(lambda: agent.stats()["opcua_sources_connected"] == 1, "the OPC UA session")
            for n in range(5):
                ts = datetime.now(UTC)
                await node.write_value(ua.DataValue(ua.Variant(20.0 + n, ua.VariantType.Double), SourceTimestamp=ts))
            await wait_until(lambda: agent.stats()["samples_sent"] == 6, "6 samples sent")
            response = await http.get(url)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            page = values(response.content)
            assert page[("factory_edge_samples_in_total", ())] == 6
            assert page[("factory_edge_samples_out_total", ())] == 6
            assert page[("factory_edge_buffer_samples", ())] == 0
            assert page[("factory_edge_source_up", opcua)] == 1
            assert page[("factory_edge_opcua_notifications_total", (("source", "m-01"),))] == 6
        await wait_until(lambda: agent.stats()["opcua_sources_connected"] == 0, "the loss to be seen")
        page = values((await http.get(url)).content)
        assert page[("factory_edge_source_up", opcua)] == 0
        assert page[("factory_edge_source_connects_total", opcua)] == 1
        assert (await http.get(url.replace("/metrics", "/other"))).status_code == 404
        await asyncio.sleep(0)
