"""Meter sources without a broker: topic templates, JSON paths, device clocks and the per-message boundary.

The live collector against a real Mosquitto is in test_edge_meters_live.py.
"""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.errors import ConfigError
from core.settings import BrokerSettings, MeterAvailability, MeterField, MeterSource
from core.wire import Sample, TimestampSource
from edge.meter_addressing import compile_json_path, compile_template, compile_topic_filter
from edge.meter_source import (
    MeterCollector,
    MeterRejection,
    check_meter_source,
    decode_payload,
    parse_meter_payload,
    reading_value,
)
from edge.meter_time import DeviceClock, UnusableTime, from_epoch, local_to_utc

RECEIVED = datetime(2026, 11, 25, 8, 0, 0, 40000, tzinfo=UTC)
BROKER = BrokerSettings(host="127.0.0.1", port=1)  # never connected to in these tests
BERLIN = "Europe/Berlin"


class ListSink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def put(self, sample: Sample) -> None:
        self.samples.append(sample)


def payload(document: object) -> bytes:
    return json.dumps(document).encode()


METER = MeterSource(
    topic="meters/meter-a",
    equipment="meter-a",
    fields={"energy_kwh": "energy.active_import_kwh", "power_kw": "power.active_kw"},
    timestamp_field="ts",
)


# --- JSON paths --------------------------------------------------------------------------------------


def test_json_paths_are_dotted_with_indices_brackets_and_quoted_keys() -> None:
    document = {
        "energy": {"active_import_kwh": 123.456},
        "phases": [{"kw": 1.0}, {"kw": 2.5}],
        "a.b": {"c": 7},
        "0": "key zero",
    }
    cases = {
        "energy.active_import_kwh": 123.456,
        "$.energy.active_import_kwh": 123.456,
        "phases.1.kw": 2.5,
        "phases[1].kw": 2.5,
        "$.phases[-1].kw": 2.5,
        '["a.b"].c': 7,
        "$['a.b'].c": 7,
        "0": "key zero",  # digits: a key where the object has it
    }
    for path, expected in cases.items():
        assert compile_json_path(path).extract(document) == expected, path
    assert compile_json_path("$").extract(42.5) == 42.5  # a meter that publishes a bare number


@pytest.mark.parametrize(
    ("path", "missing"),
    [("energy.reactive.kvarh", "energy.reactive"), ("phases.2.kw", "phases.2"), ("phases[5]", "phases[5]")],
)
def test_a_missing_json_path_names_the_part_that_is_not_there(path: str, missing: str) -> None:
    with pytest.raises(KeyError) as err:
        compile_json_path(path).extract({"energy": {}, "phases": [{}, {}]})
    assert err.value.args[0] == missing


@pytest.mark.parametrize("bad", ["a..b", ".a", "a.", "a[", "a[x]", "$a", "a]b"])
def test_broken_json_paths_are_refused_when_compiled(bad: str) -> None:
    with pytest.raises(ValueError, match="JSON path"):
        compile_json_path(bad)


# --- topics and templates ----------------------------------------------------------------------------


def test_topic_filters_capture_wildcards_and_named_levels() -> None:
    named = compile_topic_filter("plant/{hall}/em/{meter}/reading")
    assert named.subscription == "plant/+/em/+/reading"
    assert named.match("plant/h1/em/m-7/reading") == ("h1", "m-7")
    assert named.match("plant/h1/em/m-7/status") is None
    assert named.match("plant/h1/em/m-7/reading/x") is None

    multi = compile_topic_filter("tele/+/#")
    assert multi.match("tele/dev1/SENSOR") == ("dev1", "SENSOR")
    assert multi.match("tele/dev1/a/b") == ("dev1", "a/b")
    assert multi.match("tele/dev1") == ("dev1", "")  # '#' includes the parent level
    assert compile_topic_filter("+/x").match("$SYS/x") is None  # wildcards never match '$' topics


def test_templates_render_equipment_and_signals_from_the_topic() -> None:
    topic = compile_topic_filter("shellies/{device}/emeter/+/{quantity}")
    captured = topic.match("shellies/em3-01/emeter/2/power")
    assert captured is not None
    assert compile_template("meter-{device}").render(topic, captured) == "meter-em3-01"
    assert compile_template("{quantity}_l{2}_w").render(topic, captured) == "power_l2_w"
    with pytest.raises(ValueError, match=r"\{serial\}.*not a named level"):
        compile_template("{serial}").check(topic)
    with pytest.raises(ValueError, match="3 wildcard"):
        compile_template("{4}").check(topic)
    with pytest.raises(ValueError, match="braces"):
        compile_template("meter-{a-b}")


