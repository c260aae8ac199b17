"""Helpers the store tests share: fixed times, a cycle with a return, a thread race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeVar

from sqlalchemy.engine import make_url

from m365perf.domain.kinds import Frequency
from m365perf.store import Cycle, NewReturn, Return, Store, Transaction, create_store

T = TypeVar("T")

NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
FLOW = "monthly-corporate-kpis"
PERIOD = "2026-09"


@dataclass
class Backend:
    """A database for one test, and as many stores (connections, "processes") on it as needed."""

    name: str
    url: str
    _stores: list[Store] = field(default_factory=list)

    def new_store(self) -> Store:
        store = create_store(self.url)
        self._stores.append(store)
        return store

    def close(self) -> None:
        for store in self._stores:
            store.close()


def no_hang(url: str) -> str:
    """Fail with an error instead of hanging if a claim ever waits on another's row lock."""
    parsed = make_url(url)
    options = " ".join(filter(None, [parsed.query.get("options"), "-clock_timeout=10s"]))
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def open_cycle(tx: Transaction, period: str = PERIOD, flow: str = FLOW) -> tuple[Cycle, bool]:
    year, month = (int(p) for p in period.split("-"))
    return tx.open_cycle(
        flow,
        period,
        period_start=date(year, month, 1),
        frequency=Frequency.MONTHLY,
        due_date=date(2026, 10, 10),
        now=NOW,
    )


def new_return(store: Store, key: str = "CP01", owner: str = "officer-1") -> Return:
    """An open cycle with one awaited return in it."""
    with store.transaction() as tx:
        cycle, _ = open_cycle(tx)
        (ret,) = tx.create_returns(
            cycle.id or 0, [NewReturn(indicator_key=key, owner_id=owner)], now=NOW
        )
    return ret


def race(count: int, action: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``action(i)`` on ``count`` threads released together; results or errors, by i."""
    barrier = threading.Barrier(count)
    results: list[T | BaseException] = [RuntimeError("did not run")] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action(i)
        except BaseException as exc:  # handed back to the test to judge
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
