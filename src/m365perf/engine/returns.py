"""An owner's submit: validate each figure, accept what is right, show what is not.

An owner may return part of their list now and the rest later; a figure already
returned, or a card drawn for an older version, is never overwritten by a stale click.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from m365perf.cards import (
    ACTION_MAX_LENGTH,
    COMMENT_MAX_LENGTH,
    REASON_MAX_LENGTH,
    VALUE_MAX_LENGTH,
    Draft,
    InputError,
    OwnerRequestView,
    ReceiptView,
    SubmissionError,
    format_date,
    parse_action_updates,
    parse_owner_submission,
    render_owner_requests,
    render_receipt,
)
from m365perf.cards.actions import ACTION_WHO_MAX_LENGTH
from m365perf.domain.approvers import Person
from m365perf.domain.periods import Period
from m365perf.domain.values import Bounds
from m365perf.engine.actions import (
    ActionEntry,
    apply_action_updates,
    check_action,
    record_action,
)
from m365perf.engine.assessment import Assessment, assess, is_blank
from m365perf.engine.audit import audit_transition
from m365perf.engine.carddata import check_characters, request_card_id_from, shown, whole_number
from m365perf.engine.chain import latest_chains, start_chain
from m365perf.engine.closing import open_for_owner
from m365perf.engine.context import Caller, EngineContext, local_day
from m365perf.engine.errors import BadAction, NotYours, UnknownSubject
from m365perf.engine.views import (
    awaiting_names,
    history_before,
    indicator_kind,
    indicator_target,
    owner_request,
    read_ahead,
    returned_item,
)
from m365perf.flows.model import Flow
from m365perf.messages.ids import ROUND_SHOWN, RequestCardId
from m365perf.messages.names import AuditAction, SubjectType
from m365perf.store import (
    Cycle,
    CycleStatus,
    NotFound,
    Return,
    ReturnFigure,
    ReturnStatus,
    Store,
    Transaction,
    TransitionRefused,
)

Json = dict[str, Any]
_STALE = (
    "This return changed since your card was drawn (sent back, closed, or returned in "
    "another channel): check the figure and submit again."
)


def _bounds(raw: Mapping[str, Any], minimum: str | None, maximum: str | None) -> Bounds | None:
    def number(column: str | None) -> float | None:
        text = str(raw.get(column, "") or "").strip() if column else ""
        try:
            return float(text) if text else None
        except ValueError:
            return None

    low, high = number(minimum), number(maximum)
    return Bounds(low, high) if low is not None or high is not None else None


def submit_returns(
    store: Store, ctx: EngineContext, caller: Caller, data: Mapping[str, Any], *, now: datetime
) -> Json:
    """Handle "Submit returns" from an owner's card; the reply replaces that card."""
    view = submit_returns_view(store, ctx, caller, data, now=now)
    if isinstance(view, ReceiptView):
        return render_receipt(view, max_bytes=ctx.config.max_card_bytes)
    cards = render_owner_requests(view, max_bytes=ctx.config.max_card_bytes)
    return _first_with_inputs(cards)


