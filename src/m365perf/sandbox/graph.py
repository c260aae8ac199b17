"""Microsoft Graph as the service meets it: sites, lists, list items, users, sendMail, $batch.

Handlers take a :class:`GraphCall` and return a :class:`Reply` instead of being
FastAPI routes, because ``$batch`` must run the very same handlers for its parts
(each part throttled and logged on its own) and embed their replies in one envelope.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from m365perf.sandbox import odata
from m365perf.sandbox.core import Sandbox, sandbox_of
from m365perf.sandbox.mail import send_mail
from m365perf.sandbox.replies import (
    GRAPH_JSON,
    Reply,
    graph_error,
    invalid_request,
    item_not_found,
    not_indexed,
    resource_not_found,
    throttled,
    unavailable,
)
from m365perf.sandbox.store import Column, ItemRow, ListRow, RequestRecord, SiteRow, iso

router = APIRouter()

BATCH_LIMIT = 20
_PREFER_NON_INDEXED = "honornonindexedquerieswarningmayfailrandomly"
_SITES_READ = {"Sites.Read.All", "Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All"}
_SITES_WRITE = {"Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All"}
_SITES_MANAGE = {"Sites.Manage.All", "Sites.FullControl.All"}
_APP_INSTALL = {
    "TeamsAppInstallation.ReadWriteSelfForUser.All",
    "TeamsAppInstallation.ReadWriteForUser.All",
}
_USERS_READ = {
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
}
_COLUMN_KINDS = ("text", "number", "boolean", "dateTime")
_TEXT_MAX = 255  # a single line of text; multi-line text has no such limit
_READ_ONLY_FIELDS = {"id", "ID", "Created", "Modified", "Author", "Editor", "ContentType"}


@dataclass
class GraphCall:
    """One Graph request, from the wire or from a $batch part."""

    method: str
    path: str  # decoded, after /v1.0, starting with "/"
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    base: str  # absolute URL of /v1.0 as the caller reached it
    claims: dict[str, Any]

    @property
    def options(self) -> dict[str, str]:
        return odata.query_options(self.query)

    def json(self) -> Any:
        if not self.body.strip():
            return None
        return json.loads(self.body)


def _json_error() -> Reply:
    return graph_error(
        400,
        "BadRequest",
        "Unable to read JSON request payload. Please ensure Content-Type header is set and "
        "payload is of valid JSON format.",
    )


def _ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, body, headers or {}, GRAPH_JSON)


def _has_role(call: GraphCall, allowed: set[str]) -> bool:
    roles = call.claims.get("roles") or []
    return any(role in allowed for role in roles)


def _rbac_mail_send(sandbox: Sandbox, call: GraphCall, mailbox: str) -> bool:
    """Exchange's RBAC for Applications: the calling app may send from this mailbox."""
    app_id = call.claims.get("appid")
    return any(
        app.client_id == app_id and mailbox.lower() in {m.lower() for m in app.rbac_mail_send}
        for app in sandbox.config.apps
    )


