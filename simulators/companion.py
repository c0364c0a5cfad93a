"""The address spaces of simulated machines, as data: which nodes a CNC machine or robot has, and their values.

Shapes follow the OPC UA companion specifications closely enough that a client written against
them finds the nodes by browse path (namespace indexes looked up from the namespace URIs):

* **CNC machine**, OPC 40501-1 Machine Tools on OPC 40001-1 Machinery::

    Objects/Machinery:Machines/<equipment id>                       (MachineTool:MachineToolType)
      DI:Identification/DI:Manufacturer, DI:Model, DI:SerialNumber, DI:ProductInstanceUri,
                        DI:YearOfConstruction, DI:SoftwareRevision
      MachineTool:Monitoring/MachineTool:MachineTool/MachineTool:OperationMode, MachineTool:PowerOnDuration,
                                                    MachineTool:IsWarmUp,
                                                    Machinery:MachineryItemState/CurrentState (and its Id)
      MachineTool:Monitoring/Channel1/MachineTool:ChannelState, MachineTool:ChannelMode,
                                      MachineTool:FeedOverride, MachineTool:RapidOverride
      MachineTool:Monitoring/Spindle1/MachineTool:IsRotating, MachineTool:Override,
                                      ActualSpeed, Load, Temperature       (vendor additions)
      MachineTool:Production/MachineTool:ActiveProgram/MachineTool:Name, MachineTool:NumberInList,
                                                       MachineTool:JobIdentifier, MachineTool:State/CurrentState
      MachineTool:Production/MachineTool:ProductionPlan/Job/MachineTool:Identifier,
                                      MachineTool:RunsCompleted, MachineTool:RunsPlanned,
                                      MachineTool:PartsCompleted, MachineTool:PartsGood
      MachineTool:Production/MachineTool:Statistics/MachineTool:PartsProducedInLifetime
      MachineTool:Notification/MachineTool:Messages  (event notifier: an event per alarm;
                                                      ActiveAlarmCode, ActiveAlarmText)
      MachineTool:Equipment
      VendorData/...                                                   (the edge's nodes, below)

* **Robot**, OPC 40010-1 Robotics (also listed under DI:DeviceSet)::

    Objects/Machinery:Machines/<equipment id>                       (Robotics:MotionDeviceSystemType)
      DI:Identification/...                                            (as above)
      Robotics:MotionDevices/Arm/DI:Manufacturer, DI:Model, DI:SerialNumber, Robotics:MotionDeviceCategory,
                                 DI:ParameterSet/Robotics:SpeedOverride, Robotics:OnPath, Robotics:InControl
                                 Robotics:Axes/A1..A6/DI:ParameterSet/Robotics:ActualPosition, MotorTemperature
      Robotics:Controllers/Controller/DI:ParameterSet/Robotics:TotalPowerOnTime, Robotics:StartUpTime,
                                                      Robotics:TotalEnergyConsumption, Temperature, CabinetFanSpeed
                           Robotics:TaskControls/Task1/DI:ComponentName,
                               DI:ParameterSet/Robotics:TaskProgramName, Robotics:TaskProgramLoaded,
                                               Robotics:ExecutionMode, CycleCount, CycleTime
      Robotics:SafetyStates/SafetyState/DI:ParameterSet/Robotics:OperationalMode, Robotics:EmergencyStop,
                                                        Robotics:ProtectiveStop
      Machinery:MachineryBuildingBlocks/Machinery:MachineryItemState/CurrentState (and its Id)
      VendorData/...

Names without a prefix are the simulator's own (vendor namespace, index 2). The ``VendorData``
folder holds what the edge agent has always read, with the contract's string NodeIds
``ns=2;s={equipment}.{Name}``: State, StateCode, PartsTotal, PartsGood, PartsScrap, PartsRework,
CycleTime, SpindleSpeed, plus live process values. Companion-spec nodes get string NodeIds from
their path (``ns=2;s={equipment}/Monitoring/Channel1/ChannelState``); clients should browse.

Values come from three pure functions: ``static_values`` (identification, written once),
``event_values`` (state, counters, program: written at each event) and ``Telemetry.sample`` (live
process values, written every telemetry tick).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

from asyncua import ua

from core.assets import EquipmentType
from core.signals import MachineState
from simulators.behaviour import MachineStatus, StopReason, stable_seed

# Namespace keys -> URIs. The vendor namespace (index 2) is per server: see ``vendor_namespace_uri``.
VENDOR = "vendor"
DI = "di"
MACHINERY = "machinery"
MACHINE_TOOL = "machinetool"
ROBOTICS = "robotics"
UA = "ua"  # namespace 0
SPEC_NAMESPACES: Mapping[str, str] = {
    DI: "http://opcfoundation.org/UA/DI/",
    MACHINERY: "http://opcfoundation.org/UA/Machinery/",
    MACHINE_TOOL: "http://opcfoundation.org/UA/MachineTool/",
    ROBOTICS: "http://opcfoundation.org/UA/Robotics/",
}
# Registered in this order after the vendor namespace, so the indexes are the same on every server.
NAMESPACE_ORDER: tuple[str, ...] = (VENDOR, DI, MACHINERY, MACHINE_TOOL, ROBOTICS)

# Well-known nodes and type definitions of the specifications (numeric ids in their namespaces).
MACHINES_FOLDER = (MACHINERY, 1001)
DEVICE_SET = (DI, 5001)
TYPE_IDS: Mapping[str, tuple[str, int]] = {
    "MachineToolType": (MACHINE_TOOL, 13),
    "MonitoringType": (MACHINE_TOOL, 14),
    "ChannelMonitoringType": (MACHINE_TOOL, 16),
    "SpindleMonitoringType": (MACHINE_TOOL, 22),
    "MachineOperationMonitoringType": (MACHINE_TOOL, 26),
    "ProductionType": (MACHINE_TOOL, 21),
    "ProductionActiveProgramType": (MACHINE_TOOL, 32),
    "ProductionJobListType": (MACHINE_TOOL, 30),
    "ProductionJobType": (MACHINE_TOOL, 29),
    "ProductionStatisticsType": (MACHINE_TOOL, 20),
    "NotificationType": (MACHINE_TOOL, 7),
    "MessagesType": (MACHINE_TOOL, 11),
    "EquipmentType": (MACHINE_TOOL, 12),
    "MachineIdentificationType": (MACHINERY, 1012),
    "MachineryItemState_StateMachineType": (MACHINERY, 1002),
    "MotionDeviceSystemType": (ROBOTICS, 1002),
    "MotionDeviceType": (ROBOTICS, 1004),
    "ControllerType": (ROBOTICS, 1003),
    "AxisType": (ROBOTICS, 16601),
    "TaskControlType": (ROBOTICS, 1011),
    "SafetyStateType": (ROBOTICS, 1013),
}

# Machinery MachineryItemState_StateMachineType's states (OPC 40001-1, UA-Nodeset): a state's NodeId
# is what CurrentState/Id holds.
MACHINERY_ITEM_STATE_IDS: Mapping[str, int] = {
    "OutOfService": 5004,
    "NotAvailable": 5005,
    "Executing": 5006,
    "NotExecuting": 5007,
}


def namespace_index(key: str) -> int:
    """The index of a namespace key of ``NAMESPACE_ORDER`` on every simulator server (vendor: 2)."""
    return 2 + NAMESPACE_ORDER.index(key)


QName = tuple[str, str]  # (namespace key, browse name)
Path = tuple[QName, ...]


def vendor_namespace_uri(server_name: str) -> str:
    """``urn:smart-factory:simulator:{equipment_id}`` for a one-machine server (the shared contract)."""
    return f"urn:smart-factory:simulator:{server_name}"


def vendor_node_id(equipment_id: str, name: str) -> str:
    """The contract's NodeId of a vendor variable, e.g. ``ns=2;s=cnc-01.StateCode``."""
    return f"ns=2;s={equipment_id}.{name}"


