"""Improvement actions reach the SharePoint actions list: the engine queues them, the
dispatcher upserts them into the sandbox's seeded "KPI Actions" list, keyed on ActionId.

An action is entered with a red figure in one cycle, updated from the owner's request
card in the next, and the list holds one item that went from not started to done.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dispatch_support import ORIGINATOR, Bench

from m365perf.dispatch import Dispatcher
from m365perf.domain.periods import Period
from m365perf.engine import Caller, Engine
from m365perf.flows import load_flow
from m365perf.flows.model import ImprovementActions
from m365perf.m365 import clients_from_settings
from m365perf.plan.register import read_indicators
from m365perf.sandbox.seed import ACTIONS_LIST
from m365perf.settings import load_settings
from m365perf.store import CardDelivery, PersonSpec
from m365perf.store.testing import memory_store

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)


def _register(owner: str, supervisor: str, head: str) -> list[dict[str, str]]:
    return [
        {
            "IndicatorId": "ACT-001",
            "Title": "Household waste recycled",
            "Unit": "%",
            "Polarity": "higher_is_better",
            "Frequency": "Monthly",
            "Target": "45",
            "Tolerance": "5%",
            "Owner": owner,
            "Supervisor": supervisor,
            "HeadOfService": head,
            "Service": "Streetpride",
            "Active": "Yes",
        }
    ]


def _request_card(engine: Engine, email: str, cycle_id: int) -> dict[str, Any]:
    with engine.store.transaction() as tx:
        rows = [
            m.payload
            for m in tx.list_outbox(kind="send_card")
            if m.payload["user"]["email"] == email
            and str(m.payload["card_id"]).startswith(f"request-{cycle_id}-")
        ]
    assert rows, f"no request card for cycle {cycle_id}"
    card: dict[str, Any] = rows[-1]["card"]
    return card


def _submit_data(card: dict[str, Any], **inputs: str) -> dict[str, Any]:
    action = next(a for a in card["actions"] if a.get("verb") == "submitReturns")
    return {**action["data"], **inputs}


def _items(bench: Bench, marker: str) -> list[dict[str, Any]]:
    return [
        i["fields"]
        for i in bench.list_items(ACTIONS_LIST)
        if marker in i["fields"].get("Action", "")
    ]


def test_an_action_entered_for_a_red_reaches_the_actions_list_and_its_update_too(
    bench: Bench,
) -> None:
    owner, supervisor, head, team = (bench.user(n) for n in (20, 21, 22, 23))
    flow = load_flow(ROOT / "flows" / "monthly-corporate-kpis.yaml")
    flow = flow.model_copy(
        update={
            "writeback": flow.writeback.model_copy(update={"site": bench.site}),
            "actions": ImprovementActions.model_validate(
                {"required_for": ["red"], "list": ACTIONS_LIST}
            ),
            "powerbi": None,
            "groups": {"performance-team": [team["mail"]]},
            "performance_team": [team["mail"]],
        }
    )
    store = memory_store()
    engine = Engine(store, [flow])
    now = START
    with store.transaction() as tx:
        tx.upsert_people(
            [
                PersonSpec(id=u["id"], name=u["display_name"], email=u["mail"])
                for u in (owner, supervisor, head, team)
            ],
            now=now,
        )
    register = _register(owner["mail"], supervisor["mail"], head["mail"])
    indicators, problems = read_indicators(flow, register)
    engine.open_cycle(flow.id, Period.parse("2026-10"), indicators, problems, now=now)

    def find_delivery(card_id: str) -> CardDelivery | None:
        with store.transaction() as tx:
            return tx.find_delivery(card_id)

    settings = load_settings(
        **{"actionable_originator": ORIGINATOR, **bench.sandbox.settings_overrides()}
    )
    dispatcher = Dispatcher(
        store,
        clients_from_settings(settings, tokens=bench.tokens),
        settings,
        on_sent=engine.on_sent,
        on_parked=engine.on_parked,
        find_delivery=find_delivery,
        worker_id="actions-test",
        clock=lambda: now,
    )
    marker = f"Extra rounds {now.timestamp():.0f}"
    caller = Caller(owner["id"], owner["display_name"])
    card = _request_card(engine, owner["mail"], 1)
    engine.handle_action(
        caller,
        "submitReturns",
        _submit_data(
            card,
            **{
                "value__ACT-001": "30",
                "comment__ACT-001": "Crews were short.",
                "actionwhat__ACT-001": f"{marker}: two a week until March.",
                "actionby__ACT-001": "2026-11-30",
            },
        ),
        now=now,
    )
    dispatcher.drain()

    [item] = _items(bench, marker)
    assert (item["Status"], item["Version"], item["IndicatorId"]) == (
        "not_started",
        1,
        "ACT-001",
    )
    assert (item["ActionBy"], item["DueDate"], item["Period"]) == (
        owner["display_name"],
        "2026-11-30",
        "2026-10",
    )
    action_id = item["ActionId"]

    now = now + timedelta(days=28)
    engine.open_cycle(flow.id, Period.parse("2026-11"), indicators, problems, now=now)
    card = _request_card(engine, owner["mail"], 2)
    engine.handle_action(
        caller,
        "submitReturns",
        _submit_data(
            card,
            **{f"actionstatus__{action_id}": "done", f"actionnote__{action_id}": "Rounds added."},
        ),
        now=now,
    )
    dispatcher.drain()

    [item] = _items(bench, marker)
    assert (item["ActionId"], item["Status"], item["Note"], item["Version"]) == (
        action_id,
        "done",
        "Rounds added.",
        2,
    )
    with store.transaction() as tx:
        written = [
            e.after
            for e in tx.list_audit(subject_type="action", subject_id=action_id)
            if e.action == "action.written_back"
        ]
    assert [(w or {}).get("version") for w in written] == [1, 2]
    assert [(w or {}).get("created") for w in written] == [True, False]
