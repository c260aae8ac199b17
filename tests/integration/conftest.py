"""Fixtures every integration test shares: a running sandbox, and a store on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from m365perf.sandbox.testing import RunningSandbox, running_sandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path) as running:
        yield running


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh SQLite file, or a fresh PostgreSQL schema (``postgres_schema_url``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm365perf.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url
