"""Pick the store for a database URL, and refuse a database the code does not match."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from m365perf.store import migrate as _migrate
from m365perf.store.base import Store
from m365perf.store.errors import StoreError, StoreUnreachable
from m365perf.store.sql import SqlStore


class SchemaOutOfDate(StoreError):
    """The database is not at the schema revision this code needs; run the migrations."""


def create_store(database_url: str, *, migrate: bool = False) -> Store:
    """A store for ``database_url``: ``sqlite:///FILE`` or ``postgresql://…``.

    With ``migrate=True`` the database is first brought up to date (safe to do from several
    instances at once); otherwise a database behind the code raises ``SchemaOutOfDate``
    now, rather than "no such table" in the middle of a cycle.
    """
    if not isinstance(database_url, str) or not database_url.strip():
        raise ValueError("database_url must be a URL such as sqlite:///m365perf.db")
    store = SqlStore(database_url)  # checks the URL before anything touches the database
    try:
        if migrate:
            _migrate.upgrade(database_url)
        current, head = _migrate.current_revision(database_url), _migrate.head_revision()
        if current != head:
            raise SchemaOutOfDate(
                f"the database is at schema revision {current or 'none'}, this code needs "
                f"{head}: run `m365perf db upgrade` (from Python: m365perf.store.migrate.upgrade)"
            )
    except (OperationalError, InterfaceError) as failed:
        store.close()
        where = make_url(database_url).render_as_string(hide_password=True)
        reason = str(getattr(failed, "orig", None) or failed).strip().splitlines()[0]
        raise StoreUnreachable(f"cannot reach the database {where}: {reason}") from None
    except BaseException:
        store.close()
        raise
    return store
