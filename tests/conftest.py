"""Shared test fixtures: the PostgreSQL server, when the suite is asked to use it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

POSTGRES_URL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("M365PERF_TEST_POSTGRES_URL", POSTGRES_URL_DEFAULT)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fail loudly (never skip silently) when CI asks for PostgreSQL and it is not there."""
    if not any(item.get_closest_marker("postgres") for item in items):
        return
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(postgres_url())
        with engine.connect():
            pass
        engine.dispose()
        reachable = True
    except Exception as exc:  # any connection failure means "not reachable"
        reachable = False
        reason = f"PostgreSQL not reachable at {postgres_url()}: {exc}"
    if reachable:
        return
    if os.environ.get("M365PERF_REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError(reason)
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip)


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema, dropped afterwards.

    Each test gets its own tables, so tests never see each other's rows and can rerun.
    """
    import uuid

    import sqlalchemy
    from sqlalchemy.engine import make_url

    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sqlalchemy.create_engine(postgres_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    base = make_url(postgres_url())
    options = " ".join(filter(None, [base.query.get("options"), f"-csearch_path={schema}"]))
    url = base.update_query_dict({"options": options})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
