"""Edge configuration for the simulated factory: the OPC UA and meter sources an edge agent needs.

``edge_sources(assets, sim)`` returns the ``core.settings`` models for every simulated machine and
meter, so a demo or an end-to-end test wires the edge to the simulator without hand-written YAML.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.assets import AssetModel
from core.settings import MeterSource, OpcUaSource
from core.signals import MachineState, Signal
from simulators.opcua_machine import STATE_CODES, node_id
from simulators.runner import Simulator, meter_topic, simulated_meters

# Canonical signal -> variable of the simulated machine's address space.
MACHINE_NODES: Mapping[str, str] = {
    Signal.STATE.value: "StateCode",
    Signal.PARTS_TOTAL.value: "PartsTotal",
    Signal.PARTS_GOOD.value: "PartsGood",
    Signal.PARTS_SCRAP.value: "PartsScrap",
    "cycle_time_s": "CycleTime",
    "spindle_speed_rpm": "SpindleSpeed",
}

METER_FIELDS: Mapping[str, str] = {
    Signal.ENERGY_KWH.value: "energy.active_import_kwh",
    "power_kw": "power.active_kw",
}
METER_TIMESTAMP_FIELD = "ts"


def state_map() -> dict[str, MachineState]:
    """Raw StateCode (as the edge sees it, a string) -> canonical state."""
    return {str(code): state for state, code in STATE_CODES.items()}


def edge_sources(
    assets: AssetModel,
    sim: Simulator | Mapping[str, str],
    *,
    meter_topic_prefix: str = "meters",
) -> tuple[list[OpcUaSource], list[MeterSource]]:
    """OPC UA sources for every simulated machine and meter sources for every simulated meter.

    ``sim`` is a running Simulator (its endpoints and meter topics are used) or a mapping
    equipment id -> endpoint URL, for example of a simulator in another process; then the meter
    topics are built from ``meter_topic_prefix``.
    """
    if isinstance(sim, Simulator):
        endpoints = sim.endpoints
        topics = sim.meter_topics
    else:
        endpoints = dict(sim)
        topics = {eq.id: meter_topic(meter_topic_prefix, eq.id) for eq in simulated_meters(assets)}
    opcua = [
        OpcUaSource(
            endpoint=url,
            equipment=assets.equipment(eq_id).id,
            nodes={signal: node_id(eq_id, variable) for signal, variable in MACHINE_NODES.items()},
            state_map=state_map(),
        )
        for eq_id, url in endpoints.items()
    ]
    meters = [
        MeterSource(
            topic=topic,
            equipment=assets.equipment(meter_id).id,
            fields=dict(METER_FIELDS),
            timestamp_field=METER_TIMESTAMP_FIELD,
        )
        for meter_id, topic in topics.items()
    ]
    return opcua, meters
