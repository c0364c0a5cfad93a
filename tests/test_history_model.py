"""History generator model: days that add up, counters that only fall at resets, exact meters, determinism."""

from __future__ import annotations

import dataclasses
from datetime import date, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from core.store import Point
from core.stores.lineprotocol import encode_points
from core.wire import Sample, ns_to_datetime
from edge.opcua_source import LastReading, refresh_samples
from ingest.mapping import sample_to_point
from kpi.base import counter_increments
from simulators.history import HistoryGenerator, HistoryOptions, line_protocol
from simulators.history_lines import Chunk, Series, chunks_to_lines, chunks_to_points
from simulators.history_model import (
    DOWN,
    IDLE,
    NS_PER_S,
    PLANNED_STOP,
    PRODUCING,
    RAW_STATE_CODE,
    STATES,
    MeterParams,
    day_bounds,
    simulate_meter_day,
    working_windows,
)
from simulators.scenario import FactoryScenario, PlannedBreak, Shift, ShiftCalendar, Weekday, load_scenario

ASSETS = """\
version: 1
site:
  id: hist-site
  timezone: Asia/Shanghai
  workshops:
    - id: hist-shop
      lines:
        - id: hist-line
          equipment:
            - {id: cnc-h1, type: cnc, numerically_controlled: true, process_step: milling, key_process: true,
               ideal_cycle_time_s: 20, meter: meter-h1, report_interval_s: 300}
            - {id: cnc-h2, type: cnc, numerically_controlled: true, process_step: turning, key_process: true,
               ideal_cycle_time_s: 30, meter: meter-h1}
            - {id: robot-h1, type: robot, numerically_controlled: true, process_step: welding,
               ideal_cycle_time_s: 40, meter: meter-h1}
            - {id: meter-h1, type: meter, carrier: electricity}
            - {id: gas-h1, type: meter, carrier: natural_gas, report_interval_s: 45}
"""

# Two shifts with breaks every day; losses frequent and short so that three days already show the
# configured improvement clearly; a power cycle about once a day per machine.
SCENARIO = """\
version: 1
name: History test factory
assets: assets.yaml
seed: 11
calendar:
  shifts:
    - {name: early, days: mon-sun, start: "06:00", end: "14:00", breaks: [{start: "10:00", end: "10:30"}]}
    - {name: late, days: mon-sun, start: "14:00", end: "22:00", breaks: [{start: "18:00", end: "18:30"}]}
defaults:
  cycle_time_factor: {low: 1.0, mode: 1.05, high: 1.3}
  breakdowns: {mtbf: 1h, mttr: 6min, min_repair: 1min}
  minor_stops: {mean_interval: 10min, mean_duration: 40s}
  starvation: {mean_interval: 30min, mean_duration: 3min}
  changeover: {batch_parts: [60, 120], setup_time: 10min}
  quality: {scrap_probability: 0.03, rework_probability: 0.02}
  power_kw: {producing: 15.0, setup: 5.0, idle: 4.0, down: 1.0, planned_stop: 0.3}
  faults:
    power_cycle: {mean_interval: 1d, off_for: 2min}
meters:
  meter-h1: {base_load: 3.0}
  gas-h1: {supplies: [cnc-h1], flow_m3_h: 1.2}
history:
  baseline: {start: 2026-03-02, end: 2026-03-05}
  assessment: {start: 2026-03-05, end: 2026-03-08}
  improvements: {efficiency: 0.25, defect_rate: 0.3, energy_per_part: 0.15}
  meter_interval: 1min
"""


def write_scenario(directory: Path, scenario: str = SCENARIO) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "assets.yaml").write_text(ASSETS)
    path = directory / "scenario.yaml"
    path.write_text(scenario)
    return path


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> FactoryScenario:
    return load_scenario(write_scenario(tmp_path_factory.mktemp("history-scenario")))


@pytest.fixture(scope="module")
def generator(scenario: FactoryScenario) -> HistoryGenerator:
    return HistoryGenerator(scenario)


