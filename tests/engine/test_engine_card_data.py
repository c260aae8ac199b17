"""Forged or odd card data: refused as malformed, or answered on the card; never a crash.

A click's data comes from the client. Whole numbers the store cannot hold, text longer
than the card's inputs take, characters no client sends, objects where text belongs and
card ids that are not the clicked card's change nothing: the engine refuses the data as
malformed (``BadAction``, which the bot endpoint answers as an error on the card) or
draws the card again saying what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from engine_support import (
    ANN,
    BOB,
    DAN,
    NADIA,
    Council,
    approval_data,
    card_text,
    make_council,
    submit_data,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m365perf.cards import COMMENT_MAX_LENGTH, REASON_MAX_LENGTH, VALUE_MAX_LENGTH, card_size
from m365perf.engine import ActionError, BadAction, Caller, UnknownSubject
from m365perf.engine.carddata import MAX_WHOLE
from m365perf.store import StepStatus, create_store
from m365perf.store.testing import memory_store

ANN_EMAIL = "ann.lee@contoso.gov.uk"
BOB_EMAIL = "bob.ray@contoso.gov.uk"
ANN_SHOWN = f"request-1-{ANN.user_id}-shown"
NADIA_STEP_2 = f"approval-1-v2-s2-{NADIA.user_id}"

ODD_NUMBERS: list[Any] = [
    str(10**19),
    10**19,
    MAX_WHOLE + 1,
    "-1",
    -1,
    "1.0",
    1.5,
    True,
    "+1",
    " 1",
    "\u0661",  # an Arabic-Indic one: a digit to Python, not to any card of ours
    "1_0",
    "9" * 5000,
    None,
    [1],
    {"n": 1},
]


@pytest.fixture
def council() -> Council:
    """The October cycle with CP001 returned red and waiting for Bob (the first step)."""
    council = make_council()
    _submit_red(council)
    return council


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def on_either_store(request: pytest.FixtureRequest) -> Iterator[Council]:
    """The same on SQLite and on PostgreSQL, which is stricter about what it stores."""
    store = (
        create_store(request.getfixturevalue("postgres_schema_url"), migrate=True)
        if request.param == "postgres"
        else memory_store()
    )
    council = make_council(store)
    _submit_red(council)
    yield council
    store.close()


def _submit_red(council: Council) -> None:
    card = council.cards_to(ANN_EMAIL)[0]["card"]
    council.act(
        ANN,
        "submitReturns",
        submit_data(card, value__CP001="30", comment__CP001="Contract change."),
    )


def _everything(council: Council) -> tuple[Any, ...]:
    """Every row a click could change."""
    with council.store.transaction() as tx:
        returns = tx.list_returns()
        steps = [tx.list_steps(r.id or 0) for r in returns]
        return returns, steps, tx.list_cycles(), tx.list_outbox(), tx.list_audit()


def _bob_data(council: Council, verb: str = "approve", **inputs: Any) -> dict[str, Any]:
    return {**approval_data(council.cards_to(BOB_EMAIL)[-1]["card"], verb), **inputs}


def _ann_data(council: Council, **inputs: Any) -> dict[str, Any]:
    return {**submit_data(council.cards_to(ANN_EMAIL)[0]["card"]), **inputs}


def _show_data(**fields: Any) -> dict[str, Any]:
    return {"cycle_id": "1", "owner_id": ANN.user_id, **fields}


def _card_id_on(card: dict[str, Any]) -> str:
    """The card id the reply card sends back with its next click."""
    datas = [a["data"] for a in card.get("actions", []) if isinstance(a.get("data"), dict)]
    (card_id,) = {d["card_id"] for d in datas}
    return str(card_id)


def _inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The card's inputs by id."""
    found: dict[str, dict[str, Any]] = {}
    pending: list[Any] = [card]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Input."):
                found[str(node["id"])] = node
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def _step_status(council: Council, index: int) -> StepStatus:
    with council.store.transaction() as tx:
        ret = next(r for r in tx.list_returns() if r.indicator_key == "CP001")
        return tx.list_steps(ret.id or 0)[index].status


def _one_line(card: dict[str, Any]) -> str:
    return " ".join(card_text(card).split())


# --------------------------------------------------------------------------- approvals


@pytest.mark.parametrize("name", ["return_id", "version", "step_index"])
def test_an_approval_whole_number_out_of_range_or_odd_is_malformed(
    on_either_store: Council, name: str
) -> None:
    council = on_either_store
    before = _everything(council)
    for value in ODD_NUMBERS:
        with pytest.raises(BadAction, match=name):
            council.act(BOB, "approve", _bob_data(council, **{name: value}))
    assert _everything(council) == before


