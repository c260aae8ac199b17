"""Delegation and out of office: who may act for an approver on a day.

An approver names a delegate for a run of London days (``m365perf delegate add``), or is
marked away with nobody named (``m365perf away``); the flow's ``approval.when_away``
says who acts for them meanwhile:

* ``delegate`` (the default): their named delegate; nobody if they named none;
* ``line_manager``: their named delegate, or else their line manager;
* ``wait``: nobody (the step waits for the approver, and its timeout escalates).

Whoever acts for an approver is never the return's owner or submitter: a delegate who
owns the return is passed over for the next choice (the line manager under
``line_manager``, then the step's ``fallback`` person when the flow's
``on_self_approval`` is ``fallback``), and with no choice left nobody acts for them.

The step's own approvers are kept as the chain named them; covering is worked out on
the day, both when cards are sent and when someone clicks, so a delegation that ends
stops working at once, and one that starts reaches steps already asked (see
:mod:`m365perf.engine.away`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from m365perf.domain.approvers import Person
from m365perf.engine.context import EngineContext, local_day
from m365perf.engine.errors import BadAction, NotYours, UnknownSubject
from m365perf.engine.people import StoreDirectory
from m365perf.flows.model import Flow
from m365perf.messages.names import AuditAction, SubjectType
from m365perf.store import (
    ApprovalStep,
    Delegation,
    NotFound,
    Return,
    ReturnStatus,
    Store,
    Transaction,
)

__all__ = [
    "Cover",
    "Decider",
    "DelegationView",
    "acting_for",
    "add_delegation",
    "covers_for",
    "delegation_views",
    "end_delegation",
    "label",
    "may_decide",
    "not_for",
    "step_covers",
    "steps_for",
]

Via = Literal["delegate", "line_manager", "fallback"]


@dataclass(frozen=True)
class Cover:
    """Someone acting for an away approver on a day, and why (``via``)."""

    approver: Person
    acting: Person
    via: Via
    delegation_id: int

    @property
    def label(self) -> str:
        """ "Sam Patel for Priya Sharma", as the audit trail and cards say it."""
        return f"{self.acting.name} for {self.approver.name}"


@dataclass(frozen=True)
class DelegationView:
    """A delegation with names, for ``delegate list`` and the approver web page."""

    id: int
    approver: Person
    delegate: Person | None
    flow_id: str | None
    starts_on: date
    ends_on: date
    created_by: str
    ended: bool

    @property
    def label(self) -> str:
        flows = f" ({self.flow_id})" if self.flow_id else ""
        who = (
            f"{self.delegate.name} for {self.approver.name}"
            if self.delegate
            else f"{self.approver.name} away (nobody named)"
        )
        ended = " — ended" if self.ended else ""
        return f"#{self.id} {who}{flows} {self.starts_on} to {self.ends_on}{ended}"


def label(acting: str, approver: str) -> str:
    """Both names, the way every delegated decision is recorded: "Sam Patel for Priya Sharma"."""
    return f"{acting} for {approver}"


def not_for(tx: Transaction, ret: Return) -> tuple[Person, ...]:
    """Who may never act on this return: its owner and whoever submitted it."""
    people: list[Person] = []
    for ref in (ret.owner_id, ret.owner_email, ret.submitted_by):
        if ref:
            found = tx.find_person(ref)
            people.append(
                Person(found.id, found.name, found.email) if found else Person(ref, ref, ref)
            )
    return tuple(people)


def covers_for(
    tx: Transaction,
    flow: Flow,
    approver_id: str,
    day: date,
    *,
    excluded: Sequence[Person] = (),
    step_name: str | None = None,
) -> list[Cover]:
    """Who acts for ``approver_id`` in ``flow`` on ``day`` (a London date); never ``excluded``."""
    when_away = flow.approval.when_away
    if when_away == "wait":
        return []
    rows = [
        d for d in tx.list_delegations(approver_id=approver_id, on=day) if d.covers_flow(flow.id)
    ]
    if not rows:
        return []
    directory = StoreDirectory(tx, flow)
    approver = directory.find(approver_id)
    if approver is None:
        return []
    covers: list[Cover] = []
    for row in rows:
        passed_over = False
        for via, person in _choices(row, approver, flow, directory, step_name):
            if via == "fallback" and not passed_over:
                continue  # the fallback stands in only for a choice who owns the return
            if person is None or person.same_as(approver):
                continue
            if any(person.same_as(p) for p in excluded):
                passed_over = True  # never the owner or submitter: take the next choice
                continue
            if not any(person.same_as(c.acting) for c in covers):
                covers.append(Cover(approver, person, via, row.id or 0))
            break
    return covers


def _choices(
    row: Delegation,
    approver: Person,
    flow: Flow,
    directory: StoreDirectory,
    step_name: str | None,
) -> list[tuple[Via, Person | None]]:
    """Who might act for the approver, in the order tried."""
    choices: list[tuple[Via, Person | None]] = []
    if row.delegate_id:
        choices.append(("delegate", directory.find(row.delegate_id)))
    if flow.approval.when_away == "line_manager":
        choices.append(("line_manager", directory.line_manager(approver)))
    step = next((s for s in flow.approval.steps if s.name == step_name), None)
    rule = (step.on_self_approval if step else None) or flow.approval.on_self_approval
    fallback = (step.fallback if step else None) or flow.approval.fallback
    if rule == "fallback" and fallback:
        choices.append(("fallback", directory.find(fallback)))
    return choices


def acting_for(
    tx: Transaction,
    flow: Flow,
    person_id: str,
    step: ApprovalStep,
    ret: Return,
    day: date,
) -> Cover | None:
    """Whether ``person_id`` may decide ``step`` on ``day`` acting for one of its approvers.

    This is the delegation half of "may this person decide this step"; the other half
    is being one of the step's approvers. The owner and submitter never get a cover.
    """
    clicked = (person_id or "").strip().casefold()
    if not clicked:
        return None
    excluded = not_for(tx, ret)
    if any(clicked in (p.id.casefold(), p.email.casefold()) for p in excluded):
        return None
    for approver_id in step.approvers:
        for cover in covers_for(tx, flow, approver_id, day, excluded=excluded, step_name=step.name):
            if clicked in (cover.acting.id.casefold(), cover.acting.email.casefold()):
                return cover
    return None


@dataclass(frozen=True)
class Decider:
    """Why a person may decide a step: as one of its approvers (``cover`` None), or for one."""

    person_id: str
    cover: Cover | None = None


def may_decide(
    tx: Transaction, flow: Flow, step: ApprovalStep, ret: Return, person_id: str, day: date
) -> Decider | None:
    """May this person decide this step on ``day``: one of its approvers, or acting today
    for one of them (a delegate, or a line manager under ``when_away: line_manager``).

    Never the return's owner or submitter. Every decision path (the card, the digest,
    the web page) asks this one question.
    """
    if not person_id or person_id in (ret.owner_id, ret.submitted_by):
        return None
    if person_id in step.approvers:
        return Decider(person_id)
    cover = acting_for(tx, flow, person_id, step, ret, day)
    return Decider(person_id, cover) if cover else None


def step_covers(
    tx: Transaction, flow: Flow, step: ApprovalStep, ret: Return, day: date
) -> list[Cover]:
    """Everyone acting for one of the step's approvers on ``day`` (not its own approvers)."""
    excluded = not_for(tx, ret)
    found: list[Cover] = []
    for approver_id in step.approvers:
        for cover in covers_for(tx, flow, approver_id, day, excluded=excluded, step_name=step.name):
            if cover.acting.id in step.approvers:
                continue  # already asked in their own right
            if not any(cover.acting.same_as(c.acting) for c in found):
                found.append(cover)
    return found