def test_every_machine_day_adds_up_to_calendar_time_with_planned_stop_outside_the_shifts(
    generator: HistoryGenerator,
) -> None:
    for day, machine_days in ((d, m) for d, _, m, _ in generator.simulate()):
        start, end = day_bounds(day, generator.tz)
        working = sum(b - a for a, b in working_windows(generator.scenario.calendar, day, generator.tz))
        assert working == 15 * 3600 * 10**9  # 2 x 8 h shifts minus 2 x 30 min breaks
        for machine_id, md in machine_days.items():
            durations = md.state_durations_ns()
            assert durations.sum() == end - start == 24 * 3600 * 10**9, machine_id
            assert durations[PLANNED_STOP] == end - start - working, machine_id
            assert md.state_times[0] == start
            assert np.all(np.diff(md.state_times) > 0) and md.state_times[-1] < end
            assert np.all(md.state_codes[1:] != md.state_codes[:-1]), "a change always changes the state"
            assert {STATES[c] for c in md.state_codes.tolist()} == set(STATES), "a day shows every state"


def test_parts_are_finished_while_producing_and_split_into_good_scrap_and_rework(
    generator: HistoryGenerator,
) -> None:
    for _, _, machine_days, _ in generator.simulate():
        for md in machine_days.values():
            state_before = md.state_codes[np.searchsorted(md.state_times, md.part_times - 1, side="right") - 1]
            assert np.all(state_before == PRODUCING)
            assert np.all(np.diff(md.part_times) > 0)
            assert np.all(md.cycle_ns >= 20 * 10**9)  # never faster than the fastest ideal cycle
            assert md.parts_by_quality().sum() == len(md.part_times) > 500


@pytest.mark.parametrize(("interval_s", "refresh_s"), [(None, None), (60.0, None), (None, 300.0), (600.0, 300.0)])
def test_counters_only_fall_at_recorded_resets_and_their_increments_count_every_part(
    scenario: FactoryScenario, interval_s: float | None, refresh_s: float | None
) -> None:
    generator = HistoryGenerator(scenario, options=HistoryOptions(counter_interval_s=interval_s))
    interval_ns = None if interval_s is None else int(interval_s * 10**9)
    refresh_ns = None if refresh_s is None else int(refresh_s * 10**9)
    resets = 0
    previous: dict[tuple[str, int], int] = {}
    for _, _, machine_days, _ in generator.simulate():
        for machine_id, md in machine_days.items():
            resets += len(md.reset_times)
            made = [len(md.part_times), *md.parts_by_quality().tolist()]
            for index in range(4):
                times, values = md.counter_samples(index, interval_ns, refresh_ns)
                assert np.all(np.diff(times) > 0)
                if refresh_ns is not None:
                    assert times[0] == md.day_start and np.all(np.diff(np.append(times, md.day_end)) <= refresh_ns)
                falls = times[1:][np.diff(values) < 0]
                assert set(falls.tolist()) <= set(md.reset_times.tolist())
                assert np.all(md.counter_at(index, md.reset_times) == 0)
                # A decrease is a reset and the reading after it is the increment (kpi.md section 3).
                prior = previous.get((machine_id, index))
                increment, _ = counter_increments(list(zip(times.tolist(), values.tolist(), strict=True)), prior)
                assert increment == made[index], (machine_id, index)
                previous[(machine_id, index)] = int(values[-1])
                assert md.carry_out.counters[index] == md.counter_at(index, np.array([md.day_end - 1]))[0]
    assert resets >= 6, "about one power cycle per machine and day"


def test_meter_register_is_the_exact_integral_of_the_power_of_the_states(generator: HistoryGenerator) -> None:
    day, _, machine_days, meter_days = next(generator.simulate())
    params = generator.meter_params(0.0)["meter-h1"]
    expected_kwh = params.base_rate * 24
    for machine_id, rates in params.machine_rates.items():
        durations_h = machine_days[machine_id].state_durations_ns() / 3.6e12
        expected_kwh += float(np.dot(durations_h, rates))
    meter = meter_days["meter-h1"]
    initial = meter.register[0]
    assert meter.carry_out - initial == pytest.approx(expected_kwh, rel=1e-12)
    assert np.all(np.diff(meter.register) >= 0)
    assert len(meter.times) == 24 * 60 and meter.times[0] == day_bounds(day, generator.tz)[0]
    # Gas flows only while the supplied machine produces.
    gas = generator.meter_params(0.0)["gas-h1"]
    assert gas.machine_rates["cnc-h1"][PRODUCING] == 1.2 and gas.machine_rates["cnc-h1"][DOWN] == 0.0


