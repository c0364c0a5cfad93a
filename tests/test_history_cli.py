"""``factory history``: a run into SQLite with a summary, and bad input refused with file, field and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factory.cli import main
from tests.test_history_model import SCENARIO, write_scenario


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    scenario = write_scenario(tmp_path)
    path = tmp_path / "settings.yaml"
    path.write_text(
        f"assets: {scenario.parent / 'assets.yaml'}\nstore: {{kind: sqlite, sqlite_path: history.sqlite}}\n"
    )
    return path


def test_history_command_writes_days_and_prints_a_summary_then_skips_them_on_a_rerun(
    settings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = settings.parent / "scenario.yaml"
    argv = [
        "history",
        "--config",
        str(settings),
        "--scenario",
        str(scenario),
        "--start",
        "2026-03-04",
        "--days",
        "2",
        "--no-process-values",
        "--counter-interval",
        "60",
        "--json",
    ]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["days_written"] == 2 and summary["points"] > 10_000 and summary["backend"] == "sqlite"
    assert summary["first_day"] == "2026-03-04" and summary["last_day"] == "2026-03-05"
    assert summary["expected"]["change"]["defect_rate"] == pytest.approx(-0.3)
    assert "history 2/2 days" in err  # the progress line
    assert (settings.parent / "history.sqlite").is_file()

    assert main([*argv[:-1], "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "0 day(s) written, 2 skipped" in out and "points/s" in out and err == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "{dir}/missing.yaml"], "missing.yaml: file not found"),
        (["--scenario", "{dir}/broken.yaml"], "broken.yaml:11: defaults.breakdowns.mtbf"),
        (["--scenario", "{dir}/scenario.yaml", "--assessment-start", "2027-01-01"], "--assessment-start"),
        (["--scenario", "{dir}/no-history.yaml"], "no history section: give --start"),
        (
            ["--scenario", "{dir}/no-history.yaml", "--start", "2026-03-02", "--days", "2", "--efficiency", "0.2"],
            "improvements need an assessment period",
        ),
    ],
)
def test_bad_scenario_or_periods_fail_with_exit_2_naming_the_problem(
    settings: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    directory = settings.parent
    (directory / "broken.yaml").write_text(SCENARIO.replace("mtbf: 1h", "mtbf: soon"))
    (directory / "no-history.yaml").write_text(SCENARIO.split("history:")[0])
    argv = ["history", "--config", str(settings), *(a.format(dir=directory) for a in args)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and message in err


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--days", "0"),
        ("--start", "2026-13-01"),
        ("--efficiency", "1.5"),
        ("--store", "postgres"),
        ("--counter-interval", "-5"),
    ],
)
def test_bad_command_line_values_are_refused_by_the_parser(
    settings: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["history", "--config", str(settings), "--scenario", "x.yaml", flag, value])
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_unreachable_store_exits_1_with_the_store_error(settings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings.write_text(
        settings.read_text().replace("kind: sqlite", "kind: influxdb, influx_url: 'http://127.0.0.1:9', timeout_s: 2")
    )
    argv = ["history", "--config", str(settings), "--scenario", str(settings.parent / "scenario.yaml"), "--quiet"]
    assert main(argv) == 1
    assert "store error" in capsys.readouterr().err
