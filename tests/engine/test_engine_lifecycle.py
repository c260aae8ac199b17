"""Approval strictly in order, cycles that close by their flow's rule, rejected returns chased.

Every refused click changes nothing and says why on the card it answers with.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from engine_support import (
    ANN,
    BEN,
    BOB,
    CAT,
    DAN,
    NADIA,
    Council,
    approval_data,
    make_council,
    submit_data,
)
from engine_support import (
    card_text as raw_text,
)

from m365perf.store import CycleStatus, Return, ReturnStatus, StepStatus


def card_text(card: dict[str, Any]) -> str:
    """The card's text as a person reads it (runs joined, spaces collapsed)."""
    return " ".join(raw_text(card).split())


@pytest.fixture
def council() -> Council:
    return make_council()


def _ret(council: Council, key: str) -> Return:
    with council.store.transaction() as tx:
        return next(r for r in tx.list_returns() if r.indicator_key == key)


def _state(council: Council) -> list[tuple[Any, ...]]:
    """Everything a click could change: returns and steps, with versions."""
    with council.store.transaction() as tx:
        rows: list[tuple[Any, ...]] = []
        for r in tx.list_returns():
            rows.append((r.id, r.status, r.version))
            rows += [(s.id, s.status, s.version, s.decided_by) for s in tx.list_steps(r.id or 0)]
        rows += [(c.id, c.status, c.version) for c in tx.list_cycles()]
        return rows


def _last_card(council: Council, email: str) -> dict[str, Any]:
    card: dict[str, Any] = council.cards_to(email)[-1]["card"]
    return card


def _submit_red(council: Council) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(
        ANN,
        "submitReturns",
        submit_data(card, value__CP001="30", comment__CP001="Contract change in September."),
    )


def test_a_later_step_cannot_decide_before_the_current_one(council: Council) -> None:
    _submit_red(council)
    bob_card = _last_card(council, "bob.ray@contoso.gov.uk")
    assert _ret(council, "CP001").status is ReturnStatus.RETURNED
    before = _state(council)
    # Nadia (performance team, step 3) approves with step 1's card data turned to step 3.
    tampered = {**approval_data(bob_card, "approve"), "step_index": 2}
    reply = council.act(NADIA, "approve", tampered)
    assert "waiting for Supervisor check, not for you yet" in card_text(reply)
    assert _state(council) == before
    assert council.outbox("write_back") == []


def test_the_chain_is_walked_in_order_and_written_back_once(council: Council) -> None:
    _submit_red(council)
    bob_card = _last_card(council, "bob.ray@contoso.gov.uk")
    council.act(BOB, "approve", approval_data(bob_card, "approve"))
    # The second click on the same card changes nothing and says who decided when.
    before = _state(council)
    again = council.act(BOB, "approve", approval_data(bob_card, "approve"))
    assert "Approved by Bob Ray" in card_text(again)
    assert _state(council) == before
    cat_card = _last_card(council, "cat.doe@contoso.gov.uk")
    # The performance team is not asked yet: their step is still pending.
    assert council.cards_to("nadia.clarke@contoso.gov.uk") == []
    council.act(CAT, "approve", approval_data(cat_card, "approve"))
    # An earlier step's card clicked once a later step is current: already decided.
    stale = council.act(BOB, "approve", approval_data(bob_card, "approve"))
    assert "Approved by Bob Ray" in card_text(stale)
    nadia_card = _last_card(council, "nadia.clarke@contoso.gov.uk")
    ben_card = _last_card(council, "ben.foster@contoso.gov.uk")
    council.act(NADIA, "approve", approval_data(nadia_card, "approve"))
    # Group step: the first member decides; the other's card shows the outcome.
    late = council.act(BEN, "approve", approval_data(ben_card, "approve"))
    assert "Approved by Nadia Clarke" in card_text(late)
    updates = [m for m in council.outbox("update_card") if "ben" in m.payload["card_id"] or True]
    assert any(u.payload["card_id"] == ben_card["actions"][0]["data"]["card_id"] for u in updates)
    ret = _ret(council, "CP001")
    assert ret.status is ReturnStatus.APPROVED
    with council.store.transaction() as tx:
        steps = tx.list_steps(ret.id or 0)
    assert [s.status for s in steps] == [StepStatus.APPROVED] * 3
    assert [s.decided_by for s in steps] == [BOB.user_id, CAT.user_id, NADIA.user_id]
    writes = council.outbox("write_back")
    assert len(writes) == 1
    assert writes[0].payload["fields"]["ApprovedBy"] == "Nadia Clarke"


