"""Improvement actions end to end against a real sandbox: an officer enters one for a red
on their Teams card, the next cycle's card lists it and they update it there, and the
sandbox's "KPI Actions" list holds the action and then its update."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from integration_support import (
    Json,
    bench,
    card_text,
    monthly_flow,
    opening_time,
    replied_card,
    sandbox_health,
)

from m365perf.domain.periods import Period
from m365perf.flows.model import ImprovementActions
from m365perf.sandbox.seed import ACTIONS_LIST
from m365perf.sandbox.testing import RunningSandbox, running_sandbox

pytestmark = pytest.mark.slow

CHLOE, HOMELESSNESS = "chloe.evans@contoso.gov.uk", "COV-027"  # higher is better, >1250


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path_factory.mktemp("actions"), powerbi_refresh_s=0) as running:
        yield running


def _actions_rows(sandbox: RunningSandbox, health: Json) -> list[Json]:
    token = sandbox.token()
    answer = requests.get(
        f"{sandbox.base_url}/v1.0/sites/{health['site_id']}/lists/"
        f"{health['lists'][ACTIONS_LIST]}/items?expand=fields",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    answer.raise_for_status()
    return [item["fields"] for item in answer.json()["value"]]


def test_an_action_for_a_red_is_updated_on_the_next_card_and_reaches_the_list(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    health = sandbox_health(sandbox)
    flow = monthly_flow(health)
    flow = flow.model_copy(
        update={
            "actions": ImprovementActions.model_validate(
                {"required_for": ["red"], "list": ACTIONS_LIST}
            )
        }
    )
    start = opening_time(flow, "2026-10")
    url = f"sqlite:///{tmp_path / 'm365perf.db'}"
    with bench(sandbox, url, start=start, flow=flow, own_cards_only=True) as council:
        council.service.open_cycle(flow, Period.parse_for(flow.frequency, "2026-10"), actor="t")
        council.service.settle()
        red: dict[str, Any] = {
            f"value__{HOMELESSNESS}": "900",
            f"comment__{HOMELESSNESS}": "Fewer cases prevented while the team was short.",
            f"confirm__{HOMELESSNESS}": "true",
        }

        card = council.request_card(CHLOE)
        refused = replied_card(council.act(CHLOE, card, "submitReturns", red))
        assert "Add an improvement action: one is required when the figure is red" in (
            card_text(refused)
        )

        card = council.request_card(CHLOE)
        action = {
            f"actionwhat__{HOMELESSNESS}": "Two prevention officers back from secondment.",
            f"actionby__{HOMELESSNESS}": "2027-01-29",
        }
        council.act(CHLOE, card, "submitReturns", {**red, **action})
        council.service.settle()

        [row] = _actions_rows(sandbox, health)
        assert (row["IndicatorId"], row["Period"], row["Status"], row["Version"]) == (
            HOMELESSNESS,
            "2026-10",
            "not_started",
            1,
        )
        assert row["ActionBy"] == "Chloe Evans" and row["DueDate"] == "2027-01-29"

        council.clock.now = opening_time(flow, "2026-11")
        council.service.open_cycle(flow, Period.parse_for(flow.frequency, "2026-11"), actor="t")
        council.service.settle()
        card = council.request_card(CHLOE, period="2026-11")
        assert "Your improvement actions" in card.text
        assert "Two prevention officers back from secondment." in card.text
        action_id = row["ActionId"]
        council.act(
            CHLOE,
            card,
            "submitReturns",
            {
                f"actionstatus__{action_id}": "in_progress",
                f"actionnote__{action_id}": "One is back; the other starts in January.",
            },
        )
        council.service.settle()

        [row] = _actions_rows(sandbox, health)
        assert (row["ActionId"], row["Status"], row["Version"]) == (action_id, "in_progress", 2)
        assert row["Note"] == "One is back; the other starts in January."
