"""The asset model loads the example factory and its calendars; broken files fail with file, line, field, reason."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.assets import EquipmentType, load_asset_model
from core.calendar import ShiftCalendar, working_spans_ns
from core.errors import ConfigError


def test_example_factory_has_the_promised_equipment(example_assets_path: Path) -> None:
    model = load_asset_model(example_assets_path)
    kinds = [eq.type for eq in model]
    assert model.park.id == "cq-park"
    assert [site.id for site in model.sites] == ["cq-demo", "cq-east"]
    assert len(model.get_site("cq-demo").workshops) >= 2
    assert kinds.count(EquipmentType.CNC) >= 6
    assert kinds.count(EquipmentType.ROBOT) >= 2
    assert kinds.count(EquipmentType.METER) >= 3


def test_scopes_cover_site_workshop_line_and_equipment(example_assets_path: Path) -> None:
    model = load_asset_model(example_assets_path)
    assert [e.id for e in model.scope("line-a")] == ["cnc-01", "cnc-02", "cnc-03", "meter-a"]
    assert [e.id for e in model.scope("cnc-05")] == ["cnc-05"]
    assert len(model.scope("cq-demo")) + len(model.scope("cq-east")) == len(model.scope("cq-park")) == len(list(model))
    assert model.placement("robot-02").tags() == {
        "site": "cq-demo",
        "workshop": "assembly",
        "line": "line-c",
        "equipment": "robot-02",
    }
    assert [e.id for e in model.covered_by("meter-b")] == ["cnc-04", "cnc-05", "cnc-06"]
    with pytest.raises(KeyError, match="unknown scope"):
        model.scope("nowhere")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "factory.yaml"
    path.write_text(text)
    return path


GOOD_HEAD = """\
site:
  id: s1
  workshops:
    - id: w1
      lines:
        - id: l1
          equipment:
