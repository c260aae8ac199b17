"""Approver chains and segregation of duties: nobody approves their own return."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from m365perf.domain.approvers import (
    Condition,
    Person,
    ResolvedStep,
    StepRule,
    Unroutable,
    condition_applies,
    describe_condition,
    may_approve,
    resolve_chain,
)
from m365perf.domain.kinds import Rag

ALEX = Person("oid-alex", "Alex Owner", "alex@council.gov.uk")
SAM = Person("oid-sam", "Sam Supervisor", "sam@council.gov.uk")
HANNAH = Person("oid-hannah", "Hannah Head", "hannah@council.gov.uk")
PAT = Person("oid-pat", "Pat Performance", "pat@council.gov.uk")
DEPUTY = Person("oid-deputy", "Dee Deputy", "dee@council.gov.uk")
EVERYONE = (ALEX, SAM, HANNAH, PAT, DEPUTY)


class StaticDirectory:
    """A small directory: people, line managers by e-mail, groups by name."""

    def __init__(
        self,
        managers: Mapping[str, Person] | None = None,
        groups: Mapping[str, Sequence[Person]] | None = None,
    ) -> None:
        self.managers = dict(managers or {})
        self.groups = dict(groups or {})

    def find(self, ref: str) -> Person | None:
        key = ref.strip().lower()
        return next((p for p in EVERYONE if key in (p.id, p.email)), None)

    def line_manager(self, person: Person) -> Person | None:
        return self.managers.get(person.email)

    def group_members(self, group: str) -> Sequence[Person] | None:
        return self.groups.get(group)


DIRECTORY = StaticDirectory(
    managers={ALEX.email: SAM, SAM.email: HANNAH, HANNAH.email: HANNAH},
    groups={"Performance Team": [PAT, ALEX], "Solo": [ALEX], "Empty": []},
)
ROW = {
    "Indicator": "CS-01",
    "Supervisor": "sam@council.gov.uk",
    "Head of Service": "Hannah@council.gov.uk",
}

SUPERVISOR = StepRule("Supervisor check", "column", "Supervisor")
HEAD = StepRule("Head of service", "column", "Head of Service")
PERFORMANCE = StepRule("Performance team", "group", "Performance Team")
MANAGER = StepRule("Line manager", "line_manager", None)


def chain(result: tuple[ResolvedStep, ...] | Unroutable) -> tuple[ResolvedStep, ...]:
    assert not isinstance(result, Unroutable), result
    return result


def never_the_owner(steps: tuple[ResolvedStep, ...], owner: Person) -> None:
    for step in steps:
        assert not any(p.same_as(owner) for p in step.approvers), step


def test_ordinary_chain() -> None:
    steps = chain(resolve_chain([SUPERVISOR, HEAD, PERFORMANCE], ALEX, ROW, DIRECTORY))
    assert [s.approvers for s in steps] == [(SAM,), (HANNAH,), (PAT,)]
    assert [s.any_of for s in steps] == [False, False, True]
    assert steps[2].note is not None and "left out of group" in steps[2].note
    never_the_owner(steps, ALEX)


def test_owner_is_the_column_approver_passes_to_the_next_step() -> None:
    # Sam owns this indicator and is also named its supervisor.
    steps = chain(resolve_chain([SUPERVISOR, HEAD], SAM, ROW, DIRECTORY))
    assert len(steps) == 1
    assert steps[0].rule is HEAD and steps[0].approvers == (HANNAH,)
    assert steps[0].note is not None and "Supervisor check" in steps[0].note
    never_the_owner(steps, SAM)


def test_owner_is_the_last_approver_with_next_is_unroutable() -> None:
    result = resolve_chain([SUPERVISOR, HEAD], HANNAH, ROW, DIRECTORY)
    assert isinstance(result, Unroutable)
    assert "nobody but the owner" in result.reason


def test_owner_is_the_column_approver_passes_to_the_fallback() -> None:
    head = StepRule(
        "Head of service", "column", "Head of Service", "fallback", "dee@council.gov.uk"
    )
    steps = chain(resolve_chain([SUPERVISOR, head], HANNAH, ROW, DIRECTORY))
    assert [s.approvers for s in steps] == [(SAM,), (DEPUTY,)]
    assert steps[1].note is not None and "fallback Dee Deputy" in steps[1].note
    never_the_owner(steps, HANNAH)


def test_fallback_that_is_unknown_or_the_owner_is_unroutable() -> None:
    unknown = StepRule("Head", "column", "Head of Service", "fallback", "nobody@council.gov.uk")
    result = resolve_chain([unknown], HANNAH, ROW, DIRECTORY)
    assert isinstance(result, Unroutable) and "nobody@council.gov.uk" in result.reason
    to_self = StepRule("Head", "column", "Head of Service", "fallback", "oid-hannah")
    result = resolve_chain([to_self], HANNAH, ROW, DIRECTORY)
    assert isinstance(result, Unroutable) and "cannot approve their own return" in result.reason


def test_owner_in_the_group_is_left_out() -> None:
    steps = chain(resolve_chain([PERFORMANCE], ALEX, ROW, DIRECTORY))
    assert steps[0].approvers == (PAT,)
    # Anyone else in the group sees the whole group.
    steps = chain(resolve_chain([PERFORMANCE], SAM, ROW, DIRECTORY))
    assert steps[0].approvers == (PAT, ALEX) and steps[0].note is None


def test_group_of_only_the_owner_follows_the_self_approval_rule() -> None:
    solo = StepRule("Solo", "group", "Solo")
    steps = chain(resolve_chain([solo, HEAD], ALEX, ROW, DIRECTORY))
    assert [s.rule for s in steps] == [HEAD]
    assert isinstance(resolve_chain([solo], ALEX, ROW, DIRECTORY), Unroutable)


def test_unknown_or_empty_group_is_unroutable() -> None:
    for name in ("No Such Group", "Empty"):
        result = resolve_chain([StepRule("G", "group", name)], ALEX, ROW, DIRECTORY)
        assert isinstance(result, Unroutable) and name in result.reason


def test_owner_is_their_own_line_manager() -> None:
    # The directory lists Hannah as her own manager (it happens at the top of a tree).
    result = resolve_chain([MANAGER], HANNAH, ROW, DIRECTORY)
    assert isinstance(result, Unroutable)
    steps = chain(resolve_chain([MANAGER, PERFORMANCE], HANNAH, ROW, DIRECTORY))
    assert [s.rule for s in steps] == [PERFORMANCE]
    never_the_owner(steps, HANNAH)
    assert chain(resolve_chain([MANAGER], ALEX, ROW, DIRECTORY))[0].approvers == (SAM,)


def test_owner_without_a_line_manager_is_unroutable() -> None:
    result = resolve_chain([MANAGER], PAT, ROW, DIRECTORY)
    assert isinstance(result, Unroutable)
    assert "Pat Performance" in result.reason and "no line manager" in result.reason


def test_owner_known_only_by_email_is_still_recognised() -> None:
    # The register gave an e-mail in different case; the directory knows the object id.
    sam_from_register = Person("SAM@council.gov.uk", "SAM@council.gov.uk", "SAM@council.gov.uk")
    steps = chain(resolve_chain([SUPERVISOR, HEAD], sam_from_register, ROW, DIRECTORY))
    assert [s.approvers for s in steps] == [(HANNAH,)]


def test_column_problems_name_the_column_and_value() -> None:
    result = resolve_chain([SUPERVISOR], ALEX, {"Supervisor": ""}, DIRECTORY)
    assert isinstance(result, Unroutable) and "'Supervisor'" in result.reason
    result = resolve_chain([SUPERVISOR], ALEX, {"Supervisor": "ghost@council.gov.uk"}, DIRECTORY)
    assert isinstance(result, Unroutable)
    assert "'Supervisor'" in result.reason and "ghost@council.gov.uk" in result.reason


def test_user_step_and_unknown_user() -> None:
    steps = chain(
        resolve_chain([StepRule("Perf", "user", "pat@council.gov.uk")], ALEX, ROW, DIRECTORY)
    )
    assert steps[0].approvers == (PAT,)
    result = resolve_chain([StepRule("Perf", "user", "who@council.gov.uk")], ALEX, ROW, DIRECTORY)
    assert isinstance(result, Unroutable) and "who@council.gov.uk" in result.reason


def test_a_flow_without_steps_is_unroutable() -> None:
    assert isinstance(resolve_chain([], ALEX, ROW, DIRECTORY), Unroutable)


def test_step_rules_are_checked_when_made() -> None:
    with pytest.raises(ValueError):
        StepRule("x", "column", None)
    with pytest.raises(ValueError):
        StepRule("x", "robot", "a")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        StepRule("x", "user", "a@b.c", "fallback", None)
    with pytest.raises(ValueError):
        StepRule("x", "line_manager", "someone")


def test_may_approve() -> None:
    steps = chain(resolve_chain([PERFORMANCE], ALEX, ROW, DIRECTORY))
    group_step = steps[0]
    assert may_approve("oid-pat", group_step, ALEX)
    assert may_approve("PAT@council.gov.uk", group_step, ALEX)
    assert not may_approve("oid-alex", group_step, ALEX)  # the owner, though in the group
    assert not may_approve("oid-sam", group_step, ALEX)  # not an approver of this step
    assert not may_approve("", group_step, ALEX)
    # Even a step built by hand with the owner in it refuses the owner.
    forged = ResolvedStep(PERFORMANCE, (PAT, ALEX), True, None)
    assert not may_approve("oid-alex", forged, ALEX)


def test_conditions() -> None:
    reds = Condition(rag_in=frozenset({Rag.RED, Rag.AMBER}))
    assert condition_applies(reds, rag=Rag.RED, direction=None, change_percent=None)
    assert not condition_applies(reds, rag=Rag.GREEN, direction=None, change_percent=None)
    both = Condition(rag_in=frozenset({Rag.RED}), direction_in=frozenset({"worsening"}))
    assert condition_applies(both, rag=Rag.RED, direction="worsening", change_percent=None)
    assert not condition_applies(both, rag=Rag.RED, direction="improving", change_percent=None)
    assert not condition_applies(both, rag=Rag.RED, direction=None, change_percent=None)
    big = Condition(change_over_percent=10)
    assert condition_applies(big, rag=Rag.NONE, direction=None, change_percent=-12.5)
    assert not condition_applies(big, rag=Rag.NONE, direction=None, change_percent=10)
    assert not condition_applies(big, rag=Rag.NONE, direction=None, change_percent=None)
    assert condition_applies(None, rag=Rag.GREEN, direction=None, change_percent=None)
    assert describe_condition(both) == "when RAG is red and direction is worsening"
    assert describe_condition(reds) == "when RAG is amber or red"
    assert describe_condition(None) == "always"


def test_conditional_steps_keep_their_condition() -> None:
    only_red = StepRule(
        "Director",
        "user",
        "hannah@council.gov.uk",
        condition=Condition(rag_in=frozenset({Rag.RED})),
    )
    steps = chain(resolve_chain([SUPERVISOR, only_red], ALEX, ROW, DIRECTORY))
    assert steps[1].rule.condition == Condition(rag_in=frozenset({Rag.RED}))
