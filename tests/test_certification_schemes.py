"""Scheme files: the four shipped schemes load; every kind of broken file names its file, line, field and reason."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import load_settings
from kpi.schemes import BUILTIN_SCHEMES_DIR, SchemeRegistry, load_scheme

GOOD = """\
format: 1
id: my-scheme
version: 3
title: {zh: 我的方案, en: My scheme}
source: in-house targets
rules:
  - id: eff
    metric: efficiency
    definition: oee
    comparison: increase_by
    threshold: 0.1
"""


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_four_shipped_schemes_load_with_their_rules_and_file_hashes() -> None:
    registry = SchemeRegistry.load()
    assert [s.id for s in registry.all()] == [
        "cq-13fyp-pilot-targets",
        "cq-digital-workshop",
        "cq-smart-factory",
        "miit-2015-pilot",
    ]
    pilot = registry.get("cq-13fyp-pilot-targets")
    assert [(r.metric, r.definition, r.comparison, r.threshold) for r in pilot.rules] == [
        ("efficiency", "output_per_hour", "increase_by", 0.2),
        ("operating_cost", "per_unit", "reduce_by", 0.2),
        ("development_cycle", "mean_design_to_launch", "reduce_by", 0.3),
        ("defect_rate", None, "reduce_by", 0.2),
    ]
    assert pilot.title_zh and pilot.title_en and pilot.source and pilot.verify
    assert (
        pilot.sha256 == hashlib.sha256((BUILTIN_SCHEMES_DIR / "cq-13fyp-pilot-targets.yaml").read_bytes()).hexdigest()
    )
    workshop = registry.get("cq-digital-workshop")
    assert [(r.metric, r.comparison, r.threshold) for r in workshop.rules] == [
        ("nc_equipment_share", "at_least", 0.5),
        ("networking_rate", "at_least", 1.0),
    ]
    assert workshop.rules[1].upload_threshold == 0.9
    smart = registry.get("cq-smart-factory")
    assert {r.metric: r.threshold for r in smart.rules} == {
        "nc_equipment_share": 0.65,
        "recognised_digital_workshops": 2,
        "digital_rd_tool_rate": 0.8,
        "operating_cost": 0.15,
        "efficiency": 0.1,
    }
    miit = registry.get("miit-2015-pilot")
    assert {r.metric: (r.comparison, r.threshold) for r in miit.rules} == {
        "operating_cost": ("reduce_by", 0.2),
        "development_cycle": ("reduce_by", 0.2),
        "efficiency": ("increase_by", 0.2),
        "defect_rate": ("reduce_by", 0.1),
        "energy_utilisation": ("increase_by", 0.04),
    }


def test_a_users_scheme_dropped_into_the_configured_directory_is_loaded_with_its_defaults(tmp_path: Path) -> None:
    _write(tmp_path / "mine", "my-scheme.yaml", GOOD)
    registry = SchemeRegistry.load(BUILTIN_SCHEMES_DIR, [tmp_path / "mine"])
    scheme = registry.get("my-scheme")
    assert scheme.version == "3"  # a number in YAML, kept as the name it is
    assert scheme.rules[0].min_coverage == 0.9  # the scheme's default
    assert len(registry.all()) == 5 and "cq-digital-workshop" in registry


def test_settings_name_the_scheme_directory_relative_to_the_settings_file(tmp_path: Path) -> None:
    assets = Path(__file__).resolve().parent.parent / "config" / "factory.yaml"
    settings = _write(tmp_path, "platform.yaml", f"assets: {assets}\ncertification: {{schemes_dir: schemes}}\n")
    loaded = load_settings(settings, environ={}).certification
    assert loaded.schemes_dir == tmp_path / "schemes"
    _write(tmp_path / "schemes", "my-scheme.yaml", GOOD)
    assert "my-scheme" in SchemeRegistry.from_settings(loaded)


def test_an_unknown_scheme_id_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown scheme 'nope'; known: cq-13fyp-pilot-targets, "):
        SchemeRegistry.load().get("nope")


def test_a_duplicate_scheme_id_is_refused_naming_both_files(tmp_path: Path) -> None:
    _write(tmp_path / "a", "one.yaml", GOOD)
    second = _write(tmp_path / "b", "two.yaml", GOOD)
    with pytest.raises(ConfigError) as caught:
        SchemeRegistry.load(tmp_path / "a", [tmp_path / "b"])
    assert (
        str(caught.value)
        == f"{second}:2: id: duplicate scheme id 'my-scheme' (already defined in {tmp_path / 'a' / 'one.yaml'})"
    )


def test_a_missing_scheme_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="scheme directory not found"):
        SchemeRegistry.load(BUILTIN_SCHEMES_DIR, [tmp_path / "nowhere"])


KNOWN = (
    "co2_intensity, defect_rate, development_cycle, digital_rd_tool_rate, efficiency, energy_per_unit,"
    " energy_per_value_added, energy_utilisation, key_process_cnc_rate, labour_productivity, nc_equipment_share,"
    " networking_rate, operating_cost, output_intensity, recognised_digital_workshops, upload_rate, water_intensity"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("metric: efficiency", "metric: speed"),
            f":8: rules[0].metric: rule 'eff': unknown metric 'speed'; known: {KNOWN}",
        ),
        (
            GOOD.replace("definition: oee", "definition: oee_plus"),
            ":9: rules[0].definition: rule 'eff': metric 'efficiency' has no definition 'oee_plus';"
            " accepted: oee, output_per_hour, output_per_labour_hour",
        ),
        (
            GOOD.replace("    definition: oee\n", ""),
            ":8: rules[0].metric: rule 'eff': metric 'efficiency' needs a definition"
            " (oee, output_per_hour, output_per_labour_hour)",
        ),
        (
            GOOD.replace("metric: efficiency", "metric: defect_rate"),
            ":9: rules[0].definition: rule 'eff': metric 'defect_rate' takes no definition, got 'oee'",
        ),
        (
            GOOD.replace("increase_by", "improve_by"),
            ":10: rules[0].comparison: Input should be 'at_least', 'at_most', 'increase_by' or 'reduce_by'",
        ),
        (
            GOOD.replace("increase_by", "reduce_by").replace("0.1", "20"),
            ":11: rules[0].threshold: rule 'eff': reduce_by needs a fraction between 0 and 1 (0.2 means −20 %), got 20",
        ),
        (
            GOOD.replace("threshold: 0.1", "threshold: 0"),
            ":11: rules[0].threshold: rule 'eff': increase_by needs a fraction above 0 (0.2 means +20 %), got 0",
        ),
        (
            GOOD.replace("threshold: 0.1", "threshold: .nan"),
            ":11: rules[0].threshold: Value error, must be a finite number",
        ),
        (
            GOOD.split("rules:")[0] + "rules: []\n",
            ":6: rules: List should have at least 1 item after validation, not 0",
        ),
        (GOOD + "colour: blue\n", ":12: colour: Extra inputs are not permitted"),
        (GOOD.replace("title: {zh", "title: {{zh"), ":5: invalid YAML: expected ',' or '}', but got '<scalar>'"),
        (GOOD.replace("source: in-house targets\n", ""), ":1: source: Field required"),
        (
            GOOD + "    upload_threshold: 0.9\n",
            ":12: rules[0].upload_threshold: rule 'eff': only a networking_rate rule has an upload threshold",
        ),
        (GOOD + "    min_coverage: 1.5\n", ":12: rules[0].min_coverage: Input should be less than or equal to 1"),
        (GOOD + GOOD.split("rules:\n")[1], ":12: rules[1].id: duplicate rule id 'eff' (first used at rules[0])"),
        (GOOD.replace("format: 1", "format: 2"), ":1: format: Input should be less than or equal to 1"),
        ("", ": file is empty"),
    ],
)
def test_a_broken_scheme_file_names_file_line_field_and_reason(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "broken.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_scheme(path)
    assert str(caught.value) == f"{path}{message}"


def test_check_config_loads_the_users_schemes_and_names_a_broken_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from factory.cli import main

    assets = Path(__file__).resolve().parent.parent / "config" / "factory.yaml"
    settings = _write(tmp_path, "platform.yaml", f"assets: {assets}\ncertification: {{schemes_dir: schemes}}\n")
    _write(tmp_path / "schemes", "my-scheme.yaml", GOOD)
    assert main(["check-config", "--config", str(settings)]) == 0
    assert "certification schemes: ok (cq-13fyp-pilot-targets 2016.1, " in capsys.readouterr().out
    broken = _write(tmp_path / "schemes", "my-scheme.yaml", GOOD.replace("metric: efficiency", "metric: speed"))
    assert main(["check-config", "--config", str(settings)]) == 2
    assert f"{broken}:8: rules[0].metric: rule 'eff': unknown metric 'speed'" in capsys.readouterr().err
