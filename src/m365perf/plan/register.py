"""Register rows read as indicators, through the flow's field map.

A bad row is reported with its reason and the rest go on: one missing owner must not
stop a cycle for two hundred other indicators.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from m365perf.domain.kinds import Frequency, Polarity, Unit
from m365perf.domain.periods import Period, PeriodError
from m365perf.domain.profiling import IndicatorKind, profile_target
from m365perf.domain.rag import Target, Tolerance
from m365perf.domain.values import polarity_from_text, unit_from_text
from m365perf.flows.model import Flow

Row = Mapping[str, str]


@dataclass(frozen=True)
class Indicator:
    """An indicator as the flow sees it: register fields, parsed, plus the raw row."""

    id: str
    name: str
    unit: Unit
    polarity: Polarity
    owner: str
    frequency: Frequency
    targets: tuple[Target, ...]
    comparator: str | None
    service: str | None
    row: Mapping[str, str] = field(repr=False)
    kind: IndicatorKind = IndicatorKind.PERIODIC
    profile: tuple[float, ...] | None = None

    def target_for(self, period: Period) -> Target | None:
        from m365perf.domain.rag import target_for

        return target_for(self.targets, period)


@dataclass(frozen=True)
class RowProblem:
    """A register row the flow cannot route, and why."""

    indicator_id: str
    name: str
    reason: str


def read_register_csv(path: Path | str) -> list[dict[str, str]]:
    """Read a register exported as CSV (UTF-8, with or without BOM; cp1252 as a fallback)."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    reader = csv.DictReader(text.splitlines())
    return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]


_YES = {"yes", "true", "y", "1"}
_NO = {"no", "false", "n", "0"}


def _same(have: str, want: str) -> bool:
    """Case-insensitive; yes/true/1 and no/false/0 match each other (SharePoint booleans)."""
    have, want = have.strip().lower(), want.strip().lower()
    if want in _YES:
        return have in _YES
    if want in _NO:
        return have in _NO
    return have == want


def _matches(row: Row, filters: Mapping[str, str]) -> bool:
    return all(_same(row.get(col, ""), want) for col, want in filters.items())


def _number(text: str) -> float:
    cleaned = text.replace(",", "").replace("£", "").replace("%", "").strip()
    return float(cleaned)


#: Target wordings that state an aim but no figure: RAG is off, direction still counts.
_AIMS = re.compile(
    r"^(to |none set|no target|n/?a$|better|worse|above or equal|below \(better|"
    r"maintain|sustainable$)",
    re.IGNORECASE,
)
_FIGURE = re.compile(
    r"^(?:<=?|>=?|less than or equal to|more than or equal to|less than|more than)?\s*"
    r"(-?[£]?[\d,]*\.?\d+)\s*%?\s*\+?$",
    re.IGNORECASE,
)


def parse_target(text: str) -> float | None:
    """A register target as a number; None for an aim without a figure ("To increase").

    "<89", ">62%", "97%+" and "£1,250" give their figure (the polarity says which way
    is better); anything else ("A&B = 100%", "Above Budget") is a bad target.
    """
    text = text.strip()
    if not text or _AIMS.match(text):
        return None
    match = _FIGURE.match(text)
    if match is None:
        raise ValueError(f"bad target '{text}': not a number")
    return _number(match.group(1))


def _tolerance(text: str) -> Tolerance | None:
    text = text.strip()
    if not text:
        return None
    if text.endswith("%"):
        return Tolerance("percent", _number(text))
    return Tolerance("absolute", _number(text))


def due_rows(flow: Flow, rows: Iterable[Row]) -> list[Row]:
    """The register rows the flow's filter selects."""
    return [row for row in rows if _matches(row, flow.source.filter)]


