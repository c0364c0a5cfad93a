"""Scenario files: the shipped ones load, layers merge, the calendar is right, broken files name file, line, field."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

import simulators.scenario as scenario_module
from core.assets import EnergyCarrier, EquipmentType
from core.errors import ConfigError
from simulators.scenario import (
    Improvements,
    MachineBehaviourSpec,
    ShiftCalendar,
    default_scenario,
    load_scenario,
    parse_duration,
)

SCENARIOS = Path(__file__).resolve().parent.parent / "config" / "scenarios"

ASSETS = """\
version: 1
site:
  id: s
  timezone: Asia/Shanghai
  workshops:
    - id: w
      lines:
        - id: l
          equipment:
            - {id: cnc-01, type: cnc, ideal_cycle_time_s: 60, meter: meter-a}
            - {id: cnc-02, type: cnc, ideal_cycle_time_s: 60, meter: meter-a}
            - {id: cnc-03, type: cnc, ideal_cycle_time_s: 60, meter: meter-a}
            - {id: robot-01, type: robot, ideal_cycle_time_s: 30, meter: meter-a}
            - {id: meter-a, type: meter, carrier: electricity}
            - {id: gas-1, type: meter, carrier: natural_gas}
            - {id: water-1, type: meter, carrier: water}
"""


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "assets.yaml").write_text(ASSETS)
    path = tmp_path / "scenario.yaml"
    path.write_text("assets: assets.yaml\n" + textwrap.dedent(body))
    return path


def broken(tmp_path: Path, body: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_scenario(write(tmp_path, body))
    return info.value


def test_the_shipped_scenarios_load_with_their_asset_models() -> None:
    small = load_scenario(SCENARIOS / "small.yaml")
    assert small.machine_ids() == ["cnc-s1", "cnc-s2", "robot-s1"]
    assert {small.meter(m).carrier for m in small.meter_ids()} == {
        EnergyCarrier.ELECTRICITY,
        EnergyCarrier.NATURAL_GAS,
        EnergyCarrier.WATER,
    }

    plant = load_scenario(SCENARIOS / "plant.yaml")
    kinds = [plant.assets.equipment(m).type for m in plant.machine_ids()]
    assert (kinds.count(EquipmentType.CNC), kinds.count(EquipmentType.ROBOT)) == (40, 10)
    assert len({ws.id for ws in plant.site.workshops}) == 2
    carriers = [plant.meter(m).carrier for m in plant.meter_ids()]
    assert len(carriers) == 15 and {EnergyCarrier.NATURAL_GAS, EnergyCarrier.WATER} <= set(carriers)
    assert plant.spec.history is not None and plant.machines_per_server == 10


def test_the_module_docstring_example_is_a_valid_scenario(tmp_path: Path) -> None:
    doc = scenario_module.__doc__ or ""
    example = textwrap.dedent(doc.split("Full example", 1)[1].split("::", 1)[1].split("\nPlaceholders", 1)[0])
    data = yaml.safe_load(example)
    data["assets"] = "assets.yaml"
    path = write(tmp_path, "")
    path.write_text(yaml.safe_dump(data))
    scenario = load_scenario(path)
    assert scenario.behaviour("cnc-01").quality.scrap_probability == 0.05
    assert scenario.meter("gas-1").machines == ("cnc-01", "cnc-02", "cnc-03")


def test_layers_override_only_what_they_name(tmp_path: Path) -> None:
    scenario = load_scenario(
        write(
            tmp_path,
            """\
            defaults:
              breakdowns: {mtbf: 6h, mttr: 25min}
              power_kw: {producing: 18}
            types:
              robot:
                breakdowns: {mtbf: 12h}
            machines:
              cnc-02:
                breakdowns: {mttr: 1h}
                faults: {enabled: false}
            """,
        )
    )
    robot, cnc1, cnc2 = (scenario.behaviour(m) for m in ("robot-01", "cnc-01", "cnc-02"))
    assert (robot.breakdowns.mtbf, robot.breakdowns.mttr) == (12 * 3600, 25 * 60)
    assert (cnc1.breakdowns.mtbf, cnc1.breakdowns.mttr) == (6 * 3600, 25 * 60)
    assert (cnc2.breakdowns.mtbf, cnc2.breakdowns.mttr) == (6 * 3600, 3600)
    assert cnc1.power_kw.producing == cnc2.power_kw.producing == 18.0
    assert cnc1.power_kw.idle == MachineBehaviourSpec().power_kw.idle
    assert cnc1.faults.enabled and not cnc2.faults.enabled


def test_durations_take_units() -> None:
    assert [parse_duration(v) for v in (90, "90s", "1.5min", "2h", "1d", "500ms")] == [
        90.0, 90.0, 90.0, 7200.0, 86400.0, 0.5,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("3 weeks")


@pytest.mark.parametrize(
    ("body", "line", "field", "reason"),
    [
        ("defaults:\n  breakdowns:\n    mtbf: soon\n", 4, "defaults.breakdowns.mtbf", "not a duration"),
        ("machines:\n  cnc-09: {showcase: true}\n", 3, "machines.cnc-09", "no equipment 'cnc-09'"),
        ("machines:\n  meter-a: {showcase: true}\n", 3, "machines.meter-a", "not a CNC machine or robot"),
        (
            "meters:\n  gas-1:\n    payload: {ts: '{ts}', v: '{volume_m3}', e: '{energy_kwh}'}\n",
            4,
            "meters.gas-1.payload.e",
            "unknown placeholder {energy_kwh}",
        ),
        ("meters:\n  water-1:\n    payload: {ts: '{ts}'}\n", 4, "meters.water-1.payload", '"{volume_m3}"'),
        ("meters:\n  gas-1:\n    carrier: water\n", 4, "meters.gas-1.carrier", "asset model says natural_gas"),
        ("meters:\n  meter-a:\n    flow_m3_h: 2\n", 4, "meters.meter-a.flow_m3_h", "gas and water meters only"),
        ("meters:\n  meter-a:\n    interval: 2min\n", 4, "meters.meter-a.interval", "longer than the meter's report"),
        ("meters:\n  gas-1:\n    supplies: [meter-a]\n", 4, "meters.gas-1.supplies[0]", "not a simulated machine"),
        (
            "calendar:\n  shifts:\n    - {name: a, start: '06:00', end: '14:00',\n"
            "       breaks: [{start: '15:00', end: '15:30'}]}\n",
            5,
            "calendar.shifts[0].breaks[0].start",
            "must lie inside its shift",
        ),
        ("timezone: Mars/Olympus\n", 2, "timezone", "unknown time zone"),
        ("quality_of_life: high\n", 2, "quality_of_life", "Extra inputs are not permitted"),
        (
            "defaults:\n  cycle_time_factor: {mode: 1.1}\ntypes:\n  robot:\n    cycle_time_factor: {high: 1.05}\n",
            6,
            "types.robot.cycle_time_factor",
            "after laying it over the layers below",
        ),
    ],
)
def test_a_broken_scenario_names_file_line_field_and_reason(
    tmp_path: Path, body: str, line: int, field: str, reason: str
) -> None:
    error = broken(tmp_path, body)
    assert error.file.endswith("scenario.yaml")
    assert (error.line, error.field) == (line, field), str(error)
    assert reason in error.reason
    assert str(error).startswith(f"{error.file}:{line}: {field}: ")


def test_a_missing_asset_file_is_named_at_the_assets_line(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("seed: 3\nassets: nowhere.yaml\n")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert (info.value.line, info.value.field) == (2, "assets")
    assert "nowhere.yaml does not exist" in info.value.reason


SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


def test_working_periods_leave_out_breaks_nights_weekends_and_holidays() -> None:
    calendar = ShiftCalendar.model_validate(
        {
            "shifts": [
                {"name": "early", "days": "mon-fri", "start": "06:00", "end": "14:00",
                 "breaks": [{"start": "10:00", "end": "10:30"}]},
                {"name": "night", "days": ["fri"], "start": "22:00", "end": "06:00",
                 "breaks": [{"start": "02:00", "end": "02:30"}]},
            ],
            "holidays": ["2026-11-26"],
        }
    )  # fmt: skip
    # Wednesday 25 Nov 2026 to Sunday 29 Nov; Thursday is a holiday.
    periods = calendar.working_periods(local(2026, 11, 25), local(2026, 11, 30), SHANGHAI)
    assert periods == [
        (local(2026, 11, 25, 6), local(2026, 11, 25, 10)),
        (local(2026, 11, 25, 10, 30), local(2026, 11, 25, 14)),
        (local(2026, 11, 27, 6), local(2026, 11, 27, 10)),
        (local(2026, 11, 27, 10, 30), local(2026, 11, 27, 14)),
        (local(2026, 11, 27, 22), local(2026, 11, 28, 2)),  # the night shift runs into Saturday
        (local(2026, 11, 28, 2, 30), local(2026, 11, 28, 6)),
    ]
    # clipped to the window asked for
    assert calendar.working_periods(local(2026, 11, 25, 12), local(2026, 11, 25, 13), SHANGHAI) == [
        (local(2026, 11, 25, 12), local(2026, 11, 25, 13))
    ]


def test_unquoted_clock_times_are_read_as_clock_times() -> None:
    # YAML 1.1 reads 06:00 unquoted as the integer 360.
    calendar = ShiftCalendar.model_validate(yaml.safe_load("shifts: [{name: a, start: 06:00, end: 14:30}]"))
    assert (calendar.shifts[0].start, calendar.shifts[0].end) == (time(6), time(14, 30))


def test_improvements_shrink_losses_defects_and_power() -> None:
    base = MachineBehaviourSpec()
    better = base.improved(Improvements(efficiency=0.2, defect_rate=0.5, energy_per_part=0.1))
    assert better.breakdowns.mtbf == pytest.approx(base.breakdowns.mtbf / 0.8)
    assert better.breakdowns.mttr == pytest.approx(base.breakdowns.mttr * 0.8)
    assert better.cycle_time_factor.high - 1 == pytest.approx((base.cycle_time_factor.high - 1) * 0.8)
    assert better.quality.scrap_probability == pytest.approx(base.quality.scrap_probability / 2)
    assert better.power_kw.producing == pytest.approx(base.power_kw.producing * 0.9)
    assert base.improved(Improvements(efficiency=0.2), share=0.0) == base


def test_without_a_scenario_file_every_machine_gets_cycle_scaled_defaults(example_assets_path: Path) -> None:
    from core.assets import load_asset_model

    scenario = default_scenario(load_asset_model(example_assets_path), seed=7, site="cq-demo")
    cnc = scenario.behaviour("cnc-01")  # ideal cycle 4 s
    assert cnc.showcase and not cnc.faults.enabled
    assert cnc.breakdowns.mttr == pytest.approx(16.0)
    assert scenario.meter("meter-a").payload["energy"] == {"active_import_kwh": "{energy_kwh}"}
    assert scenario.calendar.always_working


# -- one calendar for the platform and the simulators ----------------------------------------------

SITE_CALENDAR = """\
  calendar:
    shifts:
      - {name: early, days: mon-fri, start: "06:00", end: "14:00"}
