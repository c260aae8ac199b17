"""Card clicks through the real bot endpoint: forged tokens refused, an owner's card walked.

One sandbox and one service (SQLite) for the module; the tests use different owners, so
what one does cannot change what another sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from integration_support import (
    Bench,
    Posted,
    bench,
    monthly_flow,
    opening_time,
    replied_card,
    sandbox_health,
)

from m365perf.domain.periods import Period
from m365perf.sandbox.act import find_actions
from m365perf.sandbox.testing import running_sandbox
from m365perf.store import ReturnStatus

pytestmark = pytest.mark.slow

PERIOD = "2026-10"
FORGERIES: dict[str, dict[str, Any]] = {
    "signed with a key the Bot Framework never published": {"sign_with": "foreign"},
    "expired an hour ago": {"expired": True},
    "for another bot": {"audience": "00000000-0000-0000-0000-000000000b07"},
    "for another service url": {"service_url_claim": "https://smba.evil.example/emea/"},
}

# Liam Fletcher returns two indicators, both "rate per" figures:
LIAM = "liam.fletcher@contoso.gov.uk"
ATTAINMENT = "COV-021"  # Key stage 4 attainment 8: no target, a steady history
LOOKED_AFTER = "COV-024"  # looked-after children per 10,000: lower is better, target 89
ATTAINMENT_HISTORY = [46.1, 45.8, 46.4, 45.9, 46.3, 46.0]  # April to September 2026


@pytest.fixture(scope="module")
def council(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """The October cycle open and every owner's card delivered to Teams."""
    tmp = tmp_path_factory.mktemp("cards")
    with running_sandbox(tmp) as sandbox:
        start = opening_time(monthly_flow(sandbox_health(sandbox)), PERIOD)
        with bench(sandbox, f"sqlite:///{tmp / 'm365perf.db'}", start=start) as council:
            _import_history(council, ATTAINMENT, ATTAINMENT_HISTORY)
            opened = council.service.open_due_cycles()
            assert [o.created for o in opened] == [True]
            council.service.settle()
            yield council


def _import_history(council: Bench, indicator: str, values: list[float]) -> None:
    """Past months, as ``m365perf import-history`` would leave them in the store."""
    period = Period.parse(PERIOD)
    with council.store.transaction() as tx:
        for value in reversed(values):
            period = period.previous()
            tx.put_history(
                indicator,
                frequency=period.frequency,
                period=period.label,
                period_start=period.start,
                value=value,
                source="test",
                now=council.clock.now,
            )


def _snapshot(council: Bench) -> dict[str, Any]:
    """Everything a click could change: returns, their steps, the outbox, the audit trail."""
    with council.store.transaction() as tx:
        returns = [r for c in tx.list_cycles() for r in tx.list_returns(cycle_id=c.id)]
        return {
            "returns": [r.model_dump() for r in returns],
            "steps": [s.model_dump() for r in returns for s in tx.list_steps(r.id or 0)],
            "outbox": [m.model_dump() for m in tx.list_outbox()],
            "audit": [e.model_dump() for e in tx.list_audit()],
            "timers": [t.model_dump() for t in tx.list_timers()],
        }


def test_forged_clicks_are_refused_and_change_nothing(council: Bench) -> None:
    owner = "kieran.murphy@contoso.gov.uk"
    card = council.request_card(owner)
    versions = card.data("submitReturns")["versions"]
    inputs = {f"value__{key}": "120" for key in versions} | {
        f"comment__{key}": "Steady month." for key in versions
    }
    before = _snapshot(council)

    for forgery, switches in FORGERIES.items():
        report = council.act(owner, card, "submitReturns", inputs, **switches)
        assert report["status"] == 401, f"a click {forgery} was answered {report['status']}"
        assert not report["card_replaced"], forgery
        assert _snapshot(council) == before, f"a click {forgery} changed the store"
        assert council.request_card(owner) == card, forgery

    # The very same click, signed as the Bot Framework signs it, is taken.
    report = council.act(owner, card, "submitReturns", inputs)
    assert report["status"] == 200 and report["card_replaced"]
    returned = [
        r
        for r in council.returns(int(card.data("submitReturns")["cycle_id"]))
        if r.indicator_key in versions
    ]
    assert {r.status for r in returned} == {ReturnStatus.RETURNED}


