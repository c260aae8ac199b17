"""How long ``m365perf validate`` takes, and how much memory, to refuse each flow bomb.

    .venv/bin/python bench/bench_flow_bomb.py [--repeat 3]

Each bomb (``tests/reliability/flow_bombs.py``) runs in a fresh process; the figures are
the slowest of the repeats: wall seconds and peak resident memory of the process
(interpreter start-up included: compare the empty file's line) and the seconds
``load_flow`` itself takes in this process. Before the loader's
limits a 5 KB alias bomb took 48 s and 3.9 GB; the issue asks for well under a second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

from flow_bombs import BOMBS  # noqa: E402 (tests/reliability on the path first)


def run_once(path: Path) -> tuple[int, float, float]:
    """Exit code, wall seconds and peak memory (MB) of one ``validate`` process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "m365perf", "validate", str(path)],
            stdout=sink,
            stderr=sink,
            env=env,
        )
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, time.perf_counter() - started, usage.ru_maxrss / 1024


def load_seconds(path: Path) -> float:
    """Seconds the loader itself takes to refuse ``path``, in this process."""
    from m365perf.flows import FlowError, load_flow

    started = time.perf_counter()
    with contextlib.suppress(FlowError):
        load_flow(path)
    return time.perf_counter() - started


def baseline() -> tuple[float, float]:
    """The same for an empty flow file: interpreter and import cost, to subtract."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "empty.yaml"
        path.write_bytes(b"{}\n")
        _, wall, peak = run_once(path)
    return wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base_wall, base_peak = baseline()
    print(f"{'bomb':22} {'bytes':>10} {'exit':>4} {'wall s':>8} {'peak MB':>8} {'load s':>8}")
    print(f"{'(empty flow file)':22} {3:>10} {2:>4} {base_wall:8.3f} {base_peak:8.1f}")
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, (write, _) in sorted(BOMBS.items()):
            paths[name] = Path(folder) / f"{name}.yaml"
            write(paths[name])
        for name, path in paths.items():
            runs = [run_once(path) for _ in range(args.repeat)]
            code = max(run[0] for run in runs)
            wall = max(run[1] for run in runs)
            peak = max(run[2] for run in runs)
            load = max(load_seconds(path) for _ in range(args.repeat))
            size = path.stat().st_size
            print(f"{name:22} {size:>10,} {code:>4} {wall:8.3f} {peak:8.1f} {load:8.4f}")


if __name__ == "__main__":
    main()
