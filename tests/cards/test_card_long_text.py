"""Typed text as long as its input allows still makes a card that can be sent.

JSON writes every character outside ASCII as six bytes, so 4,000 characters of
commentary in Chinese, or of pasted control characters, are about 24 kB on their own:
with a reason beside them a card would pass Teams' limit. The card is then sent with as
much of the text as fits and says how much is shown, rather than not sent at all.
"""

from __future__ import annotations

from dataclasses import replace

from card_support import approval, calls_answered, inputs, owner_request, rejection, texts
from hypothesis import given, settings
from hypothesis import strategies as st

from m365perf.cards import (
    COMMENT_MAX_LENGTH,
    DEFAULT_MAX_BYTES,
    REASON_MAX_LENGTH,
    VALUE_MAX_LENGTH,
    Draft,
    card_size,
    render_approval,
    render_owner_requests,
    render_rejection,
)

WIDE = "漢"  # six bytes in the card's JSON
COMMENT = WIDE * COMMENT_MAX_LENGTH
REASON = WIDE * REASON_MAX_LENGTH


def _joined(card: dict[str, object]) -> str:
    return " ".join(" ".join(texts(card)).split())


def test_an_approval_card_with_a_long_wide_commentary_shows_most_of_it_and_says_so() -> None:
    card = render_approval(approval(value=None, no_data_reason=REASON, commentary=COMMENT))

    assert card_size(card) <= DEFAULT_MAX_BYTES
    text = _joined(card)
    shown = max(len(line) for line in texts(card) if line.startswith(WIDE * 100))
    assert shown > COMMENT_MAX_LENGTH // 2
    assert "the commentary is shortened to fit the card" in text
    assert f"of {COMMENT_MAX_LENGTH:,} characters shown" in text


def test_an_approval_card_that_fits_shows_the_commentary_whole() -> None:
    card = render_approval(approval(commentary=WIDE * 1000))
    assert WIDE * 1000 in texts(card)
    assert "shortened" not in _joined(card)


def test_a_rejection_with_a_long_wide_reason_and_commentary_can_be_sent() -> None:
    card = render_rejection(rejection(reason=REASON, previous_commentary=COMMENT))

    assert card_size(card) <= DEFAULT_MAX_BYTES
    assert f"Reason: {REASON}" in texts(card)  # the reason is shown whole
    kept = inputs(card)["comment__ind-calls"]["value"]
    assert COMMENT.startswith(kept) and len(kept) > COMMENT_MAX_LENGTH // 2
    assert f"its first {len(kept):,} of {COMMENT_MAX_LENGTH:,} characters" in _joined(card)


def test_a_correction_reason_longer_than_the_card_shows_is_cut_at_a_word() -> None:
    """A correction asked for from the command line has no input limiting its reason."""
    reason = "Please recount the tonnage. " * 1000
    card = render_rejection(rejection(reason=reason))

    assert card_size(card) <= DEFAULT_MAX_BYTES
    (line,) = [t for t in texts(card) if t.startswith("Reason: ")]
    assert line.endswith("…") and len(line) < REASON_MAX_LENGTH + 20


def test_an_owner_card_with_long_wide_typing_keeps_what_fits_and_says_so() -> None:
    typed = Draft(value=WIDE * VALUE_MAX_LENGTH, comment=COMMENT, no_data_reason=REASON)
    item = calls_answered(draft=typed, errors=("“漢漢” is not a number.",))
    cards = render_owner_requests(owner_request(item, calls_answered(indicator_id="ind-two")))

    assert all(card_size(card) <= DEFAULT_MAX_BYTES for card in cards)
    kept = inputs(cards[0])["comment__ind-calls"]["value"]
    assert COMMENT.startswith(kept) and len(kept) > COMMENT_MAX_LENGTH // 3
    assert inputs(cards[0])["nodatareason__ind-calls"]["value"] == REASON
    assert "Check it before submitting" in _joined(cards[0])


_ANY_CHARACTER = st.characters(codec="utf-8")


def _filled(limit: int) -> st.SearchStrategy[str]:
    """Text up to ``limit`` characters, of one or two characters repeated (any script)."""
    return st.builds(
        lambda chars, count: (chars * count)[:limit],
        st.text(_ANY_CHARACTER, min_size=1, max_size=2),
        st.integers(0, limit),
    )


@settings(max_examples=25, deadline=None)
@given(value=_filled(VALUE_MAX_LENGTH), comment=_filled(COMMENT_MAX_LENGTH))
def test_any_text_the_inputs_take_makes_cards_that_fit(value: str, comment: str) -> None:
    reason = (comment.strip() or "x")[:REASON_MAX_LENGTH]  # as the engine keeps a reason
    no_data = approval(value=None, no_data_reason=reason, commentary=comment)
    assert card_size(render_approval(no_data)) <= DEFAULT_MAX_BYTES
    sent_back = rejection(reason=reason, previous_commentary=comment)
    assert card_size(render_rejection(sent_back)) <= DEFAULT_MAX_BYTES
    typed = Draft(value=value, comment=comment, no_data_reason=reason)
    view = owner_request(replace(calls_answered(), draft=typed))
    assert all(card_size(c) <= DEFAULT_MAX_BYTES for c in render_owner_requests(view))
