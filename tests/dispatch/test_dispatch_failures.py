"""When sending fails: wait for the service, park what cannot succeed, never lose a row."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dispatch_support import Bench, LatchedSession, MiniEngine, card, new_card_id
from sqlalchemy.exc import OperationalError

from m365perf.dispatch import DrainReport
from m365perf.messages import Outcome
from m365perf.sandbox.config import Budget, documented_budgets
from m365perf.sandbox.testing import running_sandbox
from m365perf.store import OutboxMessage, OutboxStatus, create_store
from m365perf.store.testing import memory_store


@pytest.fixture
def stingy(tmp_path: Path) -> Iterator[Bench]:
    """A sandbox whose mailboxes may send one message an hour."""
    budgets = {**documented_budgets(), "mailbox": Budget(limit=1, window_s=3600)}
    with running_sandbox(tmp_path, tls=False, budgets=budgets) as box:
        yield Bench(box)


def test_a_throttled_mail_waits_for_retry_after_and_is_not_lost(stingy: Bench) -> None:
    engine = MiniEngine(stingy)
    rows = [engine.send_mail(stingy.user(n)["mail"], f"Reminder {n}") for n in range(2)]

    assert engine.dispatcher.drain() == DrainReport(sent=1, retried=1)

    [throttled] = [r for r in rows if engine.status(r) == OutboxStatus.PENDING]
    [refusal] = [r for r in stingy.requests_since(0) if r["status"] == 429]
    row = engine.row(throttled)
    assert row.next_attempt_at == engine.now + timedelta(seconds=refusal["retry_after"])
    assert row.last_error is not None and "429" in row.last_error
    assert stingy.tokens.graph.token() not in row.last_error


def test_a_mail_for_a_mailbox_on_hold_is_rescheduled_without_asking_again(
    stingy: Bench,
) -> None:
    engine = MiniEngine(stingy)
    for n in range(2):
        engine.send_mail(stingy.user(n)["mail"], f"Reminder {n}")
    engine.dispatcher.drain()
    before = stingy.last_request_id()

    later = engine.send_mail(stingy.user(2)["mail"], "Reminder 2")
    assert engine.dispatcher.drain() == DrainReport(retried=1)

    assert stingy.requests_since(before) == []
    row = engine.row(later)
    assert row.status == OutboxStatus.PENDING
    assert row.next_attempt_at > engine.now + timedelta(minutes=30)


def test_a_row_still_throttled_at_its_last_attempt_is_parked(stingy: Bench) -> None:
    first = MiniEngine(stingy)
    first.send_mail(stingy.user(0)["mail"], "Uses the hour's allowance")
    first.dispatcher.drain()

    last_try = MiniEngine(stingy, max_attempts=1)
    row = last_try.send_mail(stingy.user(1)["mail"], "Too late")
    assert last_try.dispatcher.drain() == DrainReport(parked=1)

    error = last_try.row(row).last_error
    assert error is not None and error.startswith("gave up after 1 attempt: ")
    assert "429" in error


def test_a_bug_parks_its_row_with_the_error_and_the_other_rows_still_go(bench: Bench) -> None:
    token = bench.tokens.graph.token()

    def broken_lookup(card_id: str) -> Any:
        raise RuntimeError(f"delivery table unreadable (Authorization: Bearer {token})")

    engine = MiniEngine(bench, find_delivery=broken_lookup)
    update = engine.enqueue("update_card", "bot", {"card_id": new_card_id(), "card": card("x")})
    mail = engine.send_mail(bench.user(6)["mail"], "Still delivered")

    assert engine.dispatcher.drain() == DrainReport(sent=1, parked=1)

    assert engine.status(mail) == OutboxStatus.DONE
    parked = engine.row(update)
    assert parked.status == OutboxStatus.PARKED
    assert parked.last_error is not None
    assert parked.last_error.startswith("unexpected RuntimeError: delivery table unreadable")
    assert token not in parked.last_error


def test_a_store_connection_lost_while_sending_retries_the_row_instead_of_parking_it(
    bench: Bench,
) -> None:
    def lost_connection(card_id: str) -> Any:
        raise OperationalError("SELECT delivery", {}, Exception("server closed the connection"))

    engine = MiniEngine(bench, find_delivery=lost_connection)
    update = engine.enqueue("update_card", "bot", {"card_id": new_card_id(), "card": card("x")})

    assert engine.dispatcher.drain() == DrainReport(retried=1)

    row = engine.row(update)
    assert row.status == OutboxStatus.PENDING
    assert row.last_error is not None and "server closed the connection" in row.last_error


def test_a_send_the_engine_could_not_record_is_parked_not_sent_again(bench: Bench) -> None:
    class ForgetfulEngine(MiniEngine):
        def on_sent(self, message: OutboxMessage, outcome: Outcome, now: datetime) -> None:
            raise RuntimeError("database is locked")

    engine = ForgetfulEngine(bench)
    row = engine.send_mail(bench.user(7)["mail"], "Sent but unrecorded")

    assert engine.dispatcher.drain() == DrainReport(parked=1)

    error = engine.row(row).last_error
    assert error is not None and error.startswith("sent, but recording the delivery failed")
    assert "database is locked" in error


def test_an_unknown_kind_is_parked_saying_so(bench: Bench) -> None:
    engine = MiniEngine(bench)
    row = engine.enqueue("send_fax", "fax", {"to": "01234"})

    assert engine.dispatcher.drain() == DrainReport(parked=1)

    assert engine.row(row).last_error == "BadPayload: unknown outbox kind 'send_fax'"


def test_rows_that_break_the_contract_are_parked_saying_what_is_wrong(bench: Bench) -> None:
    engine = MiniEngine(bench)
    good = engine.send_mail(bench.user(9)["mail"], "Still delivered")
    payload = engine.card_payload(bench.user(9), "teams", "Broken")
    no_address = engine.enqueue(
        "send_card", "bot", {**payload, "user": {"id": bench.user(9)["id"], "name": "N"}}
    )
    not_a_card = engine.enqueue("send_card", "bot", {**payload, "card": {"type": "Poster"}})
    bad_card_id = engine.enqueue(
        "update_card", "bot", {"card_id": "approval-7-v1-x", "card": card("x")}
    )
    one_address = engine.enqueue(
        "send_mail", "mailbox:x", {"to": "a@contoso.gov.uk", "subject": "Hi", "text": "Hello"}
    )
    before = bench.last_request_id()

    assert engine.dispatcher.drain() == DrainReport(sent=1, parked=4)

    assert engine.status(good) == OutboxStatus.DONE
    assert [r["path"] for r in bench.requests_since(before)] == [
        f"/v1.0/users/{engine.settings.service_mailbox}/sendMail"
    ]
    assert engine.row(no_address).last_error == "BadPayload: bad send_card row: user.email: missing"
    assert engine.row(not_a_card).last_error == (
        "BadPayload: bad send_card row: card: not an Adaptive Card (its type is 'Poster')"
    )
    assert engine.row(bad_card_id).last_error == (
        "BadPayload: bad update_card row: card_id: 'approval-7-v1-x' is not an approval card id: "
        "expected approval-{return}-v{version}-s{step}-{approver}[-mail]"
    )
    assert engine.row(one_address).last_error == (
        "BadPayload: bad send_mail row: to: Input should be a valid list"
    )
    assert set(engine.sent) == {good}


def test_the_loop_carries_on_after_a_bug_and_stops_when_asked(bench: Bench) -> None:
    class CountingEngine(MiniEngine):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.changed = threading.Condition()

        def on_sent(self, message: OutboxMessage, outcome: Outcome, now: datetime) -> None:
            super().on_sent(message, outcome, now)
            with self.changed:
                self.changed.notify_all()

        def wait_sent(self, count: int) -> bool:
            with self.changed:
                return self.changed.wait_for(lambda: len(self.sent) >= count, timeout=30)

    def broken_lookup(card_id: str) -> Any:
        raise KeyError(card_id)

    engine = CountingEngine(bench, find_delivery=broken_lookup)
    bug = engine.enqueue("update_card", "bot", {"card_id": new_card_id(), "card": card("x")})
    engine.send_mail(bench.user(8)["mail"], "Before")
    stop = threading.Event()
    loop = threading.Thread(target=engine.dispatcher.run_forever, args=(stop, 0.01))
    loop.start()
    try:
        assert engine.wait_sent(1)
        engine.send_mail(bench.user(8)["mail"], "After")
        assert engine.wait_sent(2)
    finally:
        stop.set()
        loop.join(timeout=30)

    assert not loop.is_alive()
    assert engine.status(bug) == OutboxStatus.PARKED


@pytest.mark.parametrize("database", ["in-memory", "file"])
def test_mail_rows_go_out_four_at_a_time(bench: Bench, tmp_path: Path, database: str) -> None:
    store = (
        memory_store()
        if database == "in-memory"
        else create_store(f"sqlite:///{tmp_path / 'outbox.db'}", migrate=True)
    )
    # Each sendMail waits until four are in flight: sent one by one, they never meet.
    engine = MiniEngine(bench, store=store, session=LatchedSession("/sendMail", 4))
    rows = [engine.send_mail(bench.user(n)["mail"], f"Together {n}") for n in range(4)]

    assert engine.dispatcher.drain() == DrainReport(sent=4)
    assert all(engine.status(r) == OutboxStatus.DONE for r in rows)


def test_cards_to_teams_go_out_eight_at_a_time(bench: Bench) -> None:
    engine = MiniEngine(bench, session=LatchedSession("/activities", 8))
    for n in range(8):
        engine.send_card(bench.user(10 + n), "teams", f"Indicator {n}")

    assert engine.dispatcher.drain() == DrainReport(sent=8)


def test_a_concurrency_below_one_is_refused_naming_the_budget(bench: Bench) -> None:
    with pytest.raises(ValueError, match="'bot'"):
        MiniEngine(bench, concurrency={"bot": 0})


def test_an_update_waiting_for_its_card_outlasts_a_dead_workers_lease(bench: Bench) -> None:
    """The card's send may sit in a killed worker's lease: its update must not give up
    before that lease lapses, however many attempts it has made."""
    engine = MiniEngine(
        bench, max_attempts=1, lease=timedelta(minutes=5), give_up_after=timedelta(minutes=10)
    )
    update = engine.enqueue("update_card", "bot", {"card_id": new_card_id(), "card": card("x")})

    for _ in range(3):  # attempts past max_attempts, still within give_up_after
        assert engine.dispatcher.drain() == DrainReport(retried=1)
        engine.now += timedelta(minutes=2)
    assert engine.status(update) == OutboxStatus.PENDING

    engine.now += timedelta(minutes=5)  # 11 minutes since it was queued
    assert engine.dispatcher.drain() == DrainReport(parked=1)
    error = engine.row(update).last_error
    assert error is not None and error.startswith("gave up after 4 attempts: NotYet")
