"""Fixtures the CLI tests share."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from m365perf.cli import main

ROOT = Path(__file__).resolve().parents[2]
REGISTER = ROOT / "config" / "demo-register.csv"
DIRECTORY = ROOT / "config" / "demo-directory.csv"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The monthly cycle opened from the demo register, its first owner's card returned."""
    monkeypatch.chdir(ROOT)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("M365PERF_DATABASE_URL", url)
    for name in ("TENANT_ID", "CLIENT_ID"):
        monkeypatch.delenv(f"M365PERF_{name}", raising=False)
    opened = CliRunner().invoke(
        main,
        [
            "cycle",
            "open",
            "monthly-corporate-kpis",
            "--period",
            "2026-10",
            "--register",
            str(REGISTER),
            "--directory",
            str(DIRECTORY),
        ],
    )
    assert opened.exit_code == 0, opened.output
    return url
