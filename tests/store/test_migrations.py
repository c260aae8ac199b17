"""The shipped migrations build exactly the tables the code declares, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from store_helpers import FLOW, PERIOD, open_cycle

from m365perf.store import SchemaOutOfDate, SqlStore, create_store
from m365perf.store.migrate import current_revision, head_revision, upgrade
from m365perf.store.sql import make_engine
from m365perf.store.tables import metadata


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


def test_upgrade_builds_the_declared_schema_and_is_repeatable(
    empty_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may depend on the working directory
    assert current_revision(empty_database) is None
    upgrade(empty_database)
    upgrade(empty_database)  # a second instance starting up changes nothing
    engine = make_engine(empty_database)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []
    assert current_revision(empty_database) == head_revision()


def test_a_database_from_the_first_release_is_refused_then_migrated_with_its_data(
    empty_database: str,
) -> None:
    upgrade(empty_database, "0001")
    old = SqlStore(empty_database)  # the previous release, still running
    with old.transaction() as tx:
        open_cycle(tx)
    old.close()
    with pytest.raises(SchemaOutOfDate, match="revision 0001"):
        create_store(empty_database)
    store = create_store(empty_database, migrate=True)
    try:
        with store.transaction() as tx:
            assert tx.find_cycle(FLOW, PERIOD) is not None
            assert tx.list_people() == []  # and the new tables are there
    finally:
        store.close()


def test_create_store_gives_the_sql_store_for_a_sqlite_file(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path / 'x.db'}", migrate=True)
    assert isinstance(store, SqlStore)
    store.close()


def test_a_database_that_was_never_migrated_is_refused_up_front(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with pytest.raises(SchemaOutOfDate, match="revision none"):
        create_store(url)
    upgrade(url)
    create_store(url).close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "database_url"),
        ("mysql://localhost/db", "unsupported database 'mysql'"),
        ("memory://", "unsupported database 'memory'"),
        ("sqlite://", "in-memory SQLite.*m365perf.store.testing"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("sqlite:///file:kpis?mode=memory&cache=shared&uri=true", "in-memory SQLite"),
    ],
)
def test_create_store_explains_urls_it_cannot_use(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_store(url)