def read_indicators(flow: Flow, rows: Sequence[Row]) -> tuple[list[Indicator], list[RowProblem]]:
    """Apply the field map to the flow's due rows; report the rows that do not parse."""
    indicators: list[Indicator] = []
    problems: list[RowProblem] = []
    seen: set[str] = set()
    columns = {f: flow.source.column_for(f) for f in ("id", "name", "unit", "owner")}

    def get(row: Row, name: str) -> str:
        return _field(flow, row, name)

    for number, row in enumerate(due_rows(flow, rows), start=1):
        ident = get(row, "id") or f"row {number}"
        name = get(row, "name") or "(no name)"

        def problem(reason: str, ident: str = ident, name: str = name) -> None:
            problems.append(RowProblem(ident, name, reason))

        if not get(row, "id"):
            problem(f"no indicator id in column '{columns['id']}'")
            continue
        if ident in seen:
            problem(f"indicator id '{ident}' appears more than once in the register")
            continue
        seen.add(ident)
        owner = get(row, "owner")
        if not owner:
            problem(f"no owner in column '{columns['owner']}'")
            continue
        unit = unit_from_text(get(row, "unit"))
        if unit is None:
            problem(f"unknown unit '{get(row, 'unit')}' in column '{columns['unit']}'")
            continue
        polarity_text = get(row, "polarity")
        polarity = polarity_from_text(polarity_text) if polarity_text else Polarity.NONE
        if polarity is None:
            problem(f"unknown polarity '{polarity_text}'")
            continue
        try:
            targets = _targets(flow, row)
            kind, profile = kind_and_profile(flow, row)
        except (ValueError, PeriodError) as exc:
            problem(str(exc))
            continue
        indicators.append(
            Indicator(
                id=ident,
                name=name,
                unit=unit,
                polarity=polarity,
                owner=owner,
                frequency=flow.frequency,
                targets=targets,
                comparator=get(row, "comparator") or None,
                service=get(row, "service") or None,
                row=dict(row),
                kind=kind,
                profile=profile,
            )
        )
    return indicators, problems


def _field(flow: Flow, row: Row, name: str) -> str:
    column = flow.source.column_for(name)
    return row.get(column, "").strip() if column else ""


def _targets(flow: Flow, row: Row) -> tuple[Target, ...]:
    """The row's target, applying from the period the register names (or always)."""
    value = parse_target(_field(flow, row, "target"))
    if value is None:
        return ()
    tolerance_text = _field(flow, row, "tolerance")
    try:
        tolerance = _tolerance(tolerance_text)
    except ValueError:
        raise ValueError(
            f"bad tolerance '{tolerance_text}': use a number or a percentage"
        ) from None
    from_text = _field(flow, row, "target_from")
    try:
        applies_from = Period.parse(from_text) if from_text else Period(flow.frequency, 1900, 1)
    except PeriodError:
        raise ValueError(f"bad target start period '{from_text}'") from None
    return (Target(value, applies_from, tolerance),)


_CUMULATIVE_WORDS = {"cumulative", "ytd", "year to date", "year-to-date"}
_PERIODIC_WORDS = {"", "periodic", "discrete", "in period", "in-period"}


def kind_and_profile(flow: Flow, row: Row) -> tuple[IndicatorKind, tuple[float, ...] | None]:
    """Whether the indicator is year-to-date, and how its annual target is profiled.

    A profile is one fraction per period of the year ("0.1, 0.2, 0.3, 0.4" for
    quarters); without one the year is even.
    """
    text = _field(flow, row, "kind").lower()
    if text in _CUMULATIVE_WORDS:
        kind = IndicatorKind.CUMULATIVE
    elif text in _PERIODIC_WORDS:
        kind = IndicatorKind.PERIODIC
    else:
        raise ValueError(f"unknown kind '{text}': use periodic or cumulative (year to date)")
    profile_text = _field(flow, row, "profile")
    if not profile_text:
        return kind, None
    try:
        profile = tuple(float(part) for part in re.split(r"[;,\s]+", profile_text) if part)
        profile_target(1.0, Period(flow.frequency, 2000, 1), profile)
    except ValueError as exc:
        raise ValueError(f"bad profile '{profile_text}': {exc}") from None
    return kind, profile
