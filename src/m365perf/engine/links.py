"""Ending web-form links: ``m365perf links revoke`` for a person or a cycle.

A web-form link is signed as its e-mail goes and never stored, so it cannot be deleted;
a revocation records a cut-off instead, and the form refuses every link of that person
(any cycle) or that cycle (any owner) signed up to it. A card sent afterwards carries a
fresh link that works. Every revocation is in the audit trail.
"""

from __future__ import annotations

from datetime import datetime

from m365perf.engine.errors import BadAction, UnknownSubject
from m365perf.messages.names import AuditAction, SubjectType
from m365perf.store import LinkRevocation, NotFound, Store

__all__ = ["revoke_links"]


def revoke_links(
    store: Store,
    *,
    person: str | None = None,
    cycle_id: int | None = None,
    by: str,
    reason: str = "",
    now: datetime,
) -> LinkRevocation:
    """End every link of ``person`` (Entra id or e-mail) or of cycle ``cycle_id`` so far."""
    if (person is None) == (cycle_id is None):
        raise BadAction("name one person (--person) or one cycle (--cycle), not both")
    if not by.strip():
        raise BadAction("say who is revoking the links (--by)")
    with store.transaction() as tx:
        if person is not None:
            found = tx.find_person(person.strip()) if person.strip() else None
            if found is None:
                raise UnknownSubject(f"nobody called {person!r} is in the directory")
            row = tx.revoke_links(owner_id=found.id, by=by, now=now)
            subject_type, subject_id = SubjectType.PERSON, found.id
            after: dict[str, object] = {"owner_id": found.id, "email": found.email}
        else:
            try:
                cycle = tx.get_cycle(cycle_id or 0)
            except NotFound:
                raise UnknownSubject(f"cycle {cycle_id} does not exist") from None
            row = tx.revoke_links(cycle_id=cycle.id, by=by, now=now)
            subject_type, subject_id = SubjectType.CYCLE, str(cycle.id)
            after = {"cycle_id": cycle.id, "flow_id": cycle.flow_id, "period": cycle.period}
        tx.audit(
            AuditAction.LINKS_REVOKED,
            at=now,
            actor=by,
            subject_type=subject_type,
            subject_id=subject_id,
            cycle_id=row.cycle_id,
            after={**after, "reason": reason.strip()} if reason.strip() else after,
        )
    return row
