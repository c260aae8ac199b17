"""The shipped migrations build exactly the tables the code declares, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from store_helpers import FLOW, PERIOD

from m365perf.domain.kinds import Frequency
from m365perf.store import SchemaOutOfDate, SqlStore, create_store
from m365perf.store.migrate import current_revision, head_revision, upgrade
from m365perf.store.sql import make_engine
from m365perf.store.tables import metadata


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


def test_upgrade_builds_the_declared_schema_and_is_repeatable(
    empty_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may depend on the working directory
    assert current_revision(empty_database) is None
    upgrade(empty_database)
    upgrade(empty_database)  # a second instance starting up changes nothing
    engine = make_engine(empty_database)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []
    assert current_revision(empty_database) == head_revision()


def test_a_database_from_the_last_release_is_refused_then_migrated_with_its_data(
    empty_database: str,
) -> None:
    upgrade(empty_database, "0002")
    engine = make_engine(empty_database)  # what the previous release wrote, in its own SQL
    try:
        with engine.begin() as db:
            db.execute(
                text(
                    "INSERT INTO cycle (id, flow_id, period, period_start, frequency, opened_at,"
                    " due_date, status) VALUES (1, :flow, :period, '2026-09-01', 'monthly',"
                    " '2026-10-01 09:00:00+00', '2026-10-10', 'open')"
                ),
                {"flow": FLOW, "period": PERIOD},
            )
            for rid, key, status in (
                (1, "A", "returned"),
                (2, "B", "awaiting"),
                (3, "C", "approved"),
            ):
                db.execute(
                    text(
                        "INSERT INTO indicator_return (id, cycle_id, indicator_key, version,"
                        " status, late, outlier_confirmed, data_quality_flag, reminders_sent,"
                        " current_step, created_at, updated_at) VALUES (:id, 1, :key, 2, :status,"
                        " false, false, false, 0, 0, '2026-10-02 09:00:00+00',"
                        " '2026-10-02 09:00:00+00')"
                    ),
                    {"id": rid, "key": key, "status": status},
                )
            for index, name in enumerate(("Supervisor", "Head of service")):
                db.execute(
                    text(
                        "INSERT INTO approval_step (return_id, return_version, step_index, name,"
                        " approvers, any_of, status, created_at) VALUES (1, 2, :index, :name,"
                        " '[\"sup\"]', true, 'pending', '2026-10-02 09:00:00+00')"
                    ),
                    {"index": index, "name": name},
                )
            # Left over by the out-of-order bug: an approved return whose first step is open.
            db.execute(
                text(
                    "INSERT INTO approval_step (return_id, return_version, step_index, name,"
                    " approvers, any_of, status, created_at) VALUES (3, 2, 0, 'Supervisor',"
                    " '[\"sup\"]', true, 'escalated', '2026-10-02 09:00:00+00')"
                )
            )
    finally:
        engine.dispose()
    with pytest.raises(SchemaOutOfDate, match="revision 0002"):
        create_store(empty_database)
    store = create_store(empty_database, migrate=True)
    try:
        with store.transaction() as tx:
            cycle = tx.find_cycle(FLOW, PERIOD)
            steps = tx.list_steps(1)
            (leftover,) = tx.list_steps(3)
            assert tx.list_people() == []  # and the tables of 0002 are there
    finally:
        store.close()
    # The return in approval is collecting; its first undecided step is the current one.
    assert cycle is not None and (cycle.status, cycle.version) == ("collecting", 1)
    assert [(s.name, s.status, s.version) for s in steps] == [
        ("Supervisor", "asked", 1),
        ("Head of service", "pending", 1),
    ]
    # An open step on a return no longer in approval is nobody's turn: skipped, with why.
    assert leftover.status == "skipped" and "migration 0003" in (leftover.reason or "")


def test_history_kept_per_flow_is_carried_over_per_indicator(empty_database: str) -> None:
    upgrade(empty_database, "0003")
    engine = make_engine(empty_database)  # 0003's history: per flow
    try:
        with engine.begin() as db:
            for rid, flow, key, period, start, value, at in (
                (1, "old-flow", "CP01", "2024/25", "2024-04-01", 10.0, "2025-01-01 09:00:00+00"),
                (2, "new-flow", "CP01", "2024/25", "2024-04-01", 11.0, "2025-02-01 09:00:00+00"),
                (3, "q-flow", "CP01", "2024/25 Q1", "2024-04-01", 3.0, "2025-01-01 09:00:00+00"),
                (4, "old-flow", "CP02", "2024-04", "2024-04-01", 7.5, "2025-01-01 09:00:00+00"),
            ):
                db.execute(
                    text(
                        "INSERT INTO history_value (id, flow_id, indicator_key, period,"
                        " period_start, value, source, recorded_at) VALUES (:id, :flow, :key,"
                        " :period, :start, :value, 'import:old.csv', :at)"
                    ),
                    {
                        "id": rid,
                        "flow": flow,
                        "key": key,
                        "period": period,
                        "start": start,
                        "value": value,
                        "at": at,
                    },
                )
    finally:
        engine.dispose()
    store = create_store(empty_database, migrate=True)
    try:
        with store.transaction() as tx:
            annual = tx.history("CP01", Frequency.ANNUAL)
            quarterly = tx.history("CP01", Frequency.QUARTERLY)
            monthly = tx.history("CP02", Frequency.MONTHLY)
    finally:
        store.close()
    # Two flows held 2024/25: the value recorded last is kept; its Q1 is its own point.
    assert [(p.period, p.value) for p in annual] == [("2024/25", 11.0)]
    assert [(p.period, p.value) for p in quarterly] == [("2024/25 Q1", 3.0)]
    assert [(p.period, p.value, p.source) for p in monthly] == [("2024-04", 7.5, "import:old.csv")]


def test_create_store_gives_the_sql_store_for_a_sqlite_file(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path / 'x.db'}", migrate=True)
    assert isinstance(store, SqlStore)
    store.close()


def test_a_database_that_was_never_migrated_is_refused_up_front(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with pytest.raises(SchemaOutOfDate, match="revision none"):
        create_store(url)
    upgrade(url)
    create_store(url).close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "database_url"),
        ("mysql://localhost/db", "unsupported database 'mysql'"),
        ("memory://", "unsupported database 'memory'"),
        ("sqlite://", "in-memory SQLite.*m365perf.store.testing"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("sqlite:///file:kpis?mode=memory&cache=shared&uri=true", "in-memory SQLite"),
    ],
)
def test_create_store_explains_urls_it_cannot_use(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_store(url)
