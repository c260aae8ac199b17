"""A small council for engine tests: people, a register, the monthly flow, a clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from m365perf.domain.periods import Period
from m365perf.engine import Caller, Engine
from m365perf.flows import load_flow
from m365perf.flows.model import Closing, Flow, ImprovementActions, Reminders
from m365perf.plan.register import read_indicators
from m365perf.store import OutboxMessage, PersonSpec, Store
from m365perf.store.testing import memory_store

ROOT = Path(__file__).resolve().parents[2]
MONTHLY = ROOT / "flows" / "monthly-corporate-kpis.yaml"

PEOPLE = [
    # id, name, email, line manager id
    (
        "11111111-0000-0000-0000-000000000001",
        "Ann Lee",
        "ann.lee@contoso.gov.uk",
        "11111111-0000-0000-0000-000000000002",
    ),
    (
        "11111111-0000-0000-0000-000000000002",
        "Bob Ray",
        "bob.ray@contoso.gov.uk",
        "11111111-0000-0000-0000-000000000003",
    ),
    ("11111111-0000-0000-0000-000000000003", "Cat Doe", "cat.doe@contoso.gov.uk", None),
    (
        "11111111-0000-0000-0000-000000000004",
        "Dan Fox",
        "dan.fox@contoso.gov.uk",
        "11111111-0000-0000-0000-000000000002",
    ),
    ("11111111-0000-0000-0000-000000000005", "Nadia Clarke", "nadia.clarke@contoso.gov.uk", None),
    ("11111111-0000-0000-0000-000000000006", "Ben Foster", "ben.foster@contoso.gov.uk", None),
]
ANN, BOB, CAT, DAN, NADIA, BEN = (Caller(p[0], p[1]) for p in PEOPLE)

COLUMNS = [
    "IndicatorId",
    "Title",
    "Unit",
    "Polarity",
    "Frequency",
    "Target",
    "Tolerance",
    "TargetFrom",
    "Comparator",
    "Owner",
    "Supervisor",
    "HeadOfService",
    "Service",
    "Active",
    "Kind",
    "Profile",
]
ROWS = [
    [
        "CP001",
        "Household waste recycled",
        "%",
        "higher_is_better",
        "Monthly",
        "45",
        "5%",
        "",
        "",
        "ann.lee@contoso.gov.uk",
        "bob.ray@contoso.gov.uk",
        "cat.doe@contoso.gov.uk",
        "Streetpride",
        "Yes",
    ],
    [
        "CP002",
        "Days to process new benefit claims",
        "days",
        "lower_is_better",
        "Monthly",
        "20",
        "2",
        "",
        "",
        "ann.lee@contoso.gov.uk",
        "bob.ray@contoso.gov.uk",
        "cat.doe@contoso.gov.uk",
        "Revenues",
        "Yes",
    ],
    [
        "CP003",
        "Fly-tips reported",
        "number",
        "lower_is_better",
        "Monthly",
        "",
        "",
        "",
        "",
        "dan.fox@contoso.gov.uk",
        "bob.ray@contoso.gov.uk",
        "cat.doe@contoso.gov.uk",
        "Streetpride",
        "Yes",
    ],
]

#: A year-to-date (cumulative) indicator, judged against its profiled target.
YTD_ROW = [
    "CP009",
    "Affordable homes delivered (year to date)",
    "number",
    "higher_is_better",
    "Monthly",
    "1200",
    "5%",
    "",
    "",
    "ann.lee@contoso.gov.uk",
    "bob.ray@contoso.gov.uk",
    "cat.doe@contoso.gov.uk",
    "Housing",
    "Yes",
    "cumulative",
    "",
]

#: Thursday 5 November 2026, 10:00 UK (GMT): the October cycle opened the day before.
START = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)


@dataclass
class Council:
    engine: Engine
    store: Store
    now: datetime

    def tick(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now

    def outbox(self, kind: str | None = None) -> list[OutboxMessage]:
        with self.store.transaction() as tx:
            return tx.list_outbox(kind=kind)

    def cards_to(self, email: str) -> list[dict[str, Any]]:
        return [m.payload for m in self.outbox("send_card") if m.payload["user"]["email"] == email]

    def act(self, caller: Caller, verb: str, data: dict[str, Any]) -> dict[str, Any]:
        return self.engine.handle_action(caller, verb, data, now=self.now)


def submit_data(card: dict[str, Any], **inputs: str) -> dict[str, Any]:
    """What Teams sends for the card's submit action, with these inputs filled in."""
    action = next(a for a in card["actions"] if a.get("verb") == "submitReturns")
    return {**action["data"], **inputs}


