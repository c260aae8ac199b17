"""The web endpoints over a real engine, store and token verifier.

A click is believed only with a valid Bot Framework token, acts for the token's user,
and answers with the card that replaces the clicked one; the status page and health
check tell the performance team and the operator what is going on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric import rsa
from engine_support import (
    ANN,
    BOB,
    DAN,
    NADIA,
    approval_data,
    card_text,
    make_council,
    submit_data,
)
from web_support import BOT_APP_ID, SERVICE_URL, TENANT_ID, Site, click, make_site

from m365perf.engine import Caller
from m365perf.store import CardChannel, ReturnStatus, create_store
from m365perf.web.app import MAX_ACTIVITY_BYTES

HOSTILE_NAME = "<script>alert('owned')</script> Fly-tips"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def site(signing_key: rsa.RSAPrivateKey) -> Site:
    return make_site(make_council(), signing_key)


def ann_submits(site: Site, **inputs: str) -> dict[str, Any]:
    card = site.council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    return click(ANN.user_id, "submitReturns", submit_data(card, **inputs))


def status_of(site: Site, key: str) -> ReturnStatus:
    with site.council.store.transaction() as tx:
        found = tx.find_return(1, key)
        assert found is not None
        return found.status


# --------------------------------------------------------------------------- clicks


def test_signed_submit_records_the_return_and_replaces_the_card(site: Site) -> None:
    reply = site.post(ann_submits(site, value__CP001="46.5"))

    assert reply.status_code == 200
    body = reply.json()
    assert body["statusCode"] == 200
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert body["value"]["type"] == "AdaptiveCard"
    assert "Days to process new benefit claims" in card_text(body["value"])  # still to do
    assert status_of(site, "CP001") is ReturnStatus.RETURNED
    assert status_of(site, "CP002") is ReturnStatus.AWAITING


def test_click_in_a_personal_chat_remembers_where_to_reach_the_owner(site: Site) -> None:
    site.post(ann_submits(site, value__CP001="46.5"))

    with site.council.store.transaction() as tx:
        ref = tx.find_conversation_ref(ANN.user_id)
    assert ref is not None
    assert ref.conversation_id == f"a:1-{ANN.user_id}"
    assert ref.service_url == SERVICE_URL.rstrip("/")
    assert ref.tenant_id == TENANT_ID


@pytest.mark.parametrize(
    ("channel", "conversation_type"), [("msteams", "groupChat"), ("outlook", "personal")]
)
def test_click_elsewhere_acts_but_remembers_no_conversation(
    site: Site, channel: str, conversation_type: str
) -> None:
    activity = ann_submits(site, value__CP001="46.5")
    activity["channelId"] = channel
    activity["conversation"]["conversationType"] = conversation_type

    assert site.post(activity).json()["statusCode"] == 200

    assert status_of(site, "CP001") is ReturnStatus.RETURNED
    with site.council.store.transaction() as tx:
        assert tx.find_conversation_ref(ANN.user_id) is None


@pytest.mark.parametrize(
    "token_for",
    [
        lambda site, other: site.token(other),
        lambda site, other: site.token(exp=site.council.now.timestamp() - 3600),
        lambda site, other: site.token(aud="some-other-bot"),
        lambda site, other: site.token(serviceurl="https://smba.evil.example/uk/"),
        lambda site, other: "not-a-jwt",
    ],
    ids=["forged-signature", "expired", "wrong-audience", "wrong-serviceurl", "garbage"],
)
def test_unproven_click_is_refused_and_changes_nothing(
    site: Site, other_key: rsa.RSAPrivateKey, token_for: Any
) -> None:
    activity = ann_submits(site, value__CP001="46.5")
    before = site.snapshot()

    reply = site.post(activity, token=token_for(site, other_key))

    assert reply.status_code == 401
    assert reply.json() == {"error": "unauthorized"}
    assert site.snapshot() == before


def test_click_without_a_token_is_refused(site: Site) -> None:
    before = site.snapshot()

    reply = site.client.post("/api/messages", json=ann_submits(site, value__CP001="46.5"))

    assert reply.status_code == 401
    assert site.snapshot() == before


def test_click_while_the_keys_cannot_be_fetched_asks_to_retry(site: Site) -> None:
    site.directory.down = True
    before = site.snapshot()

    reply = site.post(ann_submits(site, value__CP001="46.5"))

    assert reply.status_code == 503
    assert site.snapshot() == before


def test_card_naming_another_owner_is_forbidden_and_changes_nothing(site: Site) -> None:
    """Ann's genuine token on Dan's card: the token's user acts, not the card's."""
    dan_card = site.council.cards_to("dan.fox@contoso.gov.uk")[0]["card"]
    before = site.snapshot()

    reply = site.post(click(ANN.user_id, "submitReturns", submit_data(dan_card, value__CP003="7")))

    assert reply.status_code == 200
    body = reply.json()
    assert body["statusCode"] == 403
    assert body["type"] == "application/vnd.microsoft.error"
    assert body["value"]["code"] == "Forbidden"
    assert "someone else" in body["value"]["message"]
    returns, outbox, audit, _ = site.snapshot()
    assert (returns, outbox, audit) == before[:3]
    assert status_of(site, "CP003") is ReturnStatus.AWAITING


def test_forwarded_card_clicked_by_someone_else_is_forbidden(site: Site) -> None:
    """Ann's card forwarded to Dan: the click is Dan's, whatever the card's data says."""
    activity = ann_submits(site, value__CP001="46.5")
    activity["from"]["aadObjectId"] = DAN.user_id

    body = site.post(activity).json()

    assert body["statusCode"] == 403
    assert status_of(site, "CP001") is ReturnStatus.AWAITING


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ({"type": "Action.Execute", "verb": "launchRocket", "data": {}}, 400),
        ({"type": "Action.Execute", "data": {}}, 400),
        ({"type": "Action.Execute", "verb": "submitReturns", "data": "value=1"}, 400),
        ({"type": "Action.Execute", "verb": "submitReturns", "data": {"cycle_id": "x"}}, 400),
    ],
    ids=["unknown-verb", "no-verb", "data-not-object", "data-not-ours"],
)
def test_malformed_action_gets_a_bad_request_card_error(
    site: Site, action: dict[str, Any], code: int
) -> None:
    activity = click(ANN.user_id, "submitReturns", {})
    activity["value"]["action"] = action
    before = site.snapshot()

    body = site.post(activity).json()

    assert (body["statusCode"], body["value"]["code"]) == (code, "BadRequest")
    assert body["value"]["message"]
    assert site.snapshot()[:3] == before[:3]


