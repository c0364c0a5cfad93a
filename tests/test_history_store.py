"""History generator into real stores: KPIs that improve as configured, consistent series, resumable reruns."""

from __future__ import annotations

import asyncio
import gzip
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from core.assets import EquipmentType
from core.errors import StoreUnavailable
from core.stores.influx import InfluxStore
from core.stores.sqlite import SqliteStore
from core.wire import ns_to_datetime
from kpi.backfill import backfill
from kpi.engine import KpiEngine
from simulators.history import PROGRESS_MEASUREMENT, HistoryGenerator, HistoryOptions, line_protocol, write_history
from simulators.history_model import day_bounds
from simulators.scenario import FactoryScenario, Period, load_scenario
from tests.servers import InfluxServer
from tests.test_history_model import write_scenario

LEAN = HistoryOptions(process_values=False)  # what the KPIs need, and no more


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> FactoryScenario:
    return load_scenario(write_scenario(tmp_path_factory.mktemp("history-store")))


def _window(generator: HistoryGenerator, period: Period) -> tuple[datetime, datetime]:
    return ns_to_datetime(day_bounds(period.start, generator.tz)[0]), ns_to_datetime(
        day_bounds(period.end, generator.tz)[0]
    )


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT measurement, series, time_ns, fields FROM points"
            f" WHERE measurement != '{PROGRESS_MEASUREMENT}' ORDER BY 1, 2, 3"
        ).fetchall()


async def test_assessment_period_improves_oee_defect_rate_and_energy_per_part_as_configured(
    scenario: FactoryScenario, tmp_path: Path
) -> None:
    generator = HistoryGenerator(scenario, options=LEAN)
    store = SqliteStore(tmp_path / "history.sqlite")
    try:
        summary = await write_history(generator, store)
        assert summary.days_written == 6 and summary.points > 50_000
        engine = KpiEngine(store, scenario.assets)
        history = generator.history
        assert history is not None
        reports = [
            await engine.report("hist-site", *_window(generator, p)) for p in (history.baseline, history.assessment)
        ]

        baseline, assessment = ({k.key: k.value for k in r.kpis if k.value is not None} for r in reports)
        measured = {key: assessment[key] / baseline[key] - 1 for key in ("oee", "defect_rate", "kwh_per_good_part")}
        expected = summary.expected["change"]
        # The direction the scheme asks for, and about the size the configured improvements imply.
        assert measured["oee"] > 0 and measured["oee"] == pytest.approx(expected["oee"], rel=0.4)
        assert measured["defect_rate"] == pytest.approx(-0.3, abs=0.08)  # improvements.defect_rate: 0.3
        assert measured["kwh_per_good_part"] < 0
        assert measured["kwh_per_good_part"] == pytest.approx(expected["kwh_per_good_part"], rel=0.3)
        assert baseline["oee"] == pytest.approx(summary.expected["baseline"]["oee"], rel=0.1)

        # Internally consistent: every machine-hour is fully covered by states that add up to the
        # hour, and production equals good + scrap + rework.
        for report in reports:
            assert report.evidence.coverage == pytest.approx(1.0)
            assert report.evidence.counter_resets > 0
            base = report.base
            assert base.parts_produced == base.parts_good + base.parts_scrap + base.parts_rework
        hourly = await engine.hourly(["cnc-h1", "cnc-h2", "robot-h1"], *_window(generator, history.baseline))
        assert len(hourly) == 3 * 72
        for row in hourly:
            b = row.base
            busy = b.production_time_s + b.setup_time_s + b.down_time_s + b.idle_time_s
            assert busy + b.planned_downtime_s == pytest.approx(3600.0) == b.covered_s

        # Counters read back never decrease except at the resets the model recorded.
        start, end = _window(generator, Period(start=generator.days[0], end=generator.days[-1] + timedelta(days=1)))
        counters = await store.read("part_counter", start, end)
        resets = {
            eq: set().union(*(d[eq].reset_times.tolist() for _, _, d, _ in generator.simulate()))
            for eq in ("cnc-h1", "cnc-h2", "robot-h1")
        }
        for (eq, _signal), series in counters.groupby(["equipment", "signal"]):
            times = series["time"].astype("int64").to_numpy()
            values = series["value"].astype("int64").to_numpy()
            falls = times[1:][np.diff(values) < 0]
            assert set(falls.tolist()) <= resets[str(eq)]
    finally:
        await store.close()


