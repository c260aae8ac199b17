"""What can go wrong in the store that a caller should handle, with enough to tell the user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from m365perf.errors import M365PerfError

if TYPE_CHECKING:
    from m365perf.store.tables import ApprovalStep, Return


class StoreError(M365PerfError):
    """Base of the store's own errors."""


class NotFound(StoreError, LookupError):
    """A cycle, return, step, timer or message with that id does not exist."""

    def __init__(self, what: str, ident: object) -> None:
        super().__init__(f"no {what} with id {ident!r}")
        self.what = what
        self.ident = ident


class StaleVersion(StoreError):
    """The return changed since the caller read it (a second click, a stale card).

    ``current`` is the return as it is now, so the caller can say who changed it and when.
    """

    def __init__(self, expected: int, current: Return) -> None:
        by = current.decided_by or current.submitted_by
        who = f" (last changed by {by})" if by else ""
        super().__init__(
            f"return {current.id} is at version {current.version}, not {expected}{who}"
        )
        self.expected = expected
        self.current = current


class AlreadyDecided(StoreError):
    """Someone decided this approval step first; ``step`` says who, when and how."""

    def __init__(self, step: ApprovalStep) -> None:
        when = step.decided_at.isoformat() if step.decided_at else "an earlier time"
        super().__init__(
            f"step {step.step_index} ({step.name}) of return {step.return_id} is already "
            f"{step.status} by {step.decided_by or 'someone else'} at {when}"
        )
        self.step = step


class NestedTransaction(StoreError, RuntimeError):
    """A second transaction was opened inside one on the same thread; pass ``tx`` along."""
