"""``m365perf provision``: make the lists a flow writes to, and say what the register lacks.

Idempotent by reading before writing: a list is created only when it is not there, a
column added only when missing, an index set only when off; a second run does nothing.
The register is the council's own list, so what it lacks is reported, never changed.
A column of the wrong kind is not changed either (that could lose values): it is a
problem the run cannot complete, for a person to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

from m365perf.flows.model import Flow
from m365perf.m365.errors import M365Error, NotFound, Unauthorized
from m365perf.m365.graph import ColumnDefinition, GraphClient
from m365perf.messages.outbox import split_site
from m365perf.plan.fieldmap import check_field_map, columns_from_definitions
from m365perf.tenant.lists import (
    ANY_TYPE,
    BUILTIN_COLUMNS,
    ColumnSpec,
    ListSpec,
    actions_list,
    history_list,
    results_list,
)

T = TypeVar("T")
ActionKind = Literal["create_list", "add_column", "index_column"]


@dataclass(frozen=True)
class Action:
    """One change to a list: made, or (on a dry run) what would be made."""

    kind: ActionKind
    list_title: str
    column: str | None = None
    columns: tuple[str, ...] = ()  # of a list created

    def describe(self) -> str:
        if self.kind == "create_list":
            return f"create list '{self.list_title}' with columns {', '.join(self.columns)}"
        if self.kind == "add_column":
            return f"add column '{self.column}' to '{self.list_title}'"
        return f"index column '{self.column}' of '{self.list_title}'"


@dataclass(frozen=True)
class Finding:
    """Something provision leaves to a person: what is wrong, and how to put it right."""

    list_title: str
    column: str
    problem: str
    fix: str

    def describe(self) -> str:
        where = (
            f"'{self.list_title}' column '{self.column}'" if self.column else f"'{self.list_title}'"
        )
        return f"{where}: {self.problem} — {self.fix}"


@dataclass
class ProvisionReport:
    """What one run did (or would do), and what it left for a person."""

    flow: str
    dry_run: bool
    actions: list[Action] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)  # lists it makes, not fixable
    register: list[Finding] = field(default_factory=list)  # the register: never changed
    error: str | None = None  # the run stopped here

    @property
    def complete(self) -> bool:
        """The flow's lists are as it needs them (or would be, after a dry run)."""
        return self.error is None and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "nothing_to_do": self.complete and not self.actions and not self.register,
            "actions": [{**asdict(a), "columns": list(a.columns)} for a in self.actions],
            "problems": [asdict(f) for f in self.problems],
            "register": [asdict(f) for f in self.register],
            "error": self.error,
        }


class _Stop(Exception):
    """The run cannot go on (no site, no permission); the message says why."""


def provision(graph: GraphClient, flow: Flow, *, dry_run: bool = False) -> ProvisionReport:
    """Create what the flow's results and history lists lack; check its register."""
    report = ProvisionReport(flow.id, dry_run)
    run = _Run(graph, report)
    specs = [results_list(flow), *filter(None, [history_list(flow), actions_list(flow)])]
    try:
        for spec in specs:
            run.ensure(spec)
        run.check_register(flow)
    except _Stop as exc:
        report.error = str(exc)
    return report


