"""The small scenario live, faults and all: what an OPC UA client observed is the ground truth.

The observer is the edge agent's own OPC UA collector (a real asyncua client that reconnects and
replaces implausible device timestamps with gateway time). The documented limits of observation:

* while a PLC clock is jumped back, values carry a 2000-era SourceTimestamp; the collector stamps
  them with gateway time and flags them, so their time is the arrival time (within a second);
* while a server is away for a restart, nothing is observed; the state changes in that window are
  lost, the counters catch up when the client is back.

Everything else — every state change and its timestamp, every counter value, every reset, the part
counts by quality — must match the ground truth exactly. The collector refreshes every signal twice
a second meanwhile: each refresh, as the store keeps it, must carry exactly the value the ground
truth shows at its timestamp, and none may claim a time when the server was away.
"""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core.settings import BrokerSettings, Settings, SimulatorSettings
from core.signals import OFFLINE, MachineState
from core.wire import Sample
from edge.opcua_source import OFFLINE_FLAG, REFRESH_FLAG, TS_FALLBACK_FLAG, OpcUaCollector
from edge.reconnect import Backoff
from simulators.behaviour import FaultKind
from simulators.edgeconfig import edge_sources
from simulators.ground_truth import GroundTruth
from simulators.runner import Simulator
from simulators.scenario import load_scenario
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration

SCENARIO = Path(__file__).resolve().parent.parent / "config" / "scenarios" / "small.yaml"
RUN_S = 17.0
ARRIVAL_S = 1.0  # a value stamped with gateway time arrives within this of its true time
RECONNECT_S = 2.0  # after a server is back, the collector has resubscribed within this
REFRESH_S = 0.5
# Far beyond a notification's delay on a loaded machine, so that "the value at the refresh's
# timestamp" holds exactly; the collector's default is 0.5 s plus three sampling intervals.
REFRESH_LAG_S = 1.5


class Samples:
    """A sample sink that keeps everything, in arrival order."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def put(self, sample: Sample) -> None:
        self.samples.append(sample)

    def of(self, signal: str) -> list[Sample]:
        """The readings of a signal as the device's changes brought them, without refreshes and
        without the edge's word that it stopped listening."""
        return [s for s in self.samples if s.signal == signal and not {REFRESH_FLAG, OFFLINE_FLAG} & set(s.flags)]

    def refreshes(self, signal: str) -> list[Sample]:
        return [s for s in self.samples if s.signal == signal and REFRESH_FLAG in s.flags]


@pytest.fixture
async def observed(
    mosquitto_server: MosquittoServer, tmp_path: Path
) -> tuple[Simulator, dict[str, Samples], dict[str, OpcUaCollector], datetime]:
    scenario = load_scenario(SCENARIO)
    settings = Settings(
        assets=Path(scenario.assets.source),
        broker=BrokerSettings(host=mosquitto_server.host, port=mosquitto_server.port),
        simulator=SimulatorSettings(seed=scenario.seed),
    )
    sim = Simulator(settings, scenario.assets, scenario=scenario, ports=dict.fromkeys(scenario.machine_ids(), 0))
    sinks = {eq: Samples() for eq in scenario.machine_ids()}
    async with sim:
        opcua, _ = edge_sources(sim.assets, sim, sampling_interval_ms=50, refresh_interval_s=REFRESH_S)
        collectors = {
            source.equipment: OpcUaCollector(
                source,
                sinks[source.equipment],
                backoff=Backoff(0.05, 0.2),
                request_timeout_s=2.0,
                watchdog_interval_s=0.5,
                refresh_lag_s=REFRESH_LAG_S,
            )
            for source in opcua
        }
        async with AsyncExitStack() as stack:
            for collector in collectors.values():
                await stack.enter_async_context(collector)
            await asyncio.sleep(RUN_S)
            frozen = await sim.freeze()
            await asyncio.sleep(1.0)  # the last notifications
        sim.write_ground_truth(tmp_path / "truth.json")
    return sim, sinks, collectors, frozen


def windows(truth: GroundTruth, kind: FaultKind, slack_s: float) -> list[tuple[datetime, datetime]]:
    return [(f.start, (f.end or f.start) + timedelta(seconds=slack_s)) for f in truth.faults_of(kind.value)]


def inside(ts: datetime, spans: list[tuple[datetime, datetime]]) -> bool:
    return any(a <= ts <= b for a, b in spans)


def in_force(truth: GroundTruth, state: object, start: datetime, end: datetime) -> bool:
    """Whether ``state`` was shown at some time within ``[start, end]``."""
    return any(i.state.value == state and i.start <= end and (i.end is None or i.end > start) for i in truth.intervals)


async def test_a_client_observes_the_ground_truth_through_breakdowns_resets_clock_jumps_and_restarts(
    observed: tuple[Simulator, dict[str, Samples], dict[str, OpcUaCollector], datetime],
) -> None:
    sim, sinks, collectors, frozen = observed
    truths = {eq: sim.ground_truth(eq) for eq in sinks}

    # The run had what it claims: breakdowns, minor stops, setups, resets, clock jumps, restarts.
    reasons = {i.reason for t in truths.values() for i in t.intervals}
    assert {"breakdown", "minor_stop", "changeover", "starved", "power_off"} <= reasons
    assert sum(len(t.resets) for t in truths.values()) >= 1
    assert sum(len(t.faults_of("clock_jump")) for t in truths.values()) >= 1
    assert sum(len(t.faults_of("server_restart")) for t in truths.values()) >= 1
    assert {s for t in truths.values() for s, secs in t.state_durations(sim.started_at, frozen).items() if secs} == {
        m.value for m in MachineState
    }

    for eq, sink in sinks.items():
        truth = truths[eq]
        jumps = windows(truth, FaultKind.CLOCK_JUMP, ARRIVAL_S)
        restarts = windows(truth, FaultKind.SERVER_RESTART, RECONNECT_S)
        check_states(eq, truth, sink, jumps, restarts)
        check_counters(eq, truth, sink, frozen)
        check_refreshes(eq, truth, sink)
        # every restart of its server made the collector connect again
        assert collectors[eq].counters.connects == 1 + len(truth.faults_of("server_restart")), eq