@pytest.mark.parametrize(
    ("update", "field", "reason"),
    [
        ({"topic": "meters/#/a"}, "topic", "'#' must be the last"),
        ({"topic": "meters/m{x}"}, "topic", "mixes text and wildcards"),
        ({"topic": "$share/g/meters/+"}, "topic", "shared subscriptions"),
        ({"topic": "meters/{m}/{m}"}, "topic", "appears twice"),
        ({"topic": "meters/+", "equipment": "{meter}"}, "equipment", "not a named level"),
        ({"equipment": "meter a"}, "equipment", "not an equipment id"),
        ({"fields": {"Energy": "e"}}, "fields.Energy", "lower_snake_case"),
        ({"fields": {"energy_kwh": "e..x"}}, "fields.energy_kwh.path", "empty key"),
        ({"timestamp_field": "ts["}, "timestamp_field", "JSON path"),
        ({"ignore": ["a/#/b"]}, "ignore[0]", "'#'"),
        ({"topic": "m/{meter}", "equipment": "{meter}", "availability": {"topic": "lwt/+"}}, "availability.topic", ""),
    ],
)
def test_a_broken_source_is_refused_at_start_naming_the_field(update: dict[str, Any], field: str, reason: str) -> None:
    source = MeterSource.model_validate(METER.model_dump() | update)
    with pytest.raises(ConfigError, match=rf"meters\[3\]\.{re.escape(field)}.*{reason}"):
        check_meter_source(source, "meters[3]")
    with pytest.raises(ConfigError, match=rf"meters\[0\]\.{re.escape(field)}"):
        MeterCollector("gw-meters", [source], BROKER, ListSink())


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"timezone": "+15:00"}, "out of range"),
        ({"timestamp_format": "epoch_ns"}, "strptime pattern"),
        ({"qos": 3}, "qos"),
        ({"fields": {"energy_kwh": {"path": "e", "scale": 0}}}, "finite number other than 0"),
        ({"availability": {"topic": "x", "online": ["1"], "offline": ["1"]}}, "both online and offline"),
        ({"earliest_timestamp": "2001-01-01T00:00:00"}, "time zone"),
    ],
)
def test_settings_refuse_what_no_meter_can_mean(update: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        MeterSource.model_validate(METER.model_dump() | update)


def test_a_filter_covers_another_when_it_matches_every_topic_the_other_does() -> None:
    def covers(wide: str, narrow: str) -> bool:
        return compile_topic_filter(wide).covers(compile_topic_filter(narrow))

    assert covers("tele/+/#", "tele/+/LWT")
    assert covers("tele/#", "tele/+/#")
    assert covers("#", "a/b")
    assert covers("a/+", "a/b")
    assert not covers("a/b", "a/+")
    assert not covers("tele/+/LWT", "tele/+/#")
    assert not covers("a/+", "a/b/c")
    assert not covers("a/+/c", "a/b/d")


def test_the_collector_subscribes_each_topic_once_at_the_highest_qos_asked() -> None:
    sources = [
        METER.model_copy(update={"topic": "meters/{meter}", "equipment": "{meter}", "qos": 0}),
        METER.model_copy(
            update={
                "topic": "meters/+",
                "equipment": "{1}",
                "qos": 2,
                "availability": MeterAvailability(topic="meters/+/LWT"),
            }
        ),
        METER.model_copy(update={"qos": 1}),
    ]
    collector = MeterCollector("gw-meters", sources, BROKER, ListSink())
    # meters/meter-a is under meters/+: subscribed twice, the broker would send its readings twice.
    assert collector.subscriptions() == {"meters/+": 2, "meters/+/LWT": 2}


# --- device clocks -----------------------------------------------------------------------------------


def clock(**update: Any) -> DeviceClock:
    return DeviceClock.of(METER.model_copy(update=update))


def test_device_times_with_a_zone_or_as_epochs_in_seconds_ms_or_us() -> None:
    expected = datetime(2026, 11, 25, 8, 0, 0, 250000, tzinfo=UTC)
    epoch_s = expected.timestamp()
    auto = clock()
    for value in (
        "2026-11-25T08:00:00.250000Z",
        "2026-11-25T16:00:00.25+08:00",
        "2026-11-25 08:00:00.250+00:00",
        epoch_s,
        int(epoch_s * 1000),
        int(epoch_s * 1_000_000),
        str(int(epoch_s * 1000)),
    ):
        stamped = auto.read(value, RECEIVED)
        assert (stamped.ts, stamped.source, stamped.flags) == (expected, TimestampSource.DEVICE, ()), value
    assert clock(timestamp_format="epoch_ms").read(1_795_000_000_000, RECEIVED).ts == from_epoch(1_795_000_000, 1)
    assert clock(timestamp_format="epoch_s").read("1795000000", RECEIVED).ts == from_epoch(1_795_000_000, 1)


def test_naive_local_time_is_read_in_the_meters_zone() -> None:
    berlin, shanghai = clock(timezone=BERLIN), clock(timezone="+08:00")
    winter = berlin.read("2026-11-25T09:00:00", RECEIVED)
    assert (winter.ts, winter.source) == (datetime(2026, 11, 25, 8, tzinfo=UTC), TimestampSource.DEVICE)
    summer = berlin.read("2026-07-01 10:00:00", datetime(2026, 7, 1, 8, 1, tzinfo=UTC))
    assert summer.ts == datetime(2026, 7, 1, 8, tzinfo=UTC)
    assert shanghai.read("2026-11-25T16:00:00", RECEIVED).ts == datetime(2026, 11, 25, 8, tzinfo=UTC)
    custom = clock(timezone=BERLIN, timestamp_format="%d.%m.%Y %H:%M:%S")
    assert custom.read("25.11.2026 09:00:00", RECEIVED).ts == datetime(2026, 11, 25, 8, tzinfo=UTC)
    packed = clock(timezone="UTC", timestamp_format="%Y%m%d%H%M%S")
    assert packed.read(20261125080000, RECEIVED).ts == datetime(2026, 11, 25, 8, tzinfo=UTC)


def test_the_repeated_hour_of_a_dst_end_is_read_forward_from_the_previous_reading() -> None:
    zone = clock(timezone=BERLIN).zone
    assert zone is not None
    # 2026-10-25: Berlin's clocks go from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
    first, second = datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    naive = datetime(2026, 10, 25, 2, 30)
    # after a reading at 02:59 CEST (00:59Z) the next 02:30 is the second one
    assert local_to_utc(naive, zone, second, after=datetime(2026, 10, 25, 0, 59, tzinfo=UTC)) == (second, ())
    # after a reading at 02:29 CEST it is still the first one, even delivered an hour late
    late = second + timedelta(minutes=5)
    assert local_to_utc(naive, zone, late, after=datetime(2026, 10, 25, 0, 29, tzinfo=UTC)) == (first, ())
    # no previous reading: the one nearer the gateway's clock
    assert local_to_utc(naive, zone, first + timedelta(seconds=3)) == (first, ())
    assert local_to_utc(naive, zone, second + timedelta(seconds=3)) == (second, ())


def test_a_local_time_the_clocks_skipped_is_read_and_flagged() -> None:
    # 2026-03-29: 02:00 CET -> 03:00 CEST; 02:30 does not exist (a meter on standard time all year).
    stamped = clock(timezone=BERLIN).read("2026-03-29T02:30:00", datetime(2026, 3, 29, 1, 31, tzinfo=UTC))
    assert stamped.ts == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert stamped.flags == ("ts_dst_gap",)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "ts_missing"),
        ("soon", "ts_unreadable"),
        ("0001-01-01T00:00:00+01:00", "ts_unreadable"),  # the crash: outside the calendar in UTC
        ("9999-12-31T23:59:59-01:00", "ts_unreadable"),
        ("9999-12-31T23:59:59Z", "ts_future"),
        ("1601-01-01T00:00:00Z", "ts_too_old"),  # a Windows FILETIME of 0
        ("2000-01-01T00:00:00Z", "ts_too_old"),  # a PLC that lost its clock
        (0, "ts_too_old"),
        (-1, "ts_too_old"),
        (10**30, "ts_unreadable"),
        (1e308, "ts_unreadable"),
        (math.inf, "ts_unreadable"),
        (math.nan, "ts_unreadable"),
        (True, "ts_unreadable"),
        ({"t": 1}, "ts_unreadable"),
        ("2026-11-25T08:00:00", "ts_no_zone"),  # naive, and the source names no zone
        ("2026-11-25T08:10:00Z", "ts_future"),  # 10 min ahead; the source allows 5
        ("x" * 10_000, "ts_unreadable"),
    ],
)
def test_absurd_device_times_become_gateway_time_flagged_with_the_reason(value: Any, kind: str) -> None:
    stamped = clock().read(value, RECEIVED)
    assert (stamped.ts, stamped.source, stamped.flags) == (RECEIVED, TimestampSource.GATEWAY, ("ts_fallback", kind))
    assert isinstance(stamped.fallback, UnusableTime)


