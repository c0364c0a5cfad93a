"""OPC UA collector: every signal of one server read by subscription or by polling, each value a sample.

Per ``OpcUaSource`` the collector holds one asyncua client. After each connect it asks the plan
(``edge.plan.plan_source``) which node each signal of each piece of equipment is read from, with
the signal's own options (``ReadOptions``), and then:

* **subscribes** (one subscription, publishing interval ``sampling_interval_ms`` of the source):
  one monitored item per node and set of options, with the signal's sampling interval, its queue
  size (a server-side queue: several changes of a node between two publishes all arrive, and each
  becomes a sample; nothing is merged by timestamp) and a DataChangeFilter for its trigger and
  deadband (absolute, or percent of the EURange). Items are created in requests of at most the
  server's ``MaxMonitoredItemsPerCall`` (ServerCapabilities.OperationLimits), at most
  ``max_items_per_call`` or 500; a server that still answers BadTooManyOperations gets half as
  many per request. A deadband the server refuses for a node is dropped for that node (logged
  once); a node or server that does not support monitoring is polled instead.
* **polls** signals with ``mode: poll`` (and those the server cannot monitor): a Read of all of
  them every ``poll_interval_ms``, in requests of at most the server's ``MaxNodesPerRead``; a value
  becomes a sample when it changed by the signal's trigger (and absolute deadband).

Each notification or polled value passes one boundary (``_deliver``): it becomes a sample, a
flagged sample or a counted rejection logged once per signal and reason (``edge.opcua_reading``),
and whatever else goes wrong with that one value is caught there, counted as ``unexpected_error``
and logged once with its traceback; the collector goes on with the next one. Overflows are
counted, never silent: the Overflow bit of a value's status (the server's queue for the item was
full; the sample is flagged ``overflow``), and the client-side queue of publishes
(``PublishedChanges``: if the collector falls that far behind, the drops are counted and the
session is renewed so the current values are read again).

When the server is not up yet or goes away, the collector reconnects with backoff, resolves the
plan again and recreates its subscription; the fresh subscription's first notification per node
re-sends the current value, which ingest stores idempotently (same series, same timestamp). When a
session ends the collector sends OFFLINE for each of its machines that has a state signal.

Refresh: the platform knows a signal only while the edge reports it (a reading is valid for a few
of the equipment's ``report_interval_s``), and a value that does not change produces no data
change. So while a session is up, the collector re-sends the last reading of every signal every
``refresh_interval_s`` (``refresh_samples``): same value, raw code, quality and status, gateway
time, ts_source gateway, flag ``refresh``. Only readings of the current session are re-sent: the
list is emptied when a session ends (the refresh stops with it, so the platform sees the outage as
a gap) and refills from the new session's first values. A reading that cannot become a sample (no
value, unmapped state code, a hostile value) removes its signal from the list: a value that is no
longer the device's is never re-sent as current.

A refresh must never put a value after the change that replaced it: in the store, a refresh
stamped after a change but carrying the value before it reads as a state flip, or as a counter
reset followed by the whole count as production. Two measures keep it so:

* a refresh is stamped ``refresh_lag_s`` before it is sent and re-sends only readings received by
  then, so a change the server sampled just before the refresh (still on its way: sampling and
  publishing take up to about two sampling intervals, polling up to one poll interval) is not
  overtaken;
* a change that arrives later still (a stalled event loop, a device clock behind the gateway's)
  stamped at or before refreshes already sent for its signal corrects them
  (``corrected_refreshes``): they are sent again, same timestamp, with the change's value, and the
  store overwrites the wrong point (same series, same timestamp). Corrections are counted and
  logged once per signal.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from asyncua import Client, ua
from asyncua.common.subscription import Subscription

from core.errors import ConfigError
from core.settings import OpcUaSource
from core.signals import OFFLINE, Quality, Signal
from core.tasks import cancel_and_wait
from core.wire import Sample, TimestampSource
from edge.buffer import SampleSink
from edge.errors import UnmappedState, UnusableReading
from edge.lifecycle import BackgroundComponent
from edge.opcua_reading import (
    OVERFLOW_FLAG,
    REJECT_UNEXPECTED,
    TS_FALLBACK_FLAG,
    RejectedReading,
    SignalReader,
    datavalue_to_sample,
    has_overflow,
    quality_of,
    status_name,
)
from edge.opcua_security import OpcUaSecurityError, open_session
from edge.plan import PlannedSignal, SourcePlan, check_source, plan_source
from edge.reconnect import Backoff, LinkState

__all__ = [
    "OFFLINE_FLAG",
    "OVERFLOW_FLAG",
    "REFRESH_FLAG",
    "TS_FALLBACK_FLAG",
    "CollectorCounters",
    "LastReading",
    "OpcUaCollector",
    "corrected_refreshes",
    "datavalue_to_sample",
    "offline_sample",
    "quality_of",
    "refresh_samples",
]

logger = logging.getLogger(__name__)

REFRESH_FLAG = "refresh"
OFFLINE_FLAG = "offline"
# A refresh is stamped this long plus three sampling intervals before it is sent (see the docstring).
REFRESH_LAG_MARGIN_S = 0.5
# Refreshes remembered per signal, for corrections by changes that arrive late.
REFRESH_HISTORY = 16
# Client-side queue of notifications not yet turned into samples; the consumer only converts and
# appends to a list, so this fills only if the event loop is starved for a long time.
NOTIFICATION_QUEUE_SIZE = 100_000
# What a bare asyncua client waits for an answer (asyncua's Client default): a busy server at a
# thousand changing nodes can take seconds to answer a request between its publishes.
REQUEST_TIMEOUT_S = 10.0
# asyncua's connection watchdog probes the server this often, each probe allowed this long; at
# asyncua's 1 s a server late by a second on one probe ended the session (BadShutdown).
WATCHDOG_INTERVAL_S = 5.0
# Monitored items (or nodes read) per request when neither the server nor the source says.
DEFAULT_ITEMS_PER_CALL = 500
# Notifications per publish response: asyncua's default; the server sends the rest in the next ones.
MAX_NOTIFICATIONS_PER_PUBLISH = 10_000

# Problems logged once each (then only counted); beyond this many distinct ones, only counted.
REPORTED_KEYS_MAX = 10_000

_S = ua.StatusCodes
# The server offers no subscriptions at all: every signal is polled.
_NO_SUBSCRIPTIONS = frozenset(
    {_S.BadServiceUnsupported, _S.BadNotSupported, _S.BadNotImplemented, _S.BadTooManySubscriptions}
)
# The server cannot monitor this node: it is polled.
_NOT_MONITORABLE = frozenset({_S.BadServiceUnsupported, _S.BadNotSupported, _S.BadNotImplemented})
# The server refuses the item's filter (a deadband on a node without EURange or of a non-numeric type).
_FILTER_REFUSED = frozenset(
    {
        _S.BadFilterNotAllowed,
        _S.BadMonitoredItemFilterUnsupported,
        _S.BadMonitoredItemFilterInvalid,
        _S.BadDeadbandFilterInvalid,
    }
)
_TRIGGERS = {
    "status": ua.DataChangeTrigger.Status,
    "status_value": ua.DataChangeTrigger.StatusValue,
    "status_value_timestamp": ua.DataChangeTrigger.StatusValueTimestamp,
}
_NO_VALUE = ua.DataValue()

SignalKey = tuple[str, str]  # (equipment, signal)
K = TypeVar("K")
T = TypeVar("T")


def code_name(code: int) -> str:
    return str(ua.status_codes.get_name_and_doc(code)[0])


class NothingToRead(ConnectionError):
    """Connected, but no signal resolved to a node the server lets the collector read."""


class NotificationBacklog(ConnectionError):
    """The client-side queue of publishes overflowed: changes were lost, so the session starts afresh."""


class PublishedChanges(Subscription):
    """An asyncua subscription that queues each publish's data changes as one list, not item by item.

    asyncua's iterator API wraps every monitored-item notification in two objects and passes each
    through an ``asyncio.Queue`` on its own, which cost the collector about as much as turning the
    notification into a sample. Here the publish loop queues the list it decoded (one entry per
    DataChangeNotification) and status changes as they are; ``next_publish`` hands them out in
    order. The queue is bounded in notifications (``queue_notifications``): a publish that does
    not fit is dropped whole and ``on_dropped`` is told how many notifications it held.
    """

    def __init__(
        self,
        client: Client,
        params: ua.CreateSubscriptionParameters,
        *,
        queue_notifications: int,
        on_dropped: Callable[[int], None],
    ):
        super().__init__(client.uaclient.session, params, handler=None, queue_maxsize=1)
        self._published: asyncio.Queue[list[ua.MonitoredItemNotification] | ua.StatusChangeNotification] = (
            asyncio.Queue()
        )
        self._queued = 0  # notifications in ``_published``
        self._queue_notifications = queue_notifications
        self._on_dropped = on_dropped

    @classmethod
    async def create(
        cls,
        client: Client,
        params: ua.CreateSubscriptionParameters,
        *,
        queue_notifications: int,
        on_dropped: Callable[[int], None],
    ) -> PublishedChanges:
        """Create it on the server as ``Client.create_subscription`` does (revised parameters included)."""
        subscription = cls(client, params, queue_notifications=queue_notifications, on_dropped=on_dropped)
        results = await subscription.init()
        revised = client.get_subscription_revised_params(params, results)
        if revised:
            await subscription.update(revised)
        # Known to the client like its own subscriptions: its stale-subscription watchdog covers this one too.
        client._subscriptions.append(subscription)
        return subscription

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        """Called by asyncua's publish loop (and with BadShutdown when it loses the server)."""
        self.last_publish_at = time.monotonic()
        message = publish_result.NotificationMessage
        if message.NotificationData is None:
            return
        self.last_sequence_number = int(message.SequenceNumber)
        for notification in message.NotificationData:
            if isinstance(notification, ua.DataChangeNotification):
                items = notification.MonitoredItems
                if self._queued + len(items) > self._queue_notifications:
                    self._on_dropped(len(items))
                    self._published.put_nowait([])  # wakes the consumer, which then sees the loss
                    continue
                self._queued += len(items)
                self._published.put_nowait(items)
            elif isinstance(notification, ua.StatusChangeNotification):
                self._published.put_nowait(notification)

    async def next_publish(self) -> list[ua.MonitoredItemNotification] | ua.StatusChangeNotification:
        """The next publish's data changes (in the server's order), or a status change."""
        published = await self._published.get()
        if type(published) is list:
            self._queued -= len(published)
        return published


