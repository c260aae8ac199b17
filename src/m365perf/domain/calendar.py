"""Working days: weekends, UK bank holidays and the council's own closure days.

Due dates and reminders count working days, so "due 5 working days after the
period ends" must skip Christmas, its substitute days and any days the council
shuts. Bank holidays come from the ``holidays`` package (its data ships in the
package: no network), by the nation's rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import holidays

from m365perf.domain.kinds import HolidayCalendar

__all__ = ["WorkingCalendar"]

# England and Wales share their bank holidays; the package files them under ENG (and
# WLS, with the same dates).
_SUBDIVISION = {
    HolidayCalendar.ENGLAND_AND_WALES: "ENG",
    HolidayCalendar.SCOTLAND: "SCT",
    HolidayCalendar.NORTHERN_IRELAND: "NIR",
}
_CLOSURE_NAME = "Council closure"
_ONE_DAY = timedelta(days=1)


class WorkingCalendar:
    """Answers "is this a working day?" for one UK nation plus local closure days.

    ``extra_closures`` are days the council is shut that are not bank holidays,
    such as the days between Christmas and New Year.
    """

    def __init__(
        self,
        region: HolidayCalendar = HolidayCalendar.ENGLAND_AND_WALES,
        extra_closures: Iterable[date] = (),
    ) -> None:
        try:
            self.region = HolidayCalendar(region)
        except ValueError:
            allowed = ", ".join(c.value for c in HolidayCalendar)
            raise ValueError(f"unknown holiday calendar {region!r}: use one of {allowed}") from None
        closures = frozenset(extra_closures)
        for day in closures:
            if not isinstance(day, date):
                raise TypeError(f"closure days must be dates, got {day!r}")
        self.extra_closures = closures
        # The holidays object fills in each year the first time a date in it is asked about.
        self._bank_holidays: Any = holidays.country_holidays("GB", subdiv=_SUBDIVISION[self.region])

    def __repr__(self) -> str:
        return (
            f"WorkingCalendar(region={self.region.value!r}, "
            f"extra_closures={sorted(self.extra_closures)!r})"
        )

    def holiday_name(self, d: date) -> str | None:
        """The bank holiday's name ("Boxing Day (observed)"), "Council closure", or None.

        Weekends are not holidays and give None.
        """
        name = self._bank_holidays.get(d)
        if name is not None:
            return str(name)
        if d in self.extra_closures:
            return _CLOSURE_NAME
        return None

    def is_working_day(self, d: date) -> bool:
        """Monday to Friday, not a bank holiday and not a council closure day."""
        return d.weekday() < 5 and d not in self._bank_holidays and d not in self.extra_closures

    def next_working_day(self, d: date) -> date:
        """``d`` itself if it is a working day, otherwise the first working day after it."""
        while not self.is_working_day(d):
            d += _ONE_DAY
        return d

    def add_working_days(self, d: date, n: int) -> date:
        """The ``n``-th working day after ``d`` (before it when ``n`` is negative).

        ``d`` itself is never counted, so adding 1 to a Friday gives the Monday
        (or the Tuesday after a bank-holiday Monday). ``n = 0`` gives
        ``next_working_day(d)``.
        """
        if n == 0:
            return self.next_working_day(d)
        step = _ONE_DAY if n > 0 else -_ONE_DAY
        remaining = abs(n)
        while remaining:
            d += step
            if self.is_working_day(d):
                remaining -= 1
        return d

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end``.

        When ``end`` is before ``start`` the answer is negative: minus the working
        days from ``end`` up to but not including ``start``. Either way
        ``working_days_between(d, add_working_days(d, n)) == n`` for any n other than 0,
        so "how many working days late is this?" and "when is it due?" agree.
        """
        if end < start:
            return -self._count(end, start - _ONE_DAY)
        return self._count(start + _ONE_DAY, end)

    def _count(self, first: date, last: date) -> int:
        """Working days from ``first`` to ``last`` inclusive."""
        count = 0
        d = first
        while d <= last:
            if self.is_working_day(d):
                count += 1
            d += _ONE_DAY
        return count
