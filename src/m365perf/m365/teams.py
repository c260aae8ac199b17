"""Proactive Teams messages through the Bot Connector REST API.

The service URL comes with each conversation (from the install event, or the
configured regional default), so it is a parameter of every call. Because the bot's
token is sent there, a service URL must be on a Bot Framework / Teams host or be the
configured ``bot_connector_base_url`` host; anything else is refused.

Retries follow the Teams bot guidance: 429, 412, 502, 503 and 504 are retried with
backoff (a 412 from the Connector is its "try again", not a stale eTag).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit

from m365perf.m365.auth import TokenProvider
from m365perf.m365.errors import M365Error
from m365perf.m365.http import Budget, HttpCore, RetryPolicy, json_object

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
_BOT_RETRY_STATUSES = frozenset({412, 429, 502, 503, 504})
# Hosts the Microsoft 365 Agents SDK itself trusts for outbound Connector calls.
_TRUSTED_SUFFIXES = (
    "botframework.com",
    "smba.trafficmanager.net",
    "teams.microsoft.com",
    "teams.microsoft.us",
)


def card_attachment(card: Mapping[str, Any]) -> dict[str, Any]:
    """An activity attachment carrying an adaptive card."""
    if card.get("type") != "AdaptiveCard":
        raise ValueError("the card must be an AdaptiveCard")
    return {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "content": dict(card)}


def card_activity(card: Mapping[str, Any], *, summary: str = "") -> dict[str, Any]:
    """A message activity holding one card; ``summary`` is what notifications show."""
    activity: dict[str, Any] = {"type": "message", "attachments": [card_attachment(card)]}
    if summary:
        activity["summary"] = summary
    return activity


class BotConnectorClient:
    """Create 1:1 conversations, send and update activities as the bot."""

    def __init__(
        self,
        core: HttpCore,
        *,
        tokens: TokenProvider | None,
        budget: Budget,
        retry: RetryPolicy,
        extra_hosts: Iterable[str] = (),
        conversation_budget: Callable[[str], Budget] | None = None,
    ) -> None:
        """``conversation_budget``: the budget of one conversation, spent with ``budget``
        (the bot's per-app rate) on every send and update in it."""
        self._core = core
        self._tokens = tokens
        self._budget = budget
        self._conversation_budget = conversation_budget
        self._retry = replace(retry, retry_statuses=_BOT_RETRY_STATUSES)
        self._extra_hosts = frozenset(h.lower() for h in extra_hosts)

    def create_conversation(
        self, service_url: str, bot_id: str, tenant_id: str, user_id: str
    ) -> str:
        """Open (or reopen) the bot's 1:1 chat with a user; returns the conversation id.

        ``user_id`` is the user's Teams id (``29:…``) or Entra object id; ``bot_id`` the
        bot's app id (the ``28:`` prefix is added when missing).
        """
        for name, value in (("bot_id", bot_id), ("tenant_id", tenant_id), ("user_id", user_id)):
            if not value:
                raise ValueError(f"{name} is empty")
        body = {
            "bot": {"id": bot_id if bot_id.startswith("28:") else f"28:{bot_id}"},
            "members": [{"id": user_id}],
            "channelData": {"tenant": {"id": tenant_id}},
            "isGroup": False,
            "tenantId": tenant_id,
        }
        response = self._send("POST", self._url(service_url, "v3/conversations"), body)
        return _id_of(json_object(response), "conversation")

    def send_activity(
        self, service_url: str, conversation_id: str, activity: Mapping[str, Any]
    ) -> str:
        """Post an activity to a conversation; returns the new activity's id."""
        path = f"v3/conversations/{_segment(conversation_id)}/activities"
        response = self._send("POST", self._url(service_url, path), dict(activity), conversation_id)
        return _id_of(json_object(response), "activity")

    def update_activity(
        self,
        service_url: str,
        conversation_id: str,
        activity_id: str,
        activity: Mapping[str, Any],
    ) -> None:
        """Replace an activity the bot sent (a card showing its outcome, say)."""
        path = f"v3/conversations/{_segment(conversation_id)}/activities/{_segment(activity_id)}"
        body = dict(activity)
        body.setdefault("id", activity_id)
        self._send("PUT", self._url(service_url, path), body, conversation_id)

    def _send(
        self, method: str, url: str, body: dict[str, Any], conversation_id: str | None = None
    ) -> Any:
        budget = self._budget
        if conversation_id and self._conversation_budget is not None:
            budget = self._conversation_budget(conversation_id)
        return self._core.send(
            method, url, tokens=self._tokens, budget=budget, retry=self._retry, json=body
        )

    def _url(self, service_url: str, path: str) -> str:
        parts = urlsplit(service_url)
        host = (parts.hostname or "").lower()
        trusted = host in self._extra_hosts or (
            parts.scheme == "https"
            and any(host == s or host.endswith("." + s) for s in _TRUSTED_SUFFIXES)
        )
        if not trusted:
            raise M365Error(
                f"refusing to send the bot token to {service_url!r}: not a Bot Framework "
                "or Teams host, nor the configured bot_connector_base_url"
            )
        return f"{service_url.rstrip('/')}/{path}"


def _segment(value: str) -> str:
    if not value:
        raise ValueError("conversation and activity ids must not be empty")
    return quote(value, safe="")


def _id_of(body: Mapping[str, Any], what: str) -> str:
    value = body.get("id")
    if not value:
        raise M365Error(f"the Bot Connector returned no {what} id")
    return str(value)