def test_the_floor_and_the_skew_are_per_source() -> None:
    lenient = clock(earliest_timestamp=datetime(1990, 1, 1, tzinfo=UTC), max_future_skew_s=3600)
    assert lenient.read("2000-01-01T00:00:00Z", RECEIVED).source is TimestampSource.DEVICE
    assert lenient.read("2026-11-25T08:30:00Z", RECEIVED).source is TimestampSource.DEVICE


# --- values and payloads -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (math.inf, "not_finite"),
        (-math.inf, "not_finite"),
        (math.nan, "not_finite"),
        (2**63, "huge_int"),
        (-(2**63) - 1, "huge_int"),
        ("12.5", "not_a_number"),
        (True, "not_a_number"),
        (None, "not_a_number"),
        ({"v": 1}, "not_a_number"),
        ([1, 2], "not_a_number"),
    ],
)
def test_a_value_that_is_no_reading_is_refused_with_its_kind(value: Any, kind: str) -> None:
    with pytest.raises(MeterRejection) as err:
        reading_value(value, 1.0)
    assert err.value.kind == kind


def test_values_are_scaled_to_the_signals_unit() -> None:
    assert reading_value(1234, 1.0) == 1234
    assert reading_value(1234, 0.001) == pytest.approx(1.234)
    with pytest.raises(MeterRejection, match="not a finite"):
        reading_value(1e308, 1e10)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"x" * 300_000, "too_large"),
        (b'{"e": "\xff\xfe"}', "not_utf8"),
        ('{"e": 1}'.encode("utf-16"), "not_utf8"),
        (b"{not json", "not_json"),
        (b"", "not_json"),
        (b"[" * 33 + b"]" * 33, "too_deep"),
        (b"[" * 200_000 + b"]" * 200_000, "too_large"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "too_deep"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
    ],
)
def test_a_payload_that_cannot_be_read_is_refused_whole(raw: bytes, kind: str) -> None:
    with pytest.raises(MeterRejection) as err:
        decode_payload(raw, 256 * 1024, 32)
    assert err.value.kind == kind


