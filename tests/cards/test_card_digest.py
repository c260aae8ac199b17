"""An approver's digest card: grouped by service, one set of buttons per item, split in parts."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from card_support import texts as text_lines
from card_support import walk

from m365perf.cards import card_size, validate_card
from m365perf.cards.digest import (
    APPROVE_ALL_VERB,
    APPROVE_VERB,
    REFRESH_VERB,
    REJECT_VERB,
    DigestItem,
    DigestService,
    DigestView,
    digest_summary,
    reason_input_id,
    render_digest,
)
from m365perf.cards.views import OpenAction
from m365perf.domain.kinds import Polarity, Rag, Unit


def item(n: int, *, flags: tuple[str, ...] = (), commentary: str = "Checked.") -> DigestItem:
    return DigestItem(
        return_id=n,
        version=2,
        step_index=0,
        step_count=3,
        step_name="Supervisor check",
        indicator_key=f"CP{n:03d}",
        indicator_name=f"Indicator {n}",
        owner_name="Sam Patel",
        service="",
        unit=Unit.PERCENTAGE,
        value=87.5,
        polarity=Polarity.HIGHER_IS_BETTER,
        target=90,
        rag=Rag.AMBER,
        variation="common cause",
        direction="worsening",
        flags=flags,
        commentary=commentary,
    )


def view(services: dict[str, list[DigestItem]], notes: tuple[str, ...] = ()) -> DigestView:
    return DigestView(
        cycle_id=4,
        approver_id="bob",
        approver_name="Bob Ray",
        flow_name="Monthly corporate KPIs",
        period_label="October 2026",
        services=tuple(DigestService(name, tuple(items)) for name, items in services.items()),
        notes=notes,
    )


def actions(card: dict[str, Any], verb: str) -> list[dict[str, Any]]:
    return [n for n in walk(card) if n.get("type") == "Action.Execute" and n.get("verb") == verb]


def texts(card: dict[str, Any]) -> str:
    return "\n".join(text_lines(card))


def ids(part: int) -> str:
    return f"digest-4-bob-p{part}"


def test_each_item_shows_its_figure_flags_and_commentary_under_its_service() -> None:
    shown = texts(
        render_digest(
            view(
                {
                    "Adults": [item(1, commentary="Winter pressures.")],
                    "Streetpride": [item(2, flags=("late return",))],
                },
                notes=("Indicator 3: Already approved by Ben Foster.",),
            ),
            ids,
            max_bytes=28_000,
        )[0]
    )
    assert shown.index("Adults") < shown.index("Indicator 1") < shown.index("Streetpride")
    assert shown.index("Streetpride") < shown.index("Indicator 2")
    assert "87.5%  Amber  · 90% or higher" in shown
    assert "Worsening on the previous period · Variation: common cause" in shown
    assert "Flags: late return" in shown
    assert "Winter pressures." in shown
    assert "Indicator 3: Already approved by Ben Foster." in shown
    assert "For Bob Ray: 2 items waiting, 1 flagged" in shown


def test_approve_all_names_only_the_unflagged_items_and_each_item_has_its_buttons() -> None:
    card = render_digest(
        view({"Adults": [item(1), item(2, flags=("probable missing data",)), item(3)]}),
        ids,
        max_bytes=28_000,
    )[0]
    validate_card(card)
    (every,) = actions(card, APPROVE_ALL_VERB)
    assert every["title"] == "Approve all 2 without flags"
    assert [i["return_id"] for i in every["data"]["items"]] == [1, 3]
    assert every["associatedInputs"] == "none"
    assert sorted(a["data"]["return_id"] for a in actions(card, APPROVE_VERB)) == [1, 2, 3]
    rejects = actions(card, REJECT_VERB)
    assert {a["data"]["card_id"] for a in rejects} == {"digest-4-bob-p1"}
    assert {n["id"] for n in walk(card) if n.get("type") == "Input.Text"} == {
        reason_input_id(1),
        reason_input_id(2),
        reason_input_id(3),
    }


def test_the_digest_is_drawn_again_whenever_it_is_opened() -> None:
    card = render_digest(view({"Adults": [item(1)]}), ids, max_bytes=28_000)[0]
    validate_card(card)
    refresh = card["refresh"]
    assert "userIds" not in refresh, "a 1:1 chat refreshes for its member without a list"
    assert refresh["action"]["verb"] == REFRESH_VERB
    assert refresh["action"]["data"] == {"cycle_id": 4, "card_id": "digest-4-bob-p1"}


def test_nothing_waiting_says_so_and_offers_no_approve_all() -> None:
    card = render_digest(view({}), ids, max_bytes=28_000)[0]
    validate_card(card)
    assert "Nothing is waiting for you: you are up to date." in texts(card)
    assert actions(card, APPROVE_ALL_VERB) == []


def test_a_long_digest_is_split_into_valid_parts_each_under_the_limit() -> None:
    long = "Ünïcode commentary — " * 30
    services = {
        f"Service {s}": [item(s * 100 + n, commentary=long) for n in range(12)] for s in range(5)
    }
    cards = render_digest(view(services), ids, max_bytes=20_000)
    assert len(cards) > 2
    seen: list[int] = []
    for number, card in enumerate(cards, 1):
        validate_card(card)
        assert card_size(card) <= 20_000
        assert f"(part {number} of {len(cards)})" in texts(card)
        on_part = [a["data"]["return_id"] for a in actions(card, APPROVE_VERB)]
        (every,) = actions(card, APPROVE_ALL_VERB)
        assert [i["return_id"] for i in every["data"]["items"]] == on_part
        assert {a["data"]["card_id"] for a in actions(card, APPROVE_VERB)} == {ids(number)}
        seen += on_part
    assert seen == [i.return_id for s in view(services).services for i in s.items]


def test_the_email_body_lists_everything_by_service() -> None:
    text = digest_summary(view({"Adults": [item(1, flags=("late return",))]}))
    assert "1 item waits for your approval" in text
    assert "- Indicator 1: 87.5% (Amber) [late return]" in text


def _action(n: int, *, overdue: bool = False, what: str = "Two extra rounds a week.") -> OpenAction:
    return OpenAction(
        action_id=n,
        version=1,
        raised_for="Indicator 1, 2026-09: red",
        what=what,
        who_name="Dan Fox",
        due=date(2026, 11, 30),
        status="in_progress",
        overdue=overdue,
    )


def test_an_items_actions_show_what_who_by_when_status_and_overdue() -> None:
    with_actions = replace(item(1), actions=(_action(7, overdue=True), _action(8)))
    (card,) = render_digest(view({"Adults": [with_actions, item(2)]}), ids, max_bytes=28_000)

    validate_card(card)
    lines = text_lines(card)
    assert (
        lines.count(
            "Action: Two extra rounds a week. — Dan Fox, by Monday 30 November 2026 · In progress"
            " · Overdue"
        )
        == 1
    )
    assert (
        lines.count(
            "Action: Two extra rounds a week. — Dan Fox, by Monday 30 November 2026 · In progress"
        )
        == 1
    )
    overdue = [n for n in walk(card) if n.get("text") == " · Overdue"]
    assert [n["color"] for n in overdue] == ["attention"]


def test_many_long_actions_keep_every_part_valid_and_under_the_limit() -> None:
    long = "Rework the rota. " * 58  # nearly the 1,000 characters a card takes
    heavy = [
        replace(item(n), actions=tuple(_action(n * 10 + k, what=long) for k in range(5)))
        for n in range(1, 41)
    ]
    cards = render_digest(view({"Adults": heavy}), ids, max_bytes=20_000)

    assert len(cards) > 1
    for card in cards:
        validate_card(card)
        assert card_size(card) <= 20_000
    shown = texts(cards[0])
    assert "and 2 more improvement actions" in shown
    assert long.strip() not in shown  # each "what" is cut short on the digest