@dataclass(frozen=True, slots=True)
class ObjectNode:
    path: Path  # relative to the machine object
    type_name: str | None = None  # a key of TYPE_IDS; None: BaseObjectType (FolderType if folder)
    folder: bool = False
    event_notifier: bool = False


@dataclass(frozen=True, slots=True)
class VariableNode:
    key: str  # what the value functions return it under
    path: Path  # relative to the machine object
    variant_type: ua.VariantType
    vendor_name: str | None = None  # contract NodeId ``{eq}.{vendor_name}`` instead of a path id
    is_property: bool = False


class OperationMode(IntEnum):
    """MachineTool MachineOperationMode."""

    MANUAL = 0
    AUTOMATIC = 1
    SETUP = 2
    AUTO_WITH_MANUAL_INTERVENTION = 3
    SERVICE = 4
    OTHER = 5


class ChannelState(IntEnum):
    ACTIVE = 0
    INTERRUPTED = 1
    RESET = 2


class ChannelMode(IntEnum):
    AUTOMATIC = 0
    MDA = 1
    MANUAL = 2
    OTHER = 3


class RobotOperationalMode(IntEnum):
    """Robotics OperationalModeEnumeration."""

    OTHER = 0
    MANUAL_REDUCED_SPEED = 1
    MANUAL_HIGH_SPEED = 2
    AUTOMATIC = 3
    AUTOMATIC_EXTERNAL = 4