"""


def test_bad_field_value_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GOOD_HEAD
        + "            - id: m1\n              type: meter\n              carrier: electricity\n"
        + "            - id: c1\n              type: cnc\n              ideal_cycle_time_s: -2\n",
    )
    with pytest.raises(ConfigError) as err:
        load_asset_model(path)
    assert err.value.line == 13
    assert err.value.field == "site.workshops[0].lines[0].equipment[1].ideal_cycle_time_s"
    assert str(err.value).startswith(f"{path}:13: site.workshops[0].lines[0].equipment[1].ideal_cycle_time_s:")
    assert "greater than 0" in err.value.reason


def test_unknown_meter_reference_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GOOD_HEAD + "            - {id: c1, type: cnc, ideal_cycle_time_s: 2, meter: meter-x}\n",
    )
    with pytest.raises(ConfigError, match=r"factory.yaml:8: .*equipment\[0\]\.meter: no meter with id 'meter-x'"):
        load_asset_model(path)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GOOD_HEAD
        + "            - {id: c1, type: cnc, ideal_cycle_time_s: 2}\n"
        + "            - {id: c1, type: robot, ideal_cycle_time_s: 2}\n",
    )
    with pytest.raises(ConfigError, match=r":9: .*equipment\[1\]\.id: duplicate id 'c1'"):
        load_asset_model(path)


def test_unknown_key_and_bad_type_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_HEAD + "            - {id: c1, type: lathe, ideal_cycle_time_s: 2}\n")
    with pytest.raises(ConfigError, match=r"equipment\[0\]\.type: Input should be 'cnc'"):
        load_asset_model(path)
    path = _write(tmp_path, GOOD_HEAD + "            - {id: c1, type: cnc, ideal_cycle: 2}\n")
    with pytest.raises(ConfigError, match=r"ideal_cycle: Extra inputs are not permitted"):
        load_asset_model(path)


def test_invalid_yaml_and_missing_file_are_clear(tmp_path: Path) -> None:
    path = _write(tmp_path, "site: [unclosed\n")
    with pytest.raises(ConfigError, match=r"factory.yaml:2: invalid YAML"):
        load_asset_model(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_asset_model(tmp_path / "missing.yaml")


def test_several_meters_per_equipment_and_gateway_of_the_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GOOD_HEAD.replace("        - id: l1\n", "        - id: l1\n          gateway: gw-1\n")
        + "            - {id: em, type: meter, carrier: electricity, register_max: 99999.9}\n"
        + "            - {id: gm, type: meter, carrier: natural_gas}\n"
        + "            - {id: c1, type: cnc, ideal_cycle_time_s: 2, meter: em, meters: [gm], gateway: gw-2}\n"
        + "            - {id: k1, type: manual, meters: [gm]}\n",
    )
    model = load_asset_model(path)
    assert model.equipment("c1").meter_ids == ["em", "gm"]
    assert [eq.id for eq in model.covered_by("gm")] == ["c1", "k1"]
    assert model.placement("c1").gateway == "gw-2"  # its own gateway wins over the line's
    assert model.placement("k1").gateway == "gw-1"
    assert "gateway" not in model.placement("k1").tags()  # not a store tag
    assert model.equipment("c1").is_digital and not model.equipment("k1").is_digital


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{id: c1, type: cnc, ideal_cycle_time_s: 2, meters: [em, nope]}", r"meters\[1\]: no meter with id 'nope'"),
        ("{id: c1, type: cnc, ideal_cycle_time_s: 2, register_max: 10}", r"register_max: only meters have a register"),
        ("{id: m2, type: meter, carrier: heat, meters: [em]}", r"meters: a meter cannot itself be covered"),
        ("{id: m2, type: meter, carrier: coal}", r"carrier: Input should be 'electricity'"),
        ("{id: c1, type: cnc, ideal_cycle_time_s: 2, report_interval_s: 0}", r"report_interval_s: .*greater than 0"),
    ],
)
def test_broken_meter_and_interval_fields_are_refused(tmp_path: Path, entry: str, message: str) -> None:
    path = _write(
        tmp_path,
        GOOD_HEAD + "            - {id: em, type: meter, carrier: electricity}\n" + f"            - {entry}\n",
    )
    with pytest.raises(ConfigError, match=r"factory.yaml:9: .*equipment\[1\]\." + message):
        load_asset_model(path)


# -- calendars -------------------------------------------------------------------------------------


def _with_calendar(site_calendar: str = "", *, timezone: str = "Asia/Shanghai", workshop_calendar: str = "") -> str:
    """An asset file whose site calendar starts on line 4 (``calendar:``) and its body on line 5."""
    return (
        "site:\n"
        "  id: s1\n"
        f"  timezone: {timezone}\n" + (f"  calendar:\n{site_calendar}" if site_calendar else "") + "  workshops:\n"
        "    - id: w1\n" + (f"      calendar:\n{workshop_calendar}" if workshop_calendar else "") + "      lines:\n"
        "        - id: l1\n"
        "          equipment:\n"
        "            - {id: c1, type: cnc, ideal_cycle_time_s: 2}\n"
        "    - id: w2\n"
        "      lines:\n"
        "        - id: l2\n"
        "          equipment:\n"
        "            - {id: c2, type: cnc, ideal_cycle_time_s: 2}\n"
    )


TWO_SHIFTS = """\
    shifts:
      - {name: early, days: mon-fri, start: "06:00", end: "14:00"}
      - {name: late, days: mon-fri, start: "14:00", end: "22:00"}
    holidays: [2026-10-01]
