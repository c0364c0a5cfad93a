"""State mapping by what the device means: LocalizedText by text, enumerations by value or name, state ids by id."""

from __future__ import annotations

from typing import Any, cast

import pytest
from asyncua import ua

from core.signals import MachineState
from edge.profiles import COMPANION_STATE_NAMES, MACHINE_TOOL_URI, MACHINERY_ITEM_STATE_MAP, MACHINERY_URI
from edge.states import StateMapper, check_state_map

P, IDL, S, D = MachineState.PRODUCING, MachineState.IDLE, MachineState.SETUP, MachineState.DOWN
# A server's NamespaceArray: Machinery at 4, MachineTool at 5.
NAMESPACES = ["http://opcfoundation.org/UA/", "urn:server", "urn:vendor", "http://opcfoundation.org/UA/DI/"]
NAMESPACES += [MACHINERY_URI, MACHINE_TOOL_URI]


def nid(identifier: Any, ns: int) -> ua.NodeId:
    return ua.NodeId(identifier, cast(Any, ns))


def test_localized_text_matches_by_its_text_not_the_library_printout() -> None:
    mapper = StateMapper({"Executing": P, "NotExecuting": IDL})
    assert mapper.map(ua.LocalizedText("Executing", "en")) is P
    assert mapper.map(ua.LocalizedText("  notexecuting ", "de")) is IDL  # case and blanks do not matter
    assert mapper.raw(ua.LocalizedText("Executing", "en")) == "Executing"
    assert mapper.map(ua.LocalizedText("Ausführend", "de")) is None
    assert mapper.map(ua.LocalizedText(None)) is None


def test_numbers_match_by_value() -> None:
    mapper = StateMapper({"1": P, "2": IDL, "4.5": D})
    assert (mapper.map(1), mapper.map(2.0), mapper.map(4.5), mapper.map(3)) == (P, IDL, D, None)
    assert mapper.map(float("nan")) is None and mapper.map(float("inf")) is None
    assert mapper.raw(1) == "1"


def test_enumerations_match_by_value_or_by_name() -> None:
    names = {0: "Manual", 1: "Automatic", 2: "Setup"}  # MachineOperationMode's EnumStrings
    by_name = StateMapper({"Automatic": P, "Setup": S}, enum_names=names)
    assert (by_name.map(1), by_name.map(2), by_name.map(0)) == (P, S, None)
    by_value = StateMapper({"1": P})
    assert by_value.map(1) is P
    enum_value = ua.EnumValueType(Value=2, DisplayName=ua.LocalizedText("Setup"), Description=ua.LocalizedText(""))
    assert by_name.map(enum_value) is S
    assert StateMapper({"2": S}).map(enum_value) is S


def test_strings_booleans_and_qualified_names() -> None:
    mapper = StateMapper({"RUNNING": P, "true": P, "false": IDL, "Stopped": D})
    assert (mapper.map("running"), mapper.map(True), mapper.map(False)) == (P, P, IDL)
    assert mapper.map(ua.QualifiedName("Stopped", 3)) is D
    assert mapper.raw(True) == "true"
    assert mapper.map([1, 2]) is None and mapper.map(None) is None


def test_state_ids_match_by_node_id_with_namespaces_by_index_or_uri() -> None:
    mapper = StateMapper(
        {f"nsu={MACHINERY_URI};i=5006": P, "ns=2;s=Idle": IDL}, namespaces=NAMESPACES, names=COMPANION_STATE_NAMES
    )
    assert mapper.map(nid(5006, 4)) is P
    assert mapper.map(nid("Idle", 2)) is IDL
    assert mapper.map(nid(5006, 5)) is None  # the same number in another namespace is another state
    assert mapper.raw(nid(5006, 4)) == "Executing"  # the spec's name for a known state id
    assert mapper.raw(nid(77, 2)) == "nsu=urn:vendor;i=77"  # an unknown one by URI, stable across servers


def test_a_uri_key_the_server_does_not_have_matches_nothing() -> None:
    mapper = StateMapper({"nsu=urn:elsewhere;i=1": P}, namespaces=NAMESPACES)
    assert mapper.map(nid(1, 2)) is None


def test_an_empty_map_understands_canonical_names_and_the_companion_specs_states() -> None:
    mapper = StateMapper({}, namespaces=NAMESPACES)
    assert mapper.map("SETUP") is S
    assert mapper.map(ua.LocalizedText("Executing")) is P
    assert mapper.map(nid(5004, 4)) is D  # MachineryItemState OutOfService
    assert mapper.map(nid(5041, 5)) is P  # ProductionProgramState Running
    assert mapper.raw(nid(5041, 5)) == "Running"
    assert mapper.map("Bogus") is None


@pytest.mark.parametrize(
    ("state", "expected"),
    [("Executing", P), ("NotExecuting", IDL), ("OutOfService", D), ("NotAvailable", D)],
)
def test_the_machinery_item_state_map_by_name_and_by_id(state: str, expected: MachineState) -> None:
    ids = {"OutOfService": 5004, "NotAvailable": 5005, "Executing": 5006, "NotExecuting": 5007}
    mapper = StateMapper(MACHINERY_ITEM_STATE_MAP, namespaces=NAMESPACES)
    assert mapper.map(ua.LocalizedText(state, "en")) is expected
    assert mapper.map(nid(ids[state], 4)) is expected


def test_raw_is_at_most_128_characters() -> None:
    assert len(StateMapper({}).raw("x" * 500)) == 128


def test_a_malformed_node_id_key_is_reported() -> None:
    assert check_state_map({"Executing": P, "nsu=urn:x;i=1": P}) is None
    assert "ns= takes a namespace index" in (check_state_map({"ns=a;i=1": P}) or "")
