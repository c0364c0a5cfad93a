"""Edge configuration built for the simulated factory follows the OPC UA and meter contracts."""

from __future__ import annotations

from pathlib import Path

import yaml

from core.assets import load_asset_model
from core.settings import EdgeSettings
from core.signals import MachineState
from simulators.edgeconfig import edge_sources, edge_yaml
from simulators.runner import simulated_machines
from simulators.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "config" / "scenarios"


def test_every_machine_and_meter_of_the_example_factory_gets_a_source(example_assets_path: Path) -> None:
    assets = load_asset_model(example_assets_path)
    # The example park has two sites; the simulator serves one of them (the demo's cq-demo).
    machines = simulated_machines(assets, "cq-demo")
    endpoints = {eq.id: f"opc.tcp://127.0.0.1:{4840 + i}/factory/" for i, eq in enumerate(machines)}
    opcua, meters = edge_sources(assets, endpoints, site="cq-demo")

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
        "parts_rework": "ns=2;s=cnc-01.PartsRework",
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
    assert meters[0].fields == {
        "energy_kwh": "energy.active_import_kwh",
        "power_kw": "power.active_kw",
        "voltage_v": "voltage.l1_v",
    }
    assert meters[0].timestamp_field == "ts"

    # the sources are valid edge settings as they stand
    edge = EdgeSettings(id="gw-1", opcua=opcua, meters=meters)
    assert len(edge.opcua) == 8


def test_meter_topic_prefix_is_honoured_for_a_remote_simulator(example_assets_path: Path) -> None:
    assets = load_asset_model(example_assets_path)
    _, meters = edge_sources(assets, {}, meter_topic_prefix="plant/meters", site="cq-demo")
    assert meters[0].topic == "plant/meters/meter-a"


def test_meters_of_a_scenario_get_its_topics_and_the_paths_of_its_payload_shapes() -> None:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    opcua, meters = edge_sources(scenario.assets, {"cnc-s1": "opc.tcp://127.0.0.1:4840/factory/"}, scenario=scenario)
    by_id = {m.equipment: m for m in meters}
    assert set(by_id) == {"meter-s1", "meter-s2", "gas-s1", "water-s1"}
    assert by_id["meter-s1"].topic == "meters/meter-s1"
    assert by_id["gas-s1"].topic == "plant/small/gas/washer"
    assert by_id["gas-s1"].fields == {"gas_m3": "gas.volume_m3", "gas_flow_m3_h": "gas.flow_m3_h"}
    assert by_id["water-s1"].fields == {"water_m3": "register.total_m3", "water_flow_m3_h": "flow"}
    assert by_id["water-s1"].timestamp_field == "timestamp"
    assert by_id["meter-s2"].fields["energy_kwh"] == "readings.0.value"
    assert by_id["meter-s2"].timestamp_field == "time"

    # rendered as an edge section, it is valid edge settings again
    section = yaml.safe_load(edge_yaml(opcua, meters))
    edge = EdgeSettings(id="gw-1", **section)
    assert edge.opcua[0].nodes["parts_rework"] == "ns=2;s=cnc-s1.PartsRework"
    assert edge.opcua[0].state_map["4"] == MachineState.DOWN
    assert {m.topic for m in edge.meters} == {m.topic for m in meters}


def test_machines_are_refreshed_at_least_as_often_as_the_asset_model_says_they_report(tmp_path: Path) -> None:
    path = tmp_path / "assets.yaml"
    path.write_text(
        "site:\n  id: s\n  workshops:\n    - id: w\n      lines:\n        - id: l\n          equipment:\n"
        "            - {id: cnc-a, type: cnc, ideal_cycle_time_s: 30}\n"
        "            - {id: cnc-b, type: cnc, ideal_cycle_time_s: 30, report_interval_s: 20}\n"
    )
    assets = load_asset_model(path)
    endpoints = {"cnc-a": "opc.tcp://127.0.0.1:4840/", "cnc-b": "opc.tcp://127.0.0.1:4841/"}
    by_default, _ = edge_sources(assets, endpoints)
    assert [s.refresh_interval_s for s in by_default] == [60.0, 20.0]
    faster, _ = edge_sources(assets, endpoints, refresh_interval_s=5)
    assert [s.refresh_interval_s for s in faster] == [5.0, 5.0]
    assert "refresh_interval_s: 20.0" in edge_yaml(by_default, [])
