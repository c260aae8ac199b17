"""One contract, every database: each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import Backend, no_hang

from m365perf.store import Store
from m365perf.store.migrate import upgrade


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name: str = request.param
    if name == "sqlite":
        url = f"sqlite:///{tmp_path / 'm365perf.db'}"
    else:
        url = no_hang(request.getfixturevalue("postgres_schema_url"))
    upgrade(url)
    backend = Backend(name, url)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.new_store()
