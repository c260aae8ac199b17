"""Two schedulers on one store fire at the same opening time: one cycle, one card per owner.

Two ``Service`` instances (as two ``m365perf serve`` processes would be) share a
PostgreSQL schema, or one SQLite file, and call ``open_due_cycles`` from two threads at
the flow's opening time; then both drain the outbox side by side. What the owners find
in the sandbox's Teams chats is the proof.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from integration_support import (
    MONTHLY,
    Bench,
    bench,
    monthly_flow,
    opening_time,
    sandbox_health,
)

from m365perf.sandbox.testing import RunningSandbox
from m365perf.service import CLOCK_LOCK
from m365perf.store.sql import SqlStore

pytestmark = pytest.mark.slow

PERIOD = "2026-10"


@contextlib.contextmanager
def two_schedulers(sandbox: RunningSandbox, url: str) -> Iterator[tuple[Bench, Bench]]:
    start = opening_time(monthly_flow(sandbox_health(sandbox)), PERIOD)
    with (
        bench(sandbox, url, start=start, worker_id="scheduler-a", serve=False) as a,
        bench(sandbox, url, start=start, worker_id="scheduler-b", serve=False) as b,
    ):
        yield a, b


def _at_once(a: Bench, b: Bench, work: str) -> list[Any]:
    """Run ``work`` (a Service method name) on both services, released at the same moment."""
    start = threading.Barrier(2)
    results: list[Any] = [None, None]
    errors: list[BaseException] = []

    def run(index: int, one: Bench) -> None:
        try:
            start.wait(timeout=10)
            results[index] = getattr(one.service, work)()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate((a, b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), f"{work} did not finish"
    if errors:
        raise errors[0]
    return results


def _assert_one_cycle_one_card_per_owner(a: Bench, b: Bench) -> None:
    _at_once(a, b, "settle")
    with a.store.transaction() as tx:
        cycles = tx.list_cycles(flow_id=MONTHLY)
        assert [c.period for c in cycles] == [PERIOD]
        returns = tx.list_returns(cycle_id=cycles[0].id)
        opened = [e for e in tx.list_audit() if e.action == "cycle.opened"]
    assert len(opened) == 1
    said = opened[0].after or {}
    keys = [r.indicator_key for r in returns]
    assert len(keys) == len(set(keys)) == said["returns"] > 10
    owners = {r.owner_email for r in returns}
    assert len(owners) == said["owners"]

    # In the sandbox: exactly one request card in each owner's chat, none for anyone else.
    cards = {
        upn: [p for p in a.chat_cards(upn) if p.action("submitReturns")] for upn in a.everyone()
    }
    assert {upn: len(found) for upn, found in cards.items() if found} == dict.fromkeys(owners, 1)
    # and one note to the performance team about the indicator nobody can be asked for
    unroutable = [
        m for m in a.mails("performance@contoso.gov.uk") if "cannot be routed" in m["subject"]
    ]
    assert len(unroutable) == 1


def test_two_schedulers_on_one_sqlite_file_open_one_cycle(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    with two_schedulers(sandbox, f"sqlite:///{tmp_path / 'shared.db'}") as (a, b):
        opened = _at_once(a, b, "open_due_cycles")

        # SQLite grants the clock to both; the unique (flow, period) lets one create.
        created = [o for result in opened for o in result if o.created]
        assert len(created) == 1
        _assert_one_cycle_one_card_per_owner(a, b)


@pytest.mark.postgres
def test_two_schedulers_on_postgres_open_one_cycle_and_one_holds_the_clock(
    sandbox: RunningSandbox, postgres_schema_url: str
) -> None:
    # The store scopes the clock to its schema: a parallel run of the suite in another
    # schema of the same database holds a clock of its own.
    clock = CLOCK_LOCK
    with two_schedulers(sandbox, postgres_schema_url) as (a, b):
        opened = _at_once(a, b, "open_due_cycles")

        assert sorted(len(result) for result in opened) == [0, 1]
        assert [o.created for result in opened for o in result] == [True]
        # The opener still holds the clock; the other cannot take it.
        opener, other = (a, b) if opened[0] else (b, a)
        assert other.store.try_advisory_lock(clock) is False
        assert opener.store.try_advisory_lock(clock) is True
        assert isinstance(opener.store, SqlStore)
        assert _holders(postgres_schema_url, opener.store.lock_id(clock)) == 1
        _assert_one_cycle_one_card_per_owner(a, b)


def _holders(url: str, lock: int) -> int:
    """Sessions holding the advisory lock ``lock``, as PostgreSQL itself reports them."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sqlalchemy.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND classid = :high AND objid = :low AND objsubid = 1"
                    ),
                    {"high": lock >> 32, "low": lock & 0xFFFF_FFFF},
                ).scalar_one()
            )
    finally:
        engine.dispose()