def test_a_step_whose_condition_does_not_hold_is_skipped_with_why(council: Council) -> None:
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="46"))  # green
    council.act(
        BOB, "approve", approval_data(_last_card(council, "bob.ray@contoso.gov.uk"), "approve")
    )
    return_id = _ret(council, "CP001").id or 0
    with council.store.transaction() as tx:
        steps = tx.list_steps(return_id)
    assert [s.status for s in steps] == [StepStatus.APPROVED, StepStatus.SKIPPED, StepStatus.ASKED]
    assert "only when" in (steps[1].reason or "") or "red" in (steps[1].reason or "")
    assert council.cards_to("cat.doe@contoso.gov.uk") == []


def test_a_stranger_is_told_the_card_is_not_for_them_and_sees_no_figures(council: Council) -> None:
    _submit_red(council)
    before = _state(council)
    bob_card = _last_card(council, "bob.ray@contoso.gov.uk")
    reply = council.act(DAN, "approve", approval_data(bob_card, "approve"))
    text = card_text(reply)
    assert "not one of its approvers" in text
    assert "30" not in text and "Household waste" not in text
    assert _state(council) == before


def test_a_card_for_an_older_version_is_superseded(council: Council) -> None:
    _submit_red(council)
    old_card = _last_card(council, "bob.ray@contoso.gov.uk")
    council.act(BOB, "reject", approval_data(old_card, "reject", reason="Check the tonnage."))
    rejection = _last_card(council, "ann.lee@contoso.gov.uk")
    council.act(
        ANN,
        "submitReturns",
        submit_data(rejection, value__CP001="31", comment__CP001="Recounted."),
    )
    before = _state(council)
    reply = council.act(BOB, "approve", {**approval_data(old_card, "approve")})
    assert "out of date" in card_text(reply)
    assert _state(council) == before


def test_a_rejected_return_is_chased_saying_why_it_was_sent_back(council: Council) -> None:
    _submit_red(council)
    bob_card = _last_card(council, "bob.ray@contoso.gov.uk")
    council.act(BOB, "reject", approval_data(bob_card, "reject", reason="Check the tonnage."))
    assert _ret(council, "CP001").status is ReturnStatus.REJECTED
    sent = len(council.cards_to("ann.lee@contoso.gov.uk"))
    # Two working days after it was sent back (Mon 9 Nov) it is chased on a card of its
    # own; that morning's cycle reminder asks only for CP002, never returned.
    while council.now < datetime(2026, 11, 9, 12, 0, tzinfo=UTC):
        council.tick(hours=1)
        council.engine.fire_due_timers(worker="test", now=council.now)
    reminders = council.cards_to("ann.lee@contoso.gov.uk")[sent:]
    chases = [r for r in reminders if "Household waste recycled" in card_text(r["card"])]
    assert len(chases) == 1, "the rejected return was not chased, or chased twice"
    text = card_text(chases[0]["card"])
    assert "Sent back by Bob Ray" in text and "Check the tonnage." in text
    assert "sent back" in chases[0]["subject"]


def test_the_first_return_starts_collecting(council: Council) -> None:
    with council.store.transaction() as tx:
        assert tx.list_cycles()[0].status is CycleStatus.OPEN
    _submit_red(council)
    with council.store.transaction() as tx:
        assert tx.list_cycles()[0].status is CycleStatus.COLLECTING


def _approve_everything(council: Council) -> None:
    ann = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(ANN, "submitReturns", submit_data(ann, value__CP001="46", value__CP002="19"))
    dan = council.cards_to("dan.fox@contoso.gov.uk")[0]["card"]
    council.act(DAN, "submitReturns", submit_data(dan, value__CP003="120"))
    for _ in range(3):
        for email, who in (("bob.ray@contoso.gov.uk", BOB), ("nadia.clarke@contoso.gov.uk", NADIA)):
            for payload in council.cards_to(email):
                council.act(who, "approve", approval_data(payload["card"], "approve"))


def test_a_cycle_closes_when_every_return_is_approved(council: Council) -> None:
    _approve_everything(council)
    with council.store.transaction() as tx:
        cycle = tx.list_cycles()[0]
        assert cycle.status is CycleStatus.CLOSED
        assert cycle.close_reason == "every return is approved"
        chasers = [t for t in tx.list_timers(subject_type="cycle") if t.status == "pending"]
    assert chasers == []
    assert any("closed" in m.payload["subject"] for m in council.outbox("send_mail"))


def _run_to(council: Council, until: datetime) -> None:
    while council.now < until:
        council.tick(hours=2)
        council.engine.fire_due_timers(worker="test", now=council.now)


