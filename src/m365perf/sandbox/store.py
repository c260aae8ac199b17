"""The sandbox's state in one SQLite file, so a rehearsal survives a restart.

One connection behind one re-entrant lock: the emulator serves a handful of
clients, and a lock is simpler to reason about than SQLite's own locking when a
handler must read, check an eTag and write as one step (``with store.lock:``).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, upn TEXT NOT NULL UNIQUE COLLATE NOCASE, mail TEXT NOT NULL,
    display_name TEXT NOT NULL, given_name TEXT NOT NULL, surname TEXT NOT NULL,
    job_title TEXT NOT NULL, department TEXT NOT NULL, office TEXT NOT NULL,
    manager_id TEXT, teams_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sites (
    id TEXT PRIMARY KEY, hostname TEXT NOT NULL, path TEXT NOT NULL COLLATE NOCASE,
    display_name TEXT NOT NULL, created TEXT NOT NULL, UNIQUE (hostname, path)
);
CREATE TABLE IF NOT EXISTS lists (
    id TEXT PRIMARY KEY, site_id TEXT NOT NULL, display_name TEXT NOT NULL COLLATE NOCASE,
    columns TEXT NOT NULL, created TEXT NOT NULL, modified TEXT NOT NULL,
    next_item_id INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS items (
    list_id TEXT NOT NULL, id INTEGER NOT NULL, fields TEXT NOT NULL, etag_guid TEXT NOT NULL,
    version INTEGER NOT NULL, created TEXT NOT NULL, modified TEXT NOT NULL,
    PRIMARY KEY (list_id, id)
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    mailbox TEXT NOT NULL COLLATE NOCASE, folder TEXT NOT NULL, sender TEXT NOT NULL,
    message TEXT NOT NULL, card TEXT, received TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_mailbox ON messages (mailbox);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, bot_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS activities (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, id TEXT NOT NULL,
    activity TEXT NOT NULL, card TEXT, created TEXT NOT NULL, updated TEXT NOT NULL,
    UNIQUE (conversation_id, id)
);
CREATE TABLE IF NOT EXISTS datasets (
    workspace TEXT NOT NULL COLLATE NOCASE, dataset TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL, PRIMARY KEY (workspace, dataset)
);
CREATE TABLE IF NOT EXISTS refreshes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL UNIQUE,
    workspace TEXT NOT NULL, dataset TEXT NOT NULL, refresh_type TEXT NOT NULL,
    started REAL NOT NULL, duration_s REAL NOT NULL, fails INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, method TEXT NOT NULL,
    path TEXT NOT NULL, budget TEXT, status INTEGER NOT NULL, retry_after INTEGER,
    fault TEXT, batch_id TEXT
);
"""


def iso(epoch: float | None = None) -> str:
    """Graph's timestamp shape: UTC, ``Z``, whole seconds."""
    moment = dt.datetime.fromtimestamp(time.time() if epoch is None else epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class UserRow:
    id: str
    upn: str
    mail: str
    display_name: str
    given_name: str
    surname: str
    job_title: str
    department: str
    office: str
    manager_id: str | None
    teams_id: str


@dataclass
class SiteRow:
    id: str
    hostname: str
    path: str
    display_name: str
    created: str


@dataclass
class Column:
    """A list column: ``kind`` is text, number, boolean or dateTime."""

    name: str
    kind: str = "text"
    indexed: bool = False
    id: str = ""
    required: bool = False
    multiline: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "indexed": self.indexed,
            "id": self.id,
            "required": self.required,
            "multiline": self.multiline,
        }


@dataclass
class ListRow:
    id: str
    site_id: str
    display_name: str
    columns: list[Column]
    created: str
    modified: str

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass
class ItemRow:
    list_id: str
    id: int
    fields: dict[str, Any]
    etag_guid: str
    version: int
    created: str
    modified: str

    @property
    def etag(self) -> str:
        return f'"{{{self.etag_guid}}},{self.version}"'


@dataclass
class MessageRow:
    id: str
    mailbox: str
    folder: str
    sender: str
    message: dict[str, Any]
    card: dict[str, Any] | None
    received: str