async def test_rollups_of_generated_history_count_every_part_the_model_made(
    scenario: FactoryScenario, tmp_path: Path
) -> None:
    # The generator's own record of each machine-day (its ground truth) against reports read from
    # rollups: the whole range backfilled, then one report per machine from the daily rows.
    generator = HistoryGenerator(scenario, options=LEAN)
    store = SqliteStore(tmp_path / "history.sqlite")
    try:
        await write_history(generator, store)
        first, last = generator.days[0], generator.days[-1] + timedelta(days=1)
        start, end = (
            ns_to_datetime(day_bounds(first, generator.tz)[0]),
            ns_to_datetime(day_bounds(last, generator.tz)[0]),
        )
        engine = KpiEngine(store, scenario.assets, clock=lambda: end + timedelta(days=1))
        equipment = [eq.id for eq in scenario.assets if eq.produces_parts or eq.type == EquipmentType.METER]
        await backfill(engine, equipment, start, end)
        made: dict[str, np.ndarray] = {}
        for _, _, machine_days, _ in generator.simulate():
            for eq, md in machine_days.items():
                made[eq] = made.get(eq, np.zeros(3, dtype=np.int64)) + md.parts_by_quality()
        for eq, (good, scrap, rework) in made.items():
            report = await engine.report(eq, start, end)
            # Every day of the machine (and of its meters and what they cover) from one daily row.
            path = report.read_path
            assert path.rollup_days % len(generator.days) == 0 and (path.rollup_hours, path.raw_hours) == (0, 0)
            base = report.base
            assert (base.parts_good, base.parts_scrap, base.parts_rework) == (good, scrap, rework), eq
            assert base.parts_produced == good + scrap + rework and base.excluded_steps == 0
            assert base.coverage == pytest.approx(1.0)
    finally:
        await store.close()


async def test_rerun_skips_written_days_and_an_interrupted_run_resumes_with_the_missing_days(
    scenario: FactoryScenario, tmp_path: Path
) -> None:
    whole = SqliteStore(tmp_path / "whole.sqlite")
    pieces = SqliteStore(tmp_path / "pieces.sqlite")
    try:
        full = await write_history(HistoryGenerator(scenario, days=3, options=LEAN), whole)
        first = await write_history(HistoryGenerator(scenario, days=2, options=LEAN), pieces)
        rest = await write_history(HistoryGenerator(scenario, days=3, options=LEAN), pieces)
        assert (first.days_written, rest.days_written, rest.days_skipped) == (2, 1, 2)
        assert first.points + rest.points == full.points
        assert _rows(tmp_path / "pieces.sqlite") == _rows(tmp_path / "whole.sqlite")

        again = await write_history(HistoryGenerator(scenario, days=3, options=LEAN), pieces)
        assert (again.days_written, again.days_skipped, again.points) == (0, 3, 0)
        # Without resuming every day is written again, over the very same points.
        rewritten = await write_history(HistoryGenerator(scenario, days=3, options=LEAN), pieces, resume=False)
        assert rewritten.points == full.points
        assert _rows(tmp_path / "pieces.sqlite") == _rows(tmp_path / "whole.sqlite")
        # Other inputs (here: another seed) are another generator: its markers do not count.
        other = await write_history(HistoryGenerator(scenario, days=1, seed=5, options=LEAN), pieces)
        assert other.days_written == 1
    finally:
        await whole.close()
        await pieces.close()


def line_protocol_of(request: httpx.Request) -> bytes:
    """A write request's lines, uncompressed (the store sends them gzip-compressed by default)."""
    if request.headers.get("Content-Encoding") == "gzip":
        return gzip.decompress(request.content)
    return request.content


class _SecondDayFails(httpx.AsyncBaseTransport):
    """The real transport, except that batches of the second day only wait until the first day is
    marked as written and then get a 503: a store that goes away in the middle of a run.
    """

    def __init__(self, second_day_ns: int) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._second_day_ns = second_day_ns
        self._marked = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = line_protocol_of(request)
        if request.url.path == "/write":
            if body.startswith(PROGRESS_MEASUREMENT.encode()):
                response = await self._inner.handle_async_request(request)
                self._marked.set()
                return response
            if int(body[: body.index(b"\n")].rsplit(b" ", 1)[1]) >= self._second_day_ns:
                # Batches are cut in generation order, day by day: this one holds no line of day one.
                await self._marked.wait()
                return httpx.Response(503, json={"error": "engine overloaded"})
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def influx_url(influx_server: InfluxServer) -> Iterator[str]:
    yield influx_server.url