def check_states(
    eq: str,
    truth: GroundTruth,
    sink: Samples,
    jumps: list[tuple[datetime, datetime]],
    restarts: list[tuple[datetime, datetime]],
) -> None:
    starts = {i.start: i.state.value for i in truth.intervals}
    states = sink.of("state")
    assert states, eq
    # Each server restart ended a session: the edge said so, at gateway time, while the server was away.
    offline = [s for s in sink.samples if OFFLINE_FLAG in s.flags]
    assert len(offline) >= len(truth.faults_of("server_restart")), eq
    assert all(s.value == OFFLINE and s.ts_source == "gateway" for s in offline), eq
    fallback = [s for s in states if TS_FALLBACK_FLAG in s.flags]
    for sample in states:
        if TS_FALLBACK_FLAG in sample.flags:
            # gateway time: the value was in force shortly before it arrived
            assert sample.ts_source == "gateway"
            assert inside(sample.ts, jumps) or inside(sample.ts, restarts), (eq, sample)
            assert in_force(truth, sample.value, sample.ts - timedelta(seconds=ARRIVAL_S), sample.ts), (eq, sample)
        else:
            # device time: exactly the start of a ground-truth interval in that state
            assert starts.get(sample.ts) == sample.value, (eq, sample)
    if truth.faults_of("clock_jump") and any(jumps[0][0] <= i.start < jumps[0][1] for i in truth.intervals):
        assert fallback, f"{eq}: a state changed during a clock jump but no sample was flagged"

    # every state change outside a restart blackout was seen: exactly, or by gateway time in a jump
    seen_exact = {(s.ts, s.value) for s in states if TS_FALLBACK_FLAG not in s.flags}
    for interval in truth.intervals[1:]:
        if inside(interval.start, restarts):
            continue
        if (interval.start, interval.state.value) in seen_exact:
            continue
        assert inside(interval.start, jumps), (eq, interval)
        assert any(
            s.value == interval.state.value and interval.start <= s.ts <= interval.start + timedelta(seconds=ARRIVAL_S)
            for s in fallback
        ), (eq, interval)


def check_counters(eq: str, truth: GroundTruth, sink: Samples, frozen: datetime) -> None:
    readings = {kind: sink.of(f"parts_{kind}") for kind in ("total", "good", "scrap", "rework")}
    first = next(s for s in readings["total"] if TS_FALLBACK_FLAG not in s.flags)
    for kind, samples in readings.items():
        # each value read with a device timestamp is exactly what the ground truth says was shown then
        for sample in samples:
            if TS_FALLBACK_FLAG not in sample.flags:
                assert truth.counters(sample.ts)[kind] == sample.value, (eq, kind, sample)
        # increments with the platform's reset rule add up to the parts made, by quality
        values = [int(s.value) for s in samples if s.ts >= first.ts or TS_FALLBACK_FLAG in s.flags]
        made = sum(b - a if b >= a else b for a, b in itertools.pairwise(values))
        assert made == truth.parts(first.ts + timedelta(microseconds=1), frozen)[kind], (eq, kind)
    # every reset from a non-zero count was seen as a decrease
    totals = [int(s.value) for s in readings["total"]]
    decreases = sum(b < a for a, b in itertools.pairwise(totals))
    visible = sum(truth.counters(r - timedelta(microseconds=1))["total"] > 0 for r in truth.resets if r > first.ts)
    assert decreases == visible, eq


def check_refreshes(eq: str, truth: GroundTruth, sink: Samples) -> None:
    away = [(f.start, f.end or f.start) for f in truth.faults_of("server_restart")]
    # A signal that changed within the lag before a refresh is left out of it (its change has just
    # reported it), so the sub-second counters of this scenario are refreshed only after a pause.
    # As the store keeps them: a refresh that a late change proved wrong is sent again, same
    # timestamp, and the later point overwrites the earlier.
    stored = {(s.signal, s.ts): s for s in sink.samples}
    refreshes = [s for s in stored.values() if REFRESH_FLAG in s.flags]
    assert len(refreshes) >= RUN_S / REFRESH_S, eq
    for sample in refreshes:
        assert sample.ts_source == "gateway" and sample.flags == (REFRESH_FLAG,), (eq, sample)
        assert not any(start < sample.ts <= back for start, back in away), (eq, sample)
        if sample.signal == "state":
            assert in_force(truth, sample.value, sample.ts, sample.ts), (eq, sample)
        elif sample.signal.startswith("parts_"):
            assert truth.counters(sample.ts)[sample.signal.removeprefix("parts_")] == sample.value, (eq, sample)
    assert {"state", "parts_scrap", "parts_rework"} <= {s.signal for s in refreshes}, eq
