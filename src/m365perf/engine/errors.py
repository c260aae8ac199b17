"""Why the engine refused (the web layer and the CLI turn these into answers).

ActionError            the click cannot be acted on; nothing changed
├── BadAction          malformed card data: no card of ours sends this (400)
├── NotYours           the caller is not the person the card was sent to (403)
└── UnknownSubject     the cycle, return or step no longer exists (404)

CycleError             a command on a cycle that changed nothing
├── EmptyCycle         no indicator could be asked, so nothing was opened or re-read
├── UnknownCycle       the flow has no cycle for that period
└── CycleClosed        the cycle is closed and takes no new returns
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from m365perf.errors import M365PerfError

if TYPE_CHECKING:
    from m365perf.plan.register import RowProblem


class ActionError(M365PerfError):
    """An inbound action that changed nothing; ``status`` is the HTTP status to answer."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadAction(ActionError):
    status = 400


class NotYours(ActionError):
    status = 403


class UnknownSubject(ActionError):
    status = 404


class CycleError(M365PerfError):
    """A cycle command the engine refused; ``message`` is one line for a person to read."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyCycle(CycleError):
    """Nothing would be asked: every register row is a problem, or the filter matched none.

    ``problems`` are the rows and why each cannot be asked (empty when no row was due).
    """

    def __init__(
        self, flow_id: str, period: str, problems: Sequence[RowProblem], *, what: str
    ) -> None:
        if problems:
            why = f"none of the {len(problems)} due register row(s) can be sent to an owner"
        else:
            why = "no register row is due (does the flow's filter match any row?)"
        super().__init__(f"{flow_id} {period}: {why}, so no indicator can be asked; {what}")
        self.flow_id = flow_id
        self.period = period
        self.problems = tuple(problems)


class UnknownCycle(CycleError):
    def __init__(self, flow_id: str, period: str) -> None:
        super().__init__(f"{flow_id} has no cycle for {period}")
        self.flow_id = flow_id
        self.period = period


class CycleClosed(CycleError):
    def __init__(self, flow_id: str, period: str, closed_at: datetime | None) -> None:
        when = f" on {closed_at:%Y-%m-%d %H:%M} UTC" if closed_at else ""
        super().__init__(f"{flow_id} {period} was closed{when}; it takes no new returns")
        self.flow_id = flow_id
        self.period = period
        self.closed_at = closed_at
