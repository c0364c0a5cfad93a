"""Pure mapping at the edge: OPC UA data values to canonical samples; backoff; log-once (meters: test_edge_meters)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import ua

from core.errors import ConfigError
from core.settings import OpcUaSource
from core.signals import MachineState, Quality
from core.wire import TimestampSource
from edge.errors import UnmappedState, UnusableReading
from edge.opcua_source import TS_FALLBACK_FLAG, OpcUaCollector, datavalue_to_sample, quality_of
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


def test_without_a_state_map_the_value_must_already_be_canonical() -> None:
    sample = datavalue_to_sample("cnc-01", "state", datavalue("SETUP", ua.VariantType.String), RECEIVED)
    assert (sample.value, sample.raw) == ("SETUP", "SETUP")
    with pytest.raises(UnmappedState):
        datavalue_to_sample("cnc-01", "state", datavalue("Running", ua.VariantType.String), RECEIVED)


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
    "source_ts", [None, datetime(2000, 1, 1, 0, 0, 5, tzinfo=UTC), datetime(1601, 1, 1, tzinfo=UTC)]
)
def test_missing_or_implausible_device_time_falls_back_to_gateway_time_and_is_flagged(
    source_ts: datetime | None,
) -> None:
    sample = datavalue_to_sample(
        "cnc-01", "parts_total", datavalue(1, ua.VariantType.UInt32, source_ts=source_ts), RECEIVED
    )
    assert sample.ts == RECEIVED
    assert sample.ts_source is TimestampSource.GATEWAY
    assert sample.flags == (TS_FALLBACK_FLAG,)


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
    with pytest.raises(UnusableReading, match="non-negative integer"):
        datavalue_to_sample("cnc-01", "parts_total", datavalue(-1, ua.VariantType.Int32), RECEIVED)


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
    assert [r.getMessage() for r in caplog.records] == [
        "broker x lost: connection refused; reconnecting with backoff",
        "broker x is back after 5 failed attempts",
    ]


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
