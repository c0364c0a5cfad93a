"""bench/bench_ingest.py runs end to end and prints its figure as the last line (issue 9's last "done when").

A small run (2,000 points, one round), so it checks that the benchmark works, not how fast ingest is:
the figures are in bench/README.md and docs/ingest.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.ingest_support import REPO

pytestmark = pytest.mark.integration


def test_the_benchmark_prints_its_figure_as_json_on_the_last_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY")}
    command = [sys.executable, "bench/bench_ingest.py", "--points", "2000", "--batch", "100", "--rounds", "1"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == "ingest_throughput" and result["unit"] == "points/s"
    assert result["value"] > 0 and result["baseline"] > 0 and result["ratio"] > 0
    assert 0 < result["rss_mb"] < 300
    assert result["cpu_us_per_point"] > 0 and result["rounds"] == 1
    assert result["two_instances"] > 0  # the shared group's combined rate is reported too
