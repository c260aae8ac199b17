"""Walking a return through its approver chain: which step is next, who is asked."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from m365perf.cards import render_approval, summary_text
from m365perf.domain.approvers import (
    Condition,
    Person,
    Unroutable,
    condition_applies,
    describe_condition,
)
from m365perf.domain.kinds import Rag
from m365perf.domain.lifecycle import CURRENT_STEP, PASSED_STEP
from m365perf.engine.audit import audit_step, audit_transition
from m365perf.engine.closing import close_when_all_approved
from m365perf.engine.context import EngineContext, at_local, local_day
from m365perf.engine.delegation import step_covers
from m365perf.engine.outbox import send_card, send_mail
from m365perf.engine.people import StoreDirectory
from m365perf.engine.publish import queue_write_back
from m365perf.engine.views import approval_view
from m365perf.flows.model import ApprovalStep as FlowStep
from m365perf.flows.model import Flow
from m365perf.messages.ids import (
    ApprovalCardId,
    CardRoundKey,
    DigestCardKey,
    StepTimeoutKey,
    UnroutableReturnMailKey,
)
from m365perf.messages.names import AuditAction, SubjectType, TimerKind
from m365perf.plan.routing import route, step_rules
from m365perf.plan.timetable import calendar_for
from m365perf.store import (
    ApprovalStep,
    Cycle,
    Return,
    StepSpec,
    StepStatus,
    Transaction,
)

SYSTEM = "m365perf"
TIMEOUT_AT = time(9, 0)
DIGEST_DEBOUNCE = timedelta(minutes=1)
"""How long a digest waits for more changes before it is drawn again."""


def flow_step(flow: Flow, name: str) -> FlowStep | None:
    return next((s for s in flow.approval.steps if s.name == name), None)


def approval_card_id(ret: Return, step: ApprovalStep, approver_id: str) -> ApprovalCardId:
    return ApprovalCardId(ret.id or 0, step.return_version, step.step_index, approver_id)


def start_chain(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    *,
    change_percent: float | None,
    now: datetime,
) -> str:
    """Create the chain for a just-submitted return and ask its first approver.

    Returns what happened in words, for the owner's receipt and the audit.
    """
    flow = ctx.flow(cycle.flow_id)
    indicator = tx.find_indicator(flow.id, ret.indicator_key)
    owner_ref = ret.owner_id or ret.owner_email or ""
    routed = route(flow, StoreDirectory(tx, flow), owner_ref, indicator.raw if indicator else {})
    if isinstance(routed, Unroutable):
        send_mail(
            tx,
            ctx,
            to=flow.performance_team or [ctx.config.service_mailbox],
            subject=f"{flow.name} {cycle.period}: a return has nobody to approve it",
            lines=[f"{ret.indicator_key}: {routed.reason}", "Fix the register, then resend."],
            dedup_key=UnroutableReturnMailKey(ret.id or 0, ret.version),
            now=now,
        )
        return f"waiting: {routed.reason}"
    specs = [
        StepSpec(name=step.rule.name, approvers=[p.id for p in step.approvers], any_of=True)
        for step in routed.chain
    ]
    steps = tx.create_steps(ret.id or 0, ret.version, specs, now=now)
    return advance(tx, ctx, cycle, ret, steps, change_percent=change_percent, now=now)


def latest_chains(tx: Transaction, return_ids: Collection[int]) -> dict[int, list[ApprovalStep]]:
    """Each return's chain for its latest version (as ``list_steps`` gives one), for many
    returns in one read."""
    latest: dict[int, list[ApprovalStep]] = {}
    for step in tx.list_chains(return_ids):
        chain = latest.setdefault(step.return_id, [])
        if chain and chain[0].return_version != step.return_version:
            chain.clear()  # ordered by version: a newer version replaces the older chain
        chain.append(step)
    return latest


def current_step(steps: Sequence[ApprovalStep]) -> ApprovalStep | None:
    """The step of a chain whose turn it is (asked or escalated), if any."""
    return next((s for s in steps if s.status in CURRENT_STEP), None)


def advance(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    steps: list[ApprovalStep],
    *,
    change_percent: float | None,
    now: datetime,
) -> str:
    """Ask the next step whose condition holds (skipping, with why, those that do not);
    approve the return when no step is left. Steps are taken strictly in order."""
    flow = ctx.flow(cycle.flow_id)
    for step in steps:
        if step.status in PASSED_STEP:
            continue
        if step.status in CURRENT_STEP:
            return f"awaiting {step.name}"
        if step.status is not StepStatus.PENDING:  # rejected: the chain has ended
            return f"{step.status} at {step.name}"
        condition = step_condition(flow, step.name)
        if condition is not None and not condition_applies(
            condition,
            rag=ret.rag or Rag.NONE,
            direction=ret.direction,
            change_percent=change_percent,
        ):
            skipped = tx.skip_step(
                step.id or 0,
                step.version,
                by=SYSTEM,
                at=now,
                reason=f"not needed: only {describe_condition(condition)}",
            )
            audit_step(tx, cycle, ret, step, skipped, SYSTEM, now)
            continue
        asked = tx.ask_step(step.id or 0, step.version, at=now)
        audit_step(tx, cycle, ret, step, asked, SYSTEM, now)
        chain = [asked if s.id == asked.id else s for s in steps]
        send_approval_cards(tx, ctx, cycle, ret, chain, asked, now=now)
        rule = flow_step(flow, step.name)
        if rule is not None and rule.timeout_working_days:
            days = calendar_for(flow)
            due = days.add_working_days(local_day(now), rule.timeout_working_days)
            tx.schedule_timer(
                TimerKind.STEP_TIMEOUT,
                due_at=at_local(due, TIMEOUT_AT),
                dedup_key=StepTimeoutKey(step.id or 0, 1).format(),
                subject_type=SubjectType.STEP,
                subject_id=step.id,
                payload={"round": 1},
                now=now,
            )
        return f"awaiting {step.name}"
    approve_return(tx, ctx, cycle, ret, now=now)
    return "approved"


def step_condition(flow: Flow, name: str) -> Condition | None:
    """The resolved condition of a flow's step (None: the step always applies)."""
    rule = flow_step(flow, name)
    if rule is None or rule.when is None:
        return None
    return next(r.condition for r in step_rules(flow) if r.name == name)


