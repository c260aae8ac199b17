"""Write-back to a SharePoint list: an upsert keyed on the payload's key fields.

Rows claimed together for one list go out as ``$batch`` groups of up to 20. The store
remembers the SharePoint item each key was written to (``writeback_item``, recorded by
the engine from each ``WrittenBack``), so a row whose key was written before is a PATCH
by id with no read of the list, and the version last written there answers the
"never older over newer" check. Only keys never seen are looked up, 20 to a read,
filtered on every key column (``Period eq 'P' and (IndicatorId eq 'a' or …)``): the
cost per row stays flat however large the list grows. Looking a new key up before
creating it is what makes a retry after a crash safe: the item the first attempt
created is found and updated, not created again. A remembered item someone deleted
answers 404: it is forgotten and the row tried again, which looks it up afresh.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from m365perf.dispatch._failures import BadPayload
from m365perf.m365.errors import BadRequest, BatchError, BatchFailure, DuplicateKeyError, M365Error
from m365perf.m365.graph import (
    MAX_BATCH,
    MAX_PAGE,
    BatchRequest,
    BatchResponse,
    GraphClient,
    create_item_request,
    update_fields_request,
)
from m365perf.messages import Outcome, WriteBack, WrittenBack
from m365perf.messages.outbox import split_site
from m365perf.store.base import Store
from m365perf.store.tables import OutboxMessage

log = logging.getLogger(__name__)

VERSION_FIELD = "Version"
_KEYS_PER_READ = MAX_BATCH  # keys looked up by one filtered read: one read per envelope
_NOT_FOUND = 404

Key = tuple[str, ...]
Result = tuple[OutboxMessage, Outcome | BaseException]


@dataclass(frozen=True)
class Target:
    """One list and the columns that identify an item in it."""

    site: str
    list_title: str
    key_fields: tuple[str, ...]


@dataclass(frozen=True)
class Row:
    """A ``write_back`` row and what planning needs of its message."""

    message: OutboxMessage
    target: Target
    key: Key
    fields: dict[str, Any]
    version: float | None


@dataclass
class Write:
    """One sub-request, and the rows for the same item it answers for (older copies)."""

    message: OutboxMessage
    request: BatchRequest
    item_id: str | None  # None: the item is created
    followers: list[tuple[OutboxMessage, bool]] = field(default_factory=list)
    remembered: bool = False  # the item id came from the store, not from a read
    target: Target | None = None
    key: Key = ()

    @property
    def messages(self) -> list[OutboxMessage]:
        return [self.message, *(m for m, _ in self.followers)]


@dataclass
class Plan:
    """What one read of a list decided: rows already settled, and the writes to send."""

    settled: list[Result]
    writes: list[Write]


@dataclass(frozen=True)
class _Existing:
    id: str
    etag: str
    version: float | None


class WriteFailed(M365Error):
    """A ``$batch`` sub-request that did not succeed, as one row's failure."""

    def __init__(self, list_title: str, failure: BatchFailure) -> None:
        reason = failure.message or "failed"
        super().__init__(f"list {list_title!r}: {failure.status} {reason}")
        # 412: someone changed the item after our read; 0: no answer for this part.
        # Both come right on a fresh read, which the next attempt makes.
        self.transient = failure.transient or failure.status in (0, 412)
        self.retry_after = failure.retry_after


class SharePointIds:
    """Site and list ids, resolved once per dispatcher: they never change under us.

    Also remembers the lists that refused a filter on their keys (columns not indexed),
    so they are read whole from then on instead of being refused every time.
    """

    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph
        self._lock = threading.Lock()
        self._sites: dict[str, str] = {}
        self._lists: dict[tuple[str, str], str] = {}
        self.unfilterable: set[str] = set()

    def resolve(self, site: str, list_title: str) -> tuple[str, str]:
        """(site id, list id); a failed look-up is not cached, so a fixed typo takes effect."""
        with self._lock:
            site_id = self._sites.get(site)
            if site_id is None:
                host, path = _split_site(site)
                site_id = self._sites[site] = self._graph.get_site_id(host, path)
            list_id = self._lists.get((site_id, list_title))
            if list_id is None:
                list_id = self._lists[(site_id, list_title)] = self._graph.get_list_id(
                    site_id, list_title
                )
            return site_id, list_id


def row(message: OutboxMessage, write: WriteBack) -> Row:
    """A ``write_back`` row, its message already read, as this module plans with it."""
    return Row(
        message=message,
        target=Target(write.site, write.list_title, tuple(write.key_fields)),
        key=tuple(_key_text(write.fields[k]) for k in write.key_fields),
        fields=dict(write.fields),
        version=_version(write.version),
    )


