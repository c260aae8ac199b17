"""Card ids and dedup keys: the formats stored rows use, exact parsing, clear refusals."""

from __future__ import annotations

import dataclasses
import string
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, get_args, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m365perf.messages.ids import (
    OUTBOX_KEYS,
    ROUND_OPEN,
    ROUND_SHOWN,
    TIMER_KEYS,
    ApprovalCardId,
    CardId,
    CardIdError,
    CardOutcomeKey,
    CardRoundKey,
    CardSendKey,
    CheckRefreshKey,
    ClosedMailKey,
    CloseKey,
    DedupKey,
    DedupKeyError,
    DeferredRefreshKey,
    DigestCardId,
    DigestKey,
    DigestMailKey,
    EscalateKey,
    EscalationMailKey,
    RefreshFailedMailKey,
    RefreshKey,
    RefreshPollKey,
    RefreshRequestKey,
    RejectionCardId,
    ReminderKey,
    RequestCardId,
    StepTimeoutKey,
    UnroutableMailKey,
    UnroutableReturnMailKey,
    WriteBackKey,
    parse_outbox_key,
    parse_timer_key,
    reminder_round,
)

GUID = "5f1b2c3d-0000-4000-8000-000000000abc"
EXAMPLES = settings(max_examples=200, deadline=None)

# --- strategies -------------------------------------------------------------------------


def _plain(text: str) -> bool:
    return ":" not in text and not any(c.isspace() for c in text)


numbers = st.integers(min_value=0, max_value=10**12)
guids = st.uuids().map(str)
emails = st.emails().filter(_plain)
odd_ids = st.text(min_size=1, max_size=40).filter(_plain)
"""Anything a directory might call a person: dashes, 'p1', 'mail', 'open' included."""
tricky = st.lists(
    st.sampled_from(["p1", "p02", "mail", "open", "reminder2", "v3", "s0", "x", "-", "1"]),
    min_size=1,
    max_size=6,
).map("-".join)
people = st.one_of(guids, emails, odd_ids, tricky)
approvers = people.filter(lambda p: not p.endswith("-mail"))
rounds = st.builds(
    lambda letters, digits: letters + digits,
    st.text(string.ascii_lowercase, min_size=1, max_size=10),
    st.text(string.digits, max_size=3),
).filter(lambda r: r != "mail" and not (r[0] == "p" and r[1:].isdigit() and len(r) > 1))

request_ids = st.builds(
    RequestCardId,
    cycle_id=numbers,
    owner_id=people,
    round=st.one_of(st.sampled_from([ROUND_OPEN, ROUND_SHOWN]), rounds),
    part=st.none() | st.integers(min_value=1, max_value=99),
    by_email=st.booleans(),
)
approval_ids = st.builds(
    ApprovalCardId,
    return_id=numbers,
    version=numbers,
    step_index=numbers,
    approver_id=approvers,
    by_email=st.booleans(),
)
rejection_ids = st.builds(
    RejectionCardId, return_id=numbers, version=numbers, by_email=st.booleans()
)
digest_ids = st.builds(
    DigestCardId,
    cycle_id=numbers,
    approver_id=approvers,
    part=st.integers(min_value=1, max_value=99),
    by_email=st.booleans(),
)
card_ids = st.one_of(request_ids, approval_ids, rejection_ids, digest_ids)

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
aware = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).flatmap(
    lambda d: offsets.map(lambda tz: d.replace(tzinfo=tz))
)


def _strategy(kind: Any) -> st.SearchStrategy[Any]:
    if kind is int:
        return numbers
    if kind is str:
        return odd_ids
    if kind is date:
        return st.dates()
    if kind is datetime:
        return aware
    if kind is CardId:
        return card_ids
    alternatives = get_args(kind) or (kind,)
    return st.one_of(*(_key_strategy(k) for k in alternatives))


def _key_strategy(cls: type[DedupKey]) -> st.SearchStrategy[DedupKey]:
    hints = get_type_hints(cls)
    fields = {f.name: _strategy(hints[f.name]) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return st.builds(cls, **fields)


timer_keys = st.one_of(*(_key_strategy(k) for k in TIMER_KEYS))
outbox_keys = st.one_of(*(_key_strategy(k) for k in OUTBOX_KEYS))


# --- card ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("card_id", "text"),
    [
        (RequestCardId(12, GUID, ROUND_OPEN), f"request-12-{GUID}-open"),
        (RequestCardId(12, GUID, reminder_round(2), part=3), f"request-12-{GUID}-reminder2-p3"),
        (RequestCardId(12, GUID, ROUND_SHOWN), f"request-12-{GUID}-shown"),
        (RequestCardId(12, GUID, ROUND_OPEN).as_email(), f"request-12-{GUID}-open-mail"),
        (ApprovalCardId(7, 2, 1, GUID), f"approval-7-v2-s1-{GUID}"),
        (ApprovalCardId(7, 2, 1, GUID).as_email(), f"approval-7-v2-s1-{GUID}-mail"),
        (RejectionCardId(7, 3), "rejection-7-v3"),
        (RejectionCardId(7, 3).as_email(), "rejection-7-v3-mail"),
        (DigestCardId(4, GUID), f"digest-4-{GUID}-p1"),
        (DigestCardId(4, GUID, 2).as_email(), f"digest-4-{GUID}-p2-mail"),
        (DigestCardId(4, "ann-p3@x.org", 1), "digest-4-ann-p3@x.org-p1"),
    ],
)
def test_card_ids_keep_the_format_stored_rows_use(card_id: CardId, text: str) -> None:
    assert card_id.format() == str(card_id) == text
    assert CardId.parse(text) == card_id
    assert type(card_id).parse(text) == card_id