def test_the_largest_id_the_store_holds_is_looked_up_and_not_found(
    on_either_store: Council,
) -> None:
    council = on_either_store
    before = _everything(council)
    with pytest.raises(UnknownSubject, match=str(MAX_WHOLE)):
        council.act(BOB, "approve", _bob_data(council, return_id=str(MAX_WHOLE)))
    assert _everything(council) == before


def test_a_reason_longer_than_the_card_takes_is_refused_on_the_card(council: Council) -> None:
    before = _everything(council)
    reply = council.act(BOB, "reject", _bob_data(council, "reject", reason="x" * 30_000))

    text = _one_line(reply)
    assert "The reason is 30,000 characters long" in text
    assert f"at most {REASON_MAX_LENGTH:,}" in text and "Nothing changed" in text
    assert card_size(reply) <= council.engine.ctx.config.max_card_bytes
    assert _everything(council) == before


def test_a_reason_as_long_as_the_card_takes_rejects(council: Council) -> None:
    council.act(BOB, "reject", _bob_data(council, "reject", reason="y" * REASON_MAX_LENGTH))
    assert _step_status(council, 0) is StepStatus.REJECTED


def test_a_reason_that_is_not_text_is_malformed(council: Council) -> None:
    before = _everything(council)
    for reason in ({"text": "wrong"}, ["wrong"], 7):
        with pytest.raises(BadAction, match="'reason' must be text"):
            council.act(BOB, "reject", _bob_data(council, "reject", reason=reason))
    assert _everything(council) == before


def test_an_out_of_turn_click_with_a_forged_card_id_gets_the_engines_own(
    council: Council,
) -> None:
    before = _everything(council)
    reply = council.act(NADIA, "approve", _bob_data(council, step_index=2, card_id="x" * 40_000))

    assert "not for you yet" in _one_line(reply)
    assert _card_id_on(reply) == NADIA_STEP_2
    assert card_size(reply) <= council.engine.ctx.config.max_card_bytes
    assert _everything(council) == before


def test_only_the_clicked_approval_cards_own_id_is_echoed(council: Council) -> None:
    for sent, echoed in [
        (f"{NADIA_STEP_2}-mail", f"{NADIA_STEP_2}-mail"),  # its e-mail copy
        (NADIA_STEP_2, NADIA_STEP_2),
        (f"approval-1-v2-s0-{BOB.user_id}", NADIA_STEP_2),  # Bob's card, not Nadia's
        (f"approval-2-v2-s2-{NADIA.user_id}", NADIA_STEP_2),  # another return
        (f"approval-1-v1-s2-{NADIA.user_id}", NADIA_STEP_2),  # an older version
        (f"approval-1-v2-s1-{NADIA.user_id}", NADIA_STEP_2),  # another step
        ("rejection-1-v2", NADIA_STEP_2),
        ("approval-1-v2-s2", NADIA_STEP_2),
        ({"id": NADIA_STEP_2}, NADIA_STEP_2),
        (7, NADIA_STEP_2),
    ]:
        reply = council.act(NADIA, "approve", _bob_data(council, step_index=2, card_id=sent))
        assert _card_id_on(reply) == echoed, sent


@pytest.mark.parametrize("odd", ["\x00", "\ud800"], ids=["NUL", "lone surrogate"])
def test_characters_no_client_sends_are_malformed(on_either_store: Council, odd: str) -> None:
    council = on_either_store
    before = _everything(council)
    for field in ("reason", "card_id", "return_id"):
        with pytest.raises(BadAction, match="character no card sends"):
            council.act(BOB, "reject", _bob_data(council, "reject", **{field: f"Wrong{odd}"}))
    data = _ann_data(council, value__CP002="19", comment__CP002="Fine.")
    for field in ("comment__CP002", "value__CP002", "owner_id", "card_id"):
        with pytest.raises(BadAction, match="character no card sends"):
            council.act(ANN, "submitReturns", {**data, field: f"{data[field]}{odd}"})
    with pytest.raises(BadAction, match="character no card sends"):
        council.act(ANN, "submitReturns", {**data, "versions": {f"CP002{odd}": 1}})
    with pytest.raises(BadAction, match="character no card sends"):
        council.act(ANN, "showRequest", _show_data(card_id=f"request-1{odd}"))
    assert _everything(council) == before