@dataclass(slots=True)  # not frozen: a frozen dataclass costs four times as much to build, once per value
class LastReading:
    """The latest usable reading of one signal in the current session, and when the edge got it."""

    sample: Sample
    received_at: datetime


def refresh_samples(last: Mapping[K, LastReading], as_of: datetime) -> list[Sample]:
    """Re-send of every signal whose last reading was received by ``as_of``, stamped ``as_of``.

    Value, raw code, quality and status are the reading's; ts_source is gateway and the only flag
    is ``refresh``. A signal received after ``as_of`` is left out: it has just been reported, and
    stamping its new value at ``as_of`` could put the value before the change that brought it.
    """
    update = {"ts": as_of, "ts_source": TimestampSource.GATEWAY, "flags": (REFRESH_FLAG,)}
    return [r.sample.model_copy(update=update) for r in last.values() if r.received_at <= as_of]


def corrected_refreshes(sent: Iterable[Sample], change: Sample) -> list[Sample]:
    """Refreshes already sent that ``change`` proves wrong, with its value, raw code, quality and status.

    A refresh stamped at or after the change's timestamp claimed the value the signal had then;
    notifications of one item arrive in order, so that value is the change's.
    """
    now = (change.value, change.raw, change.quality, change.status)
    update = {"value": change.value, "raw": change.raw, "quality": change.quality, "status": change.status}
    return [
        r.model_copy(update=update) for r in sent if r.ts >= change.ts and (r.value, r.raw, r.quality, r.status) != now
    ]


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
    """What one collector did since it started (edge metrics read these)."""

    notifications: int = 0  # data values received (subscription notifications and changed polled values)
    samples: int = 0  # samples produced from them (refreshes not counted)
    unmapped_states: int = 0
    rejected: int = 0  # values that could not become samples, every reason together …
    rejected_by_reason: Counter[str] = field(default_factory=Counter)  # … and by reason (opcua_reading.REJECT_*)
    ts_replaced: int = 0  # device or server times replaced by gateway time (flag ts_fallback) …
    ts_replaced_by_reason: Counter[str] = field(default_factory=Counter)  # … by ts_missing/ts_too_old/ts_future
    overflows: int = 0  # values whose status carried the Overflow bit (the server's queue lost changes)
    client_queue_drops: int = 0  # notifications the client-side queue had to drop
    connects: int = 0
    polls: int = 0  # rounds of reads of the polled signals
    monitored_items: int = 0  # monitored items of the current session
    polled_items: int = 0  # nodes polled in the current session
    refreshes: int = 0  # refresh samples (not counted in ``samples``)
    refresh_corrections: int = 0  # refreshes sent again because a late change proved them wrong
    session_errors: int = 0  # sessions ended by a fault of the collector itself (logged with traceback)


