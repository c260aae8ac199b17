"""One digest per approver: what waits for them in a cycle, and their decisions on it.

The read (:func:`read_digest`) and the decisions (:func:`approve_item`,
:func:`reject_item`, :func:`approve_unflagged`) are the entry points the digest card and
the approver web page both call. Every decision goes through
:func:`m365perf.engine.approvals.decide_step`, one step of one return at a time in its
own transaction, its version checked: an item a colleague decided first, or one that
went out of date, is reported back and never decided twice.

The card itself is drawn again when something changes (debounced: a timer per approver
and window, :func:`m365perf.engine.chain.queue_digest_update`), sent once per part and
updated in place after that (:func:`draw_digest`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from m365perf.cards import render_notice
from m365perf.cards.digest import (
    APPROVE_ALL_VERB,
    APPROVE_VERB,
    REFRESH_VERB,
    REJECT_VERB,
    DigestItem,
    DigestService,
    DigestView,
    digest_summary,
    reason_input_id,
    render_digest,
)
from m365perf.domain.lifecycle import DECIDED_STEP
from m365perf.engine.approvals import Refusal, StepDecided, decide_step
from m365perf.engine.carddata import check_characters, text, whole_number
from m365perf.engine.context import Caller, EngineContext, local_day
from m365perf.engine.delegation import may_decide
from m365perf.engine.errors import BadAction, UnknownSubject
from m365perf.engine.outbox import send_card, update_card
from m365perf.engine.people import StoreDirectory
from m365perf.engine.views import approval_view, read_ahead
from m365perf.messages.ids import (
    CardId,
    CardIdError,
    CardSendKey,
    DigestCardId,
    DigestCardKey,
    DigestUpdateKey,
)
from m365perf.messages.names import SubjectType
from m365perf.store import (
    ApprovalStep,
    Cycle,
    NotFound,
    Return,
    ReturnStatus,
    Store,
    Timer,
    Transaction,
)

__all__ = [
    "DIGEST_VERBS",
    "DigestAnswer",
    "DigestItem",
    "DigestService",
    "DigestView",
    "ItemRef",
    "ItemResult",
    "approve_item",
    "approve_unflagged",
    "digest_view",
    "draw_digest",
    "handle_digest_action",
    "read_digest",
    "reject_item",
]

DIGEST_VERBS = frozenset({APPROVE_VERB, REJECT_VERB, APPROVE_ALL_VERB, REFRESH_VERB})
"""The card verbs of a digest (handled by :func:`handle_digest_action`)."""

NO_SERVICE = "Other"
"""The group of items whose register row names no service."""
MAX_ITEMS_PER_CLICK = 500
"""The most items one "approve all" click may name (more than any part can show)."""

Json = dict[str, Any]


@dataclass(frozen=True)
class ItemRef:
    """One item as the approver saw it: a return, the version shown, the step asked."""

    return_id: int
    version: int
    step_index: int

    @classmethod
    def of(cls, item: DigestItem) -> ItemRef:
        return cls(item.return_id, item.version, item.step_index)


@dataclass(frozen=True)
class ItemResult:
    """What one decision did: ``decided`` False means nothing changed, ``message`` why."""

    ref: ItemRef
    indicator_name: str
    decided: bool
    message: str


@dataclass(frozen=True)
class DigestAnswer:
    """The decisions taken, item by item, and the digest as it stands after them."""

    results: tuple[ItemResult, ...]
    view: DigestView


# --- reading --------------------------------------------------------------------------


def read_digest(
    store: Store,
    ctx: EngineContext,
    cycle_id: int,
    approver_id: str,
    *,
    now: datetime | None = None,
) -> DigestView:
    """What waits for ``approver_id`` in the cycle (raises UnknownSubject for no cycle).

    With ``now``, the steps they act on that day for an away approver are listed too.
    """
    with store.reading() as tx:
        return digest_view(tx, ctx, _cycle(tx, cycle_id), approver_id, now=now)


def digest_view(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    approver_id: str,
    *,
    notes: Sequence[str] = (),
    now: datetime | None = None,
) -> DigestView:
    """The digest of one approver for one cycle: every current step that names them, and
    (given ``now``) every one they act on that day for an away approver (a delegation).

    Grouped by service (A to Z, "Other" last), items by indicator name within a service.
    """
    flow = ctx.flow(cycle.flow_id)
    returns = {r.id or 0: r for r in tx.list_returns(cycle_id=cycle.id)}
    open_steps = [
        s for s in tx.list_open_steps(approver=approver_id, return_ids=list(returns)) if s.id
    ]
    covering: dict[int, str] = {}  # step id -> whom the approver acts for on it
    if now is not None:
        day, own = local_day(now), {s.id for s in open_steps}
        for s in tx.list_open_steps(return_ids=list(returns)):
            if s.id in own or s.id is None or s.return_id not in returns:
                continue
            decider = may_decide(tx, flow, s, returns[s.return_id], approver_id, day)
            if decider is not None:
                open_steps.append(s)
                if decider.cover is not None:
                    covering[s.id] = decider.cover.approver.name
    shown = [returns[s.return_id] for s in open_steps if s.return_id in returns]
    tx.prefetch_steps(list(returns))  # the chains drawn, and those counted as done
    read_ahead(tx, flow, ctx.period_of(cycle), shown, approver_id)
    column = flow.source.column_for("service")
    groups: dict[str, list[DigestItem]] = {}
    for step in open_steps:
        ret = returns.get(step.return_id)
        if ret is None or ret.status is not ReturnStatus.RETURNED:
            continue
        if ret.version != step.return_version or approver_id in (ret.owner_id, ret.submitted_by):
            continue
        chain = tx.list_steps(ret.id or 0, step.return_version)
        item = _item(tx, ctx, cycle, ret, chain, step, now=now)
        if step.id in covering:
            item = replace(item, acting_for=covering[step.id])
        indicator = tx.find_indicator(flow.id, ret.indicator_key)
        raw = indicator.raw if indicator else {}
        service = str(raw.get(column) or "").strip() if column else ""
        groups.setdefault(service or NO_SERVICE, []).append(item)
    services = tuple(
        DigestService(name, tuple(sorted(items, key=lambda i: (i.indicator_name, i.return_id))))
        for name, items in sorted(groups.items(), key=lambda g: (g[0] == NO_SERVICE, g[0]))
    )
    person = tx.find_person(approver_id)
    return DigestView(
        cycle_id=cycle.id or 0,
        approver_id=approver_id,
        approver_name=person.name if person else approver_id,
        flow_name=flow.name,
        period_label=ctx.period_of(cycle).label,
        services=services,
        notes=tuple(notes),
        done=_done(tx, returns.values(), approver_id),
        link=ctx.approvals_link(cycle.id or 0) or "",
    )


def _item(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    chain: Sequence[ApprovalStep],
    step: ApprovalStep,
    *,
    now: datetime | None,
) -> DigestItem:
    view = approval_view(tx, ctx, cycle, ret, chain, step, card_id="digest", now=now)
    flags = []
    if view.value is None:
        flags.append("no data this period")
    if view.late:
        flags.append("late return")
    if view.outlier_confirmed:
        flags.append("unusual value (confirmed by the officer)")
    if view.probable_missing_data:
        flags.append("probable missing data")
    return DigestItem(
        return_id=ret.id or 0,
        version=step.return_version,
        step_index=step.step_index,
        step_count=view.step_count,
        step_name=step.name,
        indicator_key=ret.indicator_key,
        indicator_name=view.indicator_name,
        owner_name=view.owner_name,
        service="",
        unit=view.unit,
        value=view.value,
        polarity=view.polarity,
        no_data_reason=view.no_data_reason,
        target=view.target,
        rag=view.rag,
        variation=view.variation,
        direction=view.direction_vs_previous,
        flags=tuple(flags),
        commentary=view.commentary,
        actions=view.actions,
    )


def _done(tx: Transaction, returns: Any, approver_id: str) -> int:
    """How many of this approver's steps in the cycle are decided (by anyone)."""
    count = 0
    for ret in returns:
        if ret.status is ReturnStatus.AWAITING:
            continue
        for step in tx.list_steps(ret.id or 0):
            if approver_id in step.approvers and step.status in DECIDED_STEP and step.decided_by:
                count += 1
    return count


