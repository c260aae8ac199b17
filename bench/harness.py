"""The benchmark runner behind ``bench/run``: each scenario in its own process, results as JSON.

A scenario is a module ``bench/scenarios/<name>.py`` with ``DESCRIPTION`` (one line) and
``run(small: bool) -> list[Figure]``. The runner starts a fresh interpreter per scenario and
repeat (so peak memory and warm caches are the scenario's own), takes the median of each
figure over ``--repeat`` runs, prints every figure beside its goal with the ratio, and writes
``bench/results/<name>.json`` (or ``--out DIR``). Goals are reported, never enforced: a
missed goal is a figure to explain in docs/benchmarks.md, not a failure. A scenario that
crashes is a failure (exit 1), so CI's ``--small`` smoke run catches a broken benchmark.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCENARIOS = BENCH / "scenarios"

__all__ = ["Figure", "main"]


@dataclass(frozen=True)
class Figure:
    """One measured figure and the goal it is held against.

    ``better`` says which way is good: for ``"lower"`` the ratio is value/goal, for
    ``"higher"`` goal/value, so a ratio at or under 1 always means the goal is met.
    ``goal`` None is a figure reported for context (a minimum, a naive count).
    """

    name: str
    value: float
    unit: str
    goal: float | None = None
    better: Literal["lower", "higher"] = "lower"
    note: str = ""

    def ratio(self) -> float | None:
        if self.goal is None:
            return None
        if self.better == "lower":
            return self.value / self.goal if self.goal else float("inf")
        return self.goal / self.value if self.value else float("inf")


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("*.py") if not p.stem.startswith("_"))


def _run_one(name: str, small: bool) -> None:
    """Child process: run one scenario and print its figures as one JSON line."""
    sys.path.insert(0, str(BENCH))
    sys.path.insert(0, str(ROOT / "src"))
    module = importlib.import_module(f"scenarios.{name}")
    started = time.perf_counter()
    figures = module.run(small)
    elapsed = time.perf_counter() - started
    result = {"figures": [asdict(f) for f in figures], "seconds": elapsed}
    print("BENCH-RESULT " + json.dumps(result))


def _child(name: str, small: bool, timeout: float) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    if small:
        command.append("--small")
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH-RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"scenario {name} failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCH-RESULT "))
    return result


def _median_figures(runs: list[dict[str, Any]]) -> list[Figure]:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for figure in run["figures"]:
            by_name.setdefault(figure["name"], []).append(figure)
    merged = []
    for rows in by_name.values():
        first = rows[0]
        merged.append(Figure(**{**first, "value": statistics.median(r["value"] for r in rows)}))
    return merged


def _format(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 1e6:
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:.3g}"


def _print(name: str, figures: list[Figure], seconds: float, repeat: int) -> None:
    print(f"\n== {name}  ({seconds:.1f} s, median of {repeat})")
    for f in figures:
        ratio = f.ratio()
        if ratio is None:
            verdict = ""
        else:
            sign = "≤" if f.better == "lower" else "≥"
            state = "met" if ratio <= 1 else "MISSED"
            verdict = f"goal {sign} {_format(f.goal or 0)}  ratio {ratio:.2f}  {state}"
        print(f"  {f.name:<52} {_format(f.value):>12} {f.unit:<10} {verdict}")
        if f.note:
            print(f"  {'':<52} {f.note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--scenario", action="append", metavar="NAME", help="run NAME (repeatable)")
    which.add_argument("--all", action="store_true", help="run every scenario")
    which.add_argument("--list", action="store_true", help="list the scenarios")
    which.add_argument("--child", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument("--small", action="store_true", help="reduced sizes (CI smoke run)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario; median kept")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="JSON results folder")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per scenario run")
    args = parser.parse_args(argv)
    names = scenario_names()
    if args.child:
        _run_one(args.child, args.small)
        return 0
    if args.list:
        for name in names:
            module = importlib.import_module(f"scenarios.{name}")
            print(f"{name:<20} {module.DESCRIPTION}")
        return 0
    chosen = names if args.all else (args.scenario or [])
    if not chosen:
        parser.error("name a --scenario, or --all, or --list")
    unknown = [n for n in chosen if n not in names]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(names)}")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in chosen:
        try:
            runs = [_child(name, args.small, args.timeout) for _ in range(max(1, args.repeat))]
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"\n== {name}  FAILED\n{error}", file=sys.stderr)
            failed.append(name)
            continue
        figures = _median_figures(runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        _print(name, figures, seconds, len(runs))
        record = {
            "scenario": name,
            "small": args.small,
            "repeat": len(runs),
            "seconds": seconds,
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "figures": [{**asdict(f), "ratio": f.ratio()} for f in figures],
        }
        suffix = "-small" if args.small else ""
        (args.out / f"{name}{suffix}.json").write_text(json.dumps(record, indent=2) + "\n")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    sys.exit(main())
