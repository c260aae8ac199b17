"""``kill -9`` of a real ``m365perf serve`` with write-backs waiting; the restart finishes them.

The service runs as its own process on the wall clock, against a sandbox process whose
bot endpoint is that service's port. The cycle is opened with ``m365perf cycle open`` (it
reads the register from the sandbox over Graph). Owners return, approvers approve through
``/_sandbox/act``; the final approvals are made while the service is not dispatching, so
every write-back they cause is still in the outbox when the process is killed.

The three runs of ``serve``:

1. ``--tick 0.5``: cards out, returns in, every approval before the performance team's.
2. ``--tick 3600`` and ``M365PERF_OUTBOX_IDLE_S=60`` (no timer for an hour, the outbox
   not looked at again for a minute): the performance team's approvals are taken and
   queued, nothing is sent; then ``kill -9``.
3. ``--tick 0.5``: runs until the outbox is empty.

(A kill in the middle of a send would leave that row to its five-minute lease before a
new process may take it: right, but too slow for a test.)
"""

from __future__ import annotations

import contextlib
import signal
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from integration_support import (
    PERFORMANCE_TEAM,
    People,
    Serve,
    card_text,
    cycle_open,
    free_port,
    replied_card,
    results_rows,
    sandbox_health,
    serve_environment,
    serve_flow_file,
)

from m365perf.domain.kinds import Frequency
from m365perf.domain.periods import Period
from m365perf.engine.context import LONDON
from m365perf.sandbox.act import find_actions
from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.store import (
    OutboxMessage,
    OutboxStatus,
    Return,
    ReturnStatus,
    Store,
    create_store,
)

pytestmark = pytest.mark.slow

NADIA, BEN = PERFORMANCE_TEAM


def _approve_everything_before_the_team(people: People, serve: Serve) -> None:
    """Each approver before the performance team approves what reaches them, step by step."""
    others = [upn for upn in people.everyone() if upn not in PERFORMANCE_TEAM]
    for _ in range(5):
        acted = 0
        for upn in others:
            for card in people.approval_cards(upn):
                reply = replied_card(people.act(upn, card, "approve"))
                assert "Approved by" in card_text(reply), card_text(reply)
                acted += 1
        serve.wait_until_sent()
        if not acted:
            return
    raise AssertionError("approvals kept coming after five rounds")


def test_kill_9_with_write_backs_queued_loses_nothing_and_writes_each_row_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    with running_sandbox(tmp_path, bot_endpoint=f"http://127.0.0.1:{port}/api/messages") as sb:
        _run(sb, tmp_path, port)


def _run(sandbox: RunningSandbox, tmp_path: Path, port: int) -> None:
    health = sandbox_health(sandbox)
    flow = serve_flow_file(tmp_path / "flows", health)
    database = tmp_path / "m365perf.db"
    env = serve_environment(health, database, port)
    serve = Serve(tmp_path, env, port, flow.parent)
    people = People(sandbox, f"http://127.0.0.1:{port}/api/messages")
    # this month, whose cycle would open weeks from now: no reminder or deadline is due
    period = Period.containing(Frequency.MONTHLY, datetime.now(LONDON).date())

    # --- run 1: cards out, returns in, approvals up to the performance team -------------
    with serve.running(tick_s=0.5):
        opened = cycle_open(flow, period, env, tmp_path)
        assert opened["created"] and opened["owners"] > 5
        serve.wait_until_sent()
        returns = _returns(database, opened["cycle_id"])
        owners = sorted({r.owner_email or "" for r in returns})
        assert len(owners) == opened["owners"]
        late = owners[-1]  # one owner does not return this time
        for owner in owners:
            if owner == late:
                continue
            card = people.request_card(owner)
            keys = card.data("submitReturns")["versions"]
            inputs = {f"value__{k}": "42" for k in keys} | {
                f"comment__{k}": "Taken from the case system at month end." for k in keys
            }
            reply = replied_card(people.act(owner, card, "submitReturns", inputs))
            verbs = {a.get("verb") for a in find_actions(reply)}
            assert "submitReturns" not in verbs, card_text(reply)
        serve.wait_until_sent()
        _approve_everything_before_the_team(people, serve)
        waiting = people.approval_cards(NADIA)
        assert len(waiting) == sum(1 for r in returns if r.owner_email != late)

    # --- run 2: the final approvals are queued, then the process is killed --------------
    with serve.running(tick_s=3600, outbox_idle_s=60) as process:
        before = serve.outbox()
        for card in waiting:
            said = card_text(replied_card(people.act(NADIA, card, "approve")))
            assert "Approved by Nadia Clarke" in said and "approved and published" in said
        queued = serve.outbox()
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=15) == -signal.SIGKILL
    # every approval left its write-back waiting in the outbox; nothing was sent
    assert queued["done"] == before["done"] and queued["pending"] > before["pending"]
    assert sorted(m.status for m in _outbox(database, "write_back")) == [
        OutboxStatus.PENDING
    ] * len(waiting)
    assert not [r for r in results_rows(sandbox, health) if r.get("Period") == period.label]

    # --- run 3: the restarted service finishes the job ----------------------------------
    with serve.running(tick_s=0.5):
        counts = serve.wait_until_sent()
    returns = _returns(database, opened["cycle_id"])
    outbox = _outbox(database)

    assert {m.status for m in outbox} == {OutboxStatus.DONE}
    assert counts["done"] == len(outbox)
    approved = sorted(r.indicator_key for r in returns if r.status is ReturnStatus.APPROVED)
    assert approved == sorted(r.indicator_key for r in returns if r.owner_email != late)
    write_backs = Counter(
        m.payload["fields"]["IndicatorId"] for m in outbox if m.kind == "write_back"
    )
    assert write_backs == Counter(approved)

    # SharePoint holds exactly one row per approved return, and nothing for the rest.
    rows = [r for r in results_rows(sandbox, health) if r.get("Period") == period.label]
    assert Counter(r["IndicatorId"] for r in rows) == Counter(approved)

    # Every owner got their one card; Ben's cards now say Nadia decided.
    for owner in owners:
        cards = people.chat_cards(owner)
        assert len(cards) == 1, f"{owner} has {len(cards)} cards"
        assert bool(cards[0].action("submitReturns")) == (owner == late)
    for card in people.chat_cards(BEN):
        assert "Approved by Nadia Clarke" in card.text


@contextlib.contextmanager
def _store(database: Path) -> Iterator[Store]:
    """The service's SQLite file, read from this process (alongside ``serve`` or not)."""
    store = create_store(f"sqlite:///{database}", migrate=False)
    try:
        yield store
    finally:
        store.close()


def _returns(database: Path, cycle_id: int) -> list[Return]:
    with _store(database) as store, store.transaction() as tx:
        return tx.list_returns(cycle_id=cycle_id)


def _outbox(database: Path, kind: str | None = None) -> list[OutboxMessage]:
    with _store(database) as store, store.transaction() as tx:
        return tx.list_outbox(kind=kind)