def test_a_huge_reason_on_an_approve_is_not_kept(council: Council) -> None:
    """Approve takes no reason: one forged onto the click is not read, so not audited."""
    council.act(BOB, "approve", _bob_data(council, reason="z" * 50_000))
    assert _step_status(council, 0) is StepStatus.APPROVED
    with council.store.transaction() as tx:
        assert all("z" * 100 not in json.dumps(e.after) for e in tx.list_audit())


# --------------------------------------------------------------------------- submit


def test_a_submit_cycle_id_or_version_out_of_range_or_odd_is_malformed(council: Council) -> None:
    before = _everything(council)
    for value in ODD_NUMBERS:
        with pytest.raises(BadAction, match="cycle_id"):
            council.act(ANN, "submitReturns", _ann_data(council, cycle_id=value))
    data = _ann_data(council, value__CP002="19")
    for version in [0, -1, MAX_WHOLE + 1, 10**19, True, 2.0, "1", None]:
        versions = {**data["versions"], "CP002": version}
        with pytest.raises(BadAction, match="version of 'CP002'"):
            council.act(ANN, "submitReturns", {**data, "versions": versions})
    assert _everything(council) == before


@pytest.mark.parametrize(
    ("field", "label", "limit"),
    [
        ("value__CP002", "The value", VALUE_MAX_LENGTH),
        ("comment__CP002", "The commentary", COMMENT_MAX_LENGTH),
        ("nodatareason__CP002", "The reason for no data", REASON_MAX_LENGTH),
    ],
)
def test_typing_longer_than_the_card_takes_is_shown_on_the_card(
    council: Council, field: str, label: str, limit: int
) -> None:
    before = _everything(council)
    typed = {"value__CP002": "19", field: "7" * (limit + 1)}
    reply = council.act(ANN, "submitReturns", _ann_data(council, **typed))

    text = _one_line(reply)
    assert f"{label} is {limit + 1:,} characters long, and can be at most {limit:,}" in text
    assert _inputs(reply)[field]["value"] == "7" * limit  # what fits, for the owner to shorten
    assert card_size(reply) <= council.engine.ctx.config.max_card_bytes
    assert _everything(council) == before


def test_every_input_typed_too_long_is_named(council: Council) -> None:
    typed = {"value__CP002": "9" * 5000, "comment__CP002": "c" * 60_000}
    text = _one_line(council.act(ANN, "submitReturns", _ann_data(council, **typed)))
    assert "The value is 5,000 characters long" in text
    assert "The commentary is 60,000 characters long" in text


def test_a_submit_card_id_is_echoed_only_when_it_is_this_owners(council: Council) -> None:
    mine = [f"request-1-{ANN.user_id}-open", f"request-1-{ANN.user_id}-reminder2-p2-mail"]
    others = [
        "x" * 40_000,
        f"request-2-{ANN.user_id}-open",  # another cycle
        f"request-1-{DAN.user_id}-open",  # another owner
        "rejection-3-v1",  # Dan's return, not on this card
        f"approval-1-v2-s0-{BOB.user_id}",
    ]
    for sent, echoed in [*((m, m) for m in mine), *((o, ANN_SHOWN) for o in others)]:
        reply = council.act(
            ANN, "submitReturns", _ann_data(council, card_id=sent, value__CP002="x")
        )
        assert "is not a number" in _one_line(reply)
        assert _card_id_on(reply) == echoed, sent[:80]


def test_the_card_id_of_a_rejection_card_is_kept_on_its_reply(council: Council) -> None:
    council.act(BOB, "reject", _bob_data(council, "reject", reason="That is September's."))
    rejection = council.cards_to(ANN_EMAIL)[-1]["card"]
    reply = council.act(ANN, "submitReturns", submit_data(rejection, value__CP001="forty"))
    assert _card_id_on(reply) == _card_id_on(rejection) == "rejection-1-v3"


def test_wide_text_as_long_as_the_inputs_take_goes_round_the_chain(council: Council) -> None:
    """4,000 characters of Chinese are 24 kB of card JSON: every card is still sent."""
    wide_comment, wide_reason = "漢" * COMMENT_MAX_LENGTH, "語" * REASON_MAX_LENGTH
    typed = {"nodata__CP002": "true", "nodatareason__CP002": wide_reason}
    council.act(ANN, "submitReturns", _ann_data(council, comment__CP002=wide_comment, **typed))
    limit = council.engine.ctx.config.max_card_bytes
    bob = council.cards_to(BOB_EMAIL)[-1]["card"]
    assert card_size(bob) <= limit and "shortened to fit the card" in _one_line(bob)

    council.act(BOB, "reject", {**approval_data(bob, "reject"), "reason": wide_reason})
    sent_back = council.cards_to(ANN_EMAIL)[-1]["card"]
    assert card_size(sent_back) <= limit
    assert f"Reason: {wide_reason}" in _one_line(sent_back)
    assert wide_comment.startswith(_inputs(sent_back)["comment__CP002"]["value"])