def _cycle(tx: Transaction, cycle_id: int) -> Cycle:
    try:
        return tx.get_cycle(cycle_id)
    except NotFound:
        raise UnknownSubject(f"cycle {cycle_id} does not exist") from None


# --- deciding -------------------------------------------------------------------------


def approve_item(
    store: Store, ctx: EngineContext, caller: Caller, cycle_id: int, ref: ItemRef, *, now: datetime
) -> DigestAnswer:
    """Approve one item of the caller's digest (flagged or not: they chose it)."""
    with store.transaction() as tx:
        result = _decide(tx, ctx, caller, cycle_id, ref, "approve", "", now=now)
        return _answer(tx, ctx, caller, cycle_id, [result], now=now)


def reject_item(
    store: Store,
    ctx: EngineContext,
    caller: Caller,
    cycle_id: int,
    ref: ItemRef,
    reason: str,
    *,
    now: datetime,
) -> DigestAnswer:
    """Reject one item with a reason; it goes back to its owner. No reason: refused."""
    with store.transaction() as tx:
        result = _decide(tx, ctx, caller, cycle_id, ref, "reject", reason.strip(), now=now)
        return _answer(tx, ctx, caller, cycle_id, [result], now=now)


def approve_unflagged(
    store: Store,
    ctx: EngineContext,
    caller: Caller,
    cycle_id: int,
    refs: Sequence[ItemRef],
    *,
    now: datetime,
) -> DigestAnswer:
    """Approve each of ``refs`` (what the approver was shown) that carries no flag now.

    One decision per item, each checked on its own, all in one transaction with the
    digest drawn after them: an item a colleague decided first, or one resubmitted since,
    is reported and left; a flagged item is left for the approver to look at (whatever
    the click said).
    """
    results = []
    unique = list(dict.fromkeys(refs))
    with store.transaction() as tx:
        cycle = _cycle(tx, cycle_id)
        named = {ref.return_id: ref for ref in unique}
        found = {r.id: r for r in tx.list_returns(cycle_id=cycle_id) if r.id in named}
        tx.prefetch_steps(list(found))
        read_ahead(tx, ctx.flow(cycle.flow_id), ctx.period_of(cycle), list(found.values()))
        for ref in unique:
            item = _current_item(tx, ctx, caller.user_id, cycle_id, ref, now=now)
            if item is not None and item.flagged:
                results.append(
                    ItemResult(ref, item.indicator_name, False, "has flags: left for you to decide")
                )
                continue
            results.append(_decide(tx, ctx, caller, cycle_id, ref, "approve", "", now=now))
        return _answer(tx, ctx, caller, cycle_id, results, now=now)


