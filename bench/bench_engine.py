"""How long the engine takes to open a big cycle and take every return (not a test).

    .venv/bin/python bench/bench_engine.py [--owners 60] [--per-owner 5] [--db sqlite|memory]

``memory`` is the same SQL store on in-memory SQLite (``m365perf.store.testing``).

Prints seconds per stage. Use it before and after changes to the engine or the store.
CPU and peak memory per indicator over the whole lifecycle (approvals and write-back
too) are ``bench/run --scenario cpu_memory``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "engine"))

from engine_support import COLUMNS, PEOPLE, make_council, submit_data

from m365perf.engine import Caller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--owners", type=int, default=60)
    parser.add_argument("--per-owner", type=int, default=5)
    parser.add_argument("--db", choices=["sqlite", "memory"], default="sqlite")
    args = parser.parse_args()
    owners = [
        (f"22222222-0000-0000-0000-{n:012d}", f"owner{n}@contoso.gov.uk")
        for n in range(args.owners)
    ]
    rows = []
    for n, (_, email) in enumerate(owners):
        for k in range(args.per_owner):
            rows.append(
                [
                    f"B{n:03d}-{k}",
                    f"Indicator {n}/{k}",
                    "number",
                    "higher_is_better",
                    "Monthly",
                    "100",
                    "5%",
                    "",
                    "",
                    email,
                    PEOPLE[1][2],
                    PEOPLE[2][2],
                    "Bench",
                    "Yes",
                    "",
                    "",
                ][: len(COLUMNS)]
            )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        from m365perf.store import PersonSpec, create_store
        from m365perf.store.testing import memory_store

        store = (
            create_store(f"sqlite:///{tmp}/bench.db", migrate=True)
            if args.db == "sqlite"
            else memory_store()
        )
        with store.transaction() as tx:
            tx.upsert_people([PersonSpec(id=i, name=e, email=e) for i, e in owners], now=_now())
        council = make_council(store, rows=rows)
        opened = time.perf_counter()
        # The outbox read once, not per owner (that made this bench quadratic in size).
        first_card: dict[str, dict[str, Any]] = {}
        for message in council.outbox("send_card"):
            first_card.setdefault(message.payload["user"]["email"], message.payload["card"])
        for person_id, email in owners:
            card = first_card[email]
            inputs = {
                f"value__B{int(email[5:].split('@')[0]):03d}-{k}": "101"
                for k in range(args.per_owner)
            }
            inputs.update({f"comment__{key[7:]}": "ok" for key in list(inputs)})
            council.act(Caller(person_id, email), "submitReturns", submit_data(card, **inputs))
        returned = time.perf_counter()
        from m365perf.web.metrics import render_metrics
        from m365perf.web.status import gather_status
        from m365perf.web.status_page import render_status_html

        render_status_html(gather_status(store, council.engine.flows, now=council.now))
        status = time.perf_counter()
        render_metrics(store, council.engine.flows, None, now=council.now)
        metrics = time.perf_counter()
        store.close()
    total = args.owners * args.per_owner
    print(f"{args.db}: {total} indicators, {args.owners} owners")
    print(f"  open cycle (render and queue every card): {opened - start:6.2f} s")
    print(f"  every owner returns (judge, chain, cards): {returned - opened:6.2f} s")
    print(f"  the status page (gather and draw):         {status - returned:6.2f} s")
    print(f"  one /metrics scrape:                       {metrics - status:6.2f} s")


def _now():  # type: ignore[no-untyped-def]
    from engine_support import START

    return START


if __name__ == "__main__":
    main()
