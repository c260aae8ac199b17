"""The flow-file loader's limits against bombs: seconds to refuse each (issue 10's figure).

The per-bomb table with each process's peak memory is ``bench/bench_flow_bomb.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness import ROOT, Figure

DESCRIPTION = "flow-file bombs: seconds the loader takes to refuse the worst one"


def run(small: bool) -> list[Figure]:
    sys.path.insert(0, str(ROOT / "tests" / "reliability"))
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_flow_bomb import load_seconds
    from flow_bombs import BOMBS

    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for name, (write, _) in sorted(BOMBS.items()):
            path = Path(folder) / f"{name}.yaml"
            write(path)
            worst = max(worst, load_seconds(path))
    return [Figure("slowest bomb refused", worst, "s", goal=1.0, note=f"{len(BOMBS)} bombs")]
