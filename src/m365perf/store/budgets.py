"""Microsoft 365 budgets kept in the store, so every ``serve`` process spends from one.

The clients' :class:`m365perf.m365.http.BudgetLedger` protocol, backed by the
``budget_ledger`` table: one row per token bucket and per concurrency slot. Each call
is one short transaction of one statement in the common case (``UPDATE ... RETURNING``
that refills, checks the Retry-After window and takes the tokens at once), so the
database round trip, not a lock held across a request, is all a send pays.

Why not lease slices of tokens per process: a slice spent without asking the store
could be spent inside a Retry-After window another process has just opened. One
statement per request is cheap enough (well under a millisecond on a local
PostgreSQL) against Microsoft's 20 ms to 1 s per call.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from m365perf.store.base import Store
from m365perf.store.tables import BudgetLedgerRow

_EPSILON = 1e-4
_TABLE = BudgetLedgerRow.__table__  # type: ignore[attr-defined]
_C = _TABLE.c


class SqlBudgetLedger:
    """Token buckets, slots and Retry-After pauses in ``budget_ledger`` (PostgreSQL or SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._least = func.least if self._dialect == "postgresql" else func.min
        self._greatest = func.greatest if self._dialect == "postgresql" else func.max
        self._known: set[str] = set()

    # --- token buckets -----------------------------------------------------------------

    def _refilled(self, rate: float, capacity: float, now: float) -> Any:
        elapsed = self._greatest(0.0, now - _C.stamp)
        return self._least(capacity, _C.tokens + elapsed * rate)

    def take(self, name: str, cost: float, *, rate: float, capacity: float, now: float) -> float:
        self._ensure(name)
        refilled = self._refilled(rate, capacity, now)
        statement = (
            update(_TABLE)
            .where(
                and_(
                    _C.name == name,
                    _C.blocked_until <= now,
                    refilled >= min(cost, capacity) - _EPSILON,
                )
            )
            .values(tokens=refilled - cost, stamp=self._greatest(_C.stamp, now))
            .returning(_C.tokens)
        )
        with self._engine.begin() as conn:
            if conn.execute(statement).first() is not None:
                return 0.0
            row = conn.execute(
                select(_C.tokens, _C.stamp, _C.blocked_until).where(_C.name == name)
            ).first()
        if row is None:  # pragma: no cover - _ensure made it
            return 0.0
        tokens, stamp, blocked = (float(v) for v in row)
        have = min(capacity, tokens + max(0.0, now - stamp) * rate)
        need = min(cost, capacity)
        return max(blocked - now, (need - have) / rate, 1e-3)  # never 0: nothing was taken

    def cap(self, name: str, at_most: float, *, rate: float, capacity: float, now: float) -> None:
        self._ensure(name)
        refilled = self._refilled(rate, capacity, now)
        with self._engine.begin() as conn:
            conn.execute(
                update(_TABLE)
                .where(_C.name == name)
                .values(tokens=self._least(refilled, at_most), stamp=self._greatest(_C.stamp, now))
            )

    # --- Retry-After ---------------------------------------------------------------------

    def block(self, name: str, until: float) -> None:
        self._ensure(name)
        with self._engine.begin() as conn:
            conn.execute(
                update(_TABLE)
                .where(_C.name == name)
                .values(blocked_until=self._greatest(_C.blocked_until, until))
            )

    def blocked_until(self, name: str) -> float:
        with self._engine.begin() as conn:
            value = conn.execute(select(_C.blocked_until).where(_C.name == name)).scalar()
        return -math.inf if value is None or value <= 0 else float(value)

    # --- concurrency slots ----------------------------------------------------------------

    def acquire(self, name: str, slots: int, *, now: float, hold_s: float) -> str | None:
        keys = [_slot(name, number) for number in range(slots)]
        for key in keys:
            self._ensure(key)
        with self._engine.begin() as conn:
            for key in keys:
                got = conn.execute(
                    update(_TABLE)
                    .where(and_(_C.name == key, _C.blocked_until <= now))
                    .values(blocked_until=now + hold_s, stamp=now)
                    .returning(_C.name)
                ).first()
                if got is not None:
                    return f"{key}@{now!r}"
        return None

    def release(self, name: str, slot: str) -> None:
        key, _, taken = slot.rpartition("@")
        with self._engine.begin() as conn:
            conn.execute(
                update(_TABLE)
                .where(and_(_C.name == key, _C.stamp == float(taken)))
                .values(blocked_until=0.0)
            )

    # --- rows ------------------------------------------------------------------------------

    def _ensure(self, name: str) -> None:
        """Create the row once: a new bucket is full (stamp 0 refills it to capacity)."""
        if name in self._known:
            return
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        with self._engine.begin() as conn:
            conn.execute(
                insert(_TABLE)
                .values(name=name, tokens=0.0, stamp=0.0, blocked_until=0.0)
                .on_conflict_do_nothing(index_elements=["name"])
            )
        self._known.add(name)


def _slot(name: str, number: int) -> str:
    return f"{name}#slot{number}"


def store_ledger(store: Store) -> SqlBudgetLedger | None:
    """The shared ledger of a SQL store, or None for a store without a database engine."""
    engine = getattr(store, "engine", None)
    return SqlBudgetLedger(engine) if isinstance(engine, Engine) else None
