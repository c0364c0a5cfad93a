"""The OPC UA collector's refresh: every signal re-sent while connected, never across an outage.

Against real asyncua servers on loopback (and real Mosquitto where the uplink is involved), with a
refresh interval of 0.3 s so that a test sees many refreshes in a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua import Node, Server, ua

from core.assets import AssetModel, load_asset_model
from core.errors import ConfigError
from core.settings import BrokerSettings, EdgeSettings, OpcUaSource
from core.signals import OFFLINE, Quality
from core.wire import Sample, TimestampSource
from edge.agent import EdgeAgent, check_refresh_intervals
from edge.opcua_source import REFRESH_FLAG, LastReading, OpcUaCollector, corrected_refreshes, refresh_samples
from factory.cli import main
from tests.servers import MosquittoServer, free_port
from tests.test_edge_agent import (
    EQUIPMENT,
    STATE_MAP,
    T0,
    broker_settings,
    observe_uplink,
    samples_of,
    uplink_settings,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

REFRESH_S = 0.3


@contextlib.asynccontextmanager
async def machine_server(port: int, state: int, parts: int | None, ts: datetime) -> AsyncIterator[dict[str, Node]]:
    """A machine with StateCode and (unless ``parts`` is None) PartsTotal; yields its variables by signal."""
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/factory/")
    ns = await server.register_namespace(f"urn:smart-factory:simulator:{EQUIPMENT}")
    machine = await server.nodes.objects.add_object(ua.NodeId(EQUIPMENT, ns), EQUIPMENT)
    nodes = {
        "state": await machine.add_variable(
            ua.NodeId(f"{EQUIPMENT}.StateCode", ns), "StateCode", ua.Variant(0, ua.VariantType.Int32)
        )
    }
    await write(nodes["state"], state, ts)
    if parts is not None:
        nodes["parts_total"] = await machine.add_variable(
            ua.NodeId(f"{EQUIPMENT}.PartsTotal", ns), "PartsTotal", ua.Variant(0, ua.VariantType.UInt32)
        )
        await write(nodes["parts_total"], parts, ts)
    await server.start()
    try:
        yield nodes
    finally:
        await server.stop()


async def write(node: Node, value: int, ts: datetime, status: int = ua.StatusCodes.Good) -> None:
    variant_type = ua.VariantType.Int32 if node.nodeid.Identifier.endswith("StateCode") else ua.VariantType.UInt32
    await node.write_value(
        ua.DataValue(ua.Variant(value, variant_type), StatusCode=ua.StatusCode(status), SourceTimestamp=ts)
    )


def source(port: int, refresh_interval_s: float = REFRESH_S) -> OpcUaSource:
    return OpcUaSource(
        endpoint=f"opc.tcp://127.0.0.1:{port}/factory/",
        equipment=EQUIPMENT,
        nodes={"state": f"ns=2;s={EQUIPMENT}.StateCode", "parts_total": f"ns=2;s={EQUIPMENT}.PartsTotal"},
        sampling_interval_ms=50,
        state_map=STATE_MAP,
        refresh_interval_s=refresh_interval_s,
    )


def refreshes(samples: list[Sample], signal: str) -> list[Sample]:
    return [s for s in samples if s.signal == signal and REFRESH_FLAG in s.flags]


class ListSink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def put(self, sample: Sample) -> None:
        self.samples.append(sample)


# --- refresh over the uplink -------------------------------------------------------------------


async def test_unchanging_signals_arrive_every_refresh_interval_stop_with_the_server_and_resume_with_new_values(
    tmp_path: Path, mosquitto_server: MosquittoServer
) -> None:
    uplink = uplink_settings()
    port = free_port()
    edge = EdgeSettings(
        id="gw-refresh", buffer_path=tmp_path / "buffer.sqlite", flush_interval_s=0.1, opcua=[source(port)]
    )
    async with (
        observe_uplink(mosquitto_server, uplink.topic(edge.id)) as batches,
        EdgeAgent(edge, broker_settings(mosquitto_server), uplink) as agent,
    ):

        def uplinked() -> list[Sample]:
            return [s for b in batches for s in b.samples]

        connected_at = datetime.now(UTC)
        async with machine_server(port, state=2, parts=7, ts=T0) as nodes:
            await wait_until(
                lambda: all(len(refreshes(uplinked(), s)) >= 6 for s in ("state", "parts_total")), "6 refreshes each"
            )
            # A last value of doubtful quality is re-sent with its quality.
            await write(nodes["parts_total"], 8, datetime.now(UTC), status=ua.StatusCodes.UncertainLastUsableValue)
            await wait_until(
                lambda: any(s.quality is Quality.UNCERTAIN for s in refreshes(uplinked(), "parts_total")),
                "a refresh of the uncertain reading",
            )
            # A bad status without a value (as asyncua sends it) cannot be a sample: the count from
            # before is no longer the device's, so it is not re-sent any more.
            await write(nodes["parts_total"], 9, datetime.now(UTC), status=ua.StatusCodes.BadSensorFailure)
            await wait_until(lambda: agent.stats()["opcua_rejected"] == 1, "the bad reading")
            bad_seen_at = datetime.now(UTC)
            state_so_far = len(refreshes(uplinked(), "state"))
            await wait_until(lambda: len(refreshes(uplinked(), "state")) >= state_so_far + 4, "4 more state refreshes")
            stopped_at = datetime.now(UTC)
        await wait_until(lambda: agent.stats()["opcua_sources_connected"] == 0, "the collector to notice")
        noticed_at = datetime.now(UTC)
        refreshes_when_lost = agent.stats()["opcua_refreshes"]
        await asyncio.sleep(6 * REFRESH_S)  # six intervals without a server
        assert agent.stats()["opcua_refreshes"] == refreshes_when_lost

        # The machine comes back DOWN, and without its PartsTotal variable: the count from before the
        # outage is the last one known, but it is not the device's any more, so it is not re-sent.
        back_at = datetime.now(UTC)
        async with machine_server(port, state=4, parts=None, ts=back_at):
            await wait_until(
                lambda: len([s for s in refreshes(uplinked(), "state") if s.ts > back_at]) >= 4, "4 refreshes after"
            )
        await wait_until(lambda: agent.stats()["buffered"] == 0, "the buffer to drain")
        await asyncio.sleep(0.3)

    received = samples_of(batches)
    # The state the restarted server shows is stamped back_at; everything of the first session, a
    # refresh sent while the server was going away included, is stamped before stopped_at.
    before = [s for s in received if s.ts < stopped_at]
    after = [s for s in received if s.ts >= stopped_at]
    state_refreshes = refreshes(before, "state")
    parts_refreshes = refreshes(before, "parts_total")
    for refresh in state_refreshes + parts_refreshes:
        assert (refresh.equipment, refresh.ts_source, refresh.flags) == (
            EQUIPMENT,
            TimestampSource.GATEWAY,
            ("refresh",),
        )
        assert connected_at < refresh.ts < stopped_at  # gateway time, and never after the server went away
    assert {(s.value, s.raw, s.quality) for s in state_refreshes} == {("IDLE", "2", Quality.GOOD)}
    good = [s for s in parts_refreshes if s.quality is Quality.GOOD]
    assert {s.value for s in good} == {7} and len(good) >= 6
    uncertain = parts_refreshes[len(good) :]
    assert uncertain and {(s.value, s.quality) for s in uncertain} == {(8, Quality.UNCERTAIN)}
    assert all(s.ts < bad_seen_at for s in parts_refreshes)
    # A value that does not change still arrives every interval (the median is immune to the odd
    # late wake-up of a busy machine; a missing refresh would double it).
    for series in (state_refreshes, parts_refreshes):
        gaps = [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(series)]
        assert min(gaps) > 0 and statistics.median(gaps) == pytest.approx(REFRESH_S, abs=0.1)

    # When a session ends the edge says it stopped listening, once, stamped when it noticed: after
    # the outage, and again when the second server stops before the agent. In between, refreshes
    # again, only of what the new session read.
    assert [(s.signal, s.value) for s in after if REFRESH_FLAG not in s.flags] == [
        ("state", OFFLINE),
        ("state", "DOWN"),
        ("state", OFFLINE),
    ]
    offline = [s for s in after if s.value == OFFLINE]
    assert {(s.flags, s.ts_source) for s in offline} == {(("offline",), TimestampSource.GATEWAY)}
    assert stopped_at < offline[0].ts <= noticed_at
    assert refreshes(after, "parts_total") == []
    assert {(s.value, s.quality) for s in refreshes(after, "state")} == {("DOWN", Quality.GOOD)}
    assert all(s.ts > back_at for s in refreshes(after, "state"))


# --- refresh against changes -------------------------------------------------------------------


@pytest.mark.parametrize("lag_s", [None, 0.0])
async def test_what_the_store_keeps_of_refreshes_never_contradicts_a_change(lag_s: float | None) -> None:
    """Counters and states change every 50 ms, stamped by the (shared) clock, while refreshes run.

    A refresh stamped after a change but carrying the value before it would read as a counter reset
    in the store. The store keeps the last point written per series and timestamp; there, every
    refresh must carry the value of the latest change stamped at or before it. With the default lag
    a change is rarely overtaken; with none, most refreshes race a change and late changes must
    correct them.
    """
    port = free_port()
    sink = ListSink()
    collector = OpcUaCollector(source(port), sink, refresh_lag_s=lag_s)
    async with machine_server(port, state=1, parts=0, ts=datetime.now(UTC)) as nodes, collector:
        await wait_until(lambda: collector.link.connected, "the collector to connect")
        for n in range(1, 81):
            await write(nodes["parts_total"], n, datetime.now(UTC))
            if n % 10 == 0:
                await write(nodes["state"], 2 if n % 20 else 1, datetime.now(UTC))
            await asyncio.sleep(0.05)
        await wait_until(lambda: collector.counters.refreshes >= 10, "10 refreshes")

    stored = {(s.signal, s.ts): s for s in sink.samples}  # a later write of a point overwrites it
    for signal in ("state", "parts_total"):
        changes = sorted((s for s in sink.samples if s.signal == signal and not s.flags), key=lambda s: s.ts)
        refreshed = [s for (sig, _), s in sorted(stored.items()) if sig == signal and REFRESH_FLAG in s.flags]
        assert len(refreshed) >= 5, signal
        for refresh in refreshed:
            latest = [c for c in changes if c.ts <= refresh.ts][-1]
            assert refresh.value == latest.value, (signal, refresh.ts, latest.ts)
    counts = [s.value for (signal, _), s in sorted(stored.items()) if signal == "parts_total"]
    assert counts == sorted(counts), "a counter read back in time order never falls"
    if lag_s == 0.0:
        assert collector.counters.refresh_corrections > 0, "the race this test is about did not happen"


# --- pure parts ----------------------------------------------------------------------------------


def test_refresh_samples_keep_value_raw_and_quality_and_leave_out_readings_received_after_the_stamp() -> None:
    as_of = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    state = Sample(
        equipment=EQUIPMENT,
        signal="state",
        ts=T0,
        value="DOWN",
        raw="4",
        quality=Quality.UNCERTAIN,
        flags=("ts_fallback",),
    )
    parts = Sample(equipment=EQUIPMENT, signal="parts_total", ts=as_of, value=12)
    last = {
        "state": LastReading(state, received_at=as_of - timedelta(seconds=30)),
        "parts_total": LastReading(parts, received_at=as_of + timedelta(milliseconds=1)),
    }
    assert refresh_samples(last, as_of) == [
        Sample(
            equipment=EQUIPMENT,
            signal="state",
            ts=as_of,
            value="DOWN",
            raw="4",
            quality=Quality.UNCERTAIN,
            ts_source=TimestampSource.GATEWAY,
            flags=("refresh",),
        )
    ]


def test_a_change_stamped_before_refreshes_already_sent_corrects_those_that_carried_another_value() -> None:
    refreshed = [
        Sample(equipment=EQUIPMENT, signal="parts_total", ts=T0 + timedelta(seconds=n), value=v, flags=("refresh",))
        for n, v in ((0, 5), (1, 5), (2, 6))
    ]
    late = Sample(equipment=EQUIPMENT, signal="parts_total", ts=T0 + timedelta(seconds=0.5), value=6)
    assert corrected_refreshes(refreshed, late) == [refreshed[1].model_copy(update={"value": 6})]
    bad = late.model_copy(update={"quality": Quality.BAD, "value": 6})
    assert [r.quality for r in corrected_refreshes(refreshed, bad)] == [Quality.BAD, Quality.BAD]
    assert corrected_refreshes(refreshed, late.model_copy(update={"ts": T0 + timedelta(seconds=3)})) == []


ASSETS = """\
site:
  id: s
  workshops:
    - id: w
      lines:
        - id: l
          equipment:
            - {id: cnc-01, type: cnc, ideal_cycle_time_s: 30, report_interval_s: 20}
