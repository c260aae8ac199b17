"""Reporting periods on the UK financial year (April to March).

A council reports "2026/27 Q2" (July–September 2026) or "2026-10" (October 2026);
both are positions in the financial year that starts on 1 April 2026. Keeping the
financial year and the index as the stored fields makes "previous period", "same
period last year" and year-end roll-over plain arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Self

from m365perf.domain.kinds import Frequency
from m365perf.errors import M365PerfError

__all__ = ["Period", "PeriodError"]

_FIRST_MONTH = 4  # April
_PERIODS_PER_YEAR = {Frequency.MONTHLY: 12, Frequency.QUARTERLY: 4, Frequency.ANNUAL: 1}
_MONTHS_PER_PERIOD = {Frequency.MONTHLY: 1, Frequency.QUARTERLY: 3, Frequency.ANNUAL: 12}
_MIN_YEAR = 1900
_MAX_YEAR = 9998  # the financial year must end within what datetime.date can hold

_ACCEPTED = (
    'write "2026-10" for a month (October 2026), "2026/27 Q2" for a quarter '
    '(July–September 2026) or "2026/27" for a financial year'
)

# Calendar month: "2026-10", "2026-1".
_MONTH_RE = re.compile(r"(?P<year>\d{4})-(?P<month>\d{1,2})")
# Financial year, optionally with a quarter: "2026/27", "2026/2027 Q2", "2026-27 q2", "2026/27Q2".
_FY_RE = re.compile(
    r"(?:fy\s*)?(?P<start>\d{4})\s*[/-]\s*(?P<end>\d{2}|\d{4})(?:\s*q(?P<quarter>\d+))?",
    re.IGNORECASE,
)


class PeriodError(M365PerfError, ValueError):
    """A period label or value that does not name a real reporting period."""


@dataclass(frozen=True, order=True)
class Period:
    """One reporting period: a month, quarter or whole year of a UK financial year.

    ``fy_start_year`` is the calendar year in which the financial year starts
    (2026 means 2026/27). ``index`` counts from 1 within that year: months from
    April (1) to March (12), quarters Q1 (April–June) to Q4 (January–March), and
    1 for the whole year. Ordering is only meaningful between periods of the same
    frequency; compare ``start`` dates across frequencies.
    """

    frequency: Frequency
    fy_start_year: int
    index: int

    def __post_init__(self) -> None:
        try:
            frequency = Frequency(self.frequency)
        except ValueError:
            allowed = ", ".join(f.value for f in Frequency)
            raise PeriodError(
                f"unknown frequency {self.frequency!r}: use one of {allowed}"
            ) from None
        object.__setattr__(self, "frequency", frequency)
        if isinstance(self.fy_start_year, bool) or not isinstance(self.fy_start_year, int):
            raise PeriodError(f"financial year must be a whole year, got {self.fy_start_year!r}")
        if not _MIN_YEAR <= self.fy_start_year <= _MAX_YEAR:
            raise PeriodError(
                f"financial year {self.fy_start_year} is out of range ({_MIN_YEAR} to {_MAX_YEAR})"
            )
        count = _PERIODS_PER_YEAR[frequency]
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise PeriodError(f"period index must be a whole number, got {self.index!r}")
        if not 1 <= self.index <= count:
            raise PeriodError(
                f"a {frequency.value} period index runs from 1 to {count}, got {self.index}"
            )

    # --- construction -------------------------------------------------------------

    @classmethod
    def parse(cls, label: str) -> Self:
        """Read a period label as people type it; raise PeriodError saying what works."""
        if not isinstance(label, str):
            raise PeriodError(f"a period label must be text, got {label!r}: {_ACCEPTED}")
        text = " ".join(label.split())
        if not text:
            raise PeriodError(f"the period is empty: {_ACCEPTED}")
        month = _MONTH_RE.fullmatch(text)
        if month is not None:
            year, month_number = int(month["year"]), int(month["month"])
            if 1 <= month_number <= 12:
                return cls._from_calendar_month(year, month_number, label)
            # "2026-27" reads as a financial year (months stop at 12); anything
            # else, such as "2026-13", is a mistake.
            if len(month["month"]) != 2 or month_number != (year + 1) % 100:
                raise PeriodError(
                    f"cannot read period {label!r}: months run from 01 to 12; {_ACCEPTED}"
                )
        fy = _FY_RE.fullmatch(text)
        if fy is None:
            raise PeriodError(f"cannot read period {label!r}: {_ACCEPTED}")
        start = int(fy["start"])
        end_text = fy["end"]
        expected_end = start + 1
        end_ok = (
            int(end_text) == expected_end
            if len(end_text) == 4
            else int(end_text) == expected_end % 100
        )
        if not end_ok:
            raise PeriodError(
                f"cannot read period {label!r}: a financial year runs April to March, so "
                f'{start} is followed by {expected_end % 100:02d} ("{start}/'
                f'{expected_end % 100:02d}"); {_ACCEPTED}'
            )
        if fy["quarter"] is None:
            return cls._checked(Frequency.ANNUAL, start, 1, label)
        quarter = int(fy["quarter"])
        if not 1 <= quarter <= 4:
            raise PeriodError(f"cannot read period {label!r}: quarters run Q1 to Q4; {_ACCEPTED}")
        return cls._checked(Frequency.QUARTERLY, start, quarter, label)

    @classmethod
    def parse_for(cls, frequency: Frequency, label: str) -> Self:
        """Parse a label and insist it is of the flow's frequency."""
        period = cls.parse(label)
        wanted = Frequency(frequency)
        if period.frequency is not wanted:
            example = cls.containing(wanted, period.start).label
            raise PeriodError(
                f"{label!r} is a {period.frequency.value} period, but this flow reports "
                f"{wanted.value}: use a label like {example!r}"
            )
        return period

    @classmethod
    def containing(cls, frequency: Frequency, day: date) -> Self:
        """The period of this frequency that ``day`` falls in."""
        wanted = Frequency(frequency)
        fy_start_year = day.year if day.month >= _FIRST_MONTH else day.year - 1
        month_index = (day.month - _FIRST_MONTH) % 12  # 0 = April
        index = month_index // _MONTHS_PER_PERIOD[wanted] + 1
        return cls(wanted, fy_start_year, index)

    @classmethod
    def _from_calendar_month(cls, year: int, month: int, label: str) -> Self:
        fy_start_year = year if month >= _FIRST_MONTH else year - 1
        return cls._checked(
            Frequency.MONTHLY, fy_start_year, (month - _FIRST_MONTH) % 12 + 1, label
        )

    @classmethod
    def _checked(cls, frequency: Frequency, fy_start_year: int, index: int, label: str) -> Self:
        try:
            return cls(frequency, fy_start_year, index)
        except PeriodError as exc:
            raise PeriodError(f"cannot read period {label!r}: {exc}") from None

    # --- what it covers ----------------------------------------------------------

    @property
    def start(self) -> date:
        """First day of the period."""
        return _month_start(self.fy_start_year, self._months_after_april)

    @property
    def end(self) -> date:
        """Last day of the period (inclusive)."""
        following = self._months_after_april + _MONTHS_PER_PERIOD[self.frequency]
        return _month_start(self.fy_start_year, following) - timedelta(days=1)

    @property
    def _months_after_april(self) -> int:
        return (self.index - 1) * _MONTHS_PER_PERIOD[self.frequency]

    def contains(self, day: date) -> bool:
        """Whether ``day`` falls within this period."""
        return self.start <= day <= self.end

    # --- neighbours ------------------------------------------------------------

    def next(self) -> Period:
        """The period straight after this one (March rolls into April of the next year)."""
        if self.index == _PERIODS_PER_YEAR[self.frequency]:
            return Period(self.frequency, self.fy_start_year + 1, 1)
        return Period(self.frequency, self.fy_start_year, self.index + 1)

    def previous(self) -> Period:
        """The period straight before this one (April rolls back to March)."""
        if self.index == 1:
            return Period(self.frequency, self.fy_start_year - 1, _PERIODS_PER_YEAR[self.frequency])
        return Period(self.frequency, self.fy_start_year, self.index - 1)

    def same_period_last_year(self) -> Period:
        """The same month, quarter or year one financial year earlier."""
        return Period(self.frequency, self.fy_start_year - 1, self.index)

    # --- labels ------------------------------------------------------------------

    @property
    def fy_label(self) -> str:
        """The financial year as councils write it, e.g. "2026/27"."""
        return f"{self.fy_start_year}/{(self.fy_start_year + 1) % 100:02d}"

    @property
    def label(self) -> str:
        """Canonical label: "2026-10", "2026/27 Q2" or "2026/27"; ``parse`` reads it back."""
        if self.frequency is Frequency.MONTHLY:
            start = self.start
            return f"{start.year:04d}-{start.month:02d}"
        if self.frequency is Frequency.QUARTERLY:
            return f"{self.fy_label} Q{self.index}"
        return self.fy_label

    def __str__(self) -> str:
        return self.label


def _month_start(fy_start_year: int, months_after_april: int) -> date:
    month0 = _FIRST_MONTH - 1 + months_after_april
    return date(fy_start_year + month0 // 12, month0 % 12 + 1, 1)
