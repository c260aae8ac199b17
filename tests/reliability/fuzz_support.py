"""What the two endpoint fuzzers share: a seeded generator of hostile values and mutations,
and the count of what the service must never do (HTTP 500, a traceback in its log).

``M365PERF_FUZZ_SEED`` replays a run (the seed is in each suite's figures).
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

for _folder in ("engine", "web"):
    _path = str(Path(__file__).resolve().parents[1] / _folder)
    if _path not in sys.path:
        sys.path.insert(0, _path)

SEED = int(os.environ.get("M365PERF_FUZZ_SEED", "20261202"))

HOSTILE: list[Any] = [
    None,
    True,
    0,
    -1,
    2**31,
    10**40,
    -(10**40),
    1.5,
    1e308,
    "",
    " ",
    "0",
    "-1",
    "99999999999999999999999999",
    "1e5",
    "NaN",
    "\x00",
    "\ud800",
    "💥" * 50,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "x" * 5_000,
    "y" * 30_000,
    [],
    [1, 2],
    {},
    {"a": {"b": {"c": {}}}},
]


def hostile(rng: random.Random) -> Any:
    """One value no card or form of ours sends there (or one it does, misplaced)."""
    value = rng.choice(HOSTILE)
    if isinstance(value, str) and value and rng.random() < 0.2:
        return value * rng.randint(2, 5)
    return value


def mutate(rng: random.Random, data: Any, depth: int = 0) -> Any:
    """``data`` with one to three things changed: a value replaced, a key dropped or
    added, a list emptied or a type swapped, anywhere in it."""
    if isinstance(data, dict) and data and depth < 6:
        data = dict(data)
        key = rng.choice(list(data))
        roll = rng.random()
        if roll < 0.45:
            data[key] = mutate(rng, data[key], depth + 1)
        elif roll < 0.65:
            del data[key]
        elif roll < 0.85:
            data[key] = hostile(rng)
        else:
            data[
                rng.choice([key + "x", "__proto__", "verb", "card_id", str(hostile(rng))[:40]])
            ] = hostile(rng)
        return data
    if isinstance(data, list) and data and depth < 6:
        data = list(data)
        index = rng.randrange(len(data))
        if rng.random() < 0.5:
            data[index] = mutate(rng, data[index], depth + 1)
        else:
            data = data * rng.randint(0, 3)
        return data
    return hostile(rng)


@dataclass
class Tally:
    """What a fuzz run saw."""

    cases: int = 0
    server_errors: int = 0
    """HTTP 500s (an invoke error of 500 counts too: it is "Something went wrong")."""
    statuses: dict[int, int] = field(default_factory=dict)
    changed_when_refused: list[str] = field(default_factory=list)

    def saw(self, status: int) -> None:
        self.cases += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 500:
            self.server_errors += 1


def tracebacks(records: list[logging.LogRecord]) -> list[str]:
    """Log records that carry a stack trace (or are errors): none may come from input."""
    return [
        f"{r.name}: {r.getMessage()[:200]}"
        for r in records
        if r.exc_info is not None or r.levelno >= logging.ERROR
    ]


def finish(
    name: str, tally: Tally, records: list[logging.LogRecord], *, cases: int, started: float
) -> None:
    """Report a fuzzer's figures, then hold it to them: every case run, no HTTP 500, no
    traceback in the service's log, no refused case that changed state."""
    from reliability_support import report

    traced = tracebacks(records)
    report(
        name,
        cases=tally.cases,
        http_500s=tally.server_errors,
        tracebacks=len(traced),
        changed_when_refused=len(tally.changed_when_refused),
        statuses=tally.statuses,
        seed=SEED,
        wall_s=round(time.monotonic() - started, 1),
    )
    assert tally.cases == cases
    assert tally.server_errors == 0, tally.statuses
    assert traced == []
    assert tally.changed_when_refused == []
