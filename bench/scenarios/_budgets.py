"""What the throttle, two-serve and approval-to-row scenarios share: a sandbox with its
throttling on, a dispatcher draining continuously as ``serve`` does, bursts of outbox rows,
and the bound a budget implies for a burst, read back from the sandbox's request log.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from harness import ROOT

sys.path.insert(0, str(ROOT / "tests" / "dispatch"))
sys.path.insert(0, str(ROOT / "tests" / "reliability"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from dispatch_support import Bench, MiniEngine

from m365perf.messages import RequestCardId
from m365perf.messages.ids import ROUND_OPEN
from m365perf.sandbox.config import Budget, documented_budgets
from m365perf.sandbox.graph import graph_budget
from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.store import Store, create_store
from m365perf.store.migrate import upgrade

POSTGRES_URL = os.environ.get(
    "M365PERF_BENCH_POSTGRES_URL",
    os.environ.get(
        "M365PERF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
)
RESULTS = "KPI Results"


@contextlib.contextmanager
def sandbox(budgets: dict[str, Budget] | None = None, **config: Any) -> Iterator[RunningSandbox]:
    """A fresh sandbox with its throttling on (the documented budgets unless given)."""
    with (
        tempfile.TemporaryDirectory() as folder,
        running_sandbox(
            Path(folder), budgets=budgets or documented_budgets(), page_size=200, **config
        ) as running,
    ):
        yield running


class LiveEngine(MiniEngine):
    """The dispatch tests' engine stand-in, on the real clock (rows retried later come back)."""

    @property  # type: ignore[override]
    def now(self) -> datetime:
        return datetime.now(UTC)

    @now.setter
    def now(self, _value: datetime) -> None:
        pass


def engine(running: RunningSandbox, store: Store, **settings: Any) -> LiveEngine:
    """A dispatcher on ``store`` talking to the sandbox; ``settings`` override the limits."""
    bench = Bench(running)
    live = LiveEngine(bench, store=store)
    if settings:
        from m365perf.dispatch import Dispatcher
        from m365perf.m365 import clients_from_settings
        from m365perf.settings import load_settings

        live.settings = load_settings(**{**live.settings.model_dump(), **settings})
        live.clients = clients_from_settings(live.settings, tokens=bench.tokens)
        live.dispatcher = Dispatcher(
            store,
            live.clients,
            live.settings,
            on_sent=live.on_sent,
            find_delivery=live.deliveries.get,
            worker_id="bench",
            clock=lambda: datetime.now(UTC),
        )
    return live


