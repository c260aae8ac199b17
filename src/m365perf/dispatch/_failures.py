"""What becomes of a row whose send failed: back to wait, or parked for an operator.

The clients only say whether an error is ``transient`` and how long the service asked
us to wait (``retry_after``); turning that into a time, a count of attempts and a
message fit for the status page is decided here, in one place.
"""

from __future__ import annotations

import random
import re
import traceback
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.exc import InterfaceError, OperationalError

from m365perf.errors import M365PerfError
from m365perf.m365.errors import M365Error, ServerError, ThrottledError, TransportError

# The store's own connection failing (a PostgreSQL restart or failover, SQLite busy past
# its timeout) is as passing as a dropped connection to Microsoft 365: the send path reads
# and writes budgets and remembered items, and a row must not be parked for that.
_TRANSIENT_TYPES = (TransportError, ThrottledError, ServerError, OperationalError, InterfaceError)
_MAX_ERROR_CHARS = 1000
_SECRET_PATTERNS = (
    # "Bearer <token>" in a header someone printed.
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*"), "Bearer [redacted]"),
    # A JWT anywhere (access tokens, id tokens): header.payload.signature, base64url.
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted token]"),
    # Secrets in a query string or form body.
    (
        re.compile(
            r"(?i)\b(client_secret|client_assertion|access_token|refresh_token|password|sig)"
            r"=[^&\s\"']+"
        ),
        r"\1=[redacted]",
    ),
)


class BadPayload(M365PerfError):
    """The engine queued a row the dispatcher cannot act on; sending it again cannot help."""


class NotYet(M365PerfError):
    """Something the row depends on is not there yet (a card's delivery); try again later."""

    transient = True
    retry_after: float | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether a failure is worth another go, and the text stored for the status page."""

    retry: bool
    error: str
    retry_after: float | None = None


def judge(exc: BaseException, secrets: Iterable[str] = ()) -> Verdict:
    """Classify a failure; anything the clients did not anticipate is a bug and is parked."""
    if isinstance(exc, M365Error | BadPayload | NotYet | ValueError) or _is_transient(exc):
        text = f"{type(exc).__name__}: {exc}"
        retry = _is_transient(exc)
    else:
        # A bug: the last line of the traceback names it; retrying would repeat it.
        text = "unexpected " + traceback.format_exception_only(exc)[-1].strip()
        retry = False
    return Verdict(retry, scrub(text, secrets), _retry_after(exc) if retry else None)


def backoff_s(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Wait after failed attempt ``attempt`` (1-based): in [d/2, d], d = base·2^(n-1) ≤ cap.

    Jittered so rows that failed together (a whole batch) do not come back together.
    """
    ceiling = min(cap_s, base_s * 2.0 ** (max(1, attempt) - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove tokens and secrets from text bound for the database and the status page."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 1] + "…"
    return text


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    # Only errors that say so themselves: the M365 tree, NotYet, a $batch part.
    return getattr(exc, "transient", False) is True


def _retry_after(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None
