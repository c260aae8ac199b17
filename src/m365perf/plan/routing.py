"""Who is asked and who approves: owners and approver chains resolved per indicator."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from m365perf.domain.approvers import (
    Condition,
    Directory,
    Person,
    ResolvedStep,
    StepRule,
    Unroutable,
    resolve_chain,
)
from m365perf.flows.model import ApprovalStep, Flow

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def step_rules(flow: Flow) -> tuple[StepRule, ...]:
    """The flow's approval steps as domain rules (flow-level defaults applied)."""
    return tuple(_rule(flow, step) for step in flow.approval.steps)


def _rule(flow: Flow, step: ApprovalStep) -> StepRule:
    when = step.when
    condition = (
        Condition(
            rag_in=frozenset(when.rag) if when.rag else None,
            direction_in=frozenset(when.direction) if when.direction else None,
            change_over_percent=when.change_over_percent,
        )
        if when
        else None
    )
    return StepRule(
        name=step.name,
        kind=step.approver.kind,
        ref=step.approver.ref,
        on_self_approval=step.on_self_approval or flow.approval.on_self_approval,
        fallback=step.fallback or flow.approval.fallback,
        condition=condition,
    )


class FlowDirectory:
    """People known to a flow: a directory export (or just e-mails) plus the flow's groups.

    Without a directory export every well-formed e-mail address is a person and nobody
    has a line manager, which is what a dry run on a bare register can know.
    """

    def __init__(
        self, people: Sequence[Person], managers: Mapping[str, str], flow: Flow, *, strict: bool
    ) -> None:
        self._by_key = {p.email.lower(): p for p in people} | {p.id.lower(): p for p in people}
        self._managers = {k.lower(): v for k, v in managers.items()}
        self._groups = flow.groups
        self._strict = strict

    def find(self, ref: str) -> Person | None:
        ref = ref.strip()
        found = self._by_key.get(ref.lower())
        if found or self._strict or not _EMAIL.match(ref):
            return found
        return Person(id=ref.lower(), name=ref, email=ref.lower())

    def line_manager(self, person: Person) -> Person | None:
        manager = self._managers.get(person.email.lower()) or self._managers.get(person.id.lower())
        return self.find(manager) if manager else None

    def group_members(self, group: str) -> Sequence[Person] | None:
        members = self._groups.get(group)
        if members is None:
            return None
        return [p for p in (self.find(m) for m in members) if p is not None]


@dataclass(frozen=True)
class Route:
    """One indicator's owner and resolved approver chain."""

    owner: Person
    chain: tuple[ResolvedStep, ...]


def route(
    flow: Flow, directory: Directory, owner_ref: str, row: Mapping[str, str]
) -> Route | Unroutable:
    """Resolve the owner and the chain for one register row."""
    owner = directory.find(owner_ref)
    if owner is None:
        return Unroutable(f"owner '{owner_ref}' is not in the directory")
    chain = resolve_chain(step_rules(flow), owner, row, directory)
    if isinstance(chain, Unroutable):
        return chain
    return Route(owner, chain)
