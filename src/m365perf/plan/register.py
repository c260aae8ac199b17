"""Register rows read as indicators, through the flow's field map.

A bad row is reported with its reason and the rest go on: one missing owner must not
stop a cycle for two hundred other indicators. A row is bad when anything later would
trip over it (an id a card input or a SharePoint key cannot carry, a field that does
not parse), so every row that passes here can be asked for. A file that cannot be read
at all is :class:`UnreadableCsv`: no rows, rather than rows of garbage.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from m365perf.csvfiles import UnreadableCsv, UnreadableRow, read_table
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


def read_csv(path: Path | str, *, required: Iterable[str] = ()) -> list[dict[str, str]]:
    """Rows of a CSV export (read by :mod:`m365perf.csvfiles`, whatever its encoding).

    A line that cannot be parsed is an :class:`UnreadableRow` in its place (reported
    with the register's problem rows). Raises :class:`UnreadableCsv`, naming the file,
    when it cannot be read, is not text, has no header, or lacks a ``required`` column.
    """
    return read_csv_table(path, required=required)[1]


def read_csv_table(
    path: Path | str, *, required: Iterable[str] = ()
) -> tuple[list[str], list[dict[str, str]]]:
    """The header row and the rows of a CSV export, as :func:`read_csv` reads them."""
    table = read_table(path)
    header = table.header
    missing = [column for column in dict.fromkeys(required) if column not in header]
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        found = ", ".join(f"'{h}'" for h in header[:20]) + (", …" if len(header) > 20 else "")
        raise UnreadableCsv(f"{table.path}: has no column {names}; its columns are {found}")
    return [h for h in header if h], table.records()


def register_required_columns(flow: Flow) -> list[str]:
    """The columns without which no row could be read; other mapped columns may be absent.

    They are the id, owner and unit columns, the filter's and the approver steps'.
    """
    columns = [flow.source.column_for(f) for f in ("id", "owner", "unit")]
    columns += list(flow.source.filter)
    columns += [s.approver.column for s in flow.approval.steps if s.approver.column]
    return [c for c in dict.fromkeys(columns) if c]


def read_register_csv(path: Path | str, flow: Flow | None = None) -> list[dict[str, str]]:
    """Read a register exported as CSV; with ``flow``, check it has the columns it needs."""
    return read_csv(path, required=register_required_columns(flow) if flow else ())


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
    """The register rows the flow's filter selects (never a row that could not be read)."""
    return [
        row
        for row in rows
        if not isinstance(row, UnreadableRow) and _matches(row, flow.source.filter)
    ]


#: Ids go into card input ids (``value__{id}``), card data and SharePoint key columns
#: (255 characters of single-line text): the cards accept at most this many, no spaces.
MAX_ID_LENGTH = 200
#: SharePoint's Title (single line of text) holds 255 characters; the write-back sets it.
MAX_NAME_LENGTH = 255
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # control, format, separators


def shown(text: str) -> str:
    """Text safe to print or mail: invisible and control characters as ``\\uXXXX``."""
    return "".join(
        f"\\u{ord(ch):04X}" if unicodedata.category(ch) in _INVISIBLE else ch for ch in text
    )


def id_problem(ident: str) -> str | None:
    """Why an indicator id cannot be carried through cards, the store and SharePoint."""
    bad = next((ch for ch in ident if unicodedata.category(ch) in _INVISIBLE), None)
    if bad is not None:
        return (
            f"indicator id '{shown(ident)}' contains an invisible or control character "
            f"(U+{ord(bad):04X}); retype the id"
        )
    if re.search(r"\s", ident):
        return (
            f"indicator id '{ident}' contains a space; ids are used in card inputs and "
            "SharePoint keys, so use e.g. '-' instead"
        )
    if len(ident) > MAX_ID_LENGTH:
        return f"indicator id is {len(ident)} characters long; at most {MAX_ID_LENGTH} fit"
    return None


def _id_key(ident: str) -> str:
    """SharePoint filters and Power BI keys ignore case: 'cp001' and 'CP001' are one id."""
    return unicodedata.normalize("NFKC", ident).casefold()


def read_indicators(flow: Flow, rows: Sequence[Row]) -> tuple[list[Indicator], list[RowProblem]]:
    """Apply the field map to the flow's due rows; report the rows that do not parse."""
    indicators: list[Indicator] = []
    problems: list[RowProblem] = []
    columns = {f: flow.source.column_for(f) for f in ("id", "name", "unit", "owner")}

    def get(row: Row, name: str) -> str:
        return _field(flow, row, name)

    for row in rows:
        if isinstance(row, UnreadableRow):
            problems.append(
                RowProblem(f"line {row.line}", "(row not read)", f"{row}; fix it in the register")
            )
    due = due_rows(flow, rows)
    copies = Counter(_id_key(get(row, "id")) for row in due if get(row, "id"))
    for number, row in enumerate(due, start=1):
        ident = get(row, "id") or f"row {number}"
        name = get(row, "name") or "(no name)"

        def problem(reason: str, ident: str = ident, name: str = name) -> None:
            problems.append(RowProblem(shown(ident), shown(name), reason))

        if not get(row, "id"):
            problem(f"no indicator id in column '{columns['id']}'")
            continue
        bad_id = id_problem(ident)
        if bad_id is not None:
            problem(bad_id)
            continue
        if copies[_id_key(ident)] > 1:
            problem(
                f"indicator id '{ident}' is on {copies[_id_key(ident)]} rows of the register "
                "(ids that differ only in case count as one); keep it on one row"
            )
            continue
        garbled = next((column for column, value in row.items() if "\x00" in value), None)
        if garbled is not None:
            problem(f"column '{garbled}' contains a NUL character; retype it")
            continue
        if len(name) > MAX_NAME_LENGTH:
            problem(
                f"name in column '{columns['name']}' is {len(name)} characters long; "
                f"SharePoint holds at most {MAX_NAME_LENGTH}"
            )
            continue
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
