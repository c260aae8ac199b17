"""Process measures: self-return, on-time, time to return and approve, rejections."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m365perf.domain.measures import (
    ReturnHistory,
    measure,
    measure_groups,
    nearest_rank,
    returned_before_chase,
)

ASKED = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
DUE = date(2026, 11, 11)
TODAY = date(2026, 11, 20)


def item(
    *,
    returned_after: timedelta | None = None,
    chased_after: timedelta | None = None,
    approved_after: timedelta | None = None,
    rejections: int = 0,
    service: str = "Streetpride",
    cycle_id: int = 1,
    flow_id: str = "monthly",
) -> ReturnHistory:
    returned = ASKED + returned_after if returned_after is not None else None
    approved = returned + approved_after if returned and approved_after is not None else None
    return ReturnHistory(
        flow_id=flow_id,
        cycle_id=cycle_id,
        period=f"2026-{9 + cycle_id:02d}",
        service=service,
        due_date=DUE,
        asked_at=ASKED,
        first_returned_at=returned,
        first_returned_on=returned.date() if returned else None,
        first_chased_at=ASKED + chased_after if chased_after is not None else None,
        approved_submission_at=returned if approved else None,
        approved_at=approved,
        approvals=1 if approved else 0,
        rejections=rejections,
    )


def test_a_return_made_before_the_first_chase_counts_as_self_returned() -> None:
    early = item(returned_after=timedelta(hours=5), chased_after=timedelta(days=3))
    chased = item(returned_after=timedelta(days=4), chased_after=timedelta(days=3))
    never_chased = item(returned_after=timedelta(days=1))
    not_back = item(chased_after=timedelta(days=3))

    m = measure([early, chased, never_chased, not_back], today=TODAY)

    assert [returned_before_chase(i) for i in (early, chased, never_chased, not_back)] == [
        True,
        False,
        True,
        False,
    ]
    assert (m.returned, m.self_returned) == (3, 2)
    assert m.self_return_rate == pytest.approx(2 / 3)


def test_on_time_counts_overdue_returns_not_yet_made_as_late() -> None:
    on_time = item(returned_after=timedelta(days=2))
    late = item(returned_after=timedelta(days=10))
    missing = item()

    before_due = measure([on_time, late, missing], today=DUE)
    after_due = measure([on_time, late, missing], today=TODAY)

    assert (before_due.due, before_due.on_time) == (2, 1)  # the missing one is not due yet
    assert (after_due.due, after_due.on_time, after_due.on_time_rate) == (3, 1, 1 / 3)


def test_times_are_nearest_rank_medians_and_90th_percentiles_in_hours() -> None:
    items = [
        item(returned_after=timedelta(hours=h), approved_after=timedelta(hours=a))
        for h, a in ((1, 10), (2, 20), (3, 30), (4, 40), (100, 50))
    ]

    m = measure(items, today=TODAY)

    assert (m.median_hours_to_return, m.p90_hours_to_return) == (3.0, 100.0)
    assert (m.median_hours_to_approve, m.p90_hours_to_approve) == (30.0, 50.0)


def test_rejection_rate_is_rejections_over_decisions() -> None:
    items = [
        item(returned_after=timedelta(hours=1), approved_after=timedelta(hours=1), rejections=1),
        item(returned_after=timedelta(hours=1), approved_after=timedelta(hours=1)),
    ]

    m = measure(items, today=TODAY)

    assert (m.decisions, m.rejections, m.rejection_rate) == (3, 1, 1 / 3)


def test_nothing_to_count_gives_no_rate_rather_than_a_made_up_one() -> None:
    m = measure([item()], today=DUE)

    assert m.self_return_rate is None and m.on_time_rate is None
    assert m.rejection_rate is None and m.median_hours_to_return is None


def test_groups_are_per_flow_then_cycle_then_service_within_a_cycle() -> None:
    items = [
        item(returned_after=timedelta(hours=1), service="Streetpride"),
        item(returned_after=timedelta(days=9), chased_after=timedelta(days=8), service="Revenues"),
        item(returned_after=timedelta(hours=2), cycle_id=2, service="Revenues"),
    ]

    groups = measure_groups(items, today=TODAY)

    keys = [(g.scope, g.period, g.service, g.measures.self_returned) for g in groups]
    assert keys == [
        ("flow", None, None, 2),
        ("cycle", "2026-10", None, 1),
        ("cycle", "2026-11", None, 1),
        ("service", "2026-10", "Revenues", 0),
        ("service", "2026-10", "Streetpride", 1),
        ("service", "2026-11", "Revenues", 1),
    ]


hours = st.one_of(st.none(), st.integers(min_value=0, max_value=24 * 40))


@given(st.lists(st.tuples(hours, hours, st.integers(0, 3)), max_size=30))
def test_rates_are_shares_of_their_own_counts(
    specs: list[tuple[int | None, int | None, int]],
) -> None:
    items = [
        item(
            returned_after=None if r is None else timedelta(hours=r),
            chased_after=None if c is None else timedelta(hours=c),
            approved_after=timedelta(hours=1) if r is not None else None,
            rejections=n,
        )
        for r, c, n in specs
    ]

    m = measure(items, today=TODAY)

    assert 0 <= m.self_returned <= m.returned <= m.returns == len(items)
    assert 0 <= m.on_time <= m.due <= m.returns
    for rate, part, whole in (
        (m.self_return_rate, m.self_returned, m.returned),
        (m.on_time_rate, m.on_time, m.due),
        (m.rejection_rate, m.rejections, m.decisions),
    ):
        assert rate == (part / whole if whole else None)
    if m.returned:
        assert m.median_hours_to_return is not None and m.p90_hours_to_return is not None
        assert m.median_hours_to_return <= m.p90_hours_to_return


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50), st.floats(1, 100))
def test_nearest_rank_is_a_value_of_the_list_with_that_share_at_or_below(
    values: list[float], percentile: float
) -> None:
    found = nearest_rank(values, percentile)

    assert found in values
    at_or_below = sum(1 for v in values if v <= found)
    assert at_or_below / len(values) >= percentile / 100
    below = sum(1 for v in values if v < found)
    assert below / len(values) < percentile / 100
