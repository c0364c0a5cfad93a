"""The OPC UA collector against live asyncua servers on loopback: how it subscribes, polls and reads.

Each test starts its own server on a free port with the variables it needs (``ns=2;s=<name>``) and
a collector that puts samples into a list.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asyncua import Node, Server, ua
from asyncua.common.utils import ServiceError

from core.settings import Deadband, OpcUaSource, SignalSpec
from core.signals import OFFLINE, MachineState, Quality
from core.wire import Sample, TimestampSource
from edge import opcua_source
from edge.opcua_reading import (
    OVERFLOW_FLAG,
    REJECT_FRACTIONAL,
    REJECT_NEGATIVE,
    REJECT_NO_VALUE,
    REJECT_NOT_FINITE,
    REJECT_OUT_OF_RANGE,
    REJECT_WRONG_TYPE,
    TS_FALLBACK_FLAG,
    TS_FUTURE_FLAG,
    TS_TOO_OLD_FLAG,
)
from edge.opcua_source import REFRESH_FLAG, OpcUaCollector
from edge.plan import PlannedSignal, SourcePlan, read_options
from edge.reconnect import Backoff
from edge.states import StateMapper
from tests.servers import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

EQUIPMENT = "cnc-01"
STATE_MAP = {"1": MachineState.PRODUCING, "2": MachineState.IDLE, "4": MachineState.DOWN}
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


class ListSink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def put(self, sample: Sample) -> None:
        self.samples.append(sample)

    def of(self, signal: str, equipment: str = EQUIPMENT) -> list[Sample]:
        return [s for s in self.samples if s.signal == signal and s.equipment == equipment and not s.flags]

    def values(self, signal: str, equipment: str = EQUIPMENT) -> list[Any]:
        return [s.value for s in self.of(signal, equipment)]


@dataclass
class LiveServer:
    """A live asyncua server with one variable per name, and the sizes of the CreateMonitoredItems it got."""

    server: Server
    port: int
    nodes: dict[str, Node]
    create_calls: list[int] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/factory/"

    async def write_anything(self, name: str, variant: ua.Variant, ts: datetime | None = None) -> None:
        """Clear the value with a bad status (a notification without value, which the collector counts
        as ``no_value``), then write ``variant`` whatever its type."""
        await self.write(name, None, ua.VariantType.Null, status=ua.StatusCodes.BadOutOfService)
        await self.nodes[name].write_value(ua.DataValue(variant, SourceTimestamp=ts or datetime.now(UTC)))

    async def write(
        self,
        name: str,
        value: Any,
        variant_type: ua.VariantType,
        *,
        ts: datetime | None = None,
        status: int = ua.StatusCodes.Good,
    ) -> None:
        await self.nodes[name].write_value(
            ua.DataValue(
                ua.Variant(value, variant_type),
                StatusCode=ua.StatusCode(status),
                SourceTimestamp=ts or datetime.now(UTC),
            )
        )


@contextlib.asynccontextmanager
async def opcua_server(
    variables: dict[str, ua.Variant],
    *,
    port: int | None = None,
    stated_items_per_call: int | None = None,
    enforced_items_per_call: int | None = None,
    subscriptions: bool = True,
    any_type: bool = False,
    refuse_filters: bool = False,
    not_monitorable: frozenset[str] = frozenset(),
) -> AsyncIterator[LiveServer]:
    """A server with ``variables``; it states ``stated_items_per_call`` as MaxMonitoredItemsPerCall and
    MaxNodesPerRead (0: no limit) and refuses larger CreateMonitoredItems requests with
    BadTooManyOperations, as strict servers do; without ``subscriptions`` it refuses every subscription.
    With ``any_type`` the variables' DataType is Number, which asyncua's server does not check against
    what is written after a bad status has cleared the value (``LiveServer.write_anything``).
    With ``refuse_filters`` it answers an item with a DataChangeFilter BadFilterNotAllowed (as servers
    do for a deadband on a node without EURange); items of ``not_monitorable`` get BadNotSupported.
    """
    server = Server()
    await server.init()
    port = port or free_port()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/factory/")
    ns = await server.register_namespace("urn:smart-factory:test:collector")
    folder = await server.nodes.objects.add_object(ua.NodeId("machine", ns), "machine")
    datatype = ua.NodeId(ua.ObjectIds.Number) if any_type else None
    nodes = {
        name: await folder.add_variable(ua.NodeId(name, ns), name, variant, datatype=datatype)
        for name, variant in variables.items()
    }
    under_test = LiveServer(server, port, nodes)
    if stated_items_per_call is not None:
        for limit in (
            ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
            ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
        ):
            await server.get_node(limit).write_value(ua.Variant(stated_items_per_call, ua.VariantType.UInt32))
    service = server.iserver.subscription_service
    create = service.create_monitored_items

    async def strict_create(params: ua.CreateMonitoredItemsParameters) -> list[ua.MonitoredItemCreateResult]:
        under_test.create_calls.append(len(params.ItemsToCreate))
        if enforced_items_per_call is not None and len(params.ItemsToCreate) > enforced_items_per_call:
            raise ServiceError(ua.StatusCodes.BadTooManyOperations)
        refused: dict[int, int] = {}
        for n, item in enumerate(params.ItemsToCreate):
            if refuse_filters and hasattr(item.RequestedParameters.Filter, "DeadbandType"):  # a DataChangeFilter
                refused[n] = ua.StatusCodes.BadFilterNotAllowed
            elif item.ItemToMonitor.NodeId.Identifier in not_monitorable:
                refused[n] = ua.StatusCodes.BadNotSupported
        accepted = [item for n, item in enumerate(params.ItemsToCreate) if n not in refused]
        params.ItemsToCreate = accepted
        created = iter(await create(params) if accepted else [])
        return [
            ua.MonitoredItemCreateResult(StatusCode=ua.StatusCode(refused[n])) if n in refused else next(created)
            for n in range(len(accepted) + len(refused))
        ]

    service.create_monitored_items = strict_create  # type: ignore[method-assign]
    if not subscriptions:
        server.iserver.max_subscriptions = 0
    await server.start()
    try:
        yield under_test
    finally:
        await server.stop()


def source(endpoint: str, nodes: dict[str, str | SignalSpec], **options: Any) -> OpcUaSource:
    return OpcUaSource(
        endpoint=endpoint,
        equipment=EQUIPMENT,
        nodes=nodes,
        sampling_interval_ms=options.pop("sampling_interval_ms", 50),
        state_map=options.pop("state_map", STATE_MAP),
        **options,
    )


def collector_for(src: OpcUaSource, sink: ListSink) -> OpcUaCollector:
    return OpcUaCollector(src, sink, backoff=Backoff(0.1, 0.5))


def double(value: float = 0.0) -> ua.Variant:
    return ua.Variant(value, ua.VariantType.Double)


# --- many items ------------------------------------------------------------------------------------


async def test_five_thousand_items_are_created_within_the_servers_limit_and_every_one_delivers() -> None:
    count = 5000
    names = [f"t{i:04d}" for i in range(count)]
    async with opcua_server(
        {name: double(-1.0) for name in names}, stated_items_per_call=400, enforced_items_per_call=400
    ) as server:
        sink = ListSink()
        src = source(server.endpoint, {f"temp_{name}": f"ns=2;s={name}" for name in names}, sampling_interval_ms=100)
        async with collector_for(src, sink) as collector:
            await wait_until(lambda: collector.counters.monitored_items == count, "5000 monitored items", 60)
            await wait_until(lambda: len(sink.samples) >= count, "every item's first value", 60)
            for i, name in enumerate(names):
                await server.write(name, float(i), ua.VariantType.Double)
            latest: dict[str, Any] = {}

            def every_item_has_its_new_value() -> bool:
                latest.update((s.signal, s.value) for s in sink.samples)
                return latest == {f"temp_{name}": float(i) for i, name in enumerate(names)}

            await wait_until(every_item_has_its_new_value, "every item's new value", 60)
    assert server.create_calls == [400] * 12 + [200]
    assert collector.counters.rejected == 0 and collector.counters.client_queue_drops == 0


async def test_a_server_that_refuses_large_requests_without_stating_a_limit_gets_smaller_ones() -> None:
    names = [f"t{i:04d}" for i in range(1100)]
    async with opcua_server(
        {name: double() for name in names}, stated_items_per_call=0, enforced_items_per_call=300
    ) as server:
        sink = ListSink()
        src = source(server.endpoint, {f"temp_{name}": f"ns=2;s={name}" for name in names})
        async with collector_for(src, sink) as collector:
            await wait_until(lambda: len({s.signal for s in sink.samples}) == len(names), "every item", 60)
    assert server.create_calls[0] == 500  # the default, refused
    assert server.create_calls[1:] == [250, 250, 250, 250, 100]
    assert collector.counters.monitored_items == 0  # the session ended with the server


# --- what a subscription keeps ---------------------------------------------------------------------


async def test_every_change_between_two_publishes_is_kept_in_order_even_with_equal_timestamps() -> None:
    async with opcua_server({"speed": double(), "load": double()}) as server:
        sink = ListSink()
        nodes: dict[str, str | SignalSpec] = {
            "spindle_speed": SignalSpec(address="ns=2;s=speed", sampling_interval_ms=0, queue_size=100),
            "spindle_load": SignalSpec(address="ns=2;s=load", sampling_interval_ms=0, queue_size=5),
        }
        async with collector_for(source(server.endpoint, nodes, sampling_interval_ms=1000), sink) as collector:
            await wait_until(lambda: len(sink.samples) == 2, "the first values")
            for n in range(1, 31):
                stamp = T0 + timedelta(seconds=n // 2)  # two changes per timestamp
                await server.write("speed", float(n), ua.VariantType.Double, ts=stamp)
                await server.write("load", float(n), ua.VariantType.Double, ts=stamp)
            await wait_until(lambda: len(sink.of("spindle_speed")) == 31, "all 30 changes", 5)
            await wait_until(lambda: len(sink.of("spindle_load")) >= 6, "the load's queue", 5)
    speeds = sink.of("spindle_speed")[1:]
    assert [s.value for s in speeds] == [float(n) for n in range(1, 31)]
    assert [s.ts for s in speeds] == [T0 + timedelta(seconds=n // 2) for n in range(1, 31)]
    # The load's server-side queue holds 5: the oldest changes of the publishing interval are gone
    # (all 30 writes fall into one publishing interval of 1 s, or rarely two).
    loads = sink.values("spindle_load")[1:]
    assert loads[-5:] == [26.0, 27.0, 28.0, 29.0, 30.0] and len(loads) <= 10 and loads == sorted(loads)
    assert collector.counters.notifications == len(sink.samples)


async def test_deadband_and_trigger_are_each_signals_own() -> None:
    variables = {"temp": double(), "pressure": double(), "flow": double(), "level": double()}
    async with opcua_server(variables) as server:
        sink = ListSink()
        nodes: dict[str, str | SignalSpec] = {
            "temperature": SignalSpec(address="ns=2;s=temp", deadband=Deadband(kind="absolute", value=5)),
            "pressure": SignalSpec(address="ns=2;s=pressure", trigger="status"),
            "flow": SignalSpec(address="ns=2;s=flow", trigger="status_value_timestamp"),
            "level": "ns=2;s=level",  # the source's trigger: status_value
        }
        async with collector_for(source(server.endpoint, nodes), sink):
            await wait_until(lambda: len(sink.samples) == 4, "the first values")
            for value in (3.0, 10.0, 12.0, 30.0):  # steps of 3, 7, 2, 18: beyond 5 twice
                await server.write("temp", value, ua.VariantType.Double)
            await server.write("pressure", 1.0, ua.VariantType.Double)  # value only: not reported
            await server.write("pressure", 1.0, ua.VariantType.Double, status=ua.StatusCodes.UncertainInitialValue)
            for name in ("flow", "level"):
                await server.write(name, 0.0, ua.VariantType.Double, ts=T0)  # same value, new timestamp
                await server.write(name, 0.0, ua.VariantType.Double, ts=T0 + timedelta(seconds=1))
            await wait_until(lambda: len(sink.of("pressure")) == 2 and len(sink.of("flow")) == 3, "the changes")
            await asyncio.sleep(0.3)
    assert sink.values("temperature") == [0.0, 10.0, 30.0]
    assert [(s.value, s.quality) for s in sink.of("pressure")] == [(0.0, Quality.GOOD), (1.0, Quality.UNCERTAIN)]
    assert [s.ts for s in sink.of("flow")][1:] == [T0, T0 + timedelta(seconds=1)]
    assert len(sink.of("level")) == 1


async def test_status_codes_and_the_overflow_bit_travel_with_the_samples() -> None:
    async with opcua_server({"parts": ua.Variant(0, ua.VariantType.UInt32), "speed": double()}) as server:
        sink = ListSink()
        nodes: dict[str, str | SignalSpec] = {"parts_total": "ns=2;s=parts", "spindle_speed": "ns=2;s=speed"}
        async with collector_for(source(server.endpoint, nodes), sink) as collector:
            await wait_until(lambda: len(sink.samples) == 2, "the first values")
            overflowed = ua.StatusCodes.Good | 0x0400 | 0x0080  # InfoType DataValue + Overflow
            await server.write("parts", 5, ua.VariantType.UInt32, status=overflowed)
            await server.write("parts", 6, ua.VariantType.UInt32, status=ua.StatusCodes.UncertainSensorNotAccurate)
            # asyncua's server sends a bad status without the value: that cannot be a sample (counted).
            await server.write("speed", 0.0, ua.VariantType.Double, status=ua.StatusCodes.BadSensorFailure)
            await wait_until(lambda: len(sink.samples) == 4 and collector.counters.rejected == 1, "the writes")
    parts = [s for s in sink.samples if s.signal == "parts_total"][1:]
    assert [(s.value, s.status, s.quality, s.flags) for s in parts] == [
        (5, overflowed, Quality.GOOD, (OVERFLOW_FLAG,)),
        (6, ua.StatusCodes.UncertainSensorNotAccurate, Quality.UNCERTAIN, ()),
    ]
    assert collector.counters.overflows == 1
    assert collector.counters.rejected_by_reason == {REJECT_NO_VALUE: 1}


async def test_timestamp_source_floor_and_future_skew_are_per_signal() -> None:
    variables = {"a": double(), "b": double(), "c": double()}
    async with opcua_server(variables) as server:
        sink = ListSink()
        nodes: dict[str, str | SignalSpec] = {
            "by_device": "ns=2;s=a",
            "by_server": SignalSpec(address="ns=2;s=b", timestamp_source=TimestampSource.SERVER),
            "by_gateway": SignalSpec(address="ns=2;s=c", timestamp_source=TimestampSource.GATEWAY),
        }
        src = source(server.endpoint, nodes, max_future_skew_s=60)
        async with collector_for(src, sink) as collector:
            await wait_until(lambda: len(sink.samples) == 3, "the first values")
            started = datetime.now(UTC)
            for n, ts in enumerate(
                (
                    datetime(1601, 1, 1, tzinfo=UTC),  # a PLC without a clock: encoded as 0
                    datetime(2000, 6, 1, tzinfo=UTC),  # before the floor (2001)
                    datetime.now(UTC) + timedelta(minutes=2),  # beyond the skew of 60 s
                    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),  # the largest OPC UA time
                    T0,
                ),
                start=1,
            ):
                for name in variables:
                    await server.write(name, float(n), ua.VariantType.Double, ts=ts)
            await wait_until(lambda: len(sink.samples) == 18, "five changes of each")
    device = [s for s in sink.samples if s.signal == "by_device"][1:]
    assert [s.flags for s in device] == [
        (TS_FALLBACK_FLAG, TS_TOO_OLD_FLAG),
        (TS_FALLBACK_FLAG, TS_TOO_OLD_FLAG),
        (TS_FALLBACK_FLAG, TS_FUTURE_FLAG),
        (TS_FALLBACK_FLAG, TS_FUTURE_FLAG),
        (),
    ]
    for sample in device[:4]:
        assert sample.ts_source is TimestampSource.GATEWAY
        assert started <= sample.ts <= datetime.now(UTC)
    assert (device[4].ts, device[4].ts_source) == (T0, TimestampSource.DEVICE)
    assert {(s.ts_source, s.flags) for s in sink.samples if s.signal == "by_server"} == {(TimestampSource.SERVER, ())}
    assert {(s.ts_source, s.flags) for s in sink.samples if s.signal == "by_gateway"} == {(TimestampSource.GATEWAY, ())}
    assert collector.counters.ts_replaced == 4
    assert collector.counters.ts_replaced_by_reason == {TS_TOO_OLD_FLAG: 2, TS_FUTURE_FLAG: 2}


# --- polling -----------------------------------------------------------------------------------------


async def test_polled_signals_are_read_every_interval_and_only_changes_become_samples() -> None:
    async with opcua_server({"parts": ua.Variant(0, ua.VariantType.UInt32), "speed": double()}) as server:
        sink = ListSink()
        nodes: dict[str, str | SignalSpec] = {
            "parts_total": SignalSpec(address="ns=2;s=parts", mode="poll", poll_interval_ms=100),
            "spindle_speed": "ns=2;s=speed",  # subscribed, next to the polled one
        }
        async with collector_for(source(server.endpoint, nodes), sink) as collector:
            await wait_until(lambda: collector.counters.polls >= 5, "five polls")
            assert (collector.counters.monitored_items, collector.counters.polled_items) == (1, 1)
            for count in (1, 2, 3):
                await server.write("parts", count, ua.VariantType.UInt32, ts=T0 + timedelta(seconds=count))
                await asyncio.sleep(0.25)
            await server.write("speed", 8000.0, ua.VariantType.Double)
            await wait_until(lambda: sink.values("spindle_speed") == [0.0, 8000.0], "the subscribed change")
            polls = collector.counters.polls
            await wait_until(lambda: collector.counters.polls >= polls + 5, "five more polls")
    assert sink.values("parts_total") == [0, 1, 2, 3]
    assert [s.ts for s in sink.of("parts_total")][1:] == [T0 + timedelta(seconds=n) for n in (1, 2, 3)]
    assert collector.counters.polls >= 10


async def test_a_server_without_subscriptions_is_polled() -> None:
    async with opcua_server({"parts": ua.Variant(0, ua.VariantType.UInt32)}, subscriptions=False) as server:
        sink = ListSink()
        src = source(server.endpoint, {"parts_total": "ns=2;s=parts"}, poll_interval_ms=50)
        async with collector_for(src, sink) as collector:
            await wait_until(lambda: collector.counters.polls >= 2, "polls")
            await server.write("parts", 7, ua.VariantType.UInt32)
            await wait_until(lambda: sink.values("parts_total") == [0, 7], "the change, polled")
            assert collector.link.connected


async def test_a_refused_deadband_is_dropped_and_a_node_the_server_cannot_monitor_is_polled() -> None:
    variables = {"temp": double(), "parts": ua.Variant(0, ua.VariantType.UInt32)}
    async with opcua_server(variables, refuse_filters=True, not_monitorable=frozenset({"parts"})) as server:
        sink = ListSink()
        nodes: dict[str, str | SignalSpec] = {
            "temperature": SignalSpec(address="ns=2;s=temp", deadband=Deadband(kind="percent", value=2)),
            "parts_total": "ns=2;s=parts",
        }
        async with collector_for(source(server.endpoint, nodes, poll_interval_ms=50), sink) as collector:
            await wait_until(lambda: len(sink.samples) == 2, "the first values")
            assert (collector.counters.monitored_items, collector.counters.polled_items) == (1, 1)
            await server.write("temp", 0.001, ua.VariantType.Double)  # within any deadband: sent all the same
            await server.write("parts", 3, ua.VariantType.UInt32)
            await wait_until(lambda: sink.values("temperature") == [0.0, 0.001], "the unfiltered change")
            await wait_until(lambda: sink.values("parts_total") == [0, 3], "the polled change")
    assert server.create_calls == [2, 1]  # both, then the temperature again without its filter


async def test_a_collector_that_falls_behind_counts_the_dropped_notifications_and_subscribes_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(opcua_source, "NOTIFICATION_QUEUE_SIZE", 20)  # asyncua's queue, for this collector
    names = [f"t{i:03d}" for i in range(100)]
    async with opcua_server({name: double() for name in names}) as server:
        sink = ListSink()
        src = source(server.endpoint, {f"temp_{name}": f"ns=2;s={name}" for name in names}, sampling_interval_ms=200)
        async with collector_for(src, sink) as collector:
            # The first values of 100 items arrive in one publish: more than the queue holds, so the
            # publish is dropped whole and each of its notifications counted.
            await wait_until(lambda: collector.counters.client_queue_drops >= 100, "drops")
            await wait_until(lambda: collector.counters.connects >= 2, "a fresh session")
            assert collector.task is not None and not collector.task.done()


# --- the boundary ----------------------------------------------------------------------------------

HOSTILE: list[tuple[str, ua.Variant, str]] = [
    ("parts", ua.Variant(math.inf, ua.VariantType.Double), REJECT_NOT_FINITE),
    ("parts", ua.Variant(-math.inf, ua.VariantType.Double), REJECT_NOT_FINITE),
    ("parts", ua.Variant(math.nan, ua.VariantType.Double), REJECT_NOT_FINITE),
    ("parts", ua.Variant(2**64 - 1, ua.VariantType.UInt64), REJECT_OUT_OF_RANGE),
    ("parts", ua.Variant(1e300, ua.VariantType.Double), REJECT_OUT_OF_RANGE),
    ("parts", ua.Variant(-3, ua.VariantType.Int32), REJECT_NEGATIVE),
    ("parts", ua.Variant(2.5, ua.VariantType.Double), REJECT_FRACTIONAL),
    ("parts", ua.Variant("twelve", ua.VariantType.String), REJECT_WRONG_TYPE),
    ("parts", ua.Variant(b"\x00" * 64, ua.VariantType.ByteString), REJECT_WRONG_TYPE),
    ("parts", ua.Variant([1, 2, 3], ua.VariantType.UInt32), REJECT_WRONG_TYPE),
    ("parts", ua.Variant(ua.Argument(Name="x"), ua.VariantType.ExtensionObject), REJECT_WRONG_TYPE),
    ("parts", ua.Variant(ua.LocalizedText("many"), ua.VariantType.LocalizedText), REJECT_WRONG_TYPE),
    ("parts", ua.Variant(None, ua.VariantType.Null), REJECT_NO_VALUE),
    ("speed", ua.Variant(math.nan, ua.VariantType.Float), REJECT_NOT_FINITE),
    ("speed", ua.Variant(2**64 - 1, ua.VariantType.UInt64), REJECT_OUT_OF_RANGE),
    ("speed", ua.Variant(datetime(1601, 1, 1, tzinfo=UTC), ua.VariantType.DateTime), REJECT_WRONG_TYPE),
    ("speed", ua.Variant(ua.NodeId(5, 2), ua.VariantType.NodeId), REJECT_WRONG_TYPE),
    ("energy", ua.Variant(-0.1, ua.VariantType.Double), REJECT_NEGATIVE),
    ("energy", ua.Variant(math.inf, ua.VariantType.Float), REJECT_NOT_FINITE),
]


async def test_hostile_values_never_stop_a_collector_and_the_other_collectors_keep_flowing() -> None:
    hostile_vars = {
        "parts": ua.Variant(0, ua.VariantType.UInt32),
        "speed": double(),
        "energy": double(),
        "state": ua.Variant(1, ua.VariantType.Int32),
    }
    nodes: dict[str, str | SignalSpec] = {
        "parts_total": "ns=2;s=parts",
        "spindle_speed": "ns=2;s=speed",
        "energy_kwh": "ns=2;s=energy",
        "state": "ns=2;s=state",
    }
    async with (
        opcua_server(hostile_vars, any_type=True) as hostile,
        opcua_server({"parts": ua.Variant(0, ua.VariantType.UInt32)}) as calm,
    ):
        hostile_sink, calm_sink = ListSink(), ListSink()
        victim = collector_for(source(hostile.endpoint, nodes), hostile_sink)
        other = collector_for(source(calm.endpoint, {"parts_total": "ns=2;s=parts"}), calm_sink)
        async with victim, other:
            await wait_until(lambda: len(hostile_sink.samples) == 4 and len(calm_sink.samples) == 1, "first values")
            for n, (name, variant, _) in enumerate(HOSTILE, start=1):
                await hostile.write_anything(name, variant)
                await calm.write("parts", n, ua.VariantType.UInt32)
            # States no map knows, and absurd times on a good value.
            for code in (99, -1, 2**31 - 1):
                await hostile.write("state", code, ua.VariantType.Int32)
            one = ua.Variant(1.0, ua.VariantType.Double)
            await hostile.write_anything("speed", one, ts=datetime(1601, 1, 1, tzinfo=UTC))
            await hostile.write("speed", 2.0, ua.VariantType.Double, ts=datetime(9999, 12, 31, tzinfo=UTC))
            # ... and then good values again: they flow as if nothing had happened.
            await hostile.write_anything("parts", ua.Variant(42, ua.VariantType.UInt32), ts=T0)
            await hostile.write("state", 4, ua.VariantType.Int32, ts=T0)
            await hostile.write_anything("energy", ua.Variant(12.5, ua.VariantType.Double), ts=T0)
            await wait_until(
                lambda: (
                    hostile_sink.values("parts_total")[-1:] == [42] and hostile_sink.values("energy_kwh")[-1:] == [12.5]
                ),
                "the good values after the hostile ones",
            )
            await wait_until(lambda: calm_sink.values("parts_total")[-1:] == [len(HOSTILE)], "the other collector")
            assert victim.task is not None and not victim.task.done()
            assert victim.link.connected and victim.counters.connects == 1
    counters = victim.counters
    resets = len(HOSTILE) + 3  # each write_anything first clears the value: one no_value each
    expected = {REJECT_NO_VALUE: resets}
    for _, _, kind in HOSTILE:
        expected[kind] = expected.get(kind, 0) + 1
    assert dict(counters.rejected_by_reason) == expected
    assert counters.rejected == len(HOSTILE) + resets and counters.unmapped_states == 3
    assert counters.ts_replaced_by_reason == {TS_TOO_OLD_FLAG: 1, TS_FUTURE_FLAG: 1}
    assert hostile_sink.values("state")[-1] == "DOWN"
    assert calm_sink.values("parts_total") == list(range(len(HOSTILE) + 1))
    for sample in hostile_sink.samples:  # whatever came through is a sample the wire format accepts
        assert Sample.model_validate(sample.model_dump()) == sample


# --- several machines on one server ------------------------------------------------------------------


async def test_several_equipment_on_one_source_keep_their_own_readings_refreshes_and_offline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Discovery (the plan) may find several machines on one server; each keeps its own signals."""
    variables = {
        f"{m}.{v}": ua.Variant(n, ua.VariantType.Int32)
        for n, m in enumerate(("m1", "m2"), 1)
        for v in ("state", "parts")
    }
    port = free_port()
    src = source(f"opc.tcp://127.0.0.1:{port}/factory/", {"state": "ns=2;s=m1.state"}, refresh_interval_s=0.2)

    async def two_machines(client: Any, configured: OpcUaSource) -> SourcePlan:
        options = read_options(configured, configured.spec("state"))
        return SourcePlan(
            [
                PlannedSignal(
                    equipment,
                    signal,
                    ua.NodeId.from_string(f"ns=2;s={machine}.{variable}"),
                    f"/Machines/{machine}/{variable}",
                    options,
                    StateMapper(STATE_MAP) if signal == "state" else None,
                )
                for equipment, machine in (("cnc-01", "m1"), ("cnc-02", "m2"))
                for signal, variable in (("state", "state"), ("parts_total", "parts"))
            ]
        )

    monkeypatch.setattr(opcua_source, "plan_source", two_machines)
    sink = ListSink()
    async with collector_for(src, sink) as collector:
        async with opcua_server(variables, port=port) as server:
            await wait_until(lambda: collector.counters.refreshes >= 8, "refreshes of both machines")
            await server.write("m2.parts", 9, ua.VariantType.Int32)
            await wait_until(lambda: sink.values("parts_total", "cnc-02") == [2, 9], "cnc-02's change")
        await wait_until(lambda: not collector.link.connected, "the collector to notice")
    assert sink.values("state", "cnc-01") == ["PRODUCING"] and sink.values("state", "cnc-02") == ["IDLE"]
    assert sink.values("parts_total", "cnc-01") == [1]
    refreshed = {(s.equipment, s.signal, s.value) for s in sink.samples if s.flags == (REFRESH_FLAG,)}
    assert {("cnc-01", "state", "PRODUCING"), ("cnc-02", "state", "IDLE"), ("cnc-01", "parts_total", 1)} <= refreshed
    offline = [(s.equipment, s.value) for s in sink.samples if s.value == OFFLINE]
    assert sorted(offline) == [("cnc-01", OFFLINE), ("cnc-02", OFFLINE)]


