"""The one interface to workflow state: :class:`Store` and its unit of work, :class:`Transaction`.

Everything the engine reads or changes goes through a ``Transaction``; a state change and
the outbox rows, timers and audit events it causes commit together or not at all::

    with store.transaction() as tx:
        ret = tx.submit_return(ret_id, card_version, figure, by=user, now=now)
        tx.enqueue("send_card", budget="bot", payload={...}, dedup_key=..., now=now)
        tx.audit("return.submitted", at=now, actor=user, subject_type="return", ...)

Workers use the few ``Store`` methods that commit on their own (claiming timers and
outbox rows, marking them done), because a claim must be visible to other workers at
once. The store never reads the clock: every time comes in as an argument.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any

from m365perf.domain.kinds import Frequency
from m365perf.store.tables import (
    ActionStatus,
    ApprovalStep,
    AuditEvent,
    CardChannel,
    CardDelivery,
    ConversationRef,
    Cycle,
    CycleStatus,
    Delegation,
    HistoryPoint,
    ImprovementAction,
    Indicator,
    IndicatorSpec,
    IndicatorTarget,
    LinkRevocation,
    NewAction,
    NewReturn,
    OutboxMessage,
    OutboxStatus,
    Person,
    PersonSpec,
    Return,
    ReturnFigure,
    ReturnStatus,
    SnapshotResult,
    StepSpec,
    Timer,
    TimerStatus,
    WritebackItem,
)

DEFAULT_LEASE = timedelta(minutes=5)
"""How long a claimed timer or outbox row stays with its worker before others may retry it."""


class Transaction(ABC):
    """One unit of work: everything done through it commits together or not at all.

    Records it returns are detached copies; change state only through its methods.
    ``get_*`` raise :class:`~m365perf.store.errors.NotFound`; ``find_*`` return ``None``.
    """

    # --- reading ahead -----------------------------------------------------------------

    def prefetch_people(self, refs: Collection[str]) -> None:  # noqa: B027
        """Read these people at once, so ``find_person`` of each costs no statement more
        in this transaction (a click reads everything it decides from in a few reads)."""

    def prefetch_indicators(  # noqa: B027
        self, flow_id: str, indicator_keys: Collection[str]
    ) -> None:
        """Read these indicators at once, for ``find_indicator`` in this transaction."""

    def prefetch_targets(  # noqa: B027
        self, flow_id: str, indicator_keys: Collection[str], period_start: date
    ) -> None:
        """Read their targets in force at ``period_start`` at once, for ``target_for``."""

    def prefetch_steps(self, return_ids: Collection[int]) -> None:  # noqa: B027
        """Read the chains of these returns at once, for ``list_steps``."""

    def prefetch_history(  # noqa: B027
        self, indicator_keys: Collection[str], frequency: Frequency, *, before: date | None = None
    ) -> None:
        """Read the history of these indicators at once, for ``history``."""

    # --- indicators and targets -------------------------------------------------------

    @abstractmethod
    def upsert_indicators(
        self, flow_id: str, indicators: Sequence[IndicatorSpec], *, now: datetime
    ) -> SnapshotResult:
        """Make the flow's snapshot match the register; rows no longer there are retired."""

    @abstractmethod
    def find_indicator(self, flow_id: str, indicator_key: str) -> Indicator | None:
        """One indicator of a flow, retired or not."""

    @abstractmethod
    def list_indicators(self, flow_ids: Collection[str]) -> list[Indicator]:
        """Every indicator of some flows, retired ones too, in one read (for the status page)."""

    @abstractmethod
    def indicators_keyed(self, indicator_key: str) -> list[Indicator]:
        """Every flow's snapshot of one indicator id (active first), for its frequency."""

    @abstractmethod
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
        """Record the target from a period on; replaces only a target from that same period."""

    @abstractmethod
    def target_for(
        self, flow_id: str, indicator_key: str, period_start: date
    ) -> IndicatorTarget | None:
        """The target in force for the period starting on ``period_start``."""

    def put_targets(
        self, flow_id: str, targets: Sequence[IndicatorTarget], *, now: datetime
    ) -> None:
        """Record many targets as :meth:`put_target` would, one by one (a store may batch)."""
        for t in targets:
            self.put_target(
                flow_id,
                t.indicator_key,
                applies_from=t.applies_from,
                applies_from_start=t.applies_from_start,
                value=t.value,
                tolerance_kind=t.tolerance_kind,
                tolerance_amount=t.tolerance_amount,
                now=now,
            )

    def find_indicators(self, flow_id: str, keys: Collection[str]) -> dict[str, Indicator]:
        """The flow's indicators among ``keys``, by key (a store may read them at once)."""
        found = {key: self.find_indicator(flow_id, key) for key in set(keys)}
        return {key: ind for key, ind in found.items() if ind is not None}

    def targets_for(
        self, flow_id: str, keys: Collection[str], period_start: date
    ) -> dict[str, IndicatorTarget]:
        """:meth:`target_for` of many indicators, by key; those with none left out."""
        found = {key: self.target_for(flow_id, key, period_start) for key in set(keys)}
        return {key: t for key, t in found.items() if t is not None}

    # --- cycles ------------------------------------------------------------------------

    @abstractmethod
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
        """Open the flow's cycle for a period, or return the one already open.

        The bool says whether this call created it; across processes exactly one does.
        """

    @abstractmethod
    def find_cycle(self, flow_id: str, period: str) -> Cycle | None:
        """The flow's cycle for a period, if opened."""

    @abstractmethod
    def get_cycle(self, cycle_id: int) -> Cycle:
        """A cycle by id."""

    @abstractmethod
    def list_cycles(
        self, *, flow_id: str | None = None, status: CycleStatus | None = None
    ) -> list[Cycle]:
        """Cycles, oldest period first."""

    # Lifecycle transitions (``m365perf.domain.lifecycle``): each changes state only from
    # its event's from-states and the expected version, bumps the version, and raises
    # :class:`~m365perf.store.errors.TransitionRefused` (changing nothing) otherwise.

    @abstractmethod
    def lock_cycle(self, cycle_id: int) -> Cycle:
        """Read a cycle and hold it until the transaction ends (``SELECT … FOR UPDATE``).

        Two last approvals at once must not both see the other still in approval.
        """

    @abstractmethod
    def note_unroutable(self, cycle_id: int, count: int) -> None:
        """Record how many register rows the cycle could not ask anyone for (not a state)."""

    @abstractmethod
    def collect_cycle(self, cycle_id: int, *, now: datetime) -> bool:
        """``open`` → ``collecting`` (the first figure is in); False when it already was."""

    @abstractmethod
    def close_cycle(
        self, cycle_id: int, expected_version: int, *, by: str, reason: str, now: datetime
    ) -> Cycle:
        """``open``/``collecting`` → ``closed``."""

    # --- returns -----------------------------------------------------------------------

    @abstractmethod
    def create_returns(
        self, cycle_id: int, requests: Sequence[NewReturn], *, now: datetime
    ) -> list[Return]:
        """Create the awaited returns of a cycle; returns only those this call created."""

    @abstractmethod
    def get_return(self, return_id: int) -> Return:
        """A return by id."""

    @abstractmethod
    def find_return(self, cycle_id: int, indicator_key: str) -> Return | None:
        """The return of one indicator in one cycle."""

    @abstractmethod
    def list_returns(
        self,
        *,
        cycle_id: int | None = None,
        owner_id: str | None = None,
        status: ReturnStatus | Collection[ReturnStatus] | None = None,
        cycle_ids: Collection[int] | None = None,
    ) -> list[Return]:
        """Returns matching every filter given, in creation order (``cycle_ids``: of any)."""

    def has_returns(self, cycle_id: int, status: Collection[ReturnStatus]) -> bool:
        """Whether any return of the cycle is in one of ``status`` (read without listing)."""
        return bool(self.list_returns(cycle_id=cycle_id, status=status))

    @abstractmethod
    def submit_return(
        self,
        return_id: int,
        expected_version: int,
        figure: ReturnFigure,
        *,
        by: str,
        now: datetime,
    ) -> Return:
        """``awaiting``/``rejected``/``missed`` → ``returned``, with the owner's figure."""

    @abstractmethod
    def approve_return(
        self, return_id: int, expected_version: int, *, by: str, now: datetime
    ) -> Return:
        """``returned`` → ``approved`` (the last applicable step approved it)."""

    @abstractmethod
    def send_back_return(
        self, return_id: int, expected_version: int, *, by: str, reason: str, now: datetime
    ) -> Return:
        """``returned`` → ``rejected``: an approver sent it back with ``reason``."""

    @abstractmethod
    def reopen_return(
        self, return_id: int, expected_version: int, *, by: str, reason: str, now: datetime
    ) -> Return:
        """``approved`` → ``rejected``: reopened for a correction, with ``reason``."""

    @abstractmethod
    def miss_returns(self, cycle_id: int, *, now: datetime) -> list[Return]:
        """Every ``awaiting``/``rejected`` return of a cycle → ``missed``; those changed."""

    @abstractmethod
    def history(
        self, indicator_key: str, frequency: Frequency, *, before: date | None = None
    ) -> list[HistoryPoint]:
        """Past values of an indicator at one frequency, oldest period first.

        Per indicator, across flows: an indicator moved to another flow keeps its past.
        Approved returns (of cycles of that frequency, in any flow; the latest if two flows
        approved one period), plus imported values for periods (by ``period_start``) that
        no approved return covers: once the council approves a value, it replaces the
        import. ``before`` is a period start.
        """

    def histories(
        self, keys: Collection[str], frequency: Frequency, *, before: date | None = None
    ) -> dict[str, list[HistoryPoint]]:
        """:meth:`history` of many indicators, by key (a store may read them at once)."""
        return {key: self.history(key, frequency, before=before) for key in set(keys)}

    @abstractmethod
    def put_history(
        self,
        indicator_key: str,
        *,
        frequency: Frequency,
        period: str,
        period_start: date,
        value: float,
        source: str,
        now: datetime,
        note: str | None = None,
    ) -> None:
        """Record (or replace) an imported past value for the period starting ``period_start``.

        ``source`` names the import (``import:coventry-2024-25.csv``), so a point can be
        traced; ``"approved"`` is kept for approved returns and refused.
        """

    # --- approvals ---------------------------------------------------------------------

    @abstractmethod
    def create_steps(
        self, return_id: int, return_version: int, steps: Sequence[StepSpec], *, now: datetime
    ) -> list[ApprovalStep]:
        """Create the approval chain of a return version; a second call returns the first's."""

    @abstractmethod
    def list_steps(self, return_id: int, return_version: int | None = None) -> list[ApprovalStep]:
        """The chain of a return version (default: the latest chain), in step order."""

    @abstractmethod
    def list_chains(self, return_ids: Collection[int]) -> list[ApprovalStep]:
        """Every step of every version of some returns, in one read (return, version, index)."""

    @abstractmethod
    def get_step(self, step_id: int) -> ApprovalStep:
        """An approval step by id."""

    @abstractmethod
    def ask_step(self, step_id: int, expected_version: int, *, at: datetime) -> ApprovalStep:
        """``pending`` → ``asked``: the step becomes the chain's current one."""

    @abstractmethod
    def escalate_step(
        self, step_id: int, expected_version: int, approvers: Sequence[str], *, at: datetime
    ) -> ApprovalStep:
        """``asked``/``escalated`` → ``escalated``, handed to ``approvers``."""

    @abstractmethod
    def approve_step(
        self, step_id: int, expected_version: int, *, by: str, at: datetime
    ) -> ApprovalStep:
        """``asked``/``escalated`` → ``approved``.

        A decided step raises :class:`~m365perf.store.errors.AlreadyDecided`, which names
        who decided and when; the first decision stands.
        """

    @abstractmethod
    def reject_step(
        self, step_id: int, expected_version: int, *, by: str, at: datetime, reason: str
    ) -> ApprovalStep:
        """``asked``/``escalated`` → ``rejected``, with the reason the owner is told."""

    @abstractmethod
    def skip_step(
        self, step_id: int, expected_version: int, *, by: str, at: datetime, reason: str
    ) -> ApprovalStep:
        """``pending`` → ``skipped``: not needed, with why."""

    @abstractmethod
    def list_open_steps(
        self, *, approver: str | None = None, return_ids: Collection[int] | None = None
    ) -> list[ApprovalStep]:
        """Current steps (asked or escalated: one per chain at most), in creation order.

        ``approver`` keeps the steps that list that user; ``return_ids`` those of some
        returns.
        """

    # --- improvement actions -------------------------------------------------------------

    @abstractmethod
    def create_action(
        self, spec: NewAction, *, by: str, now: datetime
    ) -> tuple[ImprovementAction, bool]:
        """Raise the action of a return (``not_started``), or return the one it already has.

        The bool says whether this call created it: a return has at most one action.
        """

    @abstractmethod
    def get_action(self, action_id: int) -> ImprovementAction:
        """An improvement action by id."""

    @abstractmethod
    def find_action(self, return_id: int) -> ImprovementAction | None:
        """The action raised for a return, if any."""

    @abstractmethod
    def list_actions(
        self,
        *,
        owner_id: str | None = None,
        flow_id: str | None = None,
        indicator_key: str | None = None,
        status: ActionStatus | Collection[ActionStatus] | None = None,
    ) -> list[ImprovementAction]:
        """Actions matching every filter given, in the order they were raised."""

    @abstractmethod
    def update_action(
        self,
        action_id: int,
        expected_version: int,
        status: ActionStatus,
        *,
        note: str | None,
        by: str,
        now: datetime,
    ) -> ImprovementAction:
        """An open action → ``status`` (the lifecycle's ``note``/``progress``/``complete``)."""

    @abstractmethod
    def revise_action(
        self,
        action_id: int,
        expected_version: int,
        *,
        what: str,
        who_id: str,
        due_on: date,
        by: str,
        now: datetime,
    ) -> ImprovementAction:
        """Change what an open action says (a resubmitted figure); not a state change."""

    # --- timers ------------------------------------------------------------------------

    @abstractmethod
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
        """Schedule a timer once per ``dedup_key`` (ever); the bool says whether it is new."""

    @abstractmethod
    def complete_timer(self, timer_id: int, *, now: datetime) -> bool:
        """Mark a pending or claimed timer done; False if it was already done or cancelled.

        Call it first in the transaction that acts on the timer: only one caller gets True.
        """

    @abstractmethod
    def cancel_timers(
        self,
        subject_type: str,
        subject_id: int | None,
        *,
        kinds: Collection[str] | None = None,
        now: datetime,
    ) -> int:
        """Cancel a subject's pending and claimed timers (of some kinds); returns how many."""

    @abstractmethod
    def list_timers(
        self,
        *,
        subject_type: str | None = None,
        subject_id: int | None = None,
        status: TimerStatus | Collection[TimerStatus] | None = None,
    ) -> list[Timer]:
        """Timers matching every filter given, soonest first."""

    # --- outbox ------------------------------------------------------------------------

    @abstractmethod
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
        """Queue a side effect once per ``dedup_key`` (ever); the bool says whether it is new."""

    @abstractmethod
    def list_outbox(
        self,
        *,
        status: OutboxStatus | Collection[OutboxStatus] | None = None,
        kind: str | None = None,
    ) -> list[OutboxMessage]:
        """Outbox rows matching every filter given, oldest first (``PARKED`` for the stuck)."""

    @abstractmethod
    def outbox_counts(self) -> dict[OutboxStatus, int]:
        """How many rows are in each status (every status present, zero included)."""

    @abstractmethod
    def outbox_depth(self) -> dict[tuple[str, OutboxStatus], int]:
        """How many rows of each kind are in each status (only pairs that have rows)."""

    @abstractmethod
    def requeue_parked(self, message_id: int, *, now: datetime) -> OutboxMessage | None:
        """``parked`` → ``pending``, due now, with its attempts counted afresh; the row as
        it was before, or None when it was not parked (someone retried it already)."""

    # --- audit -------------------------------------------------------------------------

    @abstractmethod
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
        """Append an audit event; they are never changed or removed."""

    @abstractmethod
    def list_audit(
        self,
        *,
        cycle_id: int | None = None,
        subject_type: str | None = None,
        subject_id: str | int | None = None,
        cycle_ids: Collection[int] | None = None,
        actions: Collection[str] | None = None,
    ) -> list[AuditEvent]:
        """Audit events matching every filter given, by time, then in the order appended.

        ``cycle_ids`` keeps events of any of those cycles, ``actions`` of those actions.
        """

    # --- Teams conversations ------------------------------------------------------------

    @abstractmethod
    def put_conversation_ref(
        self,
        user_id: str,
        *,
        conversation_id: str,
        service_url: str,
        tenant_id: str | None = None,
        now: datetime,
    ) -> ConversationRef:
        """Remember (or replace) where to reach a user in Teams."""

    @abstractmethod
    def find_conversation_ref(self, user_id: str) -> ConversationRef | None:
        """Where to reach a user in Teams, if the bot has talked to them."""

    # --- card deliveries -----------------------------------------------------------------

    @abstractmethod
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
        card_hash: str | None = None,
    ) -> CardDelivery:
        """Remember where a card was delivered, once per ``card_id``.

        The dispatcher may send a card again after a crash: recording the same card again
        replaces the ids and ``delivered_at`` with the latest delivery's (``replaced_at``
        stays). A card is for one user and subject; recording it for another is a bug
        upstream and raises ``ValueError``.
        """

    @abstractmethod
    def find_delivery(self, card_id: str) -> CardDelivery | None:
        """Where a card was delivered, if it was."""

    @abstractmethod
    def list_deliveries(
        self,
        *,
        subject_type: str | None = None,
        subject_id: int | None = None,
        user_id: str | None = None,
    ) -> list[CardDelivery]:
        """Deliveries matching every filter given, oldest first."""

    @abstractmethod
    def mark_replaced(self, card_id: str, *, now: datetime, card_hash: str | None = None) -> bool:
        """Record that a card was replaced (by the outcome); False if it already was.

        Only one caller gets True, so one worker replaces the card. ``card_hash``, when
        given, is stored as what the card now shows, whether or not it was replaced before.
        """

    # --- write-back items ------------------------------------------------------------------

    @abstractmethod
    def put_writeback_item(
        self,
        site: str,
        list_title: str,
        key: Sequence[str],
        *,
        item_id: str,
        version: float | None,
        now: datetime,
    ) -> None:
        """Remember the SharePoint item holding ``key`` and the version last written there.

        A version lower than the one stored leaves the stored one (an older row settling
        late never lowers it).
        """

    @abstractmethod
    def find_writeback_items(
        self, site: str, list_title: str, keys: Sequence[Sequence[str]]
    ) -> dict[tuple[str, ...], WritebackItem]:
        """The remembered items of these keys (keys never written are absent)."""

    @abstractmethod
    def forget_writeback_item(self, site: str, list_title: str, key: Sequence[str]) -> None:
        """Drop a remembered item (it was deleted from the list): the next write looks it up."""

    # --- people (a directory snapshot) -----------------------------------------------------

    @abstractmethod
    def upsert_people(self, people: Sequence[PersonSpec], *, now: datetime) -> int:
        """Store people from the directory by id; returns how many were added or changed.

        People not in ``people`` stay (each flow's sync names only its own people). An
        e-mail now held by a different id moves to that id: the directory says whose
        mailbox it is today, so the row that held it before is dropped (a re-created
        account, a reused address) unless it is in ``people`` with another e-mail.
        One id or one e-mail twice in ``people`` raises ``ValueError``.
        """

    @abstractmethod
    def find_person(self, ref: str) -> Person | None:
        """A person by Entra object id, or else by e-mail in any letter case."""

    @abstractmethod
    def queued_keys(self, dedup_keys: Collection[str]) -> set[str]:
        """Which of ``dedup_keys`` are already in the outbox, in any status."""

    @abstractmethod
    def list_people(self) -> list[Person]:
        """Everyone in the snapshot, by name."""

    # --- delegation and out of office ---------------------------------------------------

    @abstractmethod
    def add_delegation(
        self,
        approver_id: str,
        *,
        delegate_id: str | None,
        starts_on: date,
        ends_on: date,
        flow_id: str | None = None,
        by: str,
        now: datetime,
    ) -> Delegation:
        """Record that ``approver_id`` is away from ``starts_on`` to ``ends_on`` (inclusive).

        ``delegate_id`` acts for them (None: away, nobody named); ``flow_id`` None covers
        every flow. A range that ends before it starts, or a delegate who is the approver,
        raises ``ValueError``; whether ranges overlap is the engine's to judge.
        """

    @abstractmethod
    def get_delegation(self, delegation_id: int) -> Delegation:
        """A delegation by id."""

    @abstractmethod
    def end_delegation(self, delegation_id: int, *, by: str, now: datetime) -> Delegation:
        """End a delegation now (it no longer applies); ending it again changes nothing."""

    @abstractmethod
    def list_delegations(
        self,
        *,
        approver_id: str | None = None,
        delegate_id: str | None = None,
        on: date | None = None,
        include_ended: bool = False,
    ) -> list[Delegation]:
        """Delegations matching every filter given (``on``: active that day), oldest first."""

    # --- web-form links -----------------------------------------------------------------

    @abstractmethod
    def revoke_links(
        self, *, owner_id: str | None = None, cycle_id: int | None = None, by: str, now: datetime
    ) -> LinkRevocation:
        """End every web-form link of ``owner_id`` or of ``cycle_id`` (one, not both)
        issued up to ``now``."""

    @abstractmethod
    def link_revoked(self, cycle_id: int, owner_id: str, issued: datetime | None) -> bool:
        """Whether a revocation ends a link of ``owner_id`` for ``cycle_id`` signed at
        ``issued`` (None: a link that does not say when, ended by any revocation)."""


