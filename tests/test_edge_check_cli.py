"""``factory edge check``: connects to each source and prints per machine every signal, node, value and meaning."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asyncua import ua

from core.assets import EquipmentType
from factory.cli import main
from simulators.companion import identity_for, machinery_item_state_id
from simulators.opcua_machine import MachineServer
from tests.servers import free_port

pytestmark = pytest.mark.integration

ASSETS = """\
version: 1
site:
  id: s
  workshops:
    - id: w
      lines:
        - id: l
          equipment:
            - {id: cnc-01, name: "Mill 1", type: cnc, ideal_cycle_time_s: 1.0}
            - {id: robot-01, name: "Robot 1", type: robot, ideal_cycle_time_s: 1.0}
"""
CNC = identity_for("cnc-01", "Mill 1", EquipmentType.CNC, 3)
ROBOT = identity_for("robot-01", "Robot 1", EquipmentType.ROBOT, 3)


@pytest.fixture
async def cell() -> AsyncIterator[MachineServer]:
    async with MachineServer("cell", [CNC, ROBOT]) as server:
        now = datetime.now(UTC)
        await server.show(
            "cnc-01",
            {
                "MachineryItemState": ua.LocalizedText("Executing", "en"),
                "MachineryItemStateId": machinery_item_state_id("Executing"),
                "PartsProducedInLifetime": 1234,
                "State": "PRODUCING",
            },
            now,
        )
        await server.show(
            "robot-01",
            {
                "MachineryItemState": ua.LocalizedText("NotExecuting", "en"),
                "MachineryItemStateId": machinery_item_state_id("NotExecuting"),
            },
            now,
        )
        yield server


def write_settings(tmp_path: Path, sources: str) -> Path:
    (tmp_path / "assets.yaml").write_text(ASSETS)
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"assets: assets.yaml\nedge:\n  id: gw\n  opcua:\n{sources}")
    return settings


async def run_check(*argv: str) -> int:
    # main() runs its own event loop; the servers run in this one.
    return await asyncio.to_thread(main, ["edge", "check", *argv])


async def test_check_prints_every_discovered_machine_with_nodes_values_and_canonical_states(
    cell: MachineServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = write_settings(
        tmp_path,
        f"    - {{endpoint: '{cell.endpoint}', discover: {{profile: machinery}}}}\n"
        f"    - {{endpoint: '{cell.endpoint}', discover: {{profile: machine-tool}}}}\n",
    )
    assert await run_check("--config", str(settings)) == 0
    out = capsys.readouterr().out
    assert f"machine cnc-01 at /4:Machines/2:cnc-01: manufacturer {CNC.manufacturer}, model {CNC.model}" in out
    assert f"serial_number {CNC.serial_number}" in out
    lines = out.splitlines()
    state = next(line for line in lines if line.strip().startswith("state") and "Executing" in line)
    assert "PRODUCING" in state and "nsu=urn:smart-factory:simulator:cell;s=cnc-01/" in state
    robot = next(line for line in lines if line.strip().startswith("state") and "NotExecuting" in line)
    assert "IDLE" in robot
    parts = next(line for line in lines if line.strip().startswith("parts_total"))
    assert "1234" in parts


async def test_check_json_and_a_path_that_does_not_resolve_fails_with_the_reason(
    cell: MachineServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = (
        "{state: 'nsu=urn:smart-factory:simulator:cell;s=cnc-01.State', "
        "spindle_speed: '/<http://opcfoundation.org/UA/Machinery/>:Machines/2:cnc-01/2:VendorData/2:NoSuchThing'}"
    )
    settings = write_settings(tmp_path, f"    - {{endpoint: '{cell.endpoint}', equipment: cnc-01, nodes: {nodes}}}\n")
    assert await run_check("--config", str(settings), "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    (source,) = doc["sources"]
    assert [(s["signal"], s["value"], s["canonical"]) for s in source["signals"]] == [
        ("state", "PRODUCING", "PRODUCING")
    ]
    (unresolved,) = source["unresolved"]
    assert unresolved["signal"] == "spindle_speed"
    assert (
        "no '2:NoSuchThing' under '/<http://opcfoundation.org/UA/Machinery/>:Machines/2:cnc-01/2:VendorData'"
        in (unresolved["reason"])
    )
    assert await run_check("--config", str(settings)) == 1
    assert "UNRESOLVED cnc-01.spindle_speed: " in capsys.readouterr().out


async def test_check_names_a_server_it_cannot_reach(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/nobody/"
    settings = write_settings(tmp_path, f"    - {{endpoint: '{endpoint}', discover: {{profile: robot}}}}\n")
    assert await run_check("--config", str(settings), "--timeout", "2") == 1
    assert f"source {endpoint}: FAILED: cannot connect: " in capsys.readouterr().out


async def test_check_warns_of_machines_the_asset_model_does_not_know(
    cell: MachineServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = write_settings(
        tmp_path,
        f"    - {{endpoint: '{cell.endpoint}', discover: {{profile: robot, equipment: {{robot-01: arm-9}}}}}}\n",
    )
    assert await run_check("--config", str(settings)) == 0
    assert "warning: equipment arm-9 is not in the asset model" in capsys.readouterr().out
