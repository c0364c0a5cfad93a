"""OPC UA collector: one subscription per machine, every data change turned into a canonical sample.

Per ``OpcUaSource`` the collector holds one asyncua client with one subscription (publishing
interval = ``sampling_interval_ms``) and one monitored item per configured node. Monitored items
get a server-side queue, so several state changes between two publishes all arrive. Each data
change becomes a ``Sample`` (``datavalue_to_sample``, a pure function) and goes to the sink.

When the server is not up yet or goes away, the collector reconnects with backoff and recreates
the subscription; the fresh subscription's first notification per node re-sends the current value,
which ingest stores idempotently (same series, same timestamp).

Refresh: the platform knows a signal only while the edge reports it (a reading is valid for a few
of the equipment's ``report_interval_s``), and a value that does not change produces no data
change. So while a session is up, the collector re-sends the last reading of every signal every
``refresh_interval_s`` (``refresh_samples``): same value, raw code and quality, gateway time,
ts_source gateway, flag ``refresh``. Only readings of the current session are re-sent: the list is
emptied when a session ends (the refresh stops with it, so the platform sees the outage as a gap)
and refills from the new subscription's first notifications. A reading that cannot become a sample
(no value, unmapped state code) removes its signal from the list: a value that is no longer the
device's is never re-sent as current.

A refresh must never put a value after the change that replaced it: in the store, a refresh
stamped after a change but carrying the value before it reads as a state flip, or as a counter
reset followed by the whole count as production. Two measures keep it so:

* a refresh is stamped ``refresh_lag_s`` before it is sent and re-sends only readings received by
  then, so a change the server sampled just before the refresh (still on its way: sampling and
  publishing take up to about two sampling intervals) is not overtaken;
* a change that arrives later still (a stalled event loop, a device clock behind the gateway's)
  stamped at or before refreshes already sent for its signal corrects them
  (``corrected_refreshes``): they are sent again, same timestamp, with the change's value, and the
  store overwrites the wrong point (same series, same timestamp). Corrections are counted and
  logged once per signal.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, StatusChangeEvent
from pydantic import ValidationError

from core.settings import OpcUaSource
from core.signals import OFFLINE, MachineState, Quality, Signal
from core.tasks import cancel_and_wait
from core.wire import Sample, TimestampSource
from edge.buffer import SampleSink
from edge.errors import UnmappedState, UnusableReading
from edge.lifecycle import BackgroundComponent
from edge.opcua_security import apply_security
from edge.plan import PlannedSignal, check_source, plan_source
from edge.reconnect import Backoff, LinkState
from edge.states import StateMapper

logger = logging.getLogger(__name__)

TS_FALLBACK_FLAG = "ts_fallback"
REFRESH_FLAG = "refresh"
OFFLINE_FLAG = "offline"
# A refresh is stamped this long plus three sampling intervals before it is sent (see the docstring).
REFRESH_LAG_MARGIN_S = 0.5
# Refreshes remembered per signal, for corrections by changes that arrive late.
REFRESH_HISTORY = 16
# A device clock before this is not plausible (a PLC that lost its clock restarts in 2000 or 1601).
EARLIEST_PLAUSIBLE_TS = datetime(2001, 1, 1, tzinfo=UTC)
# Server-side queue per monitored item: state changes between two publishes must not overwrite
# each other (the default queue of 1 keeps only the last one).
MONITORED_ITEM_QUEUE_SIZE = 1000
# Client-side queue of notifications not yet turned into samples; the consumer only converts and
# appends to a list, so this fills only if the event loop is starved for a long time.
NOTIFICATION_QUEUE_SIZE = 100_000


def quality_of(status: ua.StatusCode | None) -> Quality:
    """OPC UA severity bits (the top two) -> quality. A missing status code means Good."""
    if status is None:
        return Quality.GOOD
    severity = (status.value >> 30) & 0b11
    if severity == 0:
        return Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    return Quality.BAD


def datavalue_to_sample(
    equipment: str,
    signal: str,
    value: ua.DataValue,
    received_at: datetime,
    *,
    timestamp_source: TimestampSource = TimestampSource.DEVICE,
    state_map: dict[str, MachineState] | None = None,
    states: StateMapper | None = None,
) -> Sample:
    """Turn one OPC UA data value into a canonical sample, or raise UnusableReading.

    * ``ts``: SourceTimestamp (device), ServerTimestamp (server) or ``received_at`` (gateway). A
      missing or implausible chosen timestamp falls back to ``received_at`` with ts_source gateway
      and the flag ``ts_fallback``.
    * ``quality`` from the status code's severity.
    * state: ``raw`` is ``str()`` of the device value; with a state map the raw value is looked up
      (UnmappedState if absent), without one the value must already be a canonical state name.
    * every other signal: the number as it is (the Sample model checks counters and energy).
    """
    if value.Value is None or value.Value.Value is None:
        raise UnusableReading(f"{signal}: data value carries no value (status {_status_name(value.StatusCode)})")
    device_value: Any = value.Value.Value

    flags: tuple[str, ...] = ()
    ts_source = timestamp_source
    ts: datetime | None
    if timestamp_source is TimestampSource.DEVICE:
        ts = value.SourceTimestamp
    elif timestamp_source is TimestampSource.SERVER:
        ts = value.ServerTimestamp
    else:
        ts = received_at
    if ts is not None and ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)  # OPC UA DateTime is UTC by definition
    if ts is None or ts < EARLIEST_PLAUSIBLE_TS:
        ts, ts_source, flags = received_at, TimestampSource.GATEWAY, (TS_FALLBACK_FLAG,)

    raw: str | None = None
    sample_value: Any = device_value
    if signal == Signal.STATE and states is not None:
        raw = states.raw(device_value)
        mapped = states.map(device_value)
        if mapped is None:
            raise UnmappedState(raw)
        sample_value = mapped.value
    elif signal == Signal.STATE:
        raw = str(device_value)
        if state_map:
            mapped = state_map.get(raw)
            if mapped is None:
                raise UnmappedState(raw)
            sample_value = mapped.value
        elif raw in MachineState.__members__:
            sample_value = raw
        else:
            raise UnmappedState(raw)
    elif isinstance(device_value, str):
        raise UnusableReading(f"{signal}: expected a number, got the string {device_value!r}")

    try:
        return Sample(
            equipment=equipment,
            signal=signal,
            ts=ts,
            value=sample_value,
            raw=raw,
            quality=quality_of(value.StatusCode),
            ts_source=ts_source,
            flags=flags,
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise UnusableReading(f"{signal}: {first['msg']}") from None


def _status_name(status: ua.StatusCode | None) -> str:
    return "Good" if status is None else status.name


@dataclass(frozen=True, slots=True)
class LastReading:
    """The latest usable reading of one signal in the current session, and when the edge got it."""

    sample: Sample
    received_at: datetime


def refresh_samples(last: Mapping[str, LastReading], as_of: datetime) -> list[Sample]:
    """Re-send of every signal whose last reading was received by ``as_of``, stamped ``as_of``.

    Value, raw code and quality are the reading's; ts_source is gateway and the only flag is
    ``refresh``. A signal received after ``as_of`` is left out: it has just been reported, and
    stamping its new value at ``as_of`` could put the value before the change that brought it.
    """
    update = {"ts": as_of, "ts_source": TimestampSource.GATEWAY, "flags": (REFRESH_FLAG,)}
    return [r.sample.model_copy(update=update) for r in last.values() if r.received_at <= as_of]


def corrected_refreshes(sent: Iterable[Sample], change: Sample) -> list[Sample]:
    """Refreshes already sent that ``change`` proves wrong, with its value, raw code and quality.

    A refresh stamped at or after the change's timestamp claimed the value the signal had then;
    notifications of one item arrive in order, so that value is the change's.
    """
    now = (change.value, change.raw, change.quality)
    update = {"value": change.value, "raw": change.raw, "quality": change.quality}
    return [r.model_copy(update=update) for r in sent if r.ts >= change.ts and (r.value, r.raw, r.quality) != now]


def offline_sample(equipment: str, at: datetime) -> Sample:
    """The edge's word that it stopped listening to ``equipment`` at ``at`` (core.signals.OFFLINE)."""
    return Sample(
        equipment=equipment,
        signal=Signal.STATE.value,
        ts=at,
        value=OFFLINE,
        ts_source=TimestampSource.GATEWAY,
        flags=(OFFLINE_FLAG,),
    )