def _denied(call: GraphCall, kind: str) -> Reply:
    if not call.claims.get("roles"):
        return graph_error(
            403, "accessDenied", "Either scp or roles claim need to be present in the token."
        )
    if kind == "users":
        return graph_error(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    if kind == "mail":
        return graph_error(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )
    return graph_error(403, "accessDenied", "Access denied")


# budgets


def graph_budget(sandbox: Sandbox, method: str, full_path: str) -> tuple[str | None, float]:
    """Which budget a Graph call draws on, and how many units (SharePoint resource units)."""
    path = full_path[len("/v1.0") :] if full_path.lower().startswith("/v1.0") else full_path
    lower = path.lower().rstrip("/")
    if lower.startswith("/$batch"):
        return None, 0.0
    if lower.startswith("/sites"):
        if method != "GET":
            return "sharepoint", 2.0
        single = re.search(r"/items/[^/]+(/fields)?$", lower) or not re.search(
            r"/(lists|items|columns)$", lower
        )
        return "sharepoint", 1.0 if single else 2.0
    match = re.match(r"/users/([^/]+)/sendmail$", lower)
    if match:
        key = unquote(path.split("/")[2])
        user = sandbox.store.user(key)
        return f"mailbox:{(user.upn if user else key).lower()}", 1.0
    if lower.startswith("/users"):
        return "directory", 1.0
    return None, 0.0


# sites and lists


def _site_json(sandbox: Sandbox, site: SiteRow, base: str) -> dict[str, Any]:
    name = site.path.rstrip("/").rsplit("/", 1)[-1]
    return {
        "@odata.context": f"{base}/$metadata#sites/$entity",
        "createdDateTime": site.created,
        "description": "",
        "id": site.id,
        "lastModifiedDateTime": site.created,
        "name": name,
        "webUrl": f"https://{site.hostname}{site.path}",
        "displayName": site.display_name,
        "root": {},
        "siteCollection": {"hostname": site.hostname},
    }


_KIND_FACETS: dict[str, dict[str, Any]] = {
    "text": {
        "allowMultipleLines": False,
        "appendChangesToExistingText": False,
        "linesForEditing": 0,
        "maxLength": 255,
    },
    "number": {"decimalPlaces": "automatic", "displayAs": "number"},
    "boolean": {},
    "dateTime": {"displayAs": "default", "format": "dateTime"},
}


def _column_json(column: Column, *, read_only: bool = False) -> dict[str, Any]:
    facet = dict(_KIND_FACETS[column.kind])
    if column.kind == "text" and column.multiline:
        facet.update(allowMultipleLines=True, linesForEditing=6, maxLength=0)
    return {
        "columnGroup": "Custom Columns",
        "description": "",
        "displayName": column.name,
        "enforceUniqueValues": False,
        "hidden": False,
        "id": column.id,
        "indexed": column.indexed,
        "name": column.name,
        "readOnly": read_only,
        "required": column.required,
        column.kind: facet,
    }


def _builtin_columns(lst: ListRow) -> list[dict[str, Any]]:
    """What every generic list has from its template: Title, and the read-only dates."""

    def builtin(name: str, kind: str) -> Column:
        return Column(name, kind, id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{lst.id}/{name}")))

    title = {**_column_json(builtin("Title", "text")), "columnGroup": "Custom Columns"}
    dates = [
        {**_column_json(builtin(n, "dateTime"), read_only=True), "columnGroup": "_Hidden"}
        for n in ("Modified", "Created")
    ]
    return [title, *dates]


def _columns_json(lst: ListRow) -> list[dict[str, Any]]:
    return [*_builtin_columns(lst), *(_column_json(c) for c in lst.columns)]


def _list_json(site: SiteRow, lst: ListRow, with_columns: bool) -> dict[str, Any]:
    etag = f'"{lst.id},{len(lst.columns)}"'
    body: dict[str, Any] = {
        "@odata.etag": etag,
        "createdDateTime": lst.created,
        "description": "",
        "eTag": etag,
        "id": lst.id,
        "lastModifiedDateTime": lst.modified,
        "name": lst.display_name.replace(" ", ""),
        "webUrl": f"https://{site.hostname}{site.path}/Lists/{quote(lst.display_name)}",
        "displayName": lst.display_name,
        "createdBy": {"user": {"displayName": "System Account"}},
        "parentReference": {"siteId": site.id},
        "list": {"contentTypesEnabled": False, "hidden": False, "template": "genericList"},
    }
    if with_columns:
        body["columns"] = _columns_json(lst)
    return body


def _fields_json(lst: ListRow, item: ItemRow, selected: list[str] | None) -> dict[str, Any]:
    """A fieldValueSet: columns with no value are left out, as SharePoint does."""
    values: dict[str, Any] = {
        "Title": item.fields.get("Title"),
        **{c.name: item.fields.get(c.name) for c in lst.columns},
        "id": str(item.id),
        "ContentType": "Item",
        "Modified": item.modified,
        "Created": item.created,
        "AuthorLookupId": "1073741822",
        "EditorLookupId": "1073741822",
        "_UIVersionString": f"{item.version}.0",
        "Attachments": False,
    }
    if selected is not None:
        wanted = {s.lower() for s in selected}
        values = {k: v for k, v in values.items() if k.lower() in wanted}
    return {"@odata.etag": item.etag, **{k: v for k, v in values.items() if v is not None}}


def _item_json(
    call: GraphCall,
    site: SiteRow,
    lst: ListRow,
    item: ItemRow,
    *,
    fields: bool | list[str] | None,
    select: list[str] | None = None,
) -> dict[str, Any]:
    """``fields`` False: no fields; True/None: all fields; a list: those fields."""
    app = {"application": {"id": call.claims.get("azp", ""), "displayName": "m365perf"}}
    body: dict[str, Any] = {
        "@odata.etag": item.etag,
        "createdDateTime": item.created,
        "eTag": item.etag,
        "id": str(item.id),
        "lastModifiedDateTime": item.modified,
        "webUrl": (
            f"https://{site.hostname}{site.path}/Lists/{quote(lst.display_name)}/{item.id}_.000"
        ),
        "createdBy": {**app, "user": {"displayName": "SharePoint App"}},
        "lastModifiedBy": {**app, "user": {"displayName": "SharePoint App"}},
        "parentReference": {"id": lst.id, "siteId": site.id},
        "contentType": {"id": "0x0100" + lst.id.replace("-", "").upper(), "name": "Item"},
    }
    if select is not None:
        wanted = {s.lower() for s in select}
        body = {k: v for k, v in body.items() if k.lower() in wanted or k == "@odata.etag"}
    if fields is not False:
        chosen = None if fields is True or fields is None else fields
        body["fields@odata.context"] = (
            f"{call.base}/$metadata#sites('{site.id}')/lists('{lst.id}')/items('{item.id}')/fields"
        )
        body["fields"] = _fields_json(lst, item, chosen)
    return body


def _split_site(path: str) -> tuple[str, str, str] | None:
    """``/sites/{host}:/{path}[:/rest]`` → ("path", host+path, rest); ``/sites/{id}/rest`` → id."""
    match = re.match(r"/sites/([^/:]+):(/[^:]*)(?::(/.*)?)?$", path, re.IGNORECASE)
    if match:
        host, server_path, rest = match.group(1), match.group(2), match.group(3) or ""
        return "path", f"{host}\n{server_path.rstrip('/')}", rest
    match = re.match(r"/sites/([^/]+)(/.*)?$", path, re.IGNORECASE)
    if match:
        return "id", match.group(1), match.group(2) or ""
    return None


def _find_site(sandbox: Sandbox, kind: str, key: str) -> SiteRow | None:
    if kind == "path":
        host, server_path = key.split("\n", 1)
        return sandbox.store.site_by_path(host, server_path or "/")
    return sandbox.store.site(key)


def _sites(sandbox: Sandbox, call: GraphCall) -> Reply:
    parsed = _split_site(call.path)
    if parsed is None:
        return invalid_request("Invalid hostname for this tenancy")
    need = _SITES_READ if call.method == "GET" else _SITES_WRITE
    if not _has_role(call, need):
        return _denied(call, "sites")
    site = _find_site(sandbox, parsed[0], parsed[1])
    if site is None:
        return item_not_found("Requested site could not be found")
    rest = parsed[2].rstrip("/")
    parts = [unquote(p) for p in rest.split("/")[1:]] if rest else []
    lowered = [p.lower() for p in parts]
    if not parts:
        return _ok(_site_json(sandbox, site, call.base)) if call.method == "GET" else _not_allowed()
    if lowered[0] != "lists":
        return _bad_segment(parts[0])
    if len(parts) == 1:
        if call.method == "GET":
            return _get_lists(sandbox, call, site)
        if call.method == "POST":
            return _create_list(sandbox, call, site)
        return _not_allowed()
    lst = sandbox.store.list_(site.id, parts[1])
    if lst is None:
        return item_not_found()
    if len(parts) == 2:
        if call.method == "DELETE":
            return _delete_list(sandbox, call, lst)
        if call.method != "GET":
            return _not_allowed()
        with_columns = "columns" in odata.expand(call.options)
        return _ok(
            {
                "@odata.context": f"{call.base}/$metadata#sites('{site.id}')/lists/$entity",
                **_list_json(site, lst, with_columns),
            }
        )
    if lowered[2] == "columns" and len(parts) == 3:
        if call.method == "GET":
            return _ok(
                {
                    "@odata.context": f"{call.base}/$metadata#sites('{site.id}')/lists('{lst.id}')"
                    "/columns",
                    "value": _columns_json(lst),
                }
            )
        if call.method == "POST":
            return _create_column(sandbox, call, site, lst)
        return _not_allowed()
    if lowered[2] == "columns" and len(parts) == 4:
        return _one_column(sandbox, call, site, lst, parts[3])
    if lowered[2] != "items":
        return _bad_segment(parts[2])
    if len(parts) == 3:
        if call.method == "GET":
            return _get_items(sandbox, call, site, lst)
        if call.method == "POST":
            return _create_item(sandbox, call, site, lst)
        return _not_allowed()
    if not parts[3].isdigit():
        return invalid_request(f"Invalid item id '{parts[3]}'")
    item_id = int(parts[3])
    if len(parts) == 4:
        if call.method == "GET":
            item = sandbox.store.item(lst.id, item_id)
            if item is None:
                return item_not_found()
            expanded = odata.expand(call.options)
            fields: bool | list[str] | None = expanded.get("fields", False)
            return _ok(
                {
                    "@odata.context": f"{call.base}/$metadata#sites('{site.id}')/lists('{lst.id}')"
                    "/items/$entity",
                    **_item_json(
                        call, site, lst, item, fields=fields, select=odata.select(call.options)
                    ),
                }
            )
        if call.method == "PATCH":
            return _update_item(sandbox, call, site, lst, item_id, fields_only=False)
        if call.method == "DELETE":
            return _delete_item(sandbox, call, lst, item_id)
        return _not_allowed()
    if len(parts) == 5 and lowered[4] == "fields":
        if call.method == "PATCH":
            return _update_item(sandbox, call, site, lst, item_id, fields_only=True)
        if call.method == "GET":
            item = sandbox.store.item(lst.id, item_id)
            if item is None:
                return item_not_found()
            return _ok(_fields_json(lst, item, odata.select(call.options)))
        return _not_allowed()
    return _bad_segment(parts[-1])


def _not_allowed() -> Reply:
    return graph_error(
        405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
    )


def _bad_segment(segment: str) -> Reply:
    return graph_error(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def _get_lists(sandbox: Sandbox, call: GraphCall, site: SiteRow) -> Reply:
    options = call.options
    lists = sandbox.store.lists(site.id)
    if "filter" in options:
        try:
            node = odata.parse_filter(options["filter"])
        except odata.ODataError as exc:
            return invalid_request(str(exc))
        lists = [
            lst
            for lst in lists
            if odata.matches(
                node,
                {
                    "displayName": lst.display_name,
                    "id": lst.id,
                    "name": lst.display_name.replace(" ", ""),
                },
            )
        ]
    with_columns = "columns" in odata.expand(options)
    return _ok(
        {
            "@odata.context": f"{call.base}/$metadata#sites('{site.id}')/lists",
            "value": [_list_json(site, lst, with_columns) for lst in lists],
        }
    )


def _parse_column(definition: Any) -> Column | Reply:
    if not isinstance(definition, dict) or not isinstance(definition.get("name"), str):
        return invalid_request("A column definition needs a name.")
    kinds = [k for k in _COLUMN_KINDS if k in definition]
    if len(kinds) != 1:
        return invalid_request(
            f"Column '{definition['name']}' needs exactly one of: {', '.join(_COLUMN_KINDS)}"
        )
    facet = definition[kinds[0]]
    return Column(
        name=definition["name"],
        kind=kinds[0],
        indexed=bool(definition.get("indexed", False)),
        id=str(uuid.uuid4()),
        required=bool(definition.get("required", False)),
        multiline=isinstance(facet, dict) and bool(facet.get("allowMultipleLines")),
    )


def _delete_list(sandbox: Sandbox, call: GraphCall, lst: ListRow) -> Reply:
    if not _has_role(call, _SITES_MANAGE):
        return _denied(call, "sites")
    sandbox.store.delete_list(lst.id)
    return Reply(204)


_COLUMN_UPDATES = {"indexed", "required", "description", "displayName", "hidden"}


def _one_column(sandbox: Sandbox, call: GraphCall, site: SiteRow, lst: ListRow, key: str) -> Reply:
    """GET, PATCH (``indexed``, ``required``) or DELETE one column, by id."""
    builtin = next((c for c in _builtin_columns(lst) if c["id"] == key), None)
    column = next((c for c in lst.columns if c.id.lower() == key.strip("{}").lower()), None)
    if call.method not in ("GET", "PATCH", "DELETE"):
        return _not_allowed()
    if builtin is not None:
        if call.method == "GET":
            return _ok(builtin)
        return graph_error(
            400, "invalidRequest", "The sandbox does not change a list's built-in columns."
        )
    if column is None:
        return item_not_found("The column could not be found.")
    if call.method == "GET":
        return _ok(_column_json(column))
    if not _has_role(call, _SITES_MANAGE):
        return _denied(call, "sites")
    if call.method == "DELETE":
        with sandbox.store.lock:
            current = sandbox.store.list_(site.id, lst.id)
            assert current is not None
            current.columns = [c for c in current.columns if c.id != column.id]
            current.modified = iso()
            sandbox.store.put_list(current)
        return Reply(204)
    try:
        patch = call.json()
    except json.JSONDecodeError:
        return _json_error()
    if not isinstance(patch, dict) or not patch:
        return invalid_request("Supply the columnDefinition properties to update.")
    unknown = sorted(set(patch) - _COLUMN_UPDATES)
    if unknown:
        return invalid_request(
            f"The sandbox updates only {', '.join(sorted(_COLUMN_UPDATES))}, not {unknown[0]}."
        )
    with sandbox.store.lock:
        current = sandbox.store.list_(site.id, lst.id)
        assert current is not None
        target = next(c for c in current.columns if c.id == column.id)
        if "indexed" in patch:
            target.indexed = bool(patch["indexed"])
        if "required" in patch:
            target.required = bool(patch["required"])
        current.modified = iso()
        sandbox.store.put_list(current)
    return _ok(_column_json(target))


def _create_list(sandbox: Sandbox, call: GraphCall, site: SiteRow) -> Reply:
    if not _has_role(call, _SITES_MANAGE):
        return _denied(call, "sites")
    try:
        payload = call.json()
    except json.JSONDecodeError:
        return _json_error()
    if not isinstance(payload, dict) or not isinstance(payload.get("displayName"), str):
        return invalid_request("A list needs a displayName.")
    name = payload["displayName"]
    columns: list[Column] = []
    for definition in payload.get("columns") or []:
        column = _parse_column(definition)
        if isinstance(column, Reply):
            return column
        columns.append(column)
    with sandbox.store.lock:
        if sandbox.store.list_(site.id, name) is not None:
            return graph_error(409, "nameAlreadyExists", "The specified list name already exists.")
        now = iso()
        lst = ListRow(str(uuid.uuid4()), site.id, name, columns, now, now)
        sandbox.store.put_list(lst)
    return _ok(
        {
            "@odata.context": f"{call.base}/$metadata#sites('{site.id}')/lists/$entity",
            **_list_json(site, lst, True),
        },
        201,
    )


def _create_column(sandbox: Sandbox, call: GraphCall, site: SiteRow, lst: ListRow) -> Reply:
    if not _has_role(call, _SITES_MANAGE):
        return _denied(call, "sites")
    try:
        column = _parse_column(call.json())
    except json.JSONDecodeError:
        return _json_error()
    if isinstance(column, Reply):
        return column
    with sandbox.store.lock:
        current = sandbox.store.list_(site.id, lst.id)
        assert current is not None
        if column.name == "Title" or current.column(column.name) is not None:
            return graph_error(
                409,
                "nameAlreadyExists",
                f'A duplicate field name "{column.name}" was found.',
            )
        current.columns.append(column)
        current.modified = iso()
        sandbox.store.put_list(current)
    return _ok(_column_json(column), 201)


# items


def _wants_non_indexed(call: GraphCall) -> bool:
    prefer = call.headers.get("prefer", "")
    return any(p.strip().lower() == _PREFER_NON_INDEXED for p in prefer.split(","))


def _filter_node(call: GraphCall, lst: ListRow) -> odata.Node | Reply | None:
    raw = call.options.get("filter")
    if raw is None:
        return None
    try:
        node = odata.parse_filter(raw)
    except odata.ODataError as exc:
        return invalid_request(str(exc))
    for path in odata.referenced_paths(node):
        if path.lower() == "id":
            continue
        if not path.lower().startswith("fields/"):
            return invalid_request(
                f"Could not find a property named '{path}' on type 'microsoft.graph.listItem'."
            )
        name = path.split("/", 1)[1]
        column = lst.column(name)
        if column is None and name != "Title":
            return invalid_request(
                f"Column '{name}' does not exist. It may have been deleted by another user."
            )
        indexed = column.indexed if column is not None else False
        if not indexed and not _wants_non_indexed(call):
            return not_indexed(name)
    return node


def _lookup(item: ItemRow) -> dict[str, Any]:
    values: dict[str, Any] = {f"fields/{k}": v for k, v in item.fields.items()}
    values["id"] = str(item.id)
    return values


def _get_items(sandbox: Sandbox, call: GraphCall, site: SiteRow, lst: ListRow) -> Reply:
    options = call.options
    if "orderby" in options:
        return invalid_request("$orderby on list items is not emulated by the sandbox.")
    node = _filter_node(call, lst)
    if isinstance(node, Reply):
        return node
    try:
        wanted_top = odata.top(options)
        start = odata.after_id(options["skiptoken"]) if "skiptoken" in options else 0
        expanded = odata.expand(options)
    except odata.ODataError as exc:
        return invalid_request(str(exc))
    page_size = min(wanted_top or sandbox.config.page_size, sandbox.config.page_size)
    matching = [
        item
        for item in sandbox.store.items(lst.id, start)
        if node is None or odata.matches(node, _lookup(item))
    ]
    page, more = matching[:page_size], len(matching) > page_size
    fields: bool | list[str] | None = expanded.get("fields", False)
    body: dict[str, Any] = {
        "@odata.context": f"{call.base}/$metadata#sites('{site.id}')/lists('{lst.id}')/items",
        "value": [
            _item_json(call, site, lst, item, fields=fields, select=odata.select(options))
            for item in page
        ],
    }
    if more:
        pairs = [
            (k, v)
            for k, v in parse_qsl(call.query, keep_blank_values=True)
            if k.lstrip("$").lower() != "skiptoken"
        ]
        pairs.append(("$skiptoken", odata.skiptoken(page[-1].id)))
        query = urlencode(pairs, safe="$(),/'=:", quote_via=quote)
        body["@odata.nextLink"] = f"{call.base}{quote(call.path, safe='/,:')}?{query}"
    return _ok(body)


def _check_value(column: Column | None, name: str, value: Any) -> Reply | None:
    if value is None:
        return None
    kind = "text" if column is None else column.kind
    single_line = column is None or not column.multiline
    if kind == "text" and single_line and isinstance(value, str) and len(value) > _TEXT_MAX:
        return invalid_request(
            f"The value of field '{name}' is longer than {_TEXT_MAX} characters, the most a "
            "single line of text holds."
        )
    ok = {
        "text": isinstance(value, str),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "dateTime": isinstance(value, str),
    }[kind]
    if ok:
        return None
    return invalid_request(f"Invalid value for field '{name}': expected {kind}")


def _clean_fields(lst: ListRow, fields: Any) -> dict[str, Any] | Reply:
    if not isinstance(fields, dict):
        return invalid_request("Invalid request")
    for name, value in fields.items():
        if name.startswith("@odata"):
            continue
        column = lst.column(name)
        if name in _READ_ONLY_FIELDS or (column is None and name != "Title"):
            return invalid_request(f"Field '{name}' is not recognized")
        problem = _check_value(column, name, value)
        if problem is not None:
            return problem
    return {k: v for k, v in fields.items() if not k.startswith("@odata")}


def _create_item(sandbox: Sandbox, call: GraphCall, site: SiteRow, lst: ListRow) -> Reply:
    try:
        payload = call.json()
    except json.JSONDecodeError:
        return _json_error()
    if not isinstance(payload, dict):
        return invalid_request("Invalid request")
    fields = _clean_fields(lst, payload.get("fields", {}))
    if isinstance(fields, Reply):
        return fields
    item = sandbox.store.new_item(lst.id, fields, str(uuid.uuid4()).upper(), iso())
    return _ok(
        {
            "@odata.context": f"{call.base}/$metadata#sites('{site.id}')/lists('{lst.id}')"
            "/items/$entity",
            **_item_json(call, site, lst, item, fields=True),
        },
        201,
        {"ETag": item.etag},
    )


def _etag_matches(header: str, item: ItemRow) -> bool:
    def norm(tag: str) -> str:
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        return tag.strip('"').lower()

    # SharePoint eTags contain a comma ("{GUID},3"), so split on quoted tags, not commas.
    tags = re.findall(r'(?:W/)?"[^"]*"|\*', header) or [header]
    wanted = [norm(t) for t in tags]
    return "*" in wanted or norm(item.etag) in wanted


def _precondition_failed() -> Reply:
    return graph_error(
        412,
        "preconditionFailed",
        "The provided eTag does not match the current eTag of the item.",
    )


def _update_item(
    sandbox: Sandbox,
    call: GraphCall,
    site: SiteRow,
    lst: ListRow,
    item_id: int,
    *,
    fields_only: bool,
) -> Reply:
    try:
        payload = call.json()
    except json.JSONDecodeError:
        return _json_error()
    patch = payload if fields_only else (payload or {}).get("fields", {})
    cleaned = _clean_fields(lst, patch)
    if isinstance(cleaned, Reply):
        return cleaned
    with sandbox.store.lock:
        item = sandbox.store.item(lst.id, item_id)
        if item is None:
            return item_not_found()
        if_match = call.headers.get("if-match")
        if if_match is not None and not _etag_matches(if_match, item):
            return _precondition_failed()
        item.fields.update(cleaned)
        item.fields = {k: v for k, v in item.fields.items() if v is not None}
        item.version += 1
        item.modified = iso()
        sandbox.store.save_item(item)
    headers = {"ETag": item.etag}
    if fields_only:
        return _ok(
            {
                "@odata.context": f"{call.base}/$metadata#sites('{site.id}')/lists('{lst.id}')"
                f"/items('{item.id}')/fields/$entity",
                **_fields_json(lst, item, None),
            },
            headers=headers,
        )
    return _ok(_item_json(call, site, lst, item, fields=True), headers=headers)


def _delete_item(sandbox: Sandbox, call: GraphCall, lst: ListRow, item_id: int) -> Reply:
    with sandbox.store.lock:
        item = sandbox.store.item(lst.id, item_id)
        if item is None:
            return item_not_found()
        if_match = call.headers.get("if-match")
        if if_match is not None and not _etag_matches(if_match, item):
            return _precondition_failed()
        sandbox.store.delete_item(lst.id, item_id)
    return Reply(204)


# users and mail


def _user_json(sandbox: Sandbox, key: str, base: str, context: str) -> dict[str, Any] | None:
    user = sandbox.store.user(key)
    if user is None:
        return None
    return {
        "@odata.context": f"{base}/$metadata#{context}",
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": user.given_name,
        "jobTitle": user.job_title,
        "mail": user.mail,
        "mobilePhone": None,
        "officeLocation": user.office,
        "preferredLanguage": "en-GB",
        "surname": user.surname,
        "userPrincipalName": user.upn,
        "id": user.id,
        "department": user.department,
    }


def _selected(body: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if select is None:
        return {k: v for k, v in body.items() if k != "department"}
    wanted = {s.lower() for s in select}
    return {k: v for k, v in body.items() if k.startswith("@odata") or k.lower() in wanted}


def _users(sandbox: Sandbox, call: GraphCall) -> Reply:
    parts = [unquote(p) for p in call.path.strip("/").split("/")]
    if len(parts) < 2:
        return graph_error(
            400, "BadRequest", "Listing users is not emulated; ask for one user by id or UPN."
        )
    key, tail = parts[1], [p.lower() for p in parts[2:]]
    if tail == ["sendmail"]:
        if call.method != "POST":
            return _not_allowed()
        if not _has_role(call, {"Mail.Send"}) and not _rbac_mail_send(sandbox, call, key):
            return _denied(call, "mail")
        try:
            payload = call.json()
        except json.JSONDecodeError:
            return _json_error()
        return send_mail(sandbox, key, payload)
    if tail == ["teamwork", "installedapps"]:
        return _install_app(sandbox, call, key)
    if call.method != "GET":
        return _not_allowed()
    if not _has_role(call, _USERS_READ):
        return _denied(call, "users")
    user = sandbox.store.user(key)
    if user is None:
        return resource_not_found(key)
    select = odata.select(call.options)
    if not tail:
        body = _user_json(sandbox, key, call.base, "users/$entity")
        assert body is not None
        body = _selected(body, select)
        expanded = odata.expand(call.options)
        if "manager" in expanded:  # ``$expand=manager($select=id)``: absent when none
            manager = _user_json(sandbox, user.manager_id or "", call.base, "")
            if manager is not None:
                manager = {"@odata.type": "#microsoft.graph.user", **manager}
                body["manager"] = _selected(manager, expanded["manager"])
        return _ok(body)
    if tail == ["manager"]:
        if user.manager_id is None or sandbox.store.user(user.manager_id) is None:
            return resource_not_found("manager")
        body = _user_json(sandbox, user.manager_id, call.base, "directoryObjects/$entity")
        assert body is not None
        body = {"@odata.type": "#microsoft.graph.user", **body}
        return _ok(_selected(body, select))
    return _bad_segment(parts[2])


def _install_app(sandbox: Sandbox, call: GraphCall, key: str) -> Reply:
    """``POST /users/{id}/teamwork/installedApps``: the bot, installed for one user (§6.1)."""
    if call.method != "POST":
        return _not_allowed()
    if not _has_role(call, _APP_INSTALL):
        return _denied(call, "teams app")
    user = sandbox.store.user(key)
    if user is None:
        return resource_not_found(key)
    try:
        payload = call.json()
    except json.JSONDecodeError:
        return _json_error()
    bind = payload.get("teamsApp@odata.bind") if isinstance(payload, dict) else None
    wanted = f"/appCatalogs/teamsApps/{sandbox.config.teams_app_catalog_id}"
    if not isinstance(bind, str) or not bind.lower().endswith(wanted.lower()):
        return graph_error(404, "NotFound", "The Teams app is not in the organisation's catalog.")
    if not sandbox.store.install_bot_for(user.id):
        return graph_error(409, "Conflict", "App is already installed for this user.")
    return Reply(201, {})


_HANDLERS: list[tuple[str, Callable[[Sandbox, GraphCall], Reply]]] = [
    ("/sites/", _sites),
    ("/users", _users),
]


def dispatch(sandbox: Sandbox, call: GraphCall) -> Reply:
    lower = call.path.lower()
    if lower == "/me" or lower.startswith("/me/"):
        return graph_error(
            400, "BadRequest", "/me request is only valid with delegated authentication flow."
        )
    for prefix, handler in _HANDLERS:
        if lower.startswith(prefix):
            return handler(sandbox, call)
    return _bad_segment(call.path.strip("/").split("/")[0])


# $batch


def _batch_error(message: str) -> Reply:
    return graph_error(400, "BadRequest", message)


def _part_reply(sandbox: Sandbox, envelope: GraphCall, part: dict[str, Any]) -> Reply:
    url = str(part.get("url", ""))
    if not url or urlsplit(url).scheme or url.lstrip("/").lower().startswith(("v1.0/", "beta/")):
        return _batch_error(f"Invalid request URL '{url}': use a URL relative to the version.")
    headers = {str(k).lower(): str(v) for k, v in (part.get("headers") or {}).items()}
    body = part.get("body")
    if body is not None and "content-type" not in headers:
        return _batch_error("Content-Type header must be specified for a request with a body.")
    split = urlsplit("/" + url.lstrip("/"))
    if split.path.lower().rstrip("/") == "/$batch":
        return _batch_error("A batch cannot contain another batch.")
    raw = (
        json.dumps(body).encode()
        if body is not None and not isinstance(body, str)
        else (body.encode() if isinstance(body, str) else b"")
    )
    call = GraphCall(
        method=str(part.get("method", "GET")).upper(),
        path=unquote(split.path),
        query=split.query,
        headers={**{k: v for k, v in envelope.headers.items() if k == "authorization"}, **headers},
        body=raw,
        base=envelope.base,
        claims=envelope.claims,
    )
    return dispatch(sandbox, call)


def _run_part(
    sandbox: Sandbox, envelope: GraphCall, part: dict[str, Any], batch_id: str, failed: bool
) -> Reply:
    at = time.time()
    method = str(part.get("method", "GET")).upper()
    url = "/" + str(part.get("url", "")).lstrip("/")
    path = "/v1.0" + urlsplit(url).path
    if failed:
        reply = graph_error(424, "FailedDependency", "Request failed due to a failed dependency.")
        sandbox.store.record(RequestRecord(at, method, path, 424, batch_id=batch_id))
        return reply
    budget, cost = graph_budget(sandbox, method, unquote(path))
    fault = sandbox.dice.draw(allow_drop=False)
    if fault in ("503", "429"):
        retry = sandbox.config.faults.retry_after_s
        reply = (
            unavailable("graph", retry)
            if fault == "503"
            else throttled("graph", budget or "graph", retry)
        )
        sandbox.store.record(
            RequestRecord(at, method, path, reply.status, budget, retry, fault, batch_id=batch_id)
        )
        return reply
    extra: dict[str, str] = {}
    if budget is not None:
        verdict = sandbox.throttle.take(budget, cost)
        extra = verdict.headers
        if verdict.retry_after is not None:
            reply = throttled("graph", budget, verdict.retry_after)
            reply.headers.update(extra)
            sandbox.store.record(
                RequestRecord(at, method, path, 429, budget, verdict.retry_after, batch_id=batch_id)
            )
            return reply
    reply = _part_reply(sandbox, envelope, part)
    reply.headers.update(extra)
    sandbox.store.record(
        RequestRecord(at, method, path, reply.status, budget, fault=fault, batch_id=batch_id)
    )
    return reply


def _batch(sandbox: Sandbox, envelope: GraphCall, batch_id: str) -> Reply:
    try:
        payload = envelope.json()
    except json.JSONDecodeError:
        return _json_error()
    parts = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(parts, list) or not parts:
        return _batch_error("Invalid batch payload format.")
    if len(parts) > BATCH_LIMIT:
        return _batch_error(f"Number of batch requests exceeds the maximum of {BATCH_LIMIT}.")
    ids: dict[str, dict[str, Any]] = {}
    for part in parts:
        if not isinstance(part, dict) or not all(k in part for k in ("id", "method", "url")):
            return _batch_error("Invalid batch payload format: each request needs id, method, url.")
        key = str(part["id"]).lower()
        if key in ids:
            return _batch_error(f"Batch request contains duplicate id '{part['id']}'.")
        ids[key] = part
    for part in parts:
        for dep in part.get("dependsOn") or []:
            if str(dep).lower() not in ids:
                return _batch_error(f"Request '{part['id']}' depends on unknown id '{dep}'.")
    statuses: dict[str, int] = {}
    responses: list[dict[str, Any]] = []

    def run(part: dict[str, Any], trail: tuple[str, ...]) -> None:
        key = str(part["id"]).lower()
        if key in statuses:
            return
        deps = [str(d).lower() for d in part.get("dependsOn") or []]
        for dep in deps:
            if dep in trail:
                raise ValueError("circular dependsOn")
            run(ids[dep], (*trail, key))
        failed = any(not 200 <= statuses[d] < 300 for d in deps)
        reply = _run_part(sandbox, envelope, part, batch_id, failed)
        statuses[key] = reply.status
        entry: dict[str, Any] = {
            "id": str(part["id"]),
            "status": reply.status,
            "headers": {"Content-Type": reply.media_type, **reply.headers}
            if reply.body is not None
            else dict(reply.headers),
        }
        if reply.body is not None:
            entry["body"] = reply.body
        responses.append(entry)

    try:
        for part in parts:
            run(part, ())
    except ValueError:
        return _batch_error("Batch requests have circular dependsOn.")
    if sandbox.config.batch_shuffle:
        sandbox.dice.shuffle(responses)  # type: ignore[arg-type]
    return Reply(200, {"responses": responses}, {}, "application/json")


def handle(sandbox: Sandbox, call: GraphCall, batch_id: str) -> Reply:
    if call.path.lower().rstrip("/") == "/$batch":
        if call.method != "POST":
            return _not_allowed()
        return _batch(sandbox, call, batch_id)
    return dispatch(sandbox, call)


@router.api_route("/v1.0/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
async def graph(rest: str, request: Request) -> Response:
    sandbox = sandbox_of(request)
    call = GraphCall(
        method=request.method,
        path=request.url.path[len("/v1.0") :],
        query=request.url.query,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=await request.body(),
        base=str(request.base_url).rstrip("/") + "/v1.0",
        claims=request.scope["state"].get("claims", {}),
    )
    batch_id = uuid.uuid4().hex
    if call.path.lower().rstrip("/") == "/$batch":
        request.scope["state"]["batch_id"] = batch_id
    reply = await run_in_threadpool(handle, sandbox, call, batch_id)
    return reply.response()
