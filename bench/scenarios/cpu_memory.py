"""Service CPU and peak memory per indicator over a whole cycle, engine in-process.

The lifecycle of every indicator: the cycle opens (snapshot, route, one request card per
owner), each owner returns all their figures in one click, three approvers approve them
from their digests (supervisor, head of service for a red figure, the performance team),
and the final approval queues the SharePoint write-back. The engine runs in this process
against file SQLite, without HTTP or the sandbox: the dispatcher's sends (Microsoft 365
work, throttle-bound, measured by the other scenarios) are not in the figure.

CPU is ``time.process_time()`` of the engine calls only (building the register and
reading the test's own cards out of the outbox are excluded). Peak memory is the
process's ``ru_maxrss`` (resident set, so Python and every import are in it).

Sizes: ``M365PERF_BENCH_SIZES`` (default ``1000,10000``; ``--small``: 100, for CI's time);
the issue's 100k figure: ``M365PERF_BENCH_SIZES=100000 bench/run --scenario cpu_memory``.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from harness import ROOT, Figure

DESCRIPTION = "service CPU and peak memory per indicator, open to write-back, engine in-process"

PER_OWNER = 10
OWNERS_PER_SUPERVISOR = 10
SUPERVISORS_PER_HEAD = 10


@dataclass
class Stages:
    """CPU seconds and SQL statements per lifecycle stage."""

    seconds: dict[str, float] = field(default_factory=dict)
    statements: dict[str, int] = field(default_factory=dict)
    _count: list[int] = field(default_factory=lambda: [0])

    def watch(self, engine: Any) -> None:
        """Count every statement sent on ``engine`` (a SQLAlchemy engine)."""
        from sqlalchemy import event

        def counted(*_: Any) -> None:
            self._count[0] += 1

        event.listen(engine, "before_cursor_execute", counted)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.process_time()
        before = self._count[0]
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.process_time() - start
            self.statements[name] = self.statements.get(name, 0) + self._count[0] - before

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def _uuid(kind: int, n: int) -> str:
    return f"{kind:08d}-0000-0000-0000-{n:012d}"


def lifecycle(size: int, db_url: str, stages: Stages, log: Callable[[str], None] = print) -> int:
    """Drive ``size`` indicators from opening to queued write-back; the write-backs queued."""
    sys.path.insert(0, str(ROOT / "tests" / "engine"))
    from engine_support import COLUMNS, NADIA, START, make_council

    from m365perf.engine import Caller
    from m365perf.engine.digest import ItemRef, approve_unflagged, read_digest
    from m365perf.store import PersonSpec, create_store

    owners = max(1, size // PER_OWNER)
    supervisors = max(1, owners // OWNERS_PER_SUPERVISOR)
    heads = max(1, supervisors // SUPERVISORS_PER_HEAD)
    head_people = [(_uuid(5, n), f"head{n}@contoso.gov.uk", None) for n in range(heads)]
    supervisor_people = [
        (_uuid(4, n), f"super{n}@contoso.gov.uk", head_people[n % heads][0])
        for n in range(supervisors)
    ]
    owner_people = [
        (_uuid(3, n), f"owner{n}@contoso.gov.uk", supervisor_people[n % supervisors][0])
        for n in range(owners)
    ]
    rows: list[list[str]] = []
    for n in range(size):
        owner = n % owners
        sup = owner % supervisors
        rows.append(
            [
                f"K{n:06d}",
                f"Indicator {n}",
                "number",
                "higher_is_better",
                "Monthly",
                "100",
                "5%",
                "",
                "",
                owner_people[owner][1],
                supervisor_people[sup][1],
                head_people[sup % heads][1],
                f"Service {sup % 7}",
                "Yes",
                "",
                "",
            ][: len(COLUMNS)]
        )
    store = create_store(db_url, migrate=True)
    stages.watch(store._engine)  # type: ignore[attr-defined]
    with stages.stage("people"), store.transaction() as tx:
        tx.upsert_people(
            [
                PersonSpec(id=i, name=e, email=e, line_manager_id=m)
                for i, e, m in (*head_people, *supervisor_people, *owner_people)
            ],
            now=START,
        )
    with stages.stage("open"):
        council = make_council(store, rows=rows, cards="digest")
    log(f"  opened {size}: {stages.seconds['open']:.2f} s cpu")
    ctx = council.engine.ctx
    with store.transaction() as tx:
        cycle_id = tx.list_cycles()[0].id or 0
        requests = [
            (m.payload["user"]["email"], m.payload["card"])
            for m in tx.list_outbox(kind="send_card")
        ]
    by_email: dict[str, dict[str, Any]] = {}
    for email, card in requests:
        by_email.setdefault(email, card)
    with stages.stage("return"):
        for person_id, email, _ in owner_people:
            card = by_email[email]
            action = next(a for a in card["actions"] if a.get("verb") == "submitReturns")
            data: dict[str, Any] = dict(action["data"])
            for key in _keys_on(card):
                data[f"value__{key}"] = "80"  # red: the head of service's step applies
                data[f"comment__{key}"] = "Staff shortage."
            council.act(Caller(person_id, email), "submitReturns", data)
    log(f"  returned: {stages.seconds['return']:.2f} s cpu")
    approvers = [
        [Caller(i, e) for i, e, _ in supervisor_people],
        [Caller(i, e) for i, e, _ in head_people],
        [NADIA],
    ]
    for step, callers in enumerate(approvers, start=1):
        with stages.stage(f"approve {step}"):
            council.tick(minutes=5)
            council.engine.fire_due_timers(worker="bench", now=council.now)
            for caller in callers:
                view = read_digest(store, ctx, cycle_id, caller.user_id)
                refs = [ItemRef.of(item) for item in view.items]
                approve_unflagged(store, ctx, caller, cycle_id, refs, now=council.now)
        log(f"  approval {step}: {stages.seconds[f'approve {step}']:.2f} s cpu")
    with stages.stage("settle"):
        council.tick(minutes=5)
        council.engine.fire_due_timers(worker="bench", now=council.now + timedelta(minutes=5))
    with store.transaction() as tx:
        written = len(tx.list_outbox(kind="write_back"))
    store.close()
    return written


def _keys_on(card: Any) -> list[str]:
    """The indicator keys of the value inputs on an owner's request card."""
    found: list[str] = []
    stack = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ident = node.get("id")
            if isinstance(ident, str) and ident.startswith("value__"):
                found.append(ident.removeprefix("value__"))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def sizes(small: bool) -> list[int]:
    if small:
        return [100]
    raw = os.environ.get("M365PERF_BENCH_SIZES", "1000,10000")
    return [int(s) for s in raw.split(",") if s.strip()]


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def run(small: bool) -> list[Figure]:
    figures: list[Figure] = []
    for size in sizes(small):
        stages = Stages()
        with tempfile.TemporaryDirectory() as tmp:
            written = lifecycle(size, f"sqlite:///{tmp}/bench.db", stages, log=_stderr)
        if written != size:
            raise RuntimeError(f"{written} of {size} indicators were written back")
        breakdown = ", ".join(f"{k} {v / size * 1000:.2f}" for k, v in stages.seconds.items())
        figures.append(
            Figure(
                f"CPU per indicator at {size:,}",
                stages.total / size * 1000,
                "ms",
                goal=5.0,
                note=f"ms per indicator by stage: {breakdown}",
            )
        )
        figures.append(
            Figure(
                f"SQL statements per indicator to open at {size:,}",
                stages.statements["open"] / size,
                "statements",
                note="whole lifecycle: "
                + ", ".join(f"{k} {v / size:.1f}" for k, v in stages.statements.items()),
            )
        )
        figures.append(
            Figure(
                f"peak memory (ru_maxrss) after {size:,}",
                _peak_mb(),
                "MB",
                goal=512.0 if size >= 100_000 else None,
                note="process peak so far, this and any smaller size run before it",
            )
        )
    return figures


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    stages = Stages()
    with tempfile.TemporaryDirectory() as tmp:
        print(lifecycle(size, f"sqlite:///{tmp}/bench.db", stages))
    print({k: round(v, 2) for k, v in stages.seconds.items()}, f"{_peak_mb():.0f} MB")
    print({k: round(v / size, 2) for k, v in stages.statements.items()}, "statements/indicator")