def submit_returns_view(
    store: Store, ctx: EngineContext, caller: Caller, data: Mapping[str, Any], *, now: datetime
) -> OwnerRequestView | ReceiptView:
    """Act on "Submit returns" and say what to show next, for any channel to draw.

    The owner's list again (with the errors and what was typed) while anything is left
    to return or to correct; otherwise the receipt. The web form draws it as HTML, where
    a card reply could hold only one part of a long list.
    """
    check_characters(data)
    try:
        submission = parse_owner_submission(data)
        updates = parse_action_updates(data)
    except SubmissionError as exc:
        raise BadAction(str(exc)) from None
    cycle_id = whole_number(data, "cycle_id")
    if submission.owner_id != caller.user_id:
        raise NotYours("this card was sent to someone else; only they can return these figures")
    with store.transaction() as tx:
        try:
            cycle = tx.get_cycle(cycle_id)
        except NotFound:
            raise UnknownSubject(f"cycle {cycle_id} does not exist") from None
        flow = ctx.flow(cycle.flow_id)
        period = ctx.period_of(cycle)
        mine = {
            r.indicator_key: r for r in tx.list_returns(cycle_id=cycle_id, owner_id=caller.user_id)
        }
        on_card: list[Return] = []
        for key in submission.versions:
            ret = mine.get(key)
            if ret is None:
                raise NotYours(f"indicator {shown(key)} is not yours to return in this cycle")
            on_card.append(ret)
        _read_ahead(tx, flow, period, on_card, caller.user_id)
        card_id = request_card_id_from(
            data,
            RequestCardId(cycle_id, caller.user_id, ROUND_SHOWN),
            {ret.id for ret in on_card if ret.id is not None},
        )
        errors: dict[str, tuple[str | InputError, ...]] = {}
        action_errors: dict[str, tuple[str, ...]] = {}
        typed = False
        drafts: dict[str, Draft] = {}
        confirm: set[str] = set()
        takes = open_for_owner(flow, cycle)
        accepted: list[str] = []
        for ret in on_card:
            draft = submission.drafts[ret.indicator_key]
            stale = ret.version != submission.versions[ret.indicator_key]
            if ret.status is ReturnStatus.MISSED and ret.status not in takes:
                if not is_blank(draft):
                    errors[ret.indicator_key] = (_closed_message(cycle),)
                continue
            if ret.status not in takes or is_blank(draft):
                continue
            typed = True
            too_long = _too_long(draft)
            if too_long:  # no card input takes this much: say so, and show what fits
                errors[ret.indicator_key] = too_long
                drafts[ret.indicator_key] = _fitted(draft)
                continue
            if stale:  # it moved on since the card was drawn: show it again, typing kept
                errors[ret.indicator_key] = (_STALE,)
                drafts[ret.indicator_key] = draft
                continue
            judged = _judge(tx, ctx, cycle.flow_id, period, ret, draft)
            entry, action_problems = check_action(
                tx, flow, ret, draft, judged, today=local_day(now)
            )
            if not judged.accepted or action_problems:
                if not judged.accepted:
                    errors[ret.indicator_key] = judged.input_errors
                if action_problems:
                    action_errors[ret.indicator_key] = action_problems
                drafts[ret.indicator_key] = draft
                if judged.needs_confirmation:
                    confirm.add(ret.indicator_key)
                continue
            if _accept(tx, ctx, cycle_id, ret, draft, judged, caller, now=now, action=entry):
                accepted.append(ret.indicator_key)
        if accepted:
            _collecting(tx, cycle_id, caller, accepted[0], now=now)
        update_errors, updated = apply_action_updates(tx, ctx, caller, updates, now=now)
        now_mine = {r.id: r for r in tx.list_returns(cycle_id=cycle_id, owner_id=caller.user_id)}
        current = [now_mine.get(ret.id) or tx.get_return(ret.id or 0) for ret in on_card]
        owner = tx.find_person(caller.user_id)
        owner_name = owner.name if owner else caller.name
        if errors or action_errors or update_errors or any(r.status in takes for r in current):
            return owner_request(
                tx,
                ctx,
                cycle,
                caller.user_id,
                owner_name,
                current,
                card_id=card_id,
                now=now,
                drafts=drafts,
                errors=errors,
                confirm=frozenset(confirm),
                action_errors=action_errors,
                typed_actions={i: u for i, u in updates.items() if i in update_errors},
                action_update_errors=update_errors,
                notice=None if typed or errors or updated or update_errors else _NOTHING_TYPED,
            )
        others = [
            r
            for r in now_mine.values()
            if r.status in takes and r.id not in {c.id for c in current}
        ]
        tx.prefetch_indicators(flow.id, [r.indicator_key for r in others])
        chains = latest_chains(tx, [r.id or 0 for r in current])
        tx.prefetch_people([a for steps in chains.values() for s in steps for a in s.approvers])
        outstanding = []
        for other in others:
            indicator = tx.find_indicator(flow.id, other.indicator_key)
            outstanding.append(indicator.name if indicator else other.indicator_key)
        return ReceiptView(
            cycle_id=str(cycle_id),
            owner_id=caller.user_id,
            card_id=card_id,
            owner_name=owner_name,
            flow_name=flow.name,
            period_label=period.label,
            due=cycle.due_date,
            returned=tuple(
                returned_item(tx, flow, r, awaiting_names(tx, chains.get(r.id or 0, [])))
                for r in current
            ),
            outstanding=tuple(outstanding),
        )


