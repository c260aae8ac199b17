"""An approver's click: approve, or reject with a reason, exactly once.

A stale card (already decided, or drawn for an older version) changes nothing and is
replaced with who decided what and when. Nobody approves their own return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from m365perf.cards import (
    REASON_MAX_LENGTH,
    Outcome,
    OutcomeView,
    RejectionView,
    render_approval,
    render_notice,
    render_outcome,
    render_rejection,
    summary_text,
)
from m365perf.domain.lifecycle import CURRENT_STEP, DECIDED_STEP
from m365perf.engine.audit import audit_step, audit_transition
from m365perf.engine.carddata import approval_card_id_from, check_characters, text, whole_number
from m365perf.engine.chain import (
    SYSTEM,
    advance,
    approval_card_id,
    current_step,
    queue_digest_update,
)
from m365perf.engine.chasing import schedule_chase
from m365perf.engine.context import Caller, EngineContext, local_day
from m365perf.engine.delegation import may_decide, step_covers
from m365perf.engine.errors import BadAction, UnknownSubject
from m365perf.engine.outbox import send_card, update_card
from m365perf.engine.returns import owner_person
from m365perf.engine.views import approval_view, read_ahead, request_item
from m365perf.messages.ids import CardOutcomeKey, RejectionCardId
from m365perf.messages.names import AuditAction, SubjectType
from m365perf.store import (
    AlreadyDecided,
    ApprovalStep,
    Cycle,
    NotFound,
    Return,
    ReturnStatus,
    StepStatus,
    Store,
    Transaction,
    TransitionRefused,
)

Json = dict[str, Any]
_NOT_AN_APPROVER = (
    "You are not one of its approvers: this return's approval buttons are for its approvers only."
)


class Refusal(StrEnum):
    """Why a decision on one step changed nothing."""

    NOT_APPROVER = "not_approver"
    """The caller is not an approver of the return (nothing about it may be shown)."""
    SUPERSEDED = "superseded"
    """A newer version of the return was submitted (or it is no longer in approval)."""
    DECIDED = "decided"
    """The step was decided already (by the caller or a colleague): the first stands."""
    REFUSED = "refused"
    """Not the caller's turn, their own return, a missing or too long reason."""
    CHANGED = "changed"
    """The step changed while the caller decided (escalated): nothing changed."""


@dataclass(frozen=True)
class StepRefused:
    """A decision that changed nothing, and why, in words for the approver."""

    refusal: Refusal
    message: str
    step: ApprovalStep | None = None


@dataclass(frozen=True)
class StepDecided:
    """A step decided by the caller (the chain has moved on or ended)."""

    step: ApprovalStep
    ret: Return


