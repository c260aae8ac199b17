"""sendMail into mailboxes (with the actionable card found), Teams chats via the Bot Connector."""

from __future__ import annotations

import json
from typing import Any

from sandbox_support import Wire

from m365perf.sandbox.config import DEFAULT_ORIGINATOR

CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "originator": DEFAULT_ORIGINATOR,
    "body": [{"type": "TextBlock", "text": "Council tax collection rate, 2025/26 Q1"}],
    "actions": [{"type": "Action.Execute", "title": "Submit", "verb": "submit"}],
}


def _html(card: dict[str, Any] | None, *, in_head: bool = True) -> str:
    script = (
        f'<script type="application/adaptivecard+json">{json.dumps(card)}</script>' if card else ""
    )
    head, body = (script, "") if in_head else ("", script)
    return f"<html><head>{head}</head><body>{body}<p>Your return is due.</p></body></html>"


def _send(wire: Wire, sender: str, to: list[str], html: str, **extra: Any) -> Any:
    return wire.graph(
        "POST",
        f"/users/{sender}/sendMail",
        json={
            "message": {
                "subject": "Performance return due",
                "body": {"contentType": "HTML", "content": html},
                "toRecipients": [{"emailAddress": {"address": a}} for a in to],
            },
            **extra,
        },
    )


def test_send_mail_delivers_to_the_recipient_and_finds_the_card(wire: Wire) -> None:
    response = _send(
        wire, "performance@contoso.gov.uk", ["hannah.price@contoso.gov.uk"], _html(CARD)
    )
    assert response.status_code == 202 and response.content == b""
    inbox = wire.admin("GET", "/mailboxes/hannah.price@contoso.gov.uk").json()["value"]
    mine = [m for m in inbox if m["card"] == CARD]
    assert len(mine) == 1
    assert mine[0]["from"]["emailAddress"]["address"] == "performance@contoso.gov.uk"
    sent = wire.admin(
        "GET", "/mailboxes/performance@contoso.gov.uk", params={"folder": "sentitems"}
    ).json()["value"]
    assert any(m["subject"] == "Performance return due" for m in sent)
    shown = wire.admin("GET", "/inbox/hannah.price@contoso.gov.uk/items").json()["items"]
    assert [i["card"] for i in shown if i["channel"] == "outlook"].count(CARD) == 1


def test_a_card_outside_the_head_is_not_an_actionable_message(wire: Wire) -> None:
    _send(
        wire,
        "performance@contoso.gov.uk",
        ["tom.whitfield@contoso.gov.uk"],
        _html(CARD, in_head=False),
        saveToSentItems=False,
    )
    inbox = wire.admin("GET", "/mailboxes/tom.whitfield@contoso.gov.uk").json()["value"]
    assert inbox and all(m["card"] is None for m in inbox)


def test_outlook_drops_a_card_from_an_unregistered_originator(wire: Wire) -> None:
    stranger = {**CARD, "originator": "not-registered"}
    _send(wire, "performance@contoso.gov.uk", ["grace.mensah@contoso.gov.uk"], _html(stranger))
    inbox = wire.admin("GET", "/mailboxes/grace.mensah@contoso.gov.uk").json()["value"]
    assert inbox[-1]["card"] is None
    assert "originator 'not-registered'" in inbox[-1]["cardNote"]
    assert wire.health()["settings"]["actionable_originator"] == DEFAULT_ORIGINATOR


def test_mail_from_an_unknown_mailbox_or_to_nobody_is_refused(wire: Wire) -> None:
    unknown = _send(wire, "ghost@contoso.gov.uk", ["hannah.price@contoso.gov.uk"], "<p>x</p>")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "ErrorInvalidUser"
    nobody = _send(wire, "performance@contoso.gov.uk", [], "<p>x</p>")
    assert nobody.status_code == 400
    assert nobody.json()["error"]["code"] == "ErrorInvalidRecipients"


def test_users_and_their_managers(wire: Wire) -> None:
    officer = wire.graph("GET", "/users/aisha.begum@contoso.gov.uk").json()
    assert officer["displayName"] == "Aisha Begum" and len(officer["id"]) == 36
    by_id = wire.graph("GET", f"/users/{officer['id']}").json()
    assert by_id["userPrincipalName"] == "aisha.begum@contoso.gov.uk"
    manager = wire.graph("GET", f"/users/{officer['id']}/manager").json()
    assert manager["@odata.type"] == "#microsoft.graph.user"
    assert manager["jobTitle"] == "Service Manager"
    top = wire.graph("GET", "/users/julia.ashworth@contoso.gov.uk/manager")
    assert top.status_code == 404
    assert top.json()["error"]["code"] == "Request_ResourceNotFound"
    selected = wire.graph("GET", "/users/aisha.begum@contoso.gov.uk", params={"$select": "id,mail"})
    assert set(selected.json()) == {"@odata.context", "id", "mail"}


def _conversation(wire: Wire, member: dict[str, str]) -> Any:
    config = wire.sandbox.config
    return wire.bot(
        "POST",
        "/conversations",
        json={
            "bot": {"id": f"28:{config.bot_app_id}", "name": "Performance returns"},
            "members": [member],
            "channelData": {"tenant": {"id": config.tenant_id}},
            "isGroup": False,
        },
    )


def test_a_chat_is_created_once_and_cards_are_sent_and_replaced(wire: Wire) -> None:
    user = wire.user("raj.patel@contoso.gov.uk")
    created = _conversation(wire, {"id": user["teams_id"]})
    assert created.status_code == 201
    cid = created.json()["id"]
    assert _conversation(wire, {"id": user["id"]}).json()["id"] == cid

    card = {"contentType": "application/vnd.microsoft.card.adaptive", "content": CARD}
    sent = wire.bot(
        "POST", f"/conversations/{cid}/activities", json={"type": "message", "attachments": [card]}
    )
    assert sent.status_code == 201
    activity_id = sent.json()["id"]
    replaced_card = {**CARD, "body": [{"type": "TextBlock", "text": "Thank you"}]}
    updated = wire.bot(
        "PUT",
        f"/conversations/{cid}/activities/{activity_id}",
        json={"type": "message", "attachments": [{**card, "content": replaced_card}]},
    )
    assert updated.status_code == 200 and updated.json() == {"id": activity_id}

    chats = wire.admin("GET", f"/chats/{user['upn']}").json()["value"]
    assert [c["conversationId"] for c in chats] == [cid]
    assert [a["card"] for a in chats[0]["activities"]] == [replaced_card]
    members = wire.bot("GET", f"/conversations/{cid}/members").json()
    assert members[0]["aadObjectId"] == user["id"]


def test_bot_connector_errors(wire: Wire) -> None:
    assert _conversation(wire, {"id": "29:nobody"}).status_code == 404
    missing = wire.bot("POST", "/conversations/a:nope/activities", json={"text": "hi"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ConversationNotFound"
    user = wire.user("raj.patel@contoso.gov.uk")
    cid = _conversation(wire, {"id": user["teams_id"]}).json()["id"]
    assert (
        wire.bot("PUT", f"/conversations/{cid}/activities/123", json={"text": "x"}).status_code
        == 404
    )
    assert (
        wire.bot("POST", f"/conversations/{cid}/activities", json={"type": "message"}).status_code
        == 400
    )
