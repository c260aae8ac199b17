"""Why the engine refused an action (the web layer turns these into HTTP answers).

ActionError            the click cannot be acted on; nothing changed
├── BadAction          malformed card data: no card of ours sends this (400)
├── NotYours           the caller is not the person the card was sent to (403)
└── UnknownSubject     the cycle, return or step no longer exists (404)
"""

from __future__ import annotations

from m365perf.errors import M365PerfError


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