def decide_step(
    tx: Transaction,
    ctx: EngineContext,
    caller: Caller,
    verb: str,
    *,
    return_id: int,
    version: int,
    index: int,
    reason: str,
    now: datetime,
) -> StepDecided | StepRefused:
    """Approve or reject step ``index`` of a return's chain for ``version``, exactly once.

    The one decision path, for the per-item card, the digest and the web page alike: the
    store decides from the verified caller and the current state, never from the card.
    A step that is not the current one, a stale version, a second click or a caller who
    is not the step's approver changes nothing and says why.
    """
    try:
        ret = tx.get_return(return_id)
        cycle = tx.get_cycle(ret.cycle_id)
    except NotFound:
        raise UnknownSubject(f"return {return_id} does not exist") from None
    flow = ctx.flow(cycle.flow_id)
    day = local_day(now)
    read_ahead(tx, flow, ctx.period_of(cycle), [ret], caller.user_id)
    chain = tx.list_steps(return_id)
    if not chain or chain[0].return_version != version:
        mine = tx.list_steps(return_id, version)
        if not any(may_decide(tx, flow, s, ret, caller.user_id, day) for s in [*chain, *mine]):
            return StepRefused(Refusal.NOT_APPROVER, _NOT_AN_APPROVER)
        return StepRefused(Refusal.SUPERSEDED, "A newer version of this return was submitted.")
    own = caller.user_id in (ret.owner_id, ret.submitted_by)
    if not own and not any(may_decide(tx, flow, s, ret, caller.user_id, day) for s in chain):
        return StepRefused(Refusal.NOT_APPROVER, _NOT_AN_APPROVER)
    if not 0 <= index < len(chain):
        return StepRefused(
            Refusal.REFUSED, f"Step {index} is not part of this return's approval chain."
        )
    step = chain[index]
    if step.status in DECIDED_STEP:
        return StepRefused(Refusal.DECIDED, _decided_words(tx, step), step)
    if ret.status is not ReturnStatus.RETURNED or ret.version != version:
        return StepRefused(Refusal.SUPERSEDED, "This return is no longer waiting for approval.")
    current = current_step(chain)
    decider = may_decide(tx, flow, step, ret, caller.user_id, day)
    refusal = None
    if own:
        refusal = "You cannot approve or reject your own return."
    elif current is None or current.id != step.id:
        waiting = current.name if current else "nobody"
        refusal = f"This return is waiting for {waiting}, not for you yet: nothing changed."
    elif decider is None:
        refusal = "This step is waiting for someone else: you are not one of its approvers."
    elif verb == "reject" and not reason:
        refusal = "Give a reason for rejecting, so the owner knows what to fix."
    elif len(reason) > REASON_MAX_LENGTH:
        refusal = (
            f"The reason is {len(reason):,} characters long, and a reason can be at most "
            f"{REASON_MAX_LENGTH:,}: shorten it and reject again. Nothing changed."
        )
    if refusal:
        return StepRefused(Refusal.REFUSED, refusal, step)
    try:
        if verb == "approve":
            decided = tx.approve_step(step.id or 0, step.version, by=caller.user_id, at=now)
        else:
            decided = tx.reject_step(
                step.id or 0, step.version, by=caller.user_id, at=now, reason=reason
            )
    except AlreadyDecided as exc:
        return StepRefused(Refusal.DECIDED, _decided_words(tx, exc.step), exc.step)
    except TransitionRefused:  # escalated while this card was open
        return StepRefused(
            Refusal.CHANGED,
            "This step changed while you decided: nothing changed, try again.",
            tx.get_step(step.id or 0),
        )
    tx.cancel_timers(SubjectType.STEP, step.id, now=now)
    cover = decider.cover if decider else None
    acting = {"for": cover.approver.id, "acting": cover.label, "via": cover.via} if cover else {}
    tx.audit(
        AuditAction.STEP_APPROVED if verb == "approve" else AuditAction.STEP_REJECTED,
        at=now,
        actor=caller.user_id,
        subject_type=SubjectType.RETURN,
        subject_id=return_id,
        cycle_id=cycle.id,
        before={"step": step.name, "status": step.status.value, "version": version},
        after={
            "step": step.name,
            "status": decided.status.value,
            "reason": reason or None,
            **acting,
        },
    )
    chain = tx.list_steps(return_id, version)
    if verb == "approve":
        change = change_percent(tx, ctx, cycle, ret)
        advance(tx, ctx, cycle, ret, chain, change_percent=change, now=now)
    else:
        _reject(tx, ctx, cycle, ret, decided, reason, now=now)
    if flow.approval.cards == "digest":
        covering = [c.acting.id for c in step_covers(tx, flow, decided, ret, day)]
        queue_digest_update(tx, cycle.id or 0, [*decided.approvers, *covering], now=now)
    return StepDecided(decided, tx.get_return(return_id))


def _decided_words(tx: Transaction, step: ApprovalStep) -> str:
    who = _name(tx, step.decided_by)
    if step.status is StepStatus.APPROVED:
        return f"Already approved by {who}."
    if step.status is StepStatus.REJECTED:
        return f"Already rejected by {who}: {step.reason or 'no reason given'}."
    return f"No longer needed ({step.status.value})."


def decide(
    store: Store,
    ctx: EngineContext,
    caller: Caller,
    verb: str,
    data: Mapping[str, Any],
    *,
    now: datetime,
) -> Json:
    """Approve or reject the current step of a return's chain; the reply replaces the card.

    The per-item approval card's click: :func:`decide_step` decides; this draws the card
    that answers it and replaces the other approvers' cards with the outcome.
    """
    if verb not in ("approve", "reject"):
        raise BadAction(f"unknown verb {verb!r}")
    check_characters(data)
    return_id, version = whole_number(data, "return_id"), whole_number(data, "version")
    index = whole_number(data, "step_index", least=0)
    reason = text(data, "reason").strip() if verb == "reject" else ""
    with store.transaction() as tx:
        result = decide_step(
            tx,
            ctx,
            caller,
            verb,
            return_id=return_id,
            version=version,
            index=index,
            reason=reason,
            now=now,
        )
        ret = tx.get_return(return_id)
        cycle = tx.get_cycle(ret.cycle_id)
        if isinstance(result, StepRefused):
            if result.refusal is Refusal.NOT_APPROVER:
                return _notice(ctx, result.message)
            if result.refusal is Refusal.SUPERSEDED:
                return _superseded(tx, ctx, cycle, ret)
            if result.refusal is Refusal.DECIDED and result.step is not None:
                return _outcome_card(tx, ctx, cycle, ret, result.step)
            if result.step is None:
                return _notice(ctx, result.message)
            step = result.step
            chain = tx.list_steps(return_id)
            card_id = approval_card_id_from(data, approval_card_id(ret, step, caller.user_id))
            view = approval_view(
                tx, ctx, cycle, ret, chain, step, card_id=card_id, error=result.message
            )
            return render_approval(view, max_bytes=ctx.config.max_card_bytes)
        decided = result.step
        outcome = _outcome_card(tx, ctx, cycle, result.ret, decided)
        flow = ctx.flow(cycle.flow_id)
        covering = [c.acting.id for c in step_covers(tx, flow, decided, ret, local_day(now))]
        for other in dict.fromkeys([*decided.approvers, *covering]):
            if other != caller.user_id:
                update_card(
                    tx,
                    ctx,
                    card_id=approval_card_id(ret, decided, other),
                    card=outcome,
                    dedup_key=CardOutcomeKey(decided.id or 0, other),
                    now=now,
                )
        return outcome


