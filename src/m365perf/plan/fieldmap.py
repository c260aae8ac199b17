"""The flow's field map checked against the register's columns, before a row is read.

A register column misspelt in a flow file is otherwise silent: a wrong target column
switches RAG off for the whole flow, a wrong filter column selects no row, a wrong
approver column leaves every return without that approver. This is pure: given the
flow and the columns the register has (their names, and their SharePoint types and
indexes when known), it lists the problems; ``plan``, ``cycle open``, the service and
``doctor`` all ask it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Literal, Protocol

from m365perf.domain.kinds import Polarity
from m365perf.domain.values import polarity_from_text
from m365perf.errors import M365PerfError
from m365perf.flows.model import Flow
from m365perf.plan.register import Row, due_rows, parse_target

Severity = Literal["error", "warning"]
Loc = tuple[str | int, ...]

#: Filter values SharePointRegister applies itself (yes/no columns are booleans there).
_BOOLEAN_WORDS = frozenset({"yes", "no", "true", "false", "y", "n", "1", "0"})


def applied_locally(value: str) -> bool:
    """A filter value m365perf applies itself (yes/no), so its column needs no index."""
    return value.strip().lower() in _BOOLEAN_WORDS


#: SharePoint column types each indicator field reads correctly; others mis-read.
_TEXTUAL = frozenset({"text", "choice"})
_ALLOWED_TYPES: dict[str, frozenset[str]] = {
    "id": _TEXTUAL | {"number"},
    "target": _TEXTUAL | {"number"},
    "tolerance": _TEXTUAL | {"number"},
    "minimum": _TEXTUAL | {"number"},
    "maximum": _TEXTUAL | {"number"},
    "active": _TEXTUAL | {"boolean"},
    "filter": _TEXTUAL | {"boolean", "number"},
}
#: Fields whose blank is an ordinary default (periodic, even profile, no comparator...).
_OPTIONAL_FIELDS = frozenset(
    {"kind", "profile", "target_from", "comparator", "tolerance", "minimum", "maximum"}
)
#: What goes wrong for the whole flow when the column of a field is not there.
_CONSEQUENCE = {
    "id": "no row could be read",
    "name": "every indicator would be nameless",
    "unit": "no row could be read",
    "owner": "no return could be sent to anyone",
    "target": "no indicator would have a target, so RAG would be off for the whole flow",
    "polarity": "no target could be judged, so RAG would be off for the whole flow",
    "tolerance": "every indicator would use the flow's default tolerance",
    "target_from": "every target would apply to every period",
}


@dataclass(frozen=True)
class RegisterColumn:
    """A column of the register: its name as rows carry it, and what SharePoint says of it.

    ``type`` is the SharePoint column kind (text, number, boolean, choice, dateTime,
    personOrGroup, lookup, ...) and ``indexed`` its index flag; None when unknown (a CSV).
    """

    name: str
    type: str | None = None
    indexed: bool | None = None
    display_name: str | None = None


class _Definition(Protocol):
    """A column as Graph describes it (``m365perf.m365.graph.ColumnDefinition``)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def indexed(self) -> bool: ...
    @property
    def display_name(self) -> str: ...
    @property
    def hidden(self) -> bool: ...


def columns_from_definitions(definitions: Iterable[_Definition]) -> list[RegisterColumn]:
    """A SharePoint list's visible columns, with their kinds and indexes, as the check needs."""
    return [
        RegisterColumn(d.name, d.type or None, d.indexed, d.display_name or None)
        for d in definitions
        if not d.hidden
    ]


@dataclass(frozen=True)
class FieldMapProblem:
    """One column the flow names that the register lacks or cannot serve, and the fix."""

    severity: Severity
    loc: Loc
    message: str
    fix: str = ""
    kind: Literal["missing", "type", "index", "empty", "polarity"] = "missing"

    @property
    def where(self) -> str:
        """The flow-file key at fault, dotted (``register.fields.Targt``)."""
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        return text


class FieldMapError(M365PerfError):
    """The flow names register columns the register does not have; ``problems`` says which."""

    def __init__(self, flow: Flow, problems: Sequence[FieldMapProblem], lines: Sequence[str]):
        self.flow = flow
        self.problems = tuple(problems)
        self.lines = tuple(lines)
        super().__init__("\n".join(lines))


