"""The asset model loads the example factory and refuses broken files with file, line, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.assets import EquipmentType, load_asset_model
from core.errors import ConfigError


def test_example_factory_has_the_promised_equipment(example_assets_path: Path) -> None:
    model = load_asset_model(example_assets_path)
    kinds = [eq.type for eq in model]
    assert len(model.site.workshops) >= 2
    assert kinds.count(EquipmentType.CNC) >= 6
    assert kinds.count(EquipmentType.ROBOT) >= 2
    assert kinds.count(EquipmentType.METER) >= 3


def test_scopes_cover_site_workshop_line_and_equipment(example_assets_path: Path) -> None:
    model = load_asset_model(example_assets_path)
    assert [e.id for e in model.scope("line-a")] == ["cnc-01", "cnc-02", "cnc-03", "meter-a"]
    assert [e.id for e in model.scope("cnc-05")] == ["cnc-05"]
    assert len(model.scope("cq-demo")) == len(list(model))
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