def _notice(ctx: EngineContext, message: str) -> Json:
    return render_notice("This card is not for you", message, max_bytes=ctx.config.max_card_bytes)


def change_percent(tx: Transaction, ctx: EngineContext, cycle: Cycle, ret: Return) -> float | None:
    period = ctx.period_of(cycle)
    history = tx.history(ret.indicator_key, cycle.frequency, before=period.start)
    previous = next((p for p in history if p.period_start == period.previous().start), None)
    if ret.value is None or previous is None or previous.value == 0:
        return None
    return abs(ret.value - previous.value) / abs(previous.value) * 100


def _name(tx: Transaction, person_id: str | None) -> str:
    if not person_id:
        return "someone"
    if person_id == SYSTEM:
        return "m365perf"
    found = tx.find_person(person_id)
    return found.name if found else person_id


def _decided_by(tx: Transaction, ret: Return, step: ApprovalStep) -> str:
    """Who decided, with both names when they acted for someone ("Sam Patel for Priya Sharma")."""
    if step.status in (StepStatus.APPROVED, StepStatus.REJECTED):
        for event in reversed(tx.list_audit(subject_type=SubjectType.RETURN, subject_id=ret.id)):
            after, before = event.after or {}, event.before or {}
            if (
                event.action in (AuditAction.STEP_APPROVED, AuditAction.STEP_REJECTED)
                and after.get("step") == step.name
                and before.get("version") == step.return_version
            ):
                acting = after.get("acting")
                if isinstance(acting, str) and acting:
                    return acting
                break
    return _name(tx, step.decided_by)


def _outcome_card(
    tx: Transaction, ctx: EngineContext, cycle: Cycle, ret: Return, step: ApprovalStep
) -> Json:
    flow = ctx.flow(cycle.flow_id)
    indicator = tx.find_indicator(flow.id, ret.indicator_key)
    owner = owner_person(tx, ret)
    approved = step.status is StepStatus.APPROVED
    nxt = None
    if approved:
        chain = tx.list_steps(ret.id or 0, step.return_version)
        waiting = [s for s in chain if s.status in CURRENT_STEP]
        nxt = (
            f"now with {waiting[0].name}"
            if waiting
            else ("approved and published" if ret.status is ReturnStatus.APPROVED else None)
        )
    view = OutcomeView(
        outcome=Outcome.APPROVED
        if approved
        else (Outcome.REJECTED if step.status is StepStatus.REJECTED else Outcome.SUPERSEDED),
        indicator_name=indicator.name if indicator else ret.indicator_key,
        owner_name=owner.name,
        period_label=ctx.period_of(cycle).label,
        at=step.decided_at or ret.updated_at,
        by=_decided_by(tx, ret, step),
        unit=indicator.unit if indicator else None,
        value=ret.value,
        reason=step.reason if step.status is StepStatus.REJECTED else None,
        next_step=nxt,
    )
    return render_outcome(view, max_bytes=ctx.config.max_card_bytes)


def _superseded(tx: Transaction, ctx: EngineContext, cycle: Cycle, ret: Return) -> Json:
    indicator = tx.find_indicator(cycle.flow_id, ret.indicator_key)
    view = OutcomeView(
        outcome=Outcome.SUPERSEDED,
        indicator_name=indicator.name if indicator else ret.indicator_key,
        owner_name=owner_person(tx, ret).name,
        period_label=ctx.period_of(cycle).label,
        at=ret.submitted_at or ret.updated_at,
        by=_name(tx, ret.submitted_by) if ret.submitted_by else None,
        unit=indicator.unit if indicator else None,
        value=ret.value,
    )
    return render_outcome(view, max_bytes=ctx.config.max_card_bytes)


