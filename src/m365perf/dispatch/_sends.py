"""One outbox row, one call: cards, card updates, mail and Power BI refreshes.

Each sender reads its payload as ``docs/outbox.md`` defines it, makes the call and
returns the outcome the engine is told about. A payload that does not match the
contract raises :class:`BadPayload` (parked: resending cannot fix it).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from m365perf.dispatch._failures import BadPayload, NotYet
from m365perf.m365.errors import ClientError
from m365perf.m365.factory import M365
from m365perf.m365.teams import card_activity
from m365perf.settings import Settings
from m365perf.store.base import Store


class Delivery(Protocol):
    """Where a card went, as the engine recorded it from a ``send_card`` outcome."""

    @property
    def channel(self) -> str:
        """``teams`` or ``email``."""
        ...

    @property
    def conversation_id(self) -> str | None:
        """The Teams 1:1 conversation (None for e-mail)."""
        ...

    @property
    def activity_id(self) -> str | None:
        """The Teams message holding the card (None for e-mail)."""
        ...

    @property
    def service_url(self) -> str | None:
        """The Bot Connector endpoint of that conversation (None for e-mail)."""
        ...


_CONFLICT = 409

FindDelivery = Callable[[str], Delivery | None]
Outcome = dict[str, Any]


@dataclass(frozen=True)
class SendContext:
    """What the senders need: the clients, the settings and two look-ups."""

    store: Store
    clients: M365
    settings: Settings
    find_delivery: FindDelivery


def send_card(ctx: SendContext, payload: Mapping[str, Any]) -> Outcome:
    """Post the card to the user's Teams chat (opening it if need be) or e-mail it."""
    channel = _text(payload, "channel")
    user = _mapping(payload, "user")
    card = _card(payload)
    summary = _text(payload, "summary", required=False)
    if channel == "teams":
        return _post_to_teams(ctx, _text(user, "id", where="user"), card, summary)
    if channel == "email":
        ctx.clients.mail.send_card(
            ctx.settings.service_mailbox,
            [_text(user, "email", where="user")],
            _text(payload, "subject"),
            card,
            summary=summary,
            link=_text(payload, "link", required=False),
        )
        # Graph's sendMail answers 202 with no id for the message it queued.
        return {"message_id": None}
    raise BadPayload(f"send_card channel must be 'teams' or 'email', not {channel!r}")


def update_card(ctx: SendContext, payload: Mapping[str, Any]) -> Outcome:
    """Replace a card already posted in Teams; an e-mailed card cannot be replaced."""
    card_id = _text(payload, "card_id")
    card = _card(payload)
    delivery = ctx.find_delivery(card_id)
    if delivery is None:
        # Its send_card may still be queued or in flight: wait rather than park.
        raise NotYet(f"card {card_id} has no recorded delivery yet")
    if delivery.channel == "email":
        return {"replaced": False}
    if delivery.channel != "teams":
        raise BadPayload(f"card {card_id} went by {delivery.channel!r}, which cannot be updated")
    if not (delivery.service_url and delivery.conversation_id and delivery.activity_id):
        raise BadPayload(f"card {card_id}'s Teams delivery lacks its conversation or activity id")
    ctx.clients.teams.update_activity(
        delivery.service_url, delivery.conversation_id, delivery.activity_id, card_activity(card)
    )
    return {"replaced": True}


def send_mail(ctx: SendContext, payload: Mapping[str, Any]) -> Outcome:
    """A plain e-mail (digests, notices) from the service mailbox."""
    body = _text(payload, "html", required=False) or _html_from_text(
        _text(payload, "text", required=False)
    )
    if not body:
        raise BadPayload("send_mail needs 'html' or 'text'")
    ctx.clients.mail.send_mail(
        ctx.settings.service_mailbox,
        _addresses(payload, "to"),
        _text(payload, "subject"),
        body,
        cc=_addresses(payload, "cc", required=False),
    )
    return {}


def refresh(ctx: SendContext, payload: Mapping[str, Any]) -> Outcome:
    """Ask Power BI to refresh the dataset; the engine polls with the request id."""
    dataset = _text(payload, "dataset")
    try:
        request_id = ctx.clients.powerbi.trigger_refresh(_text(payload, "workspace"), dataset)
    except ClientError as exc:
        if exc.status == _CONFLICT:
            # One refresh at a time per dataset: this one starts when that one is over.
            raise NotYet(f"a refresh of dataset {dataset} is already running") from exc
        raise
    return {"request_id": request_id}


def check_refresh(ctx: SendContext, payload: Mapping[str, Any]) -> Outcome:
    """Read where a refresh has got to; ``Unknown`` also while Power BI has not listed it."""
    found = ctx.clients.powerbi.get_refresh(
        _text(payload, "workspace"), _text(payload, "dataset"), _text(payload, "request_id")
    )
    if found is None:
        return {"status": "Unknown", "error": None}
    return {"status": found.status, "error": found.service_exception_json}


SENDERS: dict[str, Callable[[SendContext, Mapping[str, Any]], Outcome]] = {
    "send_card": send_card,
    "update_card": update_card,
    "send_mail": send_mail,
    "refresh": refresh,
    "check_refresh": check_refresh,
}


def _post_to_teams(
    ctx: SendContext, user_id: str, card: Mapping[str, Any], summary: str
) -> Outcome:
    with ctx.store.transaction() as tx:
        ref = tx.find_conversation_ref(user_id)
    teams, settings = ctx.clients.teams, ctx.settings
    if ref is None:
        service_url = settings.bot_connector_base_url
        conversation_id = teams.create_conversation(
            service_url, settings.bot_app_id, settings.tenant_id, user_id
        )
    else:
        service_url, conversation_id = ref.service_url, ref.conversation_id
    activity_id = teams.send_activity(
        service_url, conversation_id, card_activity(card, summary=summary)
    )
    return {
        "conversation_id": conversation_id,
        "activity_id": activity_id,
        "service_url": service_url,
    }


def _html_from_text(text: str) -> str:
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "\n".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def _text(
    payload: Mapping[str, Any], name: str, *, required: bool = True, where: str = "payload"
) -> str:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise BadPayload(f"{where} has no {name!r}")
        return ""
    if not isinstance(value, str):
        raise BadPayload(f"{where} {name!r} must be text, not {type(value).__name__}")
    return value


def _mapping(payload: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = payload.get(name)
    if not isinstance(value, Mapping):
        raise BadPayload(f"payload {name!r} must be an object")
    return value


def _card(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    card = _mapping(payload, "card")
    if card.get("type") != "AdaptiveCard":
        raise BadPayload("payload 'card' is not an AdaptiveCard")
    return card


def _addresses(payload: Mapping[str, Any], name: str, *, required: bool = True) -> list[str]:
    value = payload.get(name)
    if value is None and not required:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise BadPayload(f"payload {name!r} must be a list of e-mail addresses")
    if not all(isinstance(a, str) and a for a in value):
        raise BadPayload(f"payload {name!r} holds something other than an address")
    if required and not value:
        raise BadPayload(f"payload {name!r} is empty")
    return list(value)
