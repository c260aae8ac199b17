"""The tests' in-memory store is the real SQL store, on the real schema, one per call."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from store_helpers import FLOW, NOW, PERIOD, open_cycle, race

from m365perf.store import OutboxStatus, SqlStore
from m365perf.store.migrate import head_revision
from m365perf.store.tables import metadata
from m365perf.store.testing import memory_store


def test_it_is_the_sql_store_on_the_migrated_schema() -> None:
    store = memory_store()
    try:
        assert isinstance(store, SqlStore)
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert context.get_current_revision() == head_revision()
            assert compare_metadata(context, metadata) == []
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()


def test_each_store_is_a_database_of_its_own() -> None:
    first, second = memory_store(), memory_store()
    try:
        with first.transaction() as tx:
            open_cycle(tx)
        with second.transaction() as tx:
            assert tx.find_cycle(FLOW, PERIOD) is None
        second.close()
        with first.transaction() as tx:
            assert tx.find_cycle(FLOW, PERIOD) is not None
    finally:
        first.close()


def test_transactions_on_several_threads_take_turns() -> None:
    """Each transaction sees the one before it committed, as on a file: none share one."""
    store = memory_store()

    def count_and_add(thread: int) -> list[bool]:
        created = []
        for n in range(10):
            with store.transaction() as tx:
                seen = sum(tx.outbox_counts().values())
                _, new = tx.enqueue(
                    "send_mail",
                    budget="mail",
                    payload={"thread": thread, "n": n},
                    dedup_key=f"row:{seen}",  # a second transaction seeing the same count collides
                    now=NOW,
                )
                created.append(new)
        return created

    try:
        outcomes = race(6, count_and_add)
        assert outcomes == [[True] * 10] * 6
        with store.transaction() as tx:
            assert tx.outbox_counts()[OutboxStatus.PENDING] == 60
    finally:
        store.close()


def test_a_closed_store_says_its_database_is_gone() -> None:
    store = memory_store()
    with store.transaction() as tx:
        open_cycle(tx)
    store.close()
    with pytest.raises(RuntimeError, match="database is gone"), store.transaction() as tx:
        tx.find_cycle(FLOW, PERIOD)