class ExecutionMode(IntEnum):
    """Robotics ExecutionModeEnumeration."""

    CYCLE = 0
    CONTINUOUS = 1
    STEP = 2


STATE_CODES: Mapping[MachineState, int] = {
    MachineState.PRODUCING: 1,
    MachineState.IDLE: 2,
    MachineState.SETUP: 3,
    MachineState.DOWN: 4,
    MachineState.PLANNED_STOP: 5,
}

_V = ua.VariantType


def _p(*parts: str) -> Path:
    """``"mt:Monitoring", "Channel1"`` -> path of (namespace key, name); no prefix: vendor."""
    out: list[QName] = []
    for part in parts:
        ns, sep, name = part.partition(":")
        out.append(
            (
                {"mt": MACHINE_TOOL, "di": DI, "m": MACHINERY, "r": ROBOTICS, "ua": UA}[ns] if sep else VENDOR,
                name if sep else ns,
            )
        )
    return tuple(out)


VENDOR_FOLDER = _p("VendorData")


def _vendor(name: str, variant_type: ua.VariantType) -> VariableNode:
    """A variable of the VendorData folder, with the contract's NodeId ``{eq}.{name}``."""
    return VariableNode(name, (*VENDOR_FOLDER, (VENDOR, name)), variant_type, name)


# Vendor variables common to every machine: the contract's nodes, which the edge reads.
VENDOR_VARIABLES: tuple[VariableNode, ...] = (
    _vendor("State", _V.String),
    _vendor("StateCode", _V.Int32),
    _vendor("PartsTotal", _V.UInt32),
    _vendor("PartsGood", _V.UInt32),
    _vendor("PartsScrap", _V.UInt32),
    _vendor("PartsRework", _V.UInt32),
    _vendor("CycleTime", _V.Double),
    _vendor("SpindleSpeed", _V.Double),
    _vendor("ProgramName", _V.String),
    _vendor("AlarmCode", _V.Int32),
    _vendor("PowerActive", _V.Double),
)

_IDENT = _p("di:Identification")
IDENTIFICATION: tuple[VariableNode, ...] = (
    VariableNode("Manufacturer", (*_IDENT, (DI, "Manufacturer")), _V.LocalizedText, is_property=True),
    VariableNode("Model", (*_IDENT, (DI, "Model")), _V.LocalizedText, is_property=True),
    VariableNode("SerialNumber", (*_IDENT, (DI, "SerialNumber")), _V.String, is_property=True),
    VariableNode("ProductInstanceUri", (*_IDENT, (DI, "ProductInstanceUri")), _V.String, is_property=True),
    VariableNode("YearOfConstruction", (*_IDENT, (DI, "YearOfConstruction")), _V.UInt16, is_property=True),
    VariableNode("SoftwareRevision", (*_IDENT, (DI, "SoftwareRevision")), _V.String, is_property=True),
    VariableNode("ComponentName", (*_IDENT, (DI, "ComponentName")), _V.LocalizedText, is_property=True),
)

_MON = _p("mt:Monitoring")
_MT = (*_MON, (MACHINE_TOOL, "MachineTool"))
_CH = (*_MON, (VENDOR, "Channel1"))
_SP = (*_MON, (VENDOR, "Spindle1"))
_PROD = _p("mt:Production")
_PROG = (*_PROD, (MACHINE_TOOL, "ActiveProgram"))
_JOB = (*_PROD, (MACHINE_TOOL, "ProductionPlan"), (VENDOR, "Job"))
_STATS = (*_PROD, (MACHINE_TOOL, "Statistics"))
_MSG = (*_p("mt:Notification"), (MACHINE_TOOL, "Messages"))
_CNC_STATE = (*_MT, (MACHINERY, "MachineryItemState"))