def steps_for(
    tx: Transaction, ctx: EngineContext, person_id: str, day: date
) -> list[tuple[ApprovalStep, Decider]]:
    """The current steps ``person_id`` may decide on ``day``, their own and those they
    cover, in creation order: what a digest or the approver web page lists for them."""
    found: list[tuple[ApprovalStep, Decider]] = []
    for step in tx.list_open_steps():
        ret = tx.get_return(step.return_id)
        if ret.status is not ReturnStatus.RETURNED or ret.version != step.return_version:
            continue
        flow = ctx.flows.get(tx.get_cycle(ret.cycle_id).flow_id)
        decider = may_decide(tx, flow, step, ret, person_id, day) if flow else None
        if decider is not None:
            found.append((step, decider))
    return found


# --- recording delegations -------------------------------------------------------------


def add_delegation(
    store: Store,
    ctx: EngineContext,
    *,
    approver: str,
    delegate: str | None,
    starts_on: date,
    ends_on: date,
    flow_id: str | None,
    by: str,
    now: datetime,
) -> Delegation:
    """Record a delegation (or, with no delegate, that the approver is away), audited.

    Everyone named must be in the directory; ranges of one approver may not overlap
    (end the old one first), so who acts for them on a day is never in doubt.
    """
    if ends_on < starts_on:
        raise BadAction(f"the delegation would end on {ends_on}, before it starts on {starts_on}")
    if ends_on < local_day(now):
        raise BadAction(f"the delegation would end on {ends_on}, which has passed")
    if flow_id is not None:
        try:
            ctx.flow(flow_id)
        except LookupError:
            raise UnknownSubject(f"no flow '{flow_id}' is loaded") from None
    with store.transaction() as tx:
        away = _person(tx, approver, "approver")
        acting = _person(tx, delegate, "delegate") if delegate else None
        actor = _person(tx, by, "--by")
        _may_record(tx, ctx, actor, away, flow_id)
        if acting is not None and acting.id == away.id:
            raise BadAction(f"{away.name} cannot be their own delegate")
        for other in tx.list_delegations(approver_id=away.id):
            overlaps = other.starts_on <= ends_on and starts_on <= other.ends_on
            same_flows = other.flow_id is None or flow_id is None or other.flow_id == flow_id
            if overlaps and same_flows:
                view = _view(tx, other)
                raise BadAction(
                    f"{away.name} already has {view.label}; end it first "
                    f"(m365perf delegate end {other.id})"
                )
        row = tx.add_delegation(
            away.id,
            delegate_id=acting.id if acting else None,
            starts_on=starts_on,
            ends_on=ends_on,
            flow_id=flow_id,
            by=actor.id,
            now=now,
        )
        tx.audit(
            AuditAction.DELEGATION_ADDED if acting else AuditAction.DELEGATION_AWAY,
            at=now,
            actor=actor.id,
            subject_type=SubjectType.DELEGATION,
            subject_id=row.id or 0,
            after={
                "approver": away.id,
                "approver_name": away.name,
                "delegate": acting.id if acting else None,
                "delegate_name": acting.name if acting else None,
                "label": label(acting.name, away.name) if acting else f"{away.name} away",
                "flow": flow_id,
                "from": starts_on.isoformat(),
                "to": ends_on.isoformat(),
                "by_name": actor.name,
            },
        )
        return row


