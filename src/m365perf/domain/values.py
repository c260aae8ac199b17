"""Reading the values officers return, and the unit and polarity words registers use.

Officers type into a card; registers were typed by many hands over many years
(Coventry's has "number", "Number" and "number " side by side, and values such
as "N/A", "23 out of 35" and "B"). Everything is read strictly, and anything
that cannot be read gets a message the officer can act on next to the input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

from m365perf.domain.kinds import Polarity, Unit
from m365perf.errors import M365PerfError

__all__ = [
    "Bounds",
    "ReturnedValue",
    "ValueProblem",
    "default_bounds",
    "parse_value",
    "polarity_from_text",
    "unit_from_text",
]


class ValueProblem(M365PerfError, ValueError):
    """A returned value that cannot be accepted; ``message`` is shown to the officer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Bounds:
    """The range a value must fall in (inclusive); None leaves that side to the unit's default."""

    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        for name, limit in (("minimum", self.minimum), ("maximum", self.maximum)):
            if limit is not None and (not _is_number(limit) or not math.isfinite(limit)):
                raise ValueError(f"bounds {name} must be a finite number or None, got {limit!r}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(
                f"bounds minimum {self.minimum} is greater than maximum {self.maximum}"
            )


@dataclass(frozen=True)
class ReturnedValue:
    """An officer's return: a number, or no number and the reason why."""

    value: float | None
    no_data_reason: str | None = None

    def __post_init__(self) -> None:
        if self.value is None and not (self.no_data_reason or "").strip():
            raise ValueError("a return without a value needs a no-data reason")
        if self.value is not None and self.no_data_reason is not None:
            raise ValueError("a return has either a value or a no-data reason, not both")

    @property
    def is_no_data(self) -> bool:
        """True for a "no data this period" return."""
        return self.value is None


def default_bounds(unit: Unit) -> Bounds:
    """The range a unit allows unless the indicator says otherwise.

    Percentages run 0–100; every other unit is 0 or more with no upper limit.
    """
    if Unit(unit) is Unit.PERCENTAGE:
        return Bounds(0.0, 100.0)
    return Bounds(0.0, None)


def parse_value(
    raw: str | float | int | None,
    unit: Unit,
    bounds: Bounds | None = None,
    *,
    no_data_reason: str | None = None,
) -> ReturnedValue:
    """Read an officer's input as a value in ``unit``, or as a no-data return.

    An empty input with a ``no_data_reason`` is a no-data return. ``bounds``
    override the unit's default range side by side: ``Bounds(maximum=120)`` on a
    percentage keeps the minimum of 0; to allow negative amounts give a negative
    ``minimum``. Raises ValueProblem with a message for the officer.
    """
    unit = Unit(unit)
    limits = _merge(default_bounds(unit), bounds)
    hint = _hint(unit, limits)
    reason = (no_data_reason or "").strip() or None

    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if reason is not None:
            return ReturnedValue(None, reason)
        raise ValueProblem(f"{hint}. If there is no data this period, say why instead.")
    if reason is not None:
        raise ValueProblem("You entered both a value and a reason for no data: keep one of them.")

    number = _read_number(raw, unit, hint)
    if unit is Unit.COUNT and number != number.to_integral_value():
        raise ValueProblem(f"{_quote(raw)} is not a whole number. {hint}.")
    value = float(number) + 0.0  # "-0" is 0, not minus zero
    if (limits.minimum is not None and value < limits.minimum) or (
        limits.maximum is not None and value > limits.maximum
    ):
        raise ValueProblem(f"{_quote(raw)} is out of range. {hint}.")
    return ReturnedValue(value)


# --- reading numbers ---------------------------------------------------------------

_NUMBER_RE = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+|(?=\.\d))(?:\.\d*)?")
_DECIMAL_COMMA_RE = re.compile(r"[-+]?\d+,\d{1,2}")
_FRACTION_RE = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(?:out of|/|of)\s*(\d[\d,]*(?:\.\d+)?)")
_SHORTHAND_RE = re.compile(r"£?\s*\d[\d,]*(?:\.\d+)?\s*(?:m|k|bn|million|thousand)\b.*")
_NO_DATA_WORDS = frozenset(
    {"n/a", "na", "n.a.", "-", "--", "no data", "not available", "unknown", "tbc", "tba", "null"}
)


