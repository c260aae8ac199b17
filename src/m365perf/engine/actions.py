"""Improvement actions: entered with a red (or special-cause) figure, updated on later cards.

A flow's ``actions:`` block says which results need one. The owner enters what will be
done, by whom (a person in the directory; themselves by default) and by when, with the
commentary; a figure that needs an action is refused without one, the message next to
the action's inputs. Open actions come back on the owner's next request cards to be
updated (not started, in progress, done, with a note), show on the approver's card,
are upserted into the flow's SharePoint actions list (``write_action``, keyed on
``ActionId``) and, once past their by-when date and not done, are chased on the flow's
overdue ladder: one short e-mail a day per person, listing all their overdue actions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from m365perf.cards import ActionUpdate, Draft, OpenAction, format_date
from m365perf.cards.actions import ACTION_MAX_LENGTH, ACTION_NOTE_MAX_LENGTH, ACTION_WHO_MAX_LENGTH
from m365perf.cards.formatting import shortened
from m365perf.domain.kinds import Rag
from m365perf.domain.lifecycle import OPEN_ACTION, ActionStatus
from m365perf.engine.assessment import Assessment
from m365perf.engine.context import Caller, EngineContext, at_local, local_day
from m365perf.engine.errors import BadAction, NotYours, UnknownSubject
from m365perf.engine.outbox import queue, send_mail
from m365perf.flows.model import Flow
from m365perf.flows.results import ACTION_COLUMNS, ACTION_KEY
from m365perf.messages import WriteAction
from m365perf.messages.ids import ActionChaseMailKey, ActionWriteKey, ChaseActionKey
from m365perf.messages.names import AuditAction, SubjectType, TimerKind
from m365perf.plan.timetable import calendar_for
from m365perf.store import (
    Cycle,
    ImprovementAction,
    NewAction,
    NotFound,
    Return,
    Timer,
    Transaction,
    TransitionRefused,
)

__all__ = [
    "MAX_ACTION_CHASES",
    "ActionEntry",
    "action_hint",
    "action_row",
    "apply_action_updates",
    "chase_action",
    "check_action",
    "open_actions",
    "record_action",
    "return_actions",
]

MAX_ACTION_CHASES = 3
"""Chases of one overdue action when the flow's reminders name no escalation count."""

_RAISED_FOR = {
    "red": "red",
    "special_cause_concern": "a special cause of concern",
    "offered": "action offered",
}
_STALE = "This action changed since your card was drawn: check it and submit again."


@dataclass(frozen=True)
class ActionEntry:
    """An action the owner typed that passed every check, ready to store."""

    what: str
    who_id: str
    due_on: date
    raised_for: str


def action_hint(flow: Flow) -> str | None:
    """What the card says above the action inputs; None when the flow has no actions."""
    if flow.actions is None:
        return None
    needs = []
    if "red" in flow.actions.required_for:
        needs.append("the figure is red")
    if "special_cause_concern" in flow.actions.required_for:
        needs.append("it shows a special cause of concern")
    return f"Needed if {' or '.join(needs)}: what will be done, by whom and by when."


def _needed_for(flow: Flow, judged: Assessment) -> str | None:
    """Why this figure needs an action (``red``, ``special_cause_concern``), if it does."""
    if flow.actions is None or judged.value is None:
        return None
    if "red" in flow.actions.required_for and judged.rag is Rag.RED:
        return "red"
    if "special_cause_concern" in flow.actions.required_for and judged.special_cause_concern:
        return "special_cause_concern"
    return None


def check_action(
    tx: Transaction,
    flow: Flow,
    ret: Return,
    draft: Draft,
    judged: Assessment,
    *,
    today: date,
) -> tuple[ActionEntry | None, tuple[str, ...]]:
    """The action typed with a figure, checked: (what to store, or the errors to show).

    Required when the figure needs one and the return has no open action yet (a
    resubmission keeps the action given first, and may revise it). An action typed for
    a figure that needs none is kept too, as offered.
    """
    if flow.actions is None:
        return None, ()
    reason = _needed_for(flow, judged)
    what, who, by = draft.action_what.strip(), draft.action_who.strip(), draft.action_by.strip()
    if not (what or who or by):
        existing = tx.find_action(ret.id or 0)
        if reason and existing is None:
            words = "red" if reason == "red" else "showing a special cause of concern"
            return None, (
                f"Add an improvement action: one is required when the figure is {words}. "
                "Say what will be done, by whom and by when.",
            )
        return None, ()
    errors: list[str] = []
    if not what:
        errors.append("Say what will be done.")
    elif len(what) > ACTION_MAX_LENGTH:
        errors.append(
            f"The action is {len(what):,} characters long, and can be at most "
            f"{ACTION_MAX_LENGTH:,}: shorten it and submit again."
        )
    who_id = ret.owner_id or ""
    if who:
        person = tx.find_person(who) if len(who) <= ACTION_WHO_MAX_LENGTH else None
        if person is None:
            errors.append(
                f"“{shortened(who, 60)}” is nobody in the directory: give the e-mail address "
                "of whoever will do it, or leave it blank for yourself."
            )
        else:
            who_id = person.id
    due: date | None = None
    if not by:
        errors.append("Say by when the action will be done (a date).")
    else:
        try:
            due = date.fromisoformat(by)
        except ValueError:
            errors.append(f"“{shortened(by, 30)}” is not a date: pick one, e.g. 2026-12-31.")
        if due is not None and due < today:
            errors.append(f"{format_date(due)} has passed: pick a date from today on.")
    if errors or due is None or not who_id:
        return None, tuple(errors)
    return ActionEntry(what, who_id, due, reason or "offered"), ()