@dataclass
class CollectorCounters:
    notifications: int = 0
    samples: int = 0
    unmapped_states: int = 0
    rejected: int = 0
    connects: int = 0
    refreshes: int = 0  # refresh samples (not counted in ``samples``)
    refresh_corrections: int = 0  # refreshes sent again because a late change proved them wrong


class OpcUaCollector(BackgroundComponent):
    """Subscribes to one OPC UA server, puts a sample for every data change into the sink, and
    re-sends every signal's last reading every ``refresh_interval_s`` while the session is up.
    """

    def __init__(
        self,
        source: OpcUaSource,
        sink: SampleSink,
        *,
        backoff: Backoff | None = None,
        request_timeout_s: float = 4.0,
        watchdog_interval_s: float = 1.0,
        refresh_lag_s: float | None = None,
    ):
        self.source = source
        self._sink = sink
        self._backoff = backoff or Backoff(0.5, 10.0)
        self._request_timeout_s = request_timeout_s
        self._watchdog_interval_s = watchdog_interval_s
        self.refresh_lag_s = (
            REFRESH_LAG_MARGIN_S + 3 * source.sampling_interval_ms / 1000 if refresh_lag_s is None else refresh_lag_s
        )
        check_source(source, f"opcua[{source.label}]")
        # This session's plan: node -> the signals read from it (resolved anew after every connect).
        self._signals_by_node: dict[ua.NodeId, list[PlannedSignal]] = {}
        self.counters = CollectorCounters()
        # Last usable reading per signal in the current session; what the refresh re-sends.
        self._last: dict[str, LastReading] = {}
        # Per signal, the last refreshes sent (kept across sessions: the first notifications after
        # a reconnect can prove a refresh from before the outage wrong).
        self._sent_refreshes: dict[str, deque[Sample]] = {}
        self._refresh_task: asyncio.Task[None] | None = None
        self.link = LinkState(logger, f"OPC UA server {source.endpoint} ({source.label})")
        # Log each problem once per code/signal, then only count it.
        self._reported: set[str] = set()

    def _task_name(self) -> str:
        return f"opcua-{self.source.label}"

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except (OSError, TimeoutError, ua.UaError) as exc:  # ConnectionError is an OSError
                self.link.down(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self._backoff.next_delay())

    async def _session(self) -> None:
        """Connect, subscribe and consume notifications until the connection or subscription dies."""
        client = Client(
            self.source.endpoint,
            timeout=self._request_timeout_s,
            watchdog_intervall=self._watchdog_interval_s,
        )
        await apply_security(client, self.source.security)
        await client.connect()
        try:
            plan = await plan_source(client, self.source)
            self._signals_by_node = {}
            for planned in plan.signals:
                self._signals_by_node.setdefault(planned.node_id, []).append(planned)
            subscription = await client.create_subscription(
                self.source.sampling_interval_ms,
                handler=None,
                queue_maxsize=NOTIFICATION_QUEUE_SIZE,
                overflow=OverflowPolicy.WARN,
            )
            nodes = [client.get_node(node_id) for node_id in self._signals_by_node]
            results = await subscription.subscribe_data_change(
                nodes,
                queuesize=MONITORED_ITEM_QUEUE_SIZE,
                sampling_interval=ua.Double(self.source.sampling_interval_ms),
            )
            for node, result in zip(nodes, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    self._report_once(
                        f"node:{node.nodeid}",
                        "cannot monitor %s on %s (signals %s): %s",
                        node.nodeid.to_string(),
                        self.source.endpoint,
                        ", ".join(p.signal for p in self._signals_by_node[node.nodeid]),
                        result.name,
                    )
            self.counters.connects += 1
            self.link.up()
            self._backoff.reset()
            self._refresh_task = asyncio.create_task(self._refresh(), name=f"opcua-refresh-{self.source.label}")
            async for event in subscription:
                if isinstance(event, DataChangeEvent):
                    self._on_data_change(event)
                elif isinstance(event, StatusChangeEvent) and quality_of(event.notification.Status) is not Quality.GOOD:
                    # asyncua reports a lost connection (BadShutdown) or a dead subscription this way.
                    raise ConnectionError(f"subscription status {_status_name(event.notification.Status)}")
        finally:
            # The refresh stops with the session and forgets its readings: after an outage only
            # values read from the new session are re-sent.
            await self._stop_refresh()
            if self._last:
                # Nobody listens to these machines from now on: say so, so that their last state is
                # not carried over the time nobody watched (the platform counts that time as offline).
                stopped_at = datetime.now(UTC)
                for equipment in self._equipment_with_state():
                    self._sink.put(offline_sample(equipment, stopped_at))
            self._last.clear()
            await self._disconnect(client)

    def _equipment_with_state(self) -> list[str]:
        planned = (p for signals in self._signals_by_node.values() for p in signals)
        return list(dict.fromkeys(p.equipment for p in planned if p.signal == Signal.STATE))

    async def _refresh(self) -> None:
        """Every ``refresh_interval_s``: the last readings, stamped ``refresh_lag_s`` ago, to the sink."""
        loop = asyncio.get_running_loop()
        interval = self.source.refresh_interval_s
        due = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            as_of = datetime.now(UTC) - timedelta(seconds=self.refresh_lag_s)
            for sample in refresh_samples(self._last, as_of):
                self.counters.refreshes += 1
                self._sent_refreshes.setdefault(sample.signal, deque(maxlen=REFRESH_HISTORY)).append(sample)
                self._sink.put(sample)
            due += interval
            if due <= loop.time():  # the loop was starved for a whole interval: do not catch up in a burst
                due = loop.time() + interval

    async def _stop_refresh(self) -> None:
        task, self._refresh_task = self._refresh_task, None
        if task is None:
            return
        await cancel_and_wait(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("%s: the refresh failed: %r", self.source.label, exc, exc_info=exc)

    async def _disconnect(self, client: Client) -> None:
        try:
            await asyncio.wait_for(client.disconnect(), self._request_timeout_s)
        except (OSError, TimeoutError, ua.UaError) as exc:
            logger.debug("disconnect from %s failed: %r", self.source.endpoint, exc)

    def _on_data_change(self, event: DataChangeEvent) -> None:
        self.counters.notifications += 1
        received_at = datetime.now(UTC)
        data_value = event.data.monitored_item.Value or ua.DataValue()  # None: a notification without value
        for planned in self._signals_by_node.get(event.node.nodeid, ()):
            signal = planned.signal
            try:
                sample = datavalue_to_sample(
                    planned.equipment,
                    signal,
                    data_value,
                    received_at,
                    timestamp_source=planned.options.timestamp_source,
                    states=planned.states,
                )
            except UnmappedState as exc:
                self._last.pop(signal, None)
                self.counters.unmapped_states += 1
                self._report_once(
                    f"state:{exc.code}",
                    "%s: state code %r is not mapped to a canonical state; such readings are counted, not forwarded",
                    self.source.label,
                    exc.code,
                )
                continue
            except UnusableReading as exc:
                self._last.pop(signal, None)
                self.counters.rejected += 1
                self._report_once(f"signal:{signal}", "%s: unusable reading: %s", self.source.label, exc.reason)
                continue
            if TS_FALLBACK_FLAG in sample.flags:
                self._report_once(
                    f"ts:{signal}",
                    "%s.%s: %s timestamp missing or implausible; using gateway time (flag %s)",
                    self.source.label,
                    signal,
                    self.source.timestamp_source.value,
                    TS_FALLBACK_FLAG,
                )
            self._last[signal] = LastReading(sample, received_at)
            self.counters.samples += 1
            self._sink.put(sample)
            self._correct_refreshes(sample)

    def _correct_refreshes(self, change: Sample) -> None:
        sent = self._sent_refreshes.get(change.signal)
        if not sent or sent[-1].ts < change.ts:
            return
        corrections = {r.ts: r for r in corrected_refreshes(sent, change)}
        if not corrections:
            return
        self._sent_refreshes[change.signal] = deque((corrections.get(r.ts, r) for r in sent), maxlen=REFRESH_HISTORY)
        for correction in corrections.values():
            self.counters.refresh_corrections += 1
            self._sink.put(correction)
        self._report_once(
            f"late:{change.signal}",
            "%s.%s: a change stamped %s arrived after a refresh stamped %s; %d refresh(es) sent again with its "
            "value (a late notification, or a device clock behind the gateway's: then consider "
            "timestamp_source server or gateway)",
            self.source.label,
            change.signal,
            change.ts.isoformat(),
            sent[-1].ts.isoformat(),
            len(corrections),
        )

    def _report_once(self, key: str, message: str, *args: object) -> None:
        if key in self._reported:
            logger.debug(message, *args)
        else:
            self._reported.add(key)
            logger.warning(message, *args)
