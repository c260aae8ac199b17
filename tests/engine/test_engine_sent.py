"""What the engine does with the dispatcher's typed outcomes: deliveries, refresh polling."""

from __future__ import annotations

import pytest
from engine_support import Council, make_council

from m365perf.engine.publish import schedule_refresh
from m365perf.engine.sent import OutcomeMismatch
from m365perf.messages import (
    CardSent,
    CheckRefresh,
    MailSent,
    RefreshChecked,
    RefreshStarted,
    SendCard,
    parse_message,
)
from m365perf.messages.names import AuditAction
from m365perf.store import OutboxMessage


@pytest.fixture
def council() -> Council:
    return make_council()


def _fire(council: Council, minutes: int = 2) -> None:
    council.tick(minutes=minutes)
    council.engine.fire_due_timers(worker="test", now=council.now)


def _only(council: Council, kind: str) -> OutboxMessage:
    (row,) = council.outbox(kind)
    return row


def test_a_teams_card_sent_is_recorded_once_with_its_chat(council: Council) -> None:
    row = council.outbox("send_card")[0]
    card = parse_message(row.kind, row.payload)
    assert isinstance(card, SendCard)
    sent = CardSent(conversation_id="a:1", activity_id="act-1", service_url="https://smba/")

    council.engine.on_sent(row, sent, council.now)
    council.engine.on_sent(row, sent, council.now)  # a crash before mark_done: told twice

    with council.store.transaction() as tx:
        delivery = tx.find_delivery(str(card.card_id))
        chat = tx.find_conversation_ref(card.user.id)
        deliveries = tx.list_deliveries(user_id=card.user.id)
    assert delivery is not None and delivery.activity_id == "act-1"
    assert [d.card_id for d in deliveries] == [str(card.card_id)]
    assert chat is not None and chat.conversation_id == "a:1"


def test_an_outcome_of_another_kind_is_refused(council: Council) -> None:
    row = council.outbox("send_card")[0]

    with pytest.raises(OutcomeMismatch, match="is send_card but was reported as MailSent"):
        council.engine.on_sent(row, MailSent(), council.now)

    with council.store.transaction() as tx:
        assert tx.list_deliveries() == []


def test_a_refresh_is_polled_until_it_fails_and_the_team_is_told(council: Council) -> None:
    flow = next(iter(council.engine.flows.values()))
    with council.store.transaction() as tx:
        schedule_refresh(tx, council.engine.ctx, flow.id, now=council.now)
    _fire(council, minutes=20)
    refresh = _only(council, "refresh")

    council.engine.on_sent(refresh, RefreshStarted(request_id="req-9"), council.now)
    _fire(council)
    first = _only(council, "check_refresh")
    check = parse_message(first.kind, first.payload)
    assert isinstance(check, CheckRefresh)
    assert flow.powerbi is not None
    assert (check.request_id, check.poll, check.dataset) == ("req-9", 1, flow.powerbi.dataset)

    council.engine.on_sent(first, RefreshChecked(status="InProgress"), council.now)
    _fire(council)
    polls = [parse_message(r.kind, r.payload) for r in council.outbox("check_refresh")]
    assert [p.poll for p in polls if isinstance(p, CheckRefresh)] == [1, 2]

    second = council.outbox("check_refresh")[-1]
    council.engine.on_sent(second, RefreshChecked(status="Failed", error="{}"), council.now)
    _fire(council)
    assert len(council.outbox("check_refresh")) == 2  # a finished refresh is not polled again
    with council.store.transaction() as tx:
        actions = [e.action for e in tx.list_audit()]
    assert AuditAction.POWERBI_REFRESH_REQUESTED in actions
    assert AuditAction.POWERBI_REFRESH_FAILED in actions
    (mail,) = [m for m in council.outbox("send_mail") if "refresh failed" in m.payload["subject"]]
    assert "ended Failed" in mail.payload["text"]


def test_the_same_poll_timer_is_not_scheduled_twice(council: Council) -> None:
    flow = next(iter(council.engine.flows.values()))
    with council.store.transaction() as tx:
        schedule_refresh(tx, council.engine.ctx, flow.id, now=council.now)
    _fire(council, minutes=20)
    refresh = _only(council, "refresh")

    council.engine.on_sent(refresh, RefreshStarted(request_id="req-3"), council.now)
    council.engine.on_sent(refresh, RefreshStarted(request_id="req-3"), council.now)
    _fire(council)

    assert len(council.outbox("check_refresh")) == 1
