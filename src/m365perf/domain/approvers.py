"""Who approves a return: resolving a flow's approval steps, with segregation of duties.

The rule the whole module exists for: nobody approves their own return. A step
that would land on the owner is passed on (to the next step or to a named
fallback) and a step that cannot land on anybody else makes the return
unroutable, which the performance team must fix, rather than quietly approved.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from m365perf.domain.kinds import Rag

__all__ = [
    "Condition",
    "Directory",
    "Person",
    "ResolvedStep",
    "StepRule",
    "Unroutable",
    "condition_applies",
    "describe_condition",
    "may_approve",
    "resolve_chain",
]

_KINDS = ("column", "user", "group", "line_manager")
_SELF_APPROVAL = ("next", "fallback")


@dataclass(frozen=True)
class Person:
    """Someone in the organisation; ``id`` is the Entra object id, or the e-mail if unknown."""

    id: str
    name: str
    email: str

    def same_as(self, other: Person) -> bool:
        """Whether both refer to one person, even if one side only knows the e-mail."""
        return bool(_keys(self) & _keys(other))


class Directory(Protocol):
    """The organisation's people, as the approver resolution needs them."""

    def find(self, ref: str) -> Person | None:
        """The person with this e-mail or id, or None."""
        ...

    def line_manager(self, person: Person) -> Person | None:
        """The person's line manager, or None when the directory has none."""
        ...

    def group_members(self, group: str) -> Sequence[Person] | None:
        """The group's members, or None when there is no such group."""
        ...


@dataclass(frozen=True)
class Condition:
    """When a step applies; every part that is set must hold, unset parts are ignored."""

    rag_in: frozenset[Rag] | None = None
    direction_in: frozenset[str] | None = None
    change_over_percent: float | None = None

    def __post_init__(self) -> None:
        if self.rag_in is not None:
            object.__setattr__(self, "rag_in", frozenset(Rag(r) for r in self.rag_in))
        if self.direction_in is not None:
            object.__setattr__(self, "direction_in", frozenset(str(d) for d in self.direction_in))
        limit = self.change_over_percent
        if limit is not None and (
            isinstance(limit, bool)
            or not isinstance(limit, int | float)
            or not math.isfinite(limit)
            or limit < 0
        ):
            raise ValueError(f"change_over_percent must be a number of 0 or more, got {limit!r}")


@dataclass(frozen=True)
class StepRule:
    """One approval step as a flow configures it.

    ``ref`` is the register column (kind "column"), an e-mail ("user"), a group
    name ("group"), or None ("line_manager"). ``on_self_approval`` says what
    happens when only the owner could approve: pass to the next step, or to the
    ``fallback`` person (an e-mail or id).
    """

    name: str
    kind: Literal["column", "user", "group", "line_manager"]
    ref: str | None
    on_self_approval: Literal["next", "fallback"] = "next"
    fallback: str | None = None
    condition: Condition | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("an approval step needs a name")
        if self.kind not in _KINDS:
            raise ValueError(
                f"step {self.name!r}: kind must be one of {', '.join(_KINDS)}, got {self.kind!r}"
            )
        if self.kind == "line_manager":
            if self.ref is not None:
                raise ValueError(f"step {self.name!r}: a line_manager step takes no ref")
        elif not (self.ref or "").strip():
            raise ValueError(f"step {self.name!r}: a {self.kind} step needs a ref")
        if self.on_self_approval not in _SELF_APPROVAL:
            raise ValueError(
                f"step {self.name!r}: on_self_approval must be 'next' or 'fallback', "
                f"got {self.on_self_approval!r}"
            )
        if self.on_self_approval == "fallback" and not (self.fallback or "").strip():
            raise ValueError(
                f"step {self.name!r}: on_self_approval 'fallback' needs a fallback person"
            )


@dataclass(frozen=True)
class ResolvedStep:
    """A step with its approvers named; ``any_of`` means one member's decision is enough."""

    rule: StepRule
    approvers: tuple[Person, ...]
    any_of: bool
    note: str | None


@dataclass(frozen=True)
class Unroutable:
    """Why a return cannot be sent for approval; the performance team must fix the cause."""

    reason: str


def condition_applies(
    condition: Condition | None,
    *,
    rag: Rag,
    direction: str | None,
    change_percent: float | None,
) -> bool:
    """Whether a step's condition holds for a return.

    No condition always applies. A part that needs an input that is missing
    (no direction, no change because there is no previous value) does not hold.
    """
    if condition is None:
        return True
    if condition.rag_in is not None and Rag(rag) not in condition.rag_in:
        return False
    if condition.direction_in is not None and (
        direction is None or str(direction) not in condition.direction_in
    ):
        return False
    return condition.change_over_percent is None or (
        change_percent is not None and abs(change_percent) > condition.change_over_percent
    )


def describe_condition(condition: Condition | None) -> str:
    """The condition in words, for plans and cards: "when RAG is amber or red"."""
    if condition is None:
        return "always"
    parts: list[str] = []
    if condition.rag_in is not None:
        parts.append(f"RAG is {_or_list(sorted(r.value for r in condition.rag_in))}")
    if condition.direction_in is not None:
        words = sorted(d.replace("_", " ") for d in condition.direction_in)
        parts.append(f"direction is {_or_list(words)}")
    if condition.change_over_percent is not None:
        parts.append(f"the change is over {condition.change_over_percent:g}%")
    return "when " + " and ".join(parts) if parts else "always"