def _as_columns(columns: Iterable[str | RegisterColumn]) -> list[RegisterColumn]:
    return [c if isinstance(c, RegisterColumn) else RegisterColumn(c) for c in columns]


def _did_you_mean(name: str, columns: Sequence[RegisterColumn]) -> str:
    """' (did you mean 'Target'?)' — by case, display name, then spelling."""
    for column in columns:
        if column.name.lower() == name.lower():
            return f" (did you mean '{column.name}'?)"
    for column in columns:
        if column.display_name and column.display_name.lower() == name.lower():
            return (
                f" (did you mean '{column.name}'? '{column.display_name}' is its display "
                "name; the flow needs the internal name)"
            )
    close = get_close_matches(name, [c.name for c in columns], n=1, cutoff=0.6)
    if not close:
        display = {c.display_name: c.name for c in columns if c.display_name}
        near = get_close_matches(name, list(display), n=1, cutoff=0.6)
        close = [display[near[0]]] if near else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def _missing_fix(flow: Flow, columns: Sequence[RegisterColumn]) -> str:
    names = ", ".join(c.name for c in columns[:30]) + (", …" if len(columns) > 30 else "")
    return (
        f"correct the column name in the flow file, or add the column to "
        f"'{flow.source.list_title}'; its columns are: {names}"
    )


def check_field_map(
    flow: Flow,
    columns: Iterable[str | RegisterColumn],
    *,
    rows: Sequence[Row] | None = None,
    check_indexes: bool = False,
) -> list[FieldMapProblem]:
    """Every problem between the flow's register settings and the register's columns.

    Errors: a field-map, filter or approver column the register lacks (with a
    did-you-mean), a column of a type its field cannot read, and (``check_indexes``)
    a filter column SharePoint would refuse to filter on. Warnings, when ``rows`` are
    given: a mapped column empty on every due row, and targets with no polarity.
    """
    have = _as_columns(columns)
    by_name = {c.name: c for c in have}
    problems: list[FieldMapProblem] = []

    def missing(loc: Loc, what: str, consequence: str, name: str) -> None:
        problems.append(
            FieldMapProblem(
                "error",
                loc,
                f"column '{name}' ({what}) is not in the register "
                f"'{flow.source.list_title}'{_did_you_mean(name, have)}; {consequence}",
                _missing_fix(flow, have),
            )
        )

    def wrong_type(loc: Loc, what: str, column: RegisterColumn, allowed: frozenset[str]) -> None:
        if column.type is None or column.type in allowed:
            return
        reads = "a person's lookup id, not an e-mail" if column.type == "personOrGroup" else ""
        problems.append(
            FieldMapProblem(
                "error",
                loc,
                f"{what} '{column.name}' is a {column.type} column"
                + (f", which reads as {reads}" if reads else "")
                + f"; it must be {' or '.join(sorted(allowed))}",
                f"change '{column.name}' to a single line of text (or add a text column "
                "and map that)",
                "type",
            )
        )

    for name, field in flow.source.fields.items():
        loc: Loc = ("register", "fields", name)
        column = by_name.get(name)
        if column is None:
            consequence = _CONSEQUENCE.get(field, f"the {field} of every indicator would be empty")
            missing(loc, f"mapped to {field}", consequence, name)
        else:
            wrong_type(loc, f"column for {field}", column, _ALLOWED_TYPES.get(field, _TEXTUAL))
    for name, value in flow.source.filter.items():
        loc = ("register", "filter", name)
        column = by_name.get(name)
        if column is None:
            missing(loc, "a filter", "no row would match, so no indicator would be due", name)
            continue
        wrong_type(loc, "filter column", column, _ALLOWED_TYPES["filter"])
        server_side = not applied_locally(value)
        if check_indexes and server_side and column.indexed is False:
            problems.append(
                FieldMapProblem(
                    "error",
                    loc,
                    f"filter column '{name}' is not indexed; SharePoint refuses a filter on "
                    "an unindexed column once the list holds more than 5,000 items",
                    f"index it: list settings → Indexed columns → Create a new index → {name}",
                    "index",
                )
            )
    for index, step in enumerate(flow.approval.steps):
        approver = step.approver.column
        if approver is None:
            continue
        loc = ("approval", "steps", index, "approver", "column")
        column = by_name.get(approver)
        if column is None:
            missing(
                loc,
                f"approver of step '{step.name}'",
                "no return would have an approver for this step",
                approver,
            )
        else:
            wrong_type(loc, f"approver column of step '{step.name}'", column, _TEXTUAL)
    if rows is not None:
        problems += _empty_and_unjudged(flow, by_name, rows)
    return problems


