"""SharePoint lists and directory users through Microsoft Graph.

A thin client on :mod:`m365perf.m365.http` rather than office365-rest-python-client
(see docs/decisions.md): every request spends from the shared SharePoint
resource-unit budget at the documented cost — 1 RU to get one item, 2 RU to list
or query items and to create, update or delete one — and a ``$batch`` spends the sum
of its sub-requests, because SharePoint meters them one by one.

Filters are sent without ``Prefer: HonorNonIndexedQueriesWarningMayFailRandomly``
unless asked for: a filter on a column that is not indexed then fails loudly with
:class:`BadRequest` instead of "randomly" on a list past 5,000 items.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from requests.structures import CaseInsensitiveDict

from m365perf.m365.errors import (
    BatchError,
    BatchFailure,
    ClientError,
    DuplicateKeyError,
    M365Error,
    NotFound,
)
from m365perf.m365.http import ApiClient, Budget, json_object, server_delay

log = logging.getLogger(__name__)

MAX_BATCH = 20
MAX_PAGE = 999
"""Items asked for per page of a list read (``$top``). Graph does not document the
largest page for list items (facts §1.4: 5,000 was observed to be honoured); 999 is the
largest page Graph documents for its other collections, so it is asked for everywhere:
five times fewer pages than Graph's default of 200 for a large list."""
_RU_ONE_ITEM = 1.0
_RU_MANY_OR_WRITE = 2.0
_RETRY_SUB_STATUSES = frozenset({429, 503, 504})
_USER_FIELDS = "id,displayName,mail,userPrincipalName"
_CONFLICT = 409
_PREFER_NON_INDEXED = "HonorNonIndexedQueriesWarningMayFailRandomly"


@dataclass(frozen=True)
class ListItem:
    """One SharePoint list item: its id, its eTag (for If-Match) and its column values."""

    id: str
    etag: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class ItemRef:
    """Where a keyed row lives, and the eTag to update it safely."""

    id: str
    etag: str


@dataclass(frozen=True)
class ColumnDefinition:
    """A list column as Graph describes it; ``type`` is its kind facet (``text``, ``number``…).

    ``id`` is empty on a definition about to be created. Read-only and hidden columns
    are SharePoint's own (``Created``, ``Modified``…); ``multiline`` is text's
    ``allowMultipleLines``.
    """

    name: str
    type: str = "text"
    indexed: bool = False
    required: bool = False
    multiline: bool = False
    id: str = ""
    display_name: str = ""
    read_only: bool = False
    hidden: bool = False

    def payload(self) -> dict[str, Any]:
        """The JSON body that creates this column."""
        facet: dict[str, Any] = {"allowMultipleLines": True} if self.multiline else {}
        return {
            "name": self.name,
            "displayName": self.display_name or self.name,
            "indexed": self.indexed,
            "required": self.required,
            self.type: facet,
        }


_COLUMN_FACETS = (
    "text",
    "number",
    "boolean",
    "dateTime",
    "choice",
    "currency",
    "personOrGroup",
    "lookup",
    "calculated",
    "hyperlinkOrPicture",
    "term",
    "geolocation",
    "thumbnail",
    "contentApprovalStatus",
)


@dataclass(frozen=True)
class User:
    """A directory user as the approver chain needs them."""

    id: str
    display_name: str
    mail: str | None
    user_principal_name: str


@dataclass(frozen=True)
class BatchRequest:
    """One sub-request of a JSON ``$batch``; ``url`` is relative to the Graph version root."""

    id: str
    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ru_cost: float = _RU_MANY_OR_WRITE

    def _payload(self) -> dict[str, Any]:
        url = self.url if self.url.startswith("/") else f"/{self.url}"
        payload: dict[str, Any] = {"id": self.id, "method": self.method.upper(), "url": url}
        headers = dict(self.headers)
        if self.body is not None:
            headers.setdefault("Content-Type", "application/json")
            payload["body"] = dict(self.body)
        if headers:
            payload["headers"] = headers
        return payload


@dataclass(frozen=True)
class BatchResponse:
    """One sub-response, correlated to its request by ``id``."""

    id: str
    status: int
    headers: Mapping[str, str]
    body: Any


def create_item_request(
    request_id: str, site_id: str, list_id: str, fields: Mapping[str, Any]
) -> BatchRequest:
    """A ``$batch`` sub-request creating one item."""
    return BatchRequest(request_id, "POST", _items_path(site_id, list_id), {"fields": dict(fields)})


