"""Companion-specification profiles, as data: which machines a profile finds, which signals it reads, what states mean.

One ``Profile`` per ``discover.profile`` (an explicit registry, ``PROFILES``), fed to one generic
engine (``edge.discovery``):

* **machine-tool** (OPC 40501-1 Machine Tools): instances of MachineToolType (or a subtype) in
  the Machinery ``Machines`` folder.
* **robot** (OPC 40010-1 Robotics): instances of MotionDeviceSystemType (or a subtype), in the
  ``Machines`` folder or DI's ``DeviceSet``.
* **machinery** (OPC 40001-1 Machinery): every object in the ``Machines`` folder.

Each signal lists candidate paths from the machine instance, tried in order; the first the server
has is read. Path segments are (namespace, BrowseName) with the namespace one of the keys of
``NAMESPACES``, ``INSTANCE`` (the namespace of the machine instance's own BrowseName, where
vendors put their additions) or ``"0"``; ``"*"`` stands for any one child object (a robot's
``MotionDevices/<arm>``, ``Controllers/<controller>``).

What each profile reads, and why:

* ``state``: MachineryItemState (OPC 40001-1, the one state every Machinery-based machine has),
  preferably ``CurrentState/Id`` (a NodeId, the same in every language), else ``CurrentState``
  (a LocalizedText, matched by text). Canonical meaning, from the spec's definitions and
  ``docs/kpi.md``'s time model:

  =============  ============  =============================================================
  Executing      PRODUCING     "available and functional, actively performing an activity"
  NotExecuting   IDLE          "available and functional, waits for an action from outside"
                               (available but not running: ISO 22400 ADOT)
  OutOfService   DOWN          "not functional (error, blocked)": a delay, ADET
  NotAvailable   DOWN          "switched off, energy saving": within shifts a loss of busy
                               time, so DOWN; outside shifts the calendar already makes the
                               time planned downtime whatever the state says
  =============  ============  =============================================================

  MachineryItemState cannot tell SETUP or PLANNED_STOP; those arrive as process values
  (``operation_mode``) for a person, or through a configured ``state`` node with its own map.
  The built-in maps also know OPC 40501's ProductionProgramState (Running -> PRODUCING,
  Interrupted -> IDLE, Initializing -> SETUP, Ended -> IDLE, Aborted -> DOWN) and
  MachineryOperationMode (Setup -> SETUP, Maintenance -> PLANNED_STOP; Processing and None say
  nothing about activity and are left unmapped), for a ``state`` node pointed at them.
* part counters: ``parts_total`` from OPC 40501's ``PartsProducedInLifetime`` (a lifetime count:
  never reset by a job). OPC 40501 has no lifetime good/scrap count (only per job), and OPC 40010
  counts no parts: a robot's ``parts_total`` is read from a ``CycleCount`` in its task control's
  ParameterSet in the vendor's namespace where one exists (a convention, not the spec).
* alarms, as process values: ``alarm_code`` (the active alarm's code, 0 for none, where the
  machine tool has an ``ActiveAlarmCode`` under Notification/Messages; Alarms & Conditions events
  are not subscribed), a robot's ``emergency_stop`` and ``protective_stop`` (flags 1/0 from
  its SafetyState).
* process values: ``operation_mode`` (OPC 40501 MachineOperationMode, or OPC 40010
  OperationalModeEnumeration, by value).
* identification (``IDENTIFICATION``): Manufacturer, Model, SerialNumber, ProductInstanceUri
  from ``DI:Identification``, logged once per session and printed by ``factory edge check``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.signals import MachineState

DI_URI = "http://opcfoundation.org/UA/DI/"
MACHINERY_URI = "http://opcfoundation.org/UA/Machinery/"
MACHINE_TOOL_URI = "http://opcfoundation.org/UA/MachineTool/"
ROBOTICS_URI = "http://opcfoundation.org/UA/Robotics/"
NAMESPACES: Mapping[str, str] = {
    "di": DI_URI,
    "machinery": MACHINERY_URI,
    "machinetool": MACHINE_TOOL_URI,
    "robotics": ROBOTICS_URI,
}
INSTANCE = "instance"
ANY_CHILD = "*"

# Well-known nodes (namespace key, numeric id).
MACHINES_FOLDER = ("machinery", 1001)
DEVICE_SET = ("di", 5001)

Step = tuple[str, str]  # (namespace key, BrowseName); ("*", "*") for any child object
RelativePath = tuple[Step, ...]


def path(*steps: str) -> RelativePath:
    """``path("machinetool:Monitoring", "0:CurrentState", "*")`` -> steps."""
    out: list[Step] = []
    for step in steps:
        if step == ANY_CHILD:
            out.append((ANY_CHILD, ANY_CHILD))
            continue
        namespace, sep, name = step.partition(":")
        if not sep or (namespace not in NAMESPACES and namespace not in (INSTANCE, "0")):
            raise ValueError(f"profile path step {step!r}: prefix one of {sorted(NAMESPACES)}, {INSTANCE!r} or '0'")
        out.append((namespace, name))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SignalRecipe:
    """Where a profile finds one canonical signal on a machine instance: candidate paths, first found wins."""

    signal: str
    candidates: tuple[RelativePath, ...]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    machine_types: tuple[tuple[str, int], ...]  # instance type definitions (or subtypes); empty: any object
    roots: tuple[tuple[str, int], ...]  # where instances are listed
    signals: tuple[SignalRecipe, ...]
    state_map: Mapping[str, MachineState]


def _item_state(*prefix: str) -> tuple[RelativePath, ...]:
    """MachineryItemState's CurrentState/Id, then CurrentState, at each usual place (under ``prefix``)."""
    places = (
        path(*prefix, "machinery:MachineryBuildingBlocks", "machinery:MachineryItemState"),
        path(*prefix, "machinery:MachineryItemState"),  # referenced from the machine with HasAddIn
    )
    return tuple(p + path("0:CurrentState", "0:Id") for p in places) + tuple(p + path("0:CurrentState") for p in places)


