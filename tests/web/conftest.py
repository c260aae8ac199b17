"""The web tests build their council with the engine tests' helpers (tests/engine)."""

from __future__ import annotations

import sys
from pathlib import Path

_ENGINE_TESTS = str(Path(__file__).resolve().parents[1] / "engine")
if _ENGINE_TESTS not in sys.path:
    sys.path.insert(0, _ENGINE_TESTS)

from idp_support import idp, idp_sandbox  # noqa: E402, F401  (fixtures, shared)
