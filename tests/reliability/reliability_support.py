"""Reliability suites: fuzzers, faults, crashes, failover and outages (issue 10).

Each suite runs at CI size in ``make test`` and at full size with::

    M365PERF_FULL_SIZE=1 .venv/bin/pytest tests/reliability -q

``sized(ci, full)`` picks the case count for the run; suites report their figures with
``report(name, **figures)`` so ``docs/reliability.md`` can quote what a command printed.
"""

from __future__ import annotations

import json
import os
import sys

FULL_SIZE = os.environ.get("M365PERF_FULL_SIZE") == "1"


def sized(ci: int, full: int) -> int:
    """The number of cases to run: ``full`` when M365PERF_FULL_SIZE=1, else ``ci``."""
    return full if FULL_SIZE else ci


def report(name: str, **figures: object) -> None:
    """Print one suite's figures as a JSON line (shown with ``pytest -s``)."""
    line = json.dumps({"suite": name, "full_size": FULL_SIZE, **figures}, default=str)
    sys.stdout.write(f"\nRELIABILITY {line}\n")
