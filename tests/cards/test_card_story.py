"""The whole story on every card (issue 9, point 4), one test per thing a reader needs."""

from __future__ import annotations

from typing import Any

from card_support import (
    SENT_BACK_AT,
    approval,
    calls_answered,
    elements,
    indicator_container,
    inputs,
    owner_request,
    rejection,
    sent_back,
    texts,
)

from m365perf.cards import (
    CommentaryRule,
    InputError,
    InputField,
    PeriodValue,
    render_approval,
    render_owner_requests,
    render_rejection,
    summary_text,
    validate_card,
)
from m365perf.domain.kinds import Rag


def _text(card: dict[str, Any]) -> str:
    return " ".join(" ".join(texts(card)).split())


def _only(view: Any) -> dict[str, Any]:
    (card,) = render_owner_requests(view)
    validate_card(card)
    return card


def test_a_resubmission_shows_the_approver_the_earlier_figure_who_rejected_it_and_why() -> None:
    card = render_approval(approval(resubmission=sent_back(previous_value=91.0)))
    validate_card(card)
    text = _text(card)
    assert "Resubmitted: sent back by Bob Ray on Thursday 5 November 2026" in text
    assert "Reason: The figure is for Q2, not Q3." in text
    assert "Previously returned: 91%" in text
    assert "Resubmitted" not in _text(render_approval(approval()))  # a first submission


def test_a_resubmitted_correction_says_it_was_a_correction_and_what_the_figure_was() -> None:
    earlier = sent_back(correction=True, by_name="Nadia Clarke", reason="Tonnage revised")
    text = _text(render_approval(approval(resubmission=earlier)))
    assert "Resubmitted after a correction was asked for: reopened for correction by Nadia" in text
    assert "Figure before the correction: 87.5%" in text


def test_a_correction_card_gives_the_reason_and_the_figure_being_corrected() -> None:
    card = render_rejection(
        rejection(correction=True, rejected_by="Nadia Clarke", reason="Contractor revised it")
    )
    validate_card(card)
    text = _text(card)
    assert "Reopened for correction: by Nadia Clarke" in text
    assert "Reason: Contractor revised it" in text
    assert "Figure being corrected: 87.5%" in text
    assert "rejected by" not in text
    summary = summary_text(rejection(correction=True, rejected_by="Nadia Clarke"))
    assert "Figure being corrected: 87.5%" in summary


def test_a_rejection_card_shows_the_figure_that_was_rejected() -> None:
    text = _text(render_rejection(rejection()))
    assert "Returned to you: rejected by Jane Smith" in text
    assert "Previously returned: 87.5%" in text


def test_a_year_to_date_indicator_shows_the_profiled_target_and_the_annual_one() -> None:
    ytd = calls_answered(target=700.0, annual_target=1200.0, unit="count", tolerance=35.0)
    card = _only(owner_request(ytd))
    facts = texts(indicator_container(card, ytd.name))
    assert "Target to 2026/27 Q3 (year to date): 700 or higher" in facts
    assert "Annual target: 1,200" in facts
    assert "Tolerance: 35 (amber down to 665)" in facts
    approver = _text(render_approval(approval(target=700.0, annual_target=1200.0, unit="count")))
    assert "Target to 2026/27 Q3 (year to date): 700 or higher" in approver
    assert "Annual target: 1,200" in approver
    assert "Annual target" not in _text(render_approval(approval()))  # a periodic one


def test_the_approver_sees_the_long_trend_and_the_comparator() -> None:
    card = render_approval(
        approval(long_trend="improving", comparator="West Midlands average 84.1% (2025/26)")
    )
    validate_card(card)
    text = _text(card)
    assert "Long trend (against the mean of recent periods): Improving" in text
    assert "Comparator: West Midlands average 84.1% (2025/26)" in text
    assert "Long trend" not in _text(render_approval(approval()))  # not known: not shown


def test_the_commentary_hint_says_what_this_flow_requires() -> None:
    def hint(rule: CommentaryRule) -> str:
        card = _only(owner_request(calls_answered(commentary_rule=rule)))
        return str(inputs(card)["comment__ind-calls"]["placeholder"])

    assert hint(CommentaryRule()) == "What explains this figure? Needed when it is red or amber."
    assert hint(CommentaryRule(rags=(Rag.RED,), special_cause_concern=True)) == (
        "What explains this figure? Needed when it is red, "
        "or when it shows a special cause of concern."
    )
    assert hint(CommentaryRule(rags=())) == "What explains this figure? Optional for this return."


def test_a_reminder_says_it_is_a_reminder_and_when_the_return_is_due() -> None:
    card = _only(owner_request(calls_answered(), reminder=2))
    assert "Reminder 2 — due Wednesday 13 January 2027" in texts(card)
    assert card["fallbackText"].startswith("Reminder 2: ")
    first = _only(owner_request(calls_answered()))
    assert not any("Reminder" in line for line in texts(first))
    assert "Reminder 2 — due" in summary_text(owner_request(calls_answered(), reminder=2))


def test_an_empty_submit_says_what_is_missing() -> None:
    notice = "Nothing was submitted: give a value for each indicator below."
    card = _only(owner_request(calls_answered(), notice=notice))
    (block,) = [b for b in elements(card, "TextBlock") if b["text"] == notice]
    assert block["color"] == "attention"


def test_each_error_sits_right_under_the_input_it_is_about() -> None:
    item = calls_answered(
        errors=(
            InputError(InputField.COMMENT, "Add a comment: commentary is required."),
            InputError(InputField.NO_DATA_REASON, "Say why there is no data this period."),
            InputError(InputField.CONFIRM, "Unusual value. Check it, or tick to confirm."),
            "This card is out of date: check the figure and submit again.",
        ),
        needs_confirmation=True,
    )
    card = _only(owner_request(item))
    items = indicator_container(card, item.name)["items"]

    def under(input_id: str) -> str:
        position = next(i for i, node in enumerate(items) if node.get("id") == input_id)
        following = items[position + 1]
        assert following["type"] == "TextBlock" and following["color"] == "attention"
        return str(following["text"])

    assert under("value__ind-calls").startswith("This card is out of date")
    assert under("comment__ind-calls").startswith("Add a comment")
    assert under("nodatareason__ind-calls").startswith("Say why")
    assert under("confirm__ind-calls").startswith("Unusual value")


def test_an_annual_return_compares_with_the_previous_year_once() -> None:
    year = PeriodValue("2025/26", 91.0)
    card = render_approval(
        approval(
            period_label="2026/27",
            previous=year,
            last_year=year,
            history=(PeriodValue("2024/25", 89.0), year),
        )
    )
    facts = [line for line in texts(card) if line.startswith("Compared with")]
    assert facts == ["Compared with previous year: Worsening (2025/26: 91%)"]
    request = _only(
        owner_request(
            calls_answered(recent=(PeriodValue("2024/25", 89.0), year), last_year=year),
            period_label="2026/27",
        )
    )
    history = [line for line in texts(request) if line.startswith("2025/26")]
    assert history == ["2025/26: 91%"]  # not again as "same period last year"
    summary = summary_text(approval(previous=year, last_year=year))
    assert "same period last year" not in summary
    assert "Compared with previous year: worsening (2025/26: 91%)" in summary


def test_the_sent_back_banner_on_a_reminder_keeps_the_earlier_figure() -> None:
    item = calls_answered(sent_back=sent_back(at=SENT_BACK_AT))
    text = _text(_only(owner_request(item, reminder=1)))
    assert "Sent back by Bob Ray on Thursday 5 November 2026" in text
    assert "Previously returned: 87.5%" in text
