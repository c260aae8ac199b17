"""The approver's card and what replaces it once decided."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from card_support import approval, elements, inputs, outcome, texts, walk

from m365perf.cards import (
    CardTooLargeError,
    Outcome,
    PeriodValue,
    render_approval,
    render_outcome,
    validate_card,
)


def test_the_approver_sees_the_value_in_context() -> None:
    shown = texts(render_approval(approval()))
    assert "Step 2 of 3: Head of service sign-off" in shown
    assert "Percentage of calls to the contact centre answered within 60 seconds" in shown
    assert "2026/27 Q3 · returned by Sam Patel" in shown
    assert "87.5%  Amber" in shown
    assert "Target: 90% or higher" in shown
    assert "Tolerance: 2.5 percentage points (amber down to 87.5%)" in shown
    assert "Compared with previous period: Worsening (2026/27 Q2: 88%)" in shown
    assert "Compared with same period last year: Worsening (2025/26 Q3: 91%)" in shown
    assert "Variation: special cause — concern: 7 points below the mean" in shown
    assert "Target assurance: hit and miss" in shown
    assert "Two vacancies in the team during November." in shown
    assert "Submitted: 14:05 on 3 November 2026" in shown


def test_the_history_shows_the_last_six_periods() -> None:
    shown = texts(render_approval(approval()))
    history = [line for line in shown if line.startswith("2025/26 M")]
    assert history == [f"2025/26 M{m}: {80 + m}%" for m in range(3, 9)]


def test_flags_are_shown_only_when_raised() -> None:
    plain = " ".join(texts(render_approval(approval())))
    assert "Unusual value" not in plain and "Late return" not in plain
    flagged = texts(
        render_approval(approval(outlier_confirmed=True, probable_missing_data=True, late=True))
    )
    assert "Unusual value: the officer confirmed an unusual value is correct." in flagged
    assert "Probable missing data: the value looks incomplete; check before approving." in flagged
    assert "Late return: submitted after the due date." in flagged


def test_a_no_data_return_shows_the_reason_and_no_rag() -> None:
    shown = texts(render_approval(approval(value=None, no_data_reason="System outage", rag="none")))
    assert "No data this period — System outage" in shown
    assert not any("Amber" in line for line in shown)


def test_approve_and_reject_carry_the_return_version_and_step() -> None:
    card = render_approval(approval())
    approve, reject = card["actions"]
    data = {"return_id": "return-9", "version": 4, "step_index": 1, "card_id": "card-approval-9"}
    assert (approve["type"], approve["verb"], approve["data"]) == (
        "Action.Execute",
        "approve",
        data,
    )
    assert (reject["type"], reject["verb"], reject["data"]) == ("Action.Execute", "reject", data)
    for action in (approve, reject):
        fallback = action["fallback"]
        assert fallback["type"] == "Action.Submit"
        assert fallback["data"] == {**data, "verb": action["verb"]}
        validate_card({"type": "AdaptiveCard", "version": "1.5", "actions": [fallback]})


def test_reject_needs_a_reason_but_approve_does_not() -> None:
    card = render_approval(approval())
    reason = inputs(card)["reason"]
    assert reason["type"] == "Input.Text"
    assert reason["isRequired"] is True
    assert reason["errorMessage"]
    approve, reject = card["actions"]
    assert reject["associatedInputs"] == "auto"  # the reason goes with a rejection...
    assert approve["associatedInputs"] == "none"  # ...and cannot hold up an approval
    assert approve["fallback"]["associatedInputs"] == "none"


def test_an_error_for_the_approver_is_shown_at_the_top() -> None:
    card = render_approval(approval(error="You cannot approve your own return."))
    red = [b["text"] for b in elements(card, "TextBlock") if b.get("color") == "attention"]
    assert red == ["You cannot approve your own return."]


def test_step_numbers_must_fit_the_chain() -> None:
    with pytest.raises(ValueError, match="step_index"):
        approval(step_index=3, step_count=3)


def test_a_card_over_the_size_limit_is_refused() -> None:
    with pytest.raises(CardTooLargeError, match="over the limit of 2000"):
        render_approval(approval(), max_bytes=2000)


def test_history_values_may_be_missing() -> None:
    card = render_approval(approval(history=(PeriodValue("2026/27 Q1", None),)))
    assert "2026/27 Q1: not recorded" in texts(card)


# --- outcome ---------------------------------------------------------------------------


def test_an_approval_outcome_says_who_and_when() -> None:
    card = render_outcome(outcome(Outcome.APPROVED, next_step="Director sign-off by Alex Lee"))
    shown = texts(card)
    assert "Approved by Jane Smith at 14:05 on 3 November 2026" in shown
    assert "Passed on to: Director sign-off by Alex Lee" in shown


def test_a_rejection_outcome_gives_the_reason() -> None:
    shown = texts(render_outcome(outcome(Outcome.REJECTED)))
    assert "Rejected by Jane Smith at 14:05 on 3 November 2026" in shown
    assert "Reason: The figure is for Q2, not Q3." in shown


def test_a_stale_card_says_it_is_out_of_date_in_london_time() -> None:
    summer = datetime(2026, 7, 1, 13, 5, tzinfo=UTC)
    shown = texts(render_outcome(outcome(Outcome.SUPERSEDED, at=summer)))
    assert "This card is out of date: a newer version was submitted at 14:05 on 1 July 2026." in (
        shown
    )


@pytest.mark.parametrize("kind", list(Outcome))
def test_an_outcome_card_has_nothing_to_click_or_fill_in(kind: Outcome) -> None:
    card = render_outcome(outcome(kind, value=87.5, unit="percentage"))
    validate_card(card)
    assert "actions" not in card
    assert not [n for n in walk(card) if str(n.get("type", "")).startswith(("Action.", "Input."))]
    assert not elements(card, "ActionSet")
    assert "Value: 87.5%" in texts(card)


def test_an_outcome_needs_who_decided_and_a_rejection_its_reason() -> None:
    with pytest.raises(ValueError, match="who decided"):
        outcome(Outcome.APPROVED, by=None)
    with pytest.raises(ValueError, match="reason"):
        outcome(Outcome.REJECTED, reason="  ")
    with pytest.raises(ValueError, match="time zone"):
        outcome(Outcome.APPROVED, at=datetime(2026, 11, 3, 14, 5))


def test_an_approval_card_links_to_the_approvers_web_page_when_sign_in_is_set_up() -> None:
    link = "https://performance.contoso.gov.uk/approvals/7"

    card = render_approval(approval(web_link=link))
    without = render_approval(approval())

    validate_card(card)
    assert {"type": "Action.OpenUrl", "title": "Open in your browser", "url": link} in card[
        "actions"
    ]
    assert all(a["type"] != "Action.OpenUrl" for a in without["actions"])
