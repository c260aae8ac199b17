"""An ``Action.Submit`` click from an older Teams client, answered like ``Action.Execute``.

Every button on our cards is an ``Action.Execute`` whose fallback is an ``Action.Submit``
carrying the verb in its data. A client without Universal Actions sends that click as a
``message`` activity, whose HTTP reply Teams ignores: the engine acts on it exactly as on
an ``Action.Execute`` and puts the card it answers with (the receipt, the outcome, or a
refusal saying why nothing changed) in place of the clicked card through the outbox —
only a card this caller was sent in Teams, so a forged id cannot replace anyone else's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from m365perf.cards import render_notice
from m365perf.engine.context import Caller, EngineContext
from m365perf.engine.errors import ActionError, BadAction
from m365perf.engine.outbox import update_card
from m365perf.messages.ids import CardId, CardIdError, CardReplyKey, RequestCardId
from m365perf.store import CardChannel, Store

__all__ = ["SubmitAnswer", "answer_submit_click"]


@dataclass(frozen=True, slots=True)
class SubmitAnswer:
    """What became of an Action.Submit click: ``acted`` is False when the engine refused it
    (so nothing about it, not even where the clicker chats, may be remembered)."""

    acted: bool
    card_replaced: bool


Act = Callable[[Caller, str, Mapping[str, Any]], dict[str, Any]]


def answer_submit_click(
    store: Store,
    ctx: EngineContext,
    act: Act,
    caller: Caller,
    value: Mapping[str, Any],
    *,
    click_id: str,
    now: datetime,
) -> SubmitAnswer:
    """Act on an Action.Submit click's ``value`` (its data, the verb and the inputs) with
    ``act`` (the engine's Action.Execute handler); queue its answer in place of the
    clicked card, unless there is no card of the caller's to put it in."""
    verb = value.get("verb")
    data = {key: item for key, item in value.items() if key != "verb"}
    try:
        if not isinstance(verb, str) or not verb.strip():
            raise BadAction("this click carries no verb")
        card = act(caller, verb, data)
        acted = True
    except ActionError as refused:
        card = render_notice(
            "This click changed nothing", refused.message, max_bytes=ctx.config.max_card_bytes
        )
        acted = False
    card_id = _clicked_card(store, caller, value.get("card_id"), value.get("part"))
    if card_id is None:
        return SubmitAnswer(acted=acted, card_replaced=False)
    with store.transaction() as tx:
        update_card(
            tx,
            ctx,
            card_id=card_id,
            card=card,
            dedup_key=CardReplyKey(card_id, _click_key(click_id, now)),
            now=now,
        )
    return SubmitAnswer(acted=acted, card_replaced=True)


def _click_key(click_id: str, now: datetime) -> str:
    """The click as a key part: its activity id (which Teams writes with ``:``) hashed,
    so that the same click delivered twice is answered once."""
    if not click_id:
        return now.strftime("%Y%m%dT%H%M%S%f")
    return hashlib.sha256(click_id.encode("utf-8")).hexdigest()[:24]


def _clicked_card(store: Store, caller: Caller, given: object, part: object) -> CardId | None:
    """The clicked card's id, if it names a card delivered to ``caller`` in Teams.

    A part of a split owner's list carries its list's id and its part number.
    """
    if not isinstance(given, str):
        return None
    try:
        card_id = CardId.parse(given)
        if isinstance(card_id, RequestCardId) and isinstance(part, int) and part >= 1:
            card_id = card_id.with_part(part)
    except CardIdError:
        return None
    with store.reading() as tx:
        delivery = tx.find_delivery(str(card_id))
    if delivery is None or delivery.user_id != caller.user_id:
        return None
    return card_id if delivery.channel is CardChannel.TEAMS else None
