"""``factory grafana feed`` from the command line: settings in, the dashboards' measurements out, once.

The feed's figures are checked against the KPI engine on a real InfluxDB in
tests/test_dashboards_influx.py; here the command itself, on the embedded SQLite store.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from factory.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(
        f"assets: {REPO / 'config' / 'factory.yaml'}\n"
        f"store: {{kind: sqlite, sqlite_path: {tmp_path / 'store.sqlite'}}}\n"
        f"inputs: {{path: {tmp_path / 'inputs.sqlite'}}}\n"
        f"kpi: {{energy_factors: {REPO / 'config' / 'energy.yaml'}}}\n"
    )
    return path


def test_feed_writes_indicators_and_rules_for_the_park_and_its_sites_even_without_data(
    settings_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["grafana", "feed", "--config", str(settings_file), "--days", "1"]
    assert main([*argv, "--scheme", "cq-digital-workshop", "--assessment-start", "2026-01-01"]) == 0
    assert capsys.readouterr().out.startswith("feed: ")
    rows = _points(settings_file)
    with sqlite3.connect(settings_file.parent / "store.sqlite") as db:
        scopes = {s for (s,) in db.execute("SELECT series FROM points WHERE measurement = 'kpi_indicator'")}
    # An empty store: every indicator and rule is written with its status; a shift without any value is
    # not written at all (there is nothing to show for it).
    assert set(rows) == {"kpi_indicator", "certification_rule"}
    assert any('"site":"cq-park"' in s for s in scopes) and any('"site":"cq-east"' in s for s in scopes)
    assert set(_fields(settings_file, "oee")) == {'{"status":"insufficient_evidence"}'}  # withheld, no value
    # silent NC machines do not count as numerically controlled (kpi/digital.py): the rate is a known 0
    assert set(_fields(settings_file, "key_process_cnc_rate")) == {'{"status":"ok","value":0.0}'}


def _fields(settings_file: Path, indicator: str) -> list[str]:
    with sqlite3.connect(settings_file.parent / "store.sqlite") as db:
        rows = db.execute(
            "SELECT fields FROM points WHERE measurement = 'kpi_indicator' AND series LIKE ?",
            (f'%"indicator":"{indicator}"%',),
        )
        return [f for (f,) in rows]


def test_a_followed_scheme_needs_its_assessment_start(settings_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grafana", "feed", "--config", str(settings_file), "--scheme", "cq-digital-workshop"]) == 2
    assert "--assessment-start" in capsys.readouterr().err


def test_an_unknown_scheme_stops_before_any_work(settings_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "grafana",
        "feed",
        "--config",
        str(settings_file),
        "--scheme",
        "no-such",
        "--assessment-start",
        "2026-01-01",
    ]
    assert main(argv) == 2
    assert "unknown scheme 'no-such'; known: cq-13fyp-pilot-targets" in capsys.readouterr().err
    assert not (settings_file.parent / "store.sqlite").exists() or _points(settings_file) == {}


def _points(settings_file: Path) -> dict[str, int]:
    with sqlite3.connect(settings_file.parent / "store.sqlite") as db:
        return dict(db.execute("SELECT measurement, count(*) FROM points GROUP BY measurement").fetchall())


def test_a_store_that_cannot_be_reached_fails_the_round_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(
        f"assets: {REPO / 'config' / 'factory.yaml'}\n"
        "store: {kind: influxdb, influx_url: 'http://127.0.0.1:9', influx_database: factory, timeout_s: 1}\n"
        f"inputs: {{path: {tmp_path / 'inputs.sqlite'}}}\n"
    )
    assert main(["grafana", "feed", "--config", str(path), "--days", "1"]) == 1
    assert "grafana feed: " in capsys.readouterr().err