def send_approval_cards(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    steps: list[ApprovalStep],
    step: ApprovalStep,
    *,
    now: datetime,
    round_name: str = "ask",
) -> None:
    """Queue the approval card to every approver of the (current) step.

    Whoever acts for an away approver today (``engine.delegation``) gets one too, its
    subject saying for whom; the approver keeps theirs, and the first decision stands.
    A flow on digests (the default) queues no card here: each approver's (and cover's)
    digest is drawn again a moment later, with this return on it
    (see :func:`queue_digest_update`).
    """
    flow = ctx.flow(cycle.flow_id)
    if flow.approval.cards == "digest":
        covers = [c.acting.id for c in step_covers(tx, flow, step, ret, local_day(now))]
        queue_digest_update(tx, cycle.id or 0, [*step.approvers, *covers], now=now)
        return
    for approver_id in step.approvers:
        person = StoreDirectory(tx, flow).find(approver_id)
        if person is None:
            continue
        _send_one(tx, ctx, cycle, ret, steps, step, person, now=now, round_name=round_name)
    send_cover_cards(
        tx,
        ctx,
        cycle,
        ret,
        steps,
        step,
        now=now,
        round_name="cover" if round_name == "ask" else round_name,
    )


def send_cover_cards(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    steps: list[ApprovalStep],
    step: ApprovalStep,
    *,
    now: datetime,
    round_name: str = "cover",
) -> int:
    """Queue the step's card to everyone acting for one of its approvers today; how many new.

    Each card sent under a delegation is audited with both names ("step.delegated"). On
    a digest flow the cover's digest is drawn again instead (it lists what they cover).
    """
    flow = ctx.flow(cycle.flow_id)
    sent = 0
    for cover in step_covers(tx, flow, step, ret, local_day(now)):
        if flow.approval.cards == "digest":
            queue_digest_update(tx, cycle.id or 0, [cover.acting.id], now=now)
            continue
        if _send_one(
            tx,
            ctx,
            cycle,
            ret,
            steps,
            step,
            cover.acting,
            now=now,
            round_name=round_name,
            acting_for=cover.approver.name,
        ):
            sent += 1
            tx.audit(
                AuditAction.STEP_DELEGATED,
                at=now,
                actor=SYSTEM,
                subject_type=SubjectType.RETURN,
                subject_id=ret.id or 0,
                cycle_id=cycle.id,
                after={
                    "step": step.name,
                    "index": step.step_index,
                    "to": cover.acting.id,
                    "for": cover.approver.id,
                    "acting": cover.label,
                    "via": cover.via,
                    "delegation": cover.delegation_id,
                },
            )
    return sent