def update_fields_request(
    request_id: str,
    site_id: str,
    list_id: str,
    item_id: str,
    fields: Mapping[str, Any],
    *,
    etag: str | None = None,
) -> BatchRequest:
    """A ``$batch`` sub-request updating some columns of one item (If-Match when ``etag``)."""
    headers = {"If-Match": etag} if etag else {}
    path = f"{_items_path(site_id, list_id)}/{quote(item_id, safe='')}/fields"
    return BatchRequest(request_id, "PATCH", path, dict(fields), headers)


class GraphClient:
    """Sites, lists, list items, ``$batch`` and users on Microsoft Graph."""

    def __init__(self, api: ApiClient, *, sharepoint: Budget, batch_rounds: int = 5) -> None:
        if batch_rounds < 1:
            raise ValueError("batch_rounds must be at least 1")
        self._api = api
        self._sharepoint = sharepoint
        self._batch_rounds = batch_rounds

    # -- sites and lists -------------------------------------------------------------

    def get_site_id(self, host: str, path: str) -> str:
        """The composite site id for ``host`` and server-relative ``path`` (``/sites/kpi``)."""
        if not host or "/" in host:
            raise ValueError(f"site host must be a bare host name, got {host!r}")
        relative = path.strip("/")
        # The root site has no path; Graph addresses it by host alone.
        address = f"sites/{host}:/{quote(relative, safe='/')}" if relative else f"sites/{host}"
        body = self._sp_get(address, cost=_RU_ONE_ITEM)
        return _required_str(body, "id")

    def get_list_id(self, site_id: str, title: str) -> str:
        """The id of the list with display title ``title`` on the site."""
        if not title:
            raise ValueError("list title is empty")
        body = self._sp_get(
            f"sites/{quote(site_id, safe=',')}/lists/{quote(title, safe='')}", cost=_RU_ONE_ITEM
        )
        return _required_str(body, "id")

    def list_columns(self, site_id: str, list_id: str) -> list[ColumnDefinition]:
        """Every column of the list with its kind and ``indexed`` flag (built-ins included)."""
        body = self._sp_get(f"{_list_path(site_id, list_id)}/columns", cost=_RU_MANY_OR_WRITE)
        columns = [_column(raw) for raw in body.get("value", []) if isinstance(raw, Mapping)]
        while body.get("@odata.nextLink"):
            body = self._sp_get(str(body["@odata.nextLink"]), cost=_RU_MANY_OR_WRITE)
            columns += [_column(raw) for raw in body.get("value", []) if isinstance(raw, Mapping)]
        return columns

    def create_list(self, site_id: str, title: str, columns: Sequence[ColumnDefinition]) -> str:
        """Create a generic list with ``columns`` (besides its own Title); its id.

        Needs ``Sites.Manage.All``. Not retried on a timeout: look the list up first.
        """
        if not title:
            raise ValueError("list title is empty")
        response = self._api.request(
            "POST",
            f"sites/{quote(site_id, safe=',')}/lists",
            json={
                "displayName": title,
                "columns": [c.payload() for c in columns],
                "list": {"template": "genericList"},
            },
            budget=self._sharepoint,
            cost=_RU_MANY_OR_WRITE,
        )
        return _required_str(json_object(response), "id")

    def create_column(
        self, site_id: str, list_id: str, column: ColumnDefinition
    ) -> ColumnDefinition:
        """Add one column to a list (``Sites.Manage.All``); the column as created."""
        response = self._api.request(
            "POST",
            f"{_list_path(site_id, list_id)}/columns",
            json=column.payload(),
            budget=self._sharepoint,
            cost=_RU_MANY_OR_WRITE,
        )
        return _column(json_object(response))

    def set_column_indexed(
        self, site_id: str, list_id: str, column_id: str, indexed: bool = True
    ) -> ColumnDefinition:
        """Index (or un-index) a column so ``$filter`` may name it; the column as it is now."""
        if not column_id:
            raise ValueError("column id is empty")
        response = self._api.request(
            "PATCH",
            f"{_list_path(site_id, list_id)}/columns/{quote(column_id, safe='')}",
            json={"indexed": indexed},
            budget=self._sharepoint,
            cost=_RU_MANY_OR_WRITE,
            idempotent=True,  # setting the flag twice leaves it set
        )
        return _column(json_object(response))

    # -- items -------------------------------------------------------------------------

    def list_items(
        self,
        site_id: str,
        list_id: str,
        *,
        fields: Sequence[str] | None = None,
        filter: str | None = None,
        top: int | None = None,
        honor_non_indexed: bool = False,
    ) -> Iterator[ListItem]:
        """Every item, page by page, following each ``@odata.nextLink`` as given.

        ``filter`` is an OData filter such as ``fields/Period eq '2026/27 Q2'``; it
        should name indexed columns only (see the module docstring).
        """
        params: dict[str, str | int] = {
            "expand": f"fields(select={','.join(fields)})" if fields else "fields"
        }
        if filter:
            params["$filter"] = filter
        if top is not None:
            params["$top"] = top
        headers = {"Prefer": _PREFER_NON_INDEXED} if honor_non_indexed else None
        body = self._sp_get(
            _items_path(site_id, list_id), params=params, headers=headers, cost=_RU_MANY_OR_WRITE
        )
        while True:
            for raw in body.get("value", []):
                yield _list_item(raw)
            next_link = body.get("@odata.nextLink")
            if not next_link:
                return
            body = self._sp_get(str(next_link), headers=headers, cost=_RU_MANY_OR_WRITE)

    def get_item(
        self, site_id: str, list_id: str, item_id: str, *, fields: Sequence[str] | None = None
    ) -> ListItem:
        """One item with its column values."""
        expand = f"fields(select={','.join(fields)})" if fields else "fields"
        body = self._sp_get(
            f"{_items_path(site_id, list_id)}/{quote(item_id, safe='')}",
            params={"expand": expand},
            cost=_RU_ONE_ITEM,
        )
        return _list_item(body)

    def create_item(self, site_id: str, list_id: str, fields: Mapping[str, Any]) -> ListItem:
        """Create one item; not retried on a timeout (that could make two)."""
        response = self._api.request(
            "POST",
            _items_path(site_id, list_id),
            json={"fields": dict(fields)},
            budget=self._sharepoint,
            cost=_RU_MANY_OR_WRITE,
        )
        return _list_item(json_object(response))

    def update_fields(
        self,
        site_id: str,
        list_id: str,
        item_id: str,
        fields: Mapping[str, Any],
        *,
        etag: str | None = None,
    ) -> dict[str, Any]:
        """Set some columns of one item; with ``etag``, :class:`PreconditionFailed` if stale."""
        response = self._api.request(
            "PATCH",
            f"{_items_path(site_id, list_id)}/{quote(item_id, safe='')}/fields",
            json=dict(fields),
            headers={"If-Match": etag} if etag else None,
            budget=self._sharepoint,
            cost=_RU_MANY_OR_WRITE,
            idempotent=True,  # setting the same values twice leaves the same item
        )
        return json_object(response)

    def read_keys(
        self,
        site_id: str,
        list_id: str,
        key_fields: Sequence[str],
        *,
        filter: str | None = None,
    ) -> dict[tuple[str, ...], ItemRef]:
        """Map each item's key (its ``key_fields`` values, as text) to its id and eTag.

        This is what makes writes upserts: look the key up, update if found, create
        if not. Missing values read as ``""``. Two items with one key raise
        :class:`DuplicateKeyError`, since writing to either would be a guess.
        """
        if not key_fields:
            raise ValueError("read_keys needs at least one key field")
        found: dict[tuple[str, ...], ItemRef] = {}
        for item in self.list_items(
            site_id, list_id, fields=key_fields, filter=filter, top=MAX_PAGE
        ):
            key = tuple(_key_text(item.fields.get(name)) for name in key_fields)
            if key in found:
                raise DuplicateKeyError(key, [found[key].id, item.id])
            found[key] = ItemRef(item.id, item.etag)
        return found

    def upsert_items(
        self,
        site_id: str,
        list_id: str,
        key_fields: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
    ) -> dict[tuple[str, ...], str]:
        """Write each row to the item holding its key, creating it only when there is none.

        Returns key → item id. Updates carry the eTag just read, so a concurrent
        writer surfaces as a 412 in the :class:`BatchError` rather than being lost;
        the sub-request ids in that error are the rows' positions in ``rows``.
        """
        keys = [tuple(_key_text(row.get(name)) for name in key_fields) for row in rows]
        if len(set(keys)) != len(keys):
            raise ValueError("upsert_items got two rows with the same key")
        existing = self.read_keys(site_id, list_id, key_fields)
        requests = []
        for index, (key, row) in enumerate(zip(keys, rows, strict=True)):
            ref = existing.get(key)
            if ref is None:
                requests.append(create_item_request(str(index), site_id, list_id, row))
            else:
                requests.append(
                    update_fields_request(
                        str(index), site_id, list_id, ref.id, row, etag=ref.etag or None
                    )
                )
        responses = self.batch(requests)
        result: dict[tuple[str, ...], str] = {}
        for index, key in enumerate(keys):
            ref = existing.get(key)
            if ref is not None:
                result[key] = ref.id
            else:
                body = responses[str(index)].body
                result[key] = str(body.get("id", "")) if isinstance(body, dict) else ""
        return result

    # -- $batch ------------------------------------------------------------------------

    def batch(
        self, requests: Sequence[BatchRequest], *, budget: Budget | None = None
    ) -> dict[str, BatchResponse]:
        """Send sub-requests in batches of 20, retrying throttled ones on their own wait.

        The envelope answers 200 even when sub-requests were throttled, so each
        sub-response is read: 429/503/504 ones are resent (only they) after the
        longest ``retry-after`` among them, up to ``batch_rounds`` rounds. Returns id →
        response for every success; raises :class:`BatchError` naming each failure.
        """
        ids = [r.id.lower() for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("batch request ids must be unique (case-insensitively)")
        succeeded: dict[str, BatchResponse] = {}
        failures: list[BatchFailure] = []
        for start in range(0, len(requests), MAX_BATCH):
            chunk_ok, chunk_failed = self._batch_chunk(
                requests[start : start + MAX_BATCH], budget or self._sharepoint
            )
            succeeded.update(chunk_ok)
            failures.extend(chunk_failed)
        if failures:
            raise BatchError(failures, succeeded)
        return succeeded

    def _batch_chunk(
        self, chunk: Sequence[BatchRequest], budget: Budget
    ) -> tuple[dict[str, BatchResponse], list[BatchFailure]]:
        pending = {r.id: r for r in chunk}
        done: dict[str, BatchResponse] = {}
        failed: list[BatchFailure] = []
        for round_number in range(1, self._batch_rounds + 1):
            responses = self._send_batch(list(pending.values()), budget)
            throttled: dict[str, BatchResponse] = {}
            for request_id, request in list(pending.items()):
                response = responses.get(request_id.lower())
                if response is None:
                    failed.append(BatchFailure(request_id, 0, "no response in the batch"))
                    del pending[request_id]
                elif response.status < 400:
                    done[request_id] = response
                    del pending[request_id]
                elif response.status in _RETRY_SUB_STATUSES:
                    throttled[request_id] = response
                else:
                    failed.append(_failure(request.id, response, None))
                    del pending[request_id]
            if not pending:
                break
            waits = [
                server_delay(CaseInsensitiveDict(r.headers), self._api.core.clock.time())
                for r in throttled.values()
            ]
            wait = max((w for w in waits if w is not None), default=None)
            if round_number == self._batch_rounds:
                failed.extend(_failure(i, throttled[i], wait) for i in pending)
                break
            if wait is None:
                wait = self._api.retry.backoff(round_number, self._api.core.rng)
            if wait > self._api.retry.max_wait_s:
                budget.pause_for(wait)
                failed.extend(_failure(i, throttled[i], wait) for i in pending)
                break
            log.info("$batch: %d sub-request(s) throttled; resend in %.1fs", len(pending), wait)
            # Pausing the budget (not sleeping here) holds back every thread's
            # SharePoint traffic, including our own next round.
            budget.pause_for(wait)
        return done, failed

    def _send_batch(
        self, requests: Sequence[BatchRequest], budget: Budget
    ) -> dict[str, BatchResponse]:
        response = self._api.request(
            "POST",
            "$batch",
            json={"requests": [r._payload() for r in requests]},
            budget=budget,
            cost=sum(r.ru_cost for r in requests),
        )
        body = json_object(response)
        result: dict[str, BatchResponse] = {}
        for raw in body.get("responses", []):
            if not isinstance(raw, dict) or "id" not in raw:
                continue
            headers = raw.get("headers") or {}
            result[str(raw["id"]).lower()] = BatchResponse(
                str(raw["id"]),
                int(raw.get("status", 0)),
                {str(k): str(v) for k, v in headers.items()},
                raw.get("body"),
            )
        return result

    # -- users -------------------------------------------------------------------------

    def get_user(self, id_or_upn: str) -> User:
        """A directory user by object id or user principal name."""
        if not id_or_upn:
            raise ValueError("user id or UPN is empty")
        body = self._api.get_json(
            f"users/{quote(id_or_upn, safe='@')}", params={"$select": _USER_FIELDS}
        )
        return _user(body)

    def get_manager(self, id_or_upn: str) -> User | None:
        """The user's manager, or None when the directory records none (Graph's 404)."""
        if not id_or_upn:
            raise ValueError("user id or UPN is empty")
        try:
            body = self._api.get_json(
                f"users/{quote(id_or_upn, safe='@')}/manager", params={"$select": _USER_FIELDS}
            )
        except NotFound:
            return None
        return _user(body)

    def get_users(self, refs: Sequence[str]) -> dict[str, tuple[User, str | None]]:
        """Directory users by id or UPN, each with their manager's id, 20 to a ``$batch``.

        One sub-request per person (``$expand=manager``), so a sync of a register's
        people costs one envelope per twenty of them. Returns ref → (user, manager id or
        None); a ref the directory does not know is absent. Any other failure raises.
        """
        wanted = list(dict.fromkeys(r for r in refs if r))
        requests = [
            BatchRequest(
                str(index),
                "GET",
                f"users/{quote(ref, safe='@')}?$select={_USER_FIELDS}&$expand=manager($select=id)",
                ru_cost=1.0,
            )
            for index, ref in enumerate(wanted)
        ]
        try:
            responses = self.batch(requests, budget=self._api.budget)
        except BatchError as exc:
            unknown = [f for f in exc.failures if f.status != 404]
            if unknown:
                raise
            responses = exc.succeeded
        found: dict[str, tuple[User, str | None]] = {}
        for index, ref in enumerate(wanted):
            response = responses.get(str(index))
            if response is None or not isinstance(response.body, Mapping):
                continue
            manager = response.body.get("manager")
            manager_id = manager.get("id") if isinstance(manager, Mapping) else None
            found[ref] = (_user(response.body), str(manager_id) if manager_id else None)
        return found

    # -- Teams app ---------------------------------------------------------------------

    def install_teams_app(self, user_id: str, catalog_app_id: str) -> bool:
        """Install the council's Teams app for a user, so the bot may open a 1:1 chat with
        them (facts §6.1); False when it was installed already (Graph's 409)."""
        if not user_id or not catalog_app_id:
            raise ValueError("user id and Teams app catalog id must not be empty")
        bind = f"{self._api.base_url}/appCatalogs/teamsApps/{quote(catalog_app_id, safe='')}"
        try:
            self._api.request(
                "POST",
                f"users/{quote(user_id, safe='@')}/teamwork/installedApps",
                json={"teamsApp@odata.bind": bind},
                idempotent=True,  # installing twice is a 409, not a second install
            )
        except ClientError as exc:
            if exc.status == _CONFLICT:
                return False
            raise
        return True

    # -- helpers -----------------------------------------------------------------------

    def _sp_get(
        self,
        path: str,
        *,
        cost: float,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return self._api.get_json(
            path, params=params, headers=headers, budget=self._sharepoint, cost=cost
        )


def _list_path(site_id: str, list_id: str) -> str:
    return f"sites/{quote(site_id, safe=',')}/lists/{quote(list_id, safe='')}"


def _items_path(site_id: str, list_id: str) -> str:
    return f"{_list_path(site_id, list_id)}/items"


def _column(raw: Mapping[str, Any]) -> ColumnDefinition:
    """A columnDefinition; its kind is whichever type facet it carries ("" when none)."""
    kind = next((f for f in _COLUMN_FACETS if isinstance(raw.get(f), Mapping)), "")
    text = raw.get("text")
    return ColumnDefinition(
        name=_required_str(raw, "name"),
        type=kind,
        indexed=bool(raw.get("indexed")),
        required=bool(raw.get("required")),
        multiline=isinstance(text, Mapping) and bool(text.get("allowMultipleLines")),
        id=str(raw.get("id") or ""),
        display_name=str(raw.get("displayName") or ""),
        read_only=bool(raw.get("readOnly")),
        hidden=bool(raw.get("hidden")),
    )


def _list_item(raw: Mapping[str, Any]) -> ListItem:
    fields = raw.get("fields")
    return ListItem(
        id=_required_str(raw, "id"),
        etag=str(raw.get("eTag", "")),
        fields=dict(fields) if isinstance(fields, Mapping) else {},
    )


def _user(raw: Mapping[str, Any]) -> User:
    return User(
        id=_required_str(raw, "id"),
        display_name=str(raw.get("displayName") or ""),
        mail=str(raw["mail"]) if raw.get("mail") else None,
        user_principal_name=str(raw.get("userPrincipalName") or ""),
    )


def _required_str(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None or value == "":
        raise M365Error(f"response has no {name!r}: {sorted(raw)[:10]}")
    return str(value)


def _key_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _failure(request_id: str, response: BatchResponse, wait: float | None) -> BatchFailure:
    message = ""
    body = response.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        message = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    return BatchFailure(request_id, response.status, message or "failed", wait)
