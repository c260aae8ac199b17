"""Fixtures the reliability suites share (see reliability_support for sizes and figures)."""

import sys
from pathlib import Path

# The crash and fault suites drive ``serve`` and the sandbox with the integration tests'
# helpers (integration_support): one copy of them, importable from here too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