class Store(ABC):
    """Workflow state behind one interface, on SQLite or PostgreSQL."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """Open a unit of work; it commits when the block ends, rolls back if it raises."""

    def reading(self) -> AbstractContextManager[Transaction]:
        """A unit of work that only reads: on SQLite it takes no write lock, so reads do
        not queue behind clicks that write (a write in it is refused)."""
        return self.transaction()

    @abstractmethod
    def claim_due_timers(
        self, now: datetime, limit: int, worker: str, *, lease: timedelta = DEFAULT_LEASE
    ) -> list[Timer]:
        """Claim up to ``limit`` due timers for ``worker`` until ``now + lease``, soonest first.

        Timers whose claim lapsed are due again. Concurrent workers get disjoint timers.
        """

    @abstractmethod
    def claim_outbox(
        self,
        now: datetime,
        limit: int,
        worker: str,
        *,
        budgets: Collection[str] | None = None,
        lease: timedelta = DEFAULT_LEASE,
    ) -> list[OutboxMessage]:
        """Claim up to ``limit`` due outbox rows (optionally of some budgets), oldest first.

        Each claim counts as an attempt. Rows whose claim lapsed are due again (the sender
        crashed); concurrent workers get disjoint rows.
        """

    @abstractmethod
    def mark_done(self, message_id: int, *, now: datetime) -> bool:
        """Record that an in-flight row was sent; False if it was no longer in flight."""

    @abstractmethod
    def retry_later(self, message_id: int, at: datetime, error: str, *, now: datetime) -> bool:
        """Put an in-flight row back to wait until ``at`` (a 429's Retry-After, a backoff)."""

    @abstractmethod
    def park(self, message_id: int, error: str, *, now: datetime) -> bool:
        """Give up on an in-flight row until an operator looks (a 4xx, too many attempts)."""

    @abstractmethod
    def try_advisory_lock(self, key: str) -> bool:
        """Try to become the one instance that runs ``key`` (the scheduler clock).

        PostgreSQL holds it on a dedicated connection until released or the process dies;
        SQLite serves one process, so there it is always granted.
        """

    @abstractmethod
    def release_advisory_lock(self, key: str) -> None:
        """Let another instance take ``key``."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and locks."""
