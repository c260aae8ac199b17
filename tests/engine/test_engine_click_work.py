"""The work one click costs the database: a few reads, however many items it names.

A click reads what its decision needs at once (people, chains, indicators, targets and
history of every item in one statement per kind), decides, writes and draws the card it
answers with in one transaction. What it reads must not grow with the number of items
on the card or in the digest; what it writes grows only by each item's own rows (its
figure, its chain, its audit, the cards it queues).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy
from engine_support import ANN, BOB, ROWS, Council, approval_data, make_council, submit_data
from sqlalchemy.engine import make_url

from m365perf.cards.digest import APPROVE_ALL_VERB, APPROVE_VERB, REJECT_VERB
from m365perf.sandbox.act import find_actions
from m365perf.store import ReturnStatus, StepStatus, Store, create_store
from m365perf.store.sql import SqlStore
from m365perf.store.testing import StatementCount, counting_statements, memory_store

ANN_EMAIL, BOB_EMAIL = "ann.lee@contoso.gov.uk", "bob.ray@contoso.gov.uk"
WRITES_PER_ITEM = 8
"""Rows an accepted figure or an approved item writes: the return or step, the next
step asked, its chase timer, the card queued, its audit events."""

NewStore = Callable[[], Store]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_store(request: pytest.FixtureRequest) -> Iterator[NewStore]:
    """Fresh stores on one backend (each PostgreSQL one in a schema of its own)."""
    made: list[Store] = []
    schemas: list[str] = []
    admin = None
    if request.param == "postgres":
        base = make_url(request.getfixturevalue("postgres_schema_url"))
        admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")

    def make() -> Store:
        if admin is None:
            store: Store = memory_store()
        else:
            schema = f"test_{uuid.uuid4().hex[:16]}"
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
            schemas.append(schema)
            url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
            store = create_store(url.render_as_string(hide_password=False), migrate=True)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
    if admin is not None:
        with admin.connect() as conn:
            for schema in schemas:
                conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _rows(count: int) -> list[list[str]]:
    """``count`` indicators, all Ann's (Bob approves first), in two services."""
    rows = []
    for i in range(count):
        row = list(ROWS[i % 2])
        row[0], row[1] = f"CP{i:03d}", f"Indicator {i}"
        rows.append(row)
    return rows


def _inputs(count: int) -> dict[str, str]:
    values = {f"value__CP{i:03d}": "47" for i in range(count)}
    return values | {f"comment__CP{i:03d}": "Checked at month end." for i in range(count)}


def _counted(store: Store) -> Any:
    assert isinstance(store, SqlStore)
    return counting_statements(store)


def _submitted(new_store: NewStore, count: int, cards: str) -> tuple[Council, StatementCount]:
    council = make_council(new_store(), rows=_rows(count), cards=cards)
    card = council.cards_to(ANN_EMAIL)[0]["card"]
    with _counted(council.store) as counted:
        council.act(ANN, "submitReturns", submit_data(card, **_inputs(count)))
    with council.store.transaction() as tx:
        returned = [r for r in tx.list_returns() if r.status is ReturnStatus.RETURNED]
    assert len(returned) == count, "every figure was accepted"
    return council, counted


def _digest(council: Council) -> dict[str, Any]:
    council.tick(minutes=2)
    council.engine.fire_due_timers(worker="test", now=council.now)
    card: dict[str, Any] = next(
        p["card"] for p in council.cards_to(BOB_EMAIL) if str(p["card_id"]).startswith("digest-")
    )
    return card


def _action(card: dict[str, Any], verb: str, nth: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = [a for a in find_actions(card) if a.get("verb") == verb][nth]["data"]
    return data


def _steps(council: Council) -> list[StepStatus]:
    with council.store.transaction() as tx:
        return [tx.list_steps(r.id or 0)[0].status for r in tx.list_returns()]


def test_a_submit_reads_the_same_for_two_figures_as_for_eight(new_store: NewStore) -> None:
    _, two = _submitted(new_store, 2, "per_item")
    _, eight = _submitted(new_store, 8, "per_item")

    assert eight.reads == two.reads <= 16, eight.statements
    assert eight.writes - two.writes <= 6 * WRITES_PER_ITEM
    assert two.transactions == eight.transactions == 1


def test_an_approval_click_costs_the_same_in_a_small_cycle_as_in_a_large_one(
    new_store: NewStore,
) -> None:
    def approve(count: int) -> StatementCount:
        council, _ = _submitted(new_store, count, "per_item")
        card = next(
            p["card"]
            for p in council.cards_to(BOB_EMAIL)
            if str(p["card_id"]).startswith("approval-")
        )
        with _counted(council.store) as counted:
            council.act(BOB, "approve", approval_data(card, "approve"))
        assert _steps(council).count(StepStatus.APPROVED) == 1
        return counted

    small, large = approve(2), approve(8)
    assert small.count == large.count <= 25, large.statements
    assert large.transactions == 1


def test_a_digest_decision_on_one_item_costs_the_same_however_long_the_digest(
    new_store: NewStore,
) -> None:
    def click(count: int, verb: str) -> StatementCount:
        council, _ = _submitted(new_store, count, "digest")
        digest = _digest(council)
        data = _action(digest, verb)
        if verb == REJECT_VERB:
            data = {**data, "reason": "Please check the source."}
        with _counted(council.store) as counted:
            council.act(BOB, verb, data)
        wanted = StepStatus.APPROVED if verb == APPROVE_VERB else StepStatus.REJECTED
        assert _steps(council).count(wanted) == 1
        return counted

    for verb in (APPROVE_VERB, REJECT_VERB):
        small, large = click(2, verb), click(8, verb)
        assert small.count == large.count <= 35, (verb, large.statements)
        assert large.transactions == 1


def test_approve_all_decides_every_item_in_one_transaction_reading_the_same(
    new_store: NewStore,
) -> None:
    def approve_all(count: int) -> StatementCount:
        council, _ = _submitted(new_store, count, "digest")
        digest = _digest(council)
        with _counted(council.store) as counted:
            council.act(BOB, APPROVE_ALL_VERB, _action(digest, APPROVE_ALL_VERB))
        assert _steps(council) == [StepStatus.APPROVED] * count
        return counted

    small, large = approve_all(2), approve_all(8)
    assert small.reads == large.reads <= 16, large.statements
    assert large.writes - small.writes <= 6 * WRITES_PER_ITEM
    assert small.transactions == large.transactions == 1