def _empty_and_unjudged(
    flow: Flow, by_name: dict[str, RegisterColumn], rows: Sequence[Row]
) -> list[FieldMapProblem]:
    due = due_rows(flow, rows)
    if not due:
        return []
    warnings: list[FieldMapProblem] = []
    mapped: list[tuple[Loc, str, str]] = [
        (("register", "fields", name), name, field) for name, field in flow.source.fields.items()
    ]
    for i, step in enumerate(flow.approval.steps):
        if step.approver.column:
            loc: Loc = ("approval", "steps", i, "approver", "column")
            mapped.append((loc, step.approver.column, "approver"))
    for loc, name, field in mapped:
        if name not in by_name or field in _OPTIONAL_FIELDS:
            continue  # already an error, or blank is an ordinary default
        if all(not (row.get(name) or "").strip() for row in due):
            consequence = _CONSEQUENCE.get(field, f"no indicator has a {field}")
            warnings.append(
                FieldMapProblem(
                    "warning",
                    loc,
                    f"column '{name}' ({field}) is empty on all {len(due)} due row(s); "
                    f"{consequence}",
                    f"fill in '{name}' in the register, or map the column that holds it",
                    "empty",
                )
            )
    target_column = flow.source.column_for("target")
    polarity_column = flow.source.column_for("polarity")
    if target_column is None or target_column not in by_name:
        return warnings
    unjudged: list[str] = []
    id_column = flow.source.column_for("id") or ""
    for row in due:
        try:
            target = parse_target(row.get(target_column, ""))
        except ValueError:
            continue  # the row is reported as a bad target
        if target is None:
            continue
        text = (row.get(polarity_column, "") if polarity_column else "").strip()
        if not text or polarity_from_text(text) == Polarity.NONE:
            unjudged.append(row.get(id_column, "").strip() or "(no id)")
    if unjudged:
        shown = ", ".join(unjudged[:10]) + (
            f" and {len(unjudged) - 10} more" if len(unjudged) > 10 else ""
        )
        where: Loc = (
            ("register", "fields", polarity_column) if polarity_column else ("register", "fields")
        )
        warnings.append(
            FieldMapProblem(
                "warning",
                where,
                f"{len(unjudged)} indicator(s) have a target but no polarity to judge it by, "
                f"so they get no RAG: {shown}",
                "set higher_is_better or lower_is_better in "
                + (
                    f"'{polarity_column}'"
                    if polarity_column
                    else "a polarity column mapped to polarity"
                ),
                "polarity",
            )
        )
    return warnings


def errors(problems: Iterable[FieldMapProblem]) -> list[FieldMapProblem]:
    """Only the problems that stop a cycle."""
    return [p for p in problems if p.severity == "error"]


def problem_lines(flow: Flow, problems: Iterable[FieldMapProblem]) -> list[str]:
    """Each problem as ``file:line:col: where: message`` (and its fix on the next line)."""
    from m365perf.flows.loader import key_position

    lines: list[str] = []
    for problem in problems:
        if flow.file:
            line, col = key_position(flow.file, problem.loc)
            place = f"{flow.file}:{line}:{col}"
        else:
            place = f"flow {flow.id}"
        label = "warning: " if problem.severity == "warning" else ""
        lines.append(f"{place}: {label}{problem.where}: {problem.message}")
        if problem.fix:
            lines.append(f"  fix: {problem.fix}")
    return lines


def raise_on_errors(flow: Flow, problems: Iterable[FieldMapProblem]) -> None:
    """Raise :class:`FieldMapError` when any problem is an error; warnings pass."""
    found = errors(problems)
    if found:
        raise FieldMapError(flow, found, problem_lines(flow, found))
