"""The workflow's lifecycle, as data: every state of a cycle, a return, an approval step and
an improvement action, and every transition allowed between them. Nothing else decides
where the workflow may go.

The store refuses any change not in :data:`TRANSITIONS` (``UPDATE … WHERE status IN
(:from) AND version = :v``); ``docs/lifecycle.md`` is generated from this table
(``python -m m365perf.domain.lifecycle``) and a test fails when it is stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from m365perf.errors import M365PerfError


class Machine(StrEnum):
    """Which thing a state belongs to."""

    CYCLE = "cycle"
    RETURN = "return"
    STEP = "step"
    ACTION = "action"


class CycleStatus(StrEnum):
    """Whether a cycle still takes returns."""

    OPEN = "open"
    """Opened: the owners' requests are queued; nothing has been returned yet."""
    COLLECTING = "collecting"
    """At least one figure is in; the rest are being collected and chased."""
    CLOSED = "closed"
    """Closed by the flow's rule or by hand; returns still missing are ``missed``."""


class ReturnStatus(StrEnum):
    """Where one indicator's return for one period stands."""

    AWAITING = "awaiting"
    """Asked of its owner, not returned yet."""
    RETURNED = "returned"
    """The owner's figure is in and goes through the approver chain."""
    APPROVED = "approved"
    """Every applicable step approved it; it is written back and published."""
    REJECTED = "rejected"
    """Sent back to its owner with a reason (by an approver, or reopened for a correction)."""
    MISSED = "missed"
    """The cycle closed before it was returned."""


class StepStatus(StrEnum):
    """One approval step; only the current step of a chain is ``asked`` or ``escalated``."""

    PENDING = "pending"
    """Not its turn yet: an earlier step is still deciding."""
    ASKED = "asked"
    """The current step: its approvers have the card."""
    ESCALATED = "escalated"
    """The current step, handed to more approvers after a timeout."""
    APPROVED = "approved"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    """Not needed (its condition did not hold) or no longer needed (rejected earlier)."""


class ActionStatus(StrEnum):
    """Where an improvement action raised for a red (or special-cause) figure stands."""

    NOT_STARTED = "not_started"
    """Agreed with the figure; nothing reported done yet."""
    IN_PROGRESS = "in_progress"
    """Its owner reports it under way."""
    DONE = "done"
    """Its owner reports it done; it leaves the request cards and is not chased."""


class Event(StrEnum):
    """What happens to a subject; each (machine, event) is one named store operation."""

    COLLECT = "collect"
    CLOSE = "close"
    SUBMIT = "submit"
    APPROVE = "approve"
    SEND_BACK = "send_back"
    REOPEN = "reopen"
    MISS = "miss"
    ASK = "ask"
    ESCALATE = "escalate"
    REJECT = "reject"
    SKIP = "skip"
    NOTE = "note"
    PROGRESS = "progress"
    COMPLETE = "complete"


State = CycleStatus | ReturnStatus | StepStatus | ActionStatus


@dataclass(frozen=True)
class Transition:
    """From any of ``sources``, ``event`` takes a subject of ``machine`` to ``target``."""

    machine: Machine
    sources: frozenset[State]
    event: Event
    target: State
    why: str


def _t(
    machine: Machine, sources: tuple[State, ...], event: Event, target: State, why: str
) -> Transition:
    return Transition(machine, frozenset(sources), event, target, why)


C, R, S, A = CycleStatus, ReturnStatus, StepStatus, ActionStatus

# fmt: off
TRANSITIONS: tuple[Transition, ...] = (
    _t(Machine.CYCLE, (C.OPEN,), Event.COLLECT, C.COLLECTING, "the first figure is returned"),
    _t(Machine.CYCLE, (C.OPEN, C.COLLECTING), Event.CLOSE, C.CLOSED,
       "the flow's close rule holds, or the performance team closes it"),
    _t(Machine.RETURN, (R.AWAITING, R.REJECTED, R.MISSED), Event.SUBMIT, R.RETURNED,
       "the owner returns a valid figure (after closing only if the flow takes late returns)"),
    _t(Machine.RETURN, (R.RETURNED,), Event.APPROVE, R.APPROVED,
       "the last applicable step is approved"),
    _t(Machine.RETURN, (R.RETURNED,), Event.SEND_BACK, R.REJECTED,
       "an approver rejects it with a reason"),
    _t(Machine.RETURN, (R.APPROVED,), Event.REOPEN, R.REJECTED,
       "the performance team asks for a correction"),
    _t(Machine.RETURN, (R.AWAITING, R.REJECTED), Event.MISS, R.MISSED,
       "the cycle closes without it"),
    _t(Machine.STEP, (S.PENDING,), Event.ASK, S.ASKED,
       "every earlier step is approved or skipped: its approvers get the card"),
    _t(Machine.STEP, (S.ASKED, S.ESCALATED), Event.ESCALATE, S.ESCALATED,
       "nobody decided in time: more approvers are added"),
    _t(Machine.STEP, (S.ASKED, S.ESCALATED), Event.APPROVE, S.APPROVED,
       "one of its approvers (not the owner or submitter) approves"),
    _t(Machine.STEP, (S.ASKED, S.ESCALATED), Event.REJECT, S.REJECTED,
       "one of its approvers rejects, with a reason"),
    _t(Machine.STEP, (S.PENDING,), Event.SKIP, S.SKIPPED,
       "its condition does not hold, or an earlier step rejected the return"),
    _t(Machine.ACTION, (A.NOT_STARTED,), Event.NOTE, A.NOT_STARTED,
       "its owner updates it from a request card, not started yet (with a note)"),
    _t(Machine.ACTION, (A.NOT_STARTED, A.IN_PROGRESS), Event.PROGRESS, A.IN_PROGRESS,
       "its owner reports it under way"),
    _t(Machine.ACTION, (A.NOT_STARTED, A.IN_PROGRESS), Event.COMPLETE, A.DONE,
       "its owner reports it done"),
)
# fmt: on