def test_click_on_a_cycle_that_does_not_exist_is_not_found(site: Site) -> None:
    card = site.council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    data = {**submit_data(card, value__CP001="46.5"), "cycle_id": "99"}

    body = site.post(click(ANN.user_id, "submitReturns", data)).json()

    assert (body["statusCode"], body["value"]["code"]) == (404, "NotFound")


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2, 3]", b"\xff\xfe", b""],
    ids=["broken", "list", "binary", "empty"],
)
def test_body_that_is_not_a_json_object_is_a_bad_request(site: Site, body: bytes) -> None:
    reply = site.client.post(
        "/api/messages",
        content=body,
        headers={"Authorization": f"Bearer {site.token()}", "Content-Type": "application/json"},
    )

    assert reply.status_code == 400


def test_oversized_body_is_refused_unread(site: Site) -> None:
    activity = ann_submits(site, value__CP001="46.5")
    activity["padding"] = "x" * MAX_ACTIVITY_BYTES
    before = site.snapshot()

    assert site.post(activity).status_code == 413
    assert site.snapshot() == before


def test_other_invokes_are_not_implemented(site: Site) -> None:
    activity = click(ANN.user_id, "submitReturns", {})
    activity["name"] = "task/fetch"

    assert site.post(activity).status_code == 501


def test_chat_message_is_acknowledged_and_ignored(site: Site) -> None:
    message = click(ANN.user_id, "submitReturns", {})
    message.update(type="message", text="hello?")
    del message["name"], message["value"]
    before = site.snapshot()

    reply = site.post(message)

    assert reply.status_code == 200
    assert reply.content == b""
    assert site.snapshot() == before


