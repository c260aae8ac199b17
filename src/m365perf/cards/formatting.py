"""Numbers, dates and words as a council officer expects to read them on a card.

Dates and times are shown in Europe/London whatever the server's clock says, and
written out ("Wednesday 13 January 2027", "14:05") so nobody has to guess whether
03/11 is March or November. Numbers carry their unit ("87.5%", "£1,234.50",
"12.5 days"). Formatting never depends on the machine's locale.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from m365perf.cards.build import Colour
from m365perf.domain.kinds import Polarity, Rag, Unit

# The public part; the other functions here are shared by the cards' modules only.
__all__ = ["LONDON", "format_date", "format_moment", "format_time", "format_value"]

LONDON = ZoneInfo("Europe/London")

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Up to this many decimal places are shown; officers type one or two, and anything
# longer is float noise or a computed ratio nobody reads beyond the third place.
_MAX_PLACES = 3

_RAG_WORDS = {Rag.GREEN: "Green", Rag.AMBER: "Amber", Rag.RED: "Red", Rag.NONE: "No RAG rating"}
_RAG_COLOURS: dict[Rag, Colour] = {
    Rag.GREEN: "good",
    Rag.AMBER: "warning",
    Rag.RED: "attention",
    Rag.NONE: "default",
}

_DIRECTION_WORDS = {
    "improving": "improving",
    "worsening": "worsening",
    "no_change": "no change",
    "not_comparable": "not comparable",
}
_DIRECTION_COLOURS: dict[str, Colour] = {
    "improving": "good",
    "worsening": "attention",
    "no_change": "default",
    "not_comparable": "default",
}

_UNIT_NAMES = {
    Unit.PERCENTAGE: "Percentage (%)",
    Unit.CURRENCY: "Pounds (£)",
    Unit.COUNT: "Number",
    Unit.DAYS: "Days",
    Unit.RATIO: "Ratio",
}
_PLACEHOLDERS = {
    Unit.PERCENTAGE: "e.g. 87.5 (%)",
    Unit.CURRENCY: "e.g. 1234.50 (£)",
    Unit.COUNT: "e.g. 1234",
    Unit.DAYS: "e.g. 12.5 (days)",
    Unit.RATIO: "e.g. 2.75",
}


def format_value(value: float | None, unit: Unit | str) -> str:
    """``87.5`` as "87.5%", "£1,234.50", "1,234", "12.5 days" or "2.75"; None as "not recorded".

    Whole pounds are shown without pence ("£35,719"), other amounts with two places.
    """
    unit = as_unit(unit)
    if value is None:
        return "not recorded"
    number = _decimal(value)
    if unit is Unit.CURRENCY:
        places = 0 if number == number.to_integral_value() else 2
        text = _grouped(abs(number), places, trim=False)
        return f"-£{text}" if number < 0 else f"£{text}"
    text = _grouped(abs(number), _MAX_PLACES, trim=True)
    text = f"-{text}" if number < 0 and text != "0" else text
    if unit is Unit.PERCENTAGE:
        return f"{text}%"
    if unit is Unit.DAYS:
        return f"{text} day" if abs(number) == 1 else f"{text} days"
    return text


def plain_number(value: float) -> str:
    """A value as an officer would type it back into a card: "1234.5", no grouping or unit."""
    number = _decimal(value)
    text = format(number.normalize(), "f")
    return text[:-2] if text.endswith(".0") else text


def format_amount(amount: float, unit: Unit | str) -> str:
    """A tolerance or difference: percentages are in percentage points, not percent."""
    unit = as_unit(unit)
    if unit is Unit.PERCENTAGE:
        text = format_value(amount, Unit.RATIO)
        return f"{text} percentage point" if abs(amount) == 1 else f"{text} percentage points"
    return format_value(amount, unit)


def format_date(day: date | datetime) -> str:
    """ "Wednesday 13 January 2027" (a datetime is first put into London time)."""
    if isinstance(day, datetime):
        day = _london(day).date()
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def format_time(moment: datetime) -> str:
    """ "14:05", London time."""
    return f"{_london(moment):%H:%M}"


def format_moment(moment: datetime) -> str:
    """ "14:05 on 3 November 2026", London time (the wording of an outcome line)."""
    local = _london(moment)
    return f"{local:%H:%M} on {local.day} {_MONTHS[local.month - 1]} {local.year}"


def unit_name(unit: Unit | str) -> str:
    return _UNIT_NAMES[as_unit(unit)]


def placeholder(unit: Unit | str) -> str:
    return _PLACEHOLDERS[as_unit(unit)]


def rag_word(rag: Rag | str) -> str:
    return _RAG_WORDS[as_rag(rag)]


def rag_colour(rag: Rag | str) -> Colour:
    return _RAG_COLOURS[as_rag(rag)]


def direction_word(direction: str) -> str:
    return _DIRECTION_WORDS[check_direction(direction)]


def direction_colour(direction: str) -> Colour:
    return _DIRECTION_COLOURS[check_direction(direction)]


def check_direction(direction: str) -> str:
    """The direction-of-travel value, or a clear error naming the accepted ones."""
    if direction not in _DIRECTION_WORDS:
        accepted = ", ".join(sorted(_DIRECTION_WORDS))
        raise ValueError(f"direction of travel must be one of {accepted}; got {direction!r}")
    return str(direction)


def as_unit(unit: Unit | str) -> Unit:
    """The unit, or a clear error naming the accepted ones."""
    try:
        return Unit(unit)
    except ValueError:
        accepted = ", ".join(u.value for u in Unit)
        raise ValueError(f"unit must be one of {accepted}; got {unit!r}") from None


def as_rag(rag: Rag | str) -> Rag:
    """The RAG status, or a clear error naming the accepted ones."""
    try:
        return Rag(rag)
    except ValueError:
        accepted = ", ".join(r.value for r in Rag)
        raise ValueError(f"RAG must be one of {accepted}; got {rag!r}") from None


def as_polarity(polarity: Polarity | str) -> Polarity:
    """The polarity, or a clear error naming the accepted ones."""
    try:
        return Polarity(polarity)
    except ValueError:
        accepted = ", ".join(p.value for p in Polarity)
        raise ValueError(f"polarity must be one of {accepted}; got {polarity!r}") from None


def _decimal(value: float) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"a value must be a finite number, got {value!r}")
    # repr gives the shortest decimal that reads back as the same float: 0.1 stays 0.1.
    return Decimal(repr(float(value)))


def _grouped(number: Decimal, places: int, *, trim: bool) -> str:
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{rounded:,.{places}f}"
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _london(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"a date and time must carry its time zone (e.g. UTC) to be shown in London time; "
            f"got {moment.isoformat()}"
        )
    return moment.astimezone(LONDON)


# --- wording shared by the cards and their plain-text summaries ------------------------

SENT_BACK_REASON_SHOWN = 1000
"""The most of a send-back reason the card, the e-mail and the web form show.

