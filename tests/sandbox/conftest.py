"""Fixtures for the sandbox tests: real sandbox processes, spoken to with plain requests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sandbox_support import Wire

from m365perf.sandbox.testing import RunningSandbox, running_sandbox


@pytest.fixture(scope="session")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """One seeded sandbox for the tests that only add their own items and messages."""
    with running_sandbox(tmp_path_factory.mktemp("session-sandbox")) as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def wire(shared_sandbox: RunningSandbox) -> Wire:
    return Wire(shared_sandbox)


@pytest.fixture
def fresh(tmp_path: Path) -> Any:
    """Start a sandbox of one's own: ``with fresh(page_size=2) as w: ...``."""

    @contextmanager
    def start(**config: Any) -> Iterator[Wire]:
        with running_sandbox(tmp_path, **config) as sandbox:
            yield Wire(sandbox)

    return start