CNC_OBJECTS: tuple[ObjectNode, ...] = (
    ObjectNode(_IDENT, "MachineIdentificationType"),
    ObjectNode(_MON, "MonitoringType"),
    ObjectNode(_MT, "MachineOperationMonitoringType"),
    ObjectNode(_CNC_STATE, "MachineryItemState_StateMachineType"),
    ObjectNode(_CH, "ChannelMonitoringType"),
    ObjectNode(_SP, "SpindleMonitoringType"),
    ObjectNode(_PROD, "ProductionType"),
    ObjectNode(_PROG, "ProductionActiveProgramType"),
    ObjectNode((*_PROG, (MACHINE_TOOL, "State"))),
    ObjectNode((*_PROD, (MACHINE_TOOL, "ProductionPlan")), "ProductionJobListType"),
    ObjectNode(_JOB, "ProductionJobType"),
    ObjectNode(_STATS, "ProductionStatisticsType"),
    ObjectNode(_p("mt:Notification"), "NotificationType"),
    ObjectNode(_MSG, "MessagesType", event_notifier=True),
    ObjectNode(_p("mt:Equipment"), "EquipmentType"),
    ObjectNode(VENDOR_FOLDER, folder=True),
)
CNC_VARIABLES: tuple[VariableNode, ...] = (
    *IDENTIFICATION,
    VariableNode("OperationMode", (*_MT, (MACHINE_TOOL, "OperationMode")), _V.Int32),
    VariableNode("PowerOnDuration", (*_MT, (MACHINE_TOOL, "PowerOnDuration")), _V.UInt32),
    VariableNode("IsWarmUp", (*_MT, (MACHINE_TOOL, "IsWarmUp")), _V.Boolean),
    VariableNode("MachineryItemState", (*_CNC_STATE, (UA, "CurrentState")), _V.LocalizedText),
    VariableNode("MachineryItemStateId", (*_CNC_STATE, (UA, "CurrentState"), (UA, "Id")), _V.NodeId, is_property=True),
    VariableNode("ChannelName", (*_CH, (MACHINE_TOOL, "Name")), _V.String, is_property=True),
    VariableNode("ChannelState", (*_CH, (MACHINE_TOOL, "ChannelState")), _V.Int32),
    VariableNode("ChannelMode", (*_CH, (MACHINE_TOOL, "ChannelMode")), _V.Int32),
    VariableNode("FeedOverride", (*_CH, (MACHINE_TOOL, "FeedOverride")), _V.Double),
    VariableNode("RapidOverride", (*_CH, (MACHINE_TOOL, "RapidOverride")), _V.Double),
    VariableNode("SpindleName", (*_SP, (MACHINE_TOOL, "Name")), _V.String, is_property=True),
    VariableNode("SpindleIsRotating", (*_SP, (MACHINE_TOOL, "IsRotating")), _V.Boolean),
    VariableNode("SpindleOverride", (*_SP, (MACHINE_TOOL, "Override")), _V.Double),
    VariableNode("SpindleActualSpeed", (*_SP, (VENDOR, "ActualSpeed")), _V.Double),
    VariableNode("SpindleLoad", (*_SP, (VENDOR, "Load")), _V.Double),
    VariableNode("SpindleTemperature", (*_SP, (VENDOR, "Temperature")), _V.Double),
    VariableNode("ProgramName", (*_PROG, (MACHINE_TOOL, "Name")), _V.String),
    VariableNode("ProgramNumberInList", (*_PROG, (MACHINE_TOOL, "NumberInList")), _V.UInt16),
    VariableNode("JobIdentifier", (*_PROG, (MACHINE_TOOL, "JobIdentifier")), _V.String),
    VariableNode("ProgramState", (*_PROG, (MACHINE_TOOL, "State"), (UA, "CurrentState")), _V.LocalizedText),
    VariableNode("JobIdentifier", (*_JOB, (MACHINE_TOOL, "Identifier")), _V.String),
    VariableNode("RunsCompleted", (*_JOB, (MACHINE_TOOL, "RunsCompleted")), _V.UInt32),
    VariableNode("RunsPlanned", (*_JOB, (MACHINE_TOOL, "RunsPlanned")), _V.UInt32),
    VariableNode("JobPartsCompleted", (*_JOB, (MACHINE_TOOL, "PartsCompleted")), _V.UInt32),
    VariableNode("JobPartsGood", (*_JOB, (MACHINE_TOOL, "PartsGood")), _V.UInt32),
    VariableNode("PartsProducedInLifetime", (*_STATS, (MACHINE_TOOL, "PartsProducedInLifetime")), _V.UInt32),
    VariableNode("ActiveAlarmCode", (*_MSG, (VENDOR, "ActiveAlarmCode")), _V.Int32),
    VariableNode("ActiveAlarmText", (*_MSG, (VENDOR, "ActiveAlarmText")), _V.String),
    *VENDOR_VARIABLES,
    _vendor("AxisXPosition", _V.Double),
    _vendor("AxisYPosition", _V.Double),
    _vendor("AxisZPosition", _V.Double),
    _vendor("AxisXLoad", _V.Double),
    _vendor("AxisYLoad", _V.Double),
    _vendor("AxisZLoad", _V.Double),
    _vendor("FeedRate", _V.Double),
    _vendor("MotorCurrent", _V.Double),
    _vendor("CoolantTemperature", _V.Double),
    _vendor("HydraulicPressure", _V.Double),
    _vendor("Vibration", _V.Double),
)

