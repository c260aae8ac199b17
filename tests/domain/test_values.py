"""Reading returned values and the register's unit and polarity words.

The messy inputs are real: Coventry City Council's published KPI tables (Open
Government Licence) contain "N/A", "23 out of 35", "B", "5.193m" and units spelt
"number", "Number" and "number ".
"""

from __future__ import annotations

import pytest

from m365perf.domain.kinds import Polarity, Unit
from m365perf.domain.values import (
    Bounds,
    ReturnedValue,
    ValueProblem,
    default_bounds,
    parse_value,
    polarity_from_text,
    unit_from_text,
)


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [
        ("87.5", Unit.PERCENTAGE, 87.5),
        ("87.5%", Unit.PERCENTAGE, 87.5),
        (" 87.5 % ", Unit.PERCENTAGE, 87.5),
        ("100", Unit.PERCENTAGE, 100.0),
        ("0", Unit.PERCENTAGE, 0.0),
        ("1,234", Unit.COUNT, 1234.0),
        ("12", Unit.COUNT, 12.0),
        (12, Unit.COUNT, 12.0),
        ("£1,234.50", Unit.CURRENCY, 1234.5),
        ("1234.5", Unit.CURRENCY, 1234.5),
        ("4.5", Unit.DAYS, 4.5),
        ("8.94", Unit.RATIO, 8.94),
        (".5", Unit.RATIO, 0.5),
        (35719, Unit.CURRENCY, 35719.0),
    ],
)
def test_good_values(raw: str | int, unit: Unit, expected: float) -> None:
    assert parse_value(raw, unit) == ReturnedValue(expected)


@pytest.mark.parametrize(
    ("raw", "unit", "says"),
    [
        ("N/A", Unit.PERCENTAGE, "leave the value empty and give the reason"),
        ("NA", Unit.COUNT, "leave the value empty and give the reason"),
        ("23 out of 35", Unit.PERCENTAGE, "65.7"),
        ("425/736", Unit.COUNT, "single number"),
        ("B", Unit.PERCENTAGE, "Enter a percentage between 0 and 100, e.g. 87.5"),
        ("Merit", Unit.RATIO, "is not a number"),
        ("5.193m", Unit.CURRENCY, "in full"),
        ("<5", Unit.COUNT, "is not a number"),
        ("87,5", Unit.PERCENTAGE, "full stop"),
        ("1e3", Unit.COUNT, "is not a number"),
        ("12.5", Unit.COUNT, "whole number"),
        ("101", Unit.PERCENTAGE, "between 0 and 100"),
        ("-0.5", Unit.PERCENTAGE, "between 0 and 100"),
        ("-3", Unit.DAYS, "0 or more"),
        ("-£500", Unit.CURRENCY, "£0 or more"),
        ("16%", Unit.RATIO, "not a percentage"),
        ("£5", Unit.COUNT, "not money"),
        ("nan", Unit.RATIO, "is not a number"),
    ],
)
def test_messy_values_are_refused_with_a_useful_message(raw: str, unit: Unit, says: str) -> None:
    with pytest.raises(ValueProblem) as caught:
        parse_value(raw, unit)
    assert says in caught.value.message
    assert str(caught.value) == caught.value.message


def test_non_finite_and_boolean_inputs_are_refused() -> None:
    for raw in (float("nan"), float("inf"), True):
        with pytest.raises(ValueProblem):
            parse_value(raw, Unit.RATIO)


def test_no_data_needs_a_reason() -> None:
    returned = parse_value("", Unit.COUNT, no_data_reason="  Survey not run this quarter ")
    assert returned.is_no_data
    assert returned.no_data_reason == "Survey not run this quarter"
    assert parse_value(None, Unit.DAYS, no_data_reason="System outage").is_no_data
    with pytest.raises(ValueProblem, match="say why"):
        parse_value("  ", Unit.COUNT)
    with pytest.raises(ValueProblem, match="say why"):
        parse_value("", Unit.COUNT, no_data_reason="   ")
    with pytest.raises(ValueProblem, match="keep one"):
        parse_value("12", Unit.COUNT, no_data_reason="Survey not run")
    assert not parse_value("12", Unit.COUNT).is_no_data


def test_returned_value_must_be_a_value_or_a_reason() -> None:
    with pytest.raises(ValueError):
        ReturnedValue(None)
    with pytest.raises(ValueError):
        ReturnedValue(5.0, "and a reason")


def test_default_bounds() -> None:
    assert default_bounds(Unit.PERCENTAGE) == Bounds(0, 100)
    for unit in (Unit.COUNT, Unit.CURRENCY, Unit.DAYS, Unit.RATIO):
        assert default_bounds(unit) == Bounds(0, None)