def test_nan_infinity_and_huge_integers_in_a_payload_cost_only_their_field() -> None:
    meter = METER.model_copy(
        update={"fields": {"energy_kwh": "e", "power_kw": "p", "voltage_v": "v", "current_a": "a", "freq_hz": "f"}}
    )
    raw = (
        b'{"ts": "2026-11-25T08:00:00Z", "e": 1e999, "p": NaN, "v": -Infinity, "a": 1' + b"0" * 5000 + b', "f": 50.01}'
    )
    reading = parse_meter_payload(meter, raw, RECEIVED)
    assert [(s.signal, s.value) for s in reading.samples] == [("freq_hz", 50.01)]
    assert [(p.kind, p.reason.split(":")[0]) for p in reading.problems] == [
        ("not_finite", "energy_kwh"),
        ("not_finite", "power_kw"),
        ("not_finite", "voltage_v"),
        ("huge_int", "current_a"),
    ]


def test_meter_payload_becomes_one_sample_per_field_at_the_meter_time() -> None:
    raw = payload(
        {"ts": "2026-11-25T08:00:00.000000Z", "energy": {"active_import_kwh": 123.456}, "power": {"active_kw": 12}}
    )
    reading = parse_meter_payload(METER, raw, RECEIVED)
    assert reading.problems == []
    at = datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert [(s.equipment, s.signal, s.value, s.ts, s.ts_source, s.flags) for s in reading.samples] == [
        ("meter-a", "energy_kwh", 123.456, at, TimestampSource.DEVICE, ()),
        ("meter-a", "power_kw", 12, at, TimestampSource.DEVICE, ()),
    ]


