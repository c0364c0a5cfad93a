"""sample_to_point: measurement, tags, fields and the one value type each measurement allows."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from core.assets import Placement
from core.signals import Quality
from core.wire import Sample, datetime_to_ns
from ingest.mapping import UnmappableSample, sample_to_point

PLACEMENT = Placement(site="cq-demo", workshop="machining", line="line-a", equipment="cnc-01")
TS = datetime(2026, 11, 25, 8, 0, 0, 912_345, tzinfo=UTC)
TAGS = {"site": "cq-demo", "workshop": "machining", "line": "line-a", "equipment": "cnc-01"}


def sample(signal: str, value: object, **extra: object) -> Sample:
    return Sample.model_validate({"equipment": "cnc-01", "signal": signal, "ts": TS, "value": value, **extra})


def test_state_goes_to_machine_state_as_a_string_with_its_raw_code() -> None:
    point = sample_to_point(sample("state", "PRODUCING", raw="1"), PLACEMENT)
    assert point.measurement == "machine_state"
    assert point.tags == {**TAGS, "signal": "state"}
    assert point.fields == {"value": "PRODUCING", "quality": "good", "raw": "1", "ts_source": "device"}
    assert point.time_ns == datetime_to_ns(TS) == 1_795_593_600_912_345_000


def test_part_counters_are_integers() -> None:
    point = sample_to_point(sample("parts_good", 1234.0), PLACEMENT)
    assert point.measurement == "part_counter"
    assert point.fields == {"value": 1234, "quality": "good", "ts_source": "device"}
    assert type(point.fields["value"]) is int


def test_energy_is_a_float_even_when_sent_as_an_integer() -> None:
    point = sample_to_point(sample("energy_kwh", 120, quality="uncertain"), PLACEMENT)
    assert point.measurement == "energy"
    assert point.tags["signal"] == "energy_kwh"
    assert point.fields == {"value": 120.0, "quality": Quality.UNCERTAIN.value, "ts_source": "device"}
    assert type(point.fields["value"]) is float


@pytest.mark.parametrize(("value", "expected"), [(1800, 1800.0), (True, 1.0), (False, 0.0), (12.5, 12.5)])
def test_process_values_are_floats_whatever_number_type_arrives(value: object, expected: float) -> None:
    point = sample_to_point(sample("spindle_speed", value), PLACEMENT)
    assert point.measurement == "process_value"
    assert point.tags["signal"] == "spindle_speed"
    assert type(point.fields["value"]) is float
    assert point.fields["value"] == expected


def test_raw_is_a_field_only_when_present() -> None:
    assert "raw" not in sample_to_point(sample("spindle_speed", 1.0), PLACEMENT).fields
    assert sample_to_point(sample("spindle_speed", 1.0, raw="0x10"), PLACEMENT).fields["raw"] == "0x10"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_process_value_that_is_not_finite_cannot_be_mapped(value: float) -> None:
    # The wire format already refuses such values; a sample built without validation still cannot pass.
    unchecked = Sample.model_construct(equipment="cnc-01", signal="load_pct", ts=TS, value=value)
    with pytest.raises(UnmappableSample, match="not a finite number"):
        sample_to_point(unchecked, PLACEMENT)


def test_timestamp_source_flags_and_status_code_reach_the_store() -> None:
    # The auditor must be able to tell a device time from a gateway's fallback, and see the device's
    # own status code (0x40920000 = UncertainSubstituteValue, severity uncertain) next to the value.
    flagged = sample("parts_total", 7, ts_source="gateway", flags=["ts_fallback", "refresh"], status=0x4092_0000)
    fields = sample_to_point(flagged, PLACEMENT).fields
    assert fields["ts_source"] == "gateway"
    assert fields["flags"] == "ts_fallback,refresh"
    assert fields["status"] == 1_083_310_080
    assert type(fields["status"]) is int
    plain = sample_to_point(sample("parts_total", 7), PLACEMENT).fields
    assert "flags" not in plain and "status" not in plain


@pytest.mark.parametrize("status", [-1, 2**32, 1.5, True, "0"])
def test_a_status_code_outside_uint32_is_refused_by_the_wire_format(status: object) -> None:
    with pytest.raises(ValueError, match="status"):
        sample("parts_total", 7, status=status)


def test_the_equipment_tag_comes_from_the_placement() -> None:
    other = Placement("cq-demo", "assembly", "line-c", "robot-01")
    point = sample_to_point(sample("state", "IDLE"), other)
    assert point.tags == {
        "site": "cq-demo",
        "workshop": "assembly",
        "line": "line-c",
        "equipment": "robot-01",
        "signal": "state",
    }
