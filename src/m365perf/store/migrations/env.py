"""Alembic environment for the store: the URL comes from the caller, never from the CWD.

:func:`m365perf.store.migrate.upgrade` passes the URL in the config's attributes; the
``alembic`` command line (for writing new revisions) reads ``-x url=…``.
:func:`~m365perf.store.migrate.upgrade_connection` passes an open connection instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from m365perf.store.sql import advisory_lock_id, make_engine
from m365perf.store.tables import metadata

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or context.get_x_argument(as_dictionary=True).get(
        "url"
    )
    if not url:
        raise SystemExit("no database URL: call m365perf.store.migrate.upgrade or pass -x url=…")
    return str(url)


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given: Connection | None = config.attributes.get("connection")
    if given is not None:  # a database no URL reaches (m365perf.store.testing's in-memory one)
        _run_on(given)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two instances starting together migrate one after the other.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:k)"),
                {"k": advisory_lock_id("m365perf:migrate")},
            )
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
