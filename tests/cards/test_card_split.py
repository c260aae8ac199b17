"""Splitting a long list of indicators over several cards under the Teams size limit.

``coventry_indicators.csv`` holds the 60 longest indicator names (and their units) from
Coventry City Council's Council Plan performance indicator table 2024-25, published as
open data under the Open Government Licence v3.0 — attribution: Coventry City Council.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest
from card_support import council_tax_returned, inputs, owner_request, texts

from m365perf.cards import (
    DEFAULT_MAX_BYTES,
    CardTooLargeError,
    IndicatorRequest,
    PeriodValue,
    card_size,
    render_owner_requests,
    validate_card,
)
from m365perf.domain.kinds import Polarity

REGISTER = Path(__file__).with_name("coventry_indicators.csv")


def coventry_indicators() -> list[IndicatorRequest]:
    with REGISTER.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        IndicatorRequest(
            indicator_id=f"cov-{row['row_id']}",
            name=row["metric"],
            unit=row["unit"],  # type: ignore[arg-type]
            version=index,
            polarity=Polarity.HIGHER_IS_BETTER,
            target=75.0,
            tolerance=2.5,
            comparator="England average (2023-24), statistical neighbours' average (2023-24)",
            recent=(
                PeriodValue("2022-23 end of year", 71.4),
                PeriodValue("2023-24 end of year", 73.9),
                PeriodValue("2024-25 half year", 74.2),
            ),
            last_year=PeriodValue("2023-24 end of year", 73.9),
        )
        for index, row in enumerate(rows, start=1)
    ]


@pytest.fixture(scope="module")
def parts() -> list[dict[str, Any]]:
    indicators = coventry_indicators()
    assert len(indicators) == 60
    return render_owner_requests(owner_request(*indicators, flow_name="One Coventry Plan"))


def test_every_part_is_under_the_limit_and_valid(parts: list[dict[str, Any]]) -> None:
    assert len(parts) > 1
    for card in parts:
        assert card_size(card) <= DEFAULT_MAX_BYTES
        validate_card(card)


def test_every_indicator_appears_exactly_once_in_order(parts: list[dict[str, Any]]) -> None:
    expected = [indicator.indicator_id for indicator in coventry_indicators()]
    from_versions = [iid for card in parts for iid in card["actions"][0]["data"]["versions"]]
    from_inputs = [
        key.removeprefix("value__")
        for card in parts
        for key in inputs(card)
        if key.startswith("value__")
    ]
    assert sorted(from_versions) == sorted(expected)  # each once (a JSON object has no order)
    assert from_inputs == expected  # once each, and in the owner's order
    names = {indicator.name for indicator in coventry_indicators()}
    shown = [line for card in parts for line in texts(card) if line in names]
    assert sorted(shown) == sorted(names)


def test_each_part_says_which_part_it_is(parts: list[dict[str, Any]]) -> None:
    total = len(parts)
    for number, card in enumerate(parts, start=1):
        lines = [line for line in texts(card) if re.search(r"part \d+ of \d+", line)]
        assert len(lines) == 1
        assert f"part {number} of {total}" in lines[0]
        data = card["actions"][0]["data"]
        assert (data["part"], data["parts"]) == (number, total)
        assert data["card_id"] == "card-1"


def test_a_smaller_limit_gives_more_parts_each_under_it() -> None:
    indicators = coventry_indicators()[:12]
    cards = render_owner_requests(owner_request(*indicators), max_bytes=10_000)
    assert len(cards) >= 3
    assert all(card_size(card) <= 10_000 for card in cards)
    assert sum(len(card["actions"][0]["data"]["versions"]) for card in cards) == 12


def test_a_short_list_is_one_card_without_part_numbers() -> None:
    (card,) = render_owner_requests(owner_request())
    assert not any("part 1" in line for line in texts(card))
    assert "part" not in card["actions"][0]["data"]


def test_receipt_lines_are_split_too_and_need_no_submit() -> None:
    returned = [
        council_tax_returned(indicator_id=f"done-{n}", name=f"Returned indicator {n}")
        for n in range(40)
    ]
    cards = render_owner_requests(owner_request(*returned), max_bytes=6_000)
    assert len(cards) > 1
    assert all("actions" not in card for card in cards)
    shown = [
        line for card in cards for line in texts(card) if line.startswith("Returned indicator")
    ]
    assert shown == [f"Returned indicator {n}" for n in range(40)]


def test_a_limit_too_small_for_one_indicator_is_a_clear_error() -> None:
    with pytest.raises(CardTooLargeError, match="on its own makes a card over the limit of 3000"):
        render_owner_requests(owner_request(*coventry_indicators()[:3]), max_bytes=3_000)
