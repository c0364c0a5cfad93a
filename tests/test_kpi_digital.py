"""Digitalisation indicators on the example factory, worked by hand beside each figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.assets import Equipment, EquipmentType, load_asset_model
from kpi import digital
from kpi.digital import DIGITAL_KPIS, DigitalInputs, Ratio
from kpi.formulas import Direction

# config/factory.yaml, site cq-demo (the park's other site, cq-east, is left out here), the
# equipment that matters here (all eight machines are NC):
#   line-a  cnc-01 rough-milling  key      cnc-02 finish-milling key      cnc-03 turning  not key
#   line-b  cnc-04 turning        key      cnc-05 grinding       key      cnc-06 drilling not key
#   line-c  robot-01 welding      key      robot-02 handling     not key
#   meters  meter-a, meter-b, meter-c (digital, produce no parts)
KEY_EQUIPMENT = ("cnc-01", "cnc-02", "cnc-04", "cnc-05", "robot-01")
KEY_PROCESSES = ("rough-milling", "finish-milling", "turning", "grinding", "welding")
MACHINES = ("cnc-01", "cnc-02", "cnc-03", "cnc-04", "cnc-05", "cnc-06", "robot-01", "robot-02")
METERS = ("meter-a", "meter-b", "meter-c")


@pytest.fixture
def factory(example_assets_path: Path) -> list[Equipment]:
    return load_asset_model(example_assets_path).scope("cq-demo")


def test_example_factory_cnc_rate_is_one_on_both_bases(factory: list[Equipment]) -> None:
    # Equipment basis: 5 key-process machines, 5 NC -> 5 / 5 = 1.0
    by_equipment = digital.key_process_cnc_rate(factory, "equipment")
    assert (by_equipment.numerator, by_equipment.denominator, by_equipment.value) == (5, 5, 1.0)
    assert by_equipment.counted == KEY_EQUIPMENT
    # Process basis: 5 distinct key steps; cnc-03 also turns, but is not key (housings, not shafts),
    # so "turning" is served by cnc-04 alone -> 5 / 5 = 1.0
    by_process = digital.key_process_cnc_rate(factory, "process")
    assert (by_process.numerator, by_process.denominator, by_process.value) == (5, 5, 1.0)
    assert by_process.counted == KEY_PROCESSES
    turning = next(m for m in by_process.members if m.id == "turning")
    assert turning.equipment == ("cnc-04",)


def test_nc_machine_that_did_not_report_does_not_count(factory: list[Equipment]) -> None:
    reporting = set(MACHINES) - {"cnc-05"}
    # Equipment basis: cnc-05 silent -> 4 / 5 = 0.8 (it stays in the denominator)
    by_equipment = digital.key_process_cnc_rate(factory, "equipment", reporting)
    assert (by_equipment.numerator, by_equipment.denominator) == (4, 5)
    assert by_equipment.value == pytest.approx(0.8)
    assert by_equipment.not_counted == ("cnc-05",)
    assert "did not report" in by_equipment.members[3].reason
    # Process basis: grinding is served by cnc-05 alone -> 4 / 5 = 0.8
    by_process = digital.key_process_cnc_rate(factory, "process", reporting)
    assert by_process.value == pytest.approx(0.8)
    assert by_process.not_counted == ("grinding",)
    # A non-key machine's silence changes nothing: cnc-03 and robot-02 silent -> still 5 / 5
    assert digital.key_process_cnc_rate(factory, "process", set(MACHINES) - {"cnc-03", "robot-02"}).value == 1.0


def test_nc_share_counts_machines_that_make_parts_not_meters(factory: list[Equipment]) -> None:
    # Production equipment: 6 CNC + 2 robots = 8 (meters make no parts), all NC -> 8 / 8 = 1.0
    share = digital.nc_share(factory)
    assert (share.numerator, share.denominator, share.value) == (8, 8, 1.0)
    assert share.counted == MACHINES
    # cnc-05 and robot-02 silent in the window -> 6 / 8 = 0.75
    silent = digital.nc_share(factory, set(MACHINES) - {"cnc-05", "robot-02"})
    assert silent.value == pytest.approx(0.75)
    assert silent.not_counted == ("cnc-05", "robot-02")


def test_networking_rate_counts_digital_equipment_at_or_above_the_threshold(factory: list[Equipment]) -> None:
    coverage: dict[str, float | None] = {eq_id: 1.0 for eq_id in (*MACHINES, *METERS)}
    coverage["cnc-03"] = 0.85  # below 0.9: not networked
    coverage["robot-02"] = 0.90  # exactly the threshold: networked
    del coverage["meter-b"]  # no data at all: not networked
    coverage["meter-c"] = None  # no data either
    # Digital equipment: 8 machines + 3 meters = 11; networked 11 - 3 = 8 -> 8 / 11 = 0.72727
    rate = digital.networking_rate(factory, coverage, threshold=0.9)
    assert (rate.numerator, rate.denominator) == (8, 11)
    assert rate.value == pytest.approx(8 / 11)
    assert rate.value == pytest.approx(0.72727, abs=5e-6)
    assert rate.not_counted == ("cnc-03", "meter-b", "meter-c")
    reasons = {m.id: m.reason for m in rate.members}
    assert reasons["cnc-03"] == "coverage 0.85 < 0.9"
    assert reasons["meter-b"] == "no data in the window"


def test_networking_rate_refuses_shares_outside_zero_to_one(factory: list[Equipment]) -> None:
    with pytest.raises(ValueError, match="threshold"):
        digital.networking_rate(factory, {}, threshold=90)
    with pytest.raises(ValueError, match="coverage of 'cnc-01'"):
        digital.networking_rate(factory, {"cnc-01": 1.2}, threshold=0.9)


def test_upload_rate_is_received_over_expected_and_never_above_one() -> None:
    # One hour at a 60 s interval = 60 slots per signal; 10 signals -> 600 expected, 540 received
    assert digital.upload_rate(540, 600) == pytest.approx(0.9)
    assert digital.upload_rate(600, 600) == 1.0
    assert digital.upload_rate(0, 600) == 0.0
    assert digital.upload_rate(0, 0) is None  # nothing expected: no rate, not a perfect one
    with pytest.raises(ValueError, match="capped"):
        digital.upload_rate(601, 600)
    with pytest.raises(ValueError, match="negative"):
        digital.upload_rate(-1, 600)


MANUAL_MACHINES = """\
                - {id: grind-02, name: "Manual grinder", type: manual, process_step: grinding, key_process: true}
                - {id: bench-01, name: "Deburring bench", type: manual, process_step: deburring, key_process: true}
