"""Clicking a card as a user: the invoke Teams or Outlook would post to the bot.

The sandbox plays the Bot Connector: it builds an ``adaptiveCard/action`` invoke
(Universal Actions), signs it like the Bot Framework does, posts it to the
service's bot endpoint, and when the answer is a card, swaps the card in the
user's chat or mailbox - what the Teams and Outlook clients do.

``issuer`` picks who signs: the Bot Framework, or the tenant's Entra v2 or v1 issuer
(what a single-tenant bot is sent). Forgery switches (``sign_with``, ``audience``,
``service_url_claim``, ``expired``) let tests prove the service refuses what the Bot
Framework would never send.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, Field, model_validator

from m365perf.sandbox.auth import bot_framework_token
from m365perf.sandbox.core import Sandbox
from m365perf.sandbox.replies import Reply
from m365perf.sandbox.store import iso
from m365perf.sandbox.teams import CARD_CONTENT_TYPE, with_card

INVOKE_TIMEOUT_S = 30.0


class ActRequest(BaseModel):
    """What ``POST /_sandbox/act`` takes: who clicks what, and how to sign it."""

    model_config = ConfigDict(extra="forbid")

    user: str
    verb: str
    data: dict[str, Any] = Field(default_factory=dict)
    conversation_id: str | None = None
    activity_id: str | None = None
    message_id: str | None = None
    sign_with: str = Field(default="sandbox", pattern="^(sandbox|foreign)$")
    audience: str | None = None
    service_url_claim: str | None = None
    expired: bool = False
    issuer: str = Field(default="botframework", pattern="^(botframework|entra_v2|entra_v1)$")
    endpoint: str | None = None
    any_verb: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> ActRequest:
        if (self.message_id is None) == (self.conversation_id is None):
            raise ValueError("give either message_id (a mail) or conversation_id (a Teams chat)")
        return self


def find_actions(card: Any) -> list[dict[str, Any]]:
    """Every Action.Execute in a card, however deeply nested (ActionSet, ShowCard, fallback)."""
    found: list[dict[str, Any]] = []
    if isinstance(card, dict):
        if card.get("type") == "Action.Execute":
            found.append(card)
        for value in card.values():
            found.extend(find_actions(value))
    elif isinstance(card, list):
        for value in card:
            found.extend(find_actions(value))
    return found


def _problem(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


def act(sandbox: Sandbox, req: ActRequest) -> Reply:
    store, config = sandbox.store, sandbox.config
    user = store.user(req.user)
    if user is None:
        return _problem(404, f"no user {req.user!r} in the sandbox directory")
    card: dict[str, Any] | None
    if req.message_id is not None:
        message = store.message(req.message_id)
        if message is None or message.mailbox.lower() not in {user.mail.lower(), user.upn.lower()}:
            return _problem(404, f"no message {req.message_id!r} in {user.upn}'s mailbox")
        card, channel, target_id = message.card, "outlook", message.id
        conversation: dict[str, Any] = {"id": f"outlook:{message.id}", "tenantId": config.tenant_id}
    else:
        assert req.conversation_id is not None
        chat = store.conversation(req.conversation_id)
        if chat is None or chat["user_id"] != user.id:
            return _problem(404, f"no chat {req.conversation_id!r} for {user.upn}")
        activities = store.activities(req.conversation_id)
        if req.activity_id is not None:
            activities = [a for a in activities if a.id == req.activity_id]
        with_cards = [a for a in activities if a.card is not None]
        if not with_cards:
            return _problem(404, "no card to act on in that chat")
        row = with_cards[-1]
        card, channel, target_id = row.card, "msteams", row.id
        conversation = {
            "conversationType": "personal",
            "tenantId": config.tenant_id,
            "id": req.conversation_id,
        }
    if card is None:
        return _problem(409, "that message carries no actionable card")
    actions = [a for a in find_actions(card) if a.get("verb") == req.verb]
    if not actions and not req.any_verb:
        verbs = sorted({str(a.get("verb")) for a in find_actions(card)})
        return _problem(
            400, f"the card has no Action.Execute with verb {req.verb!r}; it has {verbs}"
        )
    action = actions[0] if actions else {"type": "Action.Execute", "verb": req.verb}
    card_data = action.get("data")
    data = {**(card_data if isinstance(card_data, dict) else {}), **req.data}
    invoke_action = {"type": "Action.Execute", "verb": req.verb, "data": data}
    if action.get("id"):
        invoke_action["id"] = action["id"]
    now = iso()
    invoke: dict[str, Any] = {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "id": f"f:{uuid.uuid4()}",
        "timestamp": now,
        "localTimestamp": now,
        "serviceUrl": config.service_url,
        "channelId": channel,
        "from": {
            "id": user.teams_id if channel == "msteams" else user.id,
            "name": user.display_name,
            "aadObjectId": user.id,
        },
        "conversation": conversation,
        "recipient": {"id": f"28:{config.bot_app_id}", "name": config.bot_name},
        "entities": [
            {
                "type": "clientInfo",
                "locale": "en-GB",
                "country": "GB",
                "platform": "Web",
                "timezone": "Europe/London",
            }
        ],
        "channelData": {"tenant": {"id": config.tenant_id}, "source": {"name": "message"}},
        "replyToId": target_id,
        "value": {"action": invoke_action, "trigger": "manual"},
        "locale": "en-GB",
    }
    token = bot_framework_token(
        sandbox,
        service_url=req.service_url_claim
        if req.service_url_claim is not None
        else config.service_url,
        audience=req.audience,
        expired=req.expired,
        foreign=req.sign_with == "foreign",
        issuer=req.issuer,
    )
    endpoint = req.endpoint or config.bot_endpoint
    try:
        response = requests.post(
            endpoint,
            json=invoke,
            headers={"Authorization": f"Bearer {token}"},
            timeout=INVOKE_TIMEOUT_S,
        )
    except requests.RequestException as exc:
        return _problem(502, f"could not reach the bot endpoint {endpoint}: {exc}")
    try:
        body: Any = response.json() if response.content else None
    except json.JSONDecodeError:
        body = response.text
    new_card = _returned_card(response.status_code, body)
    if new_card is not None:
        if channel == "outlook":
            store.set_message_card(target_id, new_card)
        else:
            with store.lock:
                current = store.activity(req.conversation_id or "", target_id)
                if current is not None:
                    current.card = new_card
                    current.activity = with_card(current.activity, new_card)
                    current.updated = iso()
                    store.put_activity(current)
    return Reply(
        200,
        {
            "status": response.status_code,
            "body": body,
            "card_replaced": new_card is not None,
            "invoke": invoke,
        },
    )


def _returned_card(status: int, body: Any) -> dict[str, Any] | None:
    if status != 200 or not isinstance(body, dict):
        return None
    if body.get("statusCode") != 200 or body.get("type") != CARD_CONTENT_TYPE:
        return None
    value = body.get("value")
    return value if isinstance(value, dict) else None
