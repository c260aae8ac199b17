"""The lifecycle table: every state reachable, terminal states terminal, the doc current."""

from __future__ import annotations

from pathlib import Path

import pytest

from m365perf.domain import lifecycle
from m365perf.domain.lifecycle import (
    INITIAL,
    STATES,
    TERMINAL,
    TRANSITIONS,
    Event,
    Machine,
    NoSuchTransition,
    ReturnStatus,
    StepStatus,
    allowed,
    transition,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md"


def _reachable(machine: Machine) -> set[object]:
    seen = {INITIAL[machine]}
    frontier = [INITIAL[machine]]
    while frontier:
        state = frontier.pop()
        for t in TRANSITIONS:
            if t.machine is machine and state in t.sources and t.target not in seen:
                seen.add(t.target)
                frontier.append(t.target)
    return seen


@pytest.mark.parametrize("machine", list(Machine))
def test_every_state_is_reachable_from_the_initial_one(machine: Machine) -> None:
    assert _reachable(machine) == set(STATES[machine])


@pytest.mark.parametrize("machine", list(Machine))
def test_terminal_states_have_no_way_out(machine: Machine) -> None:
    for t in TRANSITIONS:
        if t.machine is machine:
            assert not (t.sources & TERMINAL[machine]), t


@pytest.mark.parametrize("machine", list(Machine))
def test_non_terminal_states_have_a_way_out(machine: Machine) -> None:
    leaving = {s for t in TRANSITIONS if t.machine is machine for s in t.sources}
    assert set(STATES[machine]) - TERMINAL[machine] == leaving


def test_each_event_names_one_transition_per_machine() -> None:
    pairs = [(t.machine, t.event) for t in TRANSITIONS]
    assert len(pairs) == len(set(pairs))
    assert transition(Machine.STEP, Event.APPROVE).target is StepStatus.APPROVED
    with pytest.raises(NoSuchTransition):
        transition(Machine.CYCLE, Event.APPROVE)


def test_a_pending_step_cannot_be_approved_only_the_current_one() -> None:
    assert not allowed(Machine.STEP, StepStatus.PENDING, StepStatus.APPROVED)
    assert allowed(Machine.STEP, StepStatus.ASKED, StepStatus.APPROVED)
    assert allowed(Machine.STEP, StepStatus.ESCALATED, StepStatus.REJECTED)
    assert not allowed(Machine.STEP, StepStatus.APPROVED, StepStatus.REJECTED)


def test_an_awaiting_return_cannot_jump_to_approved() -> None:
    assert not allowed(Machine.RETURN, ReturnStatus.AWAITING, ReturnStatus.APPROVED)
    assert allowed(Machine.RETURN, ReturnStatus.APPROVED, ReturnStatus.REJECTED)


def test_the_state_diagram_in_docs_is_generated_from_the_table() -> None:
    assert DOC.read_text(encoding="utf-8") == lifecycle.diagram(), (
        "docs/lifecycle.md is stale: run "
        "`.venv/bin/python -m m365perf.domain.lifecycle > docs/lifecycle.md`"
    )
