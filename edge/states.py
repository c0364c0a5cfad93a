"""Device state values to canonical machine states, by what the device means (not how a library prints it).

STUB (lead, 2026-11-30): today's behaviour — ``str(value)`` looked up in the map, or a canonical
state name. The edge-address branch replaces the matching (LocalizedText by its text, enumerations
by value or name, state NodeIds by id, numbers by value) and adds the profiles' built-in maps;
the interface below stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.signals import MachineState


class StateMapper:
    """Maps one signal's device values to canonical states; ``None`` for a value it does not know."""

    def __init__(self, state_map: Mapping[str, MachineState]):
        self._map = dict(state_map)

    def raw(self, value: Any) -> str:
        """The device value as the ``raw`` text stored next to the state (at most 128 characters)."""
        return str(value)[:128]

    def map(self, value: Any) -> MachineState | None:
        key = str(value)
        if self._map:
            return self._map.get(key)
        return MachineState.__members__.get(key)
