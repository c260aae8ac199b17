"""One outbox row, one call: cards, card updates, mail and Power BI refreshes.

Each sender takes its message model (``m365perf.messages``, as ``docs/outbox.md``
describes them), makes the call and returns the outcome model the engine is told
about. The row was parsed before it got here, so a payload that breaks the contract
never reaches a sender: it is parked when read.
"""

from __future__ import annotations

import html
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
    ReturnForm,
    SendCard,
    SendMail,
    UpdateCard,
    card_fingerprint,
)
from m365perf.settings import Settings
from m365perf.store.base import Store
from m365perf.web.links import LinkSigner


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

    @property
    def card_hash(self) -> str | None:
        """Fingerprint of the card as last shown (None when not recorded)."""
        ...


@dataclass(frozen=True)
class _Chat:
    service_url: str
    conversation_id: str


class OpenedChats:
    """The 1:1 chats this process opened, and one lock per person.

    A person's sends go one at a time, so two workers sending to someone with no stored
    chat open it once, not once each; the chat is used at once by the next send, before
    the engine has stored it from the first card's delivery.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._chats: dict[str, _Chat] = {}
        self._shown: OrderedDict[str, tuple[str, str | None]] = OrderedDict()

    def lock(self, key: str) -> threading.Lock:
        """One lock per person (their sends) or per card (its updates)."""
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def shown(self, card_id: str, stored: str | None) -> str | None:
        """What this process last put on the card, while the store says nothing newer.

        ``stored`` is the store's fingerprint now: it is either what this process put
        there (recorded) or what it replaced (not yet recorded); anything else means
        another instance has updated the card since, and the store knows better.
        """
        with self._lock:
            entry = self._shown.get(card_id)
        if entry is None or stored not in entry:
            return None
        return entry[0]

    def show(self, card_id: str, fingerprint: str, replaced: str | None) -> None:
        with self._lock:
            self._shown[card_id] = (fingerprint, replaced)
            self._shown.move_to_end(card_id)
            while len(self._shown) > _SHOWN_KEPT:
                self._shown.popitem(last=False)

    def get(self, user_id: str) -> _Chat | None:
        with self._lock:
            return self._chats.get(user_id)

    def put(self, user_id: str, chat: _Chat) -> None:
        with self._lock:
            self._chats[user_id] = chat

    def forget(self, user_id: str, conversation_id: str) -> None:
        with self._lock:
            if (chat := self._chats.get(user_id)) and chat.conversation_id == conversation_id:
                del self._chats[user_id]


_CONFLICT = 409
_SHOWN_KEPT = 10_000
"""Cards whose last update this process remembers (the store keeps them all)."""
_FORBIDDEN = 403
_STALE_CHAT = frozenset({403, 404})
"""What the Connector answers for a chat that is gone or a bot the user removed."""

log = logging.getLogger(__name__)
_VIA_API = "ViaApi"

FindDelivery = Callable[[str], Delivery | None]
Sendable = SendCard | UpdateCard | SendMail | Refresh | CheckRefresh
"""Every message sent one row, one call (write-back rows go out in batches instead)."""


@dataclass(frozen=True)
class SendContext:
    """What the senders need: the clients, the settings and two look-ups; the link
    signer and the clock sign web-form links at send time (they are never stored)."""

    store: Store
    clients: M365
    settings: Settings
    find_delivery: FindDelivery
    links: LinkSigner | None = None
    clock: Callable[[], datetime] | None = None
    chats: OpenedChats = field(default_factory=OpenedChats)


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
        link=_form_link(ctx, message.return_form) or message.link,
    )
    # Graph's sendMail answers 202 with no id for the message it queued.
    return CardSent(message_id=None)


def _form_link(ctx: SendContext, form: ReturnForm | None) -> str:
    """The owner's web-form link, signed now; "" without a form, a key or a clock."""
    if form is None or ctx.links is None or ctx.clock is None:
        return ""
    return ctx.links.return_url(
        ctx.settings.public_base_url, form.cycle_id, form.owner_id, now=ctx.clock()
    )


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
    fingerprint = card_fingerprint(message.card)
    with ctx.chats.lock("card:" + card_id):
        if fingerprint in (ctx.chats.shown(card_id, delivery.card_hash), delivery.card_hash):
            # The card already shows exactly this: an update would change nothing visible.
            return CardUpdated(replaced=True)
        ctx.clients.teams.update_activity(
            delivery.service_url,
            delivery.conversation_id,
            delivery.activity_id,
            card_activity(message.card),
        )
        ctx.chats.show(card_id, fingerprint, delivery.card_hash)
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
    """Into the user's stored 1:1 chat; if that is gone (404/403), a newly opened one.

    The stored chat is the user's own verified activity's or the one a first card opened
    (the engine stores it with the delivery); until the engine has stored it, a chat this
    process opened is used (:class:`OpenedChats`), so a person's chat is opened once.
    """
    with ctx.chats.lock(user_id):
        with ctx.store.transaction() as tx:
            ref = tx.find_conversation_ref(user_id)
        chat = _Chat(ref.service_url, ref.conversation_id) if ref else ctx.chats.get(user_id)
        activity = card_activity(card, summary=summary)
        if chat is not None:
            try:
                return _post(ctx, chat.service_url, chat.conversation_id, activity)
            except ClientError as exc:
                if exc.status not in _STALE_CHAT:
                    raise
                ctx.chats.forget(user_id, chat.conversation_id)
                log.info("the stored Teams chat of %s is gone (%s): opening it anew", user_id, exc)
        service_url = ctx.settings.bot_connector_base_url
        opened = _Chat(service_url, _open_chat(ctx, service_url, user_id))
        ctx.chats.put(user_id, opened)
        return _post(ctx, opened.service_url, opened.conversation_id, activity)


def _open_chat(ctx: SendContext, service_url: str, user_id: str) -> str:
    """Open the bot's 1:1 chat with the user; install the Teams app for them if need be.

    A 403 from the Connector means the bot is not installed for the user: with the app's
    catalog id configured it is installed through Graph and the chat opened again.
    Failing that the error stands, the row is parked, and the card goes by e-mail
    where the flow allows it (:func:`m365perf.engine.sent.on_parked`).
    """
    teams, settings = ctx.clients.teams, ctx.settings
    try:
        return teams.create_conversation(
            service_url, settings.bot_app_id, settings.tenant_id, user_id
        )
    except ClientError as exc:
        if exc.status != _FORBIDDEN or not settings.teams_app_catalog_id:
            raise
    ctx.clients.graph.install_teams_app(user_id, settings.teams_app_catalog_id)
    return teams.create_conversation(service_url, settings.bot_app_id, settings.tenant_id, user_id)


def _post(
    ctx: SendContext, service_url: str, conversation_id: str, activity: dict[str, Any]
) -> CardSent:
    activity_id = ctx.clients.teams.send_activity(service_url, conversation_id, activity)
    return CardSent(
        conversation_id=conversation_id, activity_id=activity_id, service_url=service_url
    )


def _html_from_text(text: str) -> str:
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "\n".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
