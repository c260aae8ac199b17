"""Reading a submitted owner card back: what Teams sends is what the officer typed."""

from __future__ import annotations

from typing import Any

import pytest
from card_support import calls_answered, inputs, owner_request, sickness_days

from m365perf.cards import (
    Draft,
    SubmissionError,
    parse_owner_submission,
    render_owner_requests,
)


def clicked(card: dict[str, Any], typed: dict[str, str]) -> dict[str, Any]:
    """What Teams puts in the invoke's action.data: the action's data plus the inputs."""
    data = dict(card["actions"][0]["data"])
    for input_id, element in inputs(card).items():
        data[input_id] = typed.get(input_id, element.get("value", ""))
    return data


def test_a_submission_reads_back_into_drafts_per_indicator() -> None:
    (card,) = render_owner_requests(owner_request(calls_answered(), sickness_days()))
    data = clicked(
        card,
        {
            "value__ind-calls": "87.5",
            "comment__ind-calls": 'Back to "full" staffing\n{{ ok }}',
            "nodata__ind-sickness": "true",
            "nodatareason__ind-sickness": "HR system migration",
        },
    )
    submission = parse_owner_submission(data)
    assert (submission.cycle_id, submission.owner_id, submission.card_id) == (
        "cycle-2026-27-q3",
        "owner-42",
        "card-1",
    )
    assert submission.versions == {"ind-calls": 3, "ind-sickness": 7}
    assert submission.drafts == {
        "ind-calls": Draft(value="87.5", comment='Back to "full" staffing\n{{ ok }}'),
        "ind-sickness": Draft(no_data=True, no_data_reason="HR system migration"),
    }
    assert (submission.part, submission.parts) == (None, None)


def test_a_resubmitted_draft_renders_and_reads_back_the_same() -> None:
    draft = Draft(value="12", comment="Checked twice", confirmed=True)
    view = owner_request(calls_answered(draft=draft, needs_confirmation=True))
    (card,) = render_owner_requests(view)
    assert parse_owner_submission(clicked(card, {})).drafts["ind-calls"] == draft


def test_inputs_left_out_by_the_client_read_as_empty() -> None:
    data = {"cycle_id": "c", "owner_id": "o", "card_id": "k", "versions": {"ind-calls": 3}}
    assert parse_owner_submission(data).drafts == {"ind-calls": Draft()}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"owner_id": "o", "card_id": "k", "versions": {"a": 1}}, "cycle_id"),
        ({"cycle_id": "c", "owner_id": "o", "card_id": "k"}, "versions"),
        ({"cycle_id": "c", "owner_id": "o", "card_id": "k", "versions": {"a": "1"}}, "whole"),
        ({"cycle_id": "c", "owner_id": "o", "card_id": "k", "versions": {"a": 0}}, "from 1"),
        ({"cycle_id": "c", "owner_id": "o", "card_id": "k", "versions": {"a": 2**31}}, "from 1"),
        ({"cycle_id": "c", "owner_id": "o", "card_id": "k", "versions": {"a": True}}, "whole"),
        (
            {"cycle_id": "c", "owner_id": "o", "card_id": "k", "versions": {"a": 1}, "part": 0},
            "'part' must be a whole number from 1",
        ),
        (
            {
                "cycle_id": "c",
                "owner_id": "o",
                "card_id": "k",
                "versions": {"a": 1},
                "parts": 2**63,
            },
            "'parts' must be a whole number from 1",
        ),
        (
            {
                "cycle_id": "c",
                "owner_id": "o",
                "card_id": "k",
                "versions": {"a": 1},
                "value__b": "1",
            },
            "does not show",
        ),
        (
            {
                "cycle_id": "c",
                "owner_id": "o",
                "card_id": "k",
                "versions": {"a": 1},
                "nodata__a": "yes",
            },
            "toggle",
        ),
    ],
)
def test_data_no_card_of_ours_sends_is_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SubmissionError, match=message):
        parse_owner_submission(data)
