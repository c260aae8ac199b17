"""The workflow engine: the only writer of workflow state.

It opens cycles, judges returns, walks approver chains and fires timers; every side
effect it wants leaves through the outbox in the same transaction (docs/outbox.md).
It never calls Microsoft 365 and never reads the clock: ``now`` comes in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from m365perf.cards import OwnerRequestView, ReceiptView
from m365perf.cards.render import SHOW_REQUEST_VERB
from m365perf.domain.periods import Period
from m365perf.engine import delegation
from m365perf.engine.approvals import decide, request_correction
from m365perf.engine.away import cover_open_steps
from m365perf.engine.carddata import shown
from m365perf.engine.clicks import SubmitAnswer, answer_submit_click
from m365perf.engine.closing import CycleClosing, close_cycle, keep_closing
from m365perf.engine.context import Caller, EngineConfig, EngineContext
from m365perf.engine.cycles import CycleOpening, open_cycle
from m365perf.engine.digest import DIGEST_VERBS, handle_digest_action
from m365perf.engine.errors import (
    ActionError,
    BadAction,
    CycleClosed,
    CycleError,
    EmptyCycle,
    NotYours,
    UnknownCycle,
    UnknownSubject,
)
from m365perf.engine.links import revoke_links
from m365perf.engine.parked import retry_parked
from m365perf.engine.resync import CycleResync, resync_cycle
from m365perf.engine.returns import show_request, submit_returns, submit_returns_view
from m365perf.engine.sent import on_parked, on_sent
from m365perf.engine.timers import fire_due_timers
from m365perf.flows.model import Flow
from m365perf.messages import Outcome
from m365perf.plan.register import Indicator, RowProblem
from m365perf.store import (
    DEFAULT_LEASE,
    CycleStatus,
    Delegation,
    LinkRevocation,
    NotFound,
    OutboxMessage,
    Store,
)

__all__ = [
    "ActionError",
    "BadAction",
    "Caller",
    "CycleClosed",
    "CycleClosing",
    "CycleError",
    "CycleOpening",
    "CycleResync",
    "EmptyCycle",
    "Engine",
    "EngineConfig",
    "NotYours",
    "UnknownCycle",
    "UnknownSubject",
]


class Engine:
    """One engine over one store and the loaded flows."""

    def __init__(self, store: Store, flows: Sequence[Flow], config: EngineConfig | None = None):
        self.store = store
        self.ctx = EngineContext({f.id: f for f in flows}, config or EngineConfig())

    @property
    def flows(self) -> Mapping[str, Flow]:
        return self.ctx.flows

    def open_cycle(
        self,
        flow_id: str,
        period: Period,
        indicators: Sequence[Indicator],
        problems: Sequence[RowProblem] = (),
        *,
        now: datetime,
        actor: str = "scheduler",
        allow_empty: bool = False,
    ) -> CycleOpening:
        """Open a cycle; raises ``EmptyCycle`` when nobody could be asked (unless allowed)."""
        return open_cycle(
            self.store,
            self.ctx,
            self.ctx.flow(flow_id),
            period,
            indicators,
            problems,
            now=now,
            actor=actor,
            allow_empty=allow_empty,
        )

    def resync_cycle(
        self,
        flow_id: str,
        period: Period,
        indicators: Sequence[Indicator],
        problems: Sequence[RowProblem] = (),
        *,
        now: datetime,
        actor: str = "scheduler",
    ) -> CycleResync:
        """Re-read the register for an open cycle: ask for indicators that became routable."""
        return resync_cycle(
            self.store,
            self.ctx,
            self.ctx.flow(flow_id),
            period,
            indicators,
            problems,
            now=now,
            actor=actor,
        )

    def keep_cycles_closing(self, *, now: datetime) -> None:
        """Every cycle still open will close by its flow's rule (at start-up, each morning).

        Cycles from before closing existed get their close timer; any already all approved
        closes now.
        """
        with self.store.transaction() as tx:
            cycles = [c for c in tx.list_cycles() if c.status is not CycleStatus.CLOSED]
        for cycle in cycles:
            with self.store.transaction() as tx:
                keep_closing(tx, self.ctx, tx.get_cycle(cycle.id or 0), now=now)

    def close_cycle(self, cycle_id: int, *, by: str, reason: str, now: datetime) -> CycleClosing:
        """Close a cycle by hand (the performance team); closing it twice changes nothing."""
        if not reason.strip():
            raise BadAction("say why the cycle is being closed")
        with self.store.transaction() as tx:
            try:
                cycle = tx.get_cycle(cycle_id)
            except NotFound:
                raise UnknownSubject(f"cycle {cycle_id} does not exist") from None
            return close_cycle(tx, self.ctx, cycle, by=by, reason=reason.strip(), now=now)

    def handle_action(
        self, caller: Caller, verb: str, data: Mapping[str, Any], *, now: datetime
    ) -> dict[str, Any]:
        """An Action.Execute from a card; returns the card that replaces it."""
        if verb == "submitReturns":
            return submit_returns(self.store, self.ctx, caller, data, now=now)
        if verb in ("approve", "reject"):
            return decide(self.store, self.ctx, caller, verb, data, now=now)
        if verb in DIGEST_VERBS:
            return handle_digest_action(self.store, self.ctx, caller, verb, data, now=now)
        if verb == SHOW_REQUEST_VERB:
            return show_request(self.store, self.ctx, caller, data, now=now)
        raise BadAction(f"unknown verb {shown(verb)}")

    def answer_submit_click(
        self, caller: Caller, value: Mapping[str, Any], *, click_id: str, now: datetime
    ) -> SubmitAnswer:
        """An Action.Submit click (an older Teams client): acted on as an Action.Execute,
        its answer put in place of the clicked card when a card of the caller's can take it."""

        def act(who: Caller, verb: str, data: Mapping[str, Any]) -> dict[str, Any]:
            return self.handle_action(who, verb, data, now=now)

        return answer_submit_click(
            self.store, self.ctx, act, caller, value, click_id=click_id, now=now
        )

    def request_correction(
        self,
        flow_id: str,
        period: str,
        indicator_key: str,
        *,
        by: str,
        reason: str,
        now: datetime,
    ) -> None:
        """Reopen an approved figure for its owner to correct; it is approved again."""
        request_correction(
            self.store,
            self.ctx,
            flow_id=flow_id,
            period=period,
            indicator_key=indicator_key,
            by=by,
            reason=reason,
            now=now,
        )

    # --- delegation and out of office ------------------------------------------------

    def add_delegation(
        self,
        *,
        approver: str,
        delegate: str | None,
        starts_on: date,
        ends_on: date,
        flow_id: str | None = None,
        by: str,
        now: datetime,
    ) -> Delegation:
        """Record who acts for an approver on which days (no delegate: away), then send
        the delegate the cards of steps already waiting for the approver."""
        row = delegation.add_delegation(
            self.store,
            self.ctx,
            approver=approver,
            delegate=delegate,
            starts_on=starts_on,
            ends_on=ends_on,
            flow_id=flow_id,
            by=by,
            now=now,
        )
        cover_open_steps(self.store, self.ctx, now=now, approver_id=row.approver_id)
        return row

    def revoke_links(
        self,
        *,
        person: str | None = None,
        cycle_id: int | None = None,
        by: str,
        reason: str = "",
        now: datetime,
    ) -> LinkRevocation:
        """End every web-form link of a person or a cycle signed so far (audited)."""
        return revoke_links(
            self.store, person=person, cycle_id=cycle_id, by=by, reason=reason, now=now
        )

    def end_delegation(self, delegation_id: int, *, by: str, now: datetime) -> Delegation:
        """End a delegation at once; the approver's own cards still work."""
        return delegation.end_delegation(self.store, self.ctx, delegation_id, by=by, now=now)

    def delegations(
        self, *, person: str | None = None, on: date | None = None, include_ended: bool = False
    ) -> list[delegation.DelegationView]:
        """Delegations with names (of one person, active on a day), for lists and pages."""
        return delegation.delegation_views(
            self.store, person=person, on=on, include_ended=include_ended
        )

    def cover_open_steps(self, *, now: datetime) -> int:
        """Each morning: delegates of delegations starting today get the waiting cards."""
        return cover_open_steps(self.store, self.ctx, now=now)

    def remember_conversation(
        self,
        user_id: str,
        *,
        conversation_id: str,
        service_url: str,
        tenant_id: str | None,
        now: datetime,
    ) -> None:
        """Keep where a user talks to the bot, so later cards reach them proactively."""
        with self.store.reading() as reader:  # every click asks; it rarely changes
            current = reader.find_conversation_ref(user_id)
        if (
            current is None
            or current.conversation_id != conversation_id
            or current.service_url != service_url
        ):
            with self.store.transaction() as tx:
                tx.put_conversation_ref(
                    user_id,
                    conversation_id=conversation_id,
                    service_url=service_url,
                    tenant_id=tenant_id,
                    now=now,
                )

    def submit_returns_view(
        self, caller: Caller, data: Mapping[str, Any], *, now: datetime
    ) -> OwnerRequestView | ReceiptView:
        """An owner's submit from the web form: the page to show next (errors or receipt)."""
        return submit_returns_view(self.store, self.ctx, caller, data, now=now)

    def fire_due_timers(
        self, *, worker: str, now: datetime, lease: timedelta = DEFAULT_LEASE
    ) -> int:
        return fire_due_timers(self.store, self.ctx, worker=worker, now=now, lease=lease)

    def on_sent(self, row: OutboxMessage, outcome: Outcome, now: datetime) -> None:
        """The dispatcher sent ``row``: record where it went and schedule what follows."""
        on_sent(self.store, self.ctx, row, outcome, now)

    def retry_parked(self, message_id: int, *, by: str, now: datetime) -> OutboxMessage:
        """An operator retries a parked outbox row (audited); the row as it was parked."""
        return retry_parked(self.store, message_id, by=by, now=now)

    def on_parked(self, row: OutboxMessage, error: str, now: datetime) -> None:
        """The dispatcher gave up on ``row``: send it another way if the flow allows."""
        on_parked(self.store, self.ctx, row, error, now)