_MD = (*_p("r:MotionDevices"), (VENDOR, "Arm"))
_MDP = (*_MD, (DI, "ParameterSet"))
_AXES = (*_MD, (ROBOTICS, "Axes"))
_CTRL = (*_p("r:Controllers"), (VENDOR, "Controller"))
_CTRLP = (*_CTRL, (DI, "ParameterSet"))
_TASK = (*_CTRL, (ROBOTICS, "TaskControls"), (VENDOR, "Task1"))
_TASKP = (*_TASK, (DI, "ParameterSet"))
_SAFE = (*_p("r:SafetyStates"), (VENDOR, "SafetyState"))
_SAFEP = (*_SAFE, (DI, "ParameterSet"))
_ROBOT_STATE = _p("m:MachineryBuildingBlocks", "m:MachineryItemState")
ROBOT_AXES = ("A1", "A2", "A3", "A4", "A5", "A6")


def _axis(name: str) -> Path:
    return (*_AXES, (VENDOR, name), (DI, "ParameterSet"))


ROBOT_OBJECTS: tuple[ObjectNode, ...] = (
    ObjectNode(_IDENT, "MachineIdentificationType"),
    ObjectNode(_p("r:MotionDevices"), folder=True),
    ObjectNode(_MD, "MotionDeviceType"),
    ObjectNode(_MDP),
    ObjectNode(_AXES, folder=True),
    *(ObjectNode((*_AXES, (VENDOR, a)), "AxisType") for a in ROBOT_AXES),
    *(ObjectNode((*_AXES, (VENDOR, a), (DI, "ParameterSet"))) for a in ROBOT_AXES),
    ObjectNode(_p("r:Controllers"), folder=True),
    ObjectNode(_CTRL, "ControllerType"),
    ObjectNode(_CTRLP),
    ObjectNode((*_CTRL, (ROBOTICS, "TaskControls")), folder=True),
    ObjectNode(_TASK, "TaskControlType"),
    ObjectNode(_TASKP),
    ObjectNode(_p("r:SafetyStates"), folder=True),
    ObjectNode(_SAFE, "SafetyStateType"),
    ObjectNode(_SAFEP),
    ObjectNode(_p("m:MachineryBuildingBlocks"), folder=True),
    ObjectNode(_ROBOT_STATE, "MachineryItemState_StateMachineType"),
    ObjectNode(VENDOR_FOLDER, folder=True),
)
ROBOT_VARIABLES: tuple[VariableNode, ...] = (
    *IDENTIFICATION,
    VariableNode("ArmManufacturer", (*_MD, (DI, "Manufacturer")), _V.LocalizedText, is_property=True),
    VariableNode("ArmModel", (*_MD, (DI, "Model")), _V.LocalizedText, is_property=True),
    VariableNode("ArmSerialNumber", (*_MD, (DI, "SerialNumber")), _V.String, is_property=True),
    VariableNode("MotionDeviceCategory", (*_MD, (ROBOTICS, "MotionDeviceCategory")), _V.Int32, is_property=True),
    VariableNode("SpeedOverride", (*_MDP, (ROBOTICS, "SpeedOverride")), _V.Double),
    VariableNode("OnPath", (*_MDP, (ROBOTICS, "OnPath")), _V.Boolean),
    VariableNode("InControl", (*_MDP, (ROBOTICS, "InControl")), _V.Boolean),
    *(VariableNode(f"{a}Position", (*_axis(a), (ROBOTICS, "ActualPosition")), _V.Double) for a in ROBOT_AXES),
    *(VariableNode(f"{a}MotorTemperature", (*_axis(a), (VENDOR, "MotorTemperature")), _V.Double) for a in ROBOT_AXES),
    VariableNode("TotalPowerOnTime", (*_CTRLP, (ROBOTICS, "TotalPowerOnTime")), _V.Double),
    VariableNode("StartUpTime", (*_CTRLP, (ROBOTICS, "StartUpTime")), _V.DateTime),
    VariableNode("TotalEnergyConsumption", (*_CTRLP, (ROBOTICS, "TotalEnergyConsumption")), _V.Double),
    VariableNode("ControllerTemperature", (*_CTRLP, (VENDOR, "Temperature")), _V.Double),
    VariableNode("CabinetFanSpeed", (*_CTRLP, (VENDOR, "CabinetFanSpeed")), _V.Double),
    VariableNode("TaskComponentName", (*_TASK, (DI, "ComponentName")), _V.LocalizedText, is_property=True),
    VariableNode("TaskProgramName", (*_TASKP, (ROBOTICS, "TaskProgramName")), _V.String),
    VariableNode("TaskProgramLoaded", (*_TASKP, (ROBOTICS, "TaskProgramLoaded")), _V.Boolean),
    VariableNode("ExecutionMode", (*_TASKP, (ROBOTICS, "ExecutionMode")), _V.Int32),
    VariableNode("CycleCount", (*_TASKP, (VENDOR, "CycleCount")), _V.UInt32),
    VariableNode("TaskCycleTime", (*_TASKP, (VENDOR, "CycleTime")), _V.Double),
    VariableNode("OperationalMode", (*_SAFEP, (ROBOTICS, "OperationalMode")), _V.Int32),
    VariableNode("EmergencyStop", (*_SAFEP, (ROBOTICS, "EmergencyStop")), _V.Boolean),
    VariableNode("ProtectiveStop", (*_SAFEP, (ROBOTICS, "ProtectiveStop")), _V.Boolean),
    VariableNode("MachineryItemState", (*_ROBOT_STATE, (UA, "CurrentState")), _V.LocalizedText),
    VariableNode(
        "MachineryItemStateId", (*_ROBOT_STATE, (UA, "CurrentState"), (UA, "Id")), _V.NodeId, is_property=True
    ),
    *VENDOR_VARIABLES,
    _vendor("TcpSpeed", _V.Double),
)