def _inputs(card: Posted) -> set[str]:
    """The ids of the inputs a card still offers."""
    found: set[str] = set()
    stack: list[Any] = [card.card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Input.") and "id" in node:
                found.add(str(node["id"]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def test_an_owner_walks_a_card_from_errors_to_a_partial_then_a_full_return(
    council: Bench,
) -> None:
    def submit(**inputs: str) -> Posted:
        """Liam clicks Submit on the card in his chat; what his chat shows afterwards."""
        clicked = council.request_card(LIAM)
        report = council.act(LIAM, clicked, "submitReturns", inputs)
        reply = replied_card(report)
        assert report["card_replaced"]
        (now_shown,) = [p for p in council.chat_cards(LIAM) if p.where == clicked.where]
        assert now_shown.card == reply, "the reply did not replace the clicked card"
        return now_shown

    cycle_id = int(council.request_card(LIAM).data("submitReturns")["cycle_id"])

    def status() -> dict[str, ReturnStatus]:
        return {
            r.indicator_key: r.status
            for r in council.returns(cycle_id)
            if r.indicator_key in (ATTAINMENT, LOOKED_AFTER)
        }

    open_ = {ATTAINMENT: ReturnStatus.AWAITING, LOOKED_AFTER: ReturnStatus.AWAITING}
    assert status() == open_

    # 1. Not a number: the card comes back with the figure and a message beside it.
    shown = submit(**{f"value__{ATTAINMENT}": "about forty"})
    assert "“about forty” is not a number" in shown.text
    assert status() == open_

    # 2. Red without commentary: the figure is kept and commentary is asked for.
    shown = submit(**{f"value__{LOOKED_AFTER}": "120"})
    assert "commentary is required when the figure is red" in shown.text
    assert status() == open_

    # 3. With commentary it is taken; the card stays for the indicator still to come.
    shown = submit(
        **{
            f"value__{LOOKED_AFTER}": "120",
            f"comment__{LOOKED_AFTER}": "Two large sibling groups came into care in October.",
        }
    )
    assert status() == {ATTAINMENT: ReturnStatus.AWAITING, LOOKED_AFTER: ReturnStatus.RETURNED}
    assert "Returned: 120 · Red · Awaiting approval by Daniel Hughes" in shown.text
    assert f"value__{ATTAINMENT}" in _inputs(shown)
    assert f"value__{LOOKED_AFTER}" not in _inputs(shown)
    assert shown.data("submitReturns")["versions"].keys() >= {ATTAINMENT}

    # 4. Ten times its history: the officer must confirm the figure.
    comment = "Validated against the DfE release."
    shown = submit(**{f"value__{ATTAINMENT}": "460", f"comment__{ATTAINMENT}": comment})
    assert f"confirm__{ATTAINMENT}" in _inputs(shown)
    assert "460 is 898% above the average of the 6 previous periods" in shown.text
    assert status()[ATTAINMENT] is ReturnStatus.AWAITING

    # 5. Confirmed: everything is returned and the card becomes a receipt.
    shown = submit(
        **{
            f"value__{ATTAINMENT}": "460",
            f"comment__{ATTAINMENT}": comment,
            f"confirm__{ATTAINMENT}": "true",
        }
    )
    assert "submitReturns" not in {a.get("verb") for a in find_actions(shown.card)}
    assert "Everything due from you for this period has been returned." in shown.text
    assert status() == {ATTAINMENT: ReturnStatus.RETURNED, LOOKED_AFTER: ReturnStatus.RETURNED}
    (attainment,) = [r for r in council.returns(cycle_id) if r.indicator_key == ATTAINMENT]
    assert attainment.value == 460 and attainment.outlier_confirmed

    # The supervisor is told the officer confirmed an unusual value.
    council.service.settle()
    supervisor = "daniel.hughes@contoso.gov.uk"
    asked = council.approval_card(supervisor, attainment.id or 0, 0)
    assert "the officer confirmed an unusual value is correct" in asked.text