@pytest.mark.parametrize("late", ["correction", "refuse"])
def test_a_cycle_closes_on_its_date_and_late_figures_follow_the_flow(late: str) -> None:
    council = make_council(
        close={"all_approved": False, "working_days_after_due": 2, "late_returns": late}
    )
    dan_card = council.cards_to("dan.fox@contoso.gov.uk")[0]["card"]
    # Due Wednesday 11 November, but opened a day late (Thursday 5th), so the owners keep
    # their five working days (to Thursday 12th); it closes two working days after that,
    # Monday 16th at 09:00.
    _run_to(council, datetime(2026, 11, 16, 8, 0, tzinfo=UTC))
    with council.store.transaction() as tx:
        assert tx.list_cycles()[0].status is not CycleStatus.CLOSED
    _run_to(council, datetime(2026, 11, 16, 12, 0, tzinfo=UTC))
    with council.store.transaction() as tx:
        assert tx.list_cycles()[0].status is CycleStatus.CLOSED
    assert _ret(council, "CP003").status is ReturnStatus.MISSED
    reply = council.act(DAN, "submitReturns", submit_data(dan_card, value__CP003="120"))
    if late == "correction":
        # Closing moved the return on: the old card answers with the current one, the
        # figure Dan typed still in it, and that card takes it.
        assert "changed since" in card_text(reply)
        reply = council.act(DAN, "submitReturns", submit_data(reply, value__CP003="120"))
        ret = _ret(council, "CP003")
        assert ret.status is ReturnStatus.RETURNED and ret.late
        with council.store.transaction() as tx:
            actions = [e.action for e in tx.list_audit(subject_type="return")]
        assert "return.submitted_late" in actions
    else:
        assert "This cycle closed on" in card_text(reply)
        assert _ret(council, "CP003").status is ReturnStatus.MISSED


def test_closing_by_hand_twice_closes_once(council: Council) -> None:
    cycle_id = _ret(council, "CP001").cycle_id
    first = council.engine.close_cycle(
        cycle_id, by="perf@contoso.gov.uk", reason="Year end", now=council.now
    )
    assert first.closed and set(first.missed) == {"CP001", "CP002", "CP003"}
    council.tick(minutes=5)
    second = council.engine.close_cycle(cycle_id, by="someone", reason="again", now=council.now)
    assert not second.closed and second.closed_by == "perf@contoso.gov.uk"
    assert second.reason == "Year end"
    # Nothing chases a closed cycle.
    before = len(council.outbox("send_card"))
    _run_to(council, council.now + timedelta(days=14))
    assert len(council.outbox("send_card")) == before


def _register(council: Council, supervisor: str) -> tuple[list[Any], list[Any]]:
    from engine_support import COLUMNS, ROWS

    from m365perf.plan.register import read_indicators

    rows = [list(r) for r in ROWS]
    rows[0][10] = supervisor
    padded = [dict(zip(COLUMNS, r + [""] * (len(COLUMNS) - len(r)), strict=True)) for r in rows]
    indicators, problems = read_indicators(council.engine.flows["monthly-corporate-kpis"], padded)
    return list(indicators), list(problems)


def test_a_figure_nobody_could_approve_goes_on_once_the_register_is_fixed(
    council: Council,
) -> None:
    from m365perf.domain.periods import Period

    flow_id, period = "monthly-corporate-kpis", Period.parse("2026-10")
    # The supervisor leaves the register after the cycle opened; Ann then returns CP001.
    council.engine.resync_cycle(
        flow_id, period, *_register(council, "gone@contoso.gov.uk"), now=council.now
    )
    _submit_red(council)
    assert _ret(council, "CP001").status is ReturnStatus.RETURNED
    assert council.cards_to("bob.ray@contoso.gov.uk") == []
    council.tick(hours=1)
    done = council.engine.resync_cycle(
        flow_id, period, *_register(council, "bob.ray@contoso.gov.uk"), now=council.now
    )
    # The figure goes to the supervisor without Ann returning it again.
    assert done.round is not None
    bob = _last_card(council, "bob.ray@contoso.gov.uk")
    council.act(BOB, "approve", approval_data(bob, "approve"))
    return_id = _ret(council, "CP001").id or 0
    with council.store.transaction() as tx:
        steps = tx.list_steps(return_id)
    assert [s.status for s in steps][:2] == [StepStatus.APPROVED, StepStatus.ASKED]


def test_every_return_approved_does_not_close_while_a_register_row_waits() -> None:
    from engine_support import ROWS

    rows = [list(r) for r in ROWS]
    rows[2][9] = "nobody@contoso.gov.uk"  # CP003's owner is not in the directory yet
    council = make_council(rows=rows)
    ann = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(ANN, "submitReturns", submit_data(ann, value__CP001="46", value__CP002="19"))
    for _ in range(3):
        for email, who in (("bob.ray@contoso.gov.uk", BOB), ("nadia.clarke@contoso.gov.uk", NADIA)):
            for payload in council.cards_to(email):
                council.act(who, "approve", approval_data(payload["card"], "approve"))
    assert {_ret(council, k).status for k in ("CP001", "CP002")} == {ReturnStatus.APPROVED}
    with council.store.transaction() as tx:
        cycle = tx.list_cycles()[0]
    assert cycle.status is not CycleStatus.CLOSED and cycle.unroutable == 1