_NOTHING_TYPED = (
    "Nothing was submitted: the boxes were empty. For each indicator below give a value "
    "(and commentary where it is needed), or tick “No data this period” and say why."
)

_LIMITS = (
    ("value", "The value", VALUE_MAX_LENGTH),
    ("comment", "The commentary", COMMENT_MAX_LENGTH),
    ("no_data_reason", "The reason for no data", REASON_MAX_LENGTH),
    ("action_what", "The improvement action", ACTION_MAX_LENGTH),
    ("action_who", "Who will do the action", ACTION_WHO_MAX_LENGTH),
    ("action_by", "The action's date", 32),
)


def _too_long(draft: Draft) -> tuple[str, ...]:
    """What was typed beyond what the card's inputs take (only a forged click can)."""
    return tuple(
        f"{label} is {len(getattr(draft, name)):,} characters long, and can be at most "
        f"{limit:,}: shorten it and submit again."
        for name, label, limit in _LIMITS
        if len(getattr(draft, name)) > limit
    )


def _fitted(draft: Draft) -> Draft:
    """The draft cut to what the card's inputs take, to show again with the error."""
    return replace(draft, **{name: getattr(draft, name)[:limit] for name, _, limit in _LIMITS})


def _first_with_inputs(cards: list[Json]) -> Json:
    """The first part of a split card that still asks for something (else the first)."""
    for card in cards:
        if any(
            isinstance(a.get("data"), dict) and a["data"].get("versions")
            for a in card.get("actions", [])
        ):
            return card
    return cards[0]


def _read_ahead(
    tx: Transaction, flow: Flow, period: Period, returns: Sequence[Return], owner_id: str
) -> None:
    """What judging and routing these returns needs, a statement per kind for all of
    them, with the people their register rows name (the chain's approvers)."""
    tx.prefetch_indicators(flow.id, [r.indicator_key for r in returns])
    named = {owner_id}
    for ret in returns:
        indicator = tx.find_indicator(flow.id, ret.indicator_key)
        if indicator is not None:
            named.update(v for v in indicator.raw.values() if isinstance(v, str) and "@" in v)
    read_ahead(tx, flow, period, returns, *named)


def _judge(
    tx: Transaction, ctx: EngineContext, flow_id: str, period: Any, ret: Return, draft: Draft
) -> Assessment:
    flow = ctx.flow(flow_id)
    indicator = tx.find_indicator(flow_id, ret.indicator_key)
    if indicator is None:
        raise UnknownSubject(f"indicator {ret.indicator_key} is no longer in the register")
    target, tolerance = indicator_target(tx, flow, indicator, period)
    bounds = _bounds(
        indicator.raw, flow.source.column_for("minimum"), flow.source.column_for("maximum")
    )
    kind, profile = indicator_kind(flow, indicator)
    return assess(
        draft,
        kind=kind,
        profile=profile,
        flow=flow,
        period=period,
        unit=indicator.unit,
        polarity=indicator.polarity,
        target=target,
        tolerance=tolerance,
        history=history_before(tx, flow, ret.indicator_key, period),
        bounds=bounds,
    )