def resolve_chain(
    rules: Sequence[StepRule],
    owner: Person,
    row: Mapping[str, str],
    directory: Directory,
) -> tuple[ResolvedStep, ...] | Unroutable:
    """Name the approvers of each step for the owner's indicator (``row`` is its register row).

    Steps keep their conditions; whether a conditional step runs is decided when
    the value is in. The owner never appears among any step's approvers: a group
    step leaves them out, and a step only the owner could approve is passed to
    the next step (its note travels with it) or to its fallback person.
    """
    if not rules:
        return Unroutable("the flow has no approval steps, so nobody would check the return")
    resolved: list[ResolvedStep] = []
    carried: list[str] = []
    for position, rule in enumerate(rules):
        candidates = _candidates(rule, owner, row, directory)
        if isinstance(candidates, Unroutable):
            return candidates
        others = _unique(p for p in candidates if not p.same_as(owner))
        if others:
            notes = [*carried]
            if len(others) < len(_unique(candidates)):
                notes.append(f"{owner.name} (the owner) left out of group {rule.ref!r}")
            resolved.append(ResolvedStep(rule, others, rule.kind == "group", _join(notes)))
            carried = []
            continue
        # Only the owner could approve this step.
        if rule.on_self_approval == "fallback":
            fallback = _fallback(rule, owner, directory)
            if isinstance(fallback, Unroutable):
                return fallback
            note = (
                f"{owner.name} is the owner and would approve their own return: "
                f"passed to fallback {fallback.name}"
            )
            resolved.append(ResolvedStep(rule, (fallback,), False, _join([*carried, note])))
            carried = []
        elif position == len(rules) - 1:
            return Unroutable(
                f"step {rule.name!r}: nobody but the owner {owner.name} can approve, and there "
                "is no later step to pass it to (give the step a fallback approver)"
            )
        else:
            carried.append(
                f"step {rule.name!r} passed on: {owner.name} is the owner "
                "and cannot approve their own return"
            )
    return tuple(resolved)


def may_approve(person_id: str, step: ResolvedStep, owner: Person) -> bool:
    """Whether the person who clicked may decide this step: an approver, and not the owner."""
    clicked = (person_id or "").strip().casefold()
    if not clicked or clicked in _keys(owner):
        return False
    return any(clicked in _keys(approver) for approver in step.approvers)


# --- helpers -------------------------------------------------------------------------


def _candidates(
    rule: StepRule, owner: Person, row: Mapping[str, str], directory: Directory
) -> tuple[Person, ...] | Unroutable:
    """Everyone the step names, before the owner is taken out."""
    if rule.kind == "column":
        column = rule.ref or ""
        ref = (row.get(column) or "").strip()
        if not ref:
            return Unroutable(
                f"step {rule.name!r}: the indicator's {column!r} column is empty, "
                "so there is nobody to approve"
            )
        person = directory.find(ref)
        if person is None:
            return Unroutable(
                f"step {rule.name!r}: {ref!r} in the indicator's {column!r} column "
                "is not in the directory"
            )
        return (person,)
    if rule.kind == "user":
        ref = rule.ref or ""
        person = directory.find(ref)
        if person is None:
            return Unroutable(f"step {rule.name!r}: approver {ref!r} is not in the directory")
        return (person,)
    if rule.kind == "group":
        group = rule.ref or ""
        members = directory.group_members(group)
        if members is None:
            return Unroutable(f"step {rule.name!r}: group {group!r} is not in the directory")
        if not members:
            return Unroutable(f"step {rule.name!r}: group {group!r} has no members")
        return tuple(members)
    manager = directory.line_manager(owner)
    if manager is None:
        return Unroutable(
            f"step {rule.name!r}: owner {owner.name} <{owner.email}> has no line manager "
            "in the directory"
        )
    return (manager,)


def _fallback(rule: StepRule, owner: Person, directory: Directory) -> Person | Unroutable:
    ref = rule.fallback or ""
    person = directory.find(ref)
    if person is None:
        return Unroutable(
            f"step {rule.name!r}: the owner {owner.name} would approve their own return and "
            f"the fallback {ref!r} is not in the directory"
        )
    if person.same_as(owner):
        return Unroutable(
            f"step {rule.name!r}: the fallback {ref!r} is the owner {owner.name}, "
            "who cannot approve their own return"
        )
    return person


def _keys(person: Person) -> frozenset[str]:
    return frozenset(k.strip().casefold() for k in (person.id, person.email) if k and k.strip())


def _unique(people: Iterable[Person]) -> tuple[Person, ...]:
    result: list[Person] = []
    for person in people:
        if not any(person.same_as(seen) for seen in result):
            result.append(person)
    return tuple(result)


def _join(notes: Sequence[str]) -> str | None:
    return "; ".join(notes) if notes else None


def _or_list(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]