def record_action(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    ret: Return,
    entry: ActionEntry,
    caller: Caller,
    *,
    now: datetime,
) -> ImprovementAction:
    """Store the return's action (or revise the open one it has), audit it, send it on."""
    existing = tx.find_action(ret.id or 0)
    if existing is None:
        action, _ = tx.create_action(
            NewAction(
                flow_id=cycle.flow_id,
                cycle_id=cycle.id or 0,
                return_id=ret.id or 0,
                indicator_key=ret.indicator_key,
                owner_id=ret.owner_id or caller.user_id,
                what=entry.what,
                who_id=entry.who_id,
                due_on=entry.due_on,
                raised_for=entry.raised_for,
            ),
            by=caller.user_id,
            now=now,
        )
        _audit(tx, AuditAction.ACTION_CREATED, action, caller.user_id, now, before=None)
    elif existing.status in OPEN_ACTION and (existing.what, existing.who_id, existing.due_on) != (
        entry.what,
        entry.who_id,
        entry.due_on,
    ):
        action = tx.revise_action(
            existing.id or 0,
            existing.version,
            what=entry.what,
            who_id=entry.who_id,
            due_on=entry.due_on,
            by=caller.user_id,
            now=now,
        )
        _audit(tx, AuditAction.ACTION_REVISED, action, caller.user_id, now, before=existing)
    else:
        return existing
    _write(tx, ctx, action, now=now)
    _schedule_chase(tx, ctx, action, 1, now=now)
    return action


def apply_action_updates(
    tx: Transaction,
    ctx: EngineContext,
    caller: Caller,
    updates: Mapping[int, ActionUpdate],
    *,
    now: datetime,
) -> tuple[dict[int, tuple[str, ...]], int]:
    """Act on the open actions an owner updated on a request card: the errors by action id,
    and how many were updated.

    An input left untouched (or left out, as Outlook does) changes nothing, so a submit
    of figures alone never touches the actions shown with them.
    """
    errors: dict[int, tuple[str, ...]] = {}
    updated_count = 0
    for update in updates.values():
        try:
            action = tx.get_action(update.action_id)
        except NotFound:
            raise UnknownSubject(f"improvement action {update.action_id} does not exist") from None
        if action.owner_id != caller.user_id:
            raise NotYours("this improvement action is someone else's to update")
        status = update.status or action.status.value
        if status not in {s.value for s in ActionStatus}:
            raise BadAction(f"an action's status is one of {sorted(ActionStatus)}, not {status!r}")
        note = update.note.strip() or action.note
        if note is not None and len(note) > ACTION_NOTE_MAX_LENGTH:
            errors[update.action_id] = (
                f"The note is {len(note):,} characters long, and can be at most "
                f"{ACTION_NOTE_MAX_LENGTH:,}: shorten it and submit again.",
            )
            continue
        if status == action.status and note == action.note:
            continue
        if action.status is ActionStatus.DONE:
            if status != ActionStatus.DONE:
                errors[update.action_id] = ("This action is already done.",)
            continue
        if action.version != update.version:
            errors[update.action_id] = (_STALE,)
            continue
        if action.status is ActionStatus.IN_PROGRESS and status == ActionStatus.NOT_STARTED:
            errors[update.action_id] = (
                "This action is under way: it cannot go back to not started.",
            )
            continue
        try:
            updated = tx.update_action(
                action.id or 0,
                update.version,
                ActionStatus(status),
                note=note,
                by=caller.user_id,
                now=now,
            )
        except TransitionRefused:
            errors[update.action_id] = (_STALE,)
            continue
        _audit(tx, AuditAction.ACTION_UPDATED, updated, caller.user_id, now, before=action)
        _write(tx, ctx, updated, now=now)
        updated_count += 1
        if updated.status is ActionStatus.DONE:
            tx.cancel_timers(SubjectType.ACTION, updated.id, now=now)
    return errors, updated_count