"""


@pytest.fixture
def assets(tmp_path: Path) -> AssetModel:
    path = tmp_path / "assets.yaml"
    path.write_text(ASSETS)
    return load_asset_model(path)


def test_an_edge_that_refreshes_less_often_than_the_equipment_reports_is_refused_at_start(
    tmp_path: Path, assets: AssetModel
) -> None:
    edge = EdgeSettings(id="gw", buffer_path=tmp_path / "b.sqlite", opcua=[source(4840, refresh_interval_s=60)])
    with pytest.raises(ConfigError, match=r"edge\.opcua\[0\]\.refresh_interval_s: 60 s is longer than .*\(20 s"):
        EdgeAgent(edge, BrokerSettings(), uplink_settings(), assets=assets)
    check_refresh_intervals(edge.model_copy(update={"opcua": [source(4840, refresh_interval_s=20)]}), assets)
    unknown = source(4840, refresh_interval_s=60).model_copy(update={"equipment": "not-in-the-model"})
    check_refresh_intervals(edge.model_copy(update={"opcua": [unknown]}), assets)  # ingest's business


def test_check_config_refuses_a_refresh_slower_than_the_equipments_report_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "assets.yaml").write_text(ASSETS)
    settings = tmp_path / "settings.yaml"
    nodes = f"{{state: 'ns=2;s={EQUIPMENT}.StateCode'}}"
    edge = f"{{endpoint: 'opc.tcp://127.0.0.1:4840/', equipment: {EQUIPMENT}, nodes: {nodes}, refresh_interval_s: %s}}"
    settings.write_text(f"assets: assets.yaml\nedge: {{id: gw, opcua: [{edge % 30}]}}\n")
    assert main(["check-config", "--config", str(settings)]) == 2
    assert "edge.opcua[0].refresh_interval_s: 30 s is longer than" in capsys.readouterr().err
    settings.write_text(f"assets: assets.yaml\nedge: {{id: gw, opcua: [{edge % 20}]}}\n")
    assert main(["check-config", "--config", str(settings)]) == 0