def _accept(
    tx: Transaction,
    ctx: EngineContext,
    cycle_id: int,
    ret: Return,
    draft: Draft,
    judged: Assessment,
    caller: Caller,
    *,
    now: datetime,
    action: ActionEntry | None = None,
) -> Return | None:
    cycle = tx.get_cycle(cycle_id)
    figure = ReturnFigure(
        value=judged.value,
        raw_value=judged.raw_value or None,
        no_data_reason=judged.no_data_reason,
        commentary=judged.commentary or None,
        rag=judged.rag,
        direction=judged.vs_previous.value,
        late=local_day(now) > cycle.due_date,
        outlier_confirmed=bool(judged.data_quality_flag and draft.confirmed),
        data_quality_flag=judged.data_quality_flag,
    )
    try:
        updated = tx.submit_return(ret.id or 0, ret.version, figure, by=caller.user_id, now=now)
    except TransitionRefused:
        return None
    if action is not None:  # before the chain starts, so the approver's card shows it
        record_action(tx, ctx, cycle, updated, action, caller, now=now)
    outcome = start_chain(tx, ctx, cycle, updated, change_percent=judged.change_percent, now=now)
    tx.audit(
        AuditAction.RETURN_SUBMITTED_LATE
        if ret.status is ReturnStatus.MISSED
        else AuditAction.RETURN_SUBMITTED,
        at=now,
        actor=caller.user_id,
        subject_type=SubjectType.RETURN,
        subject_id=ret.id or 0,
        cycle_id=cycle_id,
        before=_state(ret),
        after={**_state(updated), "next": outcome, "variation": judged.variation},
    )
    return updated


def _collecting(
    tx: Transaction, cycle_id: int, caller: Caller, first_return: str, *, now: datetime
) -> None:
    """The cycle's first return moves it to collecting: once per click, after its returns
    (so the cycle's row, which every owner's click would update, is locked only from
    there to the commit, and not at all once the cycle is collecting)."""
    cycle = tx.get_cycle(cycle_id)
    if cycle.status is CycleStatus.OPEN and tx.collect_cycle(cycle_id, now=now):
        audit_transition(
            tx,
            AuditAction.CYCLE_COLLECTING,
            actor=caller.user_id,
            before=cycle,
            after=tx.get_cycle(cycle_id),
            at=now,
            first_return=first_return,
        )


def _closed_message(cycle: Cycle) -> str:
    closed = format_date(local_day(cycle.closed_at)) if cycle.closed_at else "already"
    return (
        f"This cycle closed on {closed}: this figure can no longer be returned here. "
        "Ask the performance team to take it as a correction."
    )


def _state(ret: Return) -> dict[str, Any]:
    return {
        "status": ret.status.value,
        "version": ret.version,
        "value": ret.value,
        "no_data_reason": ret.no_data_reason,
        "rag": ret.rag.value if ret.rag else None,
        "commentary": ret.commentary,
        "late": ret.late,
    }


def owner_person(tx: Transaction, ret: Return) -> Person:
    """The owner as a person (falls back to the e-mail kept on the return)."""
    found = tx.find_person(ret.owner_id or "") if ret.owner_id else None
    if found is not None:
        return Person(id=found.id, name=found.name, email=found.email)
    email = ret.owner_email or ret.owner_id or ""
    return Person(id=ret.owner_id or email, name=email, email=email)


def show_request(
    store: Store, ctx: EngineContext, caller: Caller, data: Mapping[str, Any], *, now: datetime
) -> Json:
    """The owner's current card for a cycle (the receipt's "return the rest" button)."""
    check_characters(data)
    cycle_id = whole_number(data, "cycle_id")
    if data.get("owner_id") != caller.user_id:
        raise NotYours("this card was sent to someone else")
    with store.transaction() as tx:
        try:
            cycle = tx.get_cycle(cycle_id)
        except NotFound:
            raise UnknownSubject(f"cycle {cycle_id} does not exist") from None
        returns = tx.list_returns(cycle_id=cycle_id, owner_id=caller.user_id)
        if not returns:
            raise NotYours("you have no returns in this cycle")
        owner = tx.find_person(caller.user_id)
        view = owner_request(
            tx,
            ctx,
            cycle,
            caller.user_id,
            owner.name if owner else caller.name,
            returns,
            card_id=request_card_id_from(
                data,
                RequestCardId(cycle_id, caller.user_id, ROUND_SHOWN),
                {ret.id for ret in returns if ret.id is not None},
            ),
            now=now,
        )
        return _first_with_inputs(render_owner_requests(view, max_bytes=ctx.config.max_card_bytes))