def test_every_state_counter_and_meter_register_is_written_at_least_every_report_interval_even_across_midnight(
    generator: HistoryGenerator,
) -> None:
    days = list(generator.generate())
    series: dict[tuple[str, str], list[Chunk]] = {}
    for day in days:
        for chunk in day.chunks:
            series.setdefault((chunk.series.tags["equipment"], chunk.series.tags["signal"]), []).append(chunk)
    report_s = {eq.id: eq.report_interval_s for eq in generator.scenario.assets}
    assert report_s["cnc-h1"] == 300 and report_s["cnc-h2"] == 60 and report_s["gas-h1"] == 45
    checked = set()
    for (equipment, signal), chunks in series.items():
        if signal in ("cycle_time_s", "spindle_speed_rpm", "power_kw", "gas_flow_m3_h"):
            continue  # process values follow their events; the KPIs need states, counters and registers
        times = np.concatenate([c.times for c in chunks])
        gaps = np.diff(np.concatenate([times, [days[-1].end_ns]]))
        assert times[0] == days[0].start_ns and gaps.max() <= report_s[equipment] * NS_PER_S, (equipment, signal)
        checked.add((equipment, signal))
    assert len(checked) == 3 * 5 + 2  # state and four counters per machine, a register per meter
    # The meter interval (1 min) stays where the meter's report interval is longer, and follows it
    # where it is shorter.
    first = days[0].chunks
    registers = {c.series.tags["equipment"]: c for c in first if c.series.measurement == "energy"}
    assert len(registers["meter-h1"]) == 24 * 60 and len(registers["gas-h1"]) == 24 * 3600 // 45


def test_a_refresh_reading_is_the_state_or_count_at_its_time_and_the_point_ingest_writes_for_the_edges_refresh(
    generator: HistoryGenerator,
) -> None:
    _, _, machine_days, _ = next(generator.simulate())
    md = machine_days["cnc-h1"]
    refresh_ns = 300 * NS_PER_S
    times, codes = md.state_samples(refresh_ns)
    assert set(md.state_times.tolist()) <= set(times.tolist())
    assert set(md.refresh_grid(refresh_ns).tolist()) <= set(times.tolist())
    for t, code in zip(times.tolist(), codes.tolist(), strict=True):
        assert code == md.state_codes[np.searchsorted(md.state_times, t, side="right") - 1]

    # A live refresh of the same reading, through ingest's mapping, is the very point the generator
    # writes, apart from the provenance fields (ts_source, flags) that generated history does not claim.
    placement = generator.scenario.assets.placement("cnc-h1")
    at = int(md.refresh_grid(refresh_ns)[100])
    state = STATES[IDLE]
    read = Sample(equipment="cnc-h1", signal="state", ts=ns_to_datetime(at - 7), value=state.value, raw="2")
    (live,) = refresh_samples({"state": LastReading(read, ns_to_datetime(at - 5))}, ns_to_datetime(at))
    assert live.flags == ("refresh",) and RAW_STATE_CODE[state] == 2
    generated = Series.of(placement, "state").points(np.array([at]), np.array([IDLE], dtype=np.int8))
    assert [without_provenance(sample_to_point(live, placement))] == generated
    count = Sample(equipment="cnc-h1", signal="parts_good", ts=ns_to_datetime(at - 7), value=1234)
    (live,) = refresh_samples({"parts_good": LastReading(count, ns_to_datetime(at - 5))}, ns_to_datetime(at))
    generated = Series.of(placement, "parts_good").points(np.array([at]), np.array([1234]))
    assert [without_provenance(sample_to_point(live, placement))] == generated


def without_provenance(point: Point) -> Point:
    fields = {k: v for k, v in point.fields.items() if k not in ("ts_source", "flags", "status")}
    return dataclasses.replace(point, fields=fields)