def objects_for(kind: EquipmentType) -> tuple[ObjectNode, ...]:
    return ROBOT_OBJECTS if kind == EquipmentType.ROBOT else CNC_OBJECTS


def variables_for(kind: EquipmentType) -> tuple[VariableNode, ...]:
    return ROBOT_VARIABLES if kind == EquipmentType.ROBOT else CNC_VARIABLES


def machine_type_name(kind: EquipmentType) -> str:
    return "MotionDeviceSystemType" if kind == EquipmentType.ROBOT else "MachineToolType"


# -- values ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineIdentity:
    equipment_id: str
    name: str
    kind: EquipmentType
    manufacturer: str
    model: str
    serial_number: str
    year_of_construction: int
    software_revision: str


_CNC_MAKERS = (
    ("DMG MORI", "DMU 65 monoBLOCK"),
    ("Haas", "VF-2SS"),
    ("Mazak", "VARIAXIS i-600"),
    ("Okuma", "LB3000 EX II"),
)
_ROBOT_MAKERS = (("KUKA", "KR 16 R2010"), ("FANUC", "M-20iD/25"), ("ABB", "IRB 2600"), ("Yaskawa", "GP25"))


def identity_for(equipment_id: str, name: str, kind: EquipmentType, seed: int) -> MachineIdentity:
    """A plausible, seeded nameplate."""
    rng = random.Random(stable_seed(seed, f"{equipment_id}/nameplate"))
    maker, model = rng.choice(_ROBOT_MAKERS if kind == EquipmentType.ROBOT else _CNC_MAKERS)
    return MachineIdentity(
        equipment_id=equipment_id,
        name=name or equipment_id,
        kind=kind,
        manufacturer=maker,
        model=model,
        serial_number=f"{maker[:3].upper()}-{rng.randint(100000, 999999)}",
        year_of_construction=rng.randint(2012, 2024),
        software_revision=f"{rng.randint(3, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}",
    )


def static_values(identity: MachineIdentity) -> dict[str, Any]:
    """Values written once when the address space is built."""
    lt = ua.LocalizedText
    out: dict[str, Any] = {
        "Manufacturer": lt(identity.manufacturer, "en"),
        "Model": lt(identity.model, "en"),
        "SerialNumber": identity.serial_number,
        "ProductInstanceUri": f"urn:{identity.manufacturer.lower().replace(' ', '-')}:{identity.serial_number}",
        "YearOfConstruction": identity.year_of_construction,
        "SoftwareRevision": identity.software_revision,
        "ComponentName": lt(identity.name, "en"),
    }
    if identity.kind == EquipmentType.ROBOT:
        out |= {
            "ArmManufacturer": lt(identity.manufacturer, "en"),
            "ArmModel": lt(identity.model, "en"),
            "ArmSerialNumber": identity.serial_number + "-M",
            "MotionDeviceCategory": 1,  # ARTICULATED_ROBOT
            "TaskComponentName": lt("Task1", "en"),
            "SpeedOverride": 100.0,
        }
    else:
        out |= {"ChannelName": "Channel1", "SpindleName": "Spindle1", "RapidOverride": 100.0}
    return out