@EXAMPLES
@given(card_ids)
def test_every_card_id_parses_back_to_itself(card_id: CardId) -> None:
    text = card_id.format()
    assert CardId.parse(text) == card_id
    assert CardId.parse(str(card_id.as_email())) == card_id.as_email()


@EXAMPLES
@given(request_ids)
def test_parts_and_email_copies_of_a_request_name_the_same_request(card_id: RequestCardId) -> None:
    parsed = CardId.parse(card_id.with_part(2).as_email().format())
    assert isinstance(parsed, RequestCardId)
    assert parsed.whole() == card_id.whole().as_email()
    assert (parsed.owner_id, parsed.round, parsed.part) == (card_id.owner_id, card_id.round, 2)


@EXAMPLES
@given(card_ids, st.data())
def test_a_changed_card_id_is_refused_or_read_exactly(card_id: CardId, data: st.DataObject) -> None:
    text = card_id.format()
    at = data.draw(st.integers(min_value=0, max_value=len(text)))
    insert = data.draw(st.sampled_from(["", "-", "0", "p", "1", "-mail", "x", ":", " "]))
    cut = data.draw(st.integers(min_value=0, max_value=2))
    changed = text[:at] + insert + text[at + cut :]
    try:
        parsed = CardId.parse(changed)
    except CardIdError:
        return
    assert parsed.format() == changed


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "is not a card id: it starts with none of"),
        ("card-approval-9", "is not a card id: it starts with none of"),
        ("request-", "expected request-{cycle}-{owner}-{round}"),
        (f"request-1-{GUID}", "round '000000000abc' must be lower-case letters"),
        (f"request-01-{GUID}-open", "the cycle id '01' is not a whole number"),
        (f"request-x-{GUID}-open", "the cycle id 'x' is not a whole number"),
        (f"request-1-{GUID}-open-p0", "part must be a whole number of at least 1"),
        (f"request-1-{GUID}-open-p01", "the part '01' is not a whole number"),
        ("request-1-open", "expected request-{cycle}-{owner}-{round}"),
        (f"request-1-{GUID}-Open", "round 'Open' must be lower-case letters"),
        (f"request-١-{GUID}-open", "the cycle id '١' is not a whole number"),
        (f"approval-7-2-1-{GUID}", "expected approval-{return}-v{version}-s{step}-{approver}"),
        (f"approval-7-v2-s1-{GUID}-x-mail-mail", "ends in '-mail'"),
        ("approval-7-v2-s1-", "approver id must be non-empty text"),
        ("approval-7-v2-s1-a:b", "holds ':' or white space"),
        (f"digest-4-{GUID}", "expected digest-{cycle}-{approver}-p{part}"),
        (f"digest-4-{GUID}-p0", "part must be a whole number of at least 1"),
        (f"digest-4-{GUID}-mail-p1", "ends in '-mail'"),
        ("digest-x-ann@x.org-p1", "the cycle id 'x' is not a whole number"),
        ("rejection-7", "expected rejection-{return}-v{version}"),
        ("rejection-7-v+3", "the version '+3' is not a whole number"),
        ("rejection-7-v3-", "the version '3-' is not a whole number"),
    ],
)
def test_malformed_card_ids_are_refused_saying_why(text: str, why: str) -> None:
    with pytest.raises(CardIdError) as caught:
        CardId.parse(text)
    assert why in str(caught.value)
    assert repr(text) in str(caught.value)


def test_a_card_id_of_one_kind_is_not_taken_for_another() -> None:
    with pytest.raises(CardIdError, match="is not an owner request card id"):
        RequestCardId.parse("rejection-7-v3")
    with pytest.raises(CardIdError, match="is not an approval card id"):
        ApprovalCardId.parse(f"request-1-{GUID}-open")


@pytest.mark.parametrize(
    "build",
    [
        lambda: RequestCardId(-1, GUID, ROUND_OPEN),
        lambda: RequestCardId(True, GUID, ROUND_OPEN),  # type: ignore[arg-type]
        lambda: RequestCardId(1, "", ROUND_OPEN),
        lambda: RequestCardId(1, "ann lee", ROUND_OPEN),
        lambda: RequestCardId(1, GUID, "mail"),
        lambda: RequestCardId(1, GUID, "p2"),
        lambda: RequestCardId(1, GUID, "re-minder"),
        lambda: RequestCardId(1, GUID, ROUND_OPEN, part=0),
        lambda: ApprovalCardId(1, 1, 0, "someone-mail"),
        lambda: RejectionCardId(1, -2),
    ],
)
def test_parts_that_would_make_an_ambiguous_card_id_are_refused(build: Any) -> None:
    with pytest.raises(CardIdError):
        build()