def test_a_meter_without_machines_draws_its_base_load_only() -> None:
    start = 1_700_000_000 * 10**9
    meter = simulate_meter_day(
        MeterParams(base_rate=2.0, machine_rates={}), start, start + 3600 * 10**9, {}, 100.0, 60 * 10**9
    )
    assert meter.register[-1] == pytest.approx(100.0 + 2.0 * 59 / 60)
    assert meter.carry_out == pytest.approx(102.0)


def test_same_seed_gives_identical_line_protocol_and_another_seed_does_not(scenario: FactoryScenario) -> None:
    days = [date(2026, 3, 3)]
    first = line_protocol(HistoryGenerator(scenario, days=2), days)
    again = line_protocol(HistoryGenerator(scenario, days=2), days)
    other = line_protocol(HistoryGenerator(scenario, days=2, seed=12), days)
    assert first == again and len(first) > 1_000_000
    assert other != first
    # A day does not depend on which days are written: resuming regenerates the same bytes.
    assert line_protocol(HistoryGenerator(scenario, days=3), days) == first


def test_bulk_encoding_is_byte_identical_to_the_stores_line_protocol(generator: HistoryGenerator) -> None:
    day = next(generator.generate())
    assert "".join(chunks_to_lines(day.chunks)).encode() == encode_points(chunks_to_points(day.chunks))
    measurements = {c.series.measurement for c in day.chunks}
    assert measurements == {"machine_state", "part_counter", "energy", "process_value"}


def test_assessment_days_use_the_improved_behaviour_and_a_gap_ramps_between_the_periods(
    scenario: FactoryScenario,
) -> None:
    generator = HistoryGenerator(scenario)
    assert [generator.share(d) for d in generator.days] == [0, 0, 0, 1, 1, 1]
    base, improved = generator.machine_params(0.0)["cnc-h1"], generator.machine_params(1.0)["cnc-h1"]
    assert improved.scrap_probability == pytest.approx(base.scrap_probability * 0.7)
    assert improved.power_kw[PRODUCING] == pytest.approx(base.power_kw[PRODUCING] * 0.85)
    assert improved.breakdown_rate < base.breakdown_rate
    history = scenario.spec.history
    assert history is not None
    gap = history.model_copy(update={"assessment": history.assessment.model_copy(update={"start": date(2026, 3, 7)})})
    ramp = HistoryGenerator(scenario, history=gap)
    assert [ramp.share(d) for d in ramp.days] == [0, 0, 0, pytest.approx(1 / 3), pytest.approx(2 / 3), 1]


def test_working_windows_follow_weekdays_breaks_night_shifts_and_holidays() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    calendar = ShiftCalendar(
        shifts=[
            Shift(
                name="day",
                days=[Weekday.MON, Weekday.TUE],
                start=time(8),
                end=time(16),
                breaks=[PlannedBreak(start=time(12), end=time(12, 30))],
            ),
            Shift(name="night", days=[Weekday.MON], start=time(22), end=time(6)),
        ],
        holidays=[date(2026, 3, 10)],
    )
    monday, tuesday = date(2026, 3, 2), date(2026, 3, 3)
    hours = {d: sum(b - a for a, b in working_windows(calendar, d, tz)) / 3.6e12 for d in (monday, tuesday)}
    assert hours == {monday: 7.5 + 2, tuesday: 6 + 7.5}  # the night shift runs on past midnight
    holiday_start, _ = day_bounds(date(2026, 3, 10), tz)
    # A holiday Tuesday: only the Monday night shift, which belongs to the Monday, runs into it.
    assert working_windows(calendar, date(2026, 3, 10), tz) == [(holiday_start, holiday_start + 6 * 3600 * 10**9)]
    assert working_windows(calendar, date(2026, 3, 4), tz) == []  # Wednesday: no shift
    start, _ = day_bounds(tuesday, tz)
    assert working_windows(calendar, tuesday, tz)[0] == (start, start + 6 * 3600 * 10**9)
    assert day_bounds(monday + timedelta(days=1), tz)[0] == day_bounds(monday, tz)[1]
