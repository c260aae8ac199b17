"""Register targets as councils write them (Coventry's own wordings)."""

from __future__ import annotations

import pytest

from m365perf.plan.register import parse_target


@pytest.mark.parametrize(
    ("text", "figure"),
    [
        ("<89", 89.0),
        (">62%", 62.0),
        ("97%+", 97.0),
        ("Less than or equal to 4%", 4.0),
        ("0", 0.0),
        ("£1,250", 1250.0),
        ("45", 45.0),
    ],
)
def test_figures_are_read(text: str, figure: float) -> None:
    assert parse_target(text) == figure


@pytest.mark.parametrize(
    "text",
    [
        "",
        "To increase",
        "To decrease",
        "None set",
        "Better than statistical neighbours",
        "To reduce by 5%",
        "Below (better than) national average",
        "N/A",
    ],
)
def test_aims_without_a_figure_mean_no_target(text: str) -> None:
    assert parse_target(text) is None


@pytest.mark.parametrize("text", ["A&B = 100%", "Above Budget", "A", "23 out of 35"])
def test_anything_else_is_a_bad_target(text: str) -> None:
    with pytest.raises(ValueError, match="bad target"):
        parse_target(text)