def _send_one(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    steps: list[ApprovalStep],
    step: ApprovalStep,
    person: Person,
    *,
    now: datetime,
    round_name: str,
    acting_for: str | None = None,
) -> bool:
    flow = ctx.flow(cycle.flow_id)
    card_id = approval_card_id(ret, step, person.id)
    view = approval_view(tx, ctx, cycle, ret, steps, step, card_id=str(card_id), now=now)
    web = ctx.approvals_link(cycle.id or 0)
    view = replace(view, web_link=web)
    card = render_approval(view, max_bytes=ctx.config.max_card_bytes)
    what = f"{view.indicator_name} {view.period_label} ({view.owner_name})"
    return send_card(
        tx,
        ctx,
        card_id=card_id,
        person=person,
        channel=flow.channels[0],
        fallback_email="email" in flow.channels,
        card=card,
        subject=f"Approve for {acting_for}: {what}" if acting_for else f"Approve: {what}",
        # The web page (sign-in) for clients that cannot run the card's buttons.
        summary=summary_text(view, web),
        link=web or "",
        subject_type=SubjectType.STEP,
        subject_id=step.id or 0,
        now=now,
        dedup_key=CardRoundKey(card_id, round_name),
    )


def digest_due(now: datetime) -> datetime:
    """When a digest changed at ``now`` is drawn again: the end of its debounce window.

    Windows are whole periods of :data:`DIGEST_DEBOUNCE` from the epoch, so every change in
    one window (a burst of 50 returns) makes one update, and one digest is updated at most
    once a window: far inside Teams' limit per conversation (7 a second, 60 in 30 s).
    """
    step = DIGEST_DEBOUNCE.total_seconds()
    return datetime.fromtimestamp((now.timestamp() // step + 1) * step, tz=UTC)


def queue_digest_update(
    tx: Transaction, cycle_id: int, approver_ids: Sequence[str], *, now: datetime
) -> None:
    """Draw these approvers' digests of the cycle again once the debounce window ends."""
    due = digest_due(now)
    for approver_id in dict.fromkeys(approver_ids):
        tx.schedule_timer(
            TimerKind.DIGEST_CARD,
            due_at=due,
            dedup_key=DigestCardKey(cycle_id, approver_id, due).format(),
            subject_type=SubjectType.CYCLE,
            subject_id=cycle_id,
            payload={"approver_id": approver_id},
            now=now,
        )


def approve_return(
    tx: Transaction, ctx: EngineContext, cycle: Cycle, ret: Return, *, now: datetime
) -> Return:
    """The chain is done: the return is approved, written back and the dataset refreshed."""
    steps = tx.list_steps(ret.id or 0, ret.version)
    decided = [s for s in steps if s.status is StepStatus.APPROVED]
    by = (decided[-1].decided_by if decided else None) or SYSTEM
    approved = tx.approve_return(ret.id or 0, ret.version, by=by, now=now)
    audit_transition(tx, AuditAction.RETURN_APPROVED, actor=by, before=ret, after=approved, at=now)
    queue_write_back(tx, ctx, cycle, approved, steps, now=now)
    close_when_all_approved(tx, ctx, cycle, now=now)
    return approved
