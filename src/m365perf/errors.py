"""The root of every error m365perf raises on purpose, so a caller can catch them in one place.

Each package keeps its own errors next to its code; they all hang from :class:`M365PerfError`.
A class that also names a built-in base ("also ValueError") keeps it, so older
``except ValueError`` or ``except LookupError`` callers still work. ``tests/test_errors.py``
checks this drawing against the code, so it cannot go stale::

    M365PerfError
    ├── PeriodError                    (also ValueError) domain: not a real reporting period
    ├── NoSuchTransition               (also LookupError) domain: no such lifecycle event
    ├── ValueProblem                   (also ValueError) domain: a returned value refused
    ├── FlowError                      flows: a flow file could not be loaded; .problems
    ├── SubmissionError                (also ValueError) cards: data no card of ours sends
    ├── CardSchemaError                (also ValueError) cards: Teams/Outlook would not render it
    ├── CardTooLargeError              (also ValueError) cards: over the size limit
    ├── UnreadableCsv                  (also ValueError) csvfiles: a register or people CSV
    ├── FieldMapError                  plan: the flow names columns the register lacks
    ├── ExportValueError               (also ValueError) domain: an export's period or value
    ├── HistoryFileError               (also ValueError) history: an export that cannot be read
    ├── IdError                        (also ValueError) messages: not a card id or key of ours
    │   ├── CardIdError
    │   └── DedupKeyError
    ├── MessageError                   (also ValueError) messages: not an outbox row of ours
    │   └── UnknownKind
    ├── StoreError                     store: the store refused or failed
    │   ├── NotFound                   (also LookupError) no row with that id
    │   ├── TransitionRefused          not in the event's from-states or version
    │   │   ├── StaleVersion           the return changed since the caller read it
    │   │   └── AlreadyDecided         someone decided the approval step first
    │   ├── StoreUnreachable           the database could not be reached
    │   ├── NestedTransaction          (also RuntimeError) a transaction inside another
    │   └── SchemaOutOfDate            the database needs its migrations
    ├── ActionError                    engine: a click that changed nothing; .status
    │   ├── BadAction                  malformed card data (400)
    │   ├── NotYours                   not the person the card was sent to (403)
    │   └── UnknownSubject             the cycle, return or step is gone (404)
    ├── CycleError                     engine: a command on a cycle that changed nothing
    │   ├── EmptyCycle                 no indicator could be asked: nothing opened
    │   ├── UnknownCycle               the flow has no cycle for that period
    │   └── CycleClosed                the cycle is closed and takes no new returns
    ├── OutcomeMismatch                (also TypeError) engine: a send reported the wrong outcome
    ├── M365Error                      m365: talking to Microsoft 365 failed; .transient
    │   ├── TransportError             no response: timeout, dropped connection
    │   ├── HttpError                  an error status; .status .request_id
    │   │   ├── ThrottledError         429/503/504 after our retries
    │   │   ├── ClientError            other 4xx, never retried
    │   │   │   ├── BadRequest         400
    │   │   │   ├── Unauthorized       401 and 403
    │   │   │   ├── NotFound           404
    │   │   │   └── PreconditionFailed 412 (stale eTag)
    │   │   └── ServerError            other 5xx
    │   ├── BatchError                 $batch sub-requests failed for good
    │   ├── AuthError                  no token
    │   ├── DuplicateKeyError          two list items with one key
    │   ├── WaitTimeout                a Power BI refresh did not finish in time
    │   └── WriteFailed                dispatch: one write-back row of a $batch
    ├── BadPayload                     dispatch: a queued row that cannot be sent
    ├── NotYet                         dispatch: what the row needs is not there yet
    ├── BotAuthError                   web: a click whose sender is not proven (401)
    │   ├── MissingToken
    │   ├── MalformedToken
    │   ├── UnsupportedAlgorithm
    │   ├── UnknownKey
    │   ├── KeyNotEndorsed
    │   ├── BadSignature
    │   ├── WrongIssuer
    │   ├── WrongAudience
    │   ├── WrongTenant                another council's token or activity
    │   ├── Expired
    │   ├── NotYetValid
    │   ├── WrongServiceUrl
    │   ├── BadActivity
    │   ├── UnknownCaller
    │   └── KeysUnavailable            our outage, not the caller's (503)
    ├── SignInError                    web: a sign-in that proves nobody; .reason
    │   ├── BadState                   not the sign-in this browser started
    │   └── BadIdToken                 not our tenant's, not for us, stale, or wrong nonce
    ├── LinkError                      web: a return link that opens nothing; .status
    │   ├── MalformedLink              not a link we make (400)
    │   ├── BadSignature               not signed with our key (403)
    │   ├── WrongPurpose               made for something else (403)
    │   └── ExpiredLink                past its date (410)
    └── DemoError                      (also RuntimeError) demo: the rehearsal could not run

Settings and sync define no errors of their own: bad settings are pydantic's
``ValidationError`` (a ``ValueError``), and sync lets ``M365Error`` and ``StoreError`` through.
Not in the tree: the sandbox's errors (they stand for Microsoft's answers and never leave the
emulator) and a few private ones caught in the module that raises them.

This module imports nothing of the project, so the domain may use it and stay pure.
"""

from __future__ import annotations

__all__ = ["M365PerfError"]


class M365PerfError(Exception):
    """Base of every error m365perf raises on purpose; see the module's tree."""
