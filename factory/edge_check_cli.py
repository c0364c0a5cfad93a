"""``factory edge check``: connect to every OPC UA source and print what each signal resolved to.

Per source: the machines found (discovery: where, and the nameplate), then per machine every
signal with the node it resolved to (``nsu=`` form, stable across servers), its current value
and the canonical value the agent would send (a state mapped by the state map; a number as it
is). Exit 0 when every source answered and every signal resolved; 1 with the reason for each
source that could not be reached and each address that did not resolve. Warnings (equipment the
asset model does not know, a state the map does not know, a bad status) do not change the exit.
``--json`` prints the same as one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from asyncua import Client, ua

from core.assets import AssetModel
from core.errors import ConfigError
from core.settings import OpcUaSource, Settings
from core.signals import Signal
from edge.addressing import AddressSpace, NamespaceTable
from edge.opcua_security import open_session
from edge.plan import PlannedSignal, SourcePlan, check_source, plan_source

CONNECT_TIMEOUT_S = 10.0


def add_edge_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="check: print the result as JSON")
    p.add_argument(
        "--timeout", type=float, default=CONNECT_TIMEOUT_S, help="check: seconds to wait for each server (default 10)"
    )


@dataclass(slots=True)
class SignalCheck:
    equipment: str
    signal: str
    address: str
    node: str
    value: Any  # the device value as JSON can hold it (text for LocalizedText, NodeId, ...)
    status: str
    canonical: Any  # what the agent sends: a canonical state, a number; None when it would send nothing


@dataclass(slots=True)
class MachineCheck:
    browse_name: str
    address: str
    equipment: str | None
    identification: dict[str, str]


@dataclass(slots=True)
class SourceCheck:
    endpoint: str
    label: str
    error: str | None = None
    machines: list[MachineCheck] = field(default_factory=list)
    signals: list[SignalCheck] = field(default_factory=list)
    unresolved: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.unresolved


def run_edge_check(settings: Settings, assets: AssetModel, args: argparse.Namespace) -> int:
    if settings.edge is None or not settings.edge.opcua:
        print(f"factory edge check: {settings.source} has no edge.opcua sources")
        return 1
    for n, source in enumerate(settings.edge.opcua):
        check_source(source, f"edge.opcua[{n}]")
    timeout = getattr(args, "timeout", CONNECT_TIMEOUT_S)
    checks = asyncio.run(check_sources(settings.edge.opcua, assets, timeout_s=timeout))
    if args.json:
        doc = {"ok": all(c.ok for c in checks), "sources": [{**asdict(c), "ok": c.ok} for c in checks]}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        for check in checks:
            print_source(check)
    return 0 if all(c.ok for c in checks) else 1


async def check_sources(sources: Sequence[OpcUaSource], assets: AssetModel, *, timeout_s: float) -> list[SourceCheck]:
    return list(await asyncio.gather(*(check_one(s, assets, timeout_s=timeout_s) for s in sources)))


async def check_one(source: OpcUaSource, assets: AssetModel, *, timeout_s: float) -> SourceCheck:
    """Connect, plan the source as the agent would, read every planned node once."""
    check = SourceCheck(endpoint=source.endpoint, label=source.label)
    client = Client(source.endpoint, timeout=timeout_s)
    try:
        await asyncio.wait_for(open_session(client, source.security), timeout_s)
    except ConfigError as exc:  # a security setting no retry mends (a certificate, a password variable)
        check.error = f"cannot connect: {exc}"
        return check
    except (OSError, TimeoutError, ua.UaError) as exc:  # security refusals are UaErrors too
        check.error = f"cannot connect: {type(exc).__name__}: {exc}"
        return check
    try:
        plan = await asyncio.wait_for(plan_source(client, source), timeout_s * 6)
        space = await AddressSpace.open(client)
        values = await space.read([p.node_id for p in plan.signals], ua.AttributeIds.Value)
        _fill(check, plan, values, space.namespaces, assets)
    except (OSError, TimeoutError, ua.UaError) as exc:
        check.error = f"lost the server while checking: {type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(OSError, TimeoutError, ua.UaError):
            await asyncio.wait_for(client.disconnect(), timeout_s)
    return check


def _fill(
    check: SourceCheck, plan: SourcePlan, values: list[ua.DataValue], namespaces: NamespaceTable, assets: AssetModel
) -> None:
    for machine in plan.machines:
        check.machines.append(
            MachineCheck(machine.browse_name, machine.address, machine.equipment, dict(machine.identification))
        )
        if machine.equipment is None:
            check.warnings.append(f"{machine.address} ({machine.browse_name}) is not in discover.equipment: not read")
    with_state = {p.equipment for p in plan.signals if p.signal == Signal.STATE}
    for machine in plan.machines:
        if machine.equipment is not None and machine.equipment not in with_state:
            check.warnings.append(f"{machine.equipment}: no MachineryItemState found; its state is not read")
    for equipment, signal, reason in plan.unresolved:
        check.unresolved.append({"equipment": equipment, "signal": signal, "reason": reason})
    for planned, value in zip(plan.signals, values, strict=True):
        check.signals.append(_signal_check(planned, value, namespaces, check.warnings))
    for equipment in dict.fromkeys(s.equipment for s in plan.signals):
        if equipment not in assets:
            check.warnings.append(f"equipment {equipment} is not in the asset model: ingest would dead-letter it")


def _signal_check(
    planned: PlannedSignal, value: ua.DataValue, namespaces: NamespaceTable, warnings: list[str]
) -> SignalCheck:
    status = value.StatusCode.name if value.StatusCode is not None else "Good"
    device = value.Value.Value if value.Value is not None else None
    where = f"{planned.equipment}.{planned.signal}"
    if value.StatusCode is not None and not value.StatusCode.is_good():
        warnings.append(f"{where}: status {status}")
    canonical: Any = None
    if planned.signal == Signal.STATE and planned.states is not None:
        shown: Any = planned.states.raw(device) if device is not None else None
        state = planned.states.map(device) if device is not None else None
        canonical = state.value if state is not None else None
        if device is not None and state is None:
            warnings.append(f"{where}: state {shown!r} is not in the state map; the agent would count it, not send it")
    else:
        shown = _json_value(device, namespaces)
        if isinstance(device, bool) or (isinstance(device, int | float) and math.isfinite(device)):
            canonical = device
        elif device is not None:
            warnings.append(f"{where}: {type(device).__name__} {shown!r} is not a number")
    return SignalCheck(
        equipment=planned.equipment,
        signal=planned.signal,
        address=planned.address,
        node=namespaces.show(planned.node_id),
        value=shown,
        status=status,
        canonical=canonical,
    )


def _json_value(value: Any, namespaces: NamespaceTable) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, ua.LocalizedText):
        return value.Text
    if isinstance(value, ua.NodeId):
        return namespaces.show(value)
    return str(value)[:128]


def print_source(check: SourceCheck) -> None:
    name = check.endpoint if check.label == check.endpoint else f"{check.endpoint} ({check.label})"
    if check.error is not None:
        print(f"source {name}: FAILED: {check.error}")
        return
    verdict = "ok" if check.ok else "FAILED"
    print(f"source {name}: {verdict}, {len(check.signals)} signals")
    by_equipment: dict[str, list[SignalCheck]] = {}
    for s in check.signals:
        by_equipment.setdefault(s.equipment, []).append(s)
    machines = {m.equipment: m for m in check.machines if m.equipment is not None}
    for m in check.machines:
        if m.equipment is None:
            print(f"  machine {m.browse_name} at {m.address}: not in discover.equipment (not read)")
    for equipment, signals in by_equipment.items():
        machine = machines.get(equipment)
        if machine is not None:
            plate = ", ".join(f"{k} {v}" for k, v in machine.identification.items())
            print(f"  machine {equipment} at {machine.address}: {plate or 'no identification'}")
        else:
            print(f"  machine {equipment}")
        rows = [("signal", "value", "canonical", "node", "address")]
        rows += [(s.signal, _cell(s.value, s.status), _cell(s.canonical), s.node, s.address) for s in signals]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            print("    " + "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    for u in check.unresolved:
        who = ".".join(x for x in (u["equipment"], u["signal"]) if x)
        print(f"  UNRESOLVED {who}: {u['reason']}")
    for warning in check.warnings:
        print(f"  warning: {warning}")


def _cell(value: Any, status: str = "Good") -> str:
    text = "-" if value is None else str(value)
    return text if status == "Good" else f"{text} ({status})"
