"""Acting as a user: a signed adaptiveCard/action invoke reaches the bot, its card replaces."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
import requests
from sandbox_support import Wire

from m365perf.sandbox.config import DEFAULT_ORIGINATOR

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
REQUEST_CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "originator": DEFAULT_ORIGINATOR,
    "body": [
        {"type": "TextBlock", "text": "Council tax collection rate"},
        {"type": "Input.Number", "id": "value"},
    ],
    "actions": [
        {
            "type": "Action.Execute",
            "title": "Submit",
            "verb": "submit",
            "data": {"returnId": "R-17", "version": 3},
        }
    ],
}
THANKS_CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "Thank you, your return is with your supervisor."}],
}


@dataclass
class Bot:
    """A tiny bot endpoint that validates tokens the way the Bot Framework says to."""

    url: str
    app_id: str
    metadata_url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def check(self, authorization: str, activity: dict[str, Any]) -> str | None:
        metadata = requests.get(self.metadata_url, timeout=10).json()
        token = authorization.removeprefix("Bearer ")
        try:
            signing = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                signing.key,
                algorithms=metadata["id_token_signing_alg_values_supported"],
                audience=self.app_id,
                issuer=metadata["issuer"],
                leeway=300,
            )
        except jwt.PyJWTError as exc:
            return type(exc).__name__
        if claims.get("serviceurl") != activity.get("serviceUrl"):
            return "serviceurl claim does not match the activity"
        keys = requests.get(metadata["jwks_uri"], timeout=10).json()["keys"]
        key = next(k for k in keys if k["kid"] == signing.key_id)
        if activity.get("channelId") not in key.get("endorsements", []):
            return "key not endorsed for this channel"
        return None


@pytest.fixture(scope="module")
def bot(wire: Wire) -> Iterator[Bot]:
    holder: dict[str, Bot] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            activity = json.loads(self.rfile.read(length))
            problem = holder["bot"].check(self.headers.get("Authorization", ""), activity)
            if problem is not None:
                holder["bot"].refused.append(problem)
                self._reply(401, {"error": problem})
                return
            holder["bot"].received.append(activity)
            self._reply(200, {"statusCode": 200, "type": CARD_TYPE, "value": THANKS_CARD})

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    health = wire.health()
    holder["bot"] = Bot(
        url=f"http://127.0.0.1:{server.server_address[1]}/api/messages",
        app_id=health["bot_app_id"],
        metadata_url=health["settings"]["openid_metadata_url"],
    )
    yield holder["bot"]
    server.shutdown()
    server.server_close()


def _chat_with_card(wire: Wire, upn: str) -> tuple[dict[str, Any], str, str]:
    user = wire.user(upn)
    config = wire.sandbox.config
    cid = wire.bot(
        "POST",
        "/conversations",
        json={
            "bot": {"id": f"28:{config.bot_app_id}"},
            "members": [{"id": user["teams_id"]}],
            "channelData": {"tenant": {"id": config.tenant_id}},
        },
    ).json()["id"]
    aid = wire.bot(
        "POST",
        f"/conversations/{cid}/activities",
        json={
            "type": "message",
            "attachments": [{"contentType": CARD_TYPE, "content": REQUEST_CARD}],
        },
    ).json()["id"]
    return user, cid, aid


def test_a_teams_click_reaches_the_bot_signed_and_the_reply_replaces_the_card(
    wire: Wire, bot: Bot
) -> None:
    user, cid, aid = _chat_with_card(wire, "hannah.price@contoso.gov.uk")
    result = wire.admin(
        "POST",
        "/act",
        json={
            "user": user["upn"],
            "conversation_id": cid,
            "activity_id": aid,
            "verb": "submit",
            "data": {"value": 97.1},
            "endpoint": bot.url,
        },
    ).json()
    assert result["status"] == 200 and result["card_replaced"] is True
    invoke = bot.received[-1]
    assert invoke["type"] == "invoke" and invoke["name"] == "adaptiveCard/action"
    assert invoke["channelId"] == "msteams"
    assert invoke["value"]["action"] == {
        "type": "Action.Execute",
        "verb": "submit",
        "data": {"returnId": "R-17", "version": 3, "value": 97.1},
    }
    assert invoke["from"]["aadObjectId"] == user["id"]
    assert invoke["from"]["id"] == user["teams_id"]
    assert invoke["conversation"]["id"] == cid and invoke["replyToId"] == aid
    assert invoke["serviceUrl"] == f"{wire.base}/botframework/"
    chat = wire.admin("GET", f"/chats/{user['upn']}").json()["value"][0]
    assert chat["activities"][-1]["card"] == THANKS_CARD


def test_an_outlook_click_comes_from_the_outlook_channel(wire: Wire, bot: Bot) -> None:
    html = (
        '<html><head><script type="application/adaptivecard+json">'
        f"{json.dumps(REQUEST_CARD)}</script></head><body>Due Friday.</body></html>"
    )
    wire.graph(
        "POST",
        "/users/performance@contoso.gov.uk/sendMail",
        json={
            "message": {
                "subject": "Return due",
                "body": {"contentType": "HTML", "content": html},
                "toRecipients": [{"emailAddress": {"address": "liam.fletcher@contoso.gov.uk"}}],
            },
            "saveToSentItems": False,
        },
    )
    mail = wire.admin("GET", "/mailboxes/liam.fletcher@contoso.gov.uk").json()["value"][-1]
    result = wire.admin(
        "POST",
        "/act",
        json={
            "user": "liam.fletcher@contoso.gov.uk",
            "message_id": mail["id"],
            "verb": "submit",
            "data": {"value": 12},
            "endpoint": bot.url,
        },
    ).json()
    assert result["status"] == 200
    assert bot.received[-1]["channelId"] == "outlook"
    again = wire.admin("GET", "/mailboxes/liam.fletcher@contoso.gov.uk").json()["value"][-1]
    assert again["card"] == THANKS_CARD


@pytest.mark.parametrize(
    ("forgery", "reason"),
    [
        ({"sign_with": "foreign"}, "InvalidSignatureError"),
        ({"expired": True}, "ExpiredSignatureError"),
        ({"audience": "someone-elses-bot"}, "InvalidAudienceError"),
        ({"service_url_claim": "https://evil.example/"}, "serviceurl claim does not match"),
    ],
)
def test_forged_invokes_are_refused_by_a_validating_bot(
    wire: Wire, bot: Bot, forgery: dict[str, Any], reason: str
) -> None:
    user, cid, _ = _chat_with_card(wire, "tom.whitfield@contoso.gov.uk")
    result = wire.admin(
        "POST",
        "/act",
        json={
            "user": user["upn"],
            "conversation_id": cid,
            "verb": "submit",
            "endpoint": bot.url,
            **forgery,
        },
    ).json()
    assert result["status"] == 401 and result["card_replaced"] is False
    assert bot.refused[-1].startswith(reason)
    chat = wire.admin("GET", f"/chats/{user['upn']}").json()["value"][0]
    assert chat["activities"][-1]["card"] == REQUEST_CARD


def test_acting_on_a_verb_the_card_lacks_or_someone_elses_chat_is_refused(
    wire: Wire, bot: Bot
) -> None:
    user, cid, _ = _chat_with_card(wire, "emma.doyle@contoso.gov.uk")
    wrong_verb = wire.admin(
        "POST",
        "/act",
        json={"user": user["upn"], "conversation_id": cid, "verb": "approve", "endpoint": bot.url},
    )
    assert wrong_verb.status_code == 400 and "submit" in wrong_verb.json()["error"]
    not_theirs = wire.admin(
        "POST",
        "/act",
        json={
            "user": "raj.patel@contoso.gov.uk",
            "conversation_id": cid,
            "verb": "submit",
            "endpoint": bot.url,
        },
    )
    assert not_theirs.status_code == 404
