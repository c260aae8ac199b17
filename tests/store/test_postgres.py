"""PostgreSQL only: races between instances that a single process cannot stage."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from store_helpers import NOW, new_return, no_hang

from m365perf.store import (
    AlreadyDecided,
    ApprovalStep,
    Return,
    ReturnFigure,
    SqlStore,
    StaleVersion,
    StepSpec,
    Store,
)
from m365perf.store.migrate import upgrade
from m365perf.store.sql import make_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres_schema_url: str) -> Iterator[tuple[str, SqlStore]]:
    url = no_hang(postgres_schema_url)
    upgrade(url)
    store = SqlStore(url)
    try:
        yield url, store
    finally:
        store.close()


def _seed(store: Store) -> None:
    with store.transaction() as tx:
        for i in range(4):
            tx.enqueue("send_card", budget="bot", payload={}, dedup_key=f"m{i}", now=NOW)
            tx.schedule_timer("reminder", due_at=NOW, dedup_key=f"t{i}", subject_type="x", now=NOW)


@pytest.mark.parametrize("table", ["outbox", "timer"])
def test_a_claim_skips_rows_locked_by_a_worker_mid_claim(
    pg: tuple[str, SqlStore], table: str
) -> None:
    url, store = pg
    _seed(store)

    def claim() -> list[int]:
        if table == "outbox":
            return [m.id or 0 for m in store.claim_outbox(NOW, 10, "b")]
        return [t.id or 0 for t in store.claim_due_timers(NOW, 10, "b")]

    other_worker = make_engine(url)
    try:
        with other_worker.connect() as conn, conn.begin():
            held = conn.execute(
                text(f"SELECT id FROM {table} ORDER BY id LIMIT 2 FOR UPDATE")
            ).scalars()
            held_ids = list(held)
            while_held = claim()  # must not wait for the other worker's transaction
        after = claim()
    finally:
        other_worker.dispose()
    assert len(held_ids) == 2 and not set(held_ids) & set(while_held)
    assert len(while_held) == 2
    assert sorted(after) == sorted(held_ids)  # released unclaimed, so due again


def test_a_lost_lock_connection_is_noticed_and_the_lock_retaken(
    pg: tuple[str, SqlStore],
) -> None:
    url, store = pg
    key = "scheduler"  # locks are per schema: other suites are untouched
    lock_id = store.lock_id(key)
    assert store.try_advisory_lock(key)
    rival = SqlStore(url)
    killer = make_engine(url)
    try:
        with killer.connect() as conn:
            # The database ends the holder's session (a restart, a failover, a kill).
            ended = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                    "AND classid::bigint = :hi AND objid::bigint = :lo"
                ),
                {"hi": lock_id >> 32, "lo": lock_id & 0xFFFF_FFFF},
            ).scalars()
            assert list(ended) == [True]
        assert rival.try_advisory_lock(key) is True  # the lock went with the session
        assert store.try_advisory_lock(key) is False  # noticed: no longer the holder
        rival.release_advisory_lock(key)
        assert store.try_advisory_lock(key) is True  # reconnected and took it again
    finally:
        killer.dispose()
        rival.close()


def _both_read_then_act(store_a: Store, store_b: Store, read: Any, act: Any) -> list[object]:
    """Two instances each read in their own transaction, then both act: the classic race."""
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def run(i: int, store: Store) -> None:
        try:
            with store.transaction() as tx:
                read(tx)
                barrier.wait(timeout=30)
                outcomes[i] = act(tx, i)
        except Exception as exc:  # handed back to the test to judge
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate((store_a, store_b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_approvers_who_both_saw_the_step_open_get_one_decision(
    pg: tuple[str, SqlStore],
) -> None:
    url, store = pg
    rival = SqlStore(url)
    ret = new_return(store)
    with store.transaction() as tx:
        (step,) = tx.create_steps(
            ret.id or 0, 1, [StepSpec(name="Supervisor", approvers=["a", "b"])], now=NOW
        )
        step = tx.ask_step(step.id or 0, 1, at=NOW)
    try:
        outcomes = _both_read_then_act(
            store,
            rival,
            lambda tx: tx.get_step(step.id),
            lambda tx, i: tx.approve_step(step.id or 0, 2, by=f"sup-{i}", at=NOW),
        )
    finally:
        rival.close()
    lost = [o for o in outcomes if isinstance(o, AlreadyDecided)]
    won = [o for o in outcomes if isinstance(o, ApprovalStep)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert lost[0].step.decided_by == won[0].decided_by


def test_two_clicks_on_the_same_card_version_change_the_return_once(
    pg: tuple[str, SqlStore],
) -> None:
    url, store = pg
    rival = SqlStore(url)
    ret = new_return(store)
    try:
        outcomes = _both_read_then_act(
            store,
            rival,
            lambda tx: tx.get_return(ret.id),
            lambda tx, i: tx.submit_return(
                ret.id or 0, 1, ReturnFigure(value=float(i)), by=f"officer-{i}", now=NOW
            ),
        )
    finally:
        rival.close()
    stale = [o for o in outcomes if isinstance(o, StaleVersion)]
    saved = [o for o in outcomes if isinstance(o, Return)]
    assert len(saved) == 1 and len(stale) == 1, outcomes
    with store.transaction() as tx:
        current = tx.get_return(ret.id or 0)
    assert (current.version, current.value) == (2, saved[0].value)