@dataclass
class ActivityRow:
    conversation_id: str
    id: str
    activity: dict[str, Any]
    card: dict[str, Any] | None
    created: str
    updated: str


@dataclass
class RefreshRow:
    id: int
    request_id: str
    workspace: str
    dataset: str
    refresh_type: str
    started: float
    duration_s: float
    fails: bool


@dataclass
class RequestRecord:
    """One request as the sandbox saw it; a $batch envelope and its parts share ``batch_id``."""

    at: float
    method: str
    path: str
    status: int
    budget: str | None = None
    retry_after: int | None = None
    fault: str | None = None
    batch_id: str | None = None
    id: int = field(default=0)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Store:
    """Typed access to the sandbox tables. Every method is safe to call from any thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self.lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self.lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes so a crash leaves all or nothing (the seed, a $batch part)."""
        with self.lock:
            self._db.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self.lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return list(self._db.execute(sql, args).fetchall())

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self.lock:
            cursor = self._db.execute(sql, args)
            return int(cursor.lastrowid or 0)

    # meta
    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # users
    def put_user(self, user: UserRow) -> None:
        self._run(
            "INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user.id,
                user.upn,
                user.mail,
                user.display_name,
                user.given_name,
                user.surname,
                user.job_title,
                user.department,
                user.office,
                user.manager_id,
                user.teams_id,
            ),
        )

    def user(self, key: str) -> UserRow | None:
        """By object id, UPN, mail or Teams id (``29:…``), case-insensitively."""
        row = self._one(
            "SELECT * FROM users WHERE id = ? COLLATE NOCASE OR upn = ? COLLATE NOCASE"
            " OR mail = ? COLLATE NOCASE OR teams_id = ?",
            (key, key, key, key),
        )
        return None if row is None else UserRow(**dict(row))

    def users(self) -> list[UserRow]:
        return [UserRow(**dict(r)) for r in self._all("SELECT * FROM users ORDER BY upn")]

    # sites and lists
    def put_site(self, site: SiteRow) -> None:
        self._run(
            "INSERT OR REPLACE INTO sites VALUES (?, ?, ?, ?, ?)",
            (site.id, site.hostname, site.path, site.display_name, site.created),
        )

    def site_by_path(self, hostname: str, path: str) -> SiteRow | None:
        row = self._one(
            "SELECT * FROM sites WHERE hostname = ? COLLATE NOCASE AND path = ?",
            (hostname, "/" + path.strip("/")),
        )
        return None if row is None else SiteRow(**dict(row))

    def site(self, site_id: str) -> SiteRow | None:
        row = self._one("SELECT * FROM sites WHERE id = ? COLLATE NOCASE", (site_id,))
        return None if row is None else SiteRow(**dict(row))

    @staticmethod
    def _list_row(row: sqlite3.Row) -> ListRow:
        columns = [Column(**c) for c in json.loads(row["columns"])]
        return ListRow(
            row["id"], row["site_id"], row["display_name"], columns, row["created"], row["modified"]
        )

    def put_list(self, lst: ListRow) -> None:
        with self.lock:
            existing = self._one("SELECT next_item_id FROM lists WHERE id = ?", (lst.id,))
            next_id = 1 if existing is None else int(existing["next_item_id"])
            self._run(
                "INSERT OR REPLACE INTO lists VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    lst.id,
                    lst.site_id,
                    lst.display_name,
                    json.dumps([c.as_json() for c in lst.columns]),
                    lst.created,
                    lst.modified,
                    next_id,
                ),
            )

    def list_(self, site_id: str, key: str) -> ListRow | None:
        """By list id (GUID, braces optional) or display title."""
        bare = key.strip("{}")
        row = self._one(
            "SELECT * FROM lists WHERE site_id = ? AND (id = ? COLLATE NOCASE OR display_name = ?)",
            (site_id, bare, key),
        )
        return None if row is None else self._list_row(row)

    def delete_list(self, list_id: str) -> None:
        """The list and every item in it, as SharePoint's delete (recycle bin aside)."""
        with self.lock:
            self._run("DELETE FROM items WHERE list_id = ?", (list_id,))
            self._run("DELETE FROM lists WHERE id = ?", (list_id,))

    def lists(self, site_id: str) -> list[ListRow]:
        rows = self._all("SELECT * FROM lists WHERE site_id = ? ORDER BY created, id", (site_id,))
        return [self._list_row(r) for r in rows]

    # items
    @staticmethod
    def _item_row(row: sqlite3.Row) -> ItemRow:
        return ItemRow(
            row["list_id"],
            int(row["id"]),
            json.loads(row["fields"]),
            row["etag_guid"],
            int(row["version"]),
            row["created"],
            row["modified"],
        )

    def new_item(self, list_id: str, fields: dict[str, Any], etag_guid: str, now: str) -> ItemRow:
        with self.lock:
            row = self._one("SELECT next_item_id FROM lists WHERE id = ?", (list_id,))
            if row is None:
                raise KeyError(list_id)
            item_id = int(row["next_item_id"])
            self._run("UPDATE lists SET next_item_id = ? WHERE id = ?", (item_id + 1, list_id))
            item = ItemRow(list_id, item_id, fields, etag_guid, 1, now, now)
            self.save_item(item)
            return item

    def save_item(self, item: ItemRow) -> None:
        self._run(
            "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                item.list_id,
                item.id,
                json.dumps(item.fields),
                item.etag_guid,
                item.version,
                item.created,
                item.modified,
            ),
        )

    def item(self, list_id: str, item_id: int) -> ItemRow | None:
        row = self._one("SELECT * FROM items WHERE list_id = ? AND id = ?", (list_id, item_id))
        return None if row is None else self._item_row(row)

    def items(self, list_id: str, after_id: int = 0) -> list[ItemRow]:
        rows = self._all(
            "SELECT * FROM items WHERE list_id = ? AND id > ? ORDER BY id", (list_id, after_id)
        )
        return [self._item_row(r) for r in rows]

    def delete_item(self, list_id: str, item_id: int) -> None:
        self._run("DELETE FROM items WHERE list_id = ? AND id = ?", (list_id, item_id))

    # mail
    def put_message(self, msg: MessageRow) -> None:
        self._run(
            "INSERT INTO messages (id, mailbox, folder, sender, message, card, received)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                msg.id,
                msg.mailbox,
                msg.folder,
                msg.sender,
                json.dumps(msg.message),
                None if msg.card is None else json.dumps(msg.card),
                msg.received,
            ),
        )

    @staticmethod
    def _message_row(row: sqlite3.Row) -> MessageRow:
        return MessageRow(
            row["id"],
            row["mailbox"],
            row["folder"],
            row["sender"],
            json.loads(row["message"]),
            _loads(row["card"]),
            row["received"],
        )

    def messages(self, mailbox: str) -> list[MessageRow]:
        rows = self._all("SELECT * FROM messages WHERE mailbox = ? ORDER BY seq", (mailbox,))
        return [self._message_row(r) for r in rows]

    def message(self, message_id: str) -> MessageRow | None:
        row = self._one("SELECT * FROM messages WHERE id = ?", (message_id,))
        return None if row is None else self._message_row(row)

    def set_message_card(self, message_id: str, card: dict[str, Any]) -> None:
        self._run("UPDATE messages SET card = ? WHERE id = ?", (json.dumps(card), message_id))

    # Teams
    def put_conversation(self, cid: str, user_id: str, bot_id: str, tenant_id: str) -> None:
        self._run(
            "INSERT OR IGNORE INTO conversations VALUES (?, ?, ?, ?, ?)",
            (cid, user_id, bot_id, tenant_id, iso()),
        )

    def conversation(self, cid: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM conversations WHERE id = ?", (cid,))
        return None if row is None else dict(row)

    def remove_bot_for(self, user_id: str) -> None:
        """The user removed the bot: their 1:1 chats with it are gone (404 from now on)
        and it must be installed again before a chat can be opened (403 until then)."""
        self.set_meta(f"bot_removed:{user_id}", "1")
        self._run("DELETE FROM conversations WHERE user_id = ?", (user_id,))

    def bot_installed_for(self, user_id: str) -> bool:
        return self.get_meta(f"bot_removed:{user_id}") != "1"

    def install_bot_for(self, user_id: str) -> bool:
        """False when it was installed already."""
        if self.bot_installed_for(user_id):
            return False
        self.set_meta(f"bot_removed:{user_id}", "0")
        return True

    def conversations_of(self, user_id: str) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT * FROM conversations WHERE user_id = ? ORDER BY created", (user_id,)
        )
        return [dict(r) for r in rows]

    def put_activity(self, act: ActivityRow) -> None:
        self._run(
            "INSERT OR REPLACE INTO activities (conversation_id, id, activity, card, created,"
            " updated) VALUES (?, ?, ?, ?, ?, ?)",
            (
                act.conversation_id,
                act.id,
                json.dumps(act.activity),
                None if act.card is None else json.dumps(act.card),
                act.created,
                act.updated,
            ),
        )

    @staticmethod
    def _activity_row(row: sqlite3.Row) -> ActivityRow:
        return ActivityRow(
            row["conversation_id"],
            row["id"],
            json.loads(row["activity"]),
            _loads(row["card"]),
            row["created"],
            row["updated"],
        )

    def activity(self, cid: str, aid: str) -> ActivityRow | None:
        row = self._one("SELECT * FROM activities WHERE conversation_id = ? AND id = ?", (cid, aid))
        return None if row is None else self._activity_row(row)

    def activities(self, cid: str) -> list[ActivityRow]:
        rows = self._all("SELECT * FROM activities WHERE conversation_id = ? ORDER BY seq", (cid,))
        return [self._activity_row(r) for r in rows]

    # Power BI
    def put_dataset(self, workspace: str, dataset: str, name: str) -> None:
        self._run("INSERT OR REPLACE INTO datasets VALUES (?, ?, ?)", (workspace, dataset, name))

    def dataset_exists(self, workspace: str, dataset: str) -> bool:
        row = self._one(
            "SELECT 1 FROM datasets WHERE workspace = ? AND dataset = ?", (workspace, dataset)
        )
        return row is not None

    def datasets(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM datasets ORDER BY name")]

    def add_refresh(self, refresh: RefreshRow) -> int:
        return self._run(
            "INSERT INTO refreshes (request_id, workspace, dataset, refresh_type, started,"
            " duration_s, fails) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                refresh.request_id,
                refresh.workspace.lower(),
                refresh.dataset.lower(),
                refresh.refresh_type,
                refresh.started,
                refresh.duration_s,
                int(refresh.fails),
            ),
        )

    def refreshes(self, workspace: str, dataset: str, since: float = 0.0) -> list[RefreshRow]:
        """Newest first, as the refresh history lists them."""
        rows = self._all(
            "SELECT * FROM refreshes WHERE workspace = ? AND dataset = ? AND started >= ?"
            " ORDER BY id DESC",
            (workspace.lower(), dataset.lower(), since),
        )
        return [
            RefreshRow(
                int(r["id"]),
                r["request_id"],
                r["workspace"],
                r["dataset"],
                r["refresh_type"],
                float(r["started"]),
                float(r["duration_s"]),
                bool(r["fails"]),
            )
            for r in rows
        ]

    # request log
    def record(self, rec: RequestRecord) -> int:
        return self._run(
            "INSERT INTO requests (at, method, path, budget, status, retry_after, fault,"
            " batch_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.at,
                rec.method,
                rec.path,
                rec.budget,
                rec.status,
                rec.retry_after,
                rec.fault,
                rec.batch_id,
            ),
        )

    def requests(self, after_id: int = 0, budget: str | None = None) -> list[RequestRecord]:
        sql = "SELECT * FROM requests WHERE id > ?"
        args: tuple[Any, ...] = (after_id,)
        if budget is not None:
            sql += " AND budget = ?"
            args += (budget,)
        return [RequestRecord(**dict(r)) for r in self._all(sql + " ORDER BY id", args)]
