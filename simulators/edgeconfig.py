"""Edge configuration for the simulated factory: the OPC UA and meter sources an edge agent needs.

``edge_sources(assets, sim)`` returns the ``core.settings`` models for every simulated machine and
meter, so a demo or an end-to-end test wires the edge to the simulator without hand-written YAML.
Machines are read from their ``VendorData`` nodes (the contract's NodeIds); meters by the dotted
paths of their scenario's payload template, so the edge meets payload shapes it did not invent.
``edge_yaml`` renders the same as the ``edge:`` section of a settings file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from core.assets import AssetModel
from core.settings import MeterField, MeterSource, OpcUaSource
from core.signals import MachineState, Signal
from simulators.meter import payload_paths, placeholder_signal
from simulators.opcua_machine import STATE_CODES, node_id
from simulators.runner import Simulator, meter_topic
from simulators.scenario import FactoryScenario, default_scenario

# Canonical signal -> variable of the simulated machine's VendorData folder.
MACHINE_NODES: Mapping[str, str] = {
    Signal.STATE.value: "StateCode",
    Signal.PARTS_TOTAL.value: "PartsTotal",
    Signal.PARTS_GOOD.value: "PartsGood",
    Signal.PARTS_SCRAP.value: "PartsScrap",
    Signal.PARTS_REWORK.value: "PartsRework",
    "cycle_time_s": "CycleTime",
    "spindle_speed_rpm": "SpindleSpeed",
}


def state_map() -> dict[str, MachineState]:
    """Raw StateCode (as the edge sees it, a string) -> canonical state."""
    return {str(code): state for state, code in STATE_CODES.items()}


def meter_source(scenario: FactoryScenario, meter_id: str, topic: str) -> MeterSource:
    """A meter's source: every exact placeholder of its payload template as a signal at its dotted path."""
    meter = scenario.meter(meter_id)
    paths = payload_paths(meter.payload)
    fields: dict[str, str | MeterField] = {
        signal: path for name, path in paths.items() if (signal := placeholder_signal(meter.carrier, name)) is not None
    }
    timestamp = paths.get("ts") or paths.get("ts_epoch")
    return MeterSource(topic=topic, equipment=meter_id, fields=fields, timestamp_field=timestamp)


def edge_sources(
    assets: AssetModel,
    sim: Simulator | Mapping[str, str],
    *,
    meter_topic_prefix: str = "meters",
    scenario: FactoryScenario | None = None,
    sampling_interval_ms: int = 100,
    refresh_interval_s: float | None = None,
    site: str | None = None,
) -> tuple[list[OpcUaSource], list[MeterSource]]:
    """OPC UA sources for every simulated machine and meter sources for every simulated meter.

    ``sim`` is a running Simulator (its endpoints, topics and scenario are used) or a mapping
    equipment id -> endpoint URL, for example of a simulator in another process; then the meter
    topics and payloads come from ``scenario`` (default: the asset model's defaults for ``site``,
    itself by default the park's only site) and ``meter_topic_prefix``. Each machine is refreshed
    every ``refresh_interval_s`` (default: the edge's 60 s), but never less often than its
    ``report_interval_s`` in the asset model.
    """
    default_refresh_s = OpcUaSource.model_fields["refresh_interval_s"].default
    if isinstance(sim, Simulator):
        endpoints = sim.endpoints
        topics = sim.meter_topics
        scenario = sim.scenario
    else:
        endpoints = dict(sim)
        scenario = scenario or default_scenario(assets, site=site)
        topics = {
            meter_id: scenario.meter(meter_id).topic or meter_topic(meter_topic_prefix, meter_id)
            for meter_id in scenario.meter_ids()
        }
    opcua = [
        OpcUaSource(
            endpoint=url,
            equipment=assets.equipment(eq_id).id,
            nodes={signal: node_id(eq_id, variable) for signal, variable in MACHINE_NODES.items()},
            sampling_interval_ms=sampling_interval_ms,
            state_map=state_map(),
            refresh_interval_s=min(refresh_interval_s or default_refresh_s, assets.equipment(eq_id).report_interval_s),
        )
        for eq_id, url in endpoints.items()
    ]
    meters = [meter_source(scenario, meter_id, topic) for meter_id, topic in topics.items()]
    return opcua, meters


def edge_yaml(opcua: list[OpcUaSource], meters: list[MeterSource]) -> str:
    """The ``opcua:`` and ``meters:`` lists of an ``edge:`` settings section, as YAML."""
    data: dict[str, Any] = {
        "opcua": [s.model_dump(mode="json", exclude_defaults=True) for s in opcua],
        "meters": [m.model_dump(mode="json", exclude_defaults=True) for m in meters],
    }
    return yaml.safe_dump(data, sort_keys=False)
