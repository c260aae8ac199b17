"""The bot endpoint believes a Teams/Outlook click only when its Bot Framework token proves it.

Keys are generated here; the Bot Framework's metadata and key documents are served by
an in-memory stand-in for login.botframework.com that counts what it is asked for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Iterable
from typing import Any

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from m365perf.settings import Settings
from m365perf.web.bot_auth import (
    BadActivity,
    BadSignature,
    BotAuthError,
    BotTokenVerifier,
    Expired,
    KeyNotEndorsed,
    KeysUnavailable,
    MalformedToken,
    MissingToken,
    NotYetValid,
    UnknownCaller,
    UnknownKey,
    UnsupportedAlgorithm,
    VerifiedCaller,
    WrongAudience,
    WrongIssuer,
    WrongServiceUrl,
    WrongTenant,
)

BOT_APP_ID = "0b8e4b5c-6a1d-4d8e-9f3a-2c7b1e5d9a40"
TENANT_ID = "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"
ISSUER = "https://api.botframework.com"
SANDBOX_ISSUER = "http://127.0.0.1:8765/botframework"
METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
JWKS_URL = "https://login.botframework.com/v1/.well-known/keys"
SERVICE_URL = "https://smba.trafficmanager.net/uk/"
OWNER_OID = "3F2504E0-4F89-41D3-9A0C-0305E82C3301"
START = 1_760_000_000.0
DAY = 24 * 3600.0
REFETCH = 300.0


# --------------------------------------------------------------------------- stand-ins


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


class KeyDirectory:
    """Plays login.botframework.com: the OpenID metadata and the key set, counting fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches: list[str] = []
        self.down = False

    def publish(
        self, kid: str, key: rsa.RSAPrivateKey, endorsements: Iterable[str] | None = None
    ) -> None:
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk.update(kid=kid, use="sig")
        if endorsements is not None:
            jwk["endorsements"] = list(endorsements)
        self.keys.append(jwk)

    def __call__(self, url: str) -> dict[str, Any]:
        self.fetches.append(url)
        if self.down:
            raise requests.ConnectionError(f"cannot reach {url}")
        if url == METADATA_URL:
            return {
                "issuer": ISSUER,
                "jwks_uri": JWKS_URL,
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        if url == JWKS_URL:
            return {"keys": [dict(k) for k in self.keys]}
        raise AssertionError(f"unexpected fetch of {url}")


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def directory(signing_key: rsa.RSAPrivateKey) -> KeyDirectory:
    published = KeyDirectory()
    published.publish("key-1", signing_key, endorsements=["msteams", "outlook"])
    return published


@pytest.fixture
def verifier(clock: Clock, directory: KeyDirectory) -> BotTokenVerifier:
    return BotTokenVerifier(
        openid_metadata_url=METADATA_URL,
        issuers=ISSUER,
        bot_app_id=BOT_APP_ID,
        tenant_id=TENANT_ID,
        min_key_refetch_s=REFETCH,
        now=clock,
        fetch_json=directory,
    )


def mint(
    key: rsa.RSAPrivateKey,
    *,
    kid: str | None = "key-1",
    at: float = START,
    drop: Iterable[str] = (),
    **claims: Any,
) -> str:
    """A Bot Framework–shaped token signed with ``key``, valid for an hour from ``at``."""
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": BOT_APP_ID,
        "nbf": at - 60,
        "exp": at + 3600,
        "serviceurl": SERVICE_URL,
        **claims,
    }
    for name in drop:
        del payload[name]
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, key, algorithm="RS256", headers=headers)


