"""The real SQL store on in-memory SQLite, for tests that want speed.

Production refuses in-memory SQLite URLs (the database would vanish with its connection,
and the council's returns with it); this module is the only way in. What a test gets is
:class:`~m365perf.store.sql.SqlStore` itself, on the schema the Alembic migrations build,
so there is no second implementation to keep in step with the first.

Each :func:`memory_store` is a database of its own behind one connection. The pool
lends that connection to one thread at a time, so a transaction on another thread waits
for it (as writers queue on ``BEGIN IMMEDIATE`` on a file) instead of joining it.

The migrations run once per process, on a template database; each store starts as a
copy of it made with SQLite's backup API, which takes well under a millisecond where
running the migrations again would take tens of milliseconds for every test.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import QueuePool

from m365perf.store import migrate
from m365perf.store.sql import SqlStore, _sqlite_begin, _sqlite_connect

WAIT_FOR_CONNECTION = 30.0
"""Seconds a thread waits for another's transaction to end, like SQLite's busy timeout."""

_template_lock = threading.Lock()
_template: sqlite3.Connection | None = None


def memory_store() -> SqlStore:
    """A new, empty store on in-memory SQLite, at the current schema; gone when closed."""
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    with _template_lock:
        _migrated_template().backup(connection)
    return SqlStore(_engine_on(connection))


def _migrated_template() -> sqlite3.Connection:
    global _template
    if _template is None:
        template = sqlite3.connect(":memory:", check_same_thread=False)
        engine = _engine_on(template)
        with engine.connect() as connection:
            migrate.upgrade_connection(connection)
        _template = template  # the engine is dropped, not disposed: that would close it
    return _template


def _engine_on(connection: sqlite3.Connection) -> Engine:
    """An engine whose pool is this one connection, set up as ``make_engine`` sets SQLite."""
    engine = create_engine(
        "sqlite://",
        creator=_only(connection),
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=WAIT_FOR_CONNECTION,
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _only(connection: sqlite3.Connection) -> Callable[[], sqlite3.Connection]:
    """Hand out ``connection`` once: a second connection would be a new, empty database."""
    handed = False

    def creator() -> sqlite3.Connection:
        nonlocal handed
        if handed:
            raise RuntimeError(
                "this in-memory store's database is gone (the store was closed); "
                "make a new one with memory_store()"
            )
        handed = True
        return connection

    return creator


class StatementCount:
    """The SQL statements a store ran while counted: how much work a click costs.

    ``statements`` holds each statement's first line, so a test or a benchmark can say
    which reads repeat, not only how many there were; ``transactions`` counts the
    transactions begun.
    """

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.transactions = 0

    @property
    def count(self) -> int:
        return len(self.statements)

    @property
    def reads(self) -> int:
        """The statements that only read (``SELECT``)."""
        return sum(1 for s in self.statements if s.upper().startswith("SELECT"))

    @property
    def writes(self) -> int:
        return self.count - self.reads


@contextlib.contextmanager
def counting_statements(store: SqlStore | Engine) -> Iterator[StatementCount]:
    """Count every statement sent to the database but ``BEGIN`` (which SQLite's store
    sends itself and PostgreSQL's driver implies), ``COMMIT`` and SQLite's ``PRAGMA``s."""
    engine = store if isinstance(store, Engine) else store.engine
    counted = StatementCount()

    def _seen(
        _conn: object, _cursor: object, statement: str, _params: object, _ctx: object, _many: bool
    ) -> None:
        text = statement.strip()
        if not text.upper().startswith(("BEGIN", "COMMIT", "PRAGMA")):
            counted.statements.append(text.split("\n", 1)[0])

    def _begun(_conn: object) -> None:
        counted.transactions += 1

    event.listen(engine, "before_cursor_execute", _seen)
    event.listen(engine, "begin", _begun)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", _seen)
        event.remove(engine, "begin", _begun)