def test_meter_without_timestamp_field_uses_gateway_time() -> None:
    meter = METER.model_copy(update={"timestamp_field": None})
    reading = parse_meter_payload(
        meter, payload({"energy": {"active_import_kwh": 1.5}, "power": {"active_kw": 2}}), RECEIVED
    )
    assert {(s.ts, s.ts_source, s.flags) for s in reading.samples} == {(RECEIVED, TimestampSource.GATEWAY, ())}


def test_one_bad_field_does_not_cost_the_good_ones() -> None:
    raw = payload({"ts": 1_790_000_000, "energy": {"active_import_kwh": -5.0}, "power": {"active_kw": "n/a"}})
    reading = parse_meter_payload(METER, raw, RECEIVED)
    assert reading.samples == []
    assert [(p.kind, str(p)) for p in reading.problems] == [
        ("invalid_value", "energy_kwh: Value error, energy counter must be a non-negative number, got -5.0"),
        ("not_a_number", "power_kw: expected a number, got the text 'n/a'"),
    ]
    ok = parse_meter_payload(METER, payload({"ts": 1_790_000_000, "energy": {"active_import_kwh": 5}}), RECEIVED)
    assert [s.signal for s in ok.samples] == ["energy_kwh"]
    assert [(p.kind, str(p)) for p in ok.problems] == [("field_missing", "power_kw: no field 'power'")]


def test_a_meter_publishing_a_bare_number_per_topic_in_wh() -> None:
    meter = MeterSource(
        topic="shellies/{device}/emeter/{phase}/total",
        equipment="{device}",
        fields={"energy_l{phase}_kwh": MeterField(path="$", scale=0.001)},
    )
    reading = parse_meter_payload(meter, b"123456", RECEIVED, topic="shellies/em3-01/emeter/1/total")
    assert [(s.equipment, s.signal, s.value) for s in reading.samples] == [
        ("em3-01", "energy_l1_kwh", pytest.approx(123.456))
    ]


# --- the collector, message by message ---------------------------------------------------------------

TASMOTA = MeterSource(
    topic="tele/{device}/#",
    ignore=["tele/+/STATE", "tele/+/INFO1", "tele/+/INFO2"],
    equipment="{device}",
    equipment_map={"tasmota-3F2A": "meter-a", "tasmota-77B1": "meter-b"},
    fields={"energy_kwh": "ENERGY.Total", "power_kw": MeterField(path="ENERGY.Power", scale=0.001)},
    timestamp_field="Time",
    timezone=BERLIN,
    availability=MeterAvailability(topic="tele/{device}/LWT"),
)


def tasmota_reading(local_time: str, total: float, watts: float) -> bytes:
    return payload({"Time": local_time, "ENERGY": {"Total": total, "Power": watts, "Voltage": 231}})


def test_a_device_topic_tree_gives_readings_and_availability_and_ignores_the_rest_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = ListSink()
    collector = MeterCollector("gw-meters", [TASMOTA], BROKER, sink)
    with caplog.at_level(logging.DEBUG, logger="edge.meter_source"):
        collector.handle_message("tele/tasmota-3F2A/LWT", b"Online", RECEIVED, retained=True)
        collector.handle_message("tele/tasmota-3F2A/STATE", payload({"Uptime": "0T01:02:03"}), RECEIVED)
        collector.handle_message("tele/tasmota-3F2A/INFO1", payload({"Module": "Generic"}), RECEIVED)
        collector.handle_message(
            "tele/tasmota-3F2A/SENSOR", tasmota_reading("2026-11-25T09:00:00", 1234.5, 1500), RECEIVED
        )
        collector.handle_message("tele/plug-kitchen/SENSOR", tasmota_reading("2026-11-25T09:00:00", 1.0, 10), RECEIVED)
        collector.handle_message("tele/plug-kitchen/SENSOR", tasmota_reading("2026-11-25T09:00:10", 1.0, 10), RECEIVED)
        collector.handle_message("stat/tasmota-3F2A/RESULT", payload({"POWER": "ON"}), RECEIVED)  # old subscription
        collector.handle_message("tele/tasmota-3F2A/LWT", b"Offline", RECEIVED + timedelta(minutes=1))
    at = datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert [(s.equipment, s.signal, s.value, s.ts, s.ts_source, s.raw, s.flags) for s in sink.samples] == [
        ("meter-a", "available", 1.0, RECEIVED, TimestampSource.GATEWAY, "Online", ("retained",)),
        ("meter-a", "energy_kwh", 1234.5, at, TimestampSource.DEVICE, None, ()),
        ("meter-a", "power_kw", 1.5, at, TimestampSource.DEVICE, None, ()),
        ("meter-a", "available", 0.0, RECEIVED + timedelta(minutes=1), TimestampSource.GATEWAY, "Offline", ()),
    ]
    c = collector.counters
    assert (c.messages, c.samples, c.availability, c.ignored, c.malformed, c.rejected) == (8, 4, 2, 5, 0, {})
    warnings = [r for r in caplog.records if r.levelno >= logging.INFO]
    # The unmapped plug is said once, at INFO; status topics and old subscriptions only at DEBUG.
    assert [r.getMessage() for r in warnings] == [
        "meter source {device} (tele/{device}/#): device 'plug-kitchen' (topic tele/plug-kitchen/SENSOR)"
        " is not in equipment_map; its messages are ignored"
    ]


