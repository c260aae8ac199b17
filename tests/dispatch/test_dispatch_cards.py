"""Cards to owners: Teams (opening the chat when needed), e-mail, and replacing a card."""

from __future__ import annotations

from datetime import timedelta

from dispatch_support import Bench, Delivery, MiniEngine, card, new_card_id

from m365perf.dispatch import DrainReport
from m365perf.messages import CardId, CardSent, CardUpdated
from m365perf.store import OutboxStatus


def test_a_teams_card_opens_the_chat_posts_the_card_and_reports_its_ids(bench: Bench) -> None:
    engine = MiniEngine(bench)
    owner = bench.user(0)
    row, _ = engine.send_card(owner, "teams", "Council tax collected")

    assert engine.dispatcher.drain() == DrainReport(sent=1)

    outcome = engine.sent[row]
    assert isinstance(outcome, CardSent)
    assert outcome.conversation_id and outcome.activity_id and outcome.message_id is None
    assert outcome.service_url == engine.settings.bot_connector_base_url
    posted = bench.chat_activity(owner["id"], outcome.activity_id)
    assert posted["card"]["body"][0]["text"] == "Council tax collected"
    assert posted["summary"] == "Please send your figure for Council tax collected."
    assert engine.status(row) == OutboxStatus.DONE


def test_a_known_chat_is_reused_rather_than_opened_again(bench: Bench) -> None:
    engine = MiniEngine(bench)
    owner = bench.user(1)
    first, _ = engine.send_card(owner, "teams", "Pupils at KS2")
    engine.dispatcher.drain()
    before = bench.last_request_id()

    second, _ = engine.send_card(owner, "teams", "Pupils at KS4")
    assert engine.dispatcher.drain() == DrainReport(sent=1)

    paths = [r["path"] for r in bench.requests_since(before)]
    assert not any(p.rstrip("/").endswith("/v3/conversations") for p in paths)
    first_sent, second_sent = engine.sent[first], engine.sent[second]
    assert isinstance(first_sent, CardSent) and isinstance(second_sent, CardSent)
    assert second_sent.conversation_id == first_sent.conversation_id
    assert second_sent.activity_id is not None
    bench.chat_activity(owner["id"], second_sent.activity_id)


def test_an_email_card_arrives_in_the_owners_inbox_with_the_card_embedded(bench: Bench) -> None:
    engine = MiniEngine(bench)
    owner = bench.user(2)
    row, _ = engine.send_card(owner, "email", "Homeless households")

    assert engine.dispatcher.drain() == DrainReport(sent=1)

    assert engine.sent[row] == CardSent(message_id=None)
    mail = [m for m in bench.inbox(owner["mail"]) if "Homeless households" in m["subject"]]
    assert len(mail) == 1
    assert mail[0]["card"]["body"][0]["text"] == "Homeless households"


def test_update_card_replaces_the_card_posted_in_teams(bench: Bench) -> None:
    engine = MiniEngine(bench)
    owner = bench.user(3)
    _, card_id = engine.send_card(owner, "teams", "Carbon emissions")
    engine.dispatcher.drain()

    update = engine.enqueue("update_card", "bot", {"card_id": card_id, "card": card("Approved")})
    assert engine.dispatcher.drain() == DrainReport(sent=1)

    assert engine.sent[update] == CardUpdated(replaced=True)
    delivery = engine.deliveries[card_id]
    assert delivery.activity_id is not None
    posted = bench.chat_activity(owner["id"], delivery.activity_id)
    assert posted["card"]["body"][0]["text"] == "Approved"


def test_an_update_claimed_with_its_card_goes_out_after_the_card(bench: Bench) -> None:
    engine = MiniEngine(bench)
    owner = bench.user(4)
    _, card_id = engine.send_card(owner, "teams", "Road defects")
    update = engine.enqueue("update_card", "bot", {"card_id": card_id, "card": card("Rejected")})

    assert engine.dispatcher.drain() == DrainReport(sent=2)

    assert engine.sent[update] == CardUpdated(replaced=True)
    activity_id = engine.deliveries[card_id].activity_id
    assert activity_id is not None
    assert bench.chat_activity(owner["id"], activity_id)["card"]["body"][0]["text"] == "Rejected"


