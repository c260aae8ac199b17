"""The small vocabularies every layer shares: frequency, unit, polarity, RAG."""

from __future__ import annotations

from enum import StrEnum


class Frequency(StrEnum):
    """How often an indicator is reported, on the UK financial year (April to March)."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUAL = "annual"


class Unit(StrEnum):
    """What kind of number an indicator's value is."""

    COUNT = "count"
    PERCENTAGE = "percentage"
    CURRENCY = "currency"
    DAYS = "days"
    RATIO = "ratio"


class Polarity(StrEnum):
    """Which way is better for an indicator."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"
    NONE = "none"


class Rag(StrEnum):
    """Red / amber / green against target; ``none`` when there is no target or RAG is off."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    NONE = "none"


class HolidayCalendar(StrEnum):
    """Which UK bank-holiday calendar a flow counts working days by."""

    ENGLAND_AND_WALES = "england_and_wales"
    SCOTLAND = "scotland"
    NORTHERN_IRELAND = "northern_ireland"