def _installed(user_id: str, conversation_type: str) -> dict[str, Any]:
    activity = click(user_id, "", {}, conversation_type=conversation_type)
    activity.update(type="conversationUpdate", membersAdded=[{"id": f"28:{BOT_APP_ID}"}])
    del activity["name"], activity["value"]
    return activity


def test_installing_the_bot_for_oneself_remembers_the_chat(site: Site) -> None:
    reply = site.post(_installed(DAN.user_id, "personal"))

    assert reply.status_code == 200
    with site.council.store.transaction() as tx:
        ref = tx.find_conversation_ref(DAN.user_id)
    assert ref is not None and ref.conversation_id == f"a:1-{DAN.user_id}"


def test_adding_the_bot_to_a_group_chat_remembers_nothing(site: Site) -> None:
    assert site.post(_installed(DAN.user_id, "groupChat")).status_code == 200

    with site.council.store.transaction() as tx:
        assert tx.find_conversation_ref(DAN.user_id) is None


def test_tokens_never_reach_the_logs(
    site: Site, other_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good, forged = site.token(), site.token(other_key)

    site.post(ann_submits(site, value__CP001="46.5"), token=good)
    site.post(ann_submits(site, value__CP002="19"), token=forged)

    for token in (good, forged):
        assert token.rsplit(".", 1)[1] not in caplog.text
        assert token.split(".", 1)[0] + "." not in caplog.text


# --------------------------------------------------------------------------- status and health


def test_status_refuses_an_anonymous_visitor(site: Site) -> None:
    page = site.client.get("/status", follow_redirects=False)
    report = site.client.get("/status.json")

    assert page.status_code == 302
    assert page.headers["location"] == "/signin?next=%2Fstatus"
    assert report.status_code == 401
    assert "cycles" not in report.text


def test_status_refuses_someone_signed_in_outside_the_staff_group(site: Site) -> None:
    site.sign_in(BOB.user_id, BOB.name)

    page = site.client.get("/status", follow_redirects=False)
    report = site.client.get("/status.json")

    assert page.status_code == 403
    assert "signed in as Bob Ray" in page.text and "Monthly corporate" not in page.text
    assert report.status_code == 403 and "cycles" not in report.text


def test_a_forged_session_cookie_signs_nobody_in(site: Site) -> None:
    site.sign_in(NADIA.user_id, NADIA.name, staff=True)
    sealed = site.client.cookies["m365perf_session"]
    site.client.cookies.set("m365perf_session", sealed[:-4] + "AAAA")

    assert site.client.get("/status.json").status_code == 401


def test_health_reports_the_outbox(site: Site) -> None:
    store = site.council.store
    (claimed,) = store.claim_outbox(site.council.now, 1, "test-worker")
    store.park(claimed.id or 0, "400 Bad Request", now=site.council.now)

    reply = site.client.get("/health")

    assert reply.status_code == 200
    assert reply.json() == {  # Ann's and Dan's request cards were queued; one is parked
        "status": "ok",
        "outbox": {"pending": 1, "in_flight": 0, "done": 0, "parked": 1},
    }


def test_unreadable_store_is_unhealthy(signing_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    site = make_site(make_council(create_store(url, migrate=True)), signing_key)
    site.sign_in(NADIA.user_id, NADIA.name, staff=True)
    broken = sqlalchemy.create_engine(url)
    with broken.begin() as conn:
        conn.execute(sqlalchemy.text("DROP TABLE outbox"))
    broken.dispose()

    assert site.client.get("/health").status_code == 503
    assert site.client.get("/status").status_code == 503
    assert site.client.get("/status.json").status_code == 503


def test_oversized_body_without_a_length_is_cut_off(site: Site) -> None:
    """A chunked upload declares no length; reading stops once it passes the limit."""
    chunk = b" " * 65536
    chunks = iter([b'{"type": "invoke", "padding": "', *[chunk] * 5, b'"}'])

    reply = site.client.post(
        "/api/messages",
        content=chunks,
        headers={"Authorization": f"Bearer {site.token()}", "Content-Type": "application/json"},
    )

    assert reply.status_code == 413


# --------------------------------------------------------------------------- forged data

BOB_EMAIL = "bob.ray@contoso.gov.uk"


def _red_returned(site: Site) -> dict[str, Any]:
    """Ann returns CP001 red; the data on Bob's approval card (the first step)."""
    site.post(ann_submits(site, value__CP001="30", comment__CP001="Contract change."))
    return approval_data(site.council.cards_to(BOB_EMAIL)[-1]["card"], "approve")


def _post_raw(site: Site, activity: dict[str, Any]) -> Any:
    """Post as a forger can: with lone surrogates escaped in the JSON, as json.dumps does."""
    return site.client.post(
        "/api/messages",
        content=json.dumps(activity).encode("ascii"),
        headers={"Authorization": f"Bearer {site.token()}", "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    ("who", "verb", "forged", "answer"),
    [
        (BOB, "approve", {"return_id": str(10**19)}, 400),
        (BOB, "approve", {"version": 10**19}, 400),
        (BOB, "approve", {"step_index": 10**19}, 400),
        (BOB, "approve", {"step_index": -1}, 400),
        (BOB, "reject", {"reason": "x" * 30_000}, 200),
        (BOB, "reject", {"reason": {"nested": "object"}}, 400),
        (BOB, "reject", {"reason": "Wrong\u0000"}, 400),
        (BOB, "reject", {"reason": "Wrong\ud800"}, 400),
        (NADIA, "approve", {"step_index": 2, "card_id": "x" * 40_000}, 200),
        (NADIA, "approve", {"step_index": 2, "card_id": "\udc00"}, 400),
    ],
    ids=[
        "return_id 10**19",
        "version 10**19",
        "step_index 10**19",
        "step_index -1",
        "30 kB reason",
        "object reason",
        "NUL in reason",
        "surrogate in reason",
        "40 kB card_id out of turn",
        "surrogate card_id",
    ],
)
def test_a_forged_approval_click_is_answered_on_the_card_and_changes_nothing(
    site: Site,
    caplog: pytest.LogCaptureFixture,
    who: Caller,
    verb: str,
    forged: dict[str, Any],
    answer: int,
) -> None:
    data = {**_red_returned(site), **forged}
    before = site.snapshot()

    reply = _post_raw(site, click(who.user_id, verb, data))

    assert reply.status_code == 200
    body = reply.json()
    assert body["statusCode"] == answer
    if answer == 200:
        assert body["type"] == "application/vnd.microsoft.card.adaptive"
        assert "nothing changed" in card_text(body["value"]).lower()
    else:
        assert body["value"]["code"] == "BadRequest" and body["value"]["message"]
    assert site.snapshot()[:3] == before[:3]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("verb", "forged", "answer"),
    [
        ("submitReturns", {"cycle_id": str(10**19)}, 400),
        ("submitReturns", {"card_id": "x" * 40_000, "value__CP002": "x"}, 200),
        ("submitReturns", {"value__CP002": "19", "comment__CP002": "c" * 60_000}, 200),
        ("submitReturns", {"value__CP002": "9" * 5000}, 200),
        ("submitReturns", {"value__CP002": "19", "comment__CP002": "\ud800"}, 400),
        ("submitReturns", {"value__CP002": {"nested": ["json"]}}, 400),
        ("submitReturns", {"part": 10**19}, 400),
        ("showRequest", {"cycle_id": str(10**19)}, 400),
        ("showRequest", {"card_id": "x" * 40_000}, 200),
        ("showRequest", {"card_id": "\ud800"}, 400),
    ],
    ids=[
        "submit cycle_id 10**19",
        "submit 40 kB card_id",
        "submit 60 kB comment",
        "submit 5000-digit value",
        "submit surrogate comment",
        "submit object value",
        "submit part 10**19",
        "show cycle_id 10**19",
        "show 40 kB card_id",
        "show surrogate card_id",
    ],
)
def test_a_forged_owner_click_is_answered_and_changes_nothing(
    site: Site, caplog: pytest.LogCaptureFixture, verb: str, forged: dict[str, Any], answer: int
) -> None:
    card = site.council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    data = {**submit_data(card), **forged} if verb == "submitReturns" else {}
    if verb == "showRequest":
        data = {"cycle_id": "1", "owner_id": ANN.user_id, **forged}
    site.post(click(ANN.user_id, "showRequest", {"cycle_id": "1", "owner_id": ANN.user_id}))
    before = site.snapshot()

    reply = _post_raw(site, click(ANN.user_id, verb, data))

    assert reply.status_code == 200
    body = reply.json()
    assert body["statusCode"] == answer
    if answer == 200:
        assert body["type"] == "application/vnd.microsoft.card.adaptive"
        assert "Days to process new benefit claims" in card_text(body["value"])
        assert len(reply.content) < 40_000
    else:
        assert body["value"]["code"] == "BadRequest" and body["value"]["message"]
    assert site.snapshot() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_body_nested_too_deep_is_a_bad_request(site: Site) -> None:
    depth = 100_000
    body = b'{"type": "invoke", "value": ' + b"[" * depth + b"]" * depth + b"}"

    reply = site.client.post(
        "/api/messages",
        content=body,
        headers={"Authorization": f"Bearer {site.token()}", "Content-Type": "application/json"},
    )

    assert reply.status_code == 400


# ----------------------------------------------------------- Action.Submit fallback


def _submit_click(user_id: str, card: dict[str, Any], **inputs: str) -> dict[str, Any]:
    """What an older Teams client sends for the card's Action.Submit fallback: a message
    whose value is the fallback's data (verb included) with the inputs merged in."""
    activity = click(user_id, "submitReturns", {})
    del activity["name"]
    fallback = card["actions"][0]["fallback"]
    assert fallback["type"] == "Action.Submit"
    activity.update(type="message", id="f:fallback-1", value={**fallback["data"], **inputs})
    return activity


def _delivered(site: Site, card: dict[str, Any], user_id: str) -> str:
    """Record the card as the dispatcher would once Teams took it; its id."""
    card_id = str(card["actions"][0]["data"]["card_id"])
    with site.council.store.transaction() as tx:
        tx.record_delivery(
            card_id,
            user_id=user_id,
            channel=CardChannel.TEAMS,
            subject_type="cycle",
            subject_id=1,
            now=site.council.now,
            conversation_id=f"a:1-{user_id}",
            activity_id="1:activity",
            service_url=SERVICE_URL,
        )
    return card_id


def _updates(site: Site) -> list[dict[str, Any]]:
    return [m.payload for m in site.council.outbox("update_card")]


def test_an_action_submit_fallback_click_is_acted_on_and_its_card_replaced(site: Site) -> None:
    card = site.council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    card_id = _delivered(site, card, ANN.user_id)

    reply = site.post(_submit_click(ANN.user_id, card, value__CP001="46.5"))

    assert reply.status_code == 200
    assert status_of(site, "CP001") is ReturnStatus.RETURNED  # acted on like Execute
    (update,) = _updates(site)
    assert update["card_id"] == card_id  # the clicked card shows the answer
    assert "Days to process new benefit claims" in card_text(update["card"])  # still to do


def test_a_refused_fallback_click_says_why_on_the_clicked_card(site: Site) -> None:
    card = site.council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    _delivered(site, card, ANN.user_id)
    activity = _submit_click(ANN.user_id, card, value__CP001="46.5")
    activity["value"]["verb"] = "launchRockets"

    assert site.post(activity).status_code == 200

    assert status_of(site, "CP001") is ReturnStatus.AWAITING
    (update,) = _updates(site)
    text = card_text(update["card"])
    assert "This click changed nothing" in text and "unknown verb" in text


def test_a_fallback_click_naming_someone_elses_card_changes_nothing(site: Site) -> None:
    card = site.council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    _delivered(site, card, ANN.user_id)
    before = site.snapshot()

    reply = site.post(_submit_click(BOB.user_id, card, value__CP001="1"))

    assert reply.status_code == 200
    assert status_of(site, "CP001") is ReturnStatus.AWAITING
    assert _updates(site) == []  # Ann's card is not replaced with Bob's refusal
    after = site.snapshot()
    assert (after[0], after[1]) == (before[0], before[1])  # no return, no outbox row
