"""The ISO 22400-2 time model: which time element each canonical machine state counts towards.

Every state maps to exactly one element. A period with no known state ("no data", OFFLINE) is not an
element: it is a data gap and lowers the data coverage of the window (kpi.md sections 2 and 6).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from core.signals import MachineState


class TimeElement(StrEnum):
    """ISO 22400-2 time elements that a state can be in (the sums PBT, AUBT, AUPT are derived)."""

    APT = "APT"  # actual production time: value adding
    AUST = "AUST"  # actual unit setup time: setup / changeover
    ADET = "ADET"  # actual unit delay time: breakdown, alarm, minor stop during an order
    ADOT = "ADOT"  # actual unit down time: available but not running an order (idle, starved, blocked)
    PDOT = "PDOT"  # planned down time: breaks, no shift, planned maintenance


# Following OPC 40001-1 Annex C.2 / OPC 40501-1 §19.3 (machine state -> ISO 22400 time element).
TIME_ELEMENT: Mapping[MachineState, TimeElement] = MappingProxyType(
    {
        MachineState.PRODUCING: TimeElement.APT,
        MachineState.SETUP: TimeElement.AUST,
        MachineState.DOWN: TimeElement.ADET,
        MachineState.IDLE: TimeElement.ADOT,
        MachineState.PLANNED_STOP: TimeElement.PDOT,
    }
)


def time_element(state: MachineState) -> TimeElement:
    """The time element a machine in ``state`` is accumulating."""
    return TIME_ELEMENT[state]
