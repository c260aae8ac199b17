"""Re-reading the register for an open cycle, and refusing to open one nobody is asked in.

A row that could not be routed when the cycle opened (owner not in the directory yet,
an id with a space) is asked for once it is fixed; nothing already asked changes, and
a second re-read of the same register changes nothing at all.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from engine_support import COLUMNS, MONTHLY, PEOPLE, ROWS, START, card_text

from m365perf.domain.periods import Period
from m365perf.engine import CycleClosed, CycleResync, EmptyCycle, Engine, UnknownCycle
from m365perf.flows import load_flow
from m365perf.plan.register import Indicator, RowProblem, read_indicators
from m365perf.store import OutboxMessage, PersonSpec, ReturnStatus, Store, create_store

FLOW = load_flow(MONTHLY)
OCTOBER = Period.parse("2026-10")
EVE = ("11111111-0000-0000-0000-000000000007", "Eve Hart", "eve.hart@contoso.gov.uk", None)
FAY = ("11111111-0000-0000-0000-000000000008", "Fay Moss", "fay.moss@contoso.gov.uk", None)


def owned_by(ident: str, name: str, owner: str) -> list[str]:
    base = list(ROWS[2])  # CP003: a number, lower is better, no target
    base[0], base[1], base[9] = ident, name, owner
    return base


EVES = owned_by("CP004", "Missed bin collections", "eve.hart@contoso.gov.uk")
FAYS = owned_by("CP005", "Potholes repaired", "fay.moss@contoso.gov.uk")


class Council:
    """An engine on SQLite with the directory of engine_support (Eve and Fay not in it)."""

    def __init__(self, tmp_path: Path) -> None:
        self.store: Store = create_store(f"sqlite:///{tmp_path / 'r.db'}", migrate=True)
        self.engine = Engine(self.store, [FLOW])
        self.now = START
        self.join(*PEOPLE)

    def join(self, *people: tuple[str, str, str, str | None]) -> None:
        """People appear in the directory (the sync step copies them into the store)."""
        with self.store.transaction() as tx:
            tx.upsert_people(
                [PersonSpec(id=i, name=n, email=e, line_manager_id=m) for i, n, e, m in people],
                now=self.now,
            )

    def register(self, *rows: list[str]) -> tuple[list[Indicator], list[RowProblem]]:
        padded = [dict(zip(COLUMNS, r + [""] * (len(COLUMNS) - len(r)), strict=True)) for r in rows]
        return read_indicators(FLOW, padded)

    def open(self, *rows: list[str], allow_empty: bool = False) -> int:
        indicators, problems = self.register(*rows)
        opened = self.engine.open_cycle(
            FLOW.id, OCTOBER, indicators, problems, now=self.now, allow_empty=allow_empty
        )
        return opened.cycle_id

    def resync(self, *rows: list[str]) -> CycleResync:
        self.now += timedelta(days=1)
        indicators, problems = self.register(*rows)
        return self.engine.resync_cycle(
            FLOW.id, OCTOBER, indicators, problems, now=self.now, actor="cli"
        )

    def outbox(self, kind: str) -> list[OutboxMessage]:
        with self.store.transaction() as tx:
            return tx.list_outbox(kind=kind)

    def cards_to(self, email: str) -> list[OutboxMessage]:
        return [m for m in self.outbox("send_card") if m.payload["user"]["email"] == email]

    def unroutable_mails(self) -> list[str]:
        return [
            m.payload["text"] for m in self.outbox("send_mail") if "routed" in m.payload["subject"]
        ]

    def audit(self, action: str) -> list[dict[str, object]]:
        with self.store.transaction() as tx:
            return [e.after or {} for e in tx.list_audit() if e.action == action]

    def returns(self) -> dict[str, ReturnStatus]:
        with self.store.transaction() as tx:
            return {r.indicator_key: r.status for r in tx.list_returns()}


@pytest.fixture
def council(tmp_path: Path) -> Council:
    return Council(tmp_path)


def test_an_owner_who_joins_the_directory_is_asked(council: Council) -> None:
    council.open(*ROWS, EVES)
    assert council.cards_to("eve.hart@contoso.gov.uk") == []
    before = {m.payload["user"]["email"] for m in council.outbox("send_card")}

    council.join(EVE)
    done = council.resync(*ROWS, EVES)

    assert done.added == ("CP004",) and done.owners == 1 and done.round == 1
    assert done.unroutable == () and not done.reported
    assert council.returns()["CP004"] is ReturnStatus.AWAITING
    (card,) = council.cards_to("eve.hart@contoso.gov.uk")
    assert "Missed bin collections" in card_text(card.payload["card"])
    assert not card.payload["subject"].startswith("Reminder")  # asked for the first time
    # nobody already asked hears again
    assert {m.payload["user"]["email"] for m in council.outbox("send_card")} == before | {
        "eve.hart@contoso.gov.uk"
    }
    (audit,) = council.audit("cycle.resynced")
    assert audit == {"round": 1, "added": ["CP004"], "routed": [], "owners": 1, "unroutable": []}


def test_a_second_resync_of_the_same_register_changes_nothing(council: Council) -> None:
    council.open(*ROWS, EVES)
    council.join(EVE)
    council.resync(*ROWS, EVES)
    sent = len(council.outbox("send_card")) + len(council.outbox("send_mail"))

    again = council.resync(*ROWS, EVES)

    assert again.added == () and again.round is None and not again.reported
    assert len(council.outbox("send_card")) + len(council.outbox("send_mail")) == sent
    assert len(council.audit("cycle.resynced")) == 1


def test_a_bad_id_fixed_in_the_register_is_picked_up(council: Council) -> None:
    bad = owned_by("CP 004", "Missed bin collections", "dan.fox@contoso.gov.uk")
    council.open(*ROWS, bad)
    (mail,) = council.unroutable_mails()
    assert "CP 004 Missed bin collections: indicator id 'CP 004' contains a space" in mail
    assert "m365perf cycle resync monthly-corporate-kpis --period 2026-10" in mail
    assert "each weekday at 09:00" in mail

    fixed = owned_by("CP004", "Missed bin collections", "dan.fox@contoso.gov.uk")
    done = council.resync(*ROWS, fixed)

    assert done.added == ("CP004",)
    dans = council.cards_to("dan.fox@contoso.gov.uk")
    assert [m.payload["card_id"].rsplit("-", 1)[1] for m in dans] == ["open", "resync1"]


def test_still_unroutable_rows_are_mailed_only_when_the_list_changes(council: Council) -> None:
    council.open(*ROWS, EVES, FAYS)
    assert len(council.unroutable_mails()) == 1  # at opening: CP004 and CP005

    unchanged = council.resync(*ROWS, EVES, FAYS)
    assert [u.indicator_id for u in unchanged.unroutable] == ["CP004", "CP005"]
    assert not unchanged.reported and len(council.unroutable_mails()) == 1
    assert council.audit("cycle.resynced") == []

    council.join(EVE)
    first = council.resync(*ROWS, EVES, FAYS)
    assert first.added == ("CP004",) and first.reported
    latest = council.unroutable_mails()[-1]
    assert latest.startswith("1 indicator(s)") and "CP005 Potholes repaired" in latest
    assert "CP004" not in latest

    council.join(FAY)
    second = council.resync(*ROWS, EVES, FAYS)
    assert second.added == ("CP005",) and second.round == 2
    assert second.unroutable == () and not second.reported  # nothing left to tell
    assert len(council.unroutable_mails()) == 2
    fays = council.cards_to("fay.moss@contoso.gov.uk")
    assert [m.payload["card_id"].rsplit("-", 1)[1] for m in fays] == ["resync2"]


def test_a_row_already_asked_for_is_not_reported_again(council: Council) -> None:
    council.open(*ROWS)
    broken = list(ROWS[0])
    broken[2] = "furlongs"  # CP001's unit garbled after its owner was asked
    done = council.resync(broken, *ROWS[1:])
    assert done.unroutable == () and council.unroutable_mails() == []
    assert council.returns()["CP001"] is ReturnStatus.AWAITING


def test_resync_of_a_cycle_never_opened_is_refused(council: Council) -> None:
    indicators, problems = council.register(*ROWS)
    with pytest.raises(UnknownCycle, match="has no cycle for 2026-11"):
        council.engine.resync_cycle(
            FLOW.id, Period.parse("2026-11"), indicators, problems, now=council.now, actor="cli"
        )
    with council.store.transaction() as tx:  # nothing was snapshotted
        assert tx.find_indicator(FLOW.id, "CP001") is None


def test_resync_of_a_closed_cycle_is_refused(council: Council) -> None:
    cycle_id = council.open(*ROWS, EVES)
    council.engine.close_cycle(
        cycle_id, by="nadia.clarke@contoso.gov.uk", reason="year end", now=council.now
    )
    council.join(EVE)
    with pytest.raises(CycleClosed, match="2026-10 was closed"):
        council.resync(*ROWS, EVES)
    assert "CP004" not in council.returns()


def test_a_register_read_with_no_indicators_is_refused(council: Council) -> None:
    council.open(*ROWS)
    garbled = owned_by("", "", "")
    with pytest.raises(EmptyCycle, match="the register was not re-read") as caught:
        council.resync(garbled)
    assert [p.reason for p in caught.value.problems] == ["no indicator id in column 'IndicatorId'"]
    with council.store.transaction() as tx:  # a bad read retires nothing
        assert all(tx.find_indicator(FLOW.id, k) for k in ("CP001", "CP002", "CP003"))


# --- opening a cycle nobody would be asked in ----------------------------------------


def test_opening_with_nobody_to_ask_is_refused_and_leaves_nothing(council: Council) -> None:
    with pytest.raises(EmptyCycle) as caught:
        council.open(EVES, FAYS)
    assert [(p.indicator_id, p.reason) for p in caught.value.problems] == [
        ("CP004", "owner 'eve.hart@contoso.gov.uk' is not in the directory"),
        ("CP005", "owner 'fay.moss@contoso.gov.uk' is not in the directory"),
    ]
    assert "none of the 2 due register row(s) can be sent to an owner" in caught.value.message
    with council.store.transaction() as tx:
        assert tx.list_cycles() == [] and tx.find_indicator(FLOW.id, "CP001") is None
        assert tx.list_outbox() == [] and tx.list_audit() == []


def test_a_filter_that_matches_nothing_says_so(council: Council) -> None:
    quarterly = [list(r) for r in ROWS]
    for r in quarterly:
        r[4] = "Quarterly"
    with pytest.raises(EmptyCycle, match="no register row is due"):
        council.open(*quarterly)


def test_an_empty_cycle_opened_on_purpose_is_filled_by_resync(council: Council) -> None:
    council.open(EVES, allow_empty=True)
    assert council.returns() == {}
    council.join(EVE)
    assert council.resync(EVES).added == ("CP004",)
    assert len(council.cards_to("eve.hart@contoso.gov.uk")) == 1


def test_an_owner_first_asked_just_before_the_due_date_is_not_escalated(
    council: Council,
) -> None:
    council.open(*ROWS, EVES)
    council.join(EVE)
    council.now = START.replace(day=9)  # the resync runs on Tuesday 10th; due Wednesday 11th
    council.resync(*ROWS, EVES)
    while council.now < START.replace(day=17, hour=12):  # the escalation: Tuesday 17th
        council.now += timedelta(hours=2)
        council.engine.fire_due_timers(worker="test", now=council.now)

    overdue = [m.payload["subject"] for m in council.outbox("send_mail")]
    assert any(s.startswith("Overdue: Ann Lee's") for s in overdue)
    assert not any("Eve Hart" in s for s in overdue)
    (withheld,) = council.audit("owner.not_escalated")
    assert withheld["awaiting"] == ["CP004"]
    assert withheld["why"] == "first asked too near the due date: it was never their deadline"
