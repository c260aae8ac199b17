"""Signed web-form links: only a genuine, unexpired link for the right purpose opens."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from m365perf.service import links_from_settings
from m365perf.settings import load_settings
from m365perf.web.links import (
    BadSignature,
    ExpiredLink,
    LinkSigner,
    MalformedLink,
    ReturnLink,
    WrongPurpose,
)

KEY = "k" * 16 + "a-link-key-for-tests-0123456789"
OTHER_KEY = "another-key-that-is-long-enough-0123456789"
NOW = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
OWNER = "11111111-0000-0000-0000-000000000001"


def _claims(token: str) -> dict[str, object]:
    body = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def _encode(claims: dict[str, object]) -> str:
    raw = json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_genuine_link_opens_that_owners_returns_for_that_cycle() -> None:
    signer = LinkSigner(KEY, lifetime=timedelta(days=30))
    token = signer.sign_return(7, OWNER, now=NOW)
    assert signer.verify_return(token, now=NOW + timedelta(days=29)) == ReturnLink(
        7, OWNER, NOW + timedelta(days=30), NOW
    )
    # safe in a URL path as it is, and as short as a link in an e-mail should be
    assert all(c.isalnum() or c in "-_." for c in token) and len(token) < 220
    assert _claims(token)["purpose"] == "return"


def test_a_link_changed_in_any_way_is_refused_as_not_genuine() -> None:
    signer = LinkSigner(KEY)
    token = signer.sign_return(7, OWNER, now=NOW)
    body, mac = token.split(".")
    someone_else = _encode({**_claims(token), "owner_id": "11111111-0000-0000-0000-000000000004"})
    longer = _encode({**_claims(token), "exp": int((NOW + timedelta(days=999)).timestamp())})
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for tampered in (f"{someone_else}.{mac}", f"{longer}.{mac}", f"{body}.{flipped}"):
        with pytest.raises(BadSignature) as refused:
            signer.verify_return(tampered, now=NOW)
        assert refused.value.status == 403
    with pytest.raises(BadSignature):  # signed with another key (or before a key change)
        LinkSigner(OTHER_KEY).verify_return(token, now=NOW)


def test_a_link_stops_working_at_its_expiry() -> None:
    signer = LinkSigner(KEY, lifetime=timedelta(days=30))
    token = signer.sign_return(7, OWNER, now=NOW)
    signer.verify_return(token, now=NOW + timedelta(days=30) - timedelta(seconds=1))
    with pytest.raises(ExpiredLink) as expired:
        signer.verify_return(token, now=NOW + timedelta(days=30))
    assert expired.value.status == 410
    assert expired.value.expired_at == NOW + timedelta(days=30)


def test_a_genuine_link_made_for_another_purpose_does_not_open_a_return() -> None:
    signer = LinkSigner(KEY)
    token = signer.sign("approval", {"return_id": 12}, now=NOW)
    with pytest.raises(WrongPurpose) as refused:
        signer.verify_return(token, now=NOW)
    assert refused.value.status == 403
    assert signer.verify(token, purpose="approval", now=NOW)["return_id"] == 12


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dot-at-all",
        ".",
        "abc.",
        ".abc",
        "a.b.c",
        "abc.d$f",
        "abc def.ghi",
        "x" * 5000 + ".abc",
    ],
)
def test_malformed_links_are_refused_as_such(token: str) -> None:
    with pytest.raises(MalformedLink) as refused:
        LinkSigner(KEY).verify_return(token, now=NOW)
    assert refused.value.status == 400
    assert refused.value.message  # a sentence for the page, not a traceback


def test_a_genuine_token_whose_claims_do_not_name_a_return_is_malformed() -> None:
    signer = LinkSigner(KEY)
    token = signer.sign("return", {"cycle_id": "seven", "owner_id": OWNER}, now=NOW)
    with pytest.raises(MalformedLink):
        signer.verify_return(token, now=NOW)


def test_the_key_must_be_long_and_never_shows_in_logs() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        LinkSigner("short")
    signer = LinkSigner(KEY)
    assert KEY not in repr(signer)
    with pytest.raises(ValueError, match="time zone"):
        signer.sign_return(7, OWNER, now=datetime(2026, 11, 4, 9, 0))


def test_settings_without_a_key_mean_no_links_and_a_short_key_is_refused() -> None:
    assert links_from_settings(load_settings(link_secret="")) is None
    assert links_from_settings(load_settings(link_secret=None)) is None
    signer = links_from_settings(load_settings(link_secret=KEY, link_lifetime_days=3))
    assert signer is not None
    token = signer.sign_return(1, OWNER, now=NOW)
    assert LinkSigner(KEY).verify_return(token, now=NOW).expires == NOW + timedelta(days=3)
    with pytest.raises(ValidationError, match="at least 32 characters"):
        load_settings(link_secret="password")
