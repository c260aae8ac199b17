"""Throttle-bound work against the bound its budget implies, with the documented budgets on.

Fan-out: 1,000 owner cards (100 owners) queued at once and sent by the dispatcher's
continuous loop (as ``serve`` runs it) against the sandbox enforcing 50 bot requests a
second; the bound is the bot requests the sandbox saw (conversation creates and sends),
less the first second's burst, at 50 a second. Write-back: 1,000 approved rows to the
results list against 1,250 SharePoint resource units a minute; the bound is the units the
sandbox charged, less the minute's burst, at the minute's rate. ``--small``: 100 cards; 40
rows against a scaled-down minute of 72 units (so the small run still meets the budget).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness import Figure

DESCRIPTION = "fan-out and write-back under the documented budgets, against the implied bound"

GOAL = 1.15


def run(small: bool) -> list[Figure]:
    from m365perf.sandbox.config import Budget, documented_budgets
    from scenarios import _budgets as b

    figures: list[Figure] = []
    cards = 100 if small else 1000
    with (
        b.sandbox() as running,
        tempfile.TemporaryDirectory() as folder,
        b.production_store(Path(folder)) as (store, backend),
    ):
        live = b.engine(running, store)
        owners = min(100, len(b.users(running)))
        ids = b.queue(store, b.owner_cards(running, cards, owners))
        with b.draining(live):
            took = b.wait_done(store, ids)
        log = b.request_log(running)
        sent = b.spent(log, "bot")
        bound = b.implied_bound_s(sent, 50, 1)
        per_person = -(-cards // owners)
        # The client's own per-conversation budget (5 at once, then 55 in 30 s: inside
        # Teams' 7 a second, 8 in two and 60 in 30) bounds a person's cards too.
        person_bound = max(0.0, per_person - 5) * 30 / 55
        throttled = sum(1 for r in log if r["status"] == 429)
        figures += [
            Figure(
                f"fan-out of {cards} owner cards: time / budget bound",
                took / bound if bound else float("inf"),
                "x",
                goal=GOAL,
                note=f"{took:.1f}s against {bound:.1f}s for {sent:.0f} bot requests; "
                f"{throttled} 429s; {owners} owners, {per_person} cards each; {backend}",
            ),
            Figure(
                f"fan-out of {cards}: time / max(bot, per-conversation) bound",
                took / max(bound, person_bound) if max(bound, person_bound) else float("inf"),
                "x",
                goal=GOAL,
                note=f"per-conversation bound {person_bound:.1f}s",
            ),
            Figure(f"fan-out of {cards}: HTTP 429s", throttled, "responses", note="want 0"),
        ]

    rows = 40 if small else 1000
    budgets = documented_budgets()
    minute = 72.0 if small else budgets["sharepoint"].limit
    budgets["sharepoint"] = Budget(limit=minute, window_s=60)
    with (
        b.sandbox(budgets) as running,
        tempfile.TemporaryDirectory() as folder,
        b.production_store(Path(folder)) as (store, backend),
    ):
        live = b.engine(running, store, sharepoint_ru_per_minute=minute)
        ids = b.queue(store, b.write_backs(running, rows))
        with b.draining(live):
            took = b.wait_done(store, ids)
        log = b.request_log(running)
        units = b.spent(log, "sharepoint")
        bound = b.implied_bound_s(units, minute, 60)
        throttled = sum(1 for r in log if r["status"] == 429)
        figures += [
            Figure(
                f"write-back of {rows} rows: time / budget bound",
                took / bound if bound else float("inf"),
                "x",
                goal=GOAL,
                note=f"{took:.1f}s against {bound:.1f}s for {units:.0f} RU at "
                f"{minute:.0f} RU/min; {throttled} 429s; {backend}",
            ),
            Figure(f"write-back of {rows}: HTTP 429s", throttled, "responses", note="want 0"),
        ]
    return figures