@dataclass(frozen=True, slots=True)
class ItemRequest:
    """What one monitored item asks the server for; signals with equal requests share one item."""

    node_id: ua.NodeId
    sampling_interval_ms: float
    queue_size: int
    trigger: str
    deadband: tuple[str, float] | None  # (kind, value) of the signal's Deadband

    @property
    def has_filter(self) -> bool:
        return self.deadband is not None or self.trigger != "status_value"

    def without_filter(self) -> ItemRequest:
        return ItemRequest(self.node_id, self.sampling_interval_ms, self.queue_size, "status_value", None)

    def create_request(self, client_handle: int) -> ua.MonitoredItemCreateRequest:
        parameters = ua.MonitoringParameters()
        parameters.ClientHandle = client_handle
        parameters.SamplingInterval = float(self.sampling_interval_ms)
        parameters.QueueSize = self.queue_size
        parameters.DiscardOldest = True
        if self.has_filter:
            parameters.Filter = data_change_filter(self.trigger, self.deadband)
        request = ua.MonitoredItemCreateRequest()
        request.ItemToMonitor = ua.ReadValueId(NodeId=self.node_id, AttributeId=ua.AttributeIds.Value)
        request.MonitoringMode = ua.MonitoringMode.Reporting
        request.RequestedParameters = parameters
        return request


