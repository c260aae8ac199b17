"""The sync step: read the register and the people it names, outside the engine.

Data flows one way: SharePoint register (or a CSV export) → rows → indicators; Entra ID
(or a directory CSV) → people in the store. The engine then works from the store alone.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pydantic

from m365perf.csvfiles import UnreadableRow
from m365perf.flows.model import Flow
from m365perf.m365.errors import BadRequest
from m365perf.m365.graph import MAX_PAGE, GraphClient, User
from m365perf.plan.fieldmap import (
    RegisterColumn,
    check_field_map,
    columns_from_definitions,
    raise_on_errors,
)
from m365perf.plan.register import (
    Indicator,
    Row,
    RowProblem,
    read_csv,
    read_csv_table,
    read_indicators,
    read_register_csv,
)
from m365perf.store import PersonSpec, Store

log = logging.getLogger(__name__)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BOOLEAN_WORDS = {"yes", "no", "true", "false", "y", "n", "1", "0"}


class RegisterSource(Protocol):
    """Where a flow's register rows come from."""

    def rows(self, flow: Flow) -> list[dict[str, str]]: ...

    def columns(self, flow: Flow) -> list[RegisterColumn]:
        """The register's columns, to check the flow's field map against."""
        ...


class PeopleSource(Protocol):
    """Where the people a register names are looked up."""

    def people(self, refs: Iterable[str]) -> tuple[list[PersonSpec], list[str]]:
        """The people for these e-mails or ids (with their line managers); unknown refs."""
        ...


class CsvRegister:
    """A register exported to CSV (the SharePoint list's column names as the header).

    A file that cannot be read, or lacks a column the flow needs, raises ``UnreadableCsv``.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def rows(self, flow: Flow) -> list[dict[str, str]]:
        return read_register_csv(self.path, flow)

    def columns(self, flow: Flow) -> list[RegisterColumn]:
        """The header row's names (a CSV says nothing of types or indexes)."""
        return [RegisterColumn(name) for name in read_csv_table(self.path)[0]]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class SharePointRegister:
    """The register list read through Microsoft Graph, every page followed.

    Text filters go to Graph (the flow should name indexed columns); yes/no filters
    are applied here, because SharePoint stores them as booleans.
    """

    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph
        self._ids: dict[tuple[str, str], tuple[str, str]] = {}

    def _list(self, flow: Flow) -> tuple[str, str]:
        """(site id, list id) of the flow's register, looked up once per sync."""
        key = (flow.source.site, flow.source.list_title)
        if key not in self._ids:
            host, _, path = flow.source.site.partition(":")
            site_id = self.graph.get_site_id(host, path)
            self._ids[key] = (site_id, self.graph.get_list_id(site_id, flow.source.list_title))
        return self._ids[key]

    def rows(self, flow: Flow) -> list[dict[str, str]]:
        site_id, list_id = self._list(flow)
        server = {
            column: value
            for column, value in flow.source.filter.items()
            if value.strip().lower() not in _BOOLEAN_WORDS
        }
        odata = " and ".join(
            f"fields/{column} eq '{value.replace(chr(39), chr(39) * 2)}'"
            for column, value in server.items()
        )
        columns = register_columns(flow)
        try:
            items = list(
                self.graph.list_items(
                    site_id, list_id, fields=columns, filter=odata or None, top=MAX_PAGE
                )
            )
        except BadRequest as exc:
            if not odata:
                raise
            log.warning("register filter refused (%s); reading the whole list instead", exc)
            items = list(self.graph.list_items(site_id, list_id, fields=columns, top=MAX_PAGE))
        return [{k: _text(v) for k, v in item.fields.items()} for item in items]

    def columns(self, flow: Flow) -> list[RegisterColumn]:
        """The list's columns with their kinds and indexes, as SharePoint describes them."""
        site_id, list_id = self._list(flow)
        return columns_from_definitions(self.graph.list_columns(site_id, list_id))


def check_register(flow: Flow, register: RegisterSource) -> None:
    """Refuse a flow whose field map names columns the register does not have."""
    raise_on_errors(flow, check_field_map(flow, register.columns(flow)))


def register_columns(flow: Flow) -> list[str]:
    """Every register column the flow reads: the field map, approver columns and filters."""
    columns = list(flow.source.fields)
    columns += [s.approver.column for s in flow.approval.steps if s.approver.column]
    columns += list(flow.source.filter)
    return list(dict.fromkeys(columns))


class CsvPeople:
    """People from a directory CSV with columns id, name, email, line_manager (an e-mail).

    A file that cannot be read, or has no id or email column, raises ``UnreadableCsv``.
    """

    def __init__(self, path: Path | str) -> None:
        rows = read_csv(path, required=("id", "email"))
        for unread in (row for row in rows if isinstance(row, UnreadableRow)):
            log.warning("directory row not read: %s", unread)
        self._rows = [row for row in rows if not isinstance(row, UnreadableRow)]

    def people(self, refs: Iterable[str]) -> tuple[list[PersonSpec], list[str]]:
        by_email = {r["email"].lower(): r for r in self._rows if r.get("email")}
        by_id = {r["id"].lower(): r for r in self._rows if r.get("id")}
        found: dict[str, PersonSpec] = {}
        unknown: list[str] = []
        queue = list(refs)
        while queue:
            ref = queue.pop().strip().lower()
            row = by_email.get(ref) or by_id.get(ref)
            if row is None:
                unknown.append(ref)
                continue
            if row["id"] in found:
                continue
            manager = by_email.get(row.get("line_manager", "").lower())
            try:
                found[row["id"]] = PersonSpec(
                    id=row["id"],
                    name=row.get("name") or row["email"],
                    email=row["email"],
                    line_manager_id=manager["id"] if manager else None,
                )
            except pydantic.ValidationError as exc:
                # a hand-edited directory: the person is unknown, as if not listed
                reasons = "; ".join(str(e["msg"]) for e in exc.errors())
                log.warning("directory row for %r not used: %s", ref, reasons)
                unknown.append(ref)
                continue
            if manager:
                queue.append(manager["email"])
        return list(found.values()), sorted(set(unknown))


