"""Meter sources against a real Mosquitto: hostile payloads on one meter while others keep flowing
through a live edge agent to the uplink, and a meter's last will when it loses power (kill -9)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from core.settings import BrokerSettings, EdgeSettings, MeterAvailability, MeterField, MeterSource, UplinkSettings
from core.wire import Sample, TimestampSource, decode_batch
from edge.agent import EdgeAgent
from edge.meter_source import MeterCollector
from tests.servers import MosquittoServer
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def broker_of(server: MosquittoServer) -> BrokerSettings:
    return BrokerSettings(host=server.host, port=server.port)


@contextlib.asynccontextmanager
async def uplink_samples(server: MosquittoServer, topic: str) -> AsyncIterator[list[Sample]]:
    """Every sample the edge uplinks on ``topic`` from now on, decoded, in batch order."""
    samples: list[Sample] = []
    async with aiomqtt.Client(server.host, server.port, identifier=f"observer-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                batch = decode_batch(message.payload)
                assert not batch.rejected, batch.rejected
                samples.extend(batch.samples)

        task = asyncio.create_task(collect())
        try:
            yield samples
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def reading(ts: datetime | str, kwh: object, kw: object = 1.5) -> bytes:
    stamp = ts if isinstance(ts, str) else ts.isoformat()
    return json.dumps({"ts": stamp, "energy": {"total_kwh": kwh}, "power": {"kw": kw}}).encode()


def raw_reading(ts: str, kwh_literal: bytes) -> bytes:
    return b'{"ts": "' + ts.encode() + b'", "energy": {"total_kwh": ' + kwh_literal + b'}, "power": {"kw": 2.0}}'


# What a meter (or whoever holds a broker credential) can send; each with the reasons it is counted under.
HOSTILE: list[tuple[bytes, dict[str, int]]] = [
    (raw_reading("2026-11-25T08:00:00Z", b"Infinity"), {"not_finite": 1}),
    (raw_reading("2026-11-25T08:00:00Z", b"-Infinity"), {"not_finite": 1}),
    (raw_reading("2026-11-25T08:00:00Z", b"NaN"), {"not_finite": 1}),
    (raw_reading("2026-11-25T08:00:00Z", b"1e999"), {"not_finite": 1}),
    (raw_reading("2026-11-25T08:00:00Z", b"18446744073709551616"), {"huge_int": 1}),
    (raw_reading("2026-11-25T08:00:00Z", b"9" * 20_000), {"huge_int": 1}),
    (raw_reading("2026-11-25T08:00:00Z", b'"12.5"'), {"not_a_number": 1}),
    (raw_reading("2026-11-25T08:00:00Z", b"true"), {"not_a_number": 1}),
    (raw_reading("2026-11-25T08:00:00Z", b"null"), {"not_a_number": 1}),
    (raw_reading("2026-11-25T08:00:00Z", b'{"v": 1}'), {"not_a_number": 1}),
    (raw_reading("2026-11-25T08:00:00Z", b"[1, 2]"), {"not_a_number": 1}),
    (raw_reading("2026-11-25T08:00:00Z", b"-4.0"), {"invalid_value": 1}),
    (b"[" * 100_000 + b"]" * 100_000, {"too_deep": 1}),
    (b'{"a":' * 64 + b"1" + b"}" * 64, {"too_deep": 1}),
    (b'{"ts": "' + b"x" * 2_000_000 + b'"}', {"too_large": 1}),
    (b"\xff\xfe\x00\x01 not text", {"not_utf8": 1}),
    (b"{not json", {"not_json": 1}),
    (b"", {"not_json": 1}),
    (b"42", {"field_missing": 2}),
]
# Times no meter can mean: the reading is kept, at gateway time, flagged with the reason.
ABSURD_TIMES = {
    "0001-01-01T00:00:00+01:00": "ts_unreadable",
    "9999-12-31T23:59:59": "ts_future",
    "1601-01-01T00:00:00Z": "ts_too_old",
    "2026-13-45T99:00:00": "ts_unreadable",
}


async def test_hostile_payloads_on_one_meter_while_the_others_keep_flowing_to_the_uplink(
    tmp_path: Path, mosquitto_server: MosquittoServer
) -> None:
    base = f"test/{uuid.uuid4().hex[:8]}"
    uplink = UplinkSettings(topic_prefix=f"{base}/uplink")
    plant = MeterSource(
        topic=f"{base}/plant/{{hall}}/{{meter}}/reading",
        equipment="{meter}",
        fields={"energy_kwh": "energy.total_kwh", "power_kw": "power.kw"},
        timestamp_field="ts",
        timezone="Asia/Shanghai",
    )
    other = MeterSource(
        topic=f"{base}/gas/+", equipment="gas-{1}", fields={"gas_m3": "energy.total_kwh"}, timestamp_field="ts", qos=2
    )
    edge = EdgeSettings(
        id="gw-hostile", buffer_path=tmp_path / "buffer.sqlite", flush_interval_s=0.05, meters=[plant, other]
    )
    steady_count = 150
    async with (
        uplink_samples(mosquitto_server, uplink.topic(edge.id)) as samples,
        EdgeAgent(edge, broker_of(mosquitto_server), uplink) as agent,
        aiomqtt.Client(mosquitto_server.host, mosquitto_server.port) as attacker,
        aiomqtt.Client(mosquitto_server.host, mosquitto_server.port) as steady,
    ):
        collector = agent.meters
        assert collector is not None
        await wait_until(lambda: collector.link.connected, "the meter broker")

        async def keep_flowing() -> None:
            for n in range(steady_count):
                ts = T0 + timedelta(seconds=n)
                await steady.publish(f"{base}/plant/h1/meter-b/reading", reading(ts, 100.0 + n), qos=1)
                await steady.publish(f"{base}/gas/7", reading(ts, 5.0 + n / 8), qos=2)
                await asyncio.sleep(0.005)

        async def attack() -> None:
            for _ in range(3):
                for raw, _kinds in HOSTILE:
                    await attacker.publish(f"{base}/plant/h1/meter-a/reading", raw, qos=1)
                for text in ABSURD_TIMES:
                    await attacker.publish(f"{base}/plant/h1/meter-a/reading", reading(text, 7.0), qos=1)
                await attacker.publish(f"{base}/plant/h1/bad meter!/reading", reading(T0, 1.0), qos=1)
                await attacker.publish(f"{base}/plant/h1/meter-a/status", b"\xff" * 10, qos=1)  # not a reading topic

        await asyncio.gather(keep_flowing(), attack())
        # The attacked meter still reads: naive local time in its zone (Asia/Shanghai, UTC+8).
        local = (T0 + timedelta(hours=8)).replace(tzinfo=None).isoformat()
        await attacker.publish(f"{base}/plant/h1/meter-a/reading", reading(local, 7.5, 3), qos=1)

        def delivered(equipment: str, signal: str) -> list[Sample]:
            return [s for s in samples if s.equipment == equipment and s.signal == signal]

        await wait_until(lambda: len(delivered("meter-b", "energy_kwh")) == steady_count, "meter-b's readings")
        await wait_until(lambda: len(delivered("gas-7", "gas_m3")) == steady_count, "the gas meter's readings")
        await wait_until(lambda: any(s.value == 7.5 for s in delivered("meter-a", "energy_kwh")), "meter-a again")
        assert collector.task is not None and not collector.task.done()
        counters = collector.counters

    expected: dict[str, int] = {"bad_equipment": 3}
    for _raw, kinds in HOSTILE:
        for kind, count in kinds.items():
            expected[kind] = expected.get(kind, 0) + 3 * count
    assert counters.rejected == expected
    replaced = {kind: 3 * list(ABSURD_TIMES.values()).count(kind) for kind in ABSURD_TIMES.values()}
    assert counters.ts_replaced == replaced | {"ts_missing": 3}  # b"42" has no time either
    # 2 x 150 steady, 3 x 24 hostile, 1 clean; the status topic is under no filter: the broker never sent it.
    assert (counters.messages, counters.ignored) == (373, 0)

    # Every steady reading arrived once, in order, at the meter's time.
    b = delivered("meter-b", "energy_kwh")
    assert [(s.ts, s.value, s.ts_source) for s in b] == [
        (T0 + timedelta(seconds=n), 100.0 + n, TimestampSource.DEVICE) for n in range(steady_count)
    ]
    assert [s.value for s in delivered("gas-7", "gas_m3")] == [5.0 + n / 8 for n in range(steady_count)]
    # The attacked meter: absurd times kept the readings at gateway time, flagged; the last one is clean.
    a = delivered("meter-a", "energy_kwh")
    flagged = [s for s in a if s.ts_source is TimestampSource.GATEWAY]
    assert sorted({s.flags for s in flagged}) == sorted({("ts_fallback", kind) for kind in ABSURD_TIMES.values()})
    assert len(flagged) == 3 * len(ABSURD_TIMES)
    assert (a[-1].ts, a[-1].value, a[-1].ts_source, a[-1].flags) == (T0, 7.5, TimestampSource.DEVICE, ())
    # Power of the payloads whose energy was hostile still went out (one bad field costs only itself).
    assert len(delivered("meter-a", "power_kw")) == 3 * (12 + len(ABSURD_TIMES)) + 1


DEVICE = """
import sys, time
import paho.mqtt.client as mqtt