"""


@pytest.fixture
def factory_with_manual_key_machines(example_assets_path: Path, tmp_path: Path) -> list[Equipment]:
    """The example factory (site cq-demo) plus, on line B, a manual grinder beside cnc-05 and a manual
    deburring bench."""
    text = example_assets_path.read_text()
    anchor = "                - {id: meter-b,"
    assert anchor in text
    path = tmp_path / "factory.yaml"
    path.write_text(text.replace(anchor, MANUAL_MACHINES + anchor))
    return load_asset_model(path).scope("cq-demo")


def test_manual_key_machines_lower_the_cnc_rate(factory_with_manual_key_machines: list[Equipment]) -> None:
    model = factory_with_manual_key_machines
    # Equipment basis: key machines 5 NC + grind-02 + bench-01 = 7 -> 5 / 7 = 0.714286
    by_equipment = digital.key_process_cnc_rate(model, "equipment")
    assert (by_equipment.numerator, by_equipment.denominator) == (5, 7)
    assert by_equipment.value == pytest.approx(0.714286, abs=5e-7)
    assert by_equipment.not_counted == ("grind-02", "bench-01")
    # Process basis, rule "all": 6 key steps (the 5 + deburring); grinding is served by cnc-05 (NC)
    # and grind-02 (manual), so it is not NC; deburring is manual -> 4 / 6 = 0.666667
    by_process = digital.key_process_cnc_rate(model, "process")
    assert (by_process.numerator, by_process.denominator) == (4, 6)
    assert by_process.value == pytest.approx(2 / 3)
    assert by_process.not_counted == ("grinding", "deburring")
    grinding = next(m for m in by_process.members if m.id == "grinding")
    assert grinding.equipment == ("cnc-05", "grind-02")
    assert grinding.reason == "grind-02 not numerically controlled"
    # Rule "any": grinding has one NC machine and counts -> 5 / 6 = 0.833333
    any_rule = digital.key_process_cnc_rate(model, "process", rule="any")
    assert any_rule.value == pytest.approx(5 / 6)
    assert any_rule.not_counted == ("deburring",)
    # NC share: production equipment 8 + 2 manual = 10, NC 8 -> 8 / 10 = 0.8
    assert digital.nc_share(model).value == pytest.approx(0.8)
    # Manual equipment is not digital: the networking base stays 11
    assert digital.networking_rate(model, {}, threshold=0.9).denominator == 11


def test_empty_scope_has_no_value_not_zero() -> None:
    meter = Equipment(id="m1", type=EquipmentType.METER, carrier="electricity")
    assert digital.key_process_cnc_rate([meter], "process") == Ratio(0, 0, None, ())
    assert digital.key_process_cnc_rate([], "equipment").value is None
    assert digital.nc_share([meter]).value is None
    assert digital.networking_rate([], {}, threshold=0.9).value is None


def test_key_machine_without_process_step_is_refused_on_the_process_basis() -> None:
    # The asset loader refuses it; a hand-built list may still carry one.
    stray = Equipment(id="c1", type=EquipmentType.CNC, numerically_controlled=True, key_process=True)
    with pytest.raises(ValueError, match="'c1' names no process step"):
        digital.key_process_cnc_rate([stray], "process")
    assert digital.key_process_cnc_rate([stray], "equipment").value == 1.0


def test_descriptions_compute_from_one_set_of_inputs(factory: list[Equipment]) -> None:
    keys = [k.key for k in DIGITAL_KPIS]
    assert keys == ["key_process_cnc_rate", "nc_share", "networking_rate", "upload_rate"]
    labels = {k.key: (k.label_en, k.label_zh) for k in DIGITAL_KPIS}
    assert labels["key_process_cnc_rate"] == ("Key-process CNC rate", "关键工序数控化率")
    assert labels["nc_share"] == ("NC share of production equipment", "数控设备占比")
    assert labels["networking_rate"] == ("Equipment networking rate", "设备联网率")
    assert labels["upload_rate"] == ("Data upload rate", "数据上传率")
    assert all(k.unit == "ratio" and k.direction is Direction.UP for k in DIGITAL_KPIS)

    inputs = DigitalInputs(
        equipment=tuple(factory),
        networking_threshold=0.9,
        reporting=frozenset(MACHINES) - {"cnc-05"},
        coverage={eq_id: 1.0 for eq_id in MACHINES if eq_id != "cnc-05"},
        received_samples=540,
        expected_samples=600,
    )
    values = {k.key: k.compute(inputs).value for k in DIGITAL_KPIS}
    # CNC rate (process basis) 4 / 5; NC share 7 / 8; networked 7 machines of 11 digital; 540 / 600
    assert values == pytest.approx(
        {"key_process_cnc_rate": 0.8, "nc_share": 0.875, "networking_rate": 7 / 11, "upload_rate": 0.9}
    )