def _nsu(namespace_key: str, number: int) -> str:
    return f"nsu={NAMESPACES[namespace_key]};i={number}"


# State NodeIds of the specifications' state machines, with their BrowseNames (UA-Nodeset).
MACHINERY_ITEM_STATES: Mapping[str, tuple[str, MachineState]] = {
    _nsu("machinery", 5006): ("Executing", MachineState.PRODUCING),
    _nsu("machinery", 5007): ("NotExecuting", MachineState.IDLE),
    _nsu("machinery", 5004): ("OutOfService", MachineState.DOWN),
    _nsu("machinery", 5005): ("NotAvailable", MachineState.DOWN),
}
MACHINERY_OPERATION_MODES: Mapping[str, tuple[str, MachineState]] = {
    _nsu("machinery", 5027): ("Setup", MachineState.SETUP),
    _nsu("machinery", 5025): ("Maintenance", MachineState.PLANNED_STOP),
}
PROGRAM_STATES: Mapping[str, tuple[str, MachineState]] = {  # OPC 40501 ProductionProgramStateMachineType
    _nsu("machinetool", 5041): ("Running", MachineState.PRODUCING),
    _nsu("machinetool", 5040): ("Interrupted", MachineState.IDLE),
    _nsu("machinetool", 5039): ("Initializing", MachineState.SETUP),
    _nsu("machinetool", 5038): ("Ended", MachineState.IDLE),
    _nsu("machinetool", 5037): ("Aborted", MachineState.DOWN),
}


def _with_names(*tables: Mapping[str, tuple[str, MachineState]]) -> dict[str, MachineState]:
    """State ids and state names, each to its canonical state (names of different machines never clash)."""
    out: dict[str, MachineState] = {}
    for table in tables:
        for node_id, (name, state) in table.items():
            out[node_id] = state
            out.setdefault(name, state)
    return out


MACHINERY_ITEM_STATE_MAP = _with_names(MACHINERY_ITEM_STATES)
# What an empty state map understands besides canonical names (edge.states.StateMapper).
COMPANION_STATES: Mapping[str, MachineState] = _with_names(
    MACHINERY_ITEM_STATES, PROGRAM_STATES, MACHINERY_OPERATION_MODES
)
COMPANION_STATE_NAMES: Mapping[str, str] = {
    node_id: name
    for table in (MACHINERY_ITEM_STATES, PROGRAM_STATES, MACHINERY_OPERATION_MODES)
    for node_id, (name, _) in table.items()
}

IDENTIFICATION: Mapping[str, RelativePath] = {
    "manufacturer": path("di:Identification", "di:Manufacturer"),
    "model": path("di:Identification", "di:Model"),
    "serial_number": path("di:Identification", "di:SerialNumber"),
    "product_instance_uri": path("di:Identification", "di:ProductInstanceUri"),
}

_MT_MONITORING = ("machinetool:Monitoring", "machinetool:MachineTool")
MACHINE_TOOL = Profile(
    name="machine-tool",
    machine_types=(("machinetool", 13),),  # MachineToolType
    roots=(MACHINES_FOLDER,),
    signals=(
        SignalRecipe("state", _item_state() + _item_state(*_MT_MONITORING)),
        SignalRecipe(
            "parts_total",
            (
                path("machinetool:Production", "machinetool:Statistics", "machinetool:PartsProducedInLifetime"),
                path(*_MT_MONITORING, "di:OperationCounters", "machinetool:PartsProducedInLifetime"),
            ),
        ),
        SignalRecipe("operation_mode", (path(*_MT_MONITORING, "machinetool:OperationMode"),)),
        SignalRecipe(
            "alarm_code", (path("machinetool:Notification", "machinetool:Messages", "instance:ActiveAlarmCode"),)
        ),
    ),
    state_map=MACHINERY_ITEM_STATE_MAP,
)

_SAFETY = ("robotics:SafetyStates", ANY_CHILD, "di:ParameterSet")
ROBOT = Profile(
    name="robot",
    machine_types=(("robotics", 1002),),  # MotionDeviceSystemType
    roots=(MACHINES_FOLDER, DEVICE_SET),
    signals=(
        SignalRecipe("state", _item_state()),
        SignalRecipe(
            "parts_total",
            (
                path(
                    "robotics:Controllers",
                    ANY_CHILD,
                    "robotics:TaskControls",
                    ANY_CHILD,
                    "di:ParameterSet",
                    "instance:CycleCount",
                ),
            ),
        ),
        SignalRecipe("operation_mode", (path(*_SAFETY, "robotics:OperationalMode"),)),
        SignalRecipe("emergency_stop", (path(*_SAFETY, "robotics:EmergencyStop"),)),
        SignalRecipe("protective_stop", (path(*_SAFETY, "robotics:ProtectiveStop"),)),
    ),
    state_map=MACHINERY_ITEM_STATE_MAP,
)

MACHINERY = Profile(
    name="machinery",
    machine_types=(),
    roots=(MACHINES_FOLDER,),
    signals=(SignalRecipe("state", _item_state() + _item_state(*_MT_MONITORING)),),
    state_map=MACHINERY_ITEM_STATE_MAP,
)

PROFILES: Mapping[str, Profile] = {p.name: p for p in (MACHINE_TOOL, ROBOT, MACHINERY)}