def end_delegation(
    store: Store, ctx: EngineContext, delegation_id: int, *, by: str, now: datetime
) -> Delegation:
    """End a delegation now: from this moment nobody acts for the approver through it."""
    with store.transaction() as tx:
        try:
            row = tx.get_delegation(delegation_id)
        except NotFound:
            raise UnknownSubject(f"there is no delegation {delegation_id}") from None
        actor = _person(tx, by, "--by")
        approver = _person(tx, row.approver_id, "approver")
        _may_record(tx, ctx, actor, approver, row.flow_id)
        if row.ended_at is not None:
            raise BadAction(
                f"delegation {delegation_id} was already ended on {row.ended_at:%Y-%m-%d}"
            )
        ended = tx.end_delegation(delegation_id, by=actor.id, now=now)
        view = _view(tx, ended)
        tx.audit(
            AuditAction.DELEGATION_ENDED,
            at=now,
            actor=actor.id,
            subject_type=SubjectType.DELEGATION,
            subject_id=delegation_id,
            before={"ended": False},
            after={
                "ended": True,
                "approver": view.approver.id,
                "approver_name": view.approver.name,
                "delegate": view.delegate.id if view.delegate else None,
                "delegate_name": view.delegate.name if view.delegate else None,
                "label": (
                    label(view.delegate.name, view.approver.name)
                    if view.delegate
                    else f"{view.approver.name} away"
                ),
                "by_name": actor.name,
            },
        )
        return ended


def delegation_views(
    store: Store,
    *,
    person: str | None = None,
    on: date | None = None,
    include_ended: bool = False,
) -> list[DelegationView]:
    """Delegations with names: of one person (as approver or delegate), active ``on``."""
    with store.transaction() as tx:
        if person is None:
            rows = tx.list_delegations(on=on, include_ended=include_ended)
        else:
            who = _person(tx, person, "--person")
            mine = tx.list_delegations(approver_id=who.id, on=on, include_ended=include_ended)
            theirs = tx.list_delegations(delegate_id=who.id, on=on, include_ended=include_ended)
            rows = sorted({r.id: r for r in [*mine, *theirs]}.values(), key=lambda r: r.id or 0)
        return [_view(tx, r) for r in rows]


def _may_record(
    tx: Transaction, ctx: EngineContext, actor: Person, approver: Person, flow_id: str | None
) -> None:
    """Only the approver, their line manager or a performance team names who acts for them."""
    if actor.id == approver.id:
        return
    found = tx.find_person(approver.id)
    if found is not None and found.line_manager_id in (actor.id, actor.email):
        return
    if flow_id is None:
        flows = list(ctx.flows.values())
    else:
        flows = [ctx.flows[flow_id]] if flow_id in ctx.flows else []
    for flow in flows:
        team = [tx.find_person(m) for m in flow.performance_team]
        if any(member is not None and member.id == actor.id for member in team):
            return
    raise NotYours(
        f"{actor.name} may not change who acts for {approver.name}: that is for "
        f"{approver.name}, their line manager or the flow's performance team"
    )


def _person(tx: Transaction, ref: str | None, what: str) -> Person:
    found = tx.find_person((ref or "").strip()) if (ref or "").strip() else None
    if found is None:
        raise UnknownSubject(
            f"{what} {ref!r} is not in the directory (the people synced from the register): "
            "check the e-mail address"
        )
    return Person(found.id, found.name, found.email)


def _view(tx: Transaction, row: Delegation) -> DelegationView:
    def person(ref: str) -> Person:
        found = tx.find_person(ref)
        return Person(found.id, found.name, found.email) if found else Person(ref, ref, ref)

    return DelegationView(
        id=row.id or 0,
        approver=person(row.approver_id),
        delegate=person(row.delegate_id) if row.delegate_id else None,
        flow_id=row.flow_id,
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        created_by=row.created_by,
        ended=row.ended_at is not None,
    )
