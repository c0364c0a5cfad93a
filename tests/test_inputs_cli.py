"""``factory inputs``: import the demo file, list, history; a bad file refused line by line, nothing stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factory.cli import main
from tests.conftest import REPO

DEMO_CSV = REPO / "config" / "demo-inputs.csv"


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(f"assets: {REPO / 'config' / 'factory.yaml'}\ninputs: {{path: inputs.sqlite}}\n")
    return path


def _run(settings: Path, *argv: str) -> int:
    return main(["inputs", "--config", str(settings), *argv])


def test_the_config_may_come_before_or_after_the_action(settings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inputs", "import", str(DEMO_CSV), "--by", "x", "--config", str(settings)]) == 0
    assert main(["inputs", "--config", str(settings), "list", "--kind", "headcount", "--json"]) == 0
    assert main(["inputs", "list", "--kind", "land_area", "--json", "--config", str(settings)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "38 entries stored" in lines[0] and len(lines) == 1 + 6 + 2


def test_import_list_and_history(settings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(settings, "import", str(DEMO_CSV), "--by", "li.wei", "--site", "cq-demo") == 0
    out, _ = capsys.readouterr()
    assert "38 entries stored" in out and (settings.parent / "inputs.sqlite").is_file()

    assert _run(settings, "list", "--kind", "dev_project", "--json") == 0
    projects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(p["value"] for p in projects) == [46, 49, 50, 71, 74, 84]
    assert {p["entered_by"] for p in projects} == {"cli:li.wei"} and {p["unit"] for p in projects} == {"days"}

    assert _run(settings, "list", "--site", "cq-demo", "--kind", "operating_cost", "--from", "2026-04-01") == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3 and "296 10k CNY" in out and "3 entries" in err

    entry_id = projects[0]["entry_id"]
    assert _run(settings, "history", entry_id) == 0
    out, _ = capsys.readouterr()
    assert out.startswith(entry_id) and " v1 " in out and "cli:li.wei" in out


def test_a_bad_file_is_refused_line_by_line_and_nothing_is_stored(
    settings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "site,kind,period_start,period_end,value,note\n"
        "cq-demo,headcount,2026-01-01,2026-02-01,48,\n"
        "cq-demo,headcount,2026-02-01,2026-03-01,inf,\n"
        "cq-demo,operating_cost,2026-01-01,2026-02-01,1e30,\n",
        encoding="utf-8",
    )
    assert _run(settings, "import", str(bad), "--by", "li.wei") == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: value: 'inf' is not a number" in err
    assert f"{bad}:4: value: 1e+30 is above the sane bound" in err
    assert "nothing was stored (2 problem(s))" in err
    assert _run(settings, "list") == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["history", "in-0000000000000000"], 1, "no business input has the id 'in-0000000000000000'"),
        (["list", "--from", "2026-1-1"], 2, "--from: '2026-1-1' is not a date written YYYY-MM-DD"),
        (["import", "{dir}/missing.csv", "--by", "x"], 2, "missing.csv: cannot read: No such file or directory"),
        (["import", "{demo}", "--site", "cq-nowhere"], 2, "--site: unknown site 'cq-nowhere'"),
    ],
)
def test_mistakes_are_named(
    settings: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    argv = [a.format(dir=settings.parent, demo=DEMO_CSV) for a in argv]
    assert _run(settings, *argv) == code
    assert message in capsys.readouterr().err
