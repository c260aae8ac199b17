"""Bring a database's schema to the version this code needs, from Python, anywhere.

The migrations ship inside the package; nothing depends on the current directory or an
``alembic.ini`` next to it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from m365perf.store import sql as _sql

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["database_url"] = url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at ``database_url`` to ``revision`` (default: the latest)."""
    url = _sql.database_url(database_url).render_as_string(hide_password=False)
    command.upgrade(_config(url), revision)


def upgrade_connection(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind an open connection, for one that no URL can reach.

    That is :mod:`m365perf.store.testing`'s in-memory SQLite; production uses :func:`upgrade`.
    """
    config = _config("")
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def head_revision() -> str:
    """The revision this code's schema is at."""
    head = ScriptDirectory.from_config(_config("")).get_current_head()
    assert head is not None, "the package ships at least one migration"
    return head


def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or ``None`` when it has never been migrated."""
    engine = _sql.make_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