def _current_item(
    tx: Transaction,
    ctx: EngineContext,
    approver_id: str,
    cycle_id: int,
    ref: ItemRef,
    *,
    now: datetime,
) -> DigestItem | None:
    """The item as it reads now, if the step is still waiting for this approver."""
    try:
        ret = tx.get_return(ref.return_id)
    except NotFound:
        return None
    if ret.cycle_id != cycle_id or ret.version != ref.version:
        return None
    chain = tx.list_steps(ret.id or 0, ref.version)
    if not 0 <= ref.step_index < len(chain):
        return None
    step = chain[ref.step_index]
    if step.status in DECIDED_STEP:
        return None
    cycle = _cycle(tx, cycle_id)
    flow = ctx.flow(cycle.flow_id)
    # The approver or whoever acts for one today: a delegate's "approve all" must see the
    # same flags as the approver's.
    if may_decide(tx, flow, step, ret, approver_id, local_day(now)) is None:
        return None
    return _item(tx, ctx, cycle, ret, chain, step, now=now)


def _decide(
    tx: Transaction,
    ctx: EngineContext,
    caller: Caller,
    cycle_id: int,
    ref: ItemRef,
    verb: str,
    reason: str,
    *,
    now: datetime,
) -> ItemResult:
    try:
        ret = tx.get_return(ref.return_id)
    except NotFound:
        return ItemResult(ref, f"return {ref.return_id}", False, "does not exist")
    indicator = tx.find_indicator(ctx.flow(_cycle(tx, cycle_id).flow_id).id, ret.indicator_key)
    name = indicator.name if indicator else ret.indicator_key
    if ret.cycle_id != cycle_id:
        return ItemResult(ref, name, False, "is not part of this cycle")
    result = decide_step(
        tx,
        ctx,
        caller,
        verb,
        return_id=ref.return_id,
        version=ref.version,
        index=ref.step_index,
        reason=reason,
        now=now,
    )
    if isinstance(result, StepDecided):
        said = "approved" if verb == "approve" else "rejected and sent back to its owner"
        return ItemResult(ref, name, True, said)
    if result.refusal is Refusal.NOT_APPROVER:  # name nothing of a return not theirs
        return ItemResult(ref, f"Return {ref.return_id}", False, result.message)
    return ItemResult(ref, name, False, result.message)