def test_an_emailed_card_is_reported_as_not_replaced_without_sending(bench: Bench) -> None:
    engine = MiniEngine(bench)
    _, card_id = engine.send_card(bench.user(5), "email", "Waste recycled")
    engine.dispatcher.drain()
    before = bench.last_request_id()

    update = engine.enqueue("update_card", "bot", {"card_id": card_id, "card": card("Late")})
    assert engine.dispatcher.drain() == DrainReport(sent=1)

    assert engine.sent[update] == CardUpdated(replaced=False)
    assert bench.requests_since(before) == []


def test_a_teams_card_that_went_by_email_instead_is_not_replaced(bench: Bench) -> None:
    engine = MiniEngine(bench)
    card_id = new_card_id()
    engine.deliveries[str(CardId.parse(card_id).as_email())] = Delivery("email", None, None, None)
    before = bench.last_request_id()

    update = engine.enqueue("update_card", "bot", {"card_id": card_id, "card": card("Late")})
    assert engine.dispatcher.drain() == DrainReport(sent=1)

    assert engine.sent[update] == CardUpdated(replaced=False)
    assert bench.requests_since(before) == []


def test_an_update_for_a_card_not_yet_delivered_waits_instead_of_parking(bench: Bench) -> None:
    engine = MiniEngine(bench)
    update = engine.enqueue("update_card", "bot", {"card_id": new_card_id(), "card": card("x")})

    assert engine.dispatcher.drain() == DrainReport(retried=1)

    row = engine.row(update)
    assert row.status == OutboxStatus.PENDING
    # First retry: jittered backoff between half and all of backoff_base_s (2 s).
    assert engine.now + timedelta(seconds=1) <= row.next_attempt_at
    assert row.next_attempt_at <= engine.now + timedelta(seconds=2)
    assert row.last_error is not None and "no recorded delivery" in row.last_error


def _conversation_creates(bench: Bench, after: int) -> list[dict[str, object]]:
    return [
        r
        for r in bench.requests_since(after)
        if r["method"] == "POST" and str(r["path"]).rstrip("/").endswith("/v3/conversations")
    ]


def test_five_cards_to_one_person_in_one_drain_open_their_chat_once(bench: Bench) -> None:
    engine = MiniEngine(bench)  # eight bot workers: the five cards go out at once
    approver = bench.user(10)
    rows = [engine.send_card(approver, "teams", f"Digest part {n}")[0] for n in range(5)]
    before = bench.last_request_id()

    assert engine.dispatcher.drain() == DrainReport(sent=5)

    assert len(_conversation_creates(bench, before)) == 1
    chats = set()
    for row in rows:
        outcome = engine.sent[row]
        assert isinstance(outcome, CardSent) and outcome.activity_id
        chats.add(outcome.conversation_id)
        bench.chat_activity(approver["id"], outcome.activity_id)
    assert len(chats) == 1


def test_an_update_that_would_show_the_same_card_is_not_sent(bench: Bench) -> None:
    engine = MiniEngine(bench)
    owner = bench.user(11)
    _, card_id = engine.send_card(owner, "teams", "Waiting: 3 items")
    engine.dispatcher.drain()
    before = bench.last_request_id()

    same = engine.enqueue(
        "update_card", "bot", {"card_id": card_id, "card": card("Waiting: 3 items")}
    )
    assert engine.dispatcher.drain() == DrainReport(sent=1)

    assert engine.sent[same] == CardUpdated(replaced=True)
    assert not [r for r in bench.requests_since(before) if r["method"] == "PUT"]

    changed = engine.enqueue("update_card", "bot", {"card_id": card_id, "card": card("All done")})
    again = engine.enqueue("update_card", "bot", {"card_id": card_id, "card": card("All done")})
    engine.dispatcher.drain()
    engine.dispatcher.drain()

    assert engine.sent[changed] == engine.sent[again] == CardUpdated(replaced=True)
    puts = [r for r in bench.requests_since(before) if r["method"] == "PUT"]
    assert len(puts) == 1  # "All done" once; the second, identical update changed nothing
    delivery = engine.deliveries[card_id]
    assert delivery.activity_id is not None
    posted = bench.chat_activity(owner["id"], delivery.activity_id)
    assert posted["card"]["body"][0]["text"] == "All done"