def _read_number(raw: str | float | int, unit: Unit, hint: str) -> Decimal:
    if isinstance(raw, bool):
        raise ValueProblem(f"{hint}.")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueProblem(f"{hint}.")
        return Decimal(str(raw))
    if not isinstance(raw, str):
        raise ValueProblem(f"{hint}.")

    text = " ".join(raw.split()).replace("\u2212", "-")  # typographic minus from Word/Excel
    if unit is Unit.PERCENTAGE:
        text = text.removesuffix("%").rstrip()
    elif text.endswith("%"):
        raise ValueProblem(f"This indicator is {_UNIT_WORDS[unit]}, not a percentage. {hint}.")
    if unit is Unit.CURRENCY:
        text = re.sub(r"^([-+]?)\s*£\s*", r"\1", text)
    elif "£" in text:
        raise ValueProblem(f"This indicator is {_UNIT_WORDS[unit]}, not money. {hint}.")

    if _NUMBER_RE.fullmatch(text):
        return Decimal(text.replace(",", ""))
    raise ValueProblem(_explain(raw, text, unit, hint))


def _explain(raw: str, text: str, unit: Unit, hint: str) -> str:
    """Say what is wrong with an input that is not a plain number, in the officer's terms."""
    lowered = text.lower()
    if lowered in _NO_DATA_WORDS:
        return (
            f"{_quote(raw)} is not a number. If there is no data this period, leave the "
            f"value empty and give the reason instead; otherwise {_lower_first(hint)}."
        )
    fraction = _FRACTION_RE.fullmatch(lowered)
    if fraction is not None:
        top = Decimal(fraction[1].replace(",", ""))
        bottom = Decimal(fraction[2].replace(",", ""))
        if unit is Unit.PERCENTAGE and bottom != 0:
            worked = round(float(top / bottom * 100), 1)
            return (
                f"Enter the percentage itself, not {_quote(raw)}: for example "
                f"{_format(worked)} for {fraction[1]} out of {fraction[2]}."
            )
        return f"Enter a single number, not {_quote(raw)}. {hint}."
    if unit is not Unit.COUNT and _DECIMAL_COMMA_RE.fullmatch(text):
        return f"Use a full stop for decimals, e.g. {text.replace(',', '.')} rather than {text}."
    if _SHORTHAND_RE.fullmatch(lowered):
        return f"Write the number in full, not as {_quote(raw)}. {hint}."
    return f"{_quote(raw)} is not a number. {hint}."


# --- messages ----------------------------------------------------------------------

_UNIT_WORDS = {
    Unit.COUNT: "a count",
    Unit.PERCENTAGE: "a percentage",
    Unit.CURRENCY: "an amount of money",
    Unit.DAYS: "a number of days",
    Unit.RATIO: "a rate or ratio",
}
_ASK = {
    Unit.COUNT: "Enter a whole number",
    Unit.PERCENTAGE: "Enter a percentage",
    Unit.CURRENCY: "Enter an amount in pounds",
    Unit.DAYS: "Enter a number of days",
    Unit.RATIO: "Enter a number",
}
_EXAMPLE = {
    Unit.COUNT: 1234.0,
    Unit.PERCENTAGE: 87.5,
    Unit.CURRENCY: 1234.5,
    Unit.DAYS: 4.5,
    Unit.RATIO: 2.75,
}


def _hint(unit: Unit, limits: Bounds) -> str:
    """E.g. "Enter a percentage between 0 and 100, e.g. 87.5"."""
    low, high = limits.minimum, limits.maximum
    if low is not None and high is not None:
        if low == high:
            span = f" of exactly {_format(low, unit)}"
        else:
            span = f" between {_format(low, unit)} and {_format(high, unit)}"
    elif low is not None:
        span = f" of {_format(low, unit)} or more"
    elif high is not None:
        span = f" of {_format(high, unit)} or less"
    else:
        span = ""
    return f"{_ASK[unit]}{span}, e.g. {_format(_example(unit, limits), unit)}"


def _example(unit: Unit, limits: Bounds) -> float:
    """An example that the bounds themselves accept."""
    example = _EXAMPLE[unit]
    low, high = limits.minimum, limits.maximum
    if (low is None or example >= low) and (high is None or example <= high):
        return example
    if low is not None and high is not None:
        example = (low + high) / 2
    elif low is not None:
        example = low
    elif high is not None:
        example = high
    if unit is Unit.COUNT:
        example = float(math.ceil(example))
        if high is not None and example > high:
            example = float(math.floor(high))
    return example