@contextlib.contextmanager
def draining(live: MiniEngine, idle_s: float = 0.5) -> Iterator[None]:
    """The dispatcher's continuous loop on a thread, as ``serve`` runs it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=live.dispatcher.run_forever, args=(stop, idle_s), daemon=True, name="drain"
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=120)


def sqlite_store(folder: Path) -> Store:
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url)
    return create_store(url)


@contextlib.contextmanager
def production_store(folder: Path) -> Iterator[tuple[Store, str]]:
    """PostgreSQL (production's store) when reachable, else SQLite; and which it is."""
    with postgres_schema() as url:
        store = create_store(url) if url is not None else sqlite_store(folder)
        try:
            yield store, "PostgreSQL" if url is not None else "SQLite"
        finally:
            store.close()


@contextlib.contextmanager
def postgres_schema() -> Iterator[str | None]:
    """A fresh schema on the bench's PostgreSQL (None when none is reachable)."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = sqlalchemy.create_engine(
            POSTGRES_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except Exception:
        yield None
        return
    base = make_url(POSTGRES_URL)
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        rendered = url.render_as_string(hide_password=False)
        upgrade(rendered)
        yield rendered
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- bursts --------------------------------------------------------------------------------


def users(running: RunningSandbox) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = requests.get(
        f"{running.base_url}/_sandbox/users", timeout=10
    ).json()["value"]
    return found


def site(running: RunningSandbox) -> str:
    return f"{running.config.sharepoint_host}:{running.config.site_path}"


def queue(store: Store, rows: Sequence[tuple[str, str, dict[str, Any]]]) -> list[int]:
    """Queue ``(kind, budget, payload)`` rows in one transaction, as one click or job does."""
    now = datetime.now(UTC)
    ids = []
    with store.transaction() as tx:
        for kind, budget, payload in rows:
            message, _ = tx.enqueue(
                kind, budget=budget, payload=payload, dedup_key=uuid.uuid4().hex, now=now
            )
            assert message.id is not None
            ids.append(message.id)
    return ids


def owner_cards(
    running: RunningSandbox, count: int, owners: int
) -> list[tuple[str, str, dict[str, Any]]]:
    people = users(running)[:owners]
    rows = []
    for n in range(count):
        user = people[n % len(people)]
        rows.append(
            (
                "send_card",
                "bot",
                {
                    "card_id": str(RequestCardId(500_000 + n, user["id"], ROUND_OPEN)),
                    "channel": "teams",
                    "user": {"id": user["id"], "name": user["display_name"], "email": user["mail"]},
                    "card": {
                        "type": "AdaptiveCard",
                        "version": "1.5",
                        "body": [{"type": "TextBlock", "text": f"Return {n}", "wrap": True}],
                    },
                    "subject": f"Return {n}",
                    "summary": "Please send your figure",
                    "subject_type": "return",
                    "subject_id": n + 1,
                },
            )
        )
    return rows


def write_backs(
    running: RunningSandbox, count: int, tag: str = ""
) -> list[tuple[str, str, dict[str, Any]]]:
    tag = tag or uuid.uuid4().hex[:6]
    return [
        (
            "write_back",
            "sharepoint",
            {
                "site": site(running),
                "list": RESULTS,
                "key_fields": ["IndicatorId", "Period"],
                "fields": {"IndicatorId": f"B{tag}-{n:05}", "Period": "2026-11", "Value": n},
            },
        )
        for n in range(count)
    ]


def wait_done(store: Store, ids: Sequence[int], timeout_s: float = 600) -> float:
    """Seconds until every row is done (fails if one is parked or time runs out).

    One count over the rows' id range every 0.1 s: reading the rows themselves would
    compete with the dispatcher for the database it is measured on.
    """
    import sqlalchemy

    low, high = min(ids), max(ids)
    count = sqlalchemy.text(
        "SELECT status, count(*) FROM outbox WHERE id BETWEEN :low AND :high GROUP BY status"
    )
    engine = store.engine  # type: ignore[attr-defined]
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        with engine.connect() as conn:
            counts = {str(k): int(v) for k, v in conn.execute(count, {"low": low, "high": high})}
        if counts.get("parked"):
            raise RuntimeError(f"rows parked: {counts}")
        if counts.get("done", 0) >= len(ids):
            return time.perf_counter() - started
        time.sleep(0.1)
    raise TimeoutError("the burst was not sent in time")


# --- the sandbox's request log ----------------------------------------------------------------


def request_log(running: RunningSandbox) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = requests.get(
        f"{running.base_url}/_sandbox/requests", timeout=60
    ).json()["value"]
    return rows


def spent(records: list[dict[str, Any]], budget: str) -> float:
    """Units the sandbox charged ``budget`` (SharePoint resource units, or requests)."""
    total = 0.0
    for record in records:
        if record.get("budget") != budget:
            continue
        if budget == "sharepoint":
            total += graph_budget(None, record["method"], record["path"])[1]  # type: ignore[arg-type]
        else:
            total += 1
    return total


def implied_bound_s(units: float, limit: float, window_s: float) -> float:
    """The least time ``units`` can take from a full bucket of ``limit`` per ``window_s``."""
    return max(0.0, units - limit) / (limit / window_s)
