"""Device state values to canonical machine states, by what the device means (not how a library prints it).

A state map's keys are written as text (``Executing: PRODUCING``, ``"3": PRODUCING``,
``"nsu=http://opcfoundation.org/UA/Machinery/;i=5006": PRODUCING``); a reading matches a key by
its meaning:

* a LocalizedText by its text, a string by itself, a QualifiedName by its name (ignoring case and
  surrounding blanks);
* a number by value (``"3"`` matches 3 and 3.0), a Boolean by ``true``/``false``;
* an enumeration by value or by name: the name from the DataType's EnumStrings/EnumValues
  (``enum_names``, read by the plan) or from an EnumValueType's DisplayName;
* a NodeId (a state machine's ``CurrentState/Id``) by id: a key that parses as a NodeId, with
  its namespace by index or URI (URIs resolved with the session's ``namespaces``).

With an empty map, canonical state names (``PRODUCING`` ...) and the companion specifications'
states that the built-in maps know (``edge.profiles.COMPANION_STATES``) are understood.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from asyncua import ua

from core.signals import MachineState
from edge.addressing import AddressError, NamespaceTable, Unresolvable, parse_node_id

RAW_MAX = 128


def _text_key(text: str) -> str:
    return text.strip().casefold()


def _number_key(text: str) -> float | None:
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class StateMapper:
    """Maps one signal's device values to canonical states; ``None`` for a value it does not know.

    ``names``: raw text for NodeId states (``{"nsu=...;i=5006": "Executing"}``), so ``raw`` shows
    what a person reads instead of an id.
    """

    def __init__(
        self,
        state_map: Mapping[str, MachineState],
        *,
        namespaces: Sequence[str] | None = None,
        enum_names: Mapping[int, str] | None = None,
        names: Mapping[str, str] | None = None,
    ):
        from edge.profiles import COMPANION_STATE_NAMES, COMPANION_STATES  # profiles import this module

        if not state_map:
            state_map = {**{s.value: s for s in MachineState}, **COMPANION_STATES}
            names = {**COMPANION_STATE_NAMES, **(names or {})}
        table = NamespaceTable(namespaces or ())
        self._texts: dict[str, MachineState] = {}
        self._numbers: dict[float, MachineState] = {}
        self._node_ids: dict[ua.NodeId, MachineState] = {}
        for key, state in state_map.items():
            self._texts.setdefault(_text_key(key), state)
            if (number := _number_key(key)) is not None:
                self._numbers.setdefault(number, state)
            if (node_id := _node_id_key(key, table)) is not None:
                self._node_ids.setdefault(node_id, state)
        self._node_names: dict[ua.NodeId, str] = {}
        for key, name in (names or {}).items():
            if (node_id := _node_id_key(key, table)) is not None:
                self._node_names[node_id] = name
        self._table = table
        self._enum_names = dict(enum_names or {})

    def raw(self, value: Any) -> str:
        """The device value as the ``raw`` text stored next to the state (at most 128 characters)."""
        if isinstance(value, ua.LocalizedText):
            text = value.Text or ""
        elif isinstance(value, ua.QualifiedName):
            text = value.Name or ""
        elif isinstance(value, ua.NodeId):
            text = self._node_names.get(value) or self._table.show(value)
        elif isinstance(value, ua.EnumValueType):
            text = str(value.Value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        return text[:RAW_MAX]

    def map(self, value: Any) -> MachineState | None:
        if isinstance(value, ua.NodeId):
            return self._node_ids.get(value)
        if isinstance(value, ua.LocalizedText):
            return self._by_text(value.Text)
        if isinstance(value, ua.QualifiedName):
            return self._by_text(value.Name)
        if isinstance(value, str):
            return self._by_text(value)
        if isinstance(value, bool):
            return self._texts.get("true" if value else "false")
        if isinstance(value, ua.EnumValueType):
            text = value.DisplayName.Text if value.DisplayName is not None else None
            return self._by_number(value.Value) or self._by_text(text)
        if isinstance(value, int | float):
            name = getattr(value, "name", None)  # an IntEnum, when the client loaded the type
            if name is None and isinstance(value, int):
                name = self._enum_names.get(value)
            return self._by_number(value) or self._by_text(name)
        return None

    def _by_text(self, text: str | None) -> MachineState | None:
        return None if text is None else self._texts.get(_text_key(text))

    def _by_number(self, number: float | None) -> MachineState | None:
        if number is None or (isinstance(number, float) and not math.isfinite(number)):
            return None
        return self._numbers.get(number)


def _node_id_key(key: str, table: NamespaceTable) -> ua.NodeId | None:
    """A map key that is a NodeId, resolved with the session's namespaces; None for any other key."""
    if not key.startswith(("ns=", "nsu=", "i=", "s=", "g=", "b=")):
        return None
    try:
        return parse_node_id(key).resolve(table)
    except (AddressError, Unresolvable):
        return None


def check_state_map(state_map: Mapping[str, MachineState]) -> str | None:
    """Why a state map's key cannot work (a malformed NodeId key), or None."""
    for key in state_map:
        if key.startswith(("ns=", "nsu=")):
            try:
                parse_node_id(key)
            except AddressError as exc:
                return f"state_map key {key!r}: {exc.reason}"
    return None