host, port, base, client_id = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
client.will_set(base + "/LWT", "Offline", qos=1, retain=True)
client.connect(host, port, keepalive=30)
client.loop_start()
client.publish(base + "/LWT", "Online", qos=1, retain=True).wait_for_publish()
client.publish(base + "/STATE", '{"Uptime": "0T00:00:01", "Wifi": {"RSSI": 76}}', qos=1).wait_for_publish()
client.publish(base + "/SENSOR", sys.stdin.readline().strip(), qos=2).wait_for_publish()
print("ready", flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def tasmota_device(server: MosquittoServer, base: str, sensor_payload: str) -> Iterator[subprocess.Popen[str]]:
    """A meter in its own process: last will Offline, Online (retained), a status and a reading (QoS 2)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", DEVICE, server.host, str(server.port), base, f"dev-{uuid.uuid4().hex[:8]}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(sensor_payload + "\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


class ListSink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def put(self, sample: Sample) -> None:
        self.samples.append(sample)


async def test_a_meter_that_loses_power_becomes_unavailable_by_its_last_will(
    mosquitto_server: MosquittoServer,
) -> None:
    prefix = f"test/{uuid.uuid4().hex[:8]}"
    source = MeterSource(
        topic=f"{prefix}/tele/{{device}}/#",
        ignore=[f"{prefix}/tele/+/STATE"],
        equipment="{device}",
        equipment_map={"tasmota-3F2A": "meter-t"},
        fields={"energy_kwh": "ENERGY.Total", "power_kw": MeterField(path="ENERGY.Power", scale=0.001)},
        timestamp_field="Time",
        timezone="Europe/Berlin",
        qos=2,
        availability=MeterAvailability(topic=f"{prefix}/tele/{{device}}/LWT", online=["Online"], offline=["Offline"]),
    )
    base = f"{prefix}/tele/tasmota-3F2A"
    sink = ListSink()
    local = (T0 + timedelta(hours=1)).replace(tzinfo=None).isoformat()  # November: CET, UTC+1
    sensor = json.dumps({"Time": local, "ENERGY": {"Total": 812.25, "Power": 640}})
    collector = MeterCollector(f"gw-lwt-{uuid.uuid4().hex[:8]}", [source], broker_of(mosquitto_server), sink)
    assert collector.subscriptions() == {f"{prefix}/tele/+/#": 2}  # it covers the LWT topic

    with tasmota_device(mosquitto_server, base, sensor) as device:
        # The collector starts after the device said Online: it learns it from the retained message.
        async with collector:
            await wait_until(lambda: len(sink.samples) == 1, "the retained Online")
            first = sink.samples[0]
            assert (first.equipment, first.signal, first.value, first.raw, first.flags) == (
                "meter-t",
                "available",
                1.0,
                "Online",
                ("retained",),
            )
            before_kill = datetime.now(UTC)
            os.kill(device.pid, signal.SIGKILL)  # power cut: no DISCONNECT, the broker sends the will
            await wait_until(lambda: sink.samples[-1].value == 0.0, "the last will")
            offline = sink.samples[-1]
            assert (offline.signal, offline.raw, offline.ts_source, offline.flags) == (
                "available",
                "Offline",
                TimestampSource.GATEWAY,
                (),
            )
            assert offline.ts >= before_kill
            assert collector.task is not None and not collector.task.done()

    # The reading published before the collector ran is not retained: only availability was seen,
    # and the STATE topic, though under the reading filter, is ignored by the source's ignore list.
    assert [s.signal for s in sink.samples] == ["available", "available"]
    c = collector.counters
    assert (c.rejected, c.malformed, c.availability) == ({}, 0, 2)

    # Back on power with the collector running: Online, the status ignored, the reading at its local time.
    sink.samples.clear()
    async with collector:
        await wait_until(lambda: collector.link.connected, "the meter broker")
        await wait_until(lambda: len(sink.samples) == 1, "the retained Offline on resubscribe")
        with tasmota_device(mosquitto_server, base, sensor):
            await wait_until(lambda: len(sink.samples) == 4, "Online and the reading")
    assert [(s.signal, s.value, s.ts, s.ts_source) for s in sink.samples[1:]] == [
        ("available", 1.0, sink.samples[1].ts, TimestampSource.GATEWAY),
        ("energy_kwh", 812.25, T0, TimestampSource.DEVICE),
        ("power_kw", 0.64, T0, TimestampSource.DEVICE),
    ]
    assert collector.counters.ignored >= 1  # the device's STATE
    assert collector.counters.rejected == {}
