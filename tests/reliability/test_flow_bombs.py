"""Flow-file bombs are refused by ``m365perf validate`` with a clear message, quickly.

Each bomb runs in its own ``m365perf validate`` process, so the wall time reported is
what the performance team would see; it is reported, not asserted (timing and peak
memory are measured by ``bench/bench_flow_bomb.py``). Before the limits a 5 KB alias
bomb ran for 48 s and reached 3.9 GB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flow_bombs import BOMBS
from reliability_support import report

CLI = [sys.executable, "-m", "m365perf"]


def validate_seconds(path: Path) -> tuple[int, str, float]:
    """Exit code, output and wall seconds of ``m365perf validate`` in its own process."""
    started = time.perf_counter()
    done = subprocess.run(
        [*CLI, "validate", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def load_seconds(path: Path) -> float:
    """Seconds the loader itself spends refusing ``path`` (no interpreter start-up)."""
    from m365perf.flows import FlowError, load_flow

    started = time.perf_counter()
    with pytest.raises(FlowError):
        load_flow(path)
    return time.perf_counter() - started


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_bomb_is_refused_with_a_clear_message(tmp_path: Path, name: str) -> None:
    write, message = BOMBS[name]
    path = tmp_path / f"{name}.yaml"
    write(path)
    code, output, wall = validate_seconds(path)
    assert code == 2, output
    assert output.startswith(f"{path}:"), output[:500]
    assert message in output.splitlines()[0]
    assert "Traceback" not in output
    report(
        "flow_bomb",
        bomb=name,
        bytes=path.stat().st_size,
        validate_wall_s=round(wall, 3),
        load_s=round(load_seconds(path), 4),
    )