def approval_data(card: dict[str, Any], verb: str, **inputs: str) -> dict[str, Any]:
    action = next(a for a in card["actions"] if a.get("verb") == verb)
    return {**action["data"], **inputs}


def per_item(flow: Flow) -> Flow:
    """``flow`` with one approval card per return, step and approver (not a digest)."""
    return flow.model_copy(
        update={"approval": flow.approval.model_copy(update={"cards": "per_item"})}
    )


def make_council(
    store: Store | None = None,
    rows: list[list[str]] | None = None,
    history: dict[str, list[tuple[str, float]]] | None = None,
    period: str = "2026-10",
    start: datetime = START,
    daily_budget: int | None = None,
    close: dict[str, Any] | None = None,
    reminders: dict[str, Any] | None = None,
    actions: dict[str, Any] | None = None,
    cards: str = "per_item",
) -> Council:
    """The council's October cycle, opened; on in-memory SQLite unless given a store.

    ``cards`` is the flow's ``approval.cards``: most engine tests drive the one-card-per-
    return path (still a flow option); the digest tests ask for ``digest``.
    """
    store = store or memory_store()
    flow = load_flow(MONTHLY)
    flow = flow.model_copy(update={"approval": flow.approval.model_copy(update={"cards": cards})})
    if close is not None:
        flow = flow.model_copy(update={"close": Closing(**close)})
    if reminders is not None:
        flow = flow.model_copy(update={"reminders": Reminders.model_validate(reminders)})
    if actions is not None:
        flow = flow.model_copy(update={"actions": ImprovementActions.model_validate(actions)})
    if daily_budget is not None and flow.powerbi is not None:
        powerbi = flow.powerbi.model_copy(update={"daily_budget": daily_budget})
        flow = flow.model_copy(update={"powerbi": powerbi})
    engine = Engine(store, [flow])
    now = start
    with store.transaction() as tx:
        tx.upsert_people(
            [PersonSpec(id=i, name=n, email=e, line_manager_id=m) for i, n, e, m in PEOPLE], now=now
        )
        for key, points in (history or {}).items():
            for label, value in points:
                past = Period.parse(label)
                tx.put_history(
                    key,
                    frequency=past.frequency,
                    period=past.label,
                    period_start=past.start,
                    value=value,
                    source="test",
                    now=now,
                )
    open_period(engine, period, rows, now=now)
    return Council(engine, store, now)


def open_period(
    engine: Engine, period: str, rows: list[list[str]] | None = None, *, now: datetime
) -> None:
    """Open the (only) flow's cycle for ``period`` from the test register."""
    flow = next(iter(engine.flows.values()))
    register = [
        dict(zip(COLUMNS, row + [""] * (len(COLUMNS) - len(row)), strict=True))
        for row in (rows or ROWS)
    ]
    indicators, problems = read_indicators(flow, register)
    engine.open_cycle(flow.id, Period.parse(period), indicators, problems, now=now)


def monthly(start: str, values: list[float]) -> list[tuple[str, float]]:
    period = Period.parse(start)
    out = []
    for value in values:
        out.append((period.label, value))
        period = period.next()
    return out


def iter_texts(node: Any) -> Iterator[str]:
    """Every piece of visible text in a card."""
    if isinstance(node, dict):
        for key in ("text", "title", "label", "placeholder", "errorMessage", "value"):
            if isinstance(node.get(key), str):
                yield node[key]
        for value in node.values():
            yield from iter_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_texts(item)


def card_text(card: dict[str, Any]) -> str:
    return "\n".join(iter_texts(card))
