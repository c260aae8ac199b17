"""A return sent back to its owner (rejected, or reopened for correction) is asked for again
with who sent it back, when and why: on the card, in the e-mail text and in its subject."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from card_support import (
    calls_answered,
    council_tax_returned,
    elements,
    indicator_container,
    inputs,
    owner_request,
    sent_back,
    sickness_days,
    texts,
)

from m365perf.cards import (
    DEFAULT_MAX_BYTES,
    IndicatorRequest,
    card_size,
    render_owner_requests,
    request_subject,
    summary_text,
    validate_card,
)

REASON = "The figure is for Q2, not Q3."
SENT_BACK_LINE = f"Sent back by Bob Ray on Thursday 5 November 2026: {REASON}"


def only_card(*indicators: IndicatorRequest) -> dict[str, Any]:
    cards = render_owner_requests(owner_request(*indicators))
    assert len(cards) == 1
    validate_card(cards[0])
    return cards[0]


def test_the_card_says_under_the_indicator_who_sent_it_back_when_and_why() -> None:
    card = only_card(calls_answered(sent_back=sent_back()), sickness_days())
    calls = indicator_container(card, calls_answered().name)
    banner = calls["items"][1]  # straight under the indicator's name
    assert banner["type"] == "Container" and banner["style"] == "attention"
    assert texts(banner) == [SENT_BACK_LINE, "Previously returned: 87.5%"]
    assert not [t for t in texts(indicator_container(card, sickness_days().name)) if "back" in t]
    # The rejected figure is shown, not pre-filled: a submit cannot resend it by accident.
    assert "value" not in inputs(card)["value__ind-calls"]


def test_a_figure_reopened_for_correction_says_so() -> None:
    reopened = sent_back(
        by_name="Performance team",
        correction=True,
        reason="Audit found the count double-counted transfers.",
        previous_value=None,
        previous_no_data_reason="System outage",
    )
    card = only_card(sickness_days(sent_back=reopened))
    assert texts(indicator_container(card, sickness_days().name))[1:3] == [
        "Reopened for correction by Performance team on Thursday 5 November 2026: "
        "Audit found the count double-counted transfers.",
        "Previously returned: no data this period (System outage)",
    ]


def test_without_the_previous_figure_only_the_reason_is_shown() -> None:
    card = only_card(calls_answered(sent_back=sent_back(previous_value=None)))
    shown = texts(indicator_container(card, calls_answered().name))
    assert SENT_BACK_LINE in shown
    assert not [line for line in shown if line.startswith("Previously returned")]


def test_the_day_is_the_day_in_london() -> None:
    late_evening = datetime(2026, 10, 1, 23, 30, tzinfo=UTC)  # 00:30 on 2 October in BST
    card = only_card(calls_answered(sent_back=sent_back(at=late_evening)))
    assert f"Sent back by Bob Ray on Friday 2 October 2026: {REASON}" in texts(card)


def test_the_reason_is_shown_as_literal_text_on_one_line() -> None:
    reason = "[fix it](https://evil.example/) **now**\n<b>bold</b> {{DATE(2017-02-14T06:08:39Z)}}"
    card = only_card(calls_answered(sent_back=sent_back(reason=reason, by_name="<i>Bob</i>")))
    one_line = " ".join(reason.split())
    assert f"Sent back by <i>Bob</i> on Thursday 5 November 2026: {one_line}" in texts(card)
    # In a TextRun, which hosts never read as markdown or template functions.
    assert not [b for b in elements(card, "TextBlock") if "evil" in b["text"]]
    runs = [run["text"] for run in elements(card, "TextRun")]
    assert one_line in runs


def test_a_long_reason_is_cut_at_a_word_and_the_card_stays_under_the_limit() -> None:
    reason = "Please check the denominator against the returns for October. " * 2000
    card = only_card(calls_answered(sent_back=sent_back(reason=reason)))
    assert card_size(card) <= DEFAULT_MAX_BYTES
    (shown,) = [r["text"] for r in elements(card, "TextRun") if r["text"].startswith("Please")]
    assert 900 < len(shown) <= 1000
    assert shown.endswith("…")
    assert reason.startswith(shown[:-1]) and reason[len(shown) - 1] == " "  # a whole word


def test_many_long_reasons_split_over_cards_each_under_the_limit() -> None:
    long_reason = sent_back(reason="📈 Wrong period, see the note. " * 500)  # 12 bytes an emoji
    view = owner_request(
        *[
            calls_answered(indicator_id=f"ind-{n}", name=f"Indicator {n}", sent_back=long_reason)
            for n in range(1, 31)
        ],
        council_tax_returned(),
    )
    cards = render_owner_requests(view)
    assert len(cards) > 1
    assert all(card_size(card) <= DEFAULT_MAX_BYTES for card in cards)
    shown = [line for card in cards for line in texts(card) if line.startswith("Sent back by")]
    assert len(shown) == 30  # each indicator's reason, once


def test_the_e_mail_text_carries_who_when_why_and_the_previous_figure() -> None:
    view = owner_request(calls_answered(sent_back=sent_back()), sickness_days())
    lines = summary_text(view).splitlines()
    start = lines.index(f"- {calls_answered().name}")
    assert lines[start + 1 : start + 3] == [f"  {SENT_BACK_LINE}", "  Previously returned: 87.5%"]
    sickness = lines.index(f"- {sickness_days().name}")
    assert not lines[sickness + 1].startswith("  Sent back")


def test_the_e_mail_text_keeps_markup_literal_and_a_long_reason_short() -> None:
    reason = "<script>alert(1)</script> [link](https://evil.example/)\nsecond line"
    lines = summary_text(owner_request(calls_answered(sent_back=sent_back(reason=reason))))
    expected = f"  Sent back by Bob Ray on Thursday 5 November 2026: {' '.join(reason.split())}"
    assert expected in lines.splitlines()  # plain text: the mailer escapes it for HTML
    long = summary_text(owner_request(calls_answered(sent_back=sent_back(reason="word " * 5000))))
    (line,) = [line for line in long.splitlines() if "Sent back by" in line]
    assert line.endswith("word…") and len(line) < 1100


def test_the_subject_is_unchanged_when_nothing_was_sent_back() -> None:
    view = owner_request()
    assert request_subject(view, reminder=False) == (
        "Corporate performance 2026/27 Q3: returns due Wednesday 13 January 2027"
    )
    assert request_subject(view, reminder=True) == (
        "Reminder: Corporate performance 2026/27 Q3: returns due Wednesday 13 January 2027"
    )


@pytest.mark.parametrize(
    ("corrections", "words"),
    [
        ((False,), "1 return sent back to you"),
        ((False, True), "2 returns sent back to you"),
        ((True,), "1 return reopened for correction"),
        ((True, True), "2 returns reopened for correction"),
    ],
)
def test_the_subject_says_when_returns_were_sent_back(
    corrections: tuple[bool, ...], words: str
) -> None:
    items = [calls_answered(sent_back=sent_back(correction=corrections[0]))]
    if len(corrections) > 1:
        items.append(sickness_days(sent_back=sent_back(correction=corrections[1])))
    view = owner_request(*items, council_tax_returned())
    assert request_subject(view, reminder=True) == (
        f"Reminder: {words} — Corporate performance 2026/27 Q3: "
        "returns due Wednesday 13 January 2027"
    )


def test_the_subject_is_one_line_whatever_the_names_hold() -> None:
    view = owner_request(flow_name="Corporate\r\nBcc: someone@evil.example")
    subject = request_subject(view, reminder=False)
    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("Corporate Bcc: someone@evil.example 2026/27 Q3")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"at": datetime(2026, 11, 5, 9, 30)}, "time zone"),
        ({"reason": "  "}, "reason must be non-empty"),
        ({"by_name": ""}, "by_name must be non-empty"),
        ({"correction": "yes"}, "correction must be True or False"),
        ({"previous_value": float("nan")}, "finite number"),
    ],
)
def test_a_bad_sent_back_is_refused_with_a_clear_message(
    changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        sent_back(**changes)


def test_sent_back_must_be_a_sent_back_record() -> None:
    with pytest.raises(ValueError, match="sent_back must be a SentBack"):
        calls_answered(sent_back="rejected by Bob")