def hand_made(header: dict[str, Any], payload: dict[str, Any], signature: bytes) -> str:
    """A JWT assembled by hand, as an attacker would (PyJWT refuses to make these)."""
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), _b64(signature)]
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def click(
    channel: str = "msteams", *, sender: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """An ``adaptiveCard/action`` invoke as Teams sends it when an owner submits a return."""
    activity: dict[str, Any] = {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "channelId": channel,
        "serviceUrl": SERVICE_URL,
        "from": {"id": "29:1a2b3c", "aadObjectId": OWNER_OID, "name": "Priya Shah"},
        "conversation": {"id": "a:1conversation"},
        "recipient": {"id": f"28:{BOT_APP_ID}"},
        "channelData": {"tenant": {"id": TENANT_ID}},
        "value": {"action": {"type": "Action.Execute", "verb": "submitReturn", "data": {}}},
    }
    if sender is not None:
        activity["from"] = sender
    activity.update(fields)
    return activity


def bearer(token: str) -> str:
    return f"Bearer {token}"


# --------------------------------------------------------------------------- the good click


def test_genuine_click_names_the_owner_who_clicked(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    caller = verifier.verify(bearer(mint(signing_key)), click())

    assert caller == VerifiedCaller(
        user_id=OWNER_OID.lower(),
        name="Priya Shah",
        channel_id="msteams",
        service_url="https://smba.trafficmanager.net/uk",
        conversation_id="a:1conversation",
    )


def test_scheme_name_is_case_insensitive(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    assert verifier.verify(f"bearer {mint(signing_key)}", click()).user_id == OWNER_OID.lower()


def test_click_without_conversation_still_names_the_caller(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    activity = click()
    del activity["conversation"]

    assert verifier.verify(bearer(mint(signing_key)), activity).conversation_id is None


def test_any_configured_issuer_is_trusted(
    clock: Clock, directory: KeyDirectory, signing_key: rsa.RSAPrivateKey
) -> None:
    rehearsal = BotTokenVerifier(
        openid_metadata_url=METADATA_URL,
        issuers=[ISSUER, SANDBOX_ISSUER],
        bot_app_id=BOT_APP_ID,
        tenant_id=TENANT_ID,
        now=clock,
        fetch_json=directory,
    )

    for issuer in (ISSUER, SANDBOX_ISSUER):
        assert rehearsal.verify(bearer(mint(signing_key, iss=issuer)), click()).user_id


# --------------------------------------------------------------------------- the header


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "Basic dXNlcjpwYXNzd29yZA==", "Bearer", "Bearer    "],
    ids=["absent", "empty", "blank", "basic", "scheme-only", "scheme-and-spaces"],
)
def test_click_without_bearer_token_is_refused(
    verifier: BotTokenVerifier, directory: KeyDirectory, header: str | None
) -> None:
    with pytest.raises(MissingToken):
        verifier.verify(header, click())
    assert directory.fetches == []


def test_bearer_value_that_is_not_a_jwt_is_refused(verifier: BotTokenVerifier) -> None:
    with pytest.raises(MalformedToken):
        verifier.verify("Bearer not-a-jwt", click())


# --------------------------------------------------------------------------- algorithm and key


def test_unsigned_token_alg_none_is_refused_before_any_key_is_fetched(
    verifier: BotTokenVerifier, directory: KeyDirectory
) -> None:
    payload = {"iss": ISSUER, "aud": BOT_APP_ID, "exp": START + 600, "serviceurl": SERVICE_URL}
    token = hand_made({"alg": "none", "typ": "JWT", "kid": "key-1"}, payload, b"")

    with pytest.raises(UnsupportedAlgorithm):
        verifier.verify(bearer(token), click())
    assert directory.fetches == []


def test_hs256_signed_with_the_public_key_is_refused(
    verifier: BotTokenVerifier, directory: KeyDirectory, signing_key: rsa.RSAPrivateKey
) -> None:
    """The classic confusion attack: the public key is public, so HMAC with it is forgeable."""
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": "key-1"}
    payload = {"iss": ISSUER, "aud": BOT_APP_ID, "exp": START + 600, "serviceurl": SERVICE_URL}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()

    with pytest.raises(UnsupportedAlgorithm):
        verifier.verify(bearer(hand_made(header, payload, signature)), click())
    assert directory.fetches == []


def test_token_signed_by_another_key_under_a_published_kid_is_refused(
    verifier: BotTokenVerifier, other_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(BadSignature):
        verifier.verify(bearer(mint(other_key, kid="key-1")), click())


def test_genuine_token_with_altered_claims_is_refused(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    genuine_head, _, genuine_signature = mint(signing_key).split(".")
    _, altered_body, _ = mint(other_key, aud="another-bot").split(".")

    with pytest.raises(BadSignature):
        verifier.verify(bearer(f"{genuine_head}.{altered_body}.{genuine_signature}"), click())


def test_token_under_an_unpublished_kid_is_refused(
    verifier: BotTokenVerifier, other_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(UnknownKey):
        verifier.verify(bearer(mint(other_key, kid="attacker-key")), click())


def test_token_naming_no_key_is_refused(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(UnknownKey):
        verifier.verify(bearer(mint(signing_key, kid=None)), click())


def test_key_not_endorsed_for_the_activitys_channel_is_refused(
    clock: Clock, signing_key: rsa.RSAPrivateKey
) -> None:
    teams_only = KeyDirectory()
    teams_only.publish("key-1", signing_key, endorsements=["msteams"])
    verifier = BotTokenVerifier(
        openid_metadata_url=METADATA_URL,
        issuers=ISSUER,
        bot_app_id=BOT_APP_ID,
        tenant_id=TENANT_ID,
        now=clock,
        fetch_json=teams_only,
    )
    token = mint(signing_key)

    assert verifier.verify(bearer(token), click("msteams")).channel_id == "msteams"
    with pytest.raises(KeyNotEndorsed):
        verifier.verify(bearer(token), click("outlook"))


def test_key_without_endorsements_serves_any_channel(
    clock: Clock, signing_key: rsa.RSAPrivateKey
) -> None:
    plain = KeyDirectory()
    plain.publish("key-1", signing_key)
    verifier = BotTokenVerifier(
        openid_metadata_url=METADATA_URL,
        issuers=ISSUER,
        bot_app_id=BOT_APP_ID,
        tenant_id=TENANT_ID,
        now=clock,
        fetch_json=plain,
    )

    assert verifier.verify(bearer(mint(signing_key)), click("outlook")).channel_id == "outlook"


# --------------------------------------------------------------------------- claims


@pytest.mark.parametrize(
    ("claims", "drop", "error"),
    [
        ({"iss": "https://sts.evil.example"}, (), WrongIssuer),
        ({}, ("iss",), WrongIssuer),
        ({"aud": "some-other-bot"}, (), WrongAudience),
        ({"aud": ["some-other-bot"]}, (), WrongAudience),
        ({}, ("aud",), WrongAudience),
        ({"serviceurl": "https://smba.evil.example/uk/"}, (), WrongServiceUrl),
        ({"serviceurl": "https://SMBA.trafficmanager.net/uk/"}, (), WrongServiceUrl),
        ({}, ("serviceurl",), WrongServiceUrl),
        ({}, ("exp",), MalformedToken),
        ({"exp": math.inf}, (), MalformedToken),
        ({"exp": "tomorrow"}, (), MalformedToken),
    ],
    ids=[
        "issuer-foreign",
        "issuer-missing",
        "audience-other-bot",
        "audience-list-without-us",
        "audience-missing",
        "serviceurl-other-host",
        "serviceurl-other-case",
        "serviceurl-missing",
        "expiry-missing",
        "expiry-never",
        "expiry-not-a-number",
    ],
)
def test_token_with_a_wrong_claim_is_refused(
    verifier: BotTokenVerifier,
    signing_key: rsa.RSAPrivateKey,
    claims: dict[str, Any],
    drop: tuple[str, ...],
    error: type[BotAuthError],
) -> None:
    with pytest.raises(error):
        verifier.verify(bearer(mint(signing_key, drop=drop, **claims)), click())


def test_audience_list_naming_this_bot_is_accepted(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    token = mint(signing_key, aud=["some-other-bot", BOT_APP_ID])

    assert verifier.verify(bearer(token), click()).user_id == OWNER_OID.lower()


def test_serviceurl_trailing_slash_is_not_a_mismatch(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    token = mint(signing_key, serviceurl="https://smba.trafficmanager.net/uk")

    caller = verifier.verify(bearer(token), click(serviceUrl="https://smba.trafficmanager.net/uk/"))

    assert caller.service_url == "https://smba.trafficmanager.net/uk"


def test_expired_token_is_refused_beyond_the_skew_only(
    verifier: BotTokenVerifier, clock: Clock, signing_key: rsa.RSAPrivateKey
) -> None:
    token = mint(signing_key, exp=START + 600)

    clock.at = START + 600 + 299
    assert verifier.verify(bearer(token), click()).user_id == OWNER_OID.lower()
    clock.at = START + 600 + 301
    with pytest.raises(Expired):
        verifier.verify(bearer(token), click())


def test_token_not_yet_valid_is_refused_beyond_the_skew_only(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    assert verifier.verify(bearer(mint(signing_key, nbf=START + 299)), click()).user_id
    with pytest.raises(NotYetValid):
        verifier.verify(bearer(mint(signing_key, nbf=START + 301)), click())


def test_a_tighter_skew_is_honoured(
    clock: Clock, directory: KeyDirectory, signing_key: rsa.RSAPrivateKey
) -> None:
    strict = BotTokenVerifier(
        openid_metadata_url=METADATA_URL,
        issuers=ISSUER,
        bot_app_id=BOT_APP_ID,
        tenant_id=TENANT_ID,
        clock_skew_s=0,
        now=clock,
        fetch_json=directory,
    )
    clock.at = START + 3600

    with pytest.raises(Expired):
        strict.verify(bearer(mint(signing_key)), click())


# --------------------------------------------------------------------------- the activity


def test_teams_sender_without_entra_object_id_is_refused(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    activity = click(sender={"id": OWNER_OID, "name": "Priya Shah"})

    with pytest.raises(UnknownCaller):
        verifier.verify(bearer(mint(signing_key)), activity)


def test_outlook_sender_id_is_used_when_it_is_an_entra_object_id(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    activity = click("outlook", sender={"id": OWNER_OID, "name": "Priya Shah"})

    caller = verifier.verify(bearer(mint(signing_key)), activity)

    assert (caller.user_id, caller.channel_id) == (OWNER_OID.lower(), "outlook")


@pytest.mark.parametrize(
    "sender",
    [
        {"id": "priya.shah@coventry.gov.uk", "name": "Priya Shah"},
        {"id": "29:1a2b3c", "aadObjectId": "priya.shah@coventry.gov.uk"},
        {"id": "29:1a2b3c", "aadObjectId": "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}"},
        {"name": "Priya Shah"},
    ],
    ids=["outlook-email-id", "email-as-object-id", "braced-guid", "no-id"],
)
def test_sender_that_is_not_an_entra_object_id_is_refused(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey, sender: dict[str, str]
) -> None:
    with pytest.raises(UnknownCaller):
        verifier.verify(bearer(mint(signing_key)), click("outlook", sender=sender))


def test_activity_without_sender_is_refused(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    activity = click()
    del activity["from"]

    with pytest.raises(UnknownCaller):
        verifier.verify(bearer(mint(signing_key)), activity)


@pytest.mark.parametrize("field", ["channelId", "serviceUrl"])
def test_activity_missing_what_the_check_needs_is_refused(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey, field: str
) -> None:
    activity = click()
    del activity[field]

    with pytest.raises(BadActivity):
        verifier.verify(bearer(mint(signing_key)), activity)


# --------------------------------------------------------------------------- key cache


def test_keys_are_fetched_once_and_reused(
    verifier: BotTokenVerifier, directory: KeyDirectory, signing_key: rsa.RSAPrivateKey
) -> None:
    for _ in range(3):
        verifier.verify(bearer(mint(signing_key)), click())

    assert directory.fetches == [METADATA_URL, JWKS_URL]


def test_keys_are_refreshed_after_a_day(
    verifier: BotTokenVerifier,
    clock: Clock,
    directory: KeyDirectory,
    signing_key: rsa.RSAPrivateKey,
) -> None:
    verifier.verify(bearer(mint(signing_key)), click())
    clock.at = START + DAY - 1
    verifier.verify(bearer(mint(signing_key, at=clock.at)), click())
    assert len(directory.fetches) == 2

    clock.at = START + DAY
    verifier.verify(bearer(mint(signing_key, at=clock.at)), click())
    assert directory.fetches == [METADATA_URL, JWKS_URL] * 2


def test_key_retired_by_microsoft_stops_working_at_the_next_refresh(
    verifier: BotTokenVerifier,
    clock: Clock,
    directory: KeyDirectory,
    signing_key: rsa.RSAPrivateKey,
) -> None:
    verifier.verify(bearer(mint(signing_key)), click())
    directory.keys.clear()
    directory.publish("key-2", signing_key)
    clock.at = START + DAY

    with pytest.raises(UnknownKey):
        verifier.verify(bearer(mint(signing_key, kid="key-1", at=clock.at)), click())


def test_rolled_over_key_is_picked_up_without_waiting_a_day(
    verifier: BotTokenVerifier,
    clock: Clock,
    directory: KeyDirectory,
    signing_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
) -> None:
    verifier.verify(bearer(mint(signing_key)), click())
    directory.publish("key-2", other_key, endorsements=["msteams"])
    clock.at = START + REFETCH

    caller = verifier.verify(bearer(mint(other_key, kid="key-2", at=clock.at)), click())

    assert caller.user_id == OWNER_OID.lower()
    assert len(directory.fetches) == 4


def test_forged_kids_refetch_keys_at_most_once_per_interval(
    verifier: BotTokenVerifier,
    clock: Clock,
    directory: KeyDirectory,
    signing_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
) -> None:
    verifier.verify(bearer(mint(signing_key)), click())
    clock.at = START + REFETCH
    with pytest.raises(UnknownKey):
        verifier.verify(bearer(mint(other_key, kid="forged-0", at=clock.at)), click())
    assert len(directory.fetches) == 4

    for n in range(1, 50):
        clock.at = START + REFETCH + n
        with pytest.raises(UnknownKey):
            verifier.verify(bearer(mint(other_key, kid=f"forged-{n}", at=clock.at)), click())
    assert len(directory.fetches) == 4
    assert verifier.verify(bearer(mint(signing_key, at=clock.at)), click()).user_id

    clock.at = START + 2 * REFETCH
    with pytest.raises(UnknownKey):
        verifier.verify(bearer(mint(other_key, kid="forged-late", at=clock.at)), click())
    assert len(directory.fetches) == 6


def test_unreachable_key_endpoint_refuses_and_backs_off(
    verifier: BotTokenVerifier,
    clock: Clock,
    directory: KeyDirectory,
    signing_key: rsa.RSAPrivateKey,
) -> None:
    directory.down = True
    with pytest.raises(KeysUnavailable):
        verifier.verify(bearer(mint(signing_key)), click())
    with pytest.raises(KeysUnavailable):
        verifier.verify(bearer(mint(signing_key)), click())
    assert directory.fetches == [METADATA_URL]

    directory.down = False
    clock.at = START + REFETCH
    assert verifier.verify(bearer(mint(signing_key, at=clock.at)), click()).user_id


def test_failed_daily_refresh_keeps_the_last_good_keys(
    verifier: BotTokenVerifier,
    clock: Clock,
    directory: KeyDirectory,
    signing_key: rsa.RSAPrivateKey,
) -> None:
    verifier.verify(bearer(mint(signing_key)), click())
    directory.down = True
    clock.at = START + DAY

    assert verifier.verify(bearer(mint(signing_key, at=clock.at)), click()).user_id
    assert directory.fetches == [METADATA_URL, JWKS_URL, METADATA_URL]


# --------------------------------------------------------------------------- hygiene


def test_token_never_appears_in_errors_or_logs(
    verifier: BotTokenVerifier,
    clock: Clock,
    signing_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [
        mint(signing_key, aud="some-other-bot"),
        mint(other_key),
        mint(signing_key, serviceurl="https://smba.evil.example/"),
        mint(signing_key, exp=START - 3600),
    ]

    for token in tokens:
        with pytest.raises(BotAuthError) as refused:
            verifier.verify(bearer(token), click())
        signature = token.rsplit(".", 1)[1]
        assert signature not in str(refused.value)
        assert signature not in caplog.text
    assert "refused" in caplog.text


@responses.activate
def test_settings_wire_the_real_key_fetch(
    directory: KeyDirectory, signing_key: rsa.RSAPrivateKey
) -> None:
    """From settings, metadata and keys are fetched over HTTP with our User-Agent and timeouts."""
    responses.get(METADATA_URL, json=directory(METADATA_URL))
    responses.get(JWKS_URL, json=directory(JWKS_URL))
    settings = Settings(
        bot_app_id=BOT_APP_ID,
        tenant_id=TENANT_ID,
        openid_metadata_url=METADATA_URL,
        bot_token_issuer=f"{ISSUER}, {SANDBOX_ISSUER}",
        user_agent="ISV|m365perf|test",
    )
    verifier = BotTokenVerifier.from_settings(settings)

    caller = verifier.verify(bearer(mint(signing_key, iss=SANDBOX_ISSUER, at=time.time())), click())

    assert caller.user_id == OWNER_OID.lower()
    assert [call.request.url for call in responses.calls] == [METADATA_URL, JWKS_URL]
    assert {call.request.headers["User-Agent"] for call in responses.calls} == {"ISV|m365perf|test"}
    # responses records the keyword arguments requests was called with.
    timeouts = {call.request.req_kwargs["timeout"] for call in responses.calls}  # type: ignore[attr-defined]
    assert timeouts == {(settings.connect_timeout_s, settings.read_timeout_s)}


def test_service_without_a_bot_app_id_will_not_start() -> None:
    with pytest.raises(ValueError, match="BOT_APP_ID"):
        BotTokenVerifier.from_settings(Settings(bot_app_id="", tenant_id=TENANT_ID))


def test_service_without_a_trusted_issuer_will_not_start(directory: KeyDirectory) -> None:
    with pytest.raises(ValueError, match="issuer"):
        BotTokenVerifier(
            openid_metadata_url=METADATA_URL,
            issuers=" , ",
            bot_app_id=BOT_APP_ID,
            tenant_id=TENANT_ID,
            fetch_json=directory,
        )


# --------------------------------------------------------------------------- issuers and tenants

TENANT_METADATA_URL = (
    f"https://login.microsoftonline.com/{TENANT_ID}/v2.0/.well-known/openid-configuration"
)
TENANT_JWKS_URL = f"https://login.microsoftonline.com/{TENANT_ID}/discovery/v2.0/keys"


class TwoDirectories(KeyDirectory):
    """login.botframework.com and the tenant's Entra discovery, each with its own keys."""

    def __init__(self) -> None:
        super().__init__()
        self.tenant_keys: list[dict[str, Any]] = []

    def publish_for_tenant(self, kid: str, key: rsa.RSAPrivateKey) -> None:
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk.update(kid=kid, use="sig")
        self.tenant_keys.append(jwk)

    def __call__(self, url: str) -> dict[str, Any]:
        if url == TENANT_METADATA_URL:
            self.fetches.append(url)
            return {
                "issuer": f"https://login.microsoftonline.com/{TENANT_ID}/v2.0",
                "jwks_uri": TENANT_JWKS_URL,
            }
        if url == TENANT_JWKS_URL:
            self.fetches.append(url)
            return {"keys": [dict(k) for k in self.tenant_keys]}
        return super().__call__(url)


@pytest.fixture
def two(signing_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey) -> TwoDirectories:
    published = TwoDirectories()
    published.publish("key-1", signing_key, endorsements=["msteams", "outlook"])
    published.publish_for_tenant("tenant-key", other_key)
    return published


@pytest.fixture
def routed(clock: Clock, two: TwoDirectories) -> BotTokenVerifier:
    return BotTokenVerifier(
        openid_metadata_url=METADATA_URL,
        issuers=ISSUER,
        bot_app_id=BOT_APP_ID,
        tenant_id=TENANT_ID,
        tenant_metadata_url=TENANT_METADATA_URL,
        now=clock,
        fetch_json=two,
    )


@pytest.mark.parametrize(
    "issuer",
    [
        f"https://login.microsoftonline.com/{TENANT_ID}/v2.0",
        f"https://sts.windows.net/{TENANT_ID}/",
    ],
    ids=["v2", "v1"],
)
def test_the_tenants_entra_issuers_are_verified_with_the_tenants_keys(
    routed: BotTokenVerifier, two: TwoDirectories, other_key: rsa.RSAPrivateKey, issuer: str
) -> None:
    token = mint(other_key, kid="tenant-key", iss=issuer, tid=TENANT_ID.upper())

    assert routed.verify(bearer(token), click()).user_id == OWNER_OID.lower()
    assert two.fetches == [TENANT_METADATA_URL, TENANT_JWKS_URL]


def test_a_key_from_one_issuers_set_cannot_sign_for_the_other(
    routed: BotTokenVerifier, signing_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    entra = f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"
    with pytest.raises(UnknownKey):
        routed.verify(bearer(mint(signing_key, iss=entra, tid=TENANT_ID)), click())
    with pytest.raises(UnknownKey):
        routed.verify(bearer(mint(other_key, kid="tenant-key")), click())


def test_an_untrusted_issuer_fetches_no_keys(
    routed: BotTokenVerifier, two: TwoDirectories, other_key: rsa.RSAPrivateKey
) -> None:
    for issuer in (
        "https://login.microsoftonline.com/common/v2.0",
        "https://sts.windows.net/0c1d2e3f-4a5b-4c6d-8e7f-90a1b2c3d4e5/",
    ):
        with pytest.raises(WrongIssuer):
            routed.verify(bearer(mint(other_key, kid="tenant-key", iss=issuer)), click())
    assert two.fetches == []


@pytest.mark.parametrize(
    "tid", [None, "0c1d2e3f-4a5b-4c6d-8e7f-90a1b2c3d4e5", 7], ids=["missing", "other", "number"]
)
def test_an_entra_token_must_name_our_tenant(
    routed: BotTokenVerifier, other_key: rsa.RSAPrivateKey, tid: object
) -> None:
    entra = f"https://sts.windows.net/{TENANT_ID}/"
    claims = {} if tid is None else {"tid": tid}
    with pytest.raises(WrongTenant):
        routed.verify(bearer(mint(other_key, kid="tenant-key", iss=entra, **claims)), click())


@pytest.mark.parametrize(
    "changes",
    [
        {"channelData": {"tenant": {"id": "0c1d2e3f-4a5b-4c6d-8e7f-90a1b2c3d4e5"}}},
        {"channelData": {}},
        {"conversation": {"id": "a:1", "tenantId": "0c1d2e3f-4a5b-4c6d-8e7f-90a1b2c3d4e5"}},
    ],
    ids=["other-tenant", "no-tenant", "other-conversation-tenant"],
)
def test_an_activity_from_another_tenant_is_refused(
    verifier: BotTokenVerifier, signing_key: rsa.RSAPrivateKey, changes: dict[str, Any]
) -> None:
    with pytest.raises(WrongTenant):
        verifier.verify(bearer(mint(signing_key)), click(**changes))


def test_a_clock_skew_beyond_ten_minutes_will_not_start(directory: KeyDirectory) -> None:
    with pytest.raises(ValueError, match="clock_skew_s"):
        BotTokenVerifier(
            openid_metadata_url=METADATA_URL,
            issuers=ISSUER,
            bot_app_id=BOT_APP_ID,
            tenant_id=TENANT_ID,
            clock_skew_s=3600,
            fetch_json=directory,
        )