class _Run:
    def __init__(self, graph: GraphClient, report: ProvisionReport) -> None:
        self._graph = graph
        self._report = report
        self._sites: dict[str, str] = {}

    # -- the lists provision makes -------------------------------------------------------

    def ensure(self, spec: ListSpec) -> None:
        site_id = self._site(spec.site)
        list_id = self._list(site_id, spec.title)
        if list_id is None:
            self._create(site_id, spec)
            return
        existing = {c.name: c for c in self._columns(site_id, list_id, spec.title)}
        for wanted in spec.columns:
            have = existing.get(wanted.name)
            if have is None:
                self._add(site_id, list_id, spec.title, wanted)
                continue
            mismatch = _kind_mismatch(wanted, have)
            if mismatch is not None:
                self._report.problems.append(Finding(spec.title, wanted.name, *mismatch))
                continue
            if wanted.indexed and not have.indexed:
                self._index(site_id, list_id, spec.title, have)

    def _create(self, site_id: str, spec: ListSpec) -> None:
        creatable = [c for c in spec.columns if c.name not in BUILTIN_COLUMNS]
        action = Action("create_list", spec.title, columns=tuple(c.name for c in creatable))
        self._report.actions.append(action)
        if self._report.dry_run:
            return
        definitions = [_definition(c) for c in creatable]
        list_id = self._call(
            f"create list '{spec.title}'",
            lambda: self._graph.create_list(site_id, spec.title, definitions),
        )
        # Whether an index asked for at creation is kept is not documented: check, and set it.
        made = {c.name: c for c in self._columns(site_id, list_id, spec.title)}
        for wanted in spec.columns:
            have = made.get(wanted.name)
            if have is None:
                raise _Stop(f"list '{spec.title}' was created without column '{wanted.name}'")
            if wanted.indexed and not have.indexed:
                self._set_index(site_id, list_id, spec.title, have)

    def _add(self, site_id: str, list_id: str, title: str, column: ColumnSpec) -> None:
        self._report.actions.append(Action("add_column", title, column.name))
        if self._report.dry_run:
            return
        made = self._call(
            f"add column '{column.name}' to '{title}'",
            lambda: self._graph.create_column(site_id, list_id, _definition(column)),
        )
        if column.indexed and not made.indexed:
            self._set_index(site_id, list_id, title, made)

    def _index(self, site_id: str, list_id: str, title: str, column: ColumnDefinition) -> None:
        self._report.actions.append(Action("index_column", title, column.name))
        if not self._report.dry_run:
            self._set_index(site_id, list_id, title, column)

    def _set_index(self, site_id: str, list_id: str, title: str, column: ColumnDefinition) -> None:
        done = self._call(
            f"index column '{column.name}' of '{title}'",
            lambda: self._graph.set_column_indexed(site_id, list_id, column.id),
        )
        if not done.indexed:
            raise _Stop(f"column '{column.name}' of '{title}' is still not indexed")

    # -- the register: read, never changed -----------------------------------------------

    def check_register(self, flow: Flow) -> None:
        """Report what the register lacks, by the one field-map check plan and doctor use."""
        source = flow.source
        site_id = self._site(source.site)
        list_id = self._list(site_id, source.list_title)
        if list_id is None:
            raise _Stop(
                f"the register list '{source.list_title}' is not on {source.site}: "
                "check register.site and register.list in the flow"
            )
        columns = columns_from_definitions(self._columns(site_id, list_id, source.list_title))
        for problem in check_field_map(flow, columns, check_indexes=True):
            # The check's message names the column and what reads it.
            self._report.register.append(
                Finding(source.list_title, "", problem.message, problem.fix)
            )

    # -- reads and calls -----------------------------------------------------------------

    def _site(self, site: str) -> str:
        if site not in self._sites:
            try:
                host, path = split_site(site)
            except ValueError as exc:
                raise _Stop(str(exc)) from None
            try:
                self._sites[site] = self._graph.get_site_id(host, path)
            except NotFound:
                raise _Stop(f"no SharePoint site {site}: check the flow's site") from None
            except M365Error as exc:
                raise _Stop(_why(f"find site {site}", exc)) from None
        return self._sites[site]

    def _list(self, site_id: str, title: str) -> str | None:
        try:
            return self._graph.get_list_id(site_id, title)
        except NotFound:
            return None
        except M365Error as exc:
            raise _Stop(_why(f"look up list '{title}'", exc)) from None

    def _columns(self, site_id: str, list_id: str, title: str) -> Sequence[ColumnDefinition]:
        listed = self._call(
            f"read the columns of '{title}'", lambda: self._graph.list_columns(site_id, list_id)
        )
        return [c for c in listed if not c.read_only]

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except M365Error as exc:
            raise _Stop(_why(what, exc)) from None


def _definition(column: ColumnSpec) -> ColumnDefinition:
    return ColumnDefinition(
        column.name,
        column.type,
        indexed=column.indexed,
        required=column.required,
        multiline=column.multiline,
    )


def _kind_mismatch(wanted: ColumnSpec, have: ColumnDefinition) -> tuple[str, str] | None:
    """(problem, fix) when an existing column cannot hold what write-back puts in it."""
    if wanted.type != have.type:
        return (
            f"is a {have.type or 'special'} column; write-back writes {_kind_words(wanted)}",
            f"change it to {_kind_words(wanted)} (or delete it and run provision again)",
        )
    if wanted.multiline and not have.multiline:
        return (
            "is a single line of text (255 characters at most)",
            "change it to multiple lines of text",
        )
    return None


def _kind_words(column: ColumnSpec) -> str:
    if column.type == "text":
        return "multiple lines of text" if column.multiline else "single line of text"
    return {
        "number": "number",
        "boolean": "yes/no",
        "dateTime": "date and time",
        ANY_TYPE: "single line of text",
    }.get(column.type, column.type)


def _why(what: str, exc: M365Error) -> str:
    if isinstance(exc, Unauthorized):
        return (
            f"could not {what}: access denied — the app needs Sites.Manage.All "
            "(or Sites.Selected with a 'manage' grant on the site) to create lists and columns"
        )
    return f"could not {what}: {exc}"