INITIAL: dict[Machine, State] = {
    Machine.CYCLE: C.OPEN,
    Machine.RETURN: R.AWAITING,
    Machine.STEP: S.PENDING,
    Machine.ACTION: A.NOT_STARTED,
}
"""The state a subject is created in."""

STATES: dict[Machine, tuple[State, ...]] = {
    Machine.CYCLE: tuple(CycleStatus),
    Machine.RETURN: tuple(ReturnStatus),
    Machine.STEP: tuple(StepStatus),
    Machine.ACTION: tuple(ActionStatus),
}

#: Steps decided for good.
DECIDED_STEP: frozenset[StepStatus] = frozenset({S.APPROVED, S.REJECTED, S.SKIPPED})

TERMINAL: dict[Machine, frozenset[State]] = {
    Machine.CYCLE: frozenset({C.CLOSED}),
    Machine.RETURN: frozenset(),
    Machine.STEP: DECIDED_STEP,
    Machine.ACTION: frozenset({A.DONE}),
}
"""States nothing leaves. A return never ends for good: an approved figure can be corrected
and a missed one returned late."""

#: Steps still awaiting a decision: the current step of a chain.
CURRENT_STEP = frozenset({S.ASKED, S.ESCALATED})
#: Steps that let the chain go on past them.
PASSED_STEP = frozenset({S.APPROVED, S.SKIPPED})
#: Returns still for their owner to (re)submit while the cycle collects.
OPEN_FOR_OWNER = frozenset({R.AWAITING, R.REJECTED})
#: Improvement actions still to be done: shown on request cards, chased when overdue.
OPEN_ACTION = frozenset({A.NOT_STARTED, A.IN_PROGRESS})
#: The event that takes an open action to each status its owner may choose.
ACTION_EVENT: dict[ActionStatus, Event] = {
    A.NOT_STARTED: Event.NOTE,
    A.IN_PROGRESS: Event.PROGRESS,
    A.DONE: Event.COMPLETE,
}


class NoSuchTransition(M365PerfError, LookupError):
    """The table has no such (machine, event): a bug in the caller, never user input."""


def transition(machine: Machine, event: Event) -> Transition:
    """The one transition ``event`` names for ``machine``."""
    for t in TRANSITIONS:
        if t.machine is machine and t.event is event:
            return t
    raise NoSuchTransition(f"no transition {event.value!r} for a {machine.value}")


def allowed(machine: Machine, source: State, target: State) -> bool:
    """Whether the table lets a subject go from ``source`` to ``target`` in one step."""
    return any(
        t.machine is machine and source in t.sources and t.target == target for t in TRANSITIONS
    )


def diagram() -> str:
    """``docs/lifecycle.md``: the table and a Mermaid state diagram per machine."""
    lines = [
        "# Lifecycle: cycles, returns, approval steps and improvement actions",
        "",
        "Generated from `src/m365perf/domain/lifecycle.py` by",
        "`python -m m365perf.domain.lifecycle > docs/lifecycle.md`; a test fails when it is",
        "stale. The store changes a state only along these rows, from the expected version.",
        "",
    ]
    for machine in Machine:
        lines += [f"## {machine.value.capitalize()}", "", "```mermaid", "stateDiagram-v2"]
        lines.append(f"    [*] --> {INITIAL[machine].value}")
        for t in TRANSITIONS:
            if t.machine is machine:
                for source in sorted(t.sources):
                    lines.append(f"    {source.value} --> {t.target.value}: {t.event.value}")
        for state in sorted(TERMINAL[machine]):
            lines.append(f"    {state.value} --> [*]")
        lines += ["```", "", "| from | event | to | when |", "| --- | --- | --- | --- |"]
        for t in TRANSITIONS:
            if t.machine is machine:
                sources = ", ".join(s.value for s in sorted(t.sources))
                lines.append(f"| {sources} | `{t.event.value}` | {t.target.value} | {t.why} |")
        terminal = ", ".join(s.value for s in sorted(TERMINAL[machine])) or "none"
        lines += ["", f"Starts in `{INITIAL[machine].value}`; terminal: {terminal}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - the doc generator
    print(diagram(), end="")