# --------------------------------------------------------------------------- show request


def test_a_show_request_cycle_id_out_of_range_or_odd_is_malformed(council: Council) -> None:
    for value in ODD_NUMBERS:
        with pytest.raises(BadAction, match="cycle_id"):
            council.act(ANN, "showRequest", _show_data(cycle_id=value))


def test_a_show_request_card_id_is_echoed_only_when_it_is_this_owners(council: Council) -> None:
    for sent, echoed in [
        ("x" * 40_000, ANN_SHOWN),
        ({"nested": ["json"]}, ANN_SHOWN),
        (f"request-1-{DAN.user_id}-open", ANN_SHOWN),
        (f"request-1-{ANN.user_id}-open-mail", f"request-1-{ANN.user_id}-open-mail"),
    ]:
        reply = council.act(ANN, "showRequest", _show_data(card_id=sent))
        assert "Days to process new benefit claims" in card_text(reply)
        assert _card_id_on(reply) == echoed


def test_a_show_request_naming_the_owner_in_an_object_is_not_theirs(council: Council) -> None:
    with pytest.raises(ActionError, match="someone else"):
        council.act(ANN, "showRequest", _show_data(owner_id={"id": ANN.user_id}))


# --------------------------------------------------------------------------- fuzzing

_ODD_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=5).map(lambda t: t * 9000),
    st.sampled_from(["\x00", "\ud800", "\udfff x", "0", "-0", "1e309", "NaN", "\u202e", "١٢"]),
)
_ODD_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2, 3, MAX_WHOLE, MAX_WHOLE + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    _ODD_TEXT,
)
_ODD = st.recursive(
    _ODD_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
_FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class _Held:
    """One council kept between examples while clicks leave it as it was."""

    council: Council | None = None

    @classmethod
    def get(cls) -> Council:
        if cls.council is None:
            cls.council = make_council()
            _submit_red(cls.council)
        return cls.council


def _click_changes_nothing_unless_acted_on(caller: Caller, verb: str, data: dict[str, Any]) -> None:
    council = _Held.get()
    before = _everything(council)
    try:
        reply = council.act(caller, verb, data)
    except ActionError:
        assert _everything(council) == before
        return
    # Whatever it says, the reply is a card that fits and can be sent on as UTF-8 JSON.
    assert reply["type"] == "AdaptiveCard"
    assert card_size(reply) <= council.engine.ctx.config.max_card_bytes
    json.dumps(reply, ensure_ascii=False, allow_nan=False).encode("utf-8")
    if _everything(council) != before:
        _Held.council = None  # a click was acted on: start the next example afresh


@_FUZZ
@given(
    who=st.sampled_from([BOB, NADIA, ANN, DAN]),
    verb=st.sampled_from(["approve", "reject"]),
    field=st.sampled_from(["return_id", "version", "step_index", "reason", "card_id", "other"]),
    value=_ODD,
)
def test_fuzzed_approval_data_never_crashes(who: Caller, verb: str, field: str, value: Any) -> None:
    data = _bob_data(_Held.get(), verb, reason="Please check.")
    data[field] = value
    _click_changes_nothing_unless_acted_on(who, verb, data)


@_FUZZ
@given(
    field=st.sampled_from(
        [
            "cycle_id",
            "owner_id",
            "card_id",
            "versions",
            "part",
            "value__CP002",
            "comment__CP002",
            "nodata__CP002",
            "nodatareason__CP002",
            "confirm__CP002",
            "value__CP009",
        ]
    ),
    value=_ODD,
    version=st.none() | _ODD.map(lambda odd: [odd]),
)
def test_fuzzed_submit_data_never_crashes(
    field: str, value: Any, version: list[Any] | None
) -> None:
    data = _ann_data(_Held.get(), value__CP002="19", comment__CP002="Fine.")
    data[field] = value
    if version is not None and field != "versions":  # and maybe CP002's version too
        data["versions"] = {**data["versions"], "CP002": version[0]}
    _click_changes_nothing_unless_acted_on(ANN, "submitReturns", data)


@_FUZZ
@given(field=st.sampled_from(["cycle_id", "owner_id", "card_id"]), value=_ODD)
def test_fuzzed_show_request_data_never_crashes(field: str, value: Any) -> None:
    data = {"cycle_id": "1", "owner_id": ANN.user_id, field: value}
    _click_changes_nothing_unless_acted_on(ANN, "showRequest", data)
