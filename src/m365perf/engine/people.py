"""The directory as the engine sees it: people copied into the store by the sync step.

Resolving owners and approvers is then a database read, never a call to Entra ID, so
the engine stays free of Microsoft 365 I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from m365perf.domain.approvers import Person
from m365perf.engine.errors import NotYours, UnknownSubject
from m365perf.flows.model import Flow
from m365perf.store import Transaction


class StoreDirectory:
    """A domain ``Directory`` over the store's people and the flow's groups."""

    def __init__(self, tx: Transaction, flow: Flow) -> None:
        self._tx = tx
        self._flow = flow

    def find(self, ref: str) -> Person | None:
        found = self._tx.find_person(ref.strip())
        if found is None:
            return None
        return Person(id=found.id, name=found.name, email=found.email)

    def line_manager(self, person: Person) -> Person | None:
        found = self._tx.find_person(person.id) or self._tx.find_person(person.email)
        if found is None or not found.line_manager_id:
            return None
        return self.find(found.line_manager_id)

    def group_members(self, group: str) -> Sequence[Person] | None:
        members = self._flow.groups.get(group)
        if members is None:
            return None
        return [p for p in (self.find(m) for m in members) if p is not None]

    def performance_team(self) -> list[Person]:
        """The flow's performance team, as people where the directory knows them."""
        team = []
        for email in self._flow.performance_team:
            team.append(self.find(email) or Person(id=email, name=email, email=email))
        return team


class CachedDirectory(StoreDirectory):
    """A ``StoreDirectory`` that reads each person once: for a batch routing many rows
    inside one transaction, where the people cannot change under it."""

    def __init__(self, tx: Transaction, flow: Flow) -> None:
        super().__init__(tx, flow)
        self._found: dict[str, Person | None] = {}
        self._managers: dict[str, Person | None] = {}

    def find(self, ref: str) -> Person | None:
        key = ref.strip()
        if key not in self._found:
            self._found[key] = super().find(key)
        return self._found[key]

    def line_manager(self, person: Person) -> Person | None:
        if person.id not in self._managers:
            self._managers[person.id] = super().line_manager(person)
        return self._managers[person.id]


def performance_officer(tx: Transaction, flow: Flow, ref: str) -> Person:
    """The person ``ref`` names, who must be in the directory and in the flow's team.

    Corrections reopen approved figures, so only the performance team may ask for one;
    an address nobody holds would be recorded as the actor and tell the audit nothing.
    """
    found = StoreDirectory(tx, flow).find(ref) if ref.strip() else None
    if found is None:
        raise UnknownSubject(
            f"{ref!r} is not in the directory (the people synced from the register): "
            "give the e-mail of a performance officer; nothing changed"
        )
    team = [StoreDirectory(tx, flow).find(m) for m in flow.performance_team]
    if not any(member is not None and member.same_as(found) for member in team):
        listed = ", ".join(flow.performance_team) or "nobody"
        raise NotYours(
            f"{found.name} <{found.email}> is not in the performance team of flow {flow.id} "
            f"(performance_team: {listed}); nothing changed"
        )
    return found
