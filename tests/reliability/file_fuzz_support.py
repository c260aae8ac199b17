"""What the flow-file and register-file fuzzers share: the seed and the verdict on a case.

A case passes when the loader either reads the file or refuses it with the error type
the CLI prints (every line naming the file); any other exception is a traceback the
performance team would see.
"""

from __future__ import annotations

import os
import random
import re
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: ``M365PERF_FUZZ_SEED=1234`` replays a run; otherwise a fixed seed keeps CI repeatable.
SEED = int(os.environ.get("M365PERF_FUZZ_SEED", "20261202"))


def rng(name: str) -> random.Random:
    """A generator per suite, so adding cases to one suite does not shift another's."""
    return random.Random(f"{SEED}:{name}")


@dataclass
class Tally:
    """The figures a fuzzer reports, and the cases that failed (with their tracebacks)."""

    cases: int = 0
    loaded: int = 0
    refused: int = 0
    tracebacks: list[str] = field(default_factory=list)
    unnamed: list[str] = field(default_factory=list)

    def check(
        self,
        path: Path,
        load: Callable[[Path], object],
        refusal: type[Exception],
        messages: Callable[[Exception], Iterable[str]],
        *,
        line_pattern: str,
    ) -> None:
        """Run one case: it loads, or every message of its refusal names ``path``."""
        self.cases += 1
        try:
            load(path)
        except refusal as exc:
            self.refused += 1
            shape = re.compile(re.escape(str(path)) + line_pattern)
            for message in messages(exc):
                if not shape.match(message):
                    self.unnamed.append(f"{path.name}: {message[:300]!r}")
        except Exception:  # the point of the fuzzer: any other exception is a traceback
            self.tracebacks.append(f"{path.name}:\n{traceback.format_exc()[-1500:]}")
        else:
            self.loaded += 1

    def figures(self) -> dict[str, int]:
        return {
            "cases": self.cases,
            "loaded": self.loaded,
            "refused": self.refused,
            "tracebacks": len(self.tracebacks),
            "errors_without_file": len(self.unnamed),
        }