# --- what cards show --------------------------------------------------------------------


def _raised_for(tx: Transaction, ctx: EngineContext, action: ImprovementAction) -> str:
    flow = ctx.flow(action.flow_id)
    indicator = tx.find_indicator(flow.id, action.indicator_key)
    name = indicator.name if indicator else action.indicator_key
    period = ctx.period_of(tx.get_cycle(action.cycle_id)).label
    return f"{name}, {period}: {_RAISED_FOR.get(action.raised_for, action.raised_for)}"


def _person_name(tx: Transaction, person_id: str) -> str:
    person = tx.find_person(person_id)
    return person.name if person else person_id


def _shown(
    tx: Transaction,
    ctx: EngineContext,
    action: ImprovementAction,
    today: date,
    *,
    typed: ActionUpdate | None = None,
    errors: Sequence[str] = (),
) -> OpenAction:
    return OpenAction(
        action_id=action.id or 0,
        version=action.version,
        raised_for=_raised_for(tx, ctx, action),
        what=action.what,
        who_name=_person_name(tx, action.who_id),
        due=action.due_on,
        status=(typed.status if typed and typed.status else action.status.value),
        note=(typed.note if typed and typed.note else action.note or ""),
        overdue=action.status in OPEN_ACTION and action.due_on < today,
        errors=tuple(errors),
    )


def open_actions(
    tx: Transaction,
    ctx: EngineContext,
    cycle: Cycle,
    owner_id: str,
    *,
    now: datetime,
    typed: Mapping[int, ActionUpdate] | None = None,
    errors: Mapping[int, Sequence[str]] | None = None,
) -> tuple[OpenAction, ...]:
    """The owner's open actions of this flow from earlier cycles, for their request card."""
    flow = ctx.flow(cycle.flow_id)
    if flow.actions is None:
        return ()
    today = local_day(now)
    return tuple(
        _shown(
            tx,
            ctx,
            action,
            today,
            typed=(typed or {}).get(action.id or 0),
            errors=(errors or {}).get(action.id or 0, ()),
        )
        for action in tx.list_actions(owner_id=owner_id, flow_id=flow.id, status=OPEN_ACTION)
        if action.cycle_id != cycle.id
    )


def return_actions(
    tx: Transaction, ctx: EngineContext, ret: Return, *, now: datetime
) -> tuple[OpenAction, ...]:
    """For an approver: the action entered with this figure and the indicator's open ones."""
    cycle = tx.get_cycle(ret.cycle_id)
    flow = ctx.flow(cycle.flow_id)
    if flow.actions is None:
        return ()
    today = local_day(now)
    return tuple(
        _shown(tx, ctx, action, today)
        for action in tx.list_actions(flow_id=flow.id, indicator_key=ret.indicator_key)
        if action.return_id == ret.id or action.status in OPEN_ACTION
    )


# --- the actions list -------------------------------------------------------------------


def action_row(tx: Transaction, ctx: EngineContext, action: ImprovementAction) -> dict[str, Any]:
    """The actions-list row of an action, keyed on ``ActionId``, in the list's column order."""
    flow = ctx.flow(action.flow_id)
    indicator = tx.find_indicator(flow.id, action.indicator_key)
    who = tx.find_person(action.who_id)
    values = {
        "Title": shortened(action.what, 255),
        ACTION_KEY: str(action.id),
        "Flow": flow.id,
        "IndicatorId": action.indicator_key,
        "Indicator": indicator.name if indicator else action.indicator_key,
        "Period": ctx.period_of(tx.get_cycle(action.cycle_id)).label,
        "RaisedFor": action.raised_for,
        "Action": action.what,
        "ActionBy": who.name if who else action.who_id,
        "ActionByEmail": who.email if who else None,
        "DueDate": action.due_on.isoformat(),
        "Status": action.status.value,
        "Note": action.note,
        "Owner": _person_name(tx, action.owner_id),
        "RaisedAt": action.created_at.isoformat(),
        "UpdatedBy": _person_name(tx, action.updated_by),
        "UpdatedAt": action.updated_at.isoformat(),
        "Version": action.version,
    }
    names = [c.name for c in ACTION_COLUMNS]
    extra = set(values) - set(names)
    if extra:
        raise LookupError(f"actions row fields not in ACTION_COLUMNS: {sorted(extra)}")
    return {name: values[name] for name in names}