DIRECTORY_CACHE_S = 3600.0
"""How long a directory answer is reused by later syncs in the same process: a cycle's
opening, a resync the same morning and the next flow's opening then read each person
once. A manager changed in Entra ID shows at the first sync an hour on."""


@dataclass
class DirectoryCache:
    """Directory answers (person, or unknown) by reference, kept between syncs."""

    ttl_s: float = DIRECTORY_CACHE_S
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, tuple[float, PersonSpec | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, ref: str) -> tuple[bool, PersonSpec | None]:
        """(known, person): known False when the ref was never read or has expired."""
        with self._lock:
            entry = self._entries.get(ref)
            if entry is None or self.clock() - entry[0] > self.ttl_s:
                return False, None
            return True, entry[1]

    def put(self, refs: Iterable[str], person: PersonSpec | None) -> None:
        at = self.clock()
        with self._lock:
            for ref in refs:
                self._entries[ref] = (at, person)


_CACHES: weakref.WeakKeyDictionary[GraphClient, DirectoryCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def directory_cache(graph: GraphClient) -> DirectoryCache:
    """The cache of one set of clients (one tenant): every sync through them shares it."""
    with _CACHES_LOCK:
        cache = _CACHES.get(graph)
        if cache is None:
            cache = _CACHES[graph] = DirectoryCache()
        return cache


class EntraPeople:
    """People looked up in Entra ID through Graph: twenty to a ``$batch``, each with their
    manager's id, then their managers the same way, up the chain.

    Answers are kept between syncs (:class:`DirectoryCache`), so a person named by
    several flows, or by a resync the same day, is read once.
    """

    def __init__(self, graph: GraphClient, cache: DirectoryCache | None = None) -> None:
        self.graph = graph
        self.cache = cache if cache is not None else directory_cache(graph)

    def people(self, refs: Iterable[str]) -> tuple[list[PersonSpec], list[str]]:
        found: dict[str, PersonSpec] = {}
        unknown: list[str] = []
        seen: set[str] = set()
        queue = list(dict.fromkeys(r.strip().lower() for r in refs if r.strip()))
        while queue:
            wave = [r for r in queue if r not in seen]
            seen.update(wave)
            queue = []
            answers = {r: self.cache.get(r) for r in wave}
            missing = [r for r, (known, _) in answers.items() if not known]
            if missing:
                read = self.graph.get_users(missing)
                for ref in missing:
                    person = _person(*read[ref]) if ref in read else None
                    names = [ref] + ([person.id.lower(), person.email] if person else [])
                    self.cache.put(names, person)
                    answers[ref] = (True, person)
            for ref in wave:
                person = answers[ref][1]
                if person is None:
                    unknown.append(ref)
                    continue
                if person.id in found:
                    continue
                found[person.id] = person
                manager = person.line_manager_id
                if manager is not None and manager.lower() not in seen:
                    queue.append(manager.lower())
        return list(found.values()), sorted(set(unknown))


def _person(user: User, manager_id: str | None) -> PersonSpec:
    return PersonSpec(
        id=user.id,
        name=user.display_name,
        email=(user.mail or user.user_principal_name).lower(),
        line_manager_id=manager_id,
    )


def people_named(flow: Flow, rows: Sequence[Row]) -> list[str]:
    """Every e-mail the flow and its register rows name: owners, approvers, groups, team."""
    columns = [flow.source.column_for("owner")]
    columns += [s.approver.column for s in flow.approval.steps if s.approver.column]
    refs: list[str] = []
    for row in rows:
        for column in columns:
            value = row.get(column or "", "").strip()
            if _EMAIL.match(value):
                refs.append(value)
    refs += [s.approver.user for s in flow.approval.steps if s.approver.user]
    refs += [s.fallback for s in flow.approval.steps if s.fallback]
    refs += [flow.approval.fallback] if flow.approval.fallback else []
    for members in flow.groups.values():
        refs += members
    refs += flow.performance_team
    return sorted({r.lower() for r in refs})


def sync(
    store: Store,
    flow: Flow,
    register: RegisterSource,
    people: PeopleSource,
    *,
    now: datetime,
) -> tuple[list[Indicator], list[RowProblem]]:
    """Read the register and copy the people it names into the store.

    A field-map, filter or approver column the register lacks raises ``FieldMapError``
    before anything is read or stored.
    """
    check_register(flow, register)
    rows = register.rows(flow)
    found, _unknown = people.people(people_named(flow, rows))
    with store.transaction() as tx:
        tx.upsert_people(found, now=now)
    return read_indicators(flow, rows)