"""


def test_a_workshop_calendar_replaces_the_site_calendar_for_its_equipment(tmp_path: Path) -> None:
    nights = '        shifts: [{name: night, days: mon-fri, start: "22:00", end: "06:00"}]\n'
    model = load_asset_model(_write(tmp_path, _with_calendar(TWO_SHIFTS, workshop_calendar=nights)))
    zone, site_calendar = model.calendar_of("s1")
    assert zone == ZoneInfo("Asia/Shanghai")
    assert [s.name for s in site_calendar.shifts] == ["early", "late"]
    assert site_calendar.holidays == [date(2026, 10, 1)]
    for scope in ("w1", "l1", "c1"):
        assert [s.name for s in model.calendar_of(scope)[1].shifts] == ["night"]
    for scope in ("w2", "l2", "c2"):
        assert model.calendar_of(scope)[1] is site_calendar
    with pytest.raises(KeyError, match="unknown scope 'c9'"):
        model.calendar_of("c9")


def test_an_empty_workshop_calendar_works_around_the_clock_under_a_site_with_shifts(tmp_path: Path) -> None:
    model = load_asset_model(_write(tmp_path, _with_calendar(TWO_SHIFTS, workshop_calendar="        {}\n")))
    assert model.calendar_of("c1")[1].always_working
    assert not model.calendar_of("c2")[1].always_working


def test_without_a_calendar_the_site_works_around_the_clock(example_assets_path: Path) -> None:
    model = load_asset_model(example_assets_path)  # the demo factory runs around the clock
    zone, calendar = model.calendar_of("cnc-01")
    assert zone.key == "Asia/Shanghai" and calendar.always_working
    assert calendar == ShiftCalendar()


def test_the_plant_asset_model_carries_the_plant_shift_calendar() -> None:
    model = load_asset_model(Path(__file__).resolve().parent.parent / "config" / "scenarios" / "plant-assets.yaml")
    zone, calendar = model.calendar_of("cnc-01")
    # A week without holidays, Mon 23 Nov to Mon 30 Nov 2026 local (Asia/Shanghai is UTC+8):
    # early 06:00-14:00 Mon-Sat less 15 + 30 min breaks = 7.25 h x 6; late 14:00-22:00 Mon-Fri less 30 + 15 min
    # = 7.25 h x 5; 43.5 h + 36.25 h = 79.75 h.
    start, end = 1_795_363_200 * 10**9, 1_795_968_000 * 10**9  # 2026-11-22T16:00Z, 2026-11-29T16:00Z
    assert sum(b - a for a, b in working_spans_ns(calendar, zone, start, end)) == int(79.75 * 3600) * 10**9
    assert model.calendar_of("robot-01")[1] is calendar  # one calendar for the whole site


@pytest.mark.parametrize(
    ("site_calendar", "line", "field", "reason"),
    [
        (
            "    shifts:\n      - {name: early, start: '25:00', end: '14:00'}\n",
            6,
            "site.calendar.shifts[0].start",
            "'25:00' is not a clock time",
        ),
        (
            "    shifts:\n      - {name: early, start: 25:00, end: '14:00'}\n",
            6,
            "site.calendar.shifts[0].start",
            "1500 (unquoted 25:00?) is not a clock time",
        ),
        (
            "    shifts:\n      - name: early\n        start: '06:00'\n        end: '14:00'\n        breaks:\n"
            "          - {name: tea, start: '14:00', end: '14:15'}\n",
            10,
            "site.calendar.shifts[0].breaks[0].start",
            "break 'tea' (14:00-14:15) must lie inside its shift 'early' (06:00-14:00)",
        ),
        (
            "    shifts:\n      - name: early\n        days: [mon, tue, wdn]\n"
            "        start: '06:00'\n        end: '14:00'\n",
            7,
            "site.calendar.shifts[0].days[2]",
            "Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'",
        ),
        (
            "    shifts:\n      - {name: early, start: '06:00', end: '14:00'}\n"
            "      - {name: late, start: '13:30', end: '22:00'}\n",
            7,
            "site.calendar.shifts[1]",
            "shift 'late' overlaps shift 'early' ('early' Mon 06:00-14:00 and 'late' Mon 13:30-22:00)",
        ),
        (
            "    shifts:\n      - {name: early, start: '06:00', end: '14:00'}\n"
            "    holidays: [2026-10-10]\n    makeup_days:\n      - {date: 2026-10-10, works_as: fri}\n",
            9,
            "site.calendar.makeup_days[0].date",
            "2026-10-10 is a holiday, too",
        ),
        (
            "    shifts:\n      - {name: early, start: '06:00', end: '14:00'}\n"
            "    makeup_days:\n      - {date: 2026-10-10, works_as: friday}\n",
            8,
            "site.calendar.makeup_days[0].works_as",
            "Input should be 'mon'",
        ),
        ("    holidays: ['2026-02-30']\n", 5, "site.calendar.holidays[0]", "Input should be a valid date"),
        ("    shift: []\n", 5, "site.calendar.shift", "Extra inputs are not permitted"),
    ],
)
def test_a_broken_calendar_names_file_line_field_and_reason(
    tmp_path: Path, site_calendar: str, line: int, field: str, reason: str
) -> None:
    path = _write(tmp_path, _with_calendar(site_calendar))
    with pytest.raises(ConfigError) as err:
        load_asset_model(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field), str(err.value)
    assert reason in err.value.reason
    assert str(err.value).startswith(f"{path}:{line}: {field}: ")


def test_a_broken_workshop_calendar_is_named_under_its_workshop(tmp_path: Path) -> None:
    workshop = "        shifts:\n          - {name: night, days: mon-fri, start: '22:00', end: '06:30'}\n"
    workshop += "          - {name: early, days: mon-fri, start: '06:00', end: '14:00'}\n"
    path = _write(tmp_path, _with_calendar(workshop_calendar=workshop))
    with pytest.raises(ConfigError) as err:
        load_asset_model(path)
    assert (err.value.line, err.value.field) == (
        9,
        "site.workshops[0].calendar.shifts[1]",
    )  # line 9: the second shift, str(err.value)
    assert "shift 'early' overlaps shift 'night' ('night' Mon 22:00-06:30 and 'early' Tue 06:00-14:00)" in str(
        err.value
    )


@pytest.mark.parametrize(
    ("zone", "reason"),
    [
        ("Asia/Shang_hai", "unknown time zone 'Asia/Shang_hai' (use an IANA name like Asia/Shanghai)"),
        ("asia/shanghai", "did you mean Asia/Shanghai?"),
        ("+08:00", "unknown time zone '+08:00'"),
        ("localtime", "unknown time zone 'localtime'"),
    ],
)
def test_the_site_time_zone_must_be_an_iana_name(tmp_path: Path, zone: str, reason: str) -> None:
    path = _write(tmp_path, _with_calendar(timezone=f"'{zone}'"))
    with pytest.raises(ConfigError) as err:
        load_asset_model(path)
    assert (err.value.line, err.value.field) == (3, "site.timezone"), str(err.value)
    assert reason in err.value.reason


def test_an_impossible_unquoted_holiday_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _with_calendar("    holidays: [2026-02-30]\n"))
    with pytest.raises(ConfigError) as err:
        load_asset_model(path)
    assert err.value.line == 5
    assert "invalid date or time" in err.value.reason


# -- the park ----------------------------------------------------------------------------------------

SITE_S1 = """\
  id: s1
  name: Site one
  timezone: Asia/Shanghai
  workshops:
    - id: w1
      lines:
        - id: l1
          equipment:
            - {id: m1, type: meter, carrier: electricity}
            - {id: c1, type: cnc, ideal_cycle_time_s: 2, meter: m1}
