"""What crosses package boundaries, typed: outbox messages and their outcomes, card ids,
dedup keys, and the names of timers, audit actions and subjects.

The engine builds these and the dispatcher reads them, so both import this package and
it imports nothing of the project but ``m365perf.domain``. Stored as text and JSON in
the same shapes as before, so existing rows read back unchanged.
"""

from __future__ import annotations

from m365perf.messages.ids import (
    ApprovalCardId,
    CardId,
    CardIdError,
    DedupKey,
    DedupKeyError,
    IdError,
    RejectionCardId,
    RequestCardId,
)
from m365perf.messages.names import AuditAction, OutboxKind, SubjectType, TimerKind
from m365perf.messages.outbox import (
    CardSent,
    CardUpdated,
    CardUser,
    CheckRefresh,
    MailSent,
    Message,
    MessageError,
    Outcome,
    Refresh,
    RefreshChecked,
    RefreshStarted,
    ReturnForm,
    SendCard,
    SendMail,
    UnknownKind,
    UpdateCard,
    WriteAction,
    WriteBack,
    WrittenBack,
    card_fingerprint,
    parse_message,
)

__all__ = [
    "ApprovalCardId",
    "AuditAction",
    "CardId",
    "CardIdError",
    "CardSent",
    "CardUpdated",
    "CardUser",
    "CheckRefresh",
    "DedupKey",
    "DedupKeyError",
    "IdError",
    "MailSent",
    "Message",
    "MessageError",
    "OutboxKind",
    "Outcome",
    "Refresh",
    "RefreshChecked",
    "RefreshStarted",
    "RejectionCardId",
    "RequestCardId",
    "ReturnForm",
    "SendCard",
    "SendMail",
    "SubjectType",
    "TimerKind",
    "UnknownKind",
    "UpdateCard",
    "WriteAction",
    "WriteBack",
    "WrittenBack",
    "card_fingerprint",
    "parse_message",
]