def test_availability_from_a_json_payload_and_words_that_mean_neither() -> None:
    source = MeterSource(
        topic="z2m/{device}",
        equipment="{device}",
        fields={"energy_kwh": "energy"},
        availability=MeterAvailability(topic="z2m/{device}/availability", path="state"),
    )
    sink = ListSink()
    collector = MeterCollector("gw-meters", [source], BROKER, sink)
    collector.handle_message("z2m/meter-z/availability", payload({"state": "online"}), RECEIVED)
    collector.handle_message("z2m/meter-z/availability", payload({"state": "maybe"}), RECEIVED)
    collector.handle_message("z2m/meter-z/availability", payload({"state": {"x": 1}}), RECEIVED)
    collector.handle_message("z2m/meter-z/availability", payload({"state": "offline"}), RECEIVED)
    assert [(s.signal, s.value) for s in sink.samples] == [("available", 1.0), ("available", 0.0)]
    assert collector.counters.rejected == {"availability_unknown": 2}


HOSTILE: list[tuple[str, bytes]] = [
    ("not_utf8", b"\xff\xfe\x00garbage"),
    ("not_json", b"{not json"),
    ("not_json", b""),
    ("too_large", b"[" + b"1," * 200_000 + b"1]"),
    ("too_deep", b"[" * 50_000 + b"]" * 50_000),
    ("too_deep", b'{"a":' * 40 + b"1" + b"}" * 40),
    ("not_finite", b'{"Time": "2026-11-25T09:00:00", "ENERGY": {"Total": Infinity, "Power": 1}}'),
    ("not_finite", b'{"Time": "2026-11-25T09:00:00", "ENERGY": {"Total": NaN, "Power": 1}}'),
    ("not_finite", b'{"Time": "2026-11-25T09:00:00", "ENERGY": {"Total": -1e999, "Power": 1}}'),
    ("huge_int", b'{"Time": "2026-11-25T09:00:00", "ENERGY": {"Total": 18446744073709551616, "Power": 1}}'),
    ("huge_int", b'{"Time": "2026-11-25T09:00:00", "ENERGY": {"Total": 1' + b"0" * 9000 + b', "Power": 1}}'),
    ("not_a_number", b'{"Time": "2026-11-25T09:00:00", "ENERGY": {"Total": "1.5", "Power": 1}}'),
    ("not_a_number", b'{"Time": "2026-11-25T09:00:00", "ENERGY": {"Total": [1], "Power": 1}}'),
    ("invalid_value", b'{"Time": "2026-11-25T09:00:00", "ENERGY": {"Total": -3, "Power": 1}}'),
    ("field_missing", b'{"Time": "2026-11-25T09:00:00", "ENERGY": 5}'),
    ("field_missing", b"[]"),
]


