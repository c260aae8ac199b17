"""Where browser tests keep their screenshots: ``$M365PERF_ARTEFACTS`` or tests/artefacts.

The folder is git-ignored; CI uploads it, so a reviewer sees the pages as Chromium drew them.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def artefact(name: str) -> Path:
    """The path for artefact ``name`` (its folder made if need be)."""
    folder = Path(os.environ.get("M365PERF_ARTEFACTS") or ROOT / "tests" / "artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
