"""What one OPC UA source reads: every signal resolved to a node, with its options and state mapper.

``plan_source(client, source)`` runs once per session, after connect (NodeIds by namespace URI and
browse paths are resolved anew after every reconnect: a server restart may renumber them). The
collector subscribes (or polls) what the plan lists; ``unresolved`` holds each configured signal
that could not be found, with the reason, for the collector to report once and ``factory edge
check`` to print.

STUB (lead, 2026-11-30): plain ``ns=`` / ``i=`` NodeIds of ``source.nodes`` only. The edge-address
branch adds ``nsu=`` NodeIds, browse paths and discovery by profile behind the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

from asyncua import Client, ua

from core.errors import ConfigError
from core.settings import Deadband, OpcUaSource, SignalSpec
from core.signals import Signal
from core.wire import TimestampSource
from edge.states import StateMapper


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """One signal's effective options: its spec's where set, else the source's."""

    sampling_interval_ms: float
    queue_size: int
    deadband: Deadband | None
    trigger: Literal["status", "status_value", "status_value_timestamp"]
    mode: Literal["subscribe", "poll"]
    poll_interval_ms: int
    timestamp_source: TimestampSource
    earliest_timestamp: datetime
    max_future_skew_s: float


@dataclass(frozen=True, slots=True)
class PlannedSignal:
    equipment: str
    signal: str
    node_id: ua.NodeId
    address: str  # as configured or discovered, for messages
    options: ReadOptions
    states: StateMapper | None  # for the state signal only


@dataclass(slots=True)
class SourcePlan:
    signals: list[PlannedSignal] = field(default_factory=list)
    unresolved: list[tuple[str, str, str]] = field(default_factory=list)  # (equipment, signal, reason)

    @property
    def equipment(self) -> list[str]:
        return list(dict.fromkeys(s.equipment for s in self.signals))


T = TypeVar("T")


def _pick(own: T | None, default: T) -> T:
    return default if own is None else own


def read_options(source: OpcUaSource, spec: SignalSpec) -> ReadOptions:
    return ReadOptions(
        sampling_interval_ms=_pick(spec.sampling_interval_ms, float(source.sampling_interval_ms)),
        queue_size=_pick(spec.queue_size, source.queue_size),
        deadband=_pick(spec.deadband, source.deadband),
        trigger=_pick(spec.trigger, source.trigger),
        mode=_pick(spec.mode, source.mode),
        poll_interval_ms=_pick(spec.poll_interval_ms, source.poll_interval_ms),
        timestamp_source=_pick(spec.timestamp_source, source.timestamp_source),
        earliest_timestamp=source.earliest_timestamp,
        max_future_skew_s=source.max_future_skew_s,
    )


def check_source(source: OpcUaSource, where: str) -> None:
    """ConfigError for what can be known wrong without a server (called at start and by check-config)."""
    for signal in source.nodes:
        if not signal.isascii() or not signal.replace("_", "a").isalnum() or not signal[0].islower():
            raise ConfigError("edge settings", "a signal name is lower_snake_case", field=f"{where}.nodes.{signal}")
        address = source.spec(signal).address
        try:
            ua.NodeId.from_string(address)
        except (ValueError, ua.UaError) as exc:
            raise ConfigError(
                "edge settings", f"invalid NodeId {address!r}: {exc}", field=f"{where}.nodes.{signal}"
            ) from None


async def plan_source(client: Client, source: OpcUaSource) -> SourcePlan:
    """Every configured signal of ``source`` resolved on the connected ``client``."""
    plan = SourcePlan()
    assert source.equipment is not None  # the stub knows no discovery
    for signal in source.nodes:
        spec = source.spec(signal)
        states = None
        if signal == Signal.STATE:
            states = StateMapper(spec.state_map if spec.state_map is not None else source.state_map)
        plan.signals.append(
            PlannedSignal(
                equipment=source.equipment,
                signal=signal,
                node_id=ua.NodeId.from_string(spec.address),
                address=spec.address,
                options=read_options(source, spec),
                states=states,
            )
        )
    return plan