def test_every_hostile_payload_is_a_counted_rejection_and_the_next_reading_flows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = ListSink()
    collector = MeterCollector("gw-meters", [TASMOTA], BROKER, sink)
    with caplog.at_level(logging.WARNING, logger="edge.meter_source"):
        for _, raw in HOSTILE:
            collector.handle_message("tele/tasmota-3F2A/SENSOR", raw, RECEIVED)
        collector.handle_message("tele/tasmota-3F2A/SENSOR", tasmota_reading("2026-11-25T09:00:00", 7.0, 100), RECEIVED)
    expected: dict[str, int] = {}
    for kind, _ in HOSTILE:
        expected[kind] = expected.get(kind, 0) + 1
    expected["field_missing"] += 1  # the Power of '"ENERGY": 5' and of '[]' are both missing
    expected["field_missing"] += 1
    assert collector.counters.rejected == expected
    assert collector.counters.malformed == len(HOSTILE)
    assert [s.value for s in sink.samples if s.signal == "energy_kwh"] == [7.0]
    assert [s.value for s in sink.samples if s.signal == "power_kw"] == [0.001] * 8 + [0.1]
    assert collector.counters.ts_replaced == {"ts_missing": 1}  # '[]' has no Time either
    # Logged once per reason, with the topic and the reason; repeats only counted.
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == len(expected) + 1
    assert all("tele/tasmota-3F2A/SENSOR" in m for m in messages)


@pytest.mark.parametrize(
    ("time_text", "flags"),
    [
        ("0001-01-01T00:00:00+01:00", ("ts_fallback", "ts_unreadable")),
        ("9999-12-31T23:59:59", ("ts_fallback", "ts_future")),
        ("1970-01-01T01:00:00", ("ts_fallback", "ts_too_old")),
    ],
)
def test_absurd_meter_times_keep_the_reading_at_gateway_time_flagged(time_text: str, flags: tuple[str, ...]) -> None:
    sink = ListSink()
    collector = MeterCollector("gw-meters", [TASMOTA], BROKER, sink)
    collector.handle_message("tele/tasmota-3F2A/SENSOR", tasmota_reading(time_text, 7.0, 100), RECEIVED)
    assert {(s.ts, s.ts_source, s.flags) for s in sink.samples} == {(RECEIVED, TimestampSource.GATEWAY, flags)}
    assert collector.counters.ts_replaced == {flags[1]: 1}


def test_a_topic_that_makes_no_equipment_id_is_refused() -> None:
    source = MeterSource(topic="m/#", equipment="{1}", fields={"energy_kwh": "e"})
    sink = ListSink()
    collector = MeterCollector("gw-meters", [source], BROKER, sink)
    collector.handle_message("m/a/b", payload({"e": 1}), RECEIVED)  # 'a/b' is no id
    collector.handle_message("m/" + "x" * 100, payload({"e": 1}), RECEIVED)
    collector.handle_message("m/ok", payload({"e": 1}), RECEIVED)
    assert collector.counters.rejected == {"bad_equipment": 2}
    assert [s.equipment for s in sink.samples] == ["ok"]


def test_a_bug_met_by_one_message_is_counted_and_the_next_message_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge.meter_source as meter_source

    sink = ListSink()
    collector = MeterCollector("gw-meters", [METER], BROKER, sink)
    real = meter_source.read_payload

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if args[4] == b"boom":
            raise ZeroDivisionError("a bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(meter_source, "read_payload", flaky)
    collector.handle_message("meters/meter-a", b"boom", RECEIVED)
    collector.handle_message(
        "meters/meter-a", payload({"ts": "2026-11-25T08:00:00Z", "energy": {"active_import_kwh": 1}}), RECEIVED
    )
    assert collector.counters.rejected == {"unexpected": 1, "field_missing": 1}
    assert [s.signal for s in sink.samples] == ["energy_kwh"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
            ),
            max_leaves=30,
        ).map(lambda doc: json.dumps({"Time": doc, "ENERGY": {"Total": doc, "Power": doc}}).encode()),
    ),
    topic=st.sampled_from(["tele/tasmota-3F2A/SENSOR", "tele/tasmota-3F2A/LWT", "tele/x/SENSOR", "other"]),
)
def test_no_payload_escapes_the_message_boundary(raw: bytes, topic: str) -> None:
    sink = ListSink()
    collector = MeterCollector("gw-meters", [TASMOTA], BROKER, sink)
    collector.handle_message(topic, raw, RECEIVED)
    assert "unexpected" not in collector.counters.rejected
    for sample in sink.samples:
        Sample.model_validate(sample.model_dump())  # every sample that got out is a valid one