def _answer(
    tx: Transaction,
    ctx: EngineContext,
    caller: Caller,
    cycle_id: int,
    results: list[ItemResult],
    *,
    now: datetime,
) -> DigestAnswer:
    """The decisions' notes and the caller's digest as it stands after them (in the same
    transaction: what is drawn is what was decided)."""
    notes = [f"{r.indicator_name}: {r.message}" for r in results if not r.decided]
    decided = [r for r in results if r.decided]
    if decided:
        notes.insert(0, _decided_note(decided))
    view = digest_view(tx, ctx, _cycle(tx, cycle_id), caller.user_id, notes=notes, now=now)
    return DigestAnswer(tuple(results), view)


def _decided_note(decided: Sequence[ItemResult]) -> str:
    if len(decided) == 1:
        return f"{decided[0].indicator_name}: {decided[0].message}."
    return f"{len(decided)} items {decided[0].message}."


# --- the card -------------------------------------------------------------------------


def handle_digest_action(
    store: Store,
    ctx: EngineContext,
    caller: Caller,
    verb: str,
    data: Mapping[str, Any],
    *,
    now: datetime,
) -> Json:
    """A click on a digest card; the answer is the clicked part drawn again, for the
    caller only (colleagues' digests are updated through the outbox)."""
    check_characters(data)
    cycle_id = whole_number(data, "cycle_id")
    card_id = _digest_card_id(data.get("card_id"))
    if card_id is None or card_id.cycle_id != cycle_id:
        raise BadAction("card data has no digest card id for this cycle")
    if card_id.approver_id != caller.user_id:
        return render_notice(
            "This card is not for you",
            "This digest lists another approver's items: only they can act on it.",
            max_bytes=ctx.config.max_card_bytes,
        )
    if verb == APPROVE_VERB:
        answer = approve_item(store, ctx, caller, cycle_id, _ref(data), now=now)
    elif verb == REJECT_VERB:
        ref = _ref(data)
        reason = text(data, reason_input_id(ref.return_id)) or text(data, "reason")
        answer = reject_item(store, ctx, caller, cycle_id, ref, reason, now=now)
    elif verb == APPROVE_ALL_VERB:
        answer = approve_unflagged(store, ctx, caller, cycle_id, _refs(data), now=now)
    elif verb == REFRESH_VERB:
        answer = DigestAnswer((), read_digest(store, ctx, cycle_id, caller.user_id, now=now))
    else:
        raise BadAction(f"unknown digest verb {verb!r}")
    return _part(ctx, answer.view, card_id)


def _part(ctx: EngineContext, view: DigestView, card_id: DigestCardId) -> Json:
    """Part ``card_id.part`` of the digest (named as clicked: Teams or e-mail copy)."""

    def name(part: int) -> str:
        return str(_with_part(card_id, part))

    cards = render_digest(view, name, max_bytes=ctx.config.max_card_bytes)
    if card_id.part <= len(cards):
        return cards[card_id.part - 1]
    return _rest(ctx, view, name(card_id.part))