def plan(
    graph: GraphClient,
    ids: SharePointIds,
    target: Target,
    rows: Sequence[Row],
    store: Store | None = None,
) -> Plan:
    """Decide per item: create, update, or leave alone; read the list only for new keys."""
    site_id, list_id = ids.resolve(target.site, target.list_title)
    by_key: dict[Key, list[Row]] = {}
    for row in rows:
        by_key.setdefault(row.key, []).append(row)
    known = _remembered(store, target, list(by_key))
    unseen = [same[0] for key, same in by_key.items() if key not in known]
    existing, duplicated = _read_existing(graph, ids, site_id, list_id, target, unseen)
    existing.update(known)
    settled: list[Result] = []
    writes: list[Write] = []
    for key, same_item in by_key.items():
        if key in duplicated:
            error = DuplicateKeyError(key, duplicated[key])
            settled.extend((r.message, error) for r in same_item)
            continue
        # Rows for one item in one drain: only the newest is written; the others are
        # what a one-by-one sender would have found already overwritten.
        same_item.sort(key=lambda r: (-math.inf if r.version is None else r.version, _id(r)))
        newest = same_item[-1]
        found = existing.get(key)
        if found is not None and _older(newest.version, found.version):
            outcome = WrittenBack(item_id=found.id, created=False, skipped_older=True)
            settled.extend((r.message, outcome) for r in same_item)
            continue
        request_id = str(_id(newest))
        if found is None:
            request = create_item_request(request_id, site_id, list_id, newest.fields)
        else:
            request = update_fields_request(
                request_id, site_id, list_id, found.id, newest.fields, etag=found.etag or None
            )
        followers = [(r.message, _older(r.version, newest.version)) for r in same_item[:-1]]
        writes.append(
            Write(
                newest.message,
                request,
                found.id if found else None,
                followers,
                remembered=key in known,
                target=target,
                key=key,
            )
        )
    writes.sort(key=lambda w: _id(w))
    return Plan(settled, writes)


def _remembered(store: Store | None, target: Target, keys: Sequence[Key]) -> dict[Key, _Existing]:
    """The items the store remembers for these keys (no eTag: the write is by id alone)."""
    if store is None or not keys:
        return {}
    with store.transaction() as tx:
        items = tx.find_writeback_items(target.site, target.list_title, keys)
    return {key: _Existing(item.item_id, "", item.version) for key, item in items.items()}


def chunks(writes: Sequence[Write]) -> list[list[Write]]:
    """``$batch`` groups of up to 20 sub-requests."""
    return [list(writes[i : i + MAX_BATCH]) for i in range(0, len(writes), MAX_BATCH)]


def send(
    graph: GraphClient, list_title: str, writes: Sequence[Write], store: Store | None = None
) -> list[Result]:
    """Send one ``$batch`` group and give each row its own outcome or failure."""
    failures: dict[str, BatchFailure] = {}
    try:
        responses = graph.batch([w.request for w in writes])
    except BatchError as exc:
        responses = exc.succeeded
        failures = {f.id: f for f in exc.failures}
    results: list[Result] = []
    for write in writes:
        response = responses.get(write.request.id)
        if response is None:
            failure = failures.get(write.request.id) or BatchFailure(
                write.request.id, 0, "no response in the batch"
            )
            error = WriteFailed(list_title, failure)
            if failure.status == _NOT_FOUND and write.remembered:
                _forget(store, write)
                error.transient = True  # the next attempt looks the key up afresh
            results.extend((m, error) for m in write.messages)
            continue
        try:
            item_id = write.item_id or _created_id(response)
        except M365Error as exc:
            results.extend((m, exc) for m in write.messages)
            continue
        created = write.item_id is None
        results.append((write.message, WrittenBack(item_id=item_id, created=created)))
        results.extend(
            (m, WrittenBack(item_id=item_id, created=False, skipped_older=older))
            for m, older in write.followers
        )
    return results


def _forget(store: Store | None, write: Write) -> None:
    """A remembered item is gone from the list (deleted by hand): stop writing to it."""
    if store is None or write.target is None:
        return
    log.warning(
        "list %r: item %s for key %s is gone; it will be looked up again",
        write.target.list_title,
        write.item_id,
        write.key,
    )
    with store.transaction() as tx:
        tx.forget_writeback_item(write.target.site, write.target.list_title, write.key)