def _write(
    tx: Transaction, ctx: EngineContext, action: ImprovementAction, *, now: datetime
) -> None:
    """Queue the upsert of this version of the action into the flow's actions list."""
    flow = ctx.flow(action.flow_id)
    if flow.actions is None:
        return
    message = WriteAction(
        site=flow.writeback.site,
        list_title=flow.actions.list_title,
        key_fields=[ACTION_KEY],
        fields=action_row(tx, ctx, action),
        action_id=action.id or 0,
        cycle_id=action.cycle_id,
    )
    queue(tx, ctx, message, dedup_key=ActionWriteKey(action.id or 0, action.version), now=now)


def _audit(
    tx: Transaction,
    what: AuditAction,
    action: ImprovementAction,
    actor: str,
    now: datetime,
    *,
    before: ImprovementAction | None,
) -> None:
    tx.audit(
        what,
        at=now,
        actor=actor,
        subject_type=SubjectType.ACTION,
        subject_id=action.id or 0,
        cycle_id=action.cycle_id,
        before=_state(before) if before is not None else None,
        after={**_state(action), "return_id": action.return_id},
    )


def _state(action: ImprovementAction) -> dict[str, Any]:
    return {
        "status": action.status.value,
        "version": action.version,
        "what": action.what,
        "who": action.who_id,
        "due_on": action.due_on.isoformat(),
        "note": action.note,
    }


# --- chasing ----------------------------------------------------------------------------


def _schedule_chase(
    tx: Transaction,
    ctx: EngineContext,
    action: ImprovementAction,
    number: int,
    *,
    now: datetime,
    after: date | None = None,
) -> None:
    """The ``number``-th chase of an action: the working day after its by-when date, then
    every ``reminders.overdue_every_working_days``, as many times as the flow escalates
    after (:data:`MAX_ACTION_CHASES` when it does not say)."""
    flow = ctx.flow(action.flow_id)
    if flow.actions is None or not flow.actions.chase:
        return
    calendar = calendar_for(flow)
    reminders = flow.reminders
    if number == 1:
        day = calendar.add_working_days(action.due_on, 1)
    else:
        limit = reminders.escalate.after_reminders if reminders.escalate else MAX_ACTION_CHASES
        every = reminders.overdue_every_working_days
        if every is None or number > limit or after is None:
            return
        day = calendar.add_working_days(after, every)
    tx.schedule_timer(
        TimerKind.CHASE_ACTION,
        due_at=max(at_local(day, flow.schedule.opening_time), now),
        dedup_key=ChaseActionKey(action.id or 0, action.due_on, number).format(),
        subject_type=SubjectType.ACTION,
        subject_id=action.id,
        payload={"number": number},
        now=now,
    )


def chase_action(tx: Transaction, ctx: EngineContext, timer: Timer, now: datetime) -> None:
    """Chase whoever is doing an overdue action: one e-mail a day listing all of theirs."""
    key = ChaseActionKey.parse(timer.dedup_key)
    action = tx.get_action(key.action_id)
    today = local_day(now)
    if action.status not in OPEN_ACTION or action.due_on != key.due_on or today <= action.due_on:
        return  # done, given a new date, or not overdue after all
    doer = tx.find_person(action.who_id)
    owner = tx.find_person(action.owner_id)
    to = doer or owner
    if to is None:
        return
    overdue = [
        a
        for a in tx.list_actions(status=OPEN_ACTION)
        if a.who_id == action.who_id and a.due_on < today and a.flow_id in ctx.flows
    ]
    lines = [f"These improvement actions are past their date and not marked done, {to.name}:", ""]
    for item in overdue:
        lines.append(
            f"{_raised_for(tx, ctx, item)} — {item.what} (due {format_date(item.due_on)}, "
            f"{item.status.value.replace('_', ' ')})"
        )
    lines += ["", "Update them on your next request card, or tell the performance team."]
    plural = "s" if len(overdue) > 1 else ""
    send_mail(
        tx,
        ctx,
        to=[to.email],
        cc=[owner.email] if owner is not None and owner.id != to.id else [],
        subject=f"Overdue improvement action{plural}: {len(overdue)} past their date",
        lines=lines,
        dedup_key=ActionChaseMailKey(to.id, today),
        now=now,
    )
    tx.audit(
        AuditAction.ACTION_CHASED,
        at=now,
        actor="scheduler",
        subject_type=SubjectType.ACTION,
        subject_id=action.id or 0,
        cycle_id=action.cycle_id,
        after={"chase": key.number, "to": to.email, "overdue": [a.id for a in overdue]},
    )
    _schedule_chase(tx, ctx, action, key.number + 1, now=now, after=today)
