"""An operator's second chance for a parked outbox row: send it again, on the record.

The dispatcher parks a row it gave up on (a 4xx, too many attempts, a payload that is not
its kind). Once the cause is fixed (a mailbox unblocked, a permission granted), the
performance team retries it from the status page: the row is due again with its attempts
counted afresh, and the audit trail says who retried it, when, and the error it had.
"""

from __future__ import annotations

from datetime import datetime

from m365perf.engine.errors import BadAction, UnknownSubject
from m365perf.messages.names import AuditAction, SubjectType
from m365perf.store import NotFound, OutboxMessage, OutboxStatus, Store


def retry_parked(store: Store, message_id: int, *, by: str, now: datetime) -> OutboxMessage:
    """Requeue one parked row for the dispatcher; refused (nothing changed) if not parked."""
    with store.transaction() as tx:
        try:
            before = tx.requeue_parked(message_id, now=now)
        except NotFound:
            raise UnknownSubject(f"there is no outbox message {message_id}") from None
        if before is None:
            raise BadAction(f"outbox message {message_id} is not parked (already retried, or sent)")
        tx.audit(
            AuditAction.OUTBOX_RETRIED,
            at=now,
            actor=by,
            subject_type=SubjectType.OUTBOX,
            subject_id=message_id,
            before={
                "status": OutboxStatus.PARKED.value,
                "kind": before.kind,
                "attempts": before.attempts,
                "error": before.last_error,
            },
            after={"status": OutboxStatus.PENDING.value},
        )
    return before