def _format(x: float, unit: Unit | None = None) -> str:
    """1234.5 -> "1,234.5"; 100.0 -> "100"; money as "£1,234.50"."""
    if unit is Unit.CURRENCY:
        digits = f"{abs(x):,.0f}" if float(x).is_integer() else f"{abs(x):,.2f}"
        return f"{'-' if x < 0 else ''}£{digits}"
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,}"


def _quote(raw: object) -> str:
    return f"“{raw}”" if isinstance(raw, str) else f"“{raw!r}”"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _merge(default: Bounds, override: Bounds | None) -> Bounds:
    if override is None:
        return default
    low = override.minimum if override.minimum is not None else default.minimum
    high = override.maximum if override.maximum is not None else default.maximum
    if low is not None and high is not None and low > high:
        # An override that moves one side past the other default side wins outright.
        if override.minimum is not None:
            high = override.maximum
        else:
            low = override.minimum
    return Bounds(low, high)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


# --- register words ------------------------------------------------------------------

_COUNT_WORDS = frozenset({"count", "number", "numbers", "no", "no.", "#", "total", "quantity"})
_PERCENT_WORDS = frozenset({"%", "percentage", "percent", "per cent", "pct", "percentage points"})
_CURRENCY_WORDS = frozenset({"currency", "money", "pounds", "gbp", "cost", "£"})
_DAYS_WORDS = frozenset({"days", "day", "working days", "calendar days", "average days"})
_RATIO_WORDS = frozenset({"ratio", "rate", "index", "score", "average score", "average"})
_BLANK_WORDS = frozenset({"", "n/a", "na", "none", "-"})
_PER_N_RE = re.compile(r"\bper\s+[\d,]+\b")


def unit_from_text(text: str) -> Unit | None:
    """The unit a register's free-text unit column means, or None when no unit fits.

    Rates ("rate per 1,000 households"), indexes and average scores are ratios;
    "% difference" is a percentage (it can be negative, so such indicators need
    bounds). Grades, ratings, years, tonnes and the like return None: they need a
    person to decide how the indicator is measured.
    """
    words = " ".join(str(text).lower().split())
    if words in _BLANK_WORDS:
        return None
    for unit in Unit:
        if words == unit.value:
            return unit
    if words in _PERCENT_WORDS or words.startswith(("%", "percentage ", "percent ")):
        return Unit.PERCENTAGE
    if words in _CURRENCY_WORDS or "£" in words or re.search(r"\bpounds?\b", words):
        return Unit.CURRENCY
    if words in _DAYS_WORDS or words.startswith("days ") or words.endswith(" days"):
        return Unit.DAYS
    if words in _COUNT_WORDS:
        return Unit.COUNT
    if words in _RATIO_WORDS or words.startswith("rate ") or _PER_N_RE.search(words):
        return Unit.RATIO
    return None


_HIGHER_WORDS = frozenset(
    {
        "higher is better",
        "high is good",
        "high is better",
        "higher",
        "high",
        "up",
        "increase",
        "to increase",
        "increasing",
        "bigger is better",
        "more is better",
        "maximise",
        "maximize",
    }
)
_LOWER_WORDS = frozenset(
    {
        "lower is better",
        "low is good",
        "low is better",
        "lower",
        "low",
        "down",
        "decrease",
        "to decrease",
        "decreasing",
        "reduce",
        "to reduce",
        "smaller is better",
        "less is better",
        "minimise",
        "minimize",
    }
)
_NONE_WORDS = frozenset(
    {"none", "n/a", "na", "neither", "no polarity", "not applicable", "no direction"}
)


def polarity_from_text(text: str) -> Polarity | None:
    """The polarity a register's free-text column means, or None when it is not clear.

    "N/A" and "none" are a deliberate "no polarity" (Polarity.NONE); text that
    cannot be read, including an empty cell, is None so the register sync can ask.
    """
    words = " ".join(str(text).lower().replace("_", " ").replace("-", " ").split())
    words = words.rstrip(".!")
    if words in _HIGHER_WORDS:
        return Polarity.HIGHER_IS_BETTER
    if words in _LOWER_WORDS:
        return Polarity.LOWER_IS_BETTER
    if words in _NONE_WORDS:
        return Polarity.NONE
    return None
