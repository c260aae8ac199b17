"""Year-to-date indicators against their profiled target, and probable missing data."""

from __future__ import annotations

from engine_support import (
    ANN,
    BEN,
    BOB,
    ROWS,
    YTD_ROW,
    Council,
    approval_data,
    card_text,
    make_council,
    monthly,
    submit_data,
)

from m365perf.engine.publish import target_text
from m365perf.store import ReturnStatus


def _return(council: Council, key: str) -> object:
    with council.store.transaction() as tx:
        return next(r for r in tx.list_returns(cycle_id=1) if r.indicator_key == key)


def test_year_to_date_value_is_judged_against_its_profiled_target() -> None:
    # April to September 2026: 100 homes a month, so 600 by the end of September.
    history = {"CP009": monthly("2026-04", [100, 200, 300, 400, 500, 600])}
    council = make_council(rows=[*ROWS, YTD_ROW], history=history)
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    # October's year to date: 690. The even profile gives 7/12 of 1,200 = 700 by October,
    # so 690 is within 5% (35) of target: amber, not red against the annual 1,200.
    reply = council.act(ANN, "submitReturns", submit_data(card, value__CP009="690"))
    assert "commentary is required when the figure is amber" in card_text(reply)
    council.act(
        ANN,
        "submitReturns",
        submit_data(card, value__CP009="690", comment__CP009="Two schemes slipped into November"),
    )
    ret = _return(council, "CP009")
    assert ret.status is ReturnStatus.RETURNED and ret.rag == "amber"  # type: ignore[attr-defined]
    # direction uses October's own 90 homes against September's 100: worsening
    assert ret.direction == "worsening"  # type: ignore[attr-defined]
    bob = council.cards_to("bob.ray@contoso.gov.uk")[-1]["card"]
    council.act(BOB, "approve", approval_data(bob, "approve"))
    ben = council.cards_to("ben.foster@contoso.gov.uk")[-1]["card"]
    council.act(BEN, "approve", approval_data(ben, "approve"))
    (write,) = council.outbox("write_back")
    fields = write.payload["fields"]
    assert fields["Target"] == "700" and fields["Value"] == 690
    assert fields["Variation"] is not None


def test_zero_where_history_is_never_zero_is_flagged_as_missing_data() -> None:
    history = {"CP001": monthly("2025-10", [44, 46, 45, 47, 44, 45, 46, 45, 44, 46, 45, 47])}
    council = make_council(history=history)
    card = council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    reply = council.act(
        ANN,
        "submitReturns",
        submit_data(card, value__CP001="0", comment__CP001="Nothing collected"),
    )
    text = card_text(reply)
    assert "missing" in text.lower() and "confirm__CP001" in str(reply)
    assert _return(council, "CP001").status is ReturnStatus.AWAITING  # type: ignore[attr-defined]
    council.act(
        ANN,
        "submitReturns",
        submit_data(
            card, value__CP001="0", comment__CP001="Depot closed all month", confirm__CP001="true"
        ),
    )
    ret = _return(council, "CP001")
    assert ret.data_quality_flag  # type: ignore[attr-defined]
    approval = council.cards_to("bob.ray@contoso.gov.uk")[-1]["card"]
    assert "missing data" in card_text(approval).lower()


def test_a_target_reaches_the_results_list_with_every_digit_the_council_set() -> None:
    assert [target_text(t) for t in (700.0, 1234567.0, 0.35, 12.5, None)] == [
        "700",
        "1234567",
        "0.35",
        "12.5",
        None,
    ]