def _reject(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    step: ApprovalStep,
    reason: str,
    *,
    now: datetime,
) -> None:
    """Send the return back to its owner with the reason, as a fresh one-indicator card."""
    for later in tx.list_steps(ret.id or 0, step.return_version):
        if later.status is StepStatus.PENDING:
            skipped = tx.skip_step(
                later.id or 0,
                later.version,
                by=SYSTEM,
                at=now,
                reason="the return was rejected at an earlier step",
            )
            audit_step(tx, cycle, ret, later, skipped, SYSTEM, now)
    send_back(
        tx,
        ctx,
        cycle,
        ret,
        by=step.decided_by or SYSTEM,
        reason=reason,
        action=AuditAction.RETURN_REJECTED,
        now=now,
    )


def send_back(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    *,
    by: str,
    reason: str,
    action: AuditAction,
    now: datetime,
) -> Return:
    """Give the return back to its owner with a reason, on a fresh one-indicator card."""
    flow = ctx.flow(cycle.flow_id)
    if action == "return.correction_requested":
        rejected = tx.reopen_return(ret.id or 0, ret.version, by=by, reason=reason, now=now)
    else:
        rejected = tx.send_back_return(ret.id or 0, ret.version, by=by, reason=reason, now=now)
    audit_transition(
        tx,
        action,
        actor=by,
        before=ret,
        after=rejected,
        at=now,
        reason=reason,
        # the figure sent back, for the approver's card when it comes back resubmitted
        previous_value=ret.value,
        previous_no_data_reason=ret.no_data_reason,
    )
    owner = owner_person(tx, rejected)
    period = ctx.period_of(cycle)
    card_id = RejectionCardId(ret.id or 0, rejected.version)
    view = RejectionView(
        cycle_id=str(cycle.id),
        owner_id=owner.id,
        card_id=str(card_id),
        owner_name=owner.name,
        flow_name=flow.name,
        period_label=period.label,
        due=cycle.due_date,
        indicator=request_item(tx, flow, period, rejected, show_sent_back=False),
        rejected_by=_name(tx, by),
        rejected_at=now,
        reason=reason,
        previous_value=ret.value,
        previous_commentary=ret.commentary or "",
        previous_no_data_reason=ret.no_data_reason,
        late=local_day(now) > cycle.due_date,
        correction=action == AuditAction.RETURN_CORRECTION_REQUESTED,
    )
    card = render_rejection(view, max_bytes=ctx.config.max_card_bytes)
    form = ctx.return_form(cycle.id or 0, owner.id)
    send_card(
        tx,
        ctx,
        card_id=card_id,
        person=owner,
        channel=flow.channels[0],
        fallback_email="email" in flow.channels,
        card=card,
        subject=f"Returned to you: {view.indicator.name} {period.label}",
        summary=summary_text(view, form is not None),
        return_form=form,
        subject_type=SubjectType.RETURN,
        subject_id=ret.id or 0,
        now=now,
    )
    schedule_chase(tx, flow, rejected, now=now)
    return rejected


def request_correction(
    store: Store,
    ctx: EngineContext,
    *,
    flow_id: str,
    period: str,
    indicator_key: str,
    by: str,
    reason: str,
    now: datetime,
) -> Return:
    """Reopen an approved return for a correction; it goes through approval again.

    The corrected figure is written back over the old row with a higher version.
    """
    if not reason.strip():
        raise BadAction("say why the figure needs correcting")
    flow = ctx.flow(flow_id)
    if not flow.approval.allow_corrections:
        raise BadAction(f"flow {flow_id} does not allow corrections after approval")
    with store.transaction() as tx:
        cycle = tx.find_cycle(flow_id, period)
        ret = tx.find_return(cycle.id or 0, indicator_key) if cycle else None
        if cycle is None or ret is None:
            raise UnknownSubject(f"no return of {indicator_key} in {flow_id} {period}")
        if ret.status is not ReturnStatus.APPROVED:
            raise BadAction(
                f"{indicator_key} {period} is {ret.status.value}, not approved: "
                "it can be changed without a correction"
            )
        return send_back(
            tx,
            ctx,
            cycle,
            ret,
            by=by,
            reason=reason.strip(),
            action=AuditAction.RETURN_CORRECTION_REQUESTED,
            now=now,
        )