def _rest(ctx: EngineContext, view: DigestView, card_id: str) -> Json:
    """A part left over when the digest shrank: its items are on the earlier parts."""
    empty = DigestView(
        cycle_id=view.cycle_id,
        approver_id=view.approver_id,
        approver_name=view.approver_name,
        flow_name=view.flow_name,
        period_label=view.period_label,
        services=(),
        notes=view.notes,
        done=view.done,
    )
    return render_digest(empty, lambda _part: card_id, max_bytes=ctx.config.max_card_bytes)[0]


def _with_part(card_id: DigestCardId, part: int) -> DigestCardId:
    same = card_id.with_part(part)
    return same.as_email() if card_id.by_email else same


def _digest_card_id(value: object) -> DigestCardId | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = CardId.parse(value)
    except CardIdError:
        return None
    return parsed if isinstance(parsed, DigestCardId) else None


def _ref(data: Mapping[str, Any]) -> ItemRef:
    return ItemRef(
        whole_number(data, "return_id"),
        whole_number(data, "version"),
        whole_number(data, "step_index", least=0),
    )


def _refs(data: Mapping[str, Any]) -> list[ItemRef]:
    items = data.get("items")
    if not isinstance(items, list) or len(items) > MAX_ITEMS_PER_CLICK:
        raise BadAction(f"card data's 'items' must be a list of at most {MAX_ITEMS_PER_CLICK}")
    refs = []
    for item in items:
        if not isinstance(item, Mapping):
            raise BadAction("each of card data's 'items' must name a return, version and step")
        refs.append(_ref(item))
    return refs


# --- sending --------------------------------------------------------------------------


def draw_digest(tx: Transaction, ctx: EngineContext, timer: Timer, now: datetime) -> None:
    """A digest timer fired: send each part once, and update the parts sent before.

    Nothing is sent to an approver with nothing waiting who has had no digest yet; a
    part left over when the digest shrank says its items moved to the earlier parts.
    """
    approver_id = str(timer.payload.get("approver_id") or "")
    cycle = tx.get_cycle(timer.subject_id or 0)
    flow = ctx.flow(cycle.flow_id)
    person = StoreDirectory(tx, flow).find(approver_id)
    if person is None:
        return
    key = DigestCardKey.parse(timer.dedup_key)
    view = digest_view(tx, ctx, cycle, approver_id, now=now)
    base = DigestCardId(cycle.id or 0, approver_id)
    sent_before = _delivered(tx, base.with_part(1))
    if not view.items and not sent_before:
        return
    cards = render_digest(
        view, lambda n: str(base.with_part(n)), max_bytes=ctx.config.max_card_bytes
    )
    count = len(view.items)
    subject = (
        f"Approvals waiting: {flow.name} {view.period_label} "
        f"({count} {'item' if count == 1 else 'items'})"
    )
    for number, card in enumerate(cards, 1):
        card_id = base.with_part(number)
        created = send_card(
            tx,
            ctx,
            card_id=card_id,
            person=person,
            channel=flow.channels[0],
            fallback_email="email" in flow.channels,
            card=card,
            subject=subject if len(cards) == 1 else f"{subject}, part {number} of {len(cards)}",
            summary=digest_summary(view),
            link=view.link,
            subject_type=SubjectType.CYCLE,
            subject_id=cycle.id or 0,
            now=now,
            dedup_key=CardSendKey(card_id),
        )
        if not created:
            update_card(
                tx,
                ctx,
                card_id=card_id,
                card=card,
                dedup_key=DigestUpdateKey(card_id, key),
                now=now,
            )
    number = len(cards) + 1
    while _delivered(tx, base.with_part(number)):
        card_id = base.with_part(number)
        update_card(
            tx,
            ctx,
            card_id=card_id,
            card=_rest(ctx, view, str(card_id)),
            dedup_key=DigestUpdateKey(card_id, key),
            now=now,
        )
        number += 1


def _delivered(tx: Transaction, card_id: DigestCardId) -> bool:
    return (
        tx.find_delivery(str(card_id)) is not None
        or tx.find_delivery(str(card_id.as_email())) is not None
    )
