"""Plain-text summaries for the e-mail body: the card's content, and the link."""

from __future__ import annotations

import pytest
from card_support import (
    approval,
    calls_answered,
    council_tax_returned,
    outcome,
    owner_request,
    receipt,
    rejection,
)

from m365perf.cards import Outcome, summary_text
from m365perf.cards.summary import BROWSER_LINE

LINK = "https://perf.example.gov.uk/r/abc123"


def test_the_owner_summary_lists_every_indicator_and_ends_with_the_link() -> None:
    text = summary_text(owner_request(late=True), LINK)
    lines = text.splitlines()
    assert lines[:3] == [
        "Corporate performance: 2026/27 Q3",
        "Due Wednesday 13 January 2027",
        "This return is late: it was due on Wednesday 13 January 2027.",
    ]
    assert f"- {calls_answered().name}" in lines
    assert "  Target: 90% or higher" in lines
    assert (
        "  Recent: 2026/27 Q4: 80%; 2026/27 Q1: 85.5%; 2026/27 Q2: 88%; "
        "2025/26 Q3: 79.25% (same period last year)"
    ) in lines
    assert f"- {council_tax_returned().name}" in lines
    assert "  Returned: £1,234.50, Amber, late" in lines
    assert "  Awaiting approval by Jane Smith" in lines
    assert lines[-1] == BROWSER_LINE  # the e-mail draws the link as a button
    assert LINK not in "\n".join(lines)


def test_errors_are_in_the_owner_summary() -> None:
    view = owner_request(calls_answered(errors=("Enter a percentage between 0 and 100.",)))
    assert "  ! Enter a percentage between 0 and 100." in summary_text(view).splitlines()


def test_the_approval_summary_has_the_value_in_context() -> None:
    lines = summary_text(approval(outlier_confirmed=True), LINK).splitlines()
    assert lines[0] == "Step 2 of 3: Head of service sign-off"
    assert "Value: 87.5% (Amber)" in lines
    assert "Target: 90% or higher" in lines
    assert "Compared with previous period: worsening (2026/27 Q2: 88%)" in lines
    assert "Variation: special cause — concern: 7 points below the mean" in lines
    assert "Unusual value: the officer confirmed it is correct." in lines
    assert "Two vacancies in the team during November." in lines
    assert lines[-1] == BROWSER_LINE  # the e-mail draws the link as a button
    assert LINK not in "\n".join(lines)


@pytest.mark.parametrize(
    ("kind", "line"),
    [
        (Outcome.APPROVED, "Approved by Jane Smith at 14:05 on 3 November 2026."),
        (
            Outcome.REJECTED,
            "Rejected by Jane Smith at 14:05 on 3 November 2026 — reason: "
            "The figure is for Q2, not Q3.",
        ),
        (
            Outcome.SUPERSEDED,
            "This card is out of date: a newer version was submitted at 14:05 on 3 November 2026.",
        ),
    ],
)
def test_the_outcome_summary_says_what_happened(kind: Outcome, line: str) -> None:
    assert line in summary_text(outcome(kind)).splitlines()


def test_the_receipt_and_rejection_summaries() -> None:
    receipt_lines = summary_text(receipt()).splitlines()
    assert "Still to return by Wednesday 13 January 2027:" in receipt_lines
    assert "- Average working days lost to sickness per full-time employee" in receipt_lines
    rejection_lines = summary_text(rejection(), LINK).splitlines()
    assert "Reason: The figure is for Q2, not Q3." in rejection_lines
    assert "  Your previous value: 87.5%" in rejection_lines


def test_a_summary_without_a_link_has_no_link_line() -> None:
    assert "Open in your browser" not in summary_text(receipt())


def test_text_is_kept_verbatim() -> None:
    text = 'Q3 "spike" <b>not bold</b> {{ x }}'
    assert text in summary_text(approval(commentary=text))
