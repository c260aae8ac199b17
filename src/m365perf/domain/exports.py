"""Periods and values as other systems' exports write them (Pentana, CAMMS, spreadsheets).

A council bringing its history from another system has labels such as "2024/25",
"Q1 2024/25", "Apr 2024", "2024-04" or a date, and figures such as "1,234", "85%" or
"£12.50". These functions read them into the project's :class:`Period` and a number, or
raise :class:`ExportValueError` saying what was wrong, so an import can report the row.

A date means the period of the indicator's frequency that contains it (exports often
date a quarter by its last day); with no frequency known, the month that contains it.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime

from m365perf.domain.kinds import Frequency
from m365perf.domain.periods import Period, PeriodError
from m365perf.errors import M365PerfError

__all__ = ["ExportValueError", "read_number", "read_period"]

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
# "Apr 2024", "April-2024", "Apr-24", "Apr 24"
_MONTH_NAME = re.compile(r"(?P<month>[a-z]+)[\s\-/]*(?P<year>\d{4}|\d{2})", re.IGNORECASE)
# "Q1 2024/25", "Q1 2024-25", "Quarter 1 2024/25", "2024/25 Q1", "2024-25 Quarter 1"
_QUARTER_FIRST = re.compile(
    r"(?:q|qtr|quarter)\s*(?P<q>\d)[\s,\-]*(?:fy\s*)?(?P<fy>\d{4}\s*[/-]\s*\d{2,4})",
    re.IGNORECASE,
)
_QUARTER_LAST = re.compile(
    r"(?:fy\s*)?(?P<fy>\d{4}\s*[/-]\s*\d{2,4})[\s,\-]*(?:q|qtr|quarter)\s*(?P<q>\d)",
    re.IGNORECASE,
)
# "2024-25 end of year", "2024/25 outturn", "FY 2024/25", "2024/25 annual"
_YEAR_WORDS = re.compile(
    r"(?:fy\s*)?(?P<fy>\d{4}\s*[/-]\s*\d{2,4})\s*"
    r"(?:end of year|year end|outturn|annual|full year)?",
    re.IGNORECASE,
)
_ISO_DATE = re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?:[ T][\d:.]+)?")
_UK_DATE = re.compile(r"(?P<d>\d{1,2})[/.](?P<m>\d{1,2})[/.](?P<y>\d{4})(?: [\d:.]+)?")
_NOT_RECORDED = {"", "-", "n/a", "na", "n.a.", "not recorded", "no data", "null", "none", ".."}
_ACCEPTED = (
    'write a financial year ("2024/25", "2024-25"), a quarter ("Q1 2024/25"), a month '
    '("Apr 2024", "2024-04") or a date ("30/06/2024", "2024-06-30")'
)


class ExportValueError(M365PerfError, ValueError):
    """A cell of an export (a period or a value) that cannot be read as one."""


def read_period(cell: object, frequency: Frequency | None = None) -> Period:
    """The period a cell names; ``frequency`` (the indicator's, if known) places a date.

    An explicit label must be of that frequency when it is given: "2024/25" for a
    quarterly indicator is an error, not a guess.
    """
    period = _period(cell, frequency)
    if frequency is not None and period.frequency is not Frequency(frequency):
        example = Period.containing(Frequency(frequency), period.start).label
        raise ExportValueError(
            f"{_show(cell)} is {_a(period.frequency.value)} period, but the indicator is reported "
            f"{Frequency(frequency).value} (e.g. {example!r})"
        )
    return period


def _period(cell: object, frequency: Frequency | None) -> Period:
    if isinstance(cell, datetime | date):
        day = cell.date() if isinstance(cell, datetime) else cell
        return Period.containing(frequency or Frequency.MONTHLY, day)
    if cell is None:
        raise ExportValueError(f"no period: {_ACCEPTED}")
    if not isinstance(cell, str):
        raise ExportValueError(f"cannot read period {_show(cell)}: {_ACCEPTED}")
    text = " ".join(cell.split())
    if not text:
        raise ExportValueError(f"the period is blank: {_ACCEPTED}")
    dated = _date(text)
    if dated is not None:
        return Period.containing(frequency or Frequency.MONTHLY, dated)
    for pattern in (_QUARTER_FIRST, _QUARTER_LAST):
        found = pattern.fullmatch(text)
        if found is not None:
            return _parsed(f"{found['fy']} Q{found['q']}", cell)
    month = _MONTH_NAME.fullmatch(text)
    if month is not None and month["month"].lower() in _MONTHS:
        year = int(month["year"])
        year = year + 2000 if year < 100 else year
        return _parsed(f"{year:04d}-{_MONTHS[month['month'].lower()]:02d}", cell)
    year_words = _YEAR_WORDS.fullmatch(text)
    if year_words is not None:
        return _parsed(year_words["fy"], cell)
    return _parsed(text, cell)


def _date(text: str) -> date | None:
    for pattern in (_ISO_DATE, _UK_DATE):
        found = pattern.fullmatch(text)
        if found is not None:
            try:
                return date(int(found["y"]), int(found["m"]), int(found["d"]))
            except ValueError:
                raise ExportValueError(f"{text!r} is not a real date") from None
    return None


def _parsed(label: str, cell: object) -> Period:
    try:
        return Period.parse(label)
    except PeriodError:
        raise ExportValueError(f"cannot read period {_show(cell)}: {_ACCEPTED}") from None


def read_number(cell: object) -> float | None:
    """A figure as exports write it ("1,234", "85%", "£12.50"); None when not recorded.

    Blank, "-", "N/A" and the like mean no value was recorded for the period; anything
    else that is not a finite number is an error.
    """
    if isinstance(cell, bool):
        raise ExportValueError(f"{cell!r} is not a number")
    if isinstance(cell, int | float):
        if not math.isfinite(cell):
            raise ExportValueError(f"{cell!r} is not a finite number")
        return float(cell)
    if cell is None:
        return None
    if not isinstance(cell, str):
        raise ExportValueError(f"{_show(cell)} is not a number")
    text = cell.strip()
    if text.lower() in _NOT_RECORDED:
        return None
    cleaned = text.replace(",", "").replace("£", "").replace("$", "").strip()
    if cleaned.endswith("%"):
        cleaned = cleaned[:-1].strip()
    try:
        number = float(cleaned)
    except ValueError:
        raise ExportValueError(f"{text!r} is not a number") from None
    if not math.isfinite(number):
        raise ExportValueError(f"{text!r} is not a finite number")
    return number


def _show(cell: object) -> str:
    return repr(cell) if isinstance(cell, str) else repr(str(cell))


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"