def data_change_filter(trigger: str, deadband: tuple[str, float] | None) -> ua.DataChangeFilter:
    """The DataChangeFilter for a signal's trigger and deadband (OPC 10000-4, 7.22.2)."""
    flt = ua.DataChangeFilter()
    flt.Trigger = _TRIGGERS[trigger]
    if deadband is None:
        flt.DeadbandType = ua.DeadbandType.None_
    else:
        kind, value = deadband
        flt.DeadbandType = ua.DeadbandType.Absolute if kind == "absolute" else ua.DeadbandType.Percent
        flt.DeadbandValue = float(value)
    return flt


def item_request(planned: PlannedSignal) -> ItemRequest:
    options = planned.options
    deadband = None if options.deadband is None else (options.deadband.kind, options.deadband.value)
    return ItemRequest(planned.node_id, options.sampling_interval_ms, options.queue_size, options.trigger, deadband)


def reader_for(planned: PlannedSignal) -> SignalReader:
    options = planned.options
    return SignalReader(
        planned.equipment,
        planned.signal,
        timestamp_source=options.timestamp_source,
        earliest_timestamp=options.earliest_timestamp,
        max_future_skew=timedelta(seconds=options.max_future_skew_s),
        states=planned.states,
    )


def chunked(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class PolledNode:
    """A node read every poll interval, the signals read from it, and when a new value counts as a change."""

    node_id: ua.NodeId
    readers: tuple[SignalReader, ...]
    trigger: str
    absolute_deadband: float | None
    last: ua.DataValue | None = None

    def changed(self, value: ua.DataValue) -> bool:
        """Whether ``value`` differs from the last one read by the trigger and absolute deadband."""
        last, self.last = self.last, value
        if last is None or last.StatusCode != value.StatusCode:
            return True
        if self.trigger == "status":
            return False
        if self.trigger == "status_value_timestamp" and last.SourceTimestamp != value.SourceTimestamp:
            return True
        if last.Value == value.Value:
            return False
        if self.absolute_deadband is not None and _within(last.Value, value.Value, self.absolute_deadband):
            self.last = last  # the deadband is measured from the last value reported
            return False
        return True


def _within(before: ua.Variant | None, after: ua.Variant | None, deadband: float) -> bool:
    a = before.Value if before is not None else None
    b = after.Value if after is not None else None
    numbers = (int, float)
    if not (isinstance(a, numbers) and isinstance(b, numbers)) or isinstance(a, bool) or isinstance(b, bool):
        return False
    difference = abs(float(b) - float(a))
    return math.isfinite(difference) and difference <= deadband


class OpcUaCollector(BackgroundComponent):
    """Reads one OPC UA server (subscription and/or polling), puts a sample for every change into the
    sink, and re-sends every signal's last reading every ``refresh_interval_s`` while the session is up.
    """

    def __init__(
        self,
        source: OpcUaSource,
        sink: SampleSink,
        *,
        backoff: Backoff | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        watchdog_interval_s: float = WATCHDOG_INTERVAL_S,
        refresh_lag_s: float | None = None,
    ):
        self.source = source
        self._sink = sink
        self._put = sink.put  # bound once: called for every value
        self._backoff = backoff or Backoff(0.5, 10.0)
        self._request_timeout_s = request_timeout_s
        self._watchdog_interval_s = watchdog_interval_s
        self._refresh_lag_override = refresh_lag_s
        self.refresh_lag_s = (
            REFRESH_LAG_MARGIN_S + 3 * source.sampling_interval_ms / 1000 if refresh_lag_s is None else refresh_lag_s
        )
        check_source(source, f"opcua[{source.label}]")
        self.counters = CollectorCounters()
        # This session's monitored items: client handle -> the signals read from that item.
        self._items: dict[int, tuple[SignalReader, ...]] = {}
        # This session's equipment with a state signal (they get OFFLINE when the session ends).
        self._state_equipment: list[str] = []
        # Last usable reading per signal in the current session; what the refresh re-sends.
        self._last: dict[SignalKey, LastReading] = {}
        # Per signal, the last refreshes sent (kept across sessions: the first notifications after
        # a reconnect can prove a refresh from before the outage wrong).
        self._sent_refreshes: dict[SignalKey, deque[Sample]] = {}
        self._next_handle = 1
        self._backlog = False
        self.link = LinkState(logger, f"OPC UA server {source.endpoint} ({source.label})")
        # Log each problem once per key, then only count it.
        self._reported: set[str] = set()

    def _task_name(self) -> str:
        return f"opcua-{self.source.label}"

    async def _run(self) -> None:
        while True:
            delay: float | None = None
            try:
                await self._session()
            except ConfigError:
                raise  # a setting no retry mends (a password variable unset): the agent stops with the reason
            except (OSError, TimeoutError, ua.UaError) as exc:  # ConnectionError is an OSError
                self.link.down(f"{type(exc).__name__}: {exc}")
                if isinstance(exc, OpcUaSecurityError) and exc.retry_after_s:
                    # A refused user or certificate: retrying fast only risks locking the account.
                    delay = max(self._backoff.next_delay(), exc.retry_after_s)
            except Exception as exc:  # a fault of this code, not of the server: the session starts afresh
                self.counters.session_errors += 1
                self.link.down(f"{type(exc).__name__}: {exc}")
                self._report_once(
                    f"session-error:{type(exc).__name__}",
                    "%s: the session failed unexpectedly; reconnecting",
                    self.source.label,
                    exc_info=exc,
                )
            await asyncio.sleep(self._backoff.next_delay() if delay is None else delay)

    # --- one session -------------------------------------------------------------------------

    async def _session(self) -> None:
        """Connect, read what the plan lists until the connection, subscription or a poll fails."""
        client = Client(
            self.source.endpoint,
            timeout=self._request_timeout_s,
            watchdog_intervall=self._watchdog_interval_s,
        )
        await open_session(client, self.source.security)  # a refused certificate or user says what to do
        tasks: list[asyncio.Task[None]] = []
        try:
            plan = await plan_source(client, self.source)
            self._report_unresolved(plan)
            self._state_equipment = list(dict.fromkeys(p.equipment for p in plan.signals if p.signal == Signal.STATE))
            per_call = await self._items_per_call(client)
            subscribed = [p for p in plan.signals if p.options.mode == "subscribe"]
            polled = [p for p in plan.signals if p.options.mode == "poll"]
            subscription = None
            if subscribed:
                subscription, not_monitorable = await self._subscribe(client, subscribed, per_call)
                polled += not_monitorable
            polled_nodes = self._polled_nodes(polled)
            self.counters.polled_items = sum(len(nodes) for nodes in polled_nodes.values())
            self._set_refresh_lag(subscribed if subscription is not None else [], polled)
            if not self._items and not polled_nodes:
                # Nothing would notice the server going away; and a server that is still starting may
                # offer the nodes later: try again (the plan is resolved anew) with backoff.
                raise NothingToRead(
                    f"none of the {len(plan.signals) + len(plan.unresolved)} signals can be read (see above)"
                )

            self.counters.connects += 1
            self.link.up()
            self._backoff.reset()
            label = self.source.label
            if subscription is not None:
                tasks.append(asyncio.create_task(self._consume(subscription), name=f"opcua-notify-{label}"))
            for interval_ms, nodes in polled_nodes.items():
                poll = self._poll(client, nodes, interval_ms / 1000, per_call)
                tasks.append(asyncio.create_task(poll, name=f"opcua-poll-{label}-{interval_ms}ms"))
            tasks.append(asyncio.create_task(self._refresh(), name=f"opcua-refresh-{label}"))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the exception that ended the session, if any
            raise ConnectionError("the subscription was closed")
        finally:
            for task in tasks:
                await cancel_and_wait(task)
            self._end_session()
            await self._disconnect(client)

    def _end_session(self) -> None:
        """The refresh stopped with the session; forget its readings and say which machines nobody watches."""
        if self._last:
            # Nobody listens to these machines from now on: say so, so that their last state is not
            # carried over the time nobody watched (the platform counts that time as offline).
            heard = {equipment for equipment, _ in self._last}
            stopped_at = datetime.now(UTC)
            for equipment in self._state_equipment:
                if equipment in heard:
                    self._sink.put(offline_sample(equipment, stopped_at))
        self._last.clear()
        self._items = {}
        self._next_handle = 1
        self._backlog = False
        self.counters.monitored_items = 0
        self.counters.polled_items = 0

    def _set_refresh_lag(self, subscribed: list[PlannedSignal], polled: list[PlannedSignal]) -> None:
        if self._refresh_lag_override is not None:
            return
        sampling_ms = max(
            [float(self.source.sampling_interval_ms), *(p.options.sampling_interval_ms for p in subscribed)]
        )
        poll_ms = max([0, *(p.options.poll_interval_ms for p in polled)])
        self.refresh_lag_s = REFRESH_LAG_MARGIN_S + 3 * sampling_ms / 1000 + poll_ms / 1000

    async def _disconnect(self, client: Client) -> None:
        try:
            await asyncio.wait_for(client.disconnect(), self._request_timeout_s)
        except (OSError, TimeoutError, ua.UaError) as exc:
            logger.debug("disconnect from %s failed: %r", self.source.endpoint, exc)

    def _report_unresolved(self, plan: SourcePlan) -> None:
        for equipment, signal, reason in plan.unresolved:
            self._report_once(
                f"unresolved:{equipment}.{signal}:{reason}",
                "%s: signal %s of %s not found, not read: %s",
                self.source.label,
                signal,
                equipment,
                reason,
            )

    async def _items_per_call(self, client: Client) -> int:
        """Monitored items or nodes per request: the source's or 500, within the server's stated limits."""
        wanted = self.source.max_items_per_call or DEFAULT_ITEMS_PER_CALL
        limits = await self._operation_limits(
            client,
            ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
            ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
        )
        return min([wanted, *(limit for limit in limits if limit > 0)])

    async def _operation_limits(self, client: Client, *node_ids: int) -> list[int]:
        """The server's OperationLimits (0 where it states none or cannot be read: 0 means 'no limit')."""
        parameters = ua.ReadParameters()
        value_attribute = ua.AttributeIds.Value
        parameters.NodesToRead = [
            ua.ReadValueId(NodeId=ua.NodeId(ua.Int32(i)), AttributeId=value_attribute) for i in node_ids
        ]
        values = await client.uaclient.read(parameters)
        limits = []
        for value in values:
            number = value.Value.Value if value.Value is not None else None
            good = value.StatusCode is None or value.StatusCode.is_good()
            limits.append(number if good and type(number) is int and number > 0 else 0)
        return limits

    # --- subscription --------------------------------------------------------------------------

    async def _subscribe(
        self, client: Client, signals: list[PlannedSignal], per_call: int
    ) -> tuple[PublishedChanges | None, list[PlannedSignal]]:
        """One subscription with a monitored item per node and options; returns it (None: the server
        has no subscriptions) and the signals the server cannot monitor, to be polled.
        """
        parameters = ua.CreateSubscriptionParameters()
        parameters.RequestedPublishingInterval = float(self.source.sampling_interval_ms)
        parameters.RequestedLifetimeCount = 10_000
        parameters.RequestedMaxKeepAliveCount = client.get_keepalive_count(float(self.source.sampling_interval_ms))
        parameters.MaxNotificationsPerPublish = MAX_NOTIFICATIONS_PER_PUBLISH
        parameters.PublishingEnabled = True
        try:
            subscription = await PublishedChanges.create(
                client, parameters, queue_notifications=NOTIFICATION_QUEUE_SIZE, on_dropped=self._on_backlog
            )
        except ua.UaStatusCodeError as exc:
            if exc.code not in _NO_SUBSCRIPTIONS:
                raise
            self._report_once(
                "no-subscriptions",
                "%s: the server offers no subscriptions (%s); polling all %d signals",
                self.source.label,
                code_name(exc.code),
                len(signals),
            )
            return None, signals

        groups: dict[ItemRequest, list[PlannedSignal]] = {}
        for planned in signals:
            groups.setdefault(item_request(planned), []).append(planned)
        unfiltered: dict[ItemRequest, list[PlannedSignal]] = {}
        not_monitorable: list[PlannedSignal] = []
        for attempt in (groups, unfiltered):
            for request, code in await self._create_items(subscription, attempt, per_call):
                planned_here = attempt[request]
                names = ", ".join(f"{p.equipment}.{p.signal}" for p in planned_here)
                if code in _FILTER_REFUSED and request.has_filter:
                    self._report_once(
                        f"filter:{request.node_id}",
                        "%s: the server refuses the trigger/deadband of %s (%s: %s); monitoring without it",
                        self.source.label,
                        request.node_id.to_string(),
                        names,
                        code_name(code),
                    )
                    unfiltered.setdefault(request.without_filter(), []).extend(planned_here)
                elif code in _NOT_MONITORABLE:
                    self._report_once(
                        f"poll:{request.node_id}",
                        "%s: the server cannot monitor %s (%s: %s); polling it",
                        self.source.label,
                        request.node_id.to_string(),
                        names,
                        code_name(code),
                    )
                    not_monitorable.extend(planned_here)
                else:
                    self._report_once(
                        f"node:{request.node_id}",
                        "%s: cannot monitor %s (signals %s): %s",
                        self.source.label,
                        request.node_id.to_string(),
                        names,
                        code_name(code),
                    )
        self.counters.monitored_items = len(self._items)
        return subscription, not_monitorable

    async def _create_items(
        self, subscription: Subscription, groups: Mapping[ItemRequest, list[PlannedSignal]], per_call: int
    ) -> list[tuple[ItemRequest, int]]:
        """Create the items in requests of ``per_call`` (halved while the server says BadTooManyOperations);
        registers each created item's readers and returns the refused ones with their status code.
        """
        pending = [(self._next_handle + n, request) for n, request in enumerate(groups)]
        self._next_handle += len(pending)
        # Readers are registered before the items exist: the first notifications may come before
        # the last request returns (they wait in the subscription's queue until consumed anyway).
        for handle, request in pending:
            self._items[handle] = tuple(reader_for(p) for p in groups[request])
        refused: list[tuple[ItemRequest, int]] = []
        start = 0
        while start < len(pending):
            chunk = pending[start : start + per_call]
            try:
                results = await subscription.create_monitored_items(
                    [request.create_request(handle) for handle, request in chunk]
                )
            except ua.UaStatusCodeError as exc:
                if exc.code != _S.BadTooManyOperations or per_call == 1:
                    raise
                per_call = max(1, per_call // 2)
                self._report_once(
                    "too-many-operations",
                    "%s: the server refuses %d monitored items per request; trying %d",
                    self.source.label,
                    len(chunk),
                    per_call,
                )
                continue
            for (handle, request), result in zip(chunk, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    del self._items[handle]
                    refused.append((request, result.value))
            start += len(chunk)
        return refused

    def _on_backlog(self, dropped: int) -> None:
        """The client-side queue is full and a publish was dropped: count it; the consumer ends the session."""
        self.counters.client_queue_drops += dropped
        self._backlog = True

    async def _consume(self, subscription: PublishedChanges) -> None:
        items = self._items
        deliver = self._deliver
        while True:
            published = await subscription.next_publish()
            if isinstance(published, ua.StatusChangeNotification):
                if quality_of(published.Status) is not Quality.GOOD:
                    # asyncua reports a lost connection (BadShutdown) or a dead subscription this way.
                    raise ConnectionError(f"subscription status {status_name(published.Status)}")
            else:
                received_at = datetime.now(UTC)  # the publish's arrival: one time for all its changes
                for notification in published:
                    readers = items.get(notification.ClientHandle)
                    if readers is not None:
                        deliver(readers, notification.Value, received_at)
            if self._backlog:
                raise NotificationBacklog(
                    f"notifications arrived faster than the collector took them: {self.counters.client_queue_drops} "
                    f"dropped so far from the client-side queue of {NOTIFICATION_QUEUE_SIZE}; subscribing afresh"
                )

    # --- polling -------------------------------------------------------------------------------

    def _polled_nodes(self, signals: list[PlannedSignal]) -> dict[int, list[PolledNode]]:
        """Polled signals grouped by poll interval, then by node and trigger (one read per node)."""
        groups: dict[tuple[int, ua.NodeId, str, float | None], list[PlannedSignal]] = {}
        for planned in signals:
            options = planned.options
            deadband = options.deadband
            absolute = None
            if deadband is not None and deadband.kind == "absolute":
                absolute = deadband.value
            elif deadband is not None:
                self._report_once(
                    f"percent-poll:{planned.equipment}.{planned.signal}",
                    "%s: %s.%s is polled; a percent deadband applies to subscriptions only and is ignored",
                    self.source.label,
                    planned.equipment,
                    planned.signal,
                )
            key = (options.poll_interval_ms, planned.node_id, options.trigger, absolute)
            groups.setdefault(key, []).append(planned)
        by_interval: dict[int, list[PolledNode]] = {}
        for (interval_ms, node_id, trigger, absolute), planned_here in groups.items():
            readers = tuple(reader_for(p) for p in planned_here)
            by_interval.setdefault(interval_ms, []).append(PolledNode(node_id, readers, trigger, absolute))
        return by_interval

    async def _poll(self, client: Client, nodes: list[PolledNode], interval_s: float, per_call: int) -> None:
        """Read ``nodes`` every ``interval_s`` (in requests of ``per_call``); changed values become samples."""
        loop = asyncio.get_running_loop()
        requests = [
            [ua.ReadValueId(NodeId=node.node_id, AttributeId=ua.AttributeIds.Value) for node in chunk]
            for chunk in chunked(nodes, per_call)
        ]
        due = loop.time()
        while True:
            for chunk, to_read in zip(chunked(nodes, per_call), requests, strict=True):
                parameters = ua.ReadParameters()
                parameters.MaxAge = 0
                parameters.TimestampsToReturn = ua.TimestampsToReturn.Both
                parameters.NodesToRead = to_read
                values = await client.uaclient.read(parameters)
                received_at = datetime.now(UTC)
                for node, value in zip(chunk, values, strict=True):
                    if node.changed(value):
                        self._deliver(node.readers, value, received_at)
            self.counters.polls += 1
            due += interval_s
            if due <= loop.time():  # the reads took longer than the interval: do not catch up in a burst
                due = loop.time() + interval_s
            await asyncio.sleep(due - loop.time())

    # --- the boundary ----------------------------------------------------------------------------

    def _deliver(
        self, readers: tuple[SignalReader, ...], data_value: ua.DataValue | None, received_at: datetime
    ) -> None:
        """One data value from the server, turned into a sample per signal read from it.

        The one catch of the collector for what a value does: a reading that cannot become a
        sample is counted by its reason and logged once per signal and reason; anything else it
        raises (a value no check foresaw) is counted as ``unexpected_error`` and logged once with
        its traceback. Either way the next value is read as if nothing had happened.
        """
        counters = self.counters
        counters.notifications += 1
        if data_value is None:  # a notification without a DataValue
            data_value = _NO_VALUE
        status = data_value.StatusCode
        if status is not None and status.value and has_overflow(status):
            self._count_overflow(readers)
        last = self._last
        for reader in readers:
            try:
                sample = reader.read(data_value, received_at)
            except UnmappedState as exc:
                self._unmapped(reader, exc)
                continue
            except UnusableReading as exc:
                self._reject(reader, exc.kind if isinstance(exc, RejectedReading) else "unusable", exc.reason)
                continue
            except Exception as exc:  # the per-value boundary (docstring): never a dead collector
                self._reject(reader, REJECT_UNEXPECTED, f"{type(exc).__name__}: {exc}", exc_info=exc)
                continue
            if sample.flags and TS_FALLBACK_FLAG in sample.flags:
                self._count_ts_replaced(reader, sample)
            last[reader.key] = LastReading(sample, received_at)
            counters.samples += 1
            self._put(sample)
            if self._sent_refreshes:
                self._correct_refreshes(reader.key, sample)

    def _unmapped(self, reader: SignalReader, exc: UnmappedState) -> None:
        self._last.pop(reader.key, None)
        self.counters.unmapped_states += 1
        self._report_once(
            f"state:{reader.equipment}:{exc.code}",
            "%s: state value %r of %s is not mapped to a canonical state; such readings are counted, not forwarded",
            self.source.label,
            exc.code,
            reader.equipment,
        )

    def _reject(self, reader: SignalReader, kind: str, reason: str, exc_info: BaseException | None = None) -> None:
        self._last.pop(reader.key, None)
        self.counters.rejected += 1
        self.counters.rejected_by_reason[kind] += 1
        self._report_once(
            f"reject:{reader.equipment}.{reader.signal}:{kind}",
            "%s: %s reading of %s refused (%s): %s; such readings are counted, not forwarded",
            self.source.label,
            reader.signal,
            reader.equipment,
            kind,
            reason,
            exc_info=exc_info,
        )

    def _count_overflow(self, readers: tuple[SignalReader, ...]) -> None:
        self.counters.overflows += 1
        reader = readers[0]
        self._report_once(
            f"overflow:{reader.equipment}.{reader.signal}",
            "%s: the server's queue for %s.%s overflowed: changes before the one flagged %r were lost "
            "(raise queue_size or lower sampling_interval_ms); counted from now on",
            self.source.label,
            reader.equipment,
            reader.signal,
            OVERFLOW_FLAG,
        )

    def _count_ts_replaced(self, reader: SignalReader, sample: Sample) -> None:
        reason = sample.flags[1] if len(sample.flags) > 1 else TS_FALLBACK_FLAG
        self.counters.ts_replaced += 1
        self.counters.ts_replaced_by_reason[reason] += 1
        self._report_once(
            f"ts:{reader.equipment}.{reader.signal}:{reason}",
            "%s: %s.%s: the chosen timestamp is unusable (%s); using gateway time (flag %s)",
            self.source.label,
            reader.equipment,
            reader.signal,
            reason,
            TS_FALLBACK_FLAG,
        )

    # --- refresh -------------------------------------------------------------------------------

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
                key = (sample.equipment, sample.signal)
                self._sent_refreshes.setdefault(key, deque(maxlen=REFRESH_HISTORY)).append(sample)
                self._sink.put(sample)
            due += interval
            if due <= loop.time():  # the loop was starved for a whole interval: do not catch up in a burst
                due = loop.time() + interval

    def _correct_refreshes(self, key: SignalKey, change: Sample) -> None:
        sent = self._sent_refreshes.get(key)
        if not sent or sent[-1].ts < change.ts:
            return
        corrections = {r.ts: r for r in corrected_refreshes(sent, change)}
        if not corrections:
            return
        self._sent_refreshes[key] = deque((corrections.get(r.ts, r) for r in sent), maxlen=REFRESH_HISTORY)
        for correction in corrections.values():
            self.counters.refresh_corrections += 1
            self._sink.put(correction)
        self._report_once(
            f"late:{change.equipment}.{change.signal}",
            "%s.%s: a change stamped %s arrived after a refresh stamped %s; %d refresh(es) sent again with its "
            "value (a late notification, or a device clock behind the gateway's: then consider "
            "timestamp_source server or gateway)",
            change.equipment,
            change.signal,
            change.ts.isoformat(),
            sent[-1].ts.isoformat(),
            len(corrections),
        )

    def _report_once(self, key: str, message: str, *args: object, exc_info: BaseException | None = None) -> None:
        # Bounded: a device sending ever new values (state codes, reasons) cannot grow it without end.
        if key in self._reported or len(self._reported) >= REPORTED_KEYS_MAX:
            logger.debug(message, *args)
        else:
            self._reported.add(key)
            logger.warning(message, *args, exc_info=exc_info)
