"""What can go wrong in the store that a caller should handle, with enough to tell the user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from m365perf.errors import M365PerfError

if TYPE_CHECKING:
    from m365perf.store.tables import ApprovalStep, Return


class StoreError(M365PerfError):
    """Base of the store's own errors."""


class StoreUnreachable(StoreError):
    """The database could not be reached (refused, unknown host, bad password): nothing
    was read or written. The message names the database without its password."""


class NotFound(StoreError, LookupError):
    """A cycle, return, step, timer or message with that id does not exist."""

    def __init__(self, what: str, ident: object) -> None:
        super().__init__(f"no {what} with id {ident!r}")
        self.what = what
        self.ident = ident


class TransitionRefused(StoreError):
    """A lifecycle transition did not happen: the subject is not in one of the event's
    from-states, or not at the expected version. Nothing changed.

    ``current`` is the subject as it is now (a ``Cycle``, ``Return`` or ``ApprovalStep``),
    so the caller can say who changed it and when.
    """

    def __init__(
        self, machine: str, event: str, expected_version: int | None, current: Any, detail: str
    ) -> None:
        super().__init__(detail)
        self.machine = machine
        self.event = event
        self.expected_version = expected_version
        self.current = current


class StaleVersion(TransitionRefused):
    """The return changed since the caller read it (a second click, a stale card)."""

    def __init__(self, event: str, expected: int, current: Return) -> None:
        by = current.decided_by or current.submitted_by
        who = f" (last changed by {by})" if by else ""
        super().__init__(
            "return",
            event,
            expected,
            current,
            f"return {current.id} is at version {current.version}, not {expected}{who}",
        )
        self.expected = expected


class AlreadyDecided(TransitionRefused):
    """Someone decided this approval step first; ``step`` says who, when and how."""

    def __init__(self, event: str, step: ApprovalStep) -> None:
        when = step.decided_at.isoformat() if step.decided_at else "an earlier time"
        super().__init__(
            "step",
            event,
            None,
            step,
            f"step {step.step_index} ({step.name}) of return {step.return_id} is already "
            f"{step.status} by {step.decided_by or 'someone else'} at {when}",
        )
        self.step = step


class NestedTransaction(StoreError, RuntimeError):
    """A second transaction was opened inside one on the same thread; pass ``tx`` along."""