def _read_existing(
    graph: GraphClient,
    ids: SharePointIds,
    site_id: str,
    list_id: str,
    target: Target,
    rows: Sequence[Row],
) -> tuple[dict[Key, _Existing], dict[Key, list[str]]]:
    """Existing items of these rows' keys, and the keys held by more than one item.

    One filtered read per 20 keys, at the largest page size; a list that refuses the
    filter (key columns not indexed) is read whole, now and from then on.
    """
    if not rows:
        return {}, {}
    columns = list(target.key_fields)
    if any(r.version is not None for r in rows):
        columns.append(VERSION_FIELD)
    wanted = {r.key for r in rows}
    filters = None if list_id in ids.unfilterable else _key_filters(target.key_fields, rows)
    items = []
    try:
        if filters is None:
            items = list(graph.list_items(site_id, list_id, fields=columns, top=MAX_PAGE))
        else:
            for where in filters:
                items += graph.list_items(
                    site_id, list_id, fields=columns, filter=where, top=MAX_PAGE
                )
    except BadRequest:
        if filters is None:
            raise
        # Most likely a key column is not indexed: read the whole list, now and later.
        log.warning(
            "list %r refused a filter on %s (index the columns); reading every item instead",
            target.list_title,
            ", ".join(target.key_fields),
        )
        ids.unfilterable.add(list_id)
        items = list(graph.list_items(site_id, list_id, fields=columns, top=MAX_PAGE))
    existing: dict[Key, _Existing] = {}
    duplicated: dict[Key, list[str]] = {}
    for item in items:
        key = tuple(_key_text(item.fields.get(k)) for k in target.key_fields)
        if key not in wanted:
            continue
        if key in existing:
            duplicated[key] = [existing.pop(key).id]
        if key in duplicated:
            duplicated[key].append(item.id)
            continue
        existing[key] = _Existing(item.id, item.etag, _version(item.fields.get(VERSION_FIELD)))
    return existing, duplicated


def _key_filters(key_fields: Sequence[str], rows: Sequence[Row]) -> list[str] | None:
    """Filters naming exactly these rows' keys, 20 keys to a filter, on every key column.

    The column with the fewest values (the period) leads each filter, so SharePoint can
    narrow on its index first: ``fields/Period eq 'P' and (fields/IndicatorId eq 'a' or
    …)``. None when a key value cannot be written as an OData literal.
    """
    literal_rows: list[dict[str, str]] = []
    for row in rows:
        literals: dict[str, str] = {}
        for name in key_fields:
            literal = _literal(row.fields[name])
            if literal is None:
                return None
            literals[name] = literal
        literal_rows.append(literals)
    distinct = {name: {r[name] for r in literal_rows} for name in key_fields}
    lead = min(key_fields, key=lambda name: len(distinct[name]))
    rest = [name for name in key_fields if name != lead]
    by_lead: dict[str, list[dict[str, str]]] = {}
    for literals in literal_rows:
        by_lead.setdefault(literals[lead], []).append(literals)
    filters = []
    for value, group in sorted(by_lead.items()):
        head = f"fields/{lead} eq {value}"
        for start in range(0, len(group), _KEYS_PER_READ):
            chunk = group[start : start + _KEYS_PER_READ]
            if not rest:
                filters.append(head)
                break
            terms = [" and ".join(f"fields/{n} eq {r[n]}" for n in rest) for r in chunk]
            if len(rest) > 1:
                terms = [f"({t})" for t in terms]
            filters.append(f"{head} and ({' or '.join(terms)})")
    if not rest:
        # One key column: the values themselves, 20 to a filter.
        values = sorted(distinct[lead])
        return [
            " or ".join(f"fields/{lead} eq {v}" for v in values[i : i + _KEYS_PER_READ])
            for i in range(0, len(values), _KEYS_PER_READ)
        ]
    return filters


def _literal(value: Any) -> str | None:
    """An OData literal for a key value, or None when it cannot be filtered on."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def _key_text(value: Any) -> str:
    """A key value as text, so 3, 3.0 and "3" name the same item."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _version(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _older(version: float | None, than: float | None) -> bool:
    return version is not None and than is not None and version < than


def _split_site(site: str) -> tuple[str, str]:
    try:
        return split_site(site)
    except ValueError as exc:
        raise BadPayload(f"write_back: {exc}") from None


def _created_id(response: BatchResponse) -> str:
    body = response.body
    if isinstance(body, dict) and body.get("id"):
        return str(body["id"])
    raise M365Error(f"the created item's response has no id (status {response.status})")


def _id(obj: Row | Write) -> int:
    ident = obj.message.id
    assert ident is not None, "claimed outbox rows always have an id"
    return ident