As long as the approver's reason box on the card, so a reason typed there is shown
whole; a longer one (a correction asked for from the command line) ends in "…".
"""


def target_text(target: float | None, unit: Unit, polarity: Polarity) -> str:
    """ "90% or higher", "12 days or lower", "2.5" (no polarity) or "No target set"."""
    if target is None:
        return "No target set"
    text = format_value(target, unit)
    if polarity is Polarity.HIGHER_IS_BETTER:
        return f"{text} or higher"
    if polarity is Polarity.LOWER_IS_BETTER:
        return f"{text} or lower"
    return text


def returned_value_text(value: float | None, no_data_reason: str | None, unit: Unit) -> str:
    """A returned value, or "no data this period (reason)"."""
    if value is not None:
        return format_value(value, unit)
    reason = (no_data_reason or "").strip()
    return f"no data this period ({reason})" if reason else "no data this period"


def status_text(*, approved: bool, awaiting_approval_by: str | None) -> str:
    """Where a return has got to: "Approved", "Awaiting approval by X" or "Received"."""
    if approved:
        return "Approved"
    if awaiting_approval_by:
        return f"Awaiting approval by {awaiting_approval_by}"
    return "Received"


def tolerance_text(
    target: float | None, tolerance: float | None, unit: Unit, polarity: Polarity
) -> str | None:
    """E.g. "2 percentage points (amber down to 88%)"; None when there is no amber band."""
    if target is None or not tolerance:
        return None
    amount = format_amount(tolerance, unit)
    if polarity is Polarity.HIGHER_IS_BETTER:
        return f"{amount} (amber down to {format_value(target - tolerance, unit)})"
    if polarity is Polarity.LOWER_IS_BETTER:
        return f"{amount} (amber up to {format_value(target + tolerance, unit)})"
    return amount


def sent_back_heading(*, by_name: str, at: datetime, correction: bool) -> str:
    """ "Sent back by Bob Ray on Thursday 5 November 2026" or "Reopened for correction by …"."""
    what = "Reopened for correction" if correction else "Sent back"
    return f"{what} by {one_line(by_name)} on {format_date(at)}"


def previous_figure_text(value: float | None, no_data_reason: str | None, unit: Unit) -> str:
    """The figure that was sent back, as the owner returned it."""
    return returned_value_text(value, shortened(no_data_reason or "", SENT_BACK_REASON_SHOWN), unit)


def commentary_hint(rags: tuple[Rag, ...], special_cause_concern: bool) -> str:
    """What the commentary box asks for, by the flow's own rule.

    "What explains this figure? Needed when it is red or amber." — or "red", or "when it
    shows a special cause of concern", or "Optional for this return." when the flow
    requires none.
    """
    words = [rag.value for rag in (Rag.RED, Rag.AMBER, Rag.GREEN) if rag in rags]
    needs = []
    if words:
        listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
        needs.append(f"it is {listed}")
    if special_cause_concern:
        needs.append("it shows a special cause of concern")
    if not needs:
        return "What explains this figure? Optional for this return."
    return f"What explains this figure? Needed when {', or when '.join(needs)}."


def one_line(text: str) -> str:
    """``text`` with every run of white space (new lines included) as one space."""
    return " ".join(text.split())


def shortened(text: str, limit: int) -> str:
    """``text`` on one line, cut to at most ``limit`` characters ending in "…" if too long.

    The cut falls after the last whole word when that keeps most of the text, so a long
    reason ends "…" rather than half way through a word.
    """
    if limit < 2:
        raise ValueError(f"limit must be 2 or more, got {limit!r}")
    flat = one_line(text)
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if flat[limit - 1] != " ":  # the cut is inside a word: end at the word before it
        space = cut.rfind(" ")
        if space >= (limit * 4) // 5:
            cut = cut[:space]
    return cut.rstrip() + "…"
