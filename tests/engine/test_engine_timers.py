"""Chasing on working days, escalation, and the Power BI refresh debounce and budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine_support import ANN, BEN, BOB, Council, approval_data, make_council, submit_data

from m365perf.engine.context import LONDON


def _run_until(council: Council, until: datetime, step: timedelta = timedelta(hours=1)) -> None:
    while council.now < until:
        council.tick(seconds=step.total_seconds())
        council.engine.fire_due_timers(worker="test", now=council.now)


def _sent_days(council: Council, email: str) -> list[str]:
    return [
        m.created_at.astimezone(LONDON).date().isoformat()
        for m in council.outbox("send_card")
        if m.payload["user"]["email"] == email
    ]


def test_reminders_and_escalation_skip_new_year_bank_holiday() -> None:
    # December 2026's cycle opens Wednesday 6 January 2027 (1 January is a bank holiday).
    council = make_council(period="2026-12", start=datetime(2027, 1, 6, 9, 0, tzinfo=UTC))
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    _run_until(council, datetime(2027, 1, 8, 12, 0, tzinfo=UTC))
    council.act(ANN, "submitReturns", submit_data(card, value__CP001="46", value__CP002="19"))
    _run_until(council, datetime(2027, 1, 21, 12, 0, tzinfo=UTC))
    # Ann returned everything before the first reminder; Dan did not.
    assert _sent_days(council, "ann.lee@contoso.gov.uk") == ["2027-01-06"]
    assert _sent_days(council, "dan.fox@contoso.gov.uk") == [
        "2027-01-06",  # the request
        "2027-01-11",  # two working days before due (Wednesday 13th)
        "2027-01-13",  # due today
        "2027-01-15",  # overdue chaser 1
        "2027-01-19",  # overdue chaser 2
    ]
    escalations = [m for m in council.outbox("send_mail") if "Overdue" in m.payload["subject"]]
    assert len(escalations) == 1
    assert escalations[0].payload["to"] == ["bob.ray@contoso.gov.uk"]  # Dan's line manager
    assert escalations[0].created_at.astimezone(LONDON).date().isoformat() == "2027-01-19"


def test_digest_each_working_morning_while_open() -> None:
    council = make_council(period="2026-12", start=datetime(2027, 1, 6, 9, 0, tzinfo=UTC))
    _run_until(council, datetime(2027, 1, 12, 12, 0, tzinfo=UTC))
    digests = [m for m in council.outbox("send_mail") if m.payload["subject"].startswith("Daily")]
    days = [m.created_at.astimezone(LONDON).date().isoformat() for m in digests]
    assert days == ["2027-01-07", "2027-01-08", "2027-01-11", "2027-01-12"]
    assert "returned 0 of 3" in digests[0].payload["text"]


def _approve_all(council: Council, key: str, value: str) -> None:
    owner_card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    council.act(ANN, "submitReturns", submit_data(owner_card, **{f"value__{key}": value}))
    bob = council.cards_to("bob.ray@contoso.gov.uk")[-1]["card"]
    council.act(BOB, "approve", approval_data(bob, "approve"))
    tom = council.cards_to("ben.foster@contoso.gov.uk")[-1]["card"]
    council.act(BEN, "approve", approval_data(tom, "approve"))


def test_approvals_in_one_window_share_one_refresh() -> None:
    council = make_council()
    _approve_all(council, "CP001", "46")
    council.tick(minutes=2)
    _approve_all(council, "CP002", "19")
    assert len(council.outbox("write_back")) == 2
    _run_until(council, council.now + timedelta(minutes=20), timedelta(minutes=1))
    assert len(council.outbox("refresh")) == 1


def test_daily_budget_defers_refresh_to_tomorrow() -> None:
    council = make_council(daily_budget=1)
    _approve_all(council, "CP001", "46")
    _run_until(council, council.now + timedelta(minutes=20), timedelta(minutes=1))
    _approve_all(council, "CP002", "19")
    _run_until(council, council.now + timedelta(minutes=20), timedelta(minutes=1))
    assert len(council.outbox("refresh")) == 1  # the budget of one is spent today
    with council.store.transaction() as tx:
        deferred = [e for e in tx.list_audit() if e.action == "powerbi.refresh_deferred"]
    assert len(deferred) == 1
    _run_until(council, datetime(2026, 11, 6, 1, 0, tzinfo=UTC), timedelta(minutes=30))
    assert len(council.outbox("refresh")) == 2  # tomorrow's budget takes it


def _approval_cards(council: Council, email: str) -> list[str]:
    return [
        m.created_at.astimezone(LONDON).date().isoformat()
        for m in council.outbox("send_card")
        if m.payload["user"]["email"] == email and m.payload["card_id"].startswith("approval-")
    ]


def test_an_approver_timeout_long_past_reminds_first_and_escalates_at_the_next() -> None:
    council = make_council()
    ann_card = next(
        m.payload["card"]
        for m in council.outbox("send_card")
        if m.payload["user"]["email"] == "ann.lee@contoso.gov.uk"
    )
    council.act(ANN, "submitReturns", submit_data(ann_card, value__CP001="46"))
    assert _approval_cards(council, "bob.ray@contoso.gov.uk") == ["2026-11-05"]
    # Bob's step times out on Monday 9th; the service is down until Thursday 12th.
    council.now = datetime(2026, 11, 12, 10, 0, tzinfo=UTC)
    council.engine.fire_due_timers(worker="test", now=council.now)
    with council.store.transaction() as tx:
        audit = tx.list_audit()
    assert not [e for e in audit if e.action == "step.escalated"]
    (put_off,) = [e for e in audit if e.action == "timer.put_off"]
    assert (put_off.after or {})["step"] == "Supervisor check"
    assert _approval_cards(council, "bob.ray@contoso.gov.uk") == ["2026-11-05", "2026-11-12"]
    assert _approval_cards(council, "cat.doe@contoso.gov.uk") == []

    # Two working days on, still undecided: now his line manager is added.
    _run_until(council, datetime(2026, 11, 16, 10, 0, tzinfo=UTC))
    with council.store.transaction() as tx:
        assert [e for e in tx.list_audit() if e.action == "step.escalated"]
    assert _approval_cards(council, "cat.doe@contoso.gov.uk") == ["2026-11-16"]