def _cycle_from_before_closing(council: Council, period: str, *, approved: bool) -> int:
    """A cycle as migration 0003 leaves one: collecting, with no close timer."""
    from datetime import date

    from m365perf.domain.kinds import Frequency
    from m365perf.store import NewReturn, ReturnFigure

    with council.store.transaction() as tx:
        cycle, _ = tx.open_cycle(
            "monthly-corporate-kpis",
            period,
            period_start=date(2026, 9, 1),
            frequency=Frequency.MONTHLY,
            due_date=date(2026, 10, 9),
            now=council.now - timedelta(days=40),
        )
        (ret,) = tx.create_returns(
            cycle.id or 0, [NewReturn(indicator_key="CP001")], now=council.now
        )
        tx.submit_return(ret.id or 0, 1, ReturnFigure(value=46.0), by=ANN.user_id, now=council.now)
        if approved:
            tx.approve_return(ret.id or 0, 2, by=BOB.user_id, now=council.now)
        tx.collect_cycle(cycle.id or 0, now=council.now)
    return cycle.id or 0


def test_cycles_from_before_closing_close_by_their_flows_rule(council: Council) -> None:
    done = _cycle_from_before_closing(council, "2026-09", approved=True)
    waiting = _cycle_from_before_closing(council, "2026-08", approved=False)
    council.engine.keep_cycles_closing(now=council.now)
    with council.store.transaction() as tx:
        assert tx.get_cycle(done).status is CycleStatus.CLOSED  # all approved: closes now
        assert tx.get_cycle(waiting).status is CycleStatus.COLLECTING
        (timer,) = [t for t in tx.list_timers(subject_id=waiting) if t.kind == "close"]
    # Its close date (twenty working days after due) passed long ago: it closes at once.
    assert timer.due_at == council.now
    council.engine.fire_due_timers(worker="test", now=council.now)
    with council.store.transaction() as tx:
        assert tx.get_cycle(waiting).status is CycleStatus.CLOSED
    council.engine.keep_cycles_closing(now=council.now)  # and again changes nothing


def test_a_flow_that_would_never_close_is_refused() -> None:
    from m365perf.flows.model import Closing

    with pytest.raises(ValueError, match="would never close"):
        Closing(all_approved=False, working_days_after_due=None)


@pytest.mark.postgres
def test_the_last_two_approvals_at_once_close_the_cycle_once(
    postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under READ COMMITTED each would see the other still in approval but for the lock."""
    import threading

    import engine_support

    from m365perf.engine import chain
    from m365perf.store import SqlStore
    from m365perf.store.migrate import upgrade

    upgrade(postgres_schema_url)
    real_load = engine_support.load_flow
    # No Power BI: its shared refresh timer would serialise the two transactions anyway.
    monkeypatch.setattr(
        engine_support, "load_flow", lambda p: real_load(p).model_copy(update={"powerbi": None})
    )
    council = make_council(store=SqlStore(postgres_schema_url), rows=engine_support.ROWS[:2])
    ann = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(ANN, "submitReturns", submit_data(ann, value__CP001="46", value__CP002="19"))
    for payload in council.cards_to("bob.ray@contoso.gov.uk"):
        council.act(BOB, "approve", approval_data(payload["card"], "approve"))
    nadia = [p["card"] for p in council.cards_to("nadia.clarke@contoso.gov.uk")]
    ben = [p["card"] for p in council.cards_to("ben.foster@contoso.gov.uk")]
    barrier = threading.Barrier(2)
    real_close = chain.close_when_all_approved

    def together(*args: Any, **kwargs: Any) -> Any:
        barrier.wait(timeout=10)  # both returns approved, neither transaction committed
        return real_close(*args, **kwargs)

    monkeypatch.setattr(chain, "close_when_all_approved", together)
    clicks = [
        threading.Thread(
            target=council.act, args=(NADIA, "approve", approval_data(nadia[0], "approve"))
        ),
        threading.Thread(
            target=council.act, args=(BEN, "approve", approval_data(ben[1], "approve"))
        ),
    ]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join(timeout=30)
    with council.store.transaction() as tx:
        assert {r.status for r in tx.list_returns()} == {ReturnStatus.APPROVED}
        assert tx.list_cycles()[0].status is CycleStatus.CLOSED
        closed = [e for e in tx.list_audit() if e.action == "cycle.closed"]
    assert len(closed) == 1
    council.store.close()