"""

SITE_S2 = """\
  id: s2
  name: Site two
  timezone: Europe/Berlin
  calendar:
    shifts: [{name: day, days: mon-fri, start: "07:00", end: "15:00"}]
  workshops:
    - id: w2
      name: Workshop two
      lines:
        - id: l2
          equipment:
            - {id: c2, type: cnc, ideal_cycle_time_s: 3}
"""


def _indent(text: str, by: str) -> str:
    return "".join(by + line if line.strip() else line for line in text.splitlines(keepends=True))


def _site_file(site: str) -> str:
    return "version: 1\nsite:\n" + site


def _park_inline(*sites: str, head: str = "park:\n  id: p1\n  name: 园区 (Park one)\n") -> str:
    return (
        head
        + "  sites:\n"
        + "".join(_indent("- " + site.lstrip(), "    ").replace("    -   ", "    - ") for site in sites)
    )


def test_a_single_site_file_is_a_park_of_one_site_named_park(tmp_path: Path) -> None:
    model = load_asset_model(_write(tmp_path, _site_file(SITE_S1)))
    assert (model.park.id, model.park.name) == ("park", "")
    assert [s.id for s in model.sites] == ["s1"]
    assert model.has_scope("park") and [e.id for e in model.scope("park")] == ["m1", "c1"]
    assert model.one_site().id == "s1"  # the only site
    assert model.timezone_of("park") == ZoneInfo("Asia/Shanghai")


def test_a_single_site_file_may_name_its_park(tmp_path: Path) -> None:
    model = load_asset_model(_write(tmp_path, "park: {id: p9, name: Nine}\nsite:\n" + SITE_S1))
    assert (model.park.id, model.park.name) == ("p9", "Nine")
    assert model.scope_kind("p9") == "park"


def test_a_park_with_its_sites_inline(tmp_path: Path) -> None:
    model = load_asset_model(_write(tmp_path, _park_inline(SITE_S1, SITE_S2)))
    assert (model.park.id, model.park.name) == ("p1", "园区 (Park one)")
    assert [s.id for s in model.sites] == ["s1", "s2"]
    assert [e.id for e in model.scope("p1")] == ["m1", "c1", "c2"]
    # Each site keeps its own zone and calendar.
    assert model.calendar_of("c1") == (ZoneInfo("Asia/Shanghai"), ShiftCalendar())
    zone, calendar = model.calendar_of("l2")
    assert zone == ZoneInfo("Europe/Berlin") and [s.name for s in calendar.shifts] == ["day"]
    # The park has no calendar of its own: its zone (the first site's unless it names one), around the clock.
    assert model.calendar_of("p1") == (ZoneInfo("Asia/Shanghai"), ShiftCalendar())
    assert model.placement("c2").tags()["site"] == "s2"


def test_site_of_scope_kind_and_scope_name(tmp_path: Path) -> None:
    model = load_asset_model(_write(tmp_path, _park_inline(SITE_S1, SITE_S2)))
    expected = {
        "p1": ("park", None, "园区 (Park one)"),
        "s1": ("site", "s1", "Site one"),
        "s2": ("site", "s2", "Site two"),
        "w2": ("workshop", "s2", "Workshop two"),
        "l2": ("line", "s2", "l2"),  # no name: the id
        "c1": ("equipment", "s1", "c1"),
    }
    for scope, (kind, site, name) in expected.items():
        assert (model.scope_kind(scope), model.site_of(scope), model.scope_name(scope)) == (kind, site, name), scope
    for lookup in (model.site_of, model.scope_kind, model.scope_name, model.scope):
        with pytest.raises(KeyError, match="unknown scope 'nowhere'"):
            lookup("nowhere")


def test_a_component_for_one_site_must_be_told_which_when_there_are_several(tmp_path: Path) -> None:
    model = load_asset_model(_write(tmp_path, _park_inline(SITE_S1, SITE_S2)))
    assert model.one_site("s2").id == "s2"
    with pytest.raises(ValueError, match=r"the park 'p1' of .* has 2 sites \(s1, s2\): name one"):
        model.one_site()
    with pytest.raises(KeyError, match="unknown site 's3'"):
        model.one_site("s3")


def test_a_park_of_site_files_equals_the_same_park_inline(tmp_path: Path) -> None:
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "s1.yaml").write_text(_site_file(SITE_S1))
    (tmp_path / "sites" / "s2.yaml").write_text(_site_file(SITE_S2))
    park = tmp_path / "park.yaml"
    park.write_text("park:\n  id: p1\n  name: 园区 (Park one)\n  site_files: [sites/s1.yaml, sites/s2.yaml]\n")
    from_files = load_asset_model(park)
    inline = load_asset_model(_write(tmp_path, _park_inline(SITE_S1, SITE_S2)))
    assert [s.id for s in from_files.sites] == ["s1", "s2"]
    assert from_files.park == inline.park
    # The digest is of the content only: where the sites were read from does not change it.
    assert from_files.digest() == inline.digest()
    assert len(inline.digest()) == 64 and int(inline.digest(), 16) >= 0


def test_the_digest_changes_with_any_field() -> None:
    from core.assets import AssetModel, Park, Site

    site = Site.model_validate(
        {
            "id": "s1",
            "workshops": [
                {
                    "id": "w1",
                    "lines": [{"id": "l1", "equipment": [{"id": "c1", "type": "cnc", "ideal_cycle_time_s": 2}]}],
                }
            ],
        }
    )
    one = AssetModel(Park(id="p", sites=[site]))
    renamed = AssetModel(Park(id="p", name="P", sites=[site]))
    assert one.digest() == AssetModel(Park(id="p", sites=[site])).digest()
    assert one.digest() != renamed.digest()


def test_a_duplicate_id_across_sites_of_one_file_names_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, _park_inline(SITE_S1, SITE_S2.replace("{id: c2,", "{id: c1,")))
    with pytest.raises(ConfigError) as err:
        load_asset_model(path)
    # Line 4 is sites:, s1 lines 5-14, s2 from line 15; its equipment entry c1 is line 26.
    assert (err.value.file, err.value.line) == (str(path), 26), str(err.value)
    assert err.value.field == "park.sites[1].workshops[0].lines[0].equipment[0].id"
    assert "duplicate id 'c1' (first used at park.sites[0].workshops[0].lines[0].equipment[1])" in err.value.reason


def test_a_duplicate_id_across_site_files_names_both_files(tmp_path: Path) -> None:
    (tmp_path / "s1.yaml").write_text(_site_file(SITE_S1))
    second = tmp_path / "s2.yaml"
    second.write_text(_site_file(SITE_S2.replace("- id: w2", "- id: w1")))
    park = tmp_path / "park.yaml"
    park.write_text("park:\n  id: p1\n  site_files: [s1.yaml, s2.yaml]\n")
    with pytest.raises(ConfigError) as err:
        load_asset_model(park)
    assert (err.value.file, err.value.line, err.value.field) == (str(second), 9, "site.workshops[0].id"), str(err.value)
    assert f"duplicate id 'w1' (first used at {tmp_path / 's1.yaml'}:7: site.workshops[0])" in err.value.reason


def test_the_park_id_is_unique_too(tmp_path: Path) -> None:
    path = _write(tmp_path, _park_inline(SITE_S1, head="park:\n  id: c1\n"))
    with pytest.raises(ConfigError, match=r"equipment\[1\]\.id: duplicate id 'c1' \(first used at park.id\)"):
        load_asset_model(path)
    path = _write(tmp_path, _site_file(SITE_S1.replace("id: l1", "id: park")))
    with pytest.raises(ConfigError, match=r"lines\[0\]\.id: duplicate id 'park' \(first used at the park's id"):
        load_asset_model(path)


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        ("version: 1\n", None, None, "needs site: (one site) or park: (a park of sites)"),
        ("park:\n  id: p1\n", 1, "park", "a park needs at least one site"),
        ("park:\n  id: p1\n  site_files: [nowhere.yaml]\n", 3, "park.site_files[0]", "nowhere.yaml does not exist"),
        ("park:\n  id: p1\n  sites: []\n  site: {}\n", 4, "park.site", "Extra inputs are not permitted"),
        ("park:\n  id: p1\n  site_files: [a.yaml]\nsite:\n" + SITE_S1, 3, "park.site_files", "only names the park"),
    ],
)
def test_a_broken_park_names_file_line_field_and_reason(
    tmp_path: Path, text: str, line: int | None, field: str | None, reason: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_asset_model(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field), str(err.value)
    assert reason in err.value.reason


def test_a_broken_site_file_is_named_itself(tmp_path: Path) -> None:
    (tmp_path / "s1.yaml").write_text(_site_file(SITE_S1.replace("ideal_cycle_time_s: 2", "ideal_cycle_time_s: -1")))
    (tmp_path / "nested.yaml").write_text("park:\n  id: p2\n  site_files: [s1.yaml]\n")
    park = tmp_path / "park.yaml"
    park.write_text("park:\n  id: p1\n  site_files: [s1.yaml]\n")
    with pytest.raises(ConfigError) as err:
        load_asset_model(park)
    assert (err.value.file, err.value.line) == (str(tmp_path / "s1.yaml"), 12), str(err.value)
    assert err.value.field == "site.workshops[0].lines[0].equipment[1].ideal_cycle_time_s"
    park.write_text("park:\n  id: p1\n  site_files: [nested.yaml]\n")
    with pytest.raises(ConfigError, match=r"nested\.yaml:1: park: a site file holds one site"):
        load_asset_model(park)


def test_a_model_built_in_code_refuses_a_duplicate_id_too() -> None:
    from core.assets import AssetModel, Park, Site

    site = Site.model_validate(
        {
            "id": "park",
            "workshops": [{"id": "w1", "lines": [{"id": "l1", "equipment": [{"id": "m", "type": "meter"}]}]}],
        }
    )
    with pytest.raises(ValueError, match="duplicate id 'park'"):
        AssetModel(Park(sites=[site]))