"""


def write_with_site_calendar(tmp_path: Path, body: str, workshop_calendar: str = "") -> Path:
    path = write(tmp_path, body)
    assets = ASSETS.replace("  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n" + SITE_CALENDAR)
    if workshop_calendar:
        assets = assets.replace("    - id: w\n", "    - id: w\n" + workshop_calendar)
    (tmp_path / "assets.yaml").write_text(assets)
    return path


def test_the_plant_scenario_follows_the_calendar_of_its_asset_model() -> None:
    plant = load_scenario(SCENARIOS / "plant.yaml")
    assert plant.spec.calendar is None  # plant.yaml has none of its own
    assert plant.calendar is plant.assets.calendar_of("cq-plant")[1]
    assert [(s.name, [d.value for d in s.days]) for s in plant.calendar.shifts] == [
        ("early", ["mon", "tue", "wed", "thu", "fri", "sat"]),
        ("late", ["mon", "tue", "wed", "thu", "fri"]),
    ]
    assert plant.calendar_of("cnc-01") is plant.calendar


def test_a_scenario_without_a_calendar_takes_the_site_calendar(tmp_path: Path) -> None:
    scenario = load_scenario(write_with_site_calendar(tmp_path, "seed: 1\n"))
    assert [s.name for s in scenario.calendar.shifts] == ["early"]
    same = "calendar:\n  shifts:\n    - {name: early, days: mon-fri, start: '06:00', end: '14:00'}\n"
    assert load_scenario(write_with_site_calendar(tmp_path, same)).calendar == scenario.calendar  # a copy agrees


@pytest.mark.parametrize(
    ("body", "workshop_calendar", "line", "field", "reason"),
    [
        (
            "calendar:\n  shifts: [{name: early, days: mon-fri, start: '07:00', end: '15:00'}]\n",
            "",
            2,
            "calendar",
            "differs from the site calendar of",
        ),
        ("timezone: Europe/Berlin\n", "", 2, "timezone", "is in Asia/Shanghai, not Europe/Berlin"),
        (
            "seed: 1\n",
            "      calendar: {shifts: [{name: night, start: '22:00', end: '06:00'}]}\n",
            1,
            "assets",
            "workshop 'w' of",
        ),
    ],
)
def test_a_scenario_that_would_disagree_with_the_platform_calendar_is_refused(
    tmp_path: Path, body: str, workshop_calendar: str, line: int, field: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_scenario(write_with_site_calendar(tmp_path, body, workshop_calendar))
    assert (info.value.line, info.value.field) == (line, field), str(info.value)
    assert reason in info.value.reason
