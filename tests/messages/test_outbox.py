"""The outbox models: rows as stored read back, bad rows are refused saying what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from m365perf.messages import (
    ApprovalCardId,
    AuditAction,
    CardUser,
    CheckRefresh,
    MessageError,
    OutboxKind,
    Refresh,
    RejectionCardId,
    RequestCardId,
    SendCard,
    SubjectType,
    TimerKind,
    UnknownKind,
    UpdateCard,
    parse_message,
)
from m365perf.messages.doc import generated_part, render, replace_generated
from m365perf.messages.outbox import MESSAGE_TYPES

ROOT = Path(__file__).resolve().parents[2]
GUID = "5f1b2c3d-0000-4000-8000-000000000abc"
CARD = {"type": "AdaptiveCard", "version": "1.5", "body": []}
MAILBOX = "Performance@Contoso.gov.uk"

# Payloads exactly as the engine stored them before the models existed.
STORED: list[tuple[str, dict[str, Any]]] = [
    (
        "send_card",
        {
            "card_id": f"request-4-{GUID}-open-p2",
            "channel": "teams",
            "user": {"id": GUID, "name": "Ann Lee", "email": "ann.lee@contoso.gov.uk"},
            "card": CARD,
            "subject": "Monthly KPIs 2026-10: returns due 11 November 2026",
            "summary": "Please send your figures.",
            "link": "https://perf.contoso.gov.uk/approvals/4",
            "return_form": {"cycle_id": 4, "owner_id": GUID},
            "subject_type": "cycle",
            "subject_id": 4,
            "fallback_email": True,
        },
    ),
    ("update_card", {"card_id": f"approval-9-v2-s1-{GUID}", "card": CARD}),
    (
        "send_mail",
        {
            "to": ["perf@contoso.gov.uk"],
            "cc": [],
            "subject": "Daily digest",
            "html": "<html><body><p>returned 1 of 3</p></body></html>",
            "text": "returned 1 of 3\n",
        },
    ),
    (
        "write_back",
        {
            "site": "contoso.sharepoint.com:/sites/performance",
            "list": "KPI Results",
            "key_fields": ["IndicatorId", "Period"],
            "fields": {"IndicatorId": "CP001", "Period": "2026-10", "Value": 46.5, "Version": 3},
            "return_id": 9,
            "cycle_id": 4,
        },
    ),
    (
        "write_action",
        {
            "site": "contoso.sharepoint.com:/sites/performance",
            "list": "KPI Actions",
            "key_fields": ["ActionId"],
            "fields": {"ActionId": "7", "Status": "in_progress", "Version": 2},
            "cycle_id": 4,
            "action_id": 7,
        },
    ),
    ("refresh", {"workspace": "ws-1", "dataset": "ds-1", "flow_id": "monthly-corporate-kpis"}),
    (
        "check_refresh",
        {
            "workspace": "ws-1",
            "dataset": "ds-1",
            "flow_id": "monthly-corporate-kpis",
            "request_id": "req-9",
            "poll": 3,
        },
    ),
]


@pytest.mark.parametrize(("kind", "payload"), STORED, ids=[k for k, _ in STORED])
def test_rows_as_stored_read_back_and_are_stored_again_unchanged(
    kind: str, payload: dict[str, Any]
) -> None:
    message = parse_message(kind, payload)
    assert message.kind == kind
    assert message.payload() == payload
    assert parse_message(kind, message.payload()) == message


def test_each_kind_names_its_budget() -> None:
    messages = {kind: parse_message(kind, payload) for kind, payload in STORED}
    email_card = messages["send_card"].model_copy(update={"channel": "email"})
    assert messages["send_card"].budget(MAILBOX) == "bot"
    assert email_card.budget(MAILBOX) == "mailbox:performance@contoso.gov.uk"
    assert messages["update_card"].budget(MAILBOX) == "bot"
    assert messages["send_mail"].budget(MAILBOX) == "mailbox:performance@contoso.gov.uk"
    assert messages["write_back"].budget(MAILBOX) == "sharepoint"
    assert messages["write_action"].budget(MAILBOX) == "sharepoint"
    assert messages["refresh"].budget(MAILBOX) == "powerbi:ds-1"
    assert messages["check_refresh"].budget(MAILBOX) == "powerbi:ds-1"


def test_card_ids_come_back_typed() -> None:
    card = parse_message(*STORED[0])
    update = parse_message(*STORED[1])
    assert isinstance(card, SendCard) and isinstance(update, UpdateCard)
    assert card.card_id == RequestCardId(4, GUID, "open", part=2)
    assert update.card_id == ApprovalCardId(9, 2, 1, GUID)
    assert card.subject_type is SubjectType.CYCLE


def test_models_built_by_the_engine_store_their_card_id_as_text() -> None:
    message = SendCard(
        card_id=RejectionCardId(9, 3),
        channel="email",
        user=CardUser(id=GUID, name="Ann Lee", email="ann.lee@contoso.gov.uk"),
        card=CARD,
        subject="Returned to you",
        subject_type=SubjectType.RETURN,
        subject_id=9,
    )
    payload = message.payload()
    assert payload["card_id"] == "rejection-9-v3"
    assert payload["subject_type"] == "return"
    assert "kind" not in payload


def _bad(kind: str, payload: dict[str, Any]) -> str:
    with pytest.raises(MessageError) as caught:
        parse_message(kind, payload)
    assert caught.value.kind == kind
    return str(caught.value)


def test_a_row_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(UnknownKind, match="unknown outbox kind 'send_fax'"):
        parse_message("send_fax", {"to": "01234"})


@pytest.mark.parametrize(
    ("kind", "change", "problem"),
    [
        ("send_card", {"card_id": "card-7"}, "card_id: 'card-7' is not a card id"),
        ("send_card", {"channel": "pigeon"}, "channel: Input should be 'teams' or 'email'"),
        ("send_card", {"card": {"type": "Poster"}}, "card: not an Adaptive Card"),
        ("send_card", {"user": {"id": GUID, "name": "A"}}, "user.email: missing"),
        ("send_card", {"subject_type": "planet"}, "subject_type: Input should be 'cycle'"),
        ("send_card", {"channel": "email", "subject": ""}, "an e-mailed card needs a subject"),
        ("send_card", {"colour": "red"}, "colour: not a field of this kind"),
        ("update_card", {"card_id": "approval-9-v2"}, "is not an approval card id"),
        ("send_mail", {"to": []}, "to: List should have at least 1 item"),
        ("send_mail", {"html": "", "text": ""}, "an e-mail needs 'html' or 'text'"),
        ("write_back", {"site": "contoso"}, "site: 'contoso' is not a site written 'host:/"),
        ("write_back", {"key_fields": ["Indicator Id"]}, "'Indicator Id' is not a column name"),
        ("write_back", {"fields": {"IndicatorId": "CP001"}}, "lacks the key field(s) Period"),
        ("refresh", {"dataset": ""}, "dataset: String should have at least 1 character"),
        ("check_refresh", {"poll": 0}, "poll: Input should be greater than or equal to 1"),
    ],
)
def test_a_bad_row_is_refused_saying_where_and_what(
    kind: str, change: dict[str, Any], problem: str
) -> None:
    payload = {**dict(STORED)[kind], **change}
    message = _bad(kind, payload)
    assert message.startswith(f"bad {kind} row: ")
    assert problem in message


def test_every_problem_of_a_row_is_named_at_once() -> None:
    payload = {**dict(STORED)["send_card"], "card": {}, "channel": "fax"}
    del payload["subject_id"]
    message = _bad("send_card", payload)
    assert "channel:" in message and "card:" in message and "subject_id: missing" in message


def test_a_check_is_built_from_a_refresh_poll_timers_payload() -> None:
    check = CheckRefresh.model_validate(dict(STORED)["check_refresh"])
    assert check.poll == 3 and check.request_id == "req-9"
    assert isinstance(parse_message("refresh", dict(STORED)["refresh"]), Refresh)


def test_every_kind_has_a_model_and_every_model_a_kind() -> None:
    assert set(MESSAGE_TYPES) == set(OutboxKind)
    for kind, model in MESSAGE_TYPES.items():
        assert model.model_fields["kind"].default == kind


# --- names ------------------------------------------------------------------------------


def test_names_are_the_strings_the_store_already_holds() -> None:
    assert TimerKind("step_timeout") is TimerKind.STEP_TIMEOUT
    assert [t.value for t in TimerKind] == [
        "reminder",
        "escalate",
        "digest",
        "step_timeout",
        "refresh",
        "refresh_poll",
        "close",
        "chase_return",
        "escalate_return",
        "chase_action",
        "digest_card",
    ]
    assert AuditAction.RETURN_WRITTEN_BACK == "return.written_back"
    assert SubjectType.DATASET == "dataset"
    assert f"{AuditAction.CYCLE_CLOSED}" == "cycle.closed"


def test_a_step_action_is_named_from_the_steps_new_status() -> None:
    assert AuditAction.for_step("asked") is AuditAction.STEP_ASKED
    assert AuditAction.for_step("skipped") is AuditAction.STEP_SKIPPED
    with pytest.raises(ValueError):
        AuditAction.for_step("pending")


def test_an_unknown_timer_kind_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'remind' is not a valid TimerKind"):
        TimerKind("remind")


# --- docs/outbox.md ---------------------------------------------------------------------


def test_docs_outbox_md_is_generated_from_the_models() -> None:
    text = (ROOT / "docs" / "outbox.md").read_text(encoding="utf-8")
    assert generated_part(text) == render(), (
        "docs/outbox.md is stale: run `python -m m365perf.messages.doc --write docs/outbox.md`"
    )


def test_the_generated_tables_list_every_kind_and_field() -> None:
    table = render()
    for kind, model in MESSAGE_TYPES.items():
        assert f"### {kind}\n" in table
        fields = {f.alias or name for name, f in model.model_fields.items()} - {"kind"}
        fields |= set(model.OUTCOME.model_fields)
        for name in fields:
            assert f"| `{name}` |" in table, f"{kind}: {name} is not in the table"
    assert "`list`" in table and "`list_title`" not in table  # stored under its alias


def test_rewriting_the_doc_keeps_its_prose(tmp_path: Path) -> None:
    stale = f"# Outbox\n\nWhy.\n\n{render().replace('send_card', 'send_fax')}\nMore prose.\n"
    fresh = replace_generated(stale, render())
    assert generated_part(fresh) == render()
    assert fresh.startswith("# Outbox\n\nWhy.\n\n") and fresh.endswith("\nMore prose.\n")
    with pytest.raises(ValueError, match="no generated part"):
        replace_generated("# Outbox\n", render())