def machinery_item_state(status: MachineStatus) -> str:
    """Machinery MachineryItemState: Executing, NotExecuting, OutOfService or NotAvailable."""
    if not status.powered:
        return "NotAvailable"
    if status.state == MachineState.PRODUCING:
        return "Executing"
    if status.state == MachineState.DOWN and status.reason == StopReason.BREAKDOWN:
        return "OutOfService"
    return "NotExecuting"


def machinery_item_state_id(state: str) -> ua.NodeId:
    """The NodeId of a MachineryItemState state (CurrentState/Id), in the Machinery namespace."""
    return ua.NodeId(MACHINERY_ITEM_STATE_IDS[state], namespace_index(MACHINERY))  # type: ignore[arg-type]


def _program_state(status: MachineStatus) -> str:
    """MachineTool ProductionProgramStateMachine: Initializing, Running, Ended, Interrupted, Aborted."""
    return {
        MachineState.PRODUCING: "Running",
        MachineState.SETUP: "Initializing",
        MachineState.PLANNED_STOP: "Ended",
        MachineState.IDLE: "Interrupted",
    }.get(status.state, "Aborted" if status.reason == StopReason.BREAKDOWN else "Interrupted")


def event_values(kind: EquipmentType, status: MachineStatus, speed: float = 1.0) -> dict[str, Any]:
    """The values that change with events: state, counters, program, alarm. Durations in stamp seconds."""
    state = status.state
    producing = state == MachineState.PRODUCING
    lt = ua.LocalizedText
    alarm = status.alarm
    out: dict[str, Any] = {
        "State": state.value,
        "StateCode": STATE_CODES[state],
        "PartsTotal": status.parts_total,
        "PartsGood": status.parts_good,
        "PartsScrap": status.parts_scrap,
        "PartsRework": status.parts_rework,
        "CycleTime": round(status.cycle_time_s / speed, 6),
        "SpindleSpeed": float(status.spindle_speed_rpm),
        "ProgramName": status.program,
        "AlarmCode": alarm.code if alarm else 0,
        "MachineryItemState": lt(machinery_item_state(status), "en"),
        "MachineryItemStateId": machinery_item_state_id(machinery_item_state(status)),
    }
    if kind == EquipmentType.ROBOT:
        manual = state == MachineState.SETUP or (state == MachineState.DOWN and status.reason == StopReason.BREAKDOWN)
        robot_mode = (
            RobotOperationalMode.OTHER
            if not status.powered
            else RobotOperationalMode.MANUAL_REDUCED_SPEED
            if manual
            else RobotOperationalMode.AUTOMATIC
        )
        out |= {
            "TaskProgramName": status.program,
            "TaskProgramLoaded": status.powered and state != MachineState.SETUP,
            "ExecutionMode": int(ExecutionMode.CONTINUOUS),
            "CycleCount": status.parts_total,
            "TaskCycleTime": round(status.cycle_time_s / speed, 6),
            "OnPath": producing,
            "InControl": status.powered,
            "OperationalMode": int(robot_mode),
            "EmergencyStop": status.reason == StopReason.BREAKDOWN and state == MachineState.DOWN,
            "ProtectiveStop": status.reason == StopReason.MINOR_STOP and state == MachineState.DOWN,
        }
        return out
    mode = (
        OperationMode.SETUP
        if state == MachineState.SETUP
        else OperationMode.MANUAL
        if state in (MachineState.DOWN, MachineState.PLANNED_STOP)
        else OperationMode.AUTOMATIC
    )
    channel = (
        ChannelState.ACTIVE
        if producing
        else ChannelState.INTERRUPTED
        if state in (MachineState.DOWN, MachineState.IDLE) and status.reason != StopReason.WARMUP
        else ChannelState.RESET
    )
    out |= {
        "OperationMode": int(mode),
        "IsWarmUp": status.reason == StopReason.WARMUP,
        "ChannelState": int(channel),
        "ChannelMode": int(ChannelMode.AUTOMATIC if mode == OperationMode.AUTOMATIC else ChannelMode.MANUAL),
        "SpindleIsRotating": producing,
        "ProgramNumberInList": status.program_number,
        "JobIdentifier": f"{status.program}/{status.program_number}",
        "ProgramState": lt(_program_state(status), "en"),
        "RunsCompleted": status.batch_done,
        "RunsPlanned": status.batch_size,
        "JobPartsCompleted": status.batch_done,
        "JobPartsGood": status.batch_done,
        "PartsProducedInLifetime": status.parts_lifetime,
        "ActiveAlarmCode": alarm.code if alarm else 0,
        "ActiveAlarmText": alarm.text if alarm else "",
    }
    return out


