"""Pure mapping at the edge: OPC UA data values to canonical samples; backoff; log-once (meters: test_edge_meters)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import ua
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from core.settings import Deadband, OpcUaSource, SignalSpec
from core.signals import MachineState, Quality
from core.wire import Sample, TimestampSource
from edge.errors import UnmappedState, UnusableReading
from edge.opcua_reading import (
    OVERFLOW_FLAG,
    REJECT_FRACTIONAL,
    REJECT_NEGATIVE,
    REJECT_NOT_FINITE,
    REJECT_OUT_OF_RANGE,
    REJECT_WRONG_TYPE,
    TS_FUTURE_FLAG,
    TS_MISSING_FLAG,
    TS_TOO_OLD_FLAG,
    RejectedReading,
    has_overflow,
)
from edge.opcua_source import TS_FALLBACK_FLAG, OpcUaCollector, datavalue_to_sample, item_request, quality_of
from edge.plan import PlannedSignal, read_options
from edge.reconnect import Backoff, LinkState

SOURCE_TS = datetime(2026, 11, 25, 8, 0, 0, 912345, tzinfo=UTC)
SERVER_TS = SOURCE_TS + timedelta(milliseconds=3)
RECEIVED = SOURCE_TS + timedelta(milliseconds=40)
STATE_MAP = {"1": MachineState.PRODUCING, "2": MachineState.IDLE, "4": MachineState.DOWN}


def datavalue(
    value: object,
    variant_type: ua.VariantType,
    *,
    status: int = ua.StatusCodes.Good,
    source_ts: datetime | None = SOURCE_TS,
    server_ts: datetime | None = SERVER_TS,
) -> ua.DataValue:
    return ua.DataValue(
        ua.Variant(value, variant_type),
        StatusCode=ua.StatusCode(status),
        SourceTimestamp=source_ts,
        ServerTimestamp=server_ts,
    )


def test_state_code_is_mapped_and_keeps_the_raw_code_and_device_time() -> None:
    sample = datavalue_to_sample("cnc-01", "state", datavalue(4, ua.VariantType.Int32), RECEIVED, state_map=STATE_MAP)
    assert (sample.equipment, sample.signal, sample.value, sample.raw) == ("cnc-01", "state", "DOWN", "4")
    assert sample.ts == SOURCE_TS
    assert sample.ts_source is TimestampSource.DEVICE
    assert sample.quality is Quality.GOOD
    assert sample.flags == ()


def test_unmapped_state_code_is_refused_rather_than_guessed() -> None:
    with pytest.raises(UnmappedState) as err:
        datavalue_to_sample("cnc-01", "state", datavalue(7, ua.VariantType.Int32), RECEIVED, state_map=STATE_MAP)
    assert err.value.code == "7"


def test_without_a_state_map_the_value_must_be_canonical_or_a_built_in_state() -> None:
    sample = datavalue_to_sample("cnc-01", "state", datavalue("SETUP", ua.VariantType.String), RECEIVED)
    assert (sample.value, sample.raw) == ("SETUP", "SETUP")
    # "Running" is a built-in state (OPC 40501 program state, edge/states.py); "Spinning" is nobody's.
    running = datavalue_to_sample("cnc-01", "state", datavalue("Running", ua.VariantType.String), RECEIVED)
    assert running.value == "PRODUCING"
    with pytest.raises(UnmappedState):
        datavalue_to_sample("cnc-01", "state", datavalue("Spinning", ua.VariantType.String), RECEIVED)


def test_counter_and_process_value_keep_their_numbers() -> None:
    parts = datavalue_to_sample("cnc-01", "parts_total", datavalue(1234, ua.VariantType.UInt32), RECEIVED)
    assert parts.value == 1234 and isinstance(parts.value, int) and parts.raw is None
    speed = datavalue_to_sample("cnc-01", "spindle_speed", datavalue(8000.5, ua.VariantType.Double), RECEIVED)
    assert speed.value == 8000.5


@pytest.mark.parametrize(
    ("source", "expected_ts"),
    [(TimestampSource.SERVER, SERVER_TS), (TimestampSource.GATEWAY, RECEIVED)],
)
def test_timestamp_source_is_configurable(source: TimestampSource, expected_ts: datetime) -> None:
    sample = datavalue_to_sample(
        "cnc-01", "parts_total", datavalue(1, ua.VariantType.UInt32), RECEIVED, timestamp_source=source
    )
    assert (sample.ts, sample.ts_source, sample.flags) == (expected_ts, source, ())


@pytest.mark.parametrize(
    ("source_ts", "reason"),
    [
        (None, TS_MISSING_FLAG),
        (datetime(2000, 1, 1, 0, 0, 5, tzinfo=UTC), TS_TOO_OLD_FLAG),
        (datetime(1601, 1, 1, tzinfo=UTC), TS_TOO_OLD_FLAG),
        (RECEIVED + timedelta(minutes=5, seconds=1), TS_FUTURE_FLAG),
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), TS_FUTURE_FLAG),
    ],
)
def test_missing_too_old_or_future_device_time_falls_back_to_gateway_time_and_is_flagged(
    source_ts: datetime | None, reason: str
) -> None:
    sample = datavalue_to_sample(
        "cnc-01", "parts_total", datavalue(1, ua.VariantType.UInt32, source_ts=source_ts), RECEIVED
    )
    assert sample.ts == RECEIVED
    assert sample.ts_source is TimestampSource.GATEWAY
    assert sample.flags == (TS_FALLBACK_FLAG, reason)


def test_floor_and_future_skew_are_the_signals_own() -> None:
    old = datavalue(1, ua.VariantType.UInt32, source_ts=datetime(1999, 6, 1, tzinfo=UTC))
    kept = datavalue_to_sample(
        "cnc-01", "parts_total", old, RECEIVED, earliest_timestamp=datetime(1990, 1, 1, tzinfo=UTC)
    )
    assert (kept.ts, kept.flags) == (datetime(1999, 6, 1, tzinfo=UTC), ())
    ahead = datavalue(1, ua.VariantType.UInt32, source_ts=RECEIVED + timedelta(seconds=3))
    assert datavalue_to_sample("cnc-01", "parts_total", ahead, RECEIVED).flags == ()
    strict = datavalue_to_sample("cnc-01", "parts_total", ahead, RECEIVED, max_future_skew=timedelta(seconds=1))
    assert strict.flags == (TS_FALLBACK_FLAG, TS_FUTURE_FLAG)
    late_server = datavalue(1, ua.VariantType.UInt32, server_ts=datetime(1601, 1, 1, tzinfo=UTC))
    by_server = datavalue_to_sample(
        "cnc-01", "parts_total", late_server, RECEIVED, timestamp_source=TimestampSource.SERVER
    )
    assert (by_server.ts, by_server.flags) == (RECEIVED, (TS_FALLBACK_FLAG, TS_TOO_OLD_FLAG))


@pytest.mark.parametrize(
    ("status", "quality"),
    [
        (ua.StatusCodes.Good, Quality.GOOD),
        (ua.StatusCodes.UncertainLastUsableValue, Quality.UNCERTAIN),
        (ua.StatusCodes.BadCommunicationError, Quality.BAD),
    ],
)
def test_quality_follows_the_status_code_severity(status: int, quality: Quality) -> None:
    assert quality_of(ua.StatusCode(status)) is quality
    sample = datavalue_to_sample("cnc-01", "parts_total", datavalue(3, ua.VariantType.UInt32, status=status), RECEIVED)
    assert sample.quality is quality


def test_readings_that_cannot_be_samples_are_refused_with_a_reason() -> None:
    empty = ua.DataValue(ua.Variant(), StatusCode=ua.StatusCode(ua.StatusCodes.BadNoCommunication))
    with pytest.raises(UnusableReading, match="no value"):
        datavalue_to_sample("cnc-01", "parts_total", empty, RECEIVED)
    with pytest.raises(UnusableReading, match="expected a number"):
        datavalue_to_sample("cnc-01", "spindle_speed", datavalue("fast", ua.VariantType.String), RECEIVED)
    with pytest.raises(UnusableReading, match="must not be negative"):
        datavalue_to_sample("cnc-01", "parts_total", datavalue(-1, ua.VariantType.Int32), RECEIVED)


INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("signal", "value", "variant_type", "kind"),
    [
        ("parts_total", float("inf"), ua.VariantType.Double, REJECT_NOT_FINITE),
        ("parts_total", float("-inf"), ua.VariantType.Double, REJECT_NOT_FINITE),
        ("parts_total", float("nan"), ua.VariantType.Double, REJECT_NOT_FINITE),
        ("energy_kwh", float("inf"), ua.VariantType.Double, REJECT_NOT_FINITE),
        ("spindle_speed", float("nan"), ua.VariantType.Float, REJECT_NOT_FINITE),
        ("parts_total", 2**64 - 1, ua.VariantType.UInt64, REJECT_OUT_OF_RANGE),
        ("spindle_speed", INT64_MAX + 1, ua.VariantType.UInt64, REJECT_OUT_OF_RANGE),
        ("parts_total", 1e300, ua.VariantType.Double, REJECT_OUT_OF_RANGE),
        ("parts_total", 2.5, ua.VariantType.Double, REJECT_FRACTIONAL),
        ("parts_total", -1.0, ua.VariantType.Double, REJECT_NEGATIVE),
        ("energy_kwh", -0.5, ua.VariantType.Double, REJECT_NEGATIVE),
        ("parts_total", "12", ua.VariantType.String, REJECT_WRONG_TYPE),
        ("parts_total", True, ua.VariantType.Boolean, REJECT_WRONG_TYPE),
        ("parts_total", b"\x00\x01", ua.VariantType.ByteString, REJECT_WRONG_TYPE),
        ("parts_total", [1, 2, 3], ua.VariantType.UInt32, REJECT_WRONG_TYPE),
        ("spindle_speed", ua.LocalizedText("fast"), ua.VariantType.LocalizedText, REJECT_WRONG_TYPE),
        ("spindle_speed", ua.Argument(Name="x"), ua.VariantType.ExtensionObject, REJECT_WRONG_TYPE),
        ("spindle_speed", datetime(2026, 1, 1, tzinfo=UTC), ua.VariantType.DateTime, REJECT_WRONG_TYPE),
    ],
)
def test_hostile_values_are_refused_with_a_reason_key(
    signal: str, value: object, variant_type: ua.VariantType, kind: str
) -> None:
    with pytest.raises(RejectedReading) as err:
        datavalue_to_sample("cnc-01", signal, datavalue(value, variant_type), RECEIVED)
    assert err.value.kind == kind
    assert len(err.value.reason) < 200  # never the whole hostile value


@pytest.mark.parametrize(
    ("signal", "value", "variant_type", "kept"),
    [
        ("parts_total", INT64_MAX, ua.VariantType.UInt64, INT64_MAX),
        ("parts_total", 12.0, ua.VariantType.Double, 12),
        ("energy_kwh", 7, ua.VariantType.UInt32, 7.0),
        ("energy_kwh", 1e300, ua.VariantType.Double, 1e300),
        ("spindle_speed", -(2**63), ua.VariantType.Int64, -(2**63)),
        ("spindle_speed", True, ua.VariantType.Boolean, True),
        ("spindle_speed", -3.5, ua.VariantType.Float, -3.5),
    ],
)
def test_values_at_the_edges_are_kept_as_the_model_keeps_them(
    signal: str, value: object, variant_type: ua.VariantType, kept: object
) -> None:
    sample = datavalue_to_sample("cnc-01", signal, datavalue(value, variant_type), RECEIVED)
    assert sample.value == kept and type(sample.value) is type(kept)
    # Built without validation, yet exactly what the model makes of the same fields.
    assert Sample.model_validate(sample.model_dump()) == sample


def test_status_code_travels_with_the_sample_and_overflow_is_flagged() -> None:
    good = datavalue_to_sample("cnc-01", "parts_total", datavalue(3, ua.VariantType.UInt32), RECEIVED)
    assert (good.status, good.quality) == (None, Quality.GOOD)
    uncertain = ua.StatusCodes.UncertainSensorNotAccurate
    sample = datavalue_to_sample(
        "cnc-01", "parts_total", datavalue(3, ua.VariantType.UInt32, status=uncertain), RECEIVED
    )
    assert (sample.status, sample.quality) == (uncertain, Quality.UNCERTAIN)
    overflowed = ua.StatusCodes.Good | 0x0400 | 0x0080  # InfoType DataValue + Overflow
    flagged = datavalue_to_sample(
        "cnc-01", "parts_total", datavalue(4, ua.VariantType.UInt32, status=overflowed), RECEIVED
    )
    assert (flagged.status, flagged.quality, flagged.flags) == (overflowed, Quality.GOOD, (OVERFLOW_FLAG,))
    assert has_overflow(ua.StatusCode(overflowed)) and not has_overflow(ua.StatusCode(0x0080))
    bad = datavalue_to_sample(
        "cnc-01",
        "spindle_speed",
        datavalue(0.0, ua.VariantType.Double, status=ua.StatusCodes.BadSensorFailure),
        RECEIVED,
    )
    assert (bad.value, bad.status, bad.quality) == (0.0, ua.StatusCodes.BadSensorFailure, Quality.BAD)
    for built in (sample, flagged, bad):
        assert Sample.model_validate(built.model_dump()) == built


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, 10.0)
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_link_logs_once_when_lost_and_once_when_back(caplog: pytest.LogCaptureFixture) -> None:
    link = LinkState(logging.getLogger("test.link"), "broker x")
    with caplog.at_level(logging.WARNING, logger="test.link"):
        link.up()
        for _ in range(5):
            link.down("connection refused")
        link.up()
    lost, back = (r.getMessage() for r in caplog.records)
    assert lost == "broker x lost: connection refused; reconnecting with backoff"
    assert re.fullmatch(r"broker x is back after 5 failed attempts and \d+\.\d s", back), back  # and how long away


def test_broken_source_config_is_refused_at_start_naming_the_field() -> None:
    class NoSink:
        def put(self, sample: object) -> None:
            raise AssertionError("nothing should be produced")

    bad_node = OpcUaSource(endpoint="opc.tcp://127.0.0.1:1/factory/", equipment="cnc-01", nodes={"state": "ns=2;x"})
    with pytest.raises(ConfigError, match=r"nodes\.state.*invalid NodeId"):
        OpcUaCollector(bad_node, NoSink())
    bad_signal = bad_node.model_copy(update={"nodes": {"PartsTotal": "ns=2;s=cnc-01.PartsTotal"}})
    with pytest.raises(ConfigError, match="lower_snake_case"):
        OpcUaCollector(bad_signal, NoSink())


device_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.binary(max_size=40),
    st.lists(st.integers(), max_size=4),
    st.datetimes(timezones=st.just(UTC)),
)
device_times = st.one_of(st.none(), st.datetimes(min_value=datetime(1601, 1, 1), timezones=st.just(UTC)))


@settings(max_examples=400, deadline=None)
@given(
    signal=st.sampled_from(["state", "parts_total", "energy_kwh", "spindle_speed"]),
    value=device_values,
    status=st.integers(min_value=0, max_value=2**32 - 1),
    source_ts=device_times,
)
def test_any_device_value_becomes_a_valid_sample_or_a_counted_refusal(
    signal: str, value: object, status: int, source_ts: datetime | None
) -> None:
    try:
        variant = ua.Variant(value)
    except ua.UaError:
        assume(False)  # asyncua cannot encode it either (e.g. an empty array of unknown type)
    data_value = ua.DataValue(variant, StatusCode=ua.StatusCode(status), SourceTimestamp=source_ts)
    try:
        sample = datavalue_to_sample("cnc-01", signal, data_value, RECEIVED, state_map=STATE_MAP)
    except UnusableReading:
        return
    assert Sample.model_validate(sample.model_dump()) == sample


def test_signals_with_the_same_node_and_options_share_one_monitored_item() -> None:
    src = OpcUaSource(
        endpoint="opc.tcp://127.0.0.1:1/",
        equipment="cnc-01",
        nodes={
            "parts_total": "ns=2;s=count",
            "cycle_count": "ns=2;s=count",
            "spindle_speed": SignalSpec(address="ns=2;s=count", deadband=Deadband(kind="absolute", value=5)),
        },
    )
    requests = [
        item_request(
            PlannedSignal("cnc-01", s, ua.NodeId.from_string("ns=2;s=count"), "", read_options(src, src.spec(s)), None)
        )
        for s in src.nodes
    ]
    assert requests[0] == requests[1] != requests[2]
    flt = requests[2].create_request(7).RequestedParameters.Filter
    assert (flt.Trigger, flt.DeadbandType, flt.DeadbandValue) == (
        ua.DataChangeTrigger.StatusValue,
        ua.DeadbandType.Absolute,
        5.0,
    )
    plain = requests[0].create_request(8).RequestedParameters
    assert (plain.ClientHandle, plain.QueueSize, plain.SamplingInterval) == (8, 1000, 100.0)
    assert not isinstance(plain.Filter, ua.DataChangeFilter)  # the server's default: status or value