async def test_a_server_without_any_configured_node_is_retried_and_read_once_the_node_is_there() -> None:
    async with opcua_server({"other": double()}) as server:
        sink = ListSink()
        async with collector_for(source(server.endpoint, {"spindle_speed": "ns=2;s=speed"}), sink) as collector:
            await asyncio.sleep(1.0)
            assert not collector.link.connected and sink.samples == []
            # The machine's program creates the variable later (as PLC servers do after a download).
            speed = await server.nodes["other"].get_parent()
            await speed.add_variable(ua.NodeId("speed", 2), "speed", double(5.0))
            await wait_until(lambda: sink.values("spindle_speed") == [5.0], "the node, once it exists")


class FaultyMapper(StateMapper):
    """A state mapper with a bug for one value (what the boundary is for: a fault no check foresaw)."""

    def map(self, value: Any) -> MachineState | None:
        if value == 3:
            raise RuntimeError("mapper bug")
        return super().map(value)


async def test_a_fault_while_reading_one_value_is_counted_and_logged_once_and_the_next_value_flows(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with opcua_server({"state": ua.Variant(1, ua.VariantType.Int32)}) as server:
        src = source(server.endpoint, {"state": "ns=2;s=state"})

        async def faulty_plan(client: Any, configured: OpcUaSource) -> SourcePlan:
            options = read_options(configured, configured.spec("state"))
            node = ua.NodeId.from_string("ns=2;s=state")
            return SourcePlan(
                [PlannedSignal(EQUIPMENT, "state", node, "ns=2;s=state", options, FaultyMapper(STATE_MAP))]
            )

        monkeypatch.setattr(opcua_source, "plan_source", faulty_plan)
        sink = ListSink()
        with caplog.at_level("WARNING", logger="edge.opcua_source"):
            async with collector_for(src, sink) as collector:
                await wait_until(lambda: len(sink.samples) == 1, "the first state")
                for code in (3, 2, 3, 4):
                    await server.write("state", code, ua.VariantType.Int32)
                await wait_until(lambda: sink.values("state") == ["PRODUCING", "IDLE", "DOWN"], "the good states")
                assert collector.counters.connects == 1 and collector.link.connected
    assert collector.counters.rejected_by_reason == {"unexpected_error": 2}
    faults = [r for r in caplog.records if "mapper bug" in r.getMessage()]
    assert len(faults) == 1 and faults[0].exc_info is not None  # once, with the traceback