class Telemetry:
    """Live process values of one machine, sampled every telemetry tick (noisy, plausible, seeded)."""

    def __init__(self, identity: MachineIdentity, seed: int):
        self.kind = identity.kind
        self._rng = random.Random(stable_seed(seed, f"{identity.equipment_id}/telemetry"))
        rng = self._rng
        self._temps: dict[str, float] = {}
        self._positions = [rng.uniform(-150, 150) for _ in range(6)]
        self._phase = rng.uniform(0, 2 * math.pi)
        self._energy_kwh = rng.uniform(5_000, 50_000)
        self._fan = rng.uniform(2400, 2600)
        self._last_t: float | None = None

    def _drift(self, name: str, target: float, noise: float) -> float:
        rng = self._rng
        value = self._temps.get(name, target + rng.uniform(-2, 2))
        value += (target - value) * 0.05 + rng.gauss(0, noise)
        self._temps[name] = value
        return round(value, 2)

    def sample(self, status: MachineStatus, t: float, stamp_now: datetime) -> dict[str, Any]:
        """Values at model time ``t`` (seconds since start); ``stamp_now`` for power-on durations."""
        rng = self._rng
        producing = status.state == MachineState.PRODUCING
        powered = status.powered
        dt = 0.0 if self._last_t is None else max(t - self._last_t, 0.0)
        self._last_t = t
        power = status.power_kw * (rng.uniform(0.92, 1.08) if powered else 0.0)
        self._energy_kwh += power * dt / 3600.0
        on_s = max((stamp_now - status.powered_on_at).total_seconds(), 0.0)
        out: dict[str, Any] = {"PowerActive": round(power, 3)}
        if self.kind == EquipmentType.ROBOT:
            for i, axis in enumerate(ROBOT_AXES):
                if producing:
                    self._positions[i] = max(-170.0, min(170.0, self._positions[i] + rng.gauss(0, 12)))
                out[f"{axis}Position"] = round(self._positions[i], 3)
                out[f"{axis}MotorTemperature"] = self._drift(axis, 48.0 if producing else 31.0, 0.08)
            out |= {
                "TcpSpeed": round(rng.uniform(250, 1200), 1) if producing else 0.0,
                "ControllerTemperature": self._drift("controller", 41.0 if powered else 25.0, 0.05),
                "CabinetFanSpeed": round(self._fan + rng.gauss(0, 15), 1) if powered else 0.0,
                "TotalEnergyConsumption": round(self._energy_kwh, 4),
                "TotalPowerOnTime": round(on_s * 1000.0, 0),
            }
            return out
        rpm = status.spindle_speed_rpm
        wave = math.sin(t * 0.7 + self._phase)
        if producing:
            self._positions[:3] = [
                round(self._positions[0] + rng.gauss(0, 25), 3),
                round(self._positions[1] + rng.gauss(0, 25), 3),
                round(-abs(self._positions[2] + rng.gauss(0, 5)) % 400, 3),
            ]
        out |= {
            "SpindleActualSpeed": round(rpm * rng.uniform(0.995, 1.005), 1) if producing else 0.0,
            "SpindleLoad": round(max(0.0, 55 + 15 * wave + rng.gauss(0, 3)), 2) if producing else 0.0,
            "SpindleTemperature": self._drift("spindle", 46.0 if producing else 27.0, 0.06),
            "SpindleOverride": 100.0,
            "FeedOverride": 100.0 if status.state != MachineState.SETUP else 50.0,
            "AxisXPosition": self._positions[0],
            "AxisYPosition": self._positions[1],
            "AxisZPosition": self._positions[2],
            "AxisXLoad": round(abs(rng.gauss(30, 8)), 2) if producing else 0.0,
            "AxisYLoad": round(abs(rng.gauss(28, 8)), 2) if producing else 0.0,
            "AxisZLoad": round(abs(rng.gauss(40, 10)), 2) if producing else 0.0,
            "FeedRate": round(rng.uniform(1200, 2600), 1) if producing else 0.0,
            "MotorCurrent": round(power * 1000 / (1.732 * 400 * 0.9), 2),
            "CoolantTemperature": self._drift("coolant", 24.0 if producing else 21.0, 0.04),
            "HydraulicPressure": round(60 + rng.gauss(0, 0.4), 2) if powered else 0.0,
            "Vibration": round(abs(rng.gauss(2.2 if producing else 0.2, 0.3)), 3) if powered else 0.0,
            "PowerOnDuration": int(on_s // 3600),
        }
        return out
