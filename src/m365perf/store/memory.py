"""An in-process store with the same contract as the SQL one, for tests and dry runs.

Transactions are serialised by one lock and work on a copy of the table maps, which
replaces the live maps only on commit; stored records are never changed in place, so the
copy is cheap (shallow) and a rollback is just dropping it.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlmodel import SQLModel

from m365perf.domain.kinds import Frequency
from m365perf.store import _checks
from m365perf.store.base import DEFAULT_LEASE, Store, Transaction
from m365perf.store.errors import AlreadyDecided, NotFound, StaleVersion
from m365perf.store.tables import (
    APPROVED_SOURCE,
    OPEN_STEP_STATUSES,
    ApprovalStep,
    AuditEvent,
    CardChannel,
    CardDelivery,
    ConversationRef,
    Cycle,
    CycleStatus,
    HistoryPoint,
    HistoryValue,
    Indicator,
    IndicatorSpec,
    IndicatorTarget,
    NewReturn,
    OutboxMessage,
    OutboxStatus,
    Person,
    PersonSpec,
    Return,
    ReturnStatus,
    SnapshotResult,
    StepSpec,
    StepStatus,
    Timer,
    TimerStatus,
    merge_history,
    validate_changes,
)

M = TypeVar("M", bound=SQLModel)


def _copy(record: M, **changes: Any) -> M:
    """A detached copy of a record (optionally changed), sharing nothing mutable with it."""
    data = copy.deepcopy(record.model_dump())
    data.update(changes)
    return type(record)(**data)


@dataclasses.dataclass
class _Tables:
    """All rows, by id, plus the unique keys the SQL schema enforces."""

    next_id: dict[str, int] = dataclasses.field(default_factory=dict)
    indicators: dict[int, Indicator] = dataclasses.field(default_factory=dict)
    indicator_keys: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    targets: dict[int, IndicatorTarget] = dataclasses.field(default_factory=dict)
    target_keys: dict[tuple[str, str, date], int] = dataclasses.field(default_factory=dict)
    cycles: dict[int, Cycle] = dataclasses.field(default_factory=dict)
    cycle_keys: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    returns: dict[int, Return] = dataclasses.field(default_factory=dict)
    return_keys: dict[tuple[int, str], int] = dataclasses.field(default_factory=dict)
    steps: dict[int, ApprovalStep] = dataclasses.field(default_factory=dict)
    step_keys: dict[tuple[int, int, int], int] = dataclasses.field(default_factory=dict)
    timers: dict[int, Timer] = dataclasses.field(default_factory=dict)
    timer_keys: dict[str, int] = dataclasses.field(default_factory=dict)
    outbox: dict[int, OutboxMessage] = dataclasses.field(default_factory=dict)
    outbox_keys: dict[str, int] = dataclasses.field(default_factory=dict)
    audit: dict[int, AuditEvent] = dataclasses.field(default_factory=dict)
    conversations: dict[str, ConversationRef] = dataclasses.field(default_factory=dict)
    deliveries: dict[str, CardDelivery] = dataclasses.field(default_factory=dict)
    people: dict[str, Person] = dataclasses.field(default_factory=dict)
    person_emails: dict[str, str] = dataclasses.field(default_factory=dict)
    history: dict[int, HistoryValue] = dataclasses.field(default_factory=dict)
    history_keys: dict[tuple[str, str, date], int] = dataclasses.field(default_factory=dict)

    def working_copy(self) -> _Tables:
        return _Tables(**{f.name: dict(getattr(self, f.name)) for f in dataclasses.fields(self)})

    def new_id(self, table: str) -> int:
        ident = self.next_id.get(table, 0) + 1
        self.next_id[table] = ident
        return ident


class _MemoryTransaction(Transaction):
    def __init__(self, tables: _Tables) -> None:
        self._t = tables
        self._open = True

    def _tables(self) -> _Tables:
        if not self._open:
            raise RuntimeError("this transaction has ended; open a new one")
        return self._t

    # --- indicators and targets -------------------------------------------------------

    def upsert_indicators(
        self, flow_id: str, indicators: Sequence[IndicatorSpec], *, now: datetime
    ) -> SnapshotResult:
        t = self._tables()
        _checks.non_empty(flow_id, "flow_id")
        now = _checks.aware(now)
        specs = _checks.unique_by_key(indicators, lambda s: s.indicator_key, "indicator")
        result = SnapshotResult()
        for key, spec in specs.items():
            fields = _checks.indicator_fields(spec)
            ident = t.indicator_keys.get((flow_id, key))
            if ident is None:
                ident = t.new_id("indicator")
                t.indicator_keys[(flow_id, key)] = ident
                t.indicators[ident] = Indicator(
                    id=ident, flow_id=flow_id, active=True, snapshot_at=now, **fields
                )
                result.added.append(key)
                continue
            old = t.indicators[ident]
            if not old.active or _checks.indicator_fields(old) != fields:
                result.changed.append(key)
            t.indicators[ident] = _copy(old, active=True, snapshot_at=now, **fields)
        for (flow, key), ident in t.indicator_keys.items():
            old = t.indicators[ident]
            if flow == flow_id and key not in specs and old.active:
                t.indicators[ident] = _copy(old, active=False, snapshot_at=now)
                result.retired.append(key)
        result.retired.sort()
        return result

    def list_indicators(self, flow_id: str, *, include_retired: bool = False) -> list[Indicator]:
        rows = [
            i
            for i in self._tables().indicators.values()
            if i.flow_id == flow_id and (include_retired or i.active)
        ]
        return [_copy(i) for i in sorted(rows, key=lambda i: i.indicator_key)]

    def find_indicator(self, flow_id: str, indicator_key: str) -> Indicator | None:
        t = self._tables()
        ident = t.indicator_keys.get((flow_id, indicator_key))
        return None if ident is None else _copy(t.indicators[ident])

    def put_target(
        self,
        flow_id: str,
        indicator_key: str,
        *,
        applies_from: str,
        applies_from_start: date,
        value: float | None,
        tolerance_kind: str | None = None,
        tolerance_amount: float | None = None,
        now: datetime,
    ) -> IndicatorTarget:
        t = self._tables()
        _checks.non_empty(flow_id, "flow_id")
        _checks.non_empty(indicator_key, "indicator_key")
        _checks.non_empty(applies_from, "applies_from")
        now = _checks.aware(now)
        key = (flow_id, indicator_key, applies_from_start)
        ident = t.target_keys.get(key)
        if ident is None:
            ident = t.new_id("indicator_target")
            t.target_keys[key] = ident
        t.targets[ident] = IndicatorTarget(
            id=ident,
            flow_id=flow_id,
            indicator_key=indicator_key,
            applies_from=applies_from,
            applies_from_start=applies_from_start,
            value=value,
            tolerance_kind=tolerance_kind,
            tolerance_amount=tolerance_amount,
            recorded_at=now,
        )
        return _copy(t.targets[ident])

    def list_targets(self, flow_id: str, indicator_key: str) -> list[IndicatorTarget]:
        rows = [
            r
            for r in self._tables().targets.values()
            if r.flow_id == flow_id and r.indicator_key == indicator_key
        ]
        return [_copy(r) for r in sorted(rows, key=lambda r: r.applies_from_start)]

    def target_for(
        self, flow_id: str, indicator_key: str, period_start: date
    ) -> IndicatorTarget | None:
        in_force = [
            r
            for r in self.list_targets(flow_id, indicator_key)
            if r.applies_from_start <= period_start
        ]
        return in_force[-1] if in_force else None

    # --- cycles ------------------------------------------------------------------------

    def open_cycle(
        self,
        flow_id: str,
        period: str,
        *,
        period_start: date,
        frequency: Frequency,
        due_date: date,
        now: datetime,
    ) -> tuple[Cycle, bool]:
        t = self._tables()
        _checks.non_empty(flow_id, "flow_id")
        _checks.non_empty(period, "period")
        now = _checks.aware(now)
        frequency = Frequency(frequency)
        ident = t.cycle_keys.get((flow_id, period))
        if ident is not None:
            return _copy(t.cycles[ident]), False
        ident = t.new_id("cycle")
        t.cycle_keys[(flow_id, period)] = ident
        t.cycles[ident] = Cycle(
            id=ident,
            flow_id=flow_id,
            period=period,
            period_start=period_start,
            frequency=frequency,
            opened_at=now,
            due_date=due_date,
            status=CycleStatus.OPEN,
            closed_at=None,
        )
        return _copy(t.cycles[ident]), True

    def find_cycle(self, flow_id: str, period: str) -> Cycle | None:
        t = self._tables()
        ident = t.cycle_keys.get((flow_id, period))
        return None if ident is None else _copy(t.cycles[ident])

    def get_cycle(self, cycle_id: int) -> Cycle:
        return _copy(_get(self._tables().cycles, cycle_id, "cycle"))

    def list_cycles(
        self, *, flow_id: str | None = None, status: CycleStatus | None = None
    ) -> list[Cycle]:
        rows = [
            c
            for c in self._tables().cycles.values()
            if (flow_id is None or c.flow_id == flow_id) and (status is None or c.status == status)
        ]
        return [_copy(c) for c in sorted(rows, key=lambda c: (c.period_start, c.id or 0))]

    def close_cycle(self, cycle_id: int, *, now: datetime) -> Cycle:
        t = self._tables()
        now = _checks.aware(now)
        cycle = _get(t.cycles, cycle_id, "cycle")
        if cycle.status == CycleStatus.OPEN:
            cycle = t.cycles[cycle_id] = _copy(cycle, status=CycleStatus.CLOSED, closed_at=now)
        return _copy(cycle)

    # --- returns -----------------------------------------------------------------------

    def create_returns(
        self, cycle_id: int, requests: Sequence[NewReturn], *, now: datetime
    ) -> list[Return]:
        t = self._tables()
        now = _checks.aware(now)
        _get(t.cycles, cycle_id, "cycle")
        created = []
        unique = _checks.unique_by_key(requests, lambda r: r.indicator_key, "return request")
        for request in unique.values():
            if (cycle_id, request.indicator_key) in t.return_keys:
                continue
            ident = t.new_id("indicator_return")
            t.return_keys[(cycle_id, request.indicator_key)] = ident
            t.returns[ident] = Return(
                id=ident,
                cycle_id=cycle_id,
                indicator_key=request.indicator_key,
                owner_id=request.owner_id,
                owner_email=request.owner_email,
                version=1,
                status=ReturnStatus.AWAITING,
                late=False,
                outlier_confirmed=False,
                data_quality_flag=False,
                reminders_sent=0,
                current_step=0,
                created_at=now,
                updated_at=now,
            )
            created.append(_copy(t.returns[ident]))
        return created

    def get_return(self, return_id: int) -> Return:
        return _copy(_get(self._tables().returns, return_id, "return"))

    def find_return(self, cycle_id: int, indicator_key: str) -> Return | None:
        t = self._tables()
        ident = t.return_keys.get((cycle_id, indicator_key))
        return None if ident is None else _copy(t.returns[ident])

    def list_returns(
        self,
        *,
        cycle_id: int | None = None,
        owner_id: str | None = None,
        status: ReturnStatus | Collection[ReturnStatus] | None = None,
    ) -> list[Return]:
        wanted = _checks.statuses(status, ReturnStatus)
        rows = [
            r
            for r in self._tables().returns.values()
            if (cycle_id is None or r.cycle_id == cycle_id)
            and (owner_id is None or r.owner_id == owner_id)
            and (wanted is None or r.status in wanted)
        ]
        return [_copy(r) for r in sorted(rows, key=lambda r: r.id or 0)]

    def update_return(
        self, return_id: int, expected_version: int, *, now: datetime, **changes: Any
    ) -> Return:
        t = self._tables()
        now = _checks.aware(now)
        checked = validate_changes(changes)
        current = _get(t.returns, return_id, "return")
        if current.version != expected_version:
            raise StaleVersion(expected_version, _copy(current))
        updated = _copy(current, version=current.version + 1, updated_at=now, **checked)
        t.returns[return_id] = updated
        return _copy(updated)

    def history(
        self, flow_id: str, indicator_key: str, *, before: date | None = None
    ) -> list[HistoryPoint]:
        t = self._tables()
        approved = []
        for r in t.returns.values():
            cycle = t.cycles[r.cycle_id]
            if (
                cycle.flow_id == flow_id
                and r.indicator_key == indicator_key
                and r.status == ReturnStatus.APPROVED
                and r.value is not None
                and (before is None or cycle.period_start < before)
            ):
                approved.append(
                    HistoryPoint(
                        period=cycle.period,
                        period_start=cycle.period_start,
                        value=r.value,
                        rag=r.rag,
                        return_id=r.id,
                        source=APPROVED_SOURCE,
                    )
                )
        imported = [
            HistoryPoint(
                period=h.period, period_start=h.period_start, value=h.value, source=h.source
            )
            for h in t.history.values()
            if h.flow_id == flow_id
            and h.indicator_key == indicator_key
            and (before is None or h.period_start < before)
        ]
        return merge_history(approved, imported)

    def put_history(
        self,
        flow_id: str,
        indicator_key: str,
        *,
        period: str,
        period_start: date,
        value: float,
        source: str,
        now: datetime,
    ) -> None:
        t = self._tables()
        number, source = _checks.history_entry(value, source)
        _checks.non_empty(flow_id, "flow_id")
        _checks.non_empty(indicator_key, "indicator_key")
        _checks.non_empty(period, "period")
        now = _checks.aware(now)
        key = (flow_id, indicator_key, period_start)
        ident = t.history_keys.get(key)
        if ident is None:
            ident = t.history_keys[key] = t.new_id("history_value")
        t.history[ident] = HistoryValue(
            id=ident,
            flow_id=flow_id,
            indicator_key=indicator_key,
            period=period,
            period_start=period_start,
            value=number,
            source=source,
            recorded_at=now,
        )

    # --- approvals ---------------------------------------------------------------------

    def create_steps(
        self, return_id: int, return_version: int, steps: Sequence[StepSpec], *, now: datetime
    ) -> list[ApprovalStep]:
        t = self._tables()
        now = _checks.aware(now)
        _checks.positive(return_version, "return_version")
        _get(t.returns, return_id, "return")
        if not steps:
            raise ValueError("an approval chain needs at least one step")
        for index, spec in enumerate(steps):
            key = (return_id, return_version, index)
            if key in t.step_keys:
                continue
            ident = t.new_id("approval_step")
            t.step_keys[key] = ident
            t.steps[ident] = ApprovalStep(
                id=ident,
                return_id=return_id,
                return_version=return_version,
                step_index=index,
                name=spec.name,
                approvers=list(spec.approvers),
                any_of=spec.any_of,
                status=StepStatus.PENDING,
                created_at=now,
            )
        return self.list_steps(return_id, return_version)

    def list_steps(self, return_id: int, return_version: int | None = None) -> list[ApprovalStep]:
        mine = [s for s in self._tables().steps.values() if s.return_id == return_id]
        if return_version is None and mine:
            return_version = max(s.return_version for s in mine)
        chain = [s for s in mine if s.return_version == return_version]
        return [_copy(s) for s in sorted(chain, key=lambda s: s.step_index)]

    def get_step(self, step_id: int) -> ApprovalStep:
        return _copy(_get(self._tables().steps, step_id, "approval step"))

    def decide_step(
        self,
        step_id: int,
        decision: StepStatus,
        *,
        by: str,
        at: datetime,
        reason: str | None = None,
    ) -> ApprovalStep:
        t = self._tables()
        decision = _checks.decision(decision)
        _checks.non_empty(by, "by")
        at = _checks.aware(at, "at")
        step = _get(t.steps, step_id, "approval step")
        if step.status not in OPEN_STEP_STATUSES:
            raise AlreadyDecided(_copy(step))
        step = t.steps[step_id] = _copy(
            step, status=decision, decided_by=by, decided_at=at, reason=reason
        )
        return _copy(step)

    def escalate_step(
        self, step_id: int, approvers: Sequence[str], *, at: datetime
    ) -> ApprovalStep:
        t = self._tables()
        _checks.aware(at, "at")
        new_approvers = _checks.approvers(approvers)
        step = _get(t.steps, step_id, "approval step")
        if step.status not in OPEN_STEP_STATUSES:
            raise AlreadyDecided(_copy(step))
        step = t.steps[step_id] = _copy(step, status=StepStatus.ESCALATED, approvers=new_approvers)
        return _copy(step)

    def list_open_steps(
        self, *, approver: str | None = None, return_ids: Collection[int] | None = None
    ) -> list[ApprovalStep]:
        wanted = _checks.ids(return_ids, "return_ids")
        rows = [
            s
            for s in self._tables().steps.values()
            if s.status in OPEN_STEP_STATUSES
            and (wanted is None or s.return_id in wanted)
            and (approver is None or approver in s.approvers)
        ]
        return [_copy(s) for s in sorted(rows, key=lambda s: s.id or 0)]

    # --- timers ------------------------------------------------------------------------

    def schedule_timer(
        self,
        kind: str,
        *,
        due_at: datetime,
        dedup_key: str,
        subject_type: str,
        subject_id: int | None = None,
        payload: dict[str, Any] | None = None,
        now: datetime,
    ) -> tuple[Timer, bool]:
        t = self._tables()
        _checks.non_empty(kind, "kind")
        _checks.non_empty(dedup_key, "dedup_key")
        _checks.non_empty(subject_type, "subject_type")
        due_at = _checks.aware(due_at, "due_at")
        now = _checks.aware(now)
        body = _checks.json_object(payload, "payload")
        ident = t.timer_keys.get(dedup_key)
        if ident is not None:
            return _copy(t.timers[ident]), False
        ident = t.new_id("timer")
        t.timer_keys[dedup_key] = ident
        t.timers[ident] = Timer(
            id=ident,
            kind=kind,
            due_at=due_at,
            subject_type=subject_type,
            subject_id=subject_id,
            payload=body,
            dedup_key=dedup_key,
            status=TimerStatus.PENDING,
            created_at=now,
        )
        return _copy(t.timers[ident]), True

    def complete_timer(self, timer_id: int, *, now: datetime) -> bool:
        t = self._tables()
        now = _checks.aware(now)
        timer = _get(t.timers, timer_id, "timer")
        if timer.status not in (TimerStatus.PENDING, TimerStatus.CLAIMED):
            return False
        t.timers[timer_id] = _copy(timer, status=TimerStatus.DONE, finished_at=now)
        return True

    def cancel_timers(
        self,
        subject_type: str,
        subject_id: int | None,
        *,
        kinds: Collection[str] | None = None,
        now: datetime,
    ) -> int:
        t = self._tables()
        now = _checks.aware(now)
        wanted = _checks.names(kinds, "kinds")
        cancelled = 0
        for ident, timer in list(t.timers.items()):
            if (
                timer.subject_type == subject_type
                and timer.subject_id == subject_id
                and timer.status in (TimerStatus.PENDING, TimerStatus.CLAIMED)
                and (wanted is None or timer.kind in wanted)
            ):
                t.timers[ident] = _copy(timer, status=TimerStatus.CANCELLED, finished_at=now)
                cancelled += 1
        return cancelled

    def list_timers(
        self,
        *,
        subject_type: str | None = None,
        subject_id: int | None = None,
        status: TimerStatus | Collection[TimerStatus] | None = None,
    ) -> list[Timer]:
        wanted = _checks.statuses(status, TimerStatus)
        rows = [
            r
            for r in self._tables().timers.values()
            if (subject_type is None or r.subject_type == subject_type)
            and (subject_id is None or r.subject_id == subject_id)
            and (wanted is None or r.status in wanted)
        ]
        return [_copy(r) for r in sorted(rows, key=lambda r: (r.due_at, r.id or 0))]

    # --- outbox ------------------------------------------------------------------------

    def enqueue(
        self,
        kind: str,
        *,
        budget: str,
        payload: dict[str, Any],
        dedup_key: str,
        now: datetime,
        not_before: datetime | None = None,
    ) -> tuple[OutboxMessage, bool]:
        t = self._tables()
        _checks.non_empty(kind, "kind")
        _checks.non_empty(budget, "budget")
        _checks.non_empty(dedup_key, "dedup_key")
        now = _checks.aware(now)
        first_try = now if not_before is None else _checks.aware(not_before, "not_before")
        body = _checks.json_object(payload, "payload")
        ident = t.outbox_keys.get(dedup_key)
        if ident is not None:
            return _copy(t.outbox[ident]), False
        ident = t.new_id("outbox")
        t.outbox_keys[dedup_key] = ident
        t.outbox[ident] = OutboxMessage(
            id=ident,
            kind=kind,
            budget=budget,
            payload=body,
            dedup_key=dedup_key,
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=first_try,
            created_at=now,
            updated_at=now,
        )
        return _copy(t.outbox[ident]), True

    def list_outbox(
        self,
        *,
        status: OutboxStatus | Collection[OutboxStatus] | None = None,
        kind: str | None = None,
    ) -> list[OutboxMessage]:
        wanted = _checks.statuses(status, OutboxStatus)
        rows = [
            r
            for r in self._tables().outbox.values()
            if (wanted is None or r.status in wanted) and (kind is None or r.kind == kind)
        ]
        return [_copy(r) for r in sorted(rows, key=lambda r: r.id or 0)]

    def outbox_counts(self) -> dict[OutboxStatus, int]:
        counts = dict.fromkeys(OutboxStatus, 0)
        for row in self._tables().outbox.values():
            counts[row.status] += 1
        return counts

    def requeue_parked(self, message_id: int, *, now: datetime) -> OutboxMessage:
        t = self._tables()
        now = _checks.aware(now)
        row = _get(t.outbox, message_id, "outbox message")
        if row.status != OutboxStatus.PARKED:
            raise ValueError(f"outbox message {message_id} is {row.status}, not parked")
        row = t.outbox[message_id] = _copy(
            row, status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, updated_at=now
        )
        return _copy(row)

    # --- audit -------------------------------------------------------------------------

    def audit(
        self,
        action: str,
        *,
        at: datetime,
        actor: str,
        subject_type: str,
        subject_id: str | int,
        cycle_id: int | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> AuditEvent:
        t = self._tables()
        _checks.non_empty(action, "action")
        _checks.non_empty(actor, "actor")
        _checks.non_empty(subject_type, "subject_type")
        ident = t.new_id("audit_event")
        t.audit[ident] = AuditEvent(
            id=ident,
            at=_checks.aware(at, "at"),
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=str(subject_id),
            cycle_id=cycle_id,
            before=_checks.json_or_none(before, "before"),
            after=_checks.json_or_none(after, "after"),
        )
        return _copy(t.audit[ident])

    def list_audit(
        self,
        *,
        cycle_id: int | None = None,
        subject_type: str | None = None,
        subject_id: str | int | None = None,
    ) -> list[AuditEvent]:
        subject = None if subject_id is None else str(subject_id)
        rows = [
            e
            for e in self._tables().audit.values()
            if (cycle_id is None or e.cycle_id == cycle_id)
            and (subject_type is None or e.subject_type == subject_type)
            and (subject is None or e.subject_id == subject)
        ]
        return [_copy(e) for e in sorted(rows, key=lambda e: (e.at, e.id or 0))]

    # --- Teams conversations ------------------------------------------------------------

    def put_conversation_ref(
        self,
        user_id: str,
        *,
        conversation_id: str,
        service_url: str,
        tenant_id: str | None = None,
        now: datetime,
    ) -> ConversationRef:
        t = self._tables()
        _checks.non_empty(user_id, "user_id")
        _checks.non_empty(conversation_id, "conversation_id")
        _checks.non_empty(service_url, "service_url")
        ref = t.conversations[user_id] = ConversationRef(
            user_id=user_id,
            conversation_id=conversation_id,
            service_url=service_url,
            tenant_id=tenant_id,
            updated_at=_checks.aware(now),
        )
        return _copy(ref)

    def find_conversation_ref(self, user_id: str) -> ConversationRef | None:
        ref = self._tables().conversations.get(user_id)
        return None if ref is None else _copy(ref)

    # --- card deliveries -----------------------------------------------------------------

    def record_delivery(
        self,
        card_id: str,
        *,
        user_id: str,
        channel: CardChannel,
        subject_type: str,
        subject_id: int,
        now: datetime,
        conversation_id: str | None = None,
        activity_id: str | None = None,
        service_url: str | None = None,
        message_id: str | None = None,
    ) -> CardDelivery:
        t = self._tables()
        where: dict[str, Any] = {
            "user_id": _checks.non_empty(user_id, "user_id"),
            "channel": _checks.channel(channel),
            "subject_type": _checks.non_empty(subject_type, "subject_type"),
            "subject_id": _checks.integer(subject_id, "subject_id"),
        }
        delivery: dict[str, Any] = {
            "conversation_id": _checks.optional_text(conversation_id, "conversation_id"),
            "activity_id": _checks.optional_text(activity_id, "activity_id"),
            "service_url": _checks.optional_text(service_url, "service_url"),
            "message_id": _checks.optional_text(message_id, "message_id"),
            "delivered_at": _checks.aware(now),
        }
        key = _checks.non_empty(card_id, "card_id")
        existing = t.deliveries.get(key)
        if existing is None:
            row = CardDelivery(card_id=key, replaced_at=None, **where, **delivery)
        elif all(getattr(existing, name) == value for name, value in where.items()):
            row = _copy(existing, **delivery)
        else:
            raise _checks.other_card(_copy(existing), **where)
        t.deliveries[key] = row
        return _copy(row)

    def find_delivery(self, card_id: str) -> CardDelivery | None:
        row = self._tables().deliveries.get(card_id)
        return None if row is None else _copy(row)

    def list_deliveries(
        self,
        *,
        subject_type: str | None = None,
        subject_id: int | None = None,
        user_id: str | None = None,
    ) -> list[CardDelivery]:
        rows = [
            d
            for d in self._tables().deliveries.values()
            if (subject_type is None or d.subject_type == subject_type)
            and (subject_id is None or d.subject_id == subject_id)
            and (user_id is None or d.user_id == user_id)
        ]
        return [_copy(d) for d in sorted(rows, key=lambda d: (d.delivered_at, d.card_id))]

    def mark_replaced(self, card_id: str, *, now: datetime) -> bool:
        t = self._tables()
        now = _checks.aware(now)
        row = t.deliveries.get(card_id)
        if row is None:
            raise NotFound("card delivery", card_id)
        if row.replaced_at is not None:
            return False
        t.deliveries[card_id] = _copy(row, replaced_at=now)
        return True

    # --- people (a directory snapshot) -----------------------------------------------------

    def upsert_people(self, people: Sequence[PersonSpec], *, now: datetime) -> int:
        t = self._tables()
        now = _checks.aware(now)
        specs = _checks.people(people)
        claimed = {spec.email for spec in specs.values()}
        existing = [p for p in t.people.values() if p.id in specs or p.email in claimed]
        changed = _checks.people_changed(specs, existing)
        for person in existing:  # their rows are rewritten or, if stale, dropped
            del t.person_emails[person.email]
            if person.id not in specs:
                del t.people[person.id]
        for ident, spec in specs.items():
            t.people[ident] = Person(
                id=ident,
                name=spec.name,
                email=spec.email,
                line_manager_id=spec.line_manager_id,
                updated_at=now,
            )
            t.person_emails[spec.email] = ident
        return changed

    def find_person(self, ref: str) -> Person | None:
        t = self._tables()
        _checks.non_empty(ref, "ref")
        ident = ref if ref in t.people else t.person_emails.get(_checks.email_lookup(ref))
        return None if ident is None else _copy(t.people[ident])

    def list_people(self) -> list[Person]:
        return [_copy(p) for p in _checks.by_name(list(self._tables().people.values()))]


class MemoryStore(Store):
    """Workflow state in this process only: the same contract, nothing on disk."""

    def __init__(self) -> None:
        self._tables = _Tables()
        self._lock = threading.Lock()
        self._guard = _checks.NestingGuard()

    def transaction(self) -> AbstractContextManager[Transaction]:
        return self._work()

    @contextmanager
    def _work(self) -> Iterator[_MemoryTransaction]:
        with self._guard.enter(), self._lock:
            work = self._tables.working_copy()
            tx = _MemoryTransaction(work)
            try:
                yield tx
            finally:
                tx._open = False
            self._tables = work

    def claim_due_timers(
        self, now: datetime, limit: int, worker: str, *, lease: timedelta = DEFAULT_LEASE
    ) -> list[Timer]:
        now = _checks.aware(now)
        _checks.positive(limit, "limit")
        _checks.non_empty(worker, "worker")
        until = now + _checks.lease(lease)

        def due(r: Timer) -> bool:
            return (r.status == TimerStatus.PENDING and r.due_at <= now) or (
                r.status == TimerStatus.CLAIMED
                and r.claimed_until is not None
                and r.claimed_until <= now
            )

        def claim(r: Timer) -> Timer:
            return _copy(r, status=TimerStatus.CLAIMED, claimed_by=worker, claimed_until=until)

        with self._work() as tx:
            return _claim(tx._tables().timers, due, lambda r: (r.due_at, r.id or 0), limit, claim)

    def claim_outbox(
        self,
        now: datetime,
        limit: int,
        worker: str,
        *,
        budgets: Collection[str] | None = None,
        lease: timedelta = DEFAULT_LEASE,
    ) -> list[OutboxMessage]:
        now = _checks.aware(now)
        _checks.positive(limit, "limit")
        _checks.non_empty(worker, "worker")
        until = now + _checks.lease(lease)
        wanted = _checks.names(budgets, "budgets")

        def due(r: OutboxMessage) -> bool:
            if wanted is not None and r.budget not in wanted:
                return False
            return (r.status == OutboxStatus.PENDING and r.next_attempt_at <= now) or (
                r.status == OutboxStatus.IN_FLIGHT
                and r.claimed_until is not None
                and r.claimed_until <= now
            )

        def claim(r: OutboxMessage) -> OutboxMessage:
            return _copy(
                r,
                status=OutboxStatus.IN_FLIGHT,
                claimed_by=worker,
                claimed_until=until,
                attempts=r.attempts + 1,
                updated_at=now,
            )

        with self._work() as tx:
            return _claim(
                tx._tables().outbox, due, lambda r: (r.next_attempt_at, r.id or 0), limit, claim
            )

    def _finish(self, message_id: int, now: datetime, **changes: Any) -> bool:
        now = _checks.aware(now)
        with self._work() as tx:
            rows = tx._tables().outbox
            row = _get(rows, message_id, "outbox message")
            if row.status != OutboxStatus.IN_FLIGHT:
                return False
            rows[message_id] = _copy(
                row, claimed_by=None, claimed_until=None, updated_at=now, **changes
            )
            return True

    def mark_done(self, message_id: int, *, now: datetime) -> bool:
        return self._finish(message_id, now, status=OutboxStatus.DONE)

    def retry_later(self, message_id: int, at: datetime, error: str, *, now: datetime) -> bool:
        at = _checks.aware(at, "at")
        return self._finish(
            message_id, now, status=OutboxStatus.PENDING, next_attempt_at=at, last_error=error
        )

    def park(self, message_id: int, error: str, *, now: datetime) -> bool:
        return self._finish(message_id, now, status=OutboxStatus.PARKED, last_error=error)

    def try_advisory_lock(self, key: str) -> bool:
        _checks.non_empty(key, "key")
        return True

    def release_advisory_lock(self, key: str) -> None:
        _checks.non_empty(key, "key")

    def close(self) -> None:
        """Nothing to release; the state lives as long as the object."""


# --- helpers ---------------------------------------------------------------------------


def _get(rows: dict[int, M], ident: int, what: str) -> M:
    row = rows.get(ident)
    if row is None:
        raise NotFound(what, ident)
    return row


def _claim(
    rows: dict[int, M],
    due: Callable[[M], bool],
    order: Callable[[M], tuple[datetime, int]],
    limit: int,
    claim: Callable[[M], M],
) -> list[M]:
    """Claim the first ``limit`` due rows in ``order``; the store lock makes this atomic."""
    chosen = sorted((r for r in rows.values() if due(r)), key=order)[:limit]
    claimed = []
    for row in chosen:
        new = claim(row)
        rows[getattr(new, "id")] = new  # noqa: B009 - every claimable table has an int id
        claimed.append(_copy(new))
    return claimed
