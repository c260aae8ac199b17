"""The store on SQLAlchemy: SQLite (one process, embedded) and PostgreSQL (several instances).

The same statements run on both. What differs is kept here, small and explicit:

* SQLite transactions start with ``BEGIN IMMEDIATE`` so writers queue on the busy
  timeout instead of failing with "database is locked" when two upgrade a read lock.
* PostgreSQL claims rows with ``FOR UPDATE SKIP LOCKED`` (SQLite drops the clause and
  needs none: its writers are serialised) and holds the scheduler's advisory lock on a
  dedicated connection.
* Idempotent creation is ``INSERT … ON CONFLICT DO NOTHING`` on a unique key, never a
  read-then-write, so concurrent callers cannot both create.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Insert
from sqlmodel import SQLModel, col

from m365perf.domain import lifecycle
from m365perf.domain.kinds import Frequency
from m365perf.domain.lifecycle import Event, Machine
from m365perf.store import _checks
from m365perf.store.base import DEFAULT_LEASE, Store, Transaction
from m365perf.store.errors import AlreadyDecided, NotFound, StaleVersion, TransitionRefused
from m365perf.store.tables import (
    APPROVED_SOURCE,
    DECISIONS,
    OPEN_STEP_STATUSES,
    ActionStatus,
    ApprovalStep,
    AuditEvent,
    CardChannel,
    CardDelivery,
    ConversationRef,
    Cycle,
    CycleStatus,
    Delegation,
    HistoryPoint,
    HistoryValue,
    ImprovementAction,
    Indicator,
    IndicatorSpec,
    IndicatorTarget,
    LinkRevocation,
    NewAction,
    NewReturn,
    OutboxMessage,
    OutboxStatus,
    Person,
    PersonSpec,
    Return,
    ReturnFigure,
    ReturnStatus,
    SnapshotResult,
    StepSpec,
    StepStatus,
    Timer,
    TimerStatus,
    WritebackItem,
    merge_history,
)

M = TypeVar("M", bound=SQLModel)

_NO_SYNC = {"synchronize_session": False}
_CHUNK = 200  # rows per multi-row INSERT: well under both backends' parameter limits
_LIVE_TIMERS = (TimerStatus.PENDING, TimerStatus.CLAIMED)
_INDICATOR_KEY = ("flow_id", "indicator_key")


def database_url(url: str | URL) -> URL:
    """Parse and check a database URL; ``postgresql://`` means the psycopg 3 driver."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed):
            raise ValueError(
                "an in-memory SQLite database would vanish between connections; "
                "use a file (sqlite:///m365perf.db); tests use m365perf.store.testing"
            )
        return parsed
    raise ValueError(f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://…")


PG_POOL_SIZE = 10
PG_POOL_OVERFLOW = 30


def make_engine(url: str | URL) -> Engine:
    """An engine set up the way the store (and its migrations) need it."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "postgresql":
        # serve answers clicks on up to 40 threads (anyio's pool) beside the dispatcher's
        # workers; SQLAlchemy's default 5 + 10 connections left clicks queueing for one.
        return create_engine(
            parsed, pool_pre_ping=True, pool_size=PG_POOL_SIZE, max_overflow=PG_POOL_OVERFLOW
        )
    engine = create_engine(parsed, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


READ_ONLY = "m365perf_read_only"
"""The execution option of :meth:`SqlStore.reading`'s connections."""


def _sqlite_begin(connection: Connection) -> None:
    # A writer takes the write lock up front (no upgrade deadlock half-way); a reader
    # needs none: WAL readers see the last commit and never wait for a writer.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
        connection.exec_driver_sql("PRAGMA query_only = ON")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def advisory_lock_id(key: str) -> int:
    """A stable non-negative 63-bit id for an advisory-lock name (same in every process)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


class _SqlTransaction(Transaction):
    def __init__(self, session: Session, dialect: str) -> None:
        self._session = session
        self._dialect = dialect
        self._open = True
        self._memo: dict[tuple[Any, ...], Any] = {}
        """Reads this transaction already made, by kind and arguments: a click asks for
        the same person, cycle, target or history many times while it decides, and each
        is one statement only the first time. A write of that kind forgets them."""

    def _remembered(self, key: tuple[Any, ...], read: Callable[[], Any]) -> Any:
        self._s()  # an ended transaction answers nothing, remembered or not
        if key not in self._memo:
            self._memo[key] = read()
        return self._memo[key]

    def _forget(self, *kinds: str) -> None:
        for key in [k for k in self._memo if k[0] in kinds]:
            del self._memo[key]

    # --- plumbing ----------------------------------------------------------------------

    def _s(self) -> Session:
        if not self._open:
            raise RuntimeError("this transaction has ended; open a new one")
        return self._session

    def _all(self, stmt: Any) -> list[Any]:
        """Run a statement returning records, detached so nothing is tracked or flushed."""
        session = self._s()
        rows = list(session.scalars(stmt, execution_options=_NO_SYNC).all())
        session.expunge_all()
        return rows

    def _first(self, stmt: Any) -> Any:
        rows = self._all(stmt)
        return rows[0] if rows else None

    def _get(self, model: type[M], ident: int, what: str) -> M:
        row: M | None = self._first(select(model).where(getattr(model, "id") == ident))  # noqa: B009
        if row is None:
            raise NotFound(what, ident)
        return row

    def _insert(self, model: type[SQLModel]) -> postgresql.Insert | sqlite.Insert:
        if self._dialect == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)

    def _insert_new(
        self, model: type[M], values: dict[str, Any], unique: Sequence[str]
    ) -> M | None:
        """Insert a row unless its unique key exists; the new row, or None if it existed."""
        stmt = self._insert(model).values(values).on_conflict_do_nothing(index_elements=unique)
        created: M | None = self._first(stmt.returning(model))
        return created

    def _upsert(self, model: type[M], values: dict[str, Any], unique: Sequence[str]) -> Insert:
        stmt = self._insert(model).values(values)
        changing = {k: stmt.excluded[k] for k in values if k not in unique}
        return stmt.on_conflict_do_update(index_elements=unique, set_=changing)

    # --- indicators and targets -------------------------------------------------------

    def upsert_indicators(
        self, flow_id: str, indicators: Sequence[IndicatorSpec], *, now: datetime
    ) -> SnapshotResult:
        _checks.non_empty(flow_id, "flow_id")
        now = _checks.aware(now)
        specs = _checks.unique_by_key(indicators, lambda s: s.indicator_key, "indicator")
        self._forget("indicator")
        existing = {
            i.indicator_key: i
            for i in self._all(select(Indicator).where(col(Indicator.flow_id) == flow_id))
        }
        result = SnapshotResult()
        rows = []
        for key, spec in specs.items():
            fields = _checks.indicator_fields(spec)
            old = existing.get(key)
            if old is None:
                result.added.append(key)
            elif not old.active or _checks.indicator_fields(old) != fields:
                result.changed.append(key)
            rows.append({**fields, "flow_id": flow_id, "active": True, "snapshot_at": now})
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            stmt = self._insert(Indicator).values(chunk)
            changing = {k: stmt.excluded[k] for k in chunk[0] if k not in _INDICATOR_KEY}
            self._s().execute(
                stmt.on_conflict_do_update(index_elements=_INDICATOR_KEY, set_=changing)
            )
        retired = self._s().scalars(
            update(Indicator)
            .where(
                col(Indicator.flow_id) == flow_id,
                col(Indicator.active).is_(True),
                col(Indicator.indicator_key).not_in(list(specs)),
            )
            .values(active=False, snapshot_at=now)
            .returning(col(Indicator.indicator_key)),
            execution_options=_NO_SYNC,
        )
        result.retired = sorted(retired)
        return result

    def list_indicators(self, flow_ids: Collection[str]) -> list[Indicator]:
        stmt = select(Indicator).where(col(Indicator.flow_id).in_(sorted(set(flow_ids))))
        return self._all(stmt.order_by(col(Indicator.flow_id), col(Indicator.indicator_key)))

    def indicators_keyed(self, indicator_key: str) -> list[Indicator]:
        found: list[Indicator] = self._all(
            select(Indicator).where(col(Indicator.indicator_key) == indicator_key)
        )
        return sorted(found, key=lambda i: (not i.active, i.flow_id))

    def find_indicator(self, flow_id: str, indicator_key: str) -> Indicator | None:
        def read() -> Indicator | None:
            found: Indicator | None = self._first(
                select(Indicator).where(
                    col(Indicator.flow_id) == flow_id,
                    col(Indicator.indicator_key) == indicator_key,
                )
            )
            return found

        found: Indicator | None = self._remembered(("indicator", flow_id, indicator_key), read)
        return found

    def prefetch_indicators(self, flow_id: str, indicator_keys: Collection[str]) -> None:
        """Read these indicators of a flow in one statement, for ``find_indicator``."""
        wanted = sorted({k for k in indicator_keys if ("indicator", flow_id, k) not in self._memo})
        if not wanted:
            return
        found = {
            i.indicator_key: i
            for i in self._all(
                select(Indicator).where(
                    col(Indicator.flow_id) == flow_id, col(Indicator.indicator_key).in_(wanted)
                )
            )
        }
        for key in wanted:
            self._memo[("indicator", flow_id, key)] = found.get(key)

    def put_target(
        self,
        flow_id: str,
        indicator_key: str,
        *,
        applies_from: str,
        applies_from_start: date,
        value: float | None,
        tolerance_kind: str | None = None,
        tolerance_amount: float | None = None,
        now: datetime,
    ) -> IndicatorTarget:
        _checks.non_empty(flow_id, "flow_id")
        _checks.non_empty(indicator_key, "indicator_key")
        _checks.non_empty(applies_from, "applies_from")
        values = {
            "flow_id": flow_id,
            "indicator_key": indicator_key,
            "applies_from": applies_from,
            "applies_from_start": applies_from_start,
            "value": value,
            "tolerance_kind": tolerance_kind,
            "tolerance_amount": tolerance_amount,
            "recorded_at": _checks.aware(now),
        }
        self._forget("target")
        stmt = self._upsert(
            IndicatorTarget, values, ("flow_id", "indicator_key", "applies_from_start")
        )
        target: IndicatorTarget = self._first(stmt.returning(IndicatorTarget))
        return target

    def target_for(
        self, flow_id: str, indicator_key: str, period_start: date
    ) -> IndicatorTarget | None:
        def read() -> IndicatorTarget | None:
            found: IndicatorTarget | None = self._first(
                select(IndicatorTarget)
                .where(
                    col(IndicatorTarget.flow_id) == flow_id,
                    col(IndicatorTarget.indicator_key) == indicator_key,
                    col(IndicatorTarget.applies_from_start) <= period_start,
                )
                .order_by(col(IndicatorTarget.applies_from_start).desc())
                .limit(1)
            )
            return found

        key = ("target", flow_id, indicator_key, period_start)
        found: IndicatorTarget | None = self._remembered(key, read)
        return found

    def prefetch_targets(
        self, flow_id: str, indicator_keys: Collection[str], period_start: date
    ) -> None:
        """The targets in force at ``period_start`` for these indicators, in one statement,
        for ``target_for``."""
        wanted = sorted(
            {k for k in indicator_keys if ("target", flow_id, k, period_start) not in self._memo}
        )
        if not wanted:
            return
        latest: dict[str, IndicatorTarget] = {}
        for target in self._all(
            select(IndicatorTarget)
            .where(
                col(IndicatorTarget.flow_id) == flow_id,
                col(IndicatorTarget.indicator_key).in_(wanted),
                col(IndicatorTarget.applies_from_start) <= period_start,
            )
            .order_by(col(IndicatorTarget.applies_from_start))
        ):
            latest[target.indicator_key] = target
        for key in wanted:
            self._memo[("target", flow_id, key, period_start)] = latest.get(key)

    def put_targets(
        self, flow_id: str, targets: Sequence[IndicatorTarget], *, now: datetime
    ) -> None:
        _checks.non_empty(flow_id, "flow_id")
        self._forget("target")
        now = _checks.aware(now)
        rows = {}
        for t in targets:
            _checks.non_empty(t.indicator_key, "indicator_key")
            _checks.non_empty(t.applies_from, "applies_from")
            rows[(t.indicator_key, t.applies_from_start)] = {
                "flow_id": flow_id,
                "indicator_key": t.indicator_key,
                "applies_from": t.applies_from,
                "applies_from_start": t.applies_from_start,
                "value": t.value,
                "tolerance_kind": t.tolerance_kind,
                "tolerance_amount": t.tolerance_amount,
                "recorded_at": now,
            }
        values = list(rows.values())
        unique = ("flow_id", "indicator_key", "applies_from_start")
        for start in range(0, len(values), _CHUNK):
            chunk = values[start : start + _CHUNK]
            stmt = self._insert(IndicatorTarget).values(chunk)
            changing = {k: stmt.excluded[k] for k in chunk[0] if k not in unique}
            self._s().execute(stmt.on_conflict_do_update(index_elements=unique, set_=changing))

    def find_indicators(self, flow_id: str, keys: Collection[str]) -> dict[str, Indicator]:
        self._s()  # an ended transaction answers nothing, remembered or not
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), _CHUNK):
            self.prefetch_indicators(flow_id, wanted[start : start + _CHUNK])
        found = {key: self._memo[("indicator", flow_id, key)] for key in wanted}
        return {key: indicator for key, indicator in found.items() if indicator is not None}

    def targets_for(
        self, flow_id: str, keys: Collection[str], period_start: date
    ) -> dict[str, IndicatorTarget]:
        self._s()  # an ended transaction answers nothing, remembered or not
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), _CHUNK):
            self.prefetch_targets(flow_id, wanted[start : start + _CHUNK], period_start)
        found = {key: self._memo[("target", flow_id, key, period_start)] for key in wanted}
        return {key: target for key, target in found.items() if target is not None}

    # --- cycles ------------------------------------------------------------------------

    def open_cycle(
        self,
        flow_id: str,
        period: str,
        *,
        period_start: date,
        frequency: Frequency,
        due_date: date,
        now: datetime,
    ) -> tuple[Cycle, bool]:
        _checks.non_empty(flow_id, "flow_id")
        _checks.non_empty(period, "period")
        values = {
            "flow_id": flow_id,
            "period": period,
            "period_start": period_start,
            "frequency": Frequency(frequency),
            "opened_at": _checks.aware(now),
            "due_date": due_date,
            "status": CycleStatus.OPEN,
            "version": 1,
            "unroutable": 0,
        }
        created = self._insert_new(Cycle, values, ("flow_id", "period"))
        if created is not None:
            return created, True
        existing = self.find_cycle(flow_id, period)
        assert existing is not None, "the conflicting cycle is committed, so it is visible"
        return existing, False

    def find_cycle(self, flow_id: str, period: str) -> Cycle | None:
        found: Cycle | None = self._first(
            select(Cycle).where(col(Cycle.flow_id) == flow_id, col(Cycle.period) == period)
        )
        return found

    def get_cycle(self, cycle_id: int) -> Cycle:
        found: Cycle = self._remembered(
            ("cycle", cycle_id), lambda: self._get(Cycle, cycle_id, "cycle")
        )
        return found

    def list_cycles(
        self, *, flow_id: str | None = None, status: CycleStatus | None = None
    ) -> list[Cycle]:
        stmt = select(Cycle)
        if flow_id is not None:
            stmt = stmt.where(col(Cycle.flow_id) == flow_id)
        if status is not None:
            stmt = stmt.where(col(Cycle.status) == CycleStatus(status))
        return self._all(stmt.order_by(col(Cycle.period_start), col(Cycle.id)))

    def lock_cycle(self, cycle_id: int) -> Cycle:
        stmt = select(Cycle).where(col(Cycle.id) == cycle_id)
        if self._dialect == "postgresql":  # SQLite writers are serialised already
            stmt = stmt.with_for_update()
        found: Cycle | None = self._first(stmt)
        if found is None:
            raise NotFound("cycle", cycle_id)
        self._memo[("cycle", cycle_id)] = found
        return found

    def note_unroutable(self, cycle_id: int, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"an unroutable count must be a whole number, got {count!r}")
        self._forget("cycle")
        self._s().execute(
            update(Cycle).where(col(Cycle.id) == cycle_id).values(unroutable=count),
            execution_options=_NO_SYNC,
        )

    def collect_cycle(self, cycle_id: int, *, now: datetime) -> bool:
        now = _checks.aware(now)
        rule = lifecycle.transition(Machine.CYCLE, Event.COLLECT)
        self._forget("cycle")
        changed = self._s().execute(
            update(Cycle)
            .where(col(Cycle.id) == cycle_id, col(Cycle.status).in_(sorted(rule.sources)))
            .values(status=rule.target, version=col(Cycle.version) + 1),
            execution_options=_NO_SYNC,
        )
        return bool(changed.rowcount)  # type: ignore[attr-defined]

    def close_cycle(
        self, cycle_id: int, expected_version: int, *, by: str, reason: str, now: datetime
    ) -> Cycle:
        closed: Cycle = self._transition(
            Cycle,
            Machine.CYCLE,
            Event.CLOSE,
            cycle_id,
            expected_version,
            closed_at=_checks.aware(now),
            closed_by=_checks.non_empty(by, "by"),
            close_reason=_checks.non_empty(reason, "reason"),
        )
        return closed

    def _note_changed(self, machine: Machine, changed: Any) -> None:
        """Keep what this transaction remembers in step with a row it just changed."""
        if machine is Machine.RETURN:
            self._memo[("return", changed.id)] = changed
        elif machine is Machine.STEP:  # the chains read before show the step as it is now
            for key, steps in self._memo.items():
                if key[0] == "steps" and key[1] == changed.return_id:
                    self._memo[key] = [changed if s.id == changed.id else s for s in steps]

    def _forget_steps(self, return_id: int) -> None:
        for key in [k for k in self._memo if k[0] == "steps" and k[1] == return_id]:
            del self._memo[key]

    def _transition(
        self,
        model: type[M],
        machine: Machine,
        event: Event,
        ident: int,
        expected_version: int,
        **values: Any,
    ) -> M:
        """The one guarded UPDATE behind every named transition (see domain/lifecycle.py)."""
        rule = lifecycle.transition(machine, event)
        if machine is Machine.CYCLE:
            self._forget("cycle")
        if machine is Machine.RETURN and ReturnStatus.APPROVED in {*rule.sources, rule.target}:
            self._forget("history")  # only approved figures are history
        table: Any = model
        changed: M | None = self._first(
            update(model)
            .where(
                table.id == ident,
                table.version == expected_version,
                table.status.in_(sorted(rule.sources)),
            )
            .values(**values, status=rule.target, version=table.version + 1)
            .returning(model)
        )
        if changed is not None:
            self._note_changed(machine, changed)
            return changed
        current: Any = self._get(model, ident, machine.value)
        if machine is Machine.RETURN and current.version != expected_version:
            raise StaleVersion(event.value, expected_version, current)
        if machine is Machine.STEP and current.status in DECISIONS:
            raise AlreadyDecided(event.value, current)
        if current.version != expected_version:
            detail = f"is at version {current.version}, not {expected_version}"
        else:
            froms = ", ".join(sorted(rule.sources))
            detail = f"is {current.status}; {event.value} needs {froms}"
        raise TransitionRefused(
            machine.value, event.value, expected_version, current, f"{machine} {ident} {detail}"
        )

    # --- returns -----------------------------------------------------------------------

    def create_returns(
        self, cycle_id: int, requests: Sequence[NewReturn], *, now: datetime
    ) -> list[Return]:
        now = _checks.aware(now)
        self.get_cycle(cycle_id)
        unique = _checks.unique_by_key(requests, lambda r: r.indicator_key, "return request")
        rows = [
            {
                "cycle_id": cycle_id,
                "indicator_key": r.indicator_key,
                "owner_id": r.owner_id,
                "owner_email": r.owner_email,
                "version": 1,
                "status": ReturnStatus.AWAITING,
                "late": False,
                "outlier_confirmed": False,
                "data_quality_flag": False,
                "reminders_sent": 0,
                "created_at": now,
                "updated_at": now,
            }
            for r in unique.values()
        ]
        created: list[Return] = []
        for start in range(0, len(rows), _CHUNK):
            stmt = (
                self._insert(Return)
                .values(rows[start : start + _CHUNK])
                .on_conflict_do_nothing(index_elements=["cycle_id", "indicator_key"])
                .returning(Return)
            )
            created.extend(self._all(stmt))
        return sorted(created, key=lambda r: r.id or 0)

    def has_returns(self, cycle_id: int, status: Collection[ReturnStatus]) -> bool:
        stmt = (
            select(col(Return.id))
            .where(col(Return.cycle_id) == cycle_id, col(Return.status).in_(sorted(status)))
            .limit(1)
        )
        return self._s().scalars(stmt, execution_options=_NO_SYNC).first() is not None

    def get_return(self, return_id: int) -> Return:
        found: Return = self._remembered(
            ("return", return_id), lambda: self._get(Return, return_id, "return")
        )
        return found

    def find_return(self, cycle_id: int, indicator_key: str) -> Return | None:
        found: Return | None = self._first(
            select(Return).where(
                col(Return.cycle_id) == cycle_id, col(Return.indicator_key) == indicator_key
            )
        )
        return found

    def list_returns(
        self,
        *,
        cycle_id: int | None = None,
        owner_id: str | None = None,
        status: ReturnStatus | Collection[ReturnStatus] | None = None,
        cycle_ids: Collection[int] | None = None,
    ) -> list[Return]:
        stmt = select(Return)
        if cycle_id is not None:
            stmt = stmt.where(col(Return.cycle_id) == cycle_id)
        if cycle_ids is not None:
            stmt = stmt.where(col(Return.cycle_id).in_(sorted(set(cycle_ids))))
        if owner_id is not None:
            stmt = stmt.where(col(Return.owner_id) == owner_id)
        wanted = _checks.statuses(status, ReturnStatus)
        if wanted is not None:
            stmt = stmt.where(col(Return.status).in_(sorted(wanted)))
        found: list[Return] = self._all(stmt.order_by(col(Return.id)))
        for ret in found:  # as read now: ``get_return`` of each costs nothing more
            self._memo[("return", ret.id)] = ret
        return found

    def submit_return(
        self,
        return_id: int,
        expected_version: int,
        figure: ReturnFigure,
        *,
        by: str,
        now: datetime,
    ) -> Return:
        now = _checks.aware(now)
        submitted: Return = self._transition(
            Return,
            Machine.RETURN,
            Event.SUBMIT,
            return_id,
            expected_version,
            **figure.model_dump(),
            submitted_by=_checks.non_empty(by, "by"),
            submitted_at=now,
            decided_by=None,
            decided_at=None,
            updated_at=now,
        )
        return submitted

    def approve_return(
        self, return_id: int, expected_version: int, *, by: str, now: datetime
    ) -> Return:
        now = _checks.aware(now)
        approved: Return = self._transition(
            Return,
            Machine.RETURN,
            Event.APPROVE,
            return_id,
            expected_version,
            decided_by=_checks.non_empty(by, "by"),
            decided_at=now,
            updated_at=now,
        )
        return approved

    def _send_back(
        self,
        event: Event,
        return_id: int,
        expected_version: int,
        by: str,
        reason: str,
        now: datetime,
    ) -> Return:
        now = _checks.aware(now)
        by = _checks.non_empty(by, "by")
        sent: Return = self._transition(
            Return,
            Machine.RETURN,
            event,
            return_id,
            expected_version,
            decided_by=by,
            decided_at=now,
            sent_back_by=by,
            sent_back_at=now,
            sent_back_reason=_checks.non_empty(reason, "reason"),
            updated_at=now,
        )
        return sent

    def send_back_return(
        self, return_id: int, expected_version: int, *, by: str, reason: str, now: datetime
    ) -> Return:
        return self._send_back(Event.SEND_BACK, return_id, expected_version, by, reason, now)

    def reopen_return(
        self, return_id: int, expected_version: int, *, by: str, reason: str, now: datetime
    ) -> Return:
        return self._send_back(Event.REOPEN, return_id, expected_version, by, reason, now)

    def miss_returns(self, cycle_id: int, *, now: datetime) -> list[Return]:
        now = _checks.aware(now)
        rule = lifecycle.transition(Machine.RETURN, Event.MISS)
        self._forget("history", "return")
        missed: list[Return] = self._all(
            update(Return)
            .where(col(Return.cycle_id) == cycle_id, col(Return.status).in_(sorted(rule.sources)))
            .values(status=rule.target, version=col(Return.version) + 1, updated_at=now)
            .returning(Return)
        )
        return sorted(missed, key=lambda r: r.id or 0)

    def history(
        self, indicator_key: str, frequency: Frequency, *, before: date | None = None
    ) -> list[HistoryPoint]:
        key = ("history", indicator_key, Frequency(frequency), before)
        self._s()
        if key not in self._memo:
            self.prefetch_history([indicator_key], frequency, before=before)
        return list(self._memo[key])

    def prefetch_history(
        self, indicator_keys: Collection[str], frequency: Frequency, *, before: date | None = None
    ) -> None:
        """The history of these indicators (approved figures and imported values), two
        statements for all of them, for ``history``."""
        wanted = Frequency(frequency)
        keys = sorted(
            {k for k in indicator_keys if ("history", k, wanted, before) not in self._memo}
        )
        if not keys:
            return
        approved = (
            select(
                col(Return.indicator_key),
                col(Cycle.period),
                col(Cycle.period_start),
                col(Return.value),
                col(Return.rag),
                col(Return.id),
            )
            .join(Cycle, col(Cycle.id) == col(Return.cycle_id))
            .where(
                col(Cycle.frequency) == wanted,
                col(Return.indicator_key).in_(keys),
                col(Return.status) == ReturnStatus.APPROVED,
                col(Return.value).is_not(None),
            )
        )
        imported = select(HistoryValue).where(
            col(HistoryValue.indicator_key).in_(keys),
            col(HistoryValue.frequency) == wanted,
        )
        if before is not None:
            approved = approved.where(col(Cycle.period_start) < before)
            imported = imported.where(col(HistoryValue.period_start) < before)
        latest: dict[str, dict[date, HistoryPoint]] = {k: {} for k in keys}
        for indicator, period, start, value, rag, return_id in self._s().execute(approved):
            points = latest[indicator]
            known = points.get(start)
            if known is None or (known.return_id or 0) < (return_id or 0):
                points[start] = HistoryPoint(
                    period=period,
                    period_start=start,
                    value=value,
                    rag=rag,
                    return_id=return_id,
                    source=APPROVED_SOURCE,
                )
        values: dict[str, list[HistoryPoint]] = {k: [] for k in keys}
        for h in self._all(imported):
            values[h.indicator_key].append(
                HistoryPoint(
                    period=h.period,
                    period_start=h.period_start,
                    value=h.value,
                    source=h.source,
                    note=h.note,
                )
            )
        for k in keys:
            self._memo[("history", k, wanted, before)] = merge_history(
                list(latest[k].values()), values[k]
            )

    def histories(
        self, keys: Collection[str], frequency: Frequency, *, before: date | None = None
    ) -> dict[str, list[HistoryPoint]]:
        all_keys = sorted(set(keys))
        wanted = Frequency(frequency)
        for first in range(0, len(all_keys), _CHUNK):
            self.prefetch_history(all_keys[first : first + _CHUNK], wanted, before=before)
        return {key: list(self._memo[("history", key, wanted, before)]) for key in all_keys}

    def put_history(
        self,
        indicator_key: str,
        *,
        frequency: Frequency,
        period: str,
        period_start: date,
        value: float,
        source: str,
        now: datetime,
        note: str | None = None,
    ) -> None:
        number, source = _checks.history_entry(value, source)
        self._forget("history")
        values = {
            "indicator_key": _checks.non_empty(indicator_key, "indicator_key"),
            "frequency": Frequency(frequency),
            "period": _checks.non_empty(period, "period"),
            "period_start": period_start,
            "value": number,
            "note": note.strip() or None if note is not None else None,
            "source": source,
            "recorded_at": _checks.aware(now),
        }
        self._s().execute(
            self._upsert(HistoryValue, values, ("indicator_key", "frequency", "period_start"))
        )

    # --- approvals ---------------------------------------------------------------------

    def create_steps(
        self, return_id: int, return_version: int, steps: Sequence[StepSpec], *, now: datetime
    ) -> list[ApprovalStep]:
        now = _checks.aware(now)
        _checks.positive(return_version, "return_version")
        self.get_return(return_id)
        if not steps:
            raise ValueError("an approval chain needs at least one step")
        rows = [
            {
                "return_id": return_id,
                "return_version": return_version,
                "step_index": index,
                "name": spec.name,
                "approvers": list(spec.approvers),
                "any_of": spec.any_of,
                "status": StepStatus.PENDING,
                "version": 1,
                "created_at": now,
            }
            for index, spec in enumerate(steps)
        ]
        created: list[ApprovalStep] = self._all(
            self._insert(ApprovalStep)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["return_id", "return_version", "step_index"])
            .returning(ApprovalStep)
        )
        self._forget_steps(return_id)
        if len(created) == len(rows):  # the whole chain is new: it is what was inserted
            self._memo[("steps", return_id, return_version)] = sorted(
                created, key=lambda s: s.step_index
            )
        return self.list_steps(return_id, return_version)

    def list_steps(self, return_id: int, return_version: int | None = None) -> list[ApprovalStep]:
        key = ("steps", return_id, return_version)
        self._s()
        if key not in self._memo:
            self._memo[key] = self._read_steps(return_id, return_version)
        return list(self._memo[key])

    def prefetch_steps(self, return_ids: Collection[int]) -> None:
        """Every chain of these returns in one statement, for ``list_steps`` (the latest
        version's, or any version's)."""
        wanted = sorted({i for i in return_ids if ("steps", i, None) not in self._memo})
        if not wanted:
            return
        chains: dict[tuple[int, int], list[ApprovalStep]] = {}
        for step in self.list_chains(wanted):
            chains.setdefault((step.return_id, step.return_version), []).append(step)
        latest: dict[int, int] = {}
        for (return_id, version), steps in chains.items():
            self._memo[("steps", return_id, version)] = steps
            latest[return_id] = max(version, latest.get(return_id, version))
        for return_id in wanted:
            newest = latest.get(return_id)
            self._memo[("steps", return_id, None)] = (
                chains[(return_id, newest)] if newest is not None else []
            )

    def _read_steps(self, return_id: int, return_version: int | None) -> list[ApprovalStep]:
        stmt = select(ApprovalStep).where(col(ApprovalStep.return_id) == return_id)
        if return_version is None:
            latest = (
                select(func.max(col(ApprovalStep.return_version)))
                .where(col(ApprovalStep.return_id) == return_id)
                .scalar_subquery()
            )
            stmt = stmt.where(col(ApprovalStep.return_version) == latest)
        else:
            stmt = stmt.where(col(ApprovalStep.return_version) == return_version)
        return self._all(stmt.order_by(col(ApprovalStep.step_index)))

    def list_chains(self, return_ids: Collection[int]) -> list[ApprovalStep]:
        stmt = select(ApprovalStep).where(col(ApprovalStep.return_id).in_(sorted(set(return_ids))))
        return self._all(
            stmt.order_by(
                col(ApprovalStep.return_id),
                col(ApprovalStep.return_version),
                col(ApprovalStep.step_index),
            )
        )

    def get_step(self, step_id: int) -> ApprovalStep:
        return self._get(ApprovalStep, step_id, "approval step")

    def ask_step(self, step_id: int, expected_version: int, *, at: datetime) -> ApprovalStep:
        _checks.aware(at, "at")
        asked: ApprovalStep = self._transition(
            ApprovalStep, Machine.STEP, Event.ASK, step_id, expected_version
        )
        return asked

    def escalate_step(
        self, step_id: int, expected_version: int, approvers: Sequence[str], *, at: datetime
    ) -> ApprovalStep:
        _checks.aware(at, "at")
        escalated: ApprovalStep = self._transition(
            ApprovalStep,
            Machine.STEP,
            Event.ESCALATE,
            step_id,
            expected_version,
            approvers=_checks.approvers(approvers),
        )
        return escalated

    def _decide(
        self,
        event: Event,
        step_id: int,
        expected_version: int,
        by: str,
        at: datetime,
        reason: str | None,
    ) -> ApprovalStep:
        decided: ApprovalStep = self._transition(
            ApprovalStep,
            Machine.STEP,
            event,
            step_id,
            expected_version,
            decided_by=_checks.non_empty(by, "by"),
            decided_at=_checks.aware(at, "at"),
            reason=reason,
        )
        return decided

    def approve_step(
        self, step_id: int, expected_version: int, *, by: str, at: datetime
    ) -> ApprovalStep:
        return self._decide(Event.APPROVE, step_id, expected_version, by, at, None)

    def reject_step(
        self, step_id: int, expected_version: int, *, by: str, at: datetime, reason: str
    ) -> ApprovalStep:
        return self._decide(
            Event.REJECT, step_id, expected_version, by, at, _checks.non_empty(reason, "reason")
        )

    def skip_step(
        self, step_id: int, expected_version: int, *, by: str, at: datetime, reason: str
    ) -> ApprovalStep:
        return self._decide(
            Event.SKIP, step_id, expected_version, by, at, _checks.non_empty(reason, "reason")
        )

    def list_open_steps(
        self, *, approver: str | None = None, return_ids: Collection[int] | None = None
    ) -> list[ApprovalStep]:
        wanted = _checks.ids(return_ids, "return_ids")
        if wanted is not None and not wanted:
            return []
        stmt = select(ApprovalStep).where(col(ApprovalStep.status).in_(sorted(OPEN_STEP_STATUSES)))
        if wanted is not None:
            stmt = stmt.where(col(ApprovalStep.return_id).in_(sorted(wanted)))
        steps: list[ApprovalStep] = self._all(stmt.order_by(col(ApprovalStep.id)))
        if approver is None:
            return steps
        # Membership of a JSON list is spelt differently on each database; the open
        # steps are few, so filter here.
        return [s for s in steps if approver in s.approvers]

    # --- improvement actions -------------------------------------------------------------

    def create_action(
        self, spec: NewAction, *, by: str, now: datetime
    ) -> tuple[ImprovementAction, bool]:
        now = _checks.aware(now)
        by = _checks.non_empty(by, "by")
        self.get_return(spec.return_id)
        values = {
            **spec.model_dump(),
            "status": lifecycle.INITIAL[Machine.ACTION],
            "note": None,
            "version": 1,
            "created_by": by,
            "created_at": now,
            "updated_by": by,
            "updated_at": now,
        }
        created = self._insert_new(ImprovementAction, values, ("return_id",))
        if created is not None:
            return created, True
        found = self.find_action(spec.return_id)
        assert found is not None, "the conflicting action is there"
        return found, False

    def get_action(self, action_id: int) -> ImprovementAction:
        return self._get(ImprovementAction, action_id, "improvement action")

    def find_action(self, return_id: int) -> ImprovementAction | None:
        found: ImprovementAction | None = self._first(
            select(ImprovementAction).where(col(ImprovementAction.return_id) == return_id)
        )
        return found

    def list_actions(
        self,
        *,
        owner_id: str | None = None,
        flow_id: str | None = None,
        indicator_key: str | None = None,
        status: ActionStatus | Collection[ActionStatus] | None = None,
    ) -> list[ImprovementAction]:
        stmt = select(ImprovementAction)
        if owner_id is not None:
            stmt = stmt.where(col(ImprovementAction.owner_id) == owner_id)
        if flow_id is not None:
            stmt = stmt.where(col(ImprovementAction.flow_id) == flow_id)
        if indicator_key is not None:
            stmt = stmt.where(col(ImprovementAction.indicator_key) == indicator_key)
        wanted = _checks.statuses(status, ActionStatus)
        if wanted is not None:
            stmt = stmt.where(col(ImprovementAction.status).in_(sorted(wanted)))
        return self._all(stmt.order_by(col(ImprovementAction.id)))

    def update_action(
        self,
        action_id: int,
        expected_version: int,
        status: ActionStatus,
        *,
        note: str | None,
        by: str,
        now: datetime,
    ) -> ImprovementAction:
        updated: ImprovementAction = self._transition(
            ImprovementAction,
            Machine.ACTION,
            lifecycle.ACTION_EVENT[ActionStatus(status)],
            action_id,
            expected_version,
            note=_checks.optional_text(note, "note"),
            updated_by=_checks.non_empty(by, "by"),
            updated_at=_checks.aware(now),
        )
        return updated

    def revise_action(
        self,
        action_id: int,
        expected_version: int,
        *,
        what: str,
        who_id: str,
        due_on: date,
        by: str,
        now: datetime,
    ) -> ImprovementAction:
        table: Any = ImprovementAction
        changed: ImprovementAction | None = self._first(
            update(ImprovementAction)
            .where(
                table.id == action_id,
                table.version == expected_version,
                table.status.in_(sorted(lifecycle.OPEN_ACTION)),
            )
            .values(
                what=_checks.non_empty(what, "what").strip(),
                who_id=_checks.non_empty(who_id, "who_id"),
                due_on=due_on,
                updated_by=_checks.non_empty(by, "by"),
                updated_at=_checks.aware(now),
                version=table.version + 1,
            )
            .returning(ImprovementAction)
        )
        if changed is not None:
            return changed
        current = self.get_action(action_id)
        raise TransitionRefused(
            Machine.ACTION.value,
            "revise",
            expected_version,
            current,
            f"action {action_id} is {current.status} at version {current.version}; "
            f"revise needs an open action at version {expected_version}",
        )

    # --- timers ------------------------------------------------------------------------

    def schedule_timer(
        self,
        kind: str,
        *,
        due_at: datetime,
        dedup_key: str,
        subject_type: str,
        subject_id: int | None = None,
        payload: dict[str, Any] | None = None,
        now: datetime,
    ) -> tuple[Timer, bool]:
        values = {
            "kind": _checks.non_empty(kind, "kind"),
            "due_at": _checks.aware(due_at, "due_at"),
            "subject_type": _checks.non_empty(subject_type, "subject_type"),
            "subject_id": subject_id,
            "payload": _checks.json_object(payload, "payload"),
            "dedup_key": _checks.non_empty(dedup_key, "dedup_key"),
            "status": TimerStatus.PENDING,
            "created_at": _checks.aware(now),
        }
        self._s()
        known: Timer | None = self._memo.get(("timer", dedup_key))
        if known is not None:  # its key is taken (rows stay): the insert would do nothing
            return known, False
        created = self._insert_new(Timer, values, ("dedup_key",))
        if created is not None:
            self._memo[("timer", dedup_key)] = created
            return created, True
        existing: Timer = self._first(select(Timer).where(col(Timer.dedup_key) == dedup_key))
        self._memo[("timer", dedup_key)] = existing
        return existing, False

    def complete_timer(self, timer_id: int, *, now: datetime) -> bool:
        now = _checks.aware(now)
        done = (
            self._s()
            .scalars(
                update(Timer)
                .where(col(Timer.id) == timer_id, col(Timer.status).in_(_LIVE_TIMERS))
                .values(status=TimerStatus.DONE, finished_at=now)
                .returning(col(Timer.id)),
                execution_options=_NO_SYNC,
            )
            .all()
        )
        if not done:
            self._get(Timer, timer_id, "timer")
        return bool(done)

    def cancel_timers(
        self,
        subject_type: str,
        subject_id: int | None,
        *,
        kinds: Collection[str] | None = None,
        now: datetime,
    ) -> int:
        now = _checks.aware(now)
        wanted = _checks.names(kinds, "kinds")
        stmt = update(Timer).where(
            col(Timer.subject_type) == subject_type,
            _same(col(Timer.subject_id), subject_id),
            col(Timer.status).in_(_LIVE_TIMERS),
        )
        if wanted is not None:
            stmt = stmt.where(col(Timer.kind).in_(sorted(wanted)))
        cancelled = self._s().scalars(
            stmt.values(status=TimerStatus.CANCELLED, finished_at=now).returning(col(Timer.id)),
            execution_options=_NO_SYNC,
        )
        return len(cancelled.all())

    def list_timers(
        self,
        *,
        subject_type: str | None = None,
        subject_id: int | None = None,
        status: TimerStatus | Collection[TimerStatus] | None = None,
    ) -> list[Timer]:
        stmt = select(Timer)
        if subject_type is not None:
            stmt = stmt.where(col(Timer.subject_type) == subject_type)
        if subject_id is not None:
            stmt = stmt.where(col(Timer.subject_id) == subject_id)
        wanted = _checks.statuses(status, TimerStatus)
        if wanted is not None:
            stmt = stmt.where(col(Timer.status).in_(sorted(wanted)))
        return self._all(stmt.order_by(col(Timer.due_at), col(Timer.id)))

    # --- outbox ------------------------------------------------------------------------

    def enqueue(
        self,
        kind: str,
        *,
        budget: str,
        payload: dict[str, Any],
        dedup_key: str,
        now: datetime,
        not_before: datetime | None = None,
    ) -> tuple[OutboxMessage, bool]:
        now = _checks.aware(now)
        values = {
            "kind": _checks.non_empty(kind, "kind"),
            "budget": _checks.non_empty(budget, "budget"),
            "payload": _checks.json_object(payload, "payload"),
            "dedup_key": _checks.non_empty(dedup_key, "dedup_key"),
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now if not_before is None else _checks.aware(not_before),
            "created_at": now,
            "updated_at": now,
        }
        created = self._insert_new(OutboxMessage, values, ("dedup_key",))
        if created is not None:
            return created, True
        existing: OutboxMessage = self._first(
            select(OutboxMessage).where(col(OutboxMessage.dedup_key) == dedup_key)
        )
        return existing, False

    def queued_keys(self, dedup_keys: Collection[str]) -> set[str]:
        found: set[str] = set()
        wanted = sorted(set(dedup_keys))
        for start in range(0, len(wanted), _CHUNK):
            stmt = select(col(OutboxMessage.dedup_key)).where(
                col(OutboxMessage.dedup_key).in_(wanted[start : start + _CHUNK])
            )
            found.update(self._s().scalars(stmt, execution_options=_NO_SYNC))
        return found

    def list_outbox(
        self,
        *,
        status: OutboxStatus | Collection[OutboxStatus] | None = None,
        kind: str | None = None,
    ) -> list[OutboxMessage]:
        stmt = select(OutboxMessage)
        wanted = _checks.statuses(status, OutboxStatus)
        if wanted is not None:
            stmt = stmt.where(col(OutboxMessage.status).in_(sorted(wanted)))
        if kind is not None:
            stmt = stmt.where(col(OutboxMessage.kind) == kind)
        return self._all(stmt.order_by(col(OutboxMessage.id)))

    def outbox_counts(self) -> dict[OutboxStatus, int]:
        counts = dict.fromkeys(OutboxStatus, 0)
        stmt = select(col(OutboxMessage.status), func.count()).group_by(col(OutboxMessage.status))
        for status, count in self._s().execute(stmt):
            counts[OutboxStatus(status)] = count
        return counts

    def outbox_depth(self) -> dict[tuple[str, OutboxStatus], int]:
        stmt = select(col(OutboxMessage.kind), col(OutboxMessage.status), func.count()).group_by(
            col(OutboxMessage.kind), col(OutboxMessage.status)
        )
        return {(kind, OutboxStatus(status)): n for kind, status, n in self._s().execute(stmt)}

    def requeue_parked(self, message_id: int, *, now: datetime) -> OutboxMessage | None:
        now = _checks.aware(now)
        before: OutboxMessage | None = self._first(
            select(OutboxMessage).where(
                col(OutboxMessage.id) == message_id,
                col(OutboxMessage.status) == OutboxStatus.PARKED,
            )
        )
        if before is None:
            self._get(OutboxMessage, message_id, "outbox message")
            return None
        changed = self._s().scalars(
            update(OutboxMessage)
            .where(
                col(OutboxMessage.id) == message_id,
                col(OutboxMessage.status) == OutboxStatus.PARKED,
            )
            .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, updated_at=now)
            .returning(col(OutboxMessage.id)),
            execution_options=_NO_SYNC,
        )
        return before if changed.all() else None

    # --- audit -------------------------------------------------------------------------

    def audit(
        self,
        action: str,
        *,
        at: datetime,
        actor: str,
        subject_type: str,
        subject_id: str | int,
        cycle_id: int | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> AuditEvent:
        values = {
            "at": _checks.aware(at, "at"),
            "actor": _checks.non_empty(actor, "actor"),
            "action": _checks.non_empty(action, "action"),
            "subject_type": _checks.non_empty(subject_type, "subject_type"),
            "subject_id": str(subject_id),
            "cycle_id": cycle_id,
            "before": _checks.json_or_none(before, "before"),
            "after": _checks.json_or_none(after, "after"),
        }
        event_: AuditEvent = self._first(
            self._insert(AuditEvent).values(values).returning(AuditEvent)
        )
        return event_

    def list_audit(
        self,
        *,
        cycle_id: int | None = None,
        subject_type: str | None = None,
        subject_id: str | int | None = None,
        cycle_ids: Collection[int] | None = None,
        actions: Collection[str] | None = None,
    ) -> list[AuditEvent]:
        stmt = select(AuditEvent)
        if cycle_id is not None:
            stmt = stmt.where(col(AuditEvent.cycle_id) == cycle_id)
        if cycle_ids is not None:
            stmt = stmt.where(col(AuditEvent.cycle_id).in_(sorted(set(cycle_ids))))
        if actions is not None:
            stmt = stmt.where(col(AuditEvent.action).in_(sorted(set(actions))))
        if subject_type is not None:
            stmt = stmt.where(col(AuditEvent.subject_type) == subject_type)
        if subject_id is not None:
            stmt = stmt.where(col(AuditEvent.subject_id) == str(subject_id))
        return self._all(stmt.order_by(col(AuditEvent.at), col(AuditEvent.id)))

    # --- Teams conversations ------------------------------------------------------------

    def put_conversation_ref(
        self,
        user_id: str,
        *,
        conversation_id: str,
        service_url: str,
        tenant_id: str | None = None,
        now: datetime,
    ) -> ConversationRef:
        values = {
            "user_id": _checks.non_empty(user_id, "user_id"),
            "conversation_id": _checks.non_empty(conversation_id, "conversation_id"),
            "service_url": _checks.non_empty(service_url, "service_url"),
            "tenant_id": tenant_id,
            "updated_at": _checks.aware(now),
        }
        stmt = self._upsert(ConversationRef, values, ("user_id",))
        ref: ConversationRef = self._first(stmt.returning(ConversationRef))
        return ref

    def find_conversation_ref(self, user_id: str) -> ConversationRef | None:
        found: ConversationRef | None = self._first(
            select(ConversationRef).where(col(ConversationRef.user_id) == user_id)
        )
        return found

    # --- card deliveries -----------------------------------------------------------------

    def record_delivery(
        self,
        card_id: str,
        *,
        user_id: str,
        channel: CardChannel,
        subject_type: str,
        subject_id: int,
        now: datetime,
        conversation_id: str | None = None,
        activity_id: str | None = None,
        service_url: str | None = None,
        message_id: str | None = None,
        card_hash: str | None = None,
    ) -> CardDelivery:
        where: dict[str, Any] = {
            "user_id": _checks.non_empty(user_id, "user_id"),
            "channel": _checks.channel(channel),
            "subject_type": _checks.non_empty(subject_type, "subject_type"),
            "subject_id": _checks.integer(subject_id, "subject_id"),
        }
        delivery: dict[str, Any] = {
            "conversation_id": _checks.optional_text(conversation_id, "conversation_id"),
            "activity_id": _checks.optional_text(activity_id, "activity_id"),
            "service_url": _checks.optional_text(service_url, "service_url"),
            "message_id": _checks.optional_text(message_id, "message_id"),
            "card_hash": _checks.optional_text(card_hash, "card_hash"),
            "delivered_at": _checks.aware(now),
        }
        key = _checks.non_empty(card_id, "card_id")
        stmt = self._insert(CardDelivery).values(card_id=key, **where, **delivery)
        same_card = and_(*(getattr(CardDelivery, name) == stmt.excluded[name] for name in where))
        recorded: CardDelivery | None = self._first(
            stmt.on_conflict_do_update(
                index_elements=["card_id"],
                set_={name: stmt.excluded[name] for name in delivery},
                where=same_card,
            ).returning(CardDelivery)
        )
        if recorded is None:
            existing = self.find_delivery(key)
            assert existing is not None, "the conflicting delivery is committed, so it is visible"
            raise _checks.other_card(existing, **where)
        return recorded

    def find_delivery(self, card_id: str) -> CardDelivery | None:
        found: CardDelivery | None = self._first(
            select(CardDelivery).where(col(CardDelivery.card_id) == card_id)
        )
        return found

    def list_deliveries(
        self,
        *,
        subject_type: str | None = None,
        subject_id: int | None = None,
        user_id: str | None = None,
    ) -> list[CardDelivery]:
        stmt = select(CardDelivery)
        if subject_type is not None:
            stmt = stmt.where(col(CardDelivery.subject_type) == subject_type)
        if subject_id is not None:
            stmt = stmt.where(col(CardDelivery.subject_id) == subject_id)
        if user_id is not None:
            stmt = stmt.where(col(CardDelivery.user_id) == user_id)
        return self._all(stmt.order_by(col(CardDelivery.delivered_at), col(CardDelivery.card_id)))

    def mark_replaced(self, card_id: str, *, now: datetime, card_hash: str | None = None) -> bool:
        now = _checks.aware(now)
        if card_hash is not None:
            self._s().execute(
                update(CardDelivery)
                .where(col(CardDelivery.card_id) == card_id)
                .values(card_hash=card_hash),
                execution_options=_NO_SYNC,
            )
        marked = (
            self._s()
            .scalars(
                update(CardDelivery)
                .where(
                    col(CardDelivery.card_id) == card_id,
                    col(CardDelivery.replaced_at).is_(None),
                )
                .values(replaced_at=now)
                .returning(col(CardDelivery.card_id)),
                execution_options=_NO_SYNC,
            )
            .all()
        )
        if not marked and self.find_delivery(card_id) is None:
            raise NotFound("card delivery", card_id)
        return bool(marked)

    # --- write-back items ------------------------------------------------------------------

    def put_writeback_item(
        self,
        site: str,
        list_title: str,
        key: Sequence[str],
        *,
        item_id: str,
        version: float | None,
        now: datetime,
    ) -> None:
        where = {
            "site": _checks.non_empty(site, "site"),
            "list_title": _checks.non_empty(list_title, "list_title"),
            "item_key": _item_key(key),
        }
        values = {
            "item_id": _checks.non_empty(item_id, "item_id"),
            "updated_at": _checks.aware(now),
        }
        stmt = self._insert(WritebackItem).values(**where, **values, version=version)
        stored = WritebackItem.version
        newer = case(
            (col(stored).is_(None), stmt.excluded.version),
            (stmt.excluded.version.is_(None), stored),
            (stmt.excluded.version > stored, stmt.excluded.version),
            else_=stored,
        )
        self._s().execute(
            stmt.on_conflict_do_update(
                index_elements=list(where),
                set_={**{k: stmt.excluded[k] for k in values}, "version": newer},
            ),
            execution_options=_NO_SYNC,
        )

    def find_writeback_items(
        self, site: str, list_title: str, keys: Sequence[Sequence[str]]
    ) -> dict[tuple[str, ...], WritebackItem]:
        wanted = {_item_key(k): tuple(k) for k in keys}
        found: dict[tuple[str, ...], WritebackItem] = {}
        texts = list(wanted)
        for start in range(0, len(texts), _CHUNK):
            rows: list[WritebackItem] = self._all(
                select(WritebackItem).where(
                    col(WritebackItem.site) == site,
                    col(WritebackItem.list_title) == list_title,
                    col(WritebackItem.item_key).in_(texts[start : start + _CHUNK]),
                )
            )
            for row in rows:
                found[wanted[row.item_key]] = row
        return found

    def forget_writeback_item(self, site: str, list_title: str, key: Sequence[str]) -> None:
        self._s().execute(
            delete(WritebackItem).where(
                col(WritebackItem.site) == site,
                col(WritebackItem.list_title) == list_title,
                col(WritebackItem.item_key) == _item_key(key),
            ),
            execution_options=_NO_SYNC,
        )

    # --- people (a directory snapshot) -----------------------------------------------------

    def upsert_people(self, people: Sequence[PersonSpec], *, now: datetime) -> int:
        now = _checks.aware(now)
        self._forget("person")
        specs = _checks.people(people)
        if not specs:
            return 0
        claimed = {spec.email: ident for ident, spec in specs.items()}
        existing: list[Person] = self._all(
            select(Person).where(
                or_(col(Person.id).in_(list(specs)), col(Person.email).in_(list(claimed)))
            )
        )
        changed = _checks.people_changed(specs, existing)
        # Free the e-mails this snapshot gives to someone else before writing it, or the
        # unique e-mail would refuse the write (checked row by row, not at commit).
        stale = [p.id for p in existing if p.id not in specs]
        moving = [p.id for p in existing if claimed.get(p.email, p.id) != p.id and p.id in specs]
        if stale:
            self._s().execute(
                delete(Person).where(col(Person.id).in_(stale)), execution_options=_NO_SYNC
            )
        if moving:
            self._s().execute(
                update(Person)
                .where(col(Person.id).in_(moving))
                .values(email="moving:" + col(Person.id)),
                execution_options=_NO_SYNC,
            )
        rows = [
            {
                "id": spec.id,
                "name": spec.name,
                "email": spec.email,
                "line_manager_id": spec.line_manager_id,
                "updated_at": now,
            }
            for spec in specs.values()
        ]
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            stmt = self._insert(Person).values(chunk)
            changing = {k: stmt.excluded[k] for k in chunk[0] if k != "id"}
            self._s().execute(stmt.on_conflict_do_update(index_elements=["id"], set_=changing))
        return changed

    def find_person(self, ref: str) -> Person | None:
        _checks.non_empty(ref, "ref")
        found: Person | None = self._remembered(("person", ref), lambda: self._person(ref))
        return found

    def _person(self, ref: str) -> Person | None:
        by_id: Person | None = self._first(select(Person).where(col(Person.id) == ref))
        if by_id is not None or "@" not in ref:
            return by_id
        by_email: Person | None = self._first(
            select(Person).where(col(Person.email) == _checks.email_lookup(ref))
        )
        return by_email

    def prefetch_people(self, refs: Collection[str]) -> None:
        """Look up these people (Entra ids or e-mails) in one statement, for
        ``find_person``; a ref nobody holds is remembered as nobody."""
        wanted = sorted(
            {r.strip() for r in refs if r.strip() and ("person", r.strip()) not in self._memo}
        )
        if not wanted:
            return
        emails = {_checks.email_lookup(r): r for r in wanted if "@" in r}
        found = self._all(
            select(Person).where(
                or_(col(Person.id).in_(wanted), col(Person.email).in_(sorted(emails)))
            )
        )
        by_id = {p.id: p for p in found}
        by_email = {p.email: p for p in found}
        for ref in wanted:
            person = by_id.get(ref)
            if person is None and "@" in ref:
                person = by_email.get(_checks.email_lookup(ref))
            self._memo[("person", ref)] = person

    def list_people(self) -> list[Person]:
        return _checks.by_name(self._all(select(Person)))

    # --- delegation and out of office ---------------------------------------------------

    def add_delegation(
        self,
        approver_id: str,
        *,
        delegate_id: str | None,
        starts_on: date,
        ends_on: date,
        flow_id: str | None = None,
        by: str,
        now: datetime,
    ) -> Delegation:
        now = _checks.aware(now)
        approver = _checks.non_empty(approver_id, "approver_id")
        delegate = _checks.optional_text(delegate_id, "delegate_id")
        if ends_on < starts_on:
            raise ValueError(f"a delegation cannot end ({ends_on}) before it starts ({starts_on})")
        if delegate is not None and delegate == approver:
            raise ValueError("an approver cannot be their own delegate")
        self._forget("delegation")
        values = {
            "approver_id": approver,
            "delegate_id": delegate,
            "flow_id": _checks.optional_text(flow_id, "flow_id"),
            "starts_on": starts_on,
            "ends_on": ends_on,
            "created_by": _checks.non_empty(by, "by"),
            "created_at": now,
        }
        created: Delegation = self._first(
            self._insert(Delegation).values(values).returning(Delegation)
        )
        return created

    def get_delegation(self, delegation_id: int) -> Delegation:
        return self._get(Delegation, delegation_id, "delegation")

    def end_delegation(self, delegation_id: int, *, by: str, now: datetime) -> Delegation:
        now = _checks.aware(now)
        self._forget("delegation")
        self.get_delegation(delegation_id)
        self._s().execute(
            update(Delegation)
            .where(col(Delegation.id) == delegation_id, col(Delegation.ended_at).is_(None))
            .values(ended_at=now, ended_by=_checks.non_empty(by, "by")),
            execution_options=_NO_SYNC,
        )
        return self.get_delegation(delegation_id)

    def list_delegations(
        self,
        *,
        approver_id: str | None = None,
        delegate_id: str | None = None,
        on: date | None = None,
        include_ended: bool = False,
    ) -> list[Delegation]:
        if on is not None:  # everyone's on that day, read once: a handful of rows
            day = self._remembered(
                ("delegation", on),
                lambda: self._all(
                    select(Delegation)
                    .where(
                        col(Delegation.starts_on) <= on,
                        col(Delegation.ends_on) >= on,
                        col(Delegation.ended_at).is_(None),
                    )
                    .order_by(col(Delegation.id))
                ),
            )
            return [
                d
                for d in day
                if (approver_id is None or d.approver_id == approver_id)
                and (delegate_id is None or d.delegate_id == delegate_id)
            ]
        key = ("delegation", approver_id, delegate_id, on, include_ended)
        self._s()
        if key in self._memo:
            return list(self._memo[key])
        stmt = select(Delegation)
        if approver_id is not None:
            stmt = stmt.where(col(Delegation.approver_id) == approver_id)
        if delegate_id is not None:
            stmt = stmt.where(col(Delegation.delegate_id) == delegate_id)
        if on is not None:
            stmt = stmt.where(col(Delegation.starts_on) <= on, col(Delegation.ends_on) >= on)
        if not include_ended or on is not None:
            stmt = stmt.where(col(Delegation.ended_at).is_(None))
        found: list[Delegation] = self._all(stmt.order_by(col(Delegation.id)))
        self._memo[key] = found
        return list(found)

    # --- web-form links -----------------------------------------------------------------

    def revoke_links(
        self, *, owner_id: str | None = None, cycle_id: int | None = None, by: str, now: datetime
    ) -> LinkRevocation:
        now = _checks.aware(now)
        if (owner_id is None) == (cycle_id is None):
            raise ValueError("revoke the links of one person or of one cycle")
        values = {
            "owner_id": _checks.optional_text(owner_id, "owner_id"),
            "cycle_id": cycle_id,
            "revoked_by": _checks.non_empty(by, "by"),
            "revoked_at": now,
        }
        created: LinkRevocation = self._first(
            self._insert(LinkRevocation).values(values).returning(LinkRevocation)
        )
        return created

    def link_revoked(self, cycle_id: int, owner_id: str, issued: datetime | None) -> bool:
        stmt = select(col(LinkRevocation.id)).where(
            or_(col(LinkRevocation.owner_id) == owner_id, col(LinkRevocation.cycle_id) == cycle_id)
        )
        if issued is not None:
            stmt = stmt.where(col(LinkRevocation.revoked_at) >= _checks.aware(issued))
        return self._s().execute(stmt.limit(1)).first() is not None


class SqlStore(Store):
    """Workflow state in SQLite (the embedded default) or PostgreSQL (production).

    The schema comes from the migrations (:func:`m365perf.store.migrate.upgrade`); this
    class never creates tables. An ``Engine`` instead of a URL is one already set up like
    :func:`make_engine`'s (:mod:`m365perf.store.testing` builds one on in-memory SQLite).
    """

    def __init__(self, url: str | URL | Engine) -> None:
        self._engine = url if isinstance(url, Engine) else make_engine(url)
        self._dialect = self._engine.dialect.name
        self._guard = _checks.NestingGuard()
        self._lock_mutex = threading.Lock()
        self._lock_conn: Connection | None = None
        self._held: set[str] = set()
        self._schema: str | None = None

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for migrations and operational checks."""
        return self._engine

    def transaction(self) -> AbstractContextManager[Transaction]:
        return self._work()

    def reading(self) -> AbstractContextManager[Transaction]:
        return self._read()

    @contextmanager
    def _read(self) -> Iterator[_SqlTransaction]:
        reader = self._engine.execution_options(**{READ_ONLY: True})
        with (
            self._guard.enter(),
            Session(reader, expire_on_commit=False, autoflush=False) as session,
        ):
            tx = _SqlTransaction(session, self._dialect)
            try:
                with session.begin():
                    try:
                        yield tx
                    finally:
                        if self._dialect == "sqlite":  # the connection goes back to the pool
                            session.connection().exec_driver_sql("PRAGMA query_only = OFF")
            finally:
                tx._open = False

    @contextmanager
    def _work(self) -> Iterator[_SqlTransaction]:
        with (
            self._guard.enter(),
            Session(self._engine, expire_on_commit=False, autoflush=False) as session,
        ):
            tx = _SqlTransaction(session, self._dialect)
            try:
                with session.begin():
                    yield tx
            finally:
                tx._open = False

    # --- worker operations ---------------------------------------------------------------

    def claim_due_timers(
        self, now: datetime, limit: int, worker: str, *, lease: timedelta = DEFAULT_LEASE
    ) -> list[Timer]:
        now = _checks.aware(now)
        _checks.positive(limit, "limit")
        _checks.non_empty(worker, "worker")
        until = now + _checks.lease(lease)
        due = or_(
            and_(col(Timer.status) == TimerStatus.PENDING, col(Timer.due_at) <= now),
            and_(col(Timer.status) == TimerStatus.CLAIMED, col(Timer.claimed_until) <= now),
        )
        with self._work() as tx:
            ids = _lock_due(
                tx._s(), select(col(Timer.id)).where(due), (col(Timer.due_at), col(Timer.id)), limit
            )
            if not ids:
                return []
            claimed: list[Timer] = tx._all(
                update(Timer)
                .where(col(Timer.id).in_(ids))
                .values(status=TimerStatus.CLAIMED, claimed_by=worker, claimed_until=until)
                .returning(Timer)
            )
        return sorted(claimed, key=lambda t: (t.due_at, t.id or 0))

    def claim_outbox(
        self,
        now: datetime,
        limit: int,
        worker: str,
        *,
        budgets: Collection[str] | None = None,
        lease: timedelta = DEFAULT_LEASE,
    ) -> list[OutboxMessage]:
        now = _checks.aware(now)
        _checks.positive(limit, "limit")
        _checks.non_empty(worker, "worker")
        until = now + _checks.lease(lease)
        wanted = _checks.names(budgets, "budgets")
        due: ColumnElement[bool] = or_(
            and_(
                col(OutboxMessage.status) == OutboxStatus.PENDING,
                col(OutboxMessage.next_attempt_at) <= now,
            ),
            and_(
                col(OutboxMessage.status) == OutboxStatus.IN_FLIGHT,
                col(OutboxMessage.claimed_until) <= now,
            ),
        )
        if wanted is not None:
            due = and_(due, col(OutboxMessage.budget).in_(sorted(wanted)))
        order = (col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        with self._work() as tx:
            ids = _lock_due(tx._s(), select(col(OutboxMessage.id)).where(due), order, limit)
            if not ids:
                return []
            claimed: list[OutboxMessage] = tx._all(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(ids))
                .values(
                    status=OutboxStatus.IN_FLIGHT,
                    claimed_by=worker,
                    claimed_until=until,
                    attempts=col(OutboxMessage.attempts) + 1,
                    updated_at=now,
                )
                .returning(OutboxMessage)
            )
        return sorted(claimed, key=lambda m: (m.next_attempt_at, m.id or 0))

    def _finish(self, message_id: int, now: datetime, **values: Any) -> bool:
        now = _checks.aware(now)
        with self._work() as tx:
            done = (
                tx._s()
                .scalars(
                    update(OutboxMessage)
                    .where(
                        col(OutboxMessage.id) == message_id,
                        col(OutboxMessage.status) == OutboxStatus.IN_FLIGHT,
                    )
                    .values(claimed_by=None, claimed_until=None, updated_at=now, **values)
                    .returning(col(OutboxMessage.id)),
                    execution_options=_NO_SYNC,
                )
                .all()
            )
            if not done:
                tx._get(OutboxMessage, message_id, "outbox message")
            return bool(done)

    def mark_done(self, message_id: int, *, now: datetime) -> bool:
        return self._finish(message_id, now, status=OutboxStatus.DONE)

    def retry_later(self, message_id: int, at: datetime, error: str, *, now: datetime) -> bool:
        return self._finish(
            message_id,
            now,
            status=OutboxStatus.PENDING,
            next_attempt_at=_checks.aware(at, "at"),
            last_error=error,
        )

    def park(self, message_id: int, error: str, *, now: datetime) -> bool:
        return self._finish(message_id, now, status=OutboxStatus.PARKED, last_error=error)

    # --- the scheduler's advisory lock ---------------------------------------------------

    def try_advisory_lock(self, key: str) -> bool:
        _checks.non_empty(key, "key")
        if self._dialect != "postgresql":
            return True
        with self._lock_mutex:
            if key in self._held:
                if self._lock_connection_alive():
                    return True
                self._held.clear()  # the session ended, and with it every lock it held
            conn = self._lock_connection()
            granted = bool(
                conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": self.lock_id(key)}
                ).scalar_one()
            )
            if granted:
                self._held.add(key)
            return granted

    def release_advisory_lock(self, key: str) -> None:
        _checks.non_empty(key, "key")
        if self._dialect != "postgresql":
            return
        with self._lock_mutex:
            if key not in self._held:
                return
            self._held.discard(key)
            if self._lock_conn is not None and self._lock_connection_alive():
                self._lock_conn.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": self.lock_id(key)}
                )

    def lock_id(self, key: str) -> int:
        """The advisory-lock id of ``key`` in this store's schema.

        PostgreSQL scopes advisory locks to a database, not a schema; two services (or a
        test run) in two schemas of one database must not share a scheduler clock.
        """
        if self._schema is None:
            self._schema = str(
                self._lock_connection().execute(text("SELECT current_schema()")).scalar_one()
            )
        return advisory_lock_id(f"{self._schema}/{key}")

    def _lock_connection(self) -> Connection:
        if self._lock_conn is None:
            self._lock_conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._lock_conn

    def _lock_connection_alive(self) -> bool:
        conn = self._lock_conn
        if conn is None:
            return False
        try:
            conn.execute(text("SELECT 1"))
        except DBAPIError:
            conn.invalidate()
            conn.close()
            self._lock_conn = None
            return False
        return True

    def close(self) -> None:
        with self._lock_mutex:
            if self._held and self._lock_conn is not None and self._lock_connection_alive():
                # The server notices a closed socket only later; unlock first, so another
                # instance can take over as soon as close() returns.
                self._lock_conn.execute(text("SELECT pg_advisory_unlock_all()"))
            if self._lock_conn is not None:
                # Really close it (not back to the pool): the session's locks end with it.
                self._lock_conn.invalidate()
                self._lock_conn.close()
                self._lock_conn = None
            self._held.clear()
        self._engine.dispose()


# --- helpers ---------------------------------------------------------------------------


def _same(column: Any, value: int | None) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column.is_(None) if value is None else column == value
    return result


def _lock_due(
    session: Session, ids: Select[int | None], order: Sequence[Any], limit: int
) -> list[int]:
    """Lock the first ``limit`` due rows, skipping rows another worker is claiming now."""
    stmt = ids.order_by(*order).limit(limit).with_for_update(skip_locked=True)
    return [i for i in session.scalars(stmt).all() if i is not None]


def _item_key(key: Sequence[str]) -> str:
    """A write-back key as stored: its values as a compact JSON list of text."""
    return json.dumps([str(v) for v in key], separators=(",", ":"), ensure_ascii=False)
