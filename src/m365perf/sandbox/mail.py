"""Graph ``sendMail`` into per-recipient mailboxes, and the actionable card inside a mail.

Outlook finds an actionable message's card in a ``<script
type="application/adaptivecard+json">`` element in the HTML ``<head>`` (facts §5.1);
the sandbox looks in the same place, so a card placed anywhere else is not found
here either.
"""

from __future__ import annotations

import json
import secrets
import time
from html.parser import HTMLParser
from typing import Any

from m365perf.sandbox.core import Sandbox
from m365perf.sandbox.replies import Reply, graph_error
from m365perf.sandbox.store import MessageRow, iso

CARD_SCRIPT_TYPE = "application/adaptivecard+json"
RECIPIENT_LIMIT = 500


class _CardFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.in_head = False
        self.in_card = False
        self.body_started = False
        self.chunks: list[str] = []
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self.in_head = True
        elif tag == "body":
            self.body_started, self.in_head = True, False
        elif tag == "script" and self.in_head and not self.found:
            kind = dict(attrs).get("type") or ""
            self.in_card = kind.strip().lower() == CARD_SCRIPT_TYPE

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False
        elif tag == "script" and self.in_card:
            self.in_card, self.found = False, True

    def handle_data(self, data: str) -> None:
        if self.in_card:
            self.chunks.append(data)


def extract_card(html: str) -> dict[str, Any] | None:
    """The adaptive card embedded in the mail's head, or None (also when it is not JSON)."""
    finder = _CardFinder()
    finder.feed(html)
    finder.close()
    if not finder.found:
        return None
    try:
        card = json.loads("".join(finder.chunks))
    except json.JSONDecodeError:
        return None
    return card if isinstance(card, dict) else None


def _addresses(message: dict[str, Any], key: str) -> list[str] | None:
    entries = message.get(key) or []
    if not isinstance(entries, list):
        return None
    result = []
    for entry in entries:
        address = entry.get("emailAddress", {}).get("address") if isinstance(entry, dict) else None
        if not isinstance(address, str) or "@" not in address:
            return None
        result.append(address)
    return result


def send_mail(sandbox: Sandbox, mailbox_key: str, payload: Any) -> Reply:
    """Deliver a copy to every recipient's mailbox (known user or not) and one to Sent Items."""
    store = sandbox.store
    sender = store.user(mailbox_key)
    if sender is None:
        return graph_error(
            404, "ErrorInvalidUser", f"The requested user '{mailbox_key}' is invalid."
        )
    message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, dict):
        return graph_error(400, "ErrorInvalidRequest", "The message is missing from the request.")
    lists = {k: _addresses(message, k) for k in ("toRecipients", "ccRecipients", "bccRecipients")}
    if any(v is None for v in lists.values()):
        return graph_error(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient is not valid., A message can't be sent because it contains "
            "no recipients.",
        )
    recipients = [a for v in lists.values() for a in (v or [])]
    if not recipients:
        return graph_error(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient is required, but none were found.",
        )
    if len(recipients) > RECIPIENT_LIMIT:
        return graph_error(
            400,
            "ErrorExceededMessageLimit",
            f"Messages can have at most {RECIPIENT_LIMIT} recipients.",
        )
    body = message.get("body") or {}
    content = body.get("content", "") if isinstance(body, dict) else ""
    content_type = body.get("contentType", "text") if isinstance(body, dict) else "text"
    card = (
        extract_card(content)
        if isinstance(content, str) and str(content_type).lower() == "html"
        else None
    )
    now = iso()
    stored = {
        "subject": message.get("subject", ""),
        "body": {"contentType": content_type, "content": content},
        "from": {"emailAddress": {"name": sender.display_name, "address": sender.mail}},
        "toRecipients": message.get("toRecipients") or [],
        "ccRecipients": message.get("ccRecipients") or [],
        "internetMessageHeaders": message.get("internetMessageHeaders") or [],
        "attachments": [
            {"name": a.get("name"), "contentType": a.get("contentType")}
            for a in message.get("attachments") or []
            if isinstance(a, dict)
        ],
        "sentDateTime": now,
        "receivedDateTime": now,
        "internetMessageId": f"<{secrets.token_hex(12)}@{sandbox.config.mail_domain}>",
    }
    if sandbox.config.mail_latency_s:
        time.sleep(sandbox.config.mail_latency_s)  # Exchange taking its time; see config
    with store.transaction():
        for address in dict.fromkeys(a.lower() for a in recipients):
            shown, note = _card_for(sandbox, card, sender.mail, address)
            copy = {**stored, "cardNote": note} if note else stored
            store.put_message(
                MessageRow(_message_id(), address, "inbox", sender.mail, copy, shown, now)
            )
        if payload.get("saveToSentItems", True) is not False:
            store.put_message(
                MessageRow(
                    _message_id(), sender.mail.lower(), "sentitems", sender.mail, stored, card, now
                )
            )
    return Reply(202)


def _card_for(
    sandbox: Sandbox, card: dict[str, Any] | None, sender: str, recipient: str
) -> tuple[dict[str, Any] | None, str | None]:
    """What the recipient's Outlook shows: the card only with the registered originator.

    Outlook removes a card whose ``originator`` is not the provider registered for the
    sender (facts §5.1); sending to oneself is the one exception (testing).
    """
    if card is None:
        return None, None
    wanted = sandbox.config.actionable_originator
    if card.get("originator") == wanted or sender.lower() == recipient.lower():
        return card, None
    return None, (
        f"card removed: originator {card.get('originator')!r} is not the registered "
        f"provider {wanted!r}"
    )


def _message_id() -> str:
    """Exchange item ids are long opaque base64 strings; ours are shorter but as opaque."""
    return "AAMk" + secrets.token_urlsafe(24)


def message_json(row: MessageRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "mailbox": row.mailbox,
        "folder": row.folder,
        **row.message,
        "card": row.card,
    }
