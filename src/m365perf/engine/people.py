"""The directory as the engine sees it: people copied into the store by the sync step.

Resolving owners and approvers is then a database read, never a call to Entra ID, so
the engine stays free of Microsoft 365 I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from m365perf.domain.approvers import Person
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