# --- dedup keys -------------------------------------------------------------------------

WHEN = datetime(2026, 11, 5, 10, 15, tzinfo=UTC)
DAY = date(2026, 11, 6)


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (ReminderKey(3, 2), "cycle:3:reminder:2"),
        (EscalateKey(3), "cycle:3:escalate"),
        (DigestKey(3, DAY), "cycle:3:digest:2026-11-06"),
        (CloseKey(3), "cycle:3:close"),
        (StepTimeoutKey(40, 1), "step:40:timeout:1"),
        (RefreshKey("ds-1", WHEN), "refresh:ds-1:2026-11-05T10:15:00+00:00"),
        (DeferredRefreshKey("ds-1", DAY), "refresh:ds-1:deferred:2026-11-06"),
        (RefreshPollKey("req-9", 4), "refresh_poll:req-9:4"),
    ],
)
def test_timer_keys_keep_the_format_stored_rows_use(key: DedupKey, text: str) -> None:
    assert key.format() == str(key) == text
    assert parse_timer_key(text) == key == type(key).parse(text)


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (CardSendKey(RejectionCardId(7, 3)), "send:rejection-7-v3"),
        (CardRoundKey(ApprovalCardId(7, 2, 1, GUID), "ask"), f"send:approval-7-v2-s1-{GUID}:ask"),
        (CardOutcomeKey(41, GUID), f"outcome:41:{GUID}"),
        (WriteBackKey(7, 4), "writeback:7:v4"),
        (
            RefreshRequestKey(RefreshKey("ds", WHEN)),
            "refresh:refresh:ds:2026-11-05T10:15:00+00:00",
        ),
        (
            RefreshRequestKey(DeferredRefreshKey("ds", DAY)),
            "refresh:refresh:ds:deferred:2026-11-06",
        ),
        (CheckRefreshKey("req-9", 2), "check:req-9:2"),
        (RefreshFailedMailKey("req-9"), "refresh_failed:req-9"),
        (EscalationMailKey(3, GUID), f"cycle:3:escalate:{GUID}"),
        (UnroutableMailKey(3), "cycle:3:unroutable"),
        (ClosedMailKey(3), "cycle:3:closed"),
        (DigestMailKey(DigestKey(3, DAY)), "digest:cycle:3:digest:2026-11-06"),
        (UnroutableReturnMailKey(7, 4), "return:7:v4:unroutable"),
    ],
)
def test_outbox_keys_keep_the_format_stored_rows_use(key: DedupKey, text: str) -> None:
    assert key.format() == str(key) == text
    assert parse_outbox_key(text) == key == type(key).parse(text)


@EXAMPLES
@given(timer_keys)
def test_every_timer_key_parses_back_to_itself_and_to_no_other(key: DedupKey) -> None:
    assert parse_timer_key(key.format()) == key


@EXAMPLES
@given(outbox_keys)
def test_every_outbox_key_parses_back_to_itself_and_to_no_other(key: DedupKey) -> None:
    assert parse_outbox_key(key.format()) == key


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("cycle:3:reminder:02", "is not a ReminderKey (cycle:{cycle_id}:reminder:{number})"),
        ("cycle:3:digest:20261106", "this service writes it 'cycle:3:digest:2026-11-06'"),
        ("cycle:3:digest:2026-13-01", "the day '2026-13-01' is not a date"),
        ("refresh:ds:2026-11-05T10:15:00", "must be a timezone-aware datetime"),
        ("step:x:timeout:1", "the step_id 'x' is not a whole number"),
        ("cycle:3:reminders:2", "is not a dedup key of the timer table"),
        ("", "is not a dedup key of the timer table"),
    ],
)
def test_malformed_timer_keys_are_refused_saying_why(text: str, why: str) -> None:
    with pytest.raises(DedupKeyError) as caught:
        parse_timer_key(text)
    assert why in str(caught.value)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("send:approval-7-v2-s1", "the card_id is wrong"),
        ("writeback:7:4", "is not a dedup key of the outbox table"),
        ("digest:cycle:3:escalate", "the timer is wrong"),
        ("check:req-9:", "the poll '' is not a whole number"),
    ],
)
def test_malformed_outbox_keys_are_refused_saying_why(text: str, why: str) -> None:
    with pytest.raises(DedupKeyError) as caught:
        parse_outbox_key(text)
    assert why in str(caught.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: ReminderKey(-1, 1),
        lambda: RefreshKey("ds", datetime(2026, 1, 1)),  # naive: the engine's clock is aware
        lambda: RefreshKey("my data:set", WHEN),
        lambda: DigestKey(1, WHEN),  # type: ignore[arg-type]  # a datetime is not a day
        lambda: EscalationMailKey(1, ""),
        lambda: DigestMailKey(EscalateKey(1)),  # type: ignore[arg-type]
    ],
)
def test_parts_that_would_make_a_bad_key_are_refused(build: Any) -> None:
    with pytest.raises(DedupKeyError):
        build()
