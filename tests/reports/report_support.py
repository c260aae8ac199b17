"""A cycle worth reporting on: a red concern with an overdue action, an amber
improvement, and a missing return, on the engine tests' small council."""

from __future__ import annotations

from datetime import date

from engine_support import ANN, Council, make_council, monthly, submit_data

from m365perf.engine.context import EngineContext
from m365perf.reports.exceptions import ExceptionsReport
from m365perf.reports.gather import gather_exceptions
from m365perf.store import Store

ACTIONS = {"required_for": ["red", "special_cause_concern"], "list": "KPI Actions"}
RECYCLING = monthly("2025-10", [50, 51, 49, 50, 52, 48, 50, 51, 49, 50, 51, 50])  # CP001
BENEFIT_DAYS = monthly("2025-10", [25, 26, 24, 25, 25, 26, 24, 25, 26, 25, 24, 25])  # CP002
AS_OF = date(2026, 12, 5)  # after the action's date, 30 November
COMMENT_RED = "Crews were short all month; agency staff start in December."
COMMENT_AMBER = "The new claims form is working; backlog nearly cleared."


def reported_council(store: Store | None = None) -> Council:
    """October: recycling 30% (red, below its process limit), benefit days 21 (amber,
    better than ever), fly-tips (Dan's) not returned. Ann's figures await approval."""
    council = make_council(
        store=store, actions=ACTIONS, history={"CP001": RECYCLING, "CP002": BENEFIT_DAYS}
    )
    request = next(
        c["card"]
        for c in reversed(council.cards_to("ann.lee@contoso.gov.uk"))
        if str(c["card_id"]).startswith("request-")
    )
    reply = council.act(
        ANN,
        "submitReturns",
        submit_data(
            request,
            value__CP001="30",
            comment__CP001=COMMENT_RED,
            actionwhat__CP001="Two extra collection rounds a week until March.",
            actionby__CP001="2026-11-30",
            value__CP002="21",
            comment__CP002=COMMENT_AMBER,
            confirm__CP001="true",  # both are outside their process limits: unusual
            confirm__CP002="true",
        ),
    )
    with council.store.transaction() as tx:
        statuses = {r.indicator_key: r.status for r in tx.list_returns()}
    assert statuses == {"CP001": "returned", "CP002": "returned", "CP003": "awaiting"}, reply
    return council


def report_of(council: Council, **options: float) -> ExceptionsReport:
    with council.store.transaction() as tx:
        cycle = tx.list_cycles()[0]
        return gather_exceptions(
            tx, EngineContext(council.engine.flows), cycle, as_of=AS_OF, **options
        )
