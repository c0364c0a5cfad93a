"""Edge configuration built for the simulated factory follows the OPC UA and meter contracts."""

from __future__ import annotations

from pathlib import Path

from core.assets import load_asset_model
from core.settings import EdgeSettings
from core.signals import MachineState
from simulators.edgeconfig import edge_sources
from simulators.runner import simulated_machines


def test_every_machine_and_meter_of_the_example_factory_gets_a_source(example_assets_path: Path) -> None:
    assets = load_asset_model(example_assets_path)
    endpoints = {
        eq.id: f"opc.tcp://127.0.0.1:{4840 + i}/factory/" for i, eq in enumerate(simulated_machines(assets))
    }
    opcua, meters = edge_sources(assets, endpoints)

    assert [s.equipment for s in opcua] == [
        "cnc-01", "cnc-02", "cnc-03", "cnc-04", "cnc-05", "cnc-06", "robot-01", "robot-02",
    ]  # fmt: skip
    cnc = opcua[0]
    assert cnc.endpoint == "opc.tcp://127.0.0.1:4840/factory/"
    assert cnc.nodes == {
        "state": "ns=2;s=cnc-01.StateCode",
        "parts_total": "ns=2;s=cnc-01.PartsTotal",
        "parts_good": "ns=2;s=cnc-01.PartsGood",
        "parts_scrap": "ns=2;s=cnc-01.PartsScrap",
        "cycle_time_s": "ns=2;s=cnc-01.CycleTime",
        "spindle_speed_rpm": "ns=2;s=cnc-01.SpindleSpeed",
    }
    assert cnc.state_map == {
        "1": MachineState.PRODUCING,
        "2": MachineState.IDLE,
        "3": MachineState.SETUP,
        "4": MachineState.DOWN,
        "5": MachineState.PLANNED_STOP,
    }

    assert [(m.equipment, m.topic) for m in meters] == [
        ("meter-a", "meters/meter-a"),
        ("meter-b", "meters/meter-b"),
        ("meter-c", "meters/meter-c"),
    ]
    assert meters[0].fields == {"energy_kwh": "energy.active_import_kwh", "power_kw": "power.active_kw"}
    assert meters[0].timestamp_field == "ts"

    # the sources are valid edge settings as they stand
    edge = EdgeSettings(id="gw-1", opcua=opcua, meters=meters)
    assert len(edge.opcua) == 8


def test_meter_topic_prefix_is_honoured_for_a_remote_simulator(example_assets_path: Path) -> None:
    assets = load_asset_model(example_assets_path)
    _, meters = edge_sources(assets, {}, meter_topic_prefix="plant/meters")
    assert meters[0].topic == "plant/meters/meter-a"