def test_bounds_override_the_unit_range_side_by_side() -> None:
    # An overspend can be negative when the indicator allows it.
    assert parse_value("-£5,000", Unit.CURRENCY, Bounds(minimum=-1_000_000)).value == -5000.0
    # A percentage of target can exceed 100 but still not go below 0.
    assert parse_value("112", Unit.PERCENTAGE, Bounds(maximum=150)).value == 112.0
    with pytest.raises(ValueProblem, match="between 0 and 150"):
        parse_value("-1", Unit.PERCENTAGE, Bounds(maximum=150))
    # Narrower bounds, with an example the bounds accept.
    with pytest.raises(ValueProblem) as caught:
        parse_value("3", Unit.RATIO, Bounds(maximum=1))
    assert caught.value.message.endswith("Enter a number between 0 and 1, e.g. 0.5.")
    with pytest.raises(ValueError):
        Bounds(10, 5)


# Every distinct unit spelling in Coventry's 2016-17 to 2024-25 tables.
COVENTRY_UNITS = {
    "%": Unit.PERCENTAGE,
    "% difference": Unit.PERCENTAGE,
    "% difference between national comparator": Unit.PERCENTAGE,
    "% difference between same group nationally": Unit.PERCENTAGE,
    "% of patients aged 17 years and over": Unit.PERCENTAGE,
    "% reduction": Unit.PERCENTAGE,
    "number": Unit.COUNT,
    "Number": Unit.COUNT,
    "number ": Unit.COUNT,
    "pounds": Unit.CURRENCY,
    "millions of pounds": Unit.CURRENCY,
    "days per full-time equivalent": Unit.DAYS,
    "average score": Unit.RATIO,
    "Average score": Unit.RATIO,
    "score": Unit.RATIO,
    "index": Unit.RATIO,
    "rate per 1,000 households": Unit.RATIO,
    "rate per 1,000 population": Unit.RATIO,
    "Rate 1,000 population": Unit.RATIO,
    "rate per 10,000": Unit.RATIO,
    "rate per 10,000 population under 18": Unit.RATIO,
    "rate per 100,0000 population 10-17": Unit.RATIO,
    "Rate per 100,000 population ": Unit.RATIO,
    "Rate per 100,000 smokers ": Unit.RATIO,
    "rate per 1,000 girls aged 15-17": Unit.RATIO,
    # No unit fits: a person must decide how these are measured.
    "grade": None,
    "rating": None,
    "years": None,
    "tonnes": None,
    "full-time equivalents": None,
    "relative difference": None,
    "Relative measure difference ": None,
    "number kwh": None,
    "N/A": None,
    " ": None,
}


@pytest.mark.parametrize(("text", "expected"), COVENTRY_UNITS.items())
def test_unit_from_coventry_spellings(text: str, expected: Unit | None) -> None:
    assert unit_from_text(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("percentage", Unit.PERCENTAGE),
        ("£", Unit.CURRENCY),
        ("£000s", Unit.CURRENCY),
        ("days", Unit.DAYS),
        ("Working days", Unit.DAYS),
        ("count", Unit.COUNT),
        ("ratio", Unit.RATIO),
        ("currency", Unit.CURRENCY),
        ("colour", None),
    ],
)
def test_unit_from_other_spellings(text: str, expected: Unit | None) -> None:
    assert unit_from_text(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("higher_is_better", Polarity.HIGHER_IS_BETTER),
        ("High is good", Polarity.HIGHER_IS_BETTER),  # Coventry 2017-18 "Directionality"
        ("Higher is better.", Polarity.HIGHER_IS_BETTER),
        ("higher", Polarity.HIGHER_IS_BETTER),
        ("Up", Polarity.HIGHER_IS_BETTER),
        ("To increase", Polarity.HIGHER_IS_BETTER),  # Coventry target text
        ("lower_is_better", Polarity.LOWER_IS_BETTER),
        ("Low is good", Polarity.LOWER_IS_BETTER),
        ("lower-is-better", Polarity.LOWER_IS_BETTER),
        ("down", Polarity.LOWER_IS_BETTER),
        ("To decrease", Polarity.LOWER_IS_BETTER),
        ("none", Polarity.NONE),
        ("N/A", Polarity.NONE),
        ("", None),
        ("To be more representative of the city", None),
    ],
)
def test_polarity_from_text(text: str, expected: Polarity | None) -> None:
    assert polarity_from_text(text) is expected