def test_configs_of_the_old_shape_stay_valid() -> None:
    old = {"topic": "meters/meter-a", "equipment": "meter-a", "fields": {"energy_kwh": "e"}, "timestamp_field": "ts"}
    source = MeterSource.model_validate(old)
    assert check_meter_source(source).equipment.render(compile_topic_filter(source.topic), ()) == "meter-a"
    assert source.model_dump(mode="json", exclude_defaults=True) == old


def test_check_config_refuses_what_the_meter_collector_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from factory.cli import main

    assets = Path(__file__).resolve().parent.parent / "config" / "factory.yaml"
    settings = tmp_path / "settings.yaml"
    meter = "{topic: 'plant/{meter}/em', equipment: '%s', fields: {energy_kwh: 'energy.total'}}"
    settings.write_text(f"assets: {assets}\nedge: {{id: gw, meters: [{meter % '{device}'}]}}\n")
    assert main(["check-config", "--config", str(settings)]) == 2
    assert "edge.meters[0].equipment: {device} in '{device}' is not a named level" in capsys.readouterr().err
    settings.write_text(f"assets: {assets}\nedge: {{id: gw, meters: [{meter % 'meter-{meter}'}]}}\n")
    assert main(["check-config", "--config", str(settings)]) == 0


def test_the_shipped_settings_meters_compile() -> None:
    from core.settings import load_settings

    settings = load_settings(Path(__file__).resolve().parent.parent / "config" / "platform.yaml")
    assert settings.edge is not None and settings.edge.meters
    for n, meter in enumerate(settings.edge.meters):
        check_meter_source(meter, f"edge.meters[{n}]")


def test_a_topic_without_any_of_the_fields_is_not_a_reading_until_it_has_delivered_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = ListSink()
    collector = MeterCollector("gw-meters", [TASMOTA.model_copy(update={"ignore": []})], BROKER, sink)
    status = payload({"Time": "2026-11-25T09:00:00", "Uptime": "0T01:02:03", "Wifi": {"RSSI": 70}})
    with caplog.at_level(logging.INFO, logger="edge.meter_source"):
        collector.handle_message("tele/tasmota-3F2A/STATE", status, RECEIVED)
        collector.handle_message("tele/tasmota-3F2A/INFO1", payload({"Module": "Generic"}), RECEIVED)
        collector.handle_message("tele/tasmota-3F2A/SENSOR", tasmota_reading("2026-11-25T09:00:00", 1.0, 5), RECEIVED)
        # The meter's firmware renamed its keys: on a topic that read before, that is no longer quiet.
        collector.handle_message(
            "tele/tasmota-3F2A/SENSOR", payload({"Time": "2026-11-25T09:01:00", "E": {}}), RECEIVED
        )
    c = collector.counters
    assert (c.ignored, c.samples, c.rejected) == (2, 2, {"field_missing": 2})
    assert [r.levelname for r in caplog.records] == ["INFO", "WARNING"]  # the second field: only counted
    assert "tele/tasmota-3F2A/STATE carry none of its fields" in caplog.records[0].getMessage()


def test_the_examples_in_docs_meters_md_compile_and_read_what_they_say() -> None:
    import yaml

    text = (Path(__file__).resolve().parent.parent / "docs" / "meters.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    sources = [MeterSource.model_validate(m) for m in yaml.safe_load(example)["edge"]["meters"]]
    plans = [check_meter_source(s, f"meters[{n}]") for n, s in enumerate(sources)]
    assert len(plans) == 3
    sink = ListSink()
    collector = MeterCollector("gw-docs", sources, BROKER, sink)
    collector.handle_message("tele/tasmota-77B1/SENSOR", tasmota_reading("2026-11-25 16:00:00", 5.5, 250), RECEIVED)
    collector.handle_message("shellies/em3-01/emeter/2/total", b"1500", RECEIVED)
    collector.handle_message("shellies/em3-01/online", b"false", RECEIVED)
    at = datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert [(s.equipment, s.signal, s.value, s.ts) for s in sink.samples] == [
        ("meter-b", "energy_kwh", 5.5, at),
        ("meter-b", "power_kw", 0.25, at),
        ("meter-em3-01", "energy_l2_kwh", 1.5, RECEIVED),
        ("meter-em3-01", "available", 0.0, RECEIVED),
    ]
