"""A return sent back to its owner is chased on a ladder of its own, from the day it was
sent back: after the cycle's reminders ran out, after the cycle closed, after a correction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from engine_support import (
    ANN,
    BEN,
    BOB,
    DAN,
    NADIA,
    Council,
    approval_data,
    card_text,
    make_council,
    submit_data,
)

from m365perf.engine.context import LONDON
from m365perf.store import CycleStatus, Return, ReturnStatus

FLOW = "monthly-corporate-kpis"
ANN_MAIL, BOB_MAIL, DAN_MAIL = (
    "ann.lee@contoso.gov.uk",
    "bob.ray@contoso.gov.uk",
    "dan.fox@contoso.gov.uk",
)
TEAM = "performance@contoso.gov.uk"


def _run_to(council: Council, until: datetime) -> None:
    while council.now < until:
        council.tick(hours=2)
        council.engine.fire_due_timers(worker="test", now=council.now)


def _ret(council: Council, key: str) -> Return:
    with council.store.transaction() as tx:
        return next(r for r in tx.list_returns() if r.indicator_key == key)


def _asks_for(card: dict[str, Any]) -> set[str]:
    """The indicators a card has inputs for (``value__CP001`` → ``CP001``)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ident = node.get("id")
            if isinstance(ident, str) and ident.startswith("value__"):
                found.add(ident.removeprefix("value__"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def _day(moment: datetime) -> str:
    return moment.astimezone(LONDON).date().isoformat()


def _requests(council: Council, email: str, key: str) -> list[tuple[datetime, dict[str, Any]]]:
    """Request cards to ``email`` asking for ``key``, with when they were queued."""
    return [
        (m.created_at, m.payload)
        for m in council.outbox("send_card")
        if m.payload["user"]["email"] == email
        and str(m.payload["card_id"]).startswith("request-")
        and key in _asks_for(m.payload["card"])
    ]


def _chases(council: Council, email: str, key: str, since: datetime) -> list[str]:
    """The days ``email`` was asked again for ``key`` after ``since``."""
    return [_day(at) for at, _ in _requests(council, email, key) if at > since]


def _not_returned_mails(council: Council) -> list[tuple[str, dict[str, Any]]]:
    return [
        (_day(m.created_at), m.payload)
        for m in council.outbox("send_mail")
        if m.payload["subject"].startswith("Not returned:")
    ]


def _reject(council: Council, who: Any, email: str, reason: str) -> None:
    card = council.cards_to(email)[-1]["card"]
    council.act(who, "reject", approval_data(card, "reject", reason=reason))


def test_a_return_sent_back_after_the_cycles_reminders_ran_out_is_chased_then_escalated() -> None:
    council = make_council()
    dan_card = council.cards_to(DAN_MAIL)[0]["card"]
    # Due Wednesday 11 November; the cycle's last chaser and its escalation are on Tue 17th.
    _run_to(council, datetime(2026, 11, 18, 10, 0, tzinfo=UTC))
    council.act(DAN, "submitReturns", submit_data(dan_card, value__CP003="120"))
    _reject(council, BOB, BOB_MAIL, "Wrong month.")
    sent_back_at = council.now
    _run_to(council, datetime(2026, 11, 25, 8, 0, tzinfo=UTC))  # the cycle closes at 09:00

    # Every two working days from Wednesday 18th, the flow's overdue interval, twice.
    assert _chases(council, DAN_MAIL, "CP003", sent_back_at) == ["2026-11-20", "2026-11-24"]
    for _, payload in _requests(council, DAN_MAIL, "CP003")[-2:]:
        assert _asks_for(payload["card"]) == {"CP003"}
        assert payload["subject"].startswith("Reminder: 1 return sent back to you")
        assert "Wrong month." in card_text(payload["card"])
    # Then, with the second, Dan's line manager hears why it is still not back.
    ((day, mail),) = _not_returned_mails(council)
    assert day == "2026-11-24"
    assert (mail["to"], mail["cc"]) == ([BOB_MAIL], [DAN_MAIL])
    assert "Dan Fox's Fly-tips reported for 2026-10" in mail["subject"]
    text = " ".join(mail["text"].split())
    assert "was sent back on Wednesday 18 November 2026 by Bob Ray" in text
    assert "Wrong month." in text
    assert "It has not been returned after 2 reminders." in text


def test_a_return_rejected_after_the_cycle_closed_is_chased_on_working_days() -> None:
    council = make_council(
        close={"all_approved": False, "working_days_after_due": 2, "late_returns": "correction"}
    )
    ann_card = council.cards_to(ANN_MAIL)[0]["card"]
    council.act(ANN, "submitReturns", submit_data(ann_card, value__CP001="46"))
    _run_to(council, datetime(2026, 12, 23, 10, 0, tzinfo=UTC))
    with council.store.transaction() as tx:
        assert tx.list_cycles()[0].status is CycleStatus.CLOSED  # since Friday 13 November
    _reject(council, BOB, BOB_MAIL, "Check the tonnage.")
    sent_back_at = council.now
    _run_to(council, datetime(2027, 1, 8, 12, 0, tzinfo=UTC))

    # From Wednesday 23 December, two working days each: Christmas Day (Friday) and the
    # Boxing Day holiday (Monday 28th) are skipped.
    assert _chases(council, ANN_MAIL, "CP001", sent_back_at) == ["2026-12-29", "2026-12-31"]
    ((day, mail),) = _not_returned_mails(council)
    assert (day, mail["to"]) == ("2026-12-31", [BOB_MAIL])
    assert "sent back on Wednesday 23 December 2026 by Bob Ray" in " ".join(mail["text"].split())
    # The chase still takes the figure, although the cycle is closed.
    chase = _requests(council, ANN_MAIL, "CP001")[-1][1]["card"]
    council.act(ANN, "submitReturns", submit_data(chase, value__CP001="47"))
    assert _ret(council, "CP001").status is ReturnStatus.RETURNED


@pytest.mark.parametrize(
    ("reminders", "days", "escalated_to"),
    [
        # No overdue interval: the first "before due" one (3), as many as escalation says.
        (
            {
                "before_due_working_days": [3, 1],
                "escalate": {"after_reminders": 3, "to": "performance_team"},
            },
            ["2026-11-19", "2026-11-24", "2026-11-27"],
            [TEAM],
        ),
        # Neither: every two working days, twice, and nobody is told.
        ({"before_due_working_days": [], "on_due": False}, ["2026-11-18", "2026-11-20"], None),
    ],
)
def test_a_sent_back_return_is_chased_on_the_flows_own_intervals(
    reminders: dict[str, Any], days: list[str], escalated_to: list[str] | None
) -> None:
    council = make_council(
        close={"all_approved": False, "working_days_after_due": 2}, reminders=reminders
    )
    ann_card = council.cards_to(ANN_MAIL)[0]["card"]
    council.act(ANN, "submitReturns", submit_data(ann_card, value__CP001="46"))
    _run_to(council, datetime(2026, 11, 16, 10, 0, tzinfo=UTC))  # Monday; closed on the 13th
    _reject(council, BOB, BOB_MAIL, "Check the tonnage.")
    sent_back_at = council.now
    _run_to(council, datetime(2026, 12, 18, 12, 0, tzinfo=UTC))

    assert _chases(council, ANN_MAIL, "CP001", sent_back_at) == days
    mails = _not_returned_mails(council)
    if escalated_to is None:
        assert mails == []
    else:
        ((day, mail),) = mails
        assert (day, mail["to"]) == (days[-1], escalated_to)
        assert "after 3 reminders" in mail["text"]


def test_a_resubmission_stops_the_chasing() -> None:
    council = make_council()
    ann_card = council.cards_to(ANN_MAIL)[0]["card"]
    council.act(ANN, "submitReturns", submit_data(ann_card, value__CP001="46"))
    _reject(council, BOB, BOB_MAIL, "Check the tonnage.")
    sent_back_at = council.now
    _run_to(council, datetime(2026, 11, 9, 12, 0, tzinfo=UTC))
    assert _chases(council, ANN_MAIL, "CP001", sent_back_at) == ["2026-11-09"]
    chase = _requests(council, ANN_MAIL, "CP001")[-1][1]["card"]
    council.act(ANN, "submitReturns", submit_data(chase, value__CP001="47"))
    assert _ret(council, "CP001").status is ReturnStatus.RETURNED

    _run_to(council, datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    assert _chases(council, ANN_MAIL, "CP001", sent_back_at) == ["2026-11-09"]
    assert _not_returned_mails(council) == []


def test_a_return_sent_back_again_gets_a_fresh_ladder_and_each_return_its_own() -> None:
    council = make_council()
    ann_card = council.cards_to(ANN_MAIL)[0]["card"]
    council.act(ANN, "submitReturns", submit_data(ann_card, value__CP001="46", value__CP002="19"))
    for payload in council.cards_to(BOB_MAIL):  # one card per return
        council.act(BOB, "reject", approval_data(payload["card"], "reject", reason="Check."))
    assert _ret(council, "CP001").status is _ret(council, "CP002").status is ReturnStatus.REJECTED
    first = council.now
    _run_to(council, datetime(2026, 11, 9, 12, 0, tzinfo=UTC))
    # Both of Ann's returns are chased on Monday, each on a card of its own.
    assert _chases(council, ANN_MAIL, "CP001", first) == ["2026-11-09"]
    assert _chases(council, ANN_MAIL, "CP002", first) == ["2026-11-09"]
    chase = _requests(council, ANN_MAIL, "CP001")[-1][1]["card"]
    council.act(ANN, "submitReturns", submit_data(chase, value__CP001="47"))
    _reject(council, BOB, BOB_MAIL, "Still wrong.")
    _run_to(council, datetime(2026, 11, 12, 12, 0, tzinfo=UTC))
    # Sent back again on Monday: chased again from then (Wednesday), the old ladder over.
    assert _chases(council, ANN_MAIL, "CP001", first) == ["2026-11-09", "2026-11-11"]
    assert "Still wrong." in card_text(_requests(council, ANN_MAIL, "CP001")[-1][1]["card"])


def test_a_correction_is_chased_too() -> None:
    council = make_council()
    ann = council.cards_to(ANN_MAIL)[0]["card"]
    council.act(ANN, "submitReturns", submit_data(ann, value__CP001="46", value__CP002="19"))
    dan = council.cards_to(DAN_MAIL)[0]["card"]
    council.act(DAN, "submitReturns", submit_data(dan, value__CP003="120"))
    for _ in range(3):
        for email, who in ((BOB_MAIL, BOB), ("ben.foster@contoso.gov.uk", BEN)):
            for payload in council.cards_to(email):
                council.act(who, "approve", approval_data(payload["card"], "approve"))
    with council.store.transaction() as tx:
        assert tx.list_cycles()[0].status is CycleStatus.CLOSED  # every return approved
    _run_to(council, datetime(2026, 11, 10, 10, 0, tzinfo=UTC))
    council.engine.request_correction(
        FLOW,
        "2026-10",
        "CP001",
        by=NADIA.user_id,
        reason="Contractor revised the tonnage",
        now=council.now,
    )
    corrected_at = council.now
    _run_to(council, datetime(2026, 11, 20, 12, 0, tzinfo=UTC))

    assert _chases(council, ANN_MAIL, "CP001", corrected_at) == ["2026-11-12", "2026-11-16"]
    subject = _requests(council, ANN_MAIL, "CP001")[-1][1]["subject"]
    assert subject.startswith("Reminder: 1 return reopened for correction")
    ((day, mail),) = _not_returned_mails(council)
    assert (day, mail["to"]) == ("2026-11-16", [BOB_MAIL])
    text = " ".join(mail["text"].split())
    assert "was reopened for correction on Tuesday 10 November 2026 by Nadia Clarke" in text
    assert "Contractor revised the tonnage" in text


def test_nobody_is_chased_twice_for_one_return_on_one_day() -> None:
    council = make_council()
    ann_card = council.cards_to(ANN_MAIL)[0]["card"]
    council.act(ANN, "submitReturns", submit_data(ann_card, value__CP001="46"))
    _reject(council, BOB, BOB_MAIL, "Check the tonnage.")  # Thursday 5th, before due
    sent_back_at = council.now
    _run_to(council, datetime(2026, 11, 24, 12, 0, tzinfo=UTC))

    # CP002 was never returned: the cycle's ladder. CP001 was sent back: its own.
    assert _chases(council, ANN_MAIL, "CP002", sent_back_at) == [
        "2026-11-09",
        "2026-11-11",
        "2026-11-13",
        "2026-11-17",
    ]
    assert _chases(council, ANN_MAIL, "CP001", sent_back_at) == ["2026-11-09", "2026-11-11"]
    asked = [
        (_day(at), key) for key in ("CP001", "CP002") for at, _ in _requests(council, ANN_MAIL, key)
    ]
    assert len(asked) == len(set(asked))
    # The cycle's escalation names only what was never returned; CP001 has its own.
    overdue = [
        m.payload
        for m in council.outbox("send_mail")
        if m.payload["subject"].startswith("Overdue: Ann Lee")
    ]
    assert len(overdue) == 1
    assert "Days to process new benefit claims" in overdue[0]["text"]
    assert "Household waste recycled" not in overdue[0]["text"]
    # Its escalation waits until the figures were due (Wednesday 11th): the day after.
    ((day, _),) = _not_returned_mails(council)
    assert day == "2026-11-12"


def test_after_downtime_a_sent_back_return_is_chased_once_and_the_ladder_starts_again() -> None:
    council = make_council(
        close={"all_approved": True, "working_days_after_due": 20, "late_returns": "correction"}
    )
    dan_card = council.cards_to(DAN_MAIL)[0]["card"]
    _run_to(council, datetime(2026, 11, 18, 10, 0, tzinfo=UTC))
    council.act(DAN, "submitReturns", submit_data(dan_card, value__CP003="120"))
    _reject(council, BOB, BOB_MAIL, "Wrong month.")
    sent_back_at = council.now

    # The service is down from then until Monday 30th: both chases (Friday 20th, Tuesday
    # 24th) and the escalation (24th, 09:05) have passed.
    council.now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    _run_to(council, datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    assert _chases(council, DAN_MAIL, "CP003", sent_back_at) == ["2026-11-30"]
    assert _not_returned_mails(council) == []

    # The ladder goes on from the chase that was sent: two working days, then the last
    # chase and, with it, the escalation.
    _run_to(council, datetime(2026, 12, 3, 8, 0, tzinfo=UTC))
    assert _chases(council, DAN_MAIL, "CP003", sent_back_at) == ["2026-11-30", "2026-12-02"]
    ((day, mail),) = _not_returned_mails(council)
    assert (day, mail["to"]) == ("2026-12-02", [BOB_MAIL])
