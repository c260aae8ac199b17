"""`m365perf demo` without --auto needs Microsoft's renderer for its inbox pages.

The rehearsal itself, played in Chromium, is in tests/browser/test_inbox_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from m365perf.cli import main

pytestmark = pytest.mark.slow


def test_without_the_renderer_the_demo_stops_and_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("M365PERF_SANDBOX_RENDERER_DIR", str(tmp_path / "nowhere"))
    result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 1
    assert "demo failed: Microsoft's Adaptive Cards renderer is not installed" in result.output
    assert "make install" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "work" / "m365perf.db").exists()  # nothing opened