async def test_influxdb_history_reads_back_through_the_store_and_resumes_after_a_failure(
    scenario: FactoryScenario, influx_url: str, influx_database: str
) -> None:
    options = HistoryOptions(batch_points=1000, retry_delays_s=())
    generator = HistoryGenerator(scenario, start=date(2026, 3, 2), days=2, options=options)
    days = list(generator.generate())
    expected = {(c.series.measurement, c.series.tags["equipment"], c.series.tags["signal"]): c for c in days[0].chunks}

    # The store fails during the second day: the run fails, and only the first day is marked.
    failing = InfluxStore(influx_url, influx_database, transport=_SecondDayFails(days[1].start_ns))
    with pytest.raises(StoreUnavailable):
        await write_history(generator, failing)
    await failing.close()

    async with InfluxStore(influx_url, influx_database) as store:
        marked = await write_history(HistoryGenerator(scenario, start=date(2026, 3, 2), days=2, options=options), store)
        assert marked.days_skipped == 1 and marked.days_written == 1, "the first day made it before the failure"
        assert marked.points == days[1].points

        start, end = ns_to_datetime(days[0].start_ns), ns_to_datetime(days[0].end_ns)
        for measurement in ("machine_state", "part_counter", "energy", "process_value"):
            frame = await store.read(measurement, start, end)
            got = {key: len(group) for key, group in frame.groupby(["equipment", "signal"])}
            want = {(eq, sig): len(c) for (m, eq, sig), c in expected.items() if m == measurement}
            assert got == want, measurement
        states = await store.read("machine_state", start, end, {"equipment": "cnc-h1"})
        chunk = expected[("machine_state", "cnc-h1", "state")]
        assert states["time"].astype("int64").tolist() == chunk.times.tolist()
        assert set(zip(states["value"], states["raw"], strict=True)) == {
            ("PRODUCING", "1"),
            ("IDLE", "2"),
            ("SETUP", "3"),
            ("DOWN", "4"),
            ("PLANNED_STOP", "5"),
        }
        assert set(states["quality"]) == {"good"}
        totals = await store.read("part_counter", start, end, {"equipment": "cnc-h2", "signal": "parts_total"})
        assert totals["value"].tolist() == expected[("part_counter", "cnc-h2", "parts_total")].values.tolist()
        energy = await store.read("energy", start, end, {"equipment": "meter-h1"})
        assert energy["value"].tolist() == expected[("energy", "meter-h1", "energy_kwh")].values.tolist()
        markers = await store.read(PROGRESS_MEASUREMENT, start, ns_to_datetime(days[1].end_ns))
        assert sorted(markers["day"]) == ["2026-03-02", "2026-03-03"]
        assert markers["value"].tolist() == [days[0].points, days[1].points]


@pytest.mark.parametrize("batch_points", [None, 997])
async def test_influx_batches_carry_every_line_once_and_each_day_is_marked_after_its_batches(
    scenario: FactoryScenario, batch_points: int | None
) -> None:
    generator = HistoryGenerator(scenario, days=2, options=LEAN)
    first_chunk = next(generator.generate()).chunks[0]
    # None: batches exactly as long as the first series-day, so a cut empties the buffer.
    size = batch_points or len(first_chunk)
    generator = HistoryGenerator(scenario, days=2, options=HistoryOptions(process_values=False, batch_points=size))
    bodies: list[bytes] = []
    markers: list[tuple[int, bytes]] = []

    def influx(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        body = line_protocol_of(request)
        if body.startswith(PROGRESS_MEASUREMENT.encode()):
            markers.append((len(bodies), body))
        else:
            bodies.append(body)
        return httpx.Response(204)

    async with InfluxStore("http://influx.invalid", "db", transport=httpx.MockTransport(influx)) as store:
        summary = await write_history(generator, store)

    written = [line for body in bodies for line in body.decode().splitlines()]
    expected = line_protocol(HistoryGenerator(scenario, days=2, options=LEAN)).decode().splitlines()
    assert sorted(written) == sorted(expected) and summary.points == len(expected)
    assert all(body.count(b"\n") <= size for body in bodies)
    assert [b'day="2026-03-02"' in m for _, m in markers] == [True, False]
    first_day_lines = sum(day.points for day in generator.generate() if day.day == date(2026, 3, 2))
    # The first day's marker follows every batch with a line of that day.
    assert markers[0][0] * size >= first_day_lines
