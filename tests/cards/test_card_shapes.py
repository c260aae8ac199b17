"""Every card kind, drawn from many generated views, passes the Adaptive Cards 1.5 schema.

Cards are not validated as they are rendered (see docs/decisions.md): this is where a
builder or a card that Teams or Outlook would drop is caught. Each view mixes what can
appear on it (drafts, errors on each input, sent-back banners, reminders, year-to-date
targets, split parts) so that every branch of every card is drawn.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m365perf.cards import (
    DEFAULT_MAX_BYTES,
    ApprovalView,
    CommentaryRule,
    Draft,
    IndicatorRequest,
    InputError,
    InputField,
    Outcome,
    OutcomeView,
    OwnerRequestView,
    PeriodValue,
    ReceiptView,
    RejectionView,
    ReturnedIndicator,
    SentBack,
    card_size,
    outlook_card,
    render_approval,
    render_notice,
    render_outcome,
    render_owner_requests,
    render_receipt,
    render_rejection,
    validate_card,
)
from m365perf.domain.kinds import Polarity, Rag, Unit

_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any text an officer could type, markup and JSON-breaking characters included.
words = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80).filter(
    lambda text: text.strip() != ""
)
ids = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
numbers = st.none() | st.floats(-1e6, 1e6, allow_nan=False)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1))
directions = st.none() | st.sampled_from(["improving", "worsening", "no_change", "not_comparable"])
periods = st.builds(PeriodValue, label=words, value=numbers)
sent_backs = st.builds(
    SentBack,
    by_name=words,
    at=moments,
    reason=words,
    correction=st.booleans(),
    previous_value=numbers,
    previous_no_data_reason=st.none() | words,
)
errors = st.lists(
    words | st.builds(InputError, field=st.sampled_from(list(InputField)), message=words),
    max_size=4,
).map(tuple)
drafts = st.none() | st.builds(
    Draft,
    value=st.text(max_size=20),
    comment=st.text(max_size=200),
    no_data=st.booleans(),
    no_data_reason=st.text(max_size=50),
    confirmed=st.booleans(),
)


@st.composite
def requests(draw: st.DrawFn, indicator_id: str) -> IndicatorRequest:
    return IndicatorRequest(
        indicator_id=indicator_id,
        name=draw(words),
        unit=draw(st.sampled_from(list(Unit))),
        version=draw(st.integers(0, 10_000)),
        polarity=draw(st.sampled_from(list(Polarity))),
        target=draw(numbers),
        tolerance=draw(st.none() | st.floats(0, 100)),
        comparator=draw(st.none() | words),
        recent=tuple(draw(st.lists(periods, max_size=4))),
        last_year=draw(st.none() | periods),
        draft=draw(drafts),
        errors=draw(errors),
        needs_confirmation=draw(st.booleans()),
        sent_back=draw(st.none() | sent_backs),
        annual_target=draw(numbers),
        commentary_rule=CommentaryRule(
            rags=tuple(draw(st.lists(st.sampled_from(list(Rag)), max_size=3))),
            special_cause_concern=draw(st.booleans()),
        ),
    )


@st.composite
def returned(draw: st.DrawFn, indicator_id: str) -> ReturnedIndicator:
    return ReturnedIndicator(
        indicator_id=indicator_id,
        name=draw(words),
        unit=draw(st.sampled_from(list(Unit))),
        value=draw(numbers),
        rag=draw(st.sampled_from(list(Rag))),
        no_data_reason=draw(st.none() | words),
        direction_vs_previous=draw(directions),
        direction_vs_last_year=draw(directions),
        late=draw(st.booleans()),
        awaiting_approval_by=draw(st.none() | words),
        approved=draw(st.booleans()),
    )


def _header(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "cycle_id": draw(ids),
        "owner_id": draw(ids),
        "card_id": draw(ids),
        "owner_name": draw(words),
        "flow_name": draw(words),
        "period_label": draw(words),
        "due": draw(days),
    }


@st.composite
def owner_views(draw: st.DrawFn) -> OwnerRequestView:
    count = draw(st.integers(1, 5))
    items = [draw(st.one_of(requests(f"ind-{n}"), returned(f"ind-{n}"))) for n in range(count)]
    return OwnerRequestView(
        **_header(draw),
        indicators=tuple(items),
        late=draw(st.booleans()),
        reminder=draw(st.none() | st.integers(1, 12)),
        notice=draw(st.none() | words),
    )


@st.composite
def approval_views(draw: st.DrawFn) -> ApprovalView:
    step_count = draw(st.integers(1, 5))
    return ApprovalView(
        return_id=draw(ids),
        version=draw(st.integers(0, 1000)),
        step_index=draw(st.integers(0, step_count - 1)),
        step_count=step_count,
        step_name=draw(words),
        card_id=draw(ids),
        indicator_name=draw(words),
        owner_name=draw(words),
        period_label=draw(words),
        unit=draw(st.sampled_from(list(Unit))),
        value=draw(numbers),
        polarity=draw(st.sampled_from(list(Polarity))),
        no_data_reason=draw(st.none() | words),
        target=draw(numbers),
        tolerance=draw(st.none() | st.floats(0, 100)),
        rag=draw(st.sampled_from(list(Rag))),
        previous=draw(st.none() | periods),
        last_year=draw(st.none() | periods),
        direction_vs_previous=draw(directions),
        direction_vs_last_year=draw(directions),
        history=tuple(draw(st.lists(periods, max_size=8))),
        variation=draw(st.none() | words),
        assurance=draw(st.none() | words),
        commentary=draw(st.none() | st.text(max_size=300)),
        outlier_confirmed=draw(st.booleans()),
        probable_missing_data=draw(st.booleans()),
        late=draw(st.booleans()),
        submitted_at=draw(st.none() | moments),
        error=draw(st.none() | words),
        long_trend=draw(directions),
        comparator=draw(st.none() | words),
        resubmission=draw(st.none() | sent_backs),
        annual_target=draw(numbers),
    )


def _check(card: dict[str, Any]) -> None:
    validate_card(card)
    assert card_size(card) <= DEFAULT_MAX_BYTES
    validate_card(outlook_card(card, originator="provider-id"))


@_SETTINGS
@given(owner_views(), st.sampled_from([DEFAULT_MAX_BYTES, 12_000]))
def test_owner_request_cards_and_their_parts_are_valid(view: OwnerRequestView, limit: int) -> None:
    for card in render_owner_requests(view, max_bytes=limit):
        _check(card)


@_SETTINGS
@given(st.data())
def test_rejection_and_correction_cards_are_valid(data: st.DataObject) -> None:
    view = RejectionView(
        **_header(data.draw),
        indicator=data.draw(requests("ind-1")),
        rejected_by=data.draw(words),
        rejected_at=data.draw(moments),
        reason=data.draw(words),
        previous_value=data.draw(numbers),
        previous_commentary=data.draw(st.text(max_size=200)),
        previous_no_data_reason=data.draw(st.none() | words),
        late=data.draw(st.booleans()),
        correction=data.draw(st.booleans()),
    )
    _check(render_rejection(view))


@_SETTINGS
@given(st.data())
def test_receipt_cards_are_valid(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 4))
    view = ReceiptView(
        **_header(data.draw),
        returned=tuple(data.draw(returned(f"ind-{n}")) for n in range(count)),
        outstanding=tuple(data.draw(st.lists(words, max_size=3))),
    )
    _check(render_receipt(view))


@_SETTINGS
@given(approval_views())
def test_approval_cards_are_valid(view: ApprovalView) -> None:
    _check(render_approval(view))


@_SETTINGS
@given(st.data())
def test_outcome_and_notice_cards_are_valid(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(list(Outcome)))
    view = OutcomeView(
        outcome=kind,
        indicator_name=data.draw(words),
        owner_name=data.draw(words),
        period_label=data.draw(words),
        at=data.draw(moments),
        by=data.draw(words if kind is not Outcome.SUPERSEDED else st.none() | words),
        unit=data.draw(st.none() | st.sampled_from(list(Unit))),
        value=data.draw(numbers),
        reason=data.draw(words),
        next_step=data.draw(st.none() | words),
    )
    _check(render_outcome(view))
    _check(render_notice(data.draw(words), data.draw(words)))
