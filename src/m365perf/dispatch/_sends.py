"""One outbox row, one call: cards, card updates, mail and Power BI refreshes.

Each sender takes its message model (``m365perf.messages``, as ``docs/outbox.md``
describes them), makes the call and returns the outcome model the engine is told
about. The row was parsed before it got here, so a payload that breaks the contract
never reaches a sender: it is parked when read.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, assert_never

from m365perf.dispatch._failures import BadPayload, NotYet
from m365perf.m365.errors import ClientError
from m365perf.m365.factory import M365
from m365perf.m365.teams import card_activity
from m365perf.messages import (
    CardSent,
    CardUpdated,
    CheckRefresh,
    MailSent,
    Outcome,
    Refresh,
    RefreshChecked,
    RefreshStarted,
    SendCard,
    SendMail,
    UpdateCard,
)
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
_VIA_API = "ViaApi"

FindDelivery = Callable[[str], Delivery | None]
Sendable = SendCard | UpdateCard | SendMail | Refresh | CheckRefresh
"""Every message sent one row, one call (write-back rows go out in batches instead)."""


@dataclass(frozen=True)
class SendContext:
    """What the senders need: the clients, the settings and two look-ups."""

    store: Store
    clients: M365
    settings: Settings
    find_delivery: FindDelivery


def send(ctx: SendContext, message: Sendable, *, retried: bool = False) -> Outcome:
    """Make the one call ``message`` asks for; its outcome is what the engine is told.

    ``retried``: an earlier attempt at this row may have reached the service unheard
    (a dropped connection, a timeout, a worker killed mid-send).
    """
    match message:
        case SendCard():
            return send_card(ctx, message)
        case UpdateCard():
            return update_card(ctx, message)
        case SendMail():
            return send_mail(ctx, message)
        case Refresh():
            return refresh(ctx, message, retried=retried)
        case CheckRefresh():
            return check_refresh(ctx, message)
        case _:
            assert_never(message)


def send_card(ctx: SendContext, message: SendCard) -> CardSent:
    """Post the card to the user's Teams chat (opening it if need be) or e-mail it."""
    if message.channel == "teams":
        return _post_to_teams(ctx, message.user.id, message.card, message.summary)
    ctx.clients.mail.send_card(
        ctx.settings.service_mailbox,
        [message.user.email],
        message.subject,
        message.card,
        summary=message.summary,
        link=message.link,
    )
    # Graph's sendMail answers 202 with no id for the message it queued.
    return CardSent(message_id=None)


def update_card(ctx: SendContext, message: UpdateCard) -> CardUpdated:
    """Replace a card already posted in Teams; an e-mailed card cannot be replaced.

    A Teams card the bot could not deliver went by e-mail instead, under its e-mail
    id: that delivery answers for it.
    """
    card_id = str(message.card_id)
    delivery = ctx.find_delivery(card_id) or ctx.find_delivery(str(message.card_id.as_email()))
    if delivery is None:
        # Its send_card may still be queued or in flight: wait rather than park.
        raise NotYet(f"card {card_id} has no recorded delivery yet")
    if delivery.channel == "email":
        return CardUpdated(replaced=False)
    if delivery.channel != "teams":
        raise BadPayload(f"card {card_id} went by {delivery.channel!r}, which cannot be updated")
    if not (delivery.service_url and delivery.conversation_id and delivery.activity_id):
        raise BadPayload(f"card {card_id}'s Teams delivery lacks its conversation or activity id")
    ctx.clients.teams.update_activity(
        delivery.service_url,
        delivery.conversation_id,
        delivery.activity_id,
        card_activity(message.card),
    )
    return CardUpdated(replaced=True)


def send_mail(ctx: SendContext, message: SendMail) -> MailSent:
    """A plain e-mail (digests, notices) from the service mailbox."""
    ctx.clients.mail.send_mail(
        ctx.settings.service_mailbox,
        message.to,
        message.subject,
        message.html or _html_from_text(message.text),
        cc=message.cc,
    )
    return MailSent()


def refresh(ctx: SendContext, message: Refresh, *, retried: bool = False) -> RefreshStarted:
    """Ask Power BI to refresh the dataset; the engine polls with the request id.

    A retried row that meets "one refresh at a time" adopts the running API refresh:
    most likely its own earlier request, started though the answer was lost, and in any
    case one that began after this row's results were written. Starting a second would
    spend one of the day's eight refreshes and double the history.
    """
    powerbi = ctx.clients.powerbi
    try:
        request_id = powerbi.trigger_refresh(message.workspace, message.dataset)
    except ClientError as exc:
        if exc.status == _CONFLICT:
            running = powerbi.in_flight_refresh(message.workspace, message.dataset)
            if retried and running is not None and running.refresh_type == _VIA_API:
                return RefreshStarted(request_id=running.request_id)
            # One refresh at a time per dataset: this one starts when that one is over.
            raise NotYet(f"a refresh of dataset {message.dataset} is already running") from exc
        raise
    return RefreshStarted(request_id=request_id)


def check_refresh(ctx: SendContext, message: CheckRefresh) -> RefreshChecked:
    """Read where a refresh has got to; ``Unknown`` also while Power BI has not listed it."""
    found = ctx.clients.powerbi.get_refresh(message.workspace, message.dataset, message.request_id)
    if found is None:
        return RefreshChecked(status="Unknown", error=None)
    return RefreshChecked(status=found.status, error=found.service_exception_json)


def _post_to_teams(
    ctx: SendContext, user_id: str, card: Mapping[str, Any], summary: str
) -> CardSent:
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
    return CardSent(
        conversation_id=conversation_id, activity_id=activity_id, service_url=service_url
    )


def _html_from_text(text: str) -> str:
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "\n".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
