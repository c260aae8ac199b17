"""``bench/run --all --small``: CI's smoke run of every benchmark (figures, never timings).

A benchmark that crashes or prints no figure fails here; what the figures are is for
docs/benchmarks.md, so nothing below asserts a time or a goal met.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from harness import Figure, scenario_names  # noqa: E402 (bench/ on the path first)


def test_a_ratio_at_or_under_one_means_the_goal_is_met_either_way() -> None:
    assert Figure("latency", 50, "ms", goal=100).ratio() == 0.5
    assert Figure("throughput", 800, "/s", goal=400, better="higher").ratio() == 0.5
    assert Figure("calls", 10, "n").ratio() is None


def test_an_unknown_scenario_is_refused_with_the_known_ones_listed() -> None:
    done = subprocess.run(
        [str(ROOT / "bench" / "run"), "--scenario", "no-such"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown scenario(s) no-such" in done.stderr
    assert "flow_bomb" in done.stderr


@pytest.mark.timeout(900)
def test_every_scenario_runs_small_and_writes_its_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(ROOT / "bench" / "run"), "--all", "--small", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in scenario_names():
        assert f"== {name}" in done.stdout
        record = json.loads((tmp_path / f"{name}-small.json").read_text())
        assert record["figures"], f"{name} measured nothing"
        for figure in record["figures"]:
            assert figure["value"] == figure["value"], f"{name}: {figure['name']} is NaN"
            if figure["goal"] is not None:
                assert figure["ratio"] is not None
