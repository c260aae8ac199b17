"""Who clicked? Proving that a Teams or Outlook click really came through the Bot Framework.

Teams and Outlook both deliver a card click to the one bot endpoint as an
``adaptiveCard/action`` invoke carrying ``Authorization: Bearer <JWT>``. Anyone on
the internet can POST to that endpoint, so nothing in the activity is believed until
the token is proven. :meth:`BotTokenVerifier.verify` applies Microsoft's rules for
"Connector → bot" requests (fact sheet §6.5), in this order, and raises a specific
:class:`BotAuthError` at the first one that fails:

1. the header is present and uses the ``Bearer`` scheme (:class:`MissingToken`);
2. the JWT header says ``alg: RS256`` and names a ``kid`` — checked *before* any key
   is touched, so ``alg: none`` and the HS256-with-the-public-key trick never reach a
   verifier (:class:`UnsupportedAlgorithm`, :class:`UnknownKey`);
3. the (still unproven) ``iss`` is on the explicit allow-list (:class:`WrongIssuer`),
   which picks the key set: Bot Framework's (``openid_metadata_url``) for
   ``https://api.botframework.com``; the configured tenant's Entra discovery document
   for ``https://login.microsoftonline.com/{tid}/v2.0`` and ``https://sts.windows.net/{tid}/``
   — what a single-tenant bot (the only kind a council can now create) is sent
   (fact sheet §9). An issuer off the list never causes a key fetch;
4. the ``kid`` is one of that issuer's published signing keys (:class:`UnknownKey`;
   :class:`KeysUnavailable` when we could not fetch them) — a Bot Framework key cannot
   sign for an Entra issuer, nor the other way round;
5. when that key lists ``endorsements``, they include the activity's ``channelId``
   (:class:`KeyNotEndorsed`);
6. the RS256 signature verifies with that key (:class:`BadSignature`);
7. ``tid`` is bound to the issuer's tenant: required and equal to the configured
   tenant for an Entra issuer, and if a Bot Framework token carries one, that tenant
   too (:class:`WrongTenant`);
8. ``aud`` is the bot's Microsoft App ID (:class:`WrongAudience`);
9. ``exp`` is present and not past, ``nbf`` (if present) not ahead, each with the
   allowed clock skew, 5 minutes by default and never more than 10 (:class:`Expired`,
   :class:`NotYetValid`);
10. the ``serviceurl`` claim equals the activity's ``serviceUrl`` — a token minted for
    one conversation service cannot vouch for an activity that names another
    (:class:`WrongServiceUrl`); required on Bot Framework tokens, checked when an
    Entra token carries it;
11. the activity is from the configured tenant: ``channelData.tenant.id`` (and
    ``conversation.tenantId`` when present) equal ``tenant_id`` — another council's
    Teams user is not one of ours even when the Bot Framework vouches for the
    message (:class:`WrongTenant`);
12. the sender is an Entra user: ``from.aadObjectId`` (:class:`UnknownCaller`).

Choices worth knowing:

* **serviceUrl comparison**: exact and case-sensitive after stripping trailing ``/``
  from both sides (Teams sends ``…/uk/`` with the slash; nothing else is forgiven).
  :attr:`VerifiedCaller.service_url` is the activity's value in that stripped form,
  so stored conversation references compare equal whichever form arrived.
* **Who clicked**: ``from.aadObjectId``. The fact sheet does not confirm what the
  Outlook Actionable Messages channel puts in ``from``; for ``channelId == "outlook"``
  only, ``from.id`` is accepted when ``aadObjectId`` is absent. Either way the value
  must be a GUID (an Entra object id) — an e-mail address or a Teams ``29:`` id is
  refused, never guessed at. It is returned in lower case.
* **Key cache**: one per key set (Bot Framework, the tenant). The metadata and keys are
  fetched on first use and refreshed after
  ``key_cache_ttl_s`` (24 h; Microsoft asks for at least daily). An unknown ``kid``
  triggers one early refresh (keys do roll over), but refreshes are never attempted
  more often than ``min_key_refetch_s``, so a flood of forged ``kid`` values costs the
  key endpoint at most one fetch per interval. A failed refresh keeps the last good
  keys. There is deliberately no switch to turn verification off.
* The token is never logged and never appears in an error message.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import jwt
import requests

from m365perf.errors import M365PerfError
from m365perf.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_CLOCK_SKEW_S = 300.0
DEFAULT_KEY_CACHE_TTL_S = 24 * 3600.0
DEFAULT_MIN_KEY_REFETCH_S = 300.0
MAX_CLOCK_SKEW_S = 600.0
"""Microsoft allows 5 minutes; a skew setting beyond 10 would let stale tokens in."""

ENTRA_ISSUER_TEMPLATES = (
    "https://login.microsoftonline.com/{tenant}/v2.0",
    "https://sts.windows.net/{tenant}/",
)
"""The Entra v2 and v1 issuers a single-tenant bot's tokens may carry (fact sheet §9)."""

_ALGORITHM = "RS256"
_SERVICE_URL_CLAIM = "serviceurl"
_OUTLOOK_CHANNEL = "outlook"
_SHOWN_CHARS = 80

FetchJson = Callable[[str], Mapping[str, Any]]


# --------------------------------------------------------------------------- errors


class BotAuthError(M365PerfError):
    """A click whose sender could not be proven: answer 401 and change nothing.

    ``reason`` is safe to log and to return: it never contains the token.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingToken(BotAuthError):
    """No ``Authorization`` header, an empty one, or a scheme other than Bearer."""


class MalformedToken(BotAuthError):
    """The bearer value is not a readable JWT, or a claim has the wrong type."""


class UnsupportedAlgorithm(BotAuthError):
    """The token is not RS256 (``none``, HS256 and friends are refused outright)."""


class UnknownKey(BotAuthError):
    """The token names no ``kid``, or one the Bot Framework does not publish."""


class KeyNotEndorsed(BotAuthError):
    """The signing key is not endorsed for the channel the activity claims to come from."""


class BadSignature(BotAuthError):
    """The signature does not verify with the published key of that ``kid``."""


class WrongIssuer(BotAuthError):
    """``iss`` is not one of the trusted issuers."""


class WrongTenant(BotAuthError):
    """The token's ``tid`` or the activity's tenant is not the configured tenant."""


class WrongAudience(BotAuthError):
    """``aud`` is not this bot's Microsoft App ID."""


class Expired(BotAuthError):
    """``exp`` is past, beyond the allowed clock skew."""


class NotYetValid(BotAuthError):
    """``nbf`` is ahead, beyond the allowed clock skew."""


class WrongServiceUrl(BotAuthError):
    """The ``serviceurl`` claim is missing or names another service than the activity."""


class BadActivity(BotAuthError):
    """The activity lacks a field the check needs (``channelId``, ``serviceUrl``)."""


class UnknownCaller(BotAuthError):
    """The activity's sender carries no Entra object id."""


class KeysUnavailable(BotAuthError):
    """The signing keys could not be fetched: our outage, not the caller's fault.

    Still no state change; the web layer may answer 503 instead of 401 so the
    channel knows to try again.
    """


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True)
class VerifiedCaller:
    """The proven facts about a click, for the engine to authorise against.

    ``user_id`` is the clicking user's Entra object id (lower-case GUID);
    ``conversation_id`` is None when the channel sent no conversation.
    """

    user_id: str
    name: str
    channel_id: str
    service_url: str
    conversation_id: str | None


# --------------------------------------------------------------------------- verifier


class BotTokenVerifier:
    """Checks the Bot Framework token on each inbound click (see module docstring)."""

    def __init__(
        self,
        *,
        openid_metadata_url: str,
        issuers: str | Sequence[str],
        bot_app_id: str,
        tenant_id: str,
        tenant_metadata_url: str = "",
        clock_skew_s: float = DEFAULT_CLOCK_SKEW_S,
        key_cache_ttl_s: float = DEFAULT_KEY_CACHE_TTL_S,
        min_key_refetch_s: float = DEFAULT_MIN_KEY_REFETCH_S,
        now: Callable[[], float] = time.time,
        fetch_json: FetchJson | None = None,
    ) -> None:
        if not bot_app_id.strip():
            raise ValueError("bot_app_id is empty: set M365PERF_BOT_APP_ID to the bot's App ID")
        trusted = _issuer_list(issuers)
        if not trusted:
            raise ValueError("no trusted token issuer: set M365PERF_BOT_TOKEN_ISSUER")
        if not openid_metadata_url.strip():
            raise ValueError("openid_metadata_url is empty: set M365PERF_OPENID_METADATA_URL")
        tenant = tenant_id.strip().lower()
        if not tenant:
            raise ValueError("tenant_id is empty: set M365PERF_TENANT_ID to the council's tenant")
        if not math.isfinite(clock_skew_s) or clock_skew_s > MAX_CLOCK_SKEW_S:
            raise ValueError(f"clock_skew_s must be at most {MAX_CLOCK_SKEW_S:.0f} s")
        for label, value in (
            ("clock_skew_s", clock_skew_s),
            ("key_cache_ttl_s", key_cache_ttl_s),
            ("min_key_refetch_s", min_key_refetch_s),
        ):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{label} must be a finite number of seconds ≥ 0, got {value}")
        self._bot_app_id = bot_app_id.strip()
        self._tenant = tenant
        self._skew = clock_skew_s
        self._now = now
        fetch = fetch_json if fetch_json is not None else _http_fetch_json()

        def key_set(label: str, url: str) -> _SigningKeys:
            return _SigningKeys(
                label=label,
                metadata_url=url,
                fetch_json=fetch,
                now=now,
                ttl_s=key_cache_ttl_s,
                min_refetch_s=min_key_refetch_s,
            )

        bot_framework = _Issuer(key_set("Bot Framework", openid_metadata_url.strip()), None)
        entra_url = tenant_metadata_url.strip() or tenant_metadata_url_for(
            "https://login.microsoftonline.com", tenant
        )
        entra = _Issuer(key_set("tenant", entra_url), tenant)
        self._issuers: dict[str, _Issuer] = dict.fromkeys(trusted, bot_framework)
        for template in ENTRA_ISSUER_TEMPLATES:
            self._issuers[template.format(tenant=tenant)] = entra

    @classmethod
    def from_settings(cls, settings: Settings) -> BotTokenVerifier:
        """The production verifier: URLs, issuer(s) and timeouts from the service settings.

        ``bot_token_issuer`` may hold several Bot Framework issuers separated by commas;
        the tenant's two Entra issuers are always trusted, with keys from its discovery
        document under ``login_base_url``.
        """
        return cls(
            openid_metadata_url=settings.openid_metadata_url,
            issuers=settings.bot_token_issuer,
            bot_app_id=settings.bot_app_id,
            tenant_id=settings.tenant_id,
            tenant_metadata_url=tenant_metadata_url_for(
                settings.login_base_url, settings.tenant_id
            ),
            fetch_json=_http_fetch_json(
                connect_timeout_s=settings.connect_timeout_s,
                read_timeout_s=settings.read_timeout_s,
                user_agent=settings.user_agent,
            ),
        )

    def verify(
        self, authorization_header: str | None, activity: Mapping[str, Any]
    ) -> VerifiedCaller:
        """Prove who sent ``activity``; raise a :class:`BotAuthError` subclass if we cannot."""
        try:
            return self._verify(authorization_header, activity)
        except BotAuthError as exc:
            log.info("refused a Bot Framework request: %s: %s", type(exc).__name__, exc.reason)
            raise

    def _verify(
        self, authorization_header: str | None, activity: Mapping[str, Any]
    ) -> VerifiedCaller:
        token = _bearer_token(authorization_header)
        kid = _signing_key_id(token)
        issuer = self._issuer_of(_claimed_issuer(token))
        key = issuer.keys.get(kid)
        channel_id = _text(activity, "channelId")
        if channel_id is None:
            raise BadActivity("activity has no channelId")
        if key.endorsements is not None and channel_id not in key.endorsements:
            raise KeyNotEndorsed(f"signing key is not endorsed for channel {_shown(channel_id)}")
        claims = _signed_claims(token, key)
        if self._issuer_of(claims.get("iss")) is not issuer:  # cannot differ; fail closed
            raise WrongIssuer("token issuer changed under the signature")
        self._check_token_tenant(claims, issuer)
        self._check_audience(claims)
        self._check_lifetime(claims)
        service_url = _matching_service_url(claims, activity, required=issuer.tenant is None)
        self._check_activity_tenant(activity)
        sender = activity.get("from")
        if not isinstance(sender, Mapping):
            raise UnknownCaller("activity has no sender (from)")
        conversation = activity.get("conversation")
        conversation_id = _text(conversation, "id") if isinstance(conversation, Mapping) else None
        return VerifiedCaller(
            user_id=_caller_object_id(sender, channel_id),
            name=_text(sender, "name") or "",
            channel_id=channel_id,
            service_url=service_url,
            conversation_id=conversation_id,
        )

    def _issuer_of(self, issuer: object) -> _Issuer:
        """The allow-listed issuer's key set and tenant; exact match, no "skip" switch."""
        found = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if found is None:
            raise WrongIssuer(f"token issuer {_shown(issuer)} is not trusted")
        return found

    def _check_token_tenant(self, claims: Mapping[str, Any], issuer: _Issuer) -> None:
        tid = claims.get("tid")
        if tid is None and issuer.tenant is None:
            return  # Bot Framework tokens name no tenant
        if not isinstance(tid, str) or tid.strip().lower() != self._tenant:
            raise WrongTenant(f"token tenant (tid) {_shown(tid)} is not this council's tenant")

    def _check_activity_tenant(self, activity: Mapping[str, Any]) -> None:
        channel_data = activity.get("channelData")
        tenant = channel_data.get("tenant") if isinstance(channel_data, Mapping) else None
        stated = tenant.get("id") if isinstance(tenant, Mapping) else None
        if not isinstance(stated, str) or stated.strip().lower() != self._tenant:
            raise WrongTenant(
                f"activity tenant (channelData.tenant.id) {_shown(stated)} is not this "
                "council's tenant"
            )
        conversation = activity.get("conversation")
        other = conversation.get("tenantId") if isinstance(conversation, Mapping) else None
        if other is not None and (not isinstance(other, str) or other.lower() != self._tenant):
            raise WrongTenant(f"conversation tenant {_shown(other)} is not this council's tenant")

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        audience = claims.get("aud")
        if isinstance(audience, str):
            ok = audience == self._bot_app_id
        elif isinstance(audience, list):
            ok = self._bot_app_id in [a for a in audience if isinstance(a, str)]
        else:
            ok = False
        if not ok:
            raise WrongAudience(f"token audience {_shown(audience)} is not this bot's App ID")

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        now = self._now()
        expires = claims.get("exp")
        if not _is_time(expires):
            raise MalformedToken("token has no usable expiry (exp)")
        if now - self._skew >= expires:
            raise Expired(f"token expired at {expires:.0f}, now is {now:.0f}")
        not_before = claims.get("nbf")
        if not_before is None:
            return
        if not _is_time(not_before):
            raise MalformedToken("token's not-before (nbf) is not a time")
        if not_before > now + self._skew:
            raise NotYetValid(f"token is valid only from {not_before:.0f}, now is {now:.0f}")


# --------------------------------------------------------------------------- key cache


def tenant_metadata_url_for(login_base_url: str, tenant_id: str) -> str:
    """The tenant's Entra v2 discovery document (it names the tenant's ``jwks_uri``)."""
    return f"{login_base_url.rstrip('/')}/{tenant_id.strip()}/v2.0/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True)
class _SigningKey:
    public_key: Any
    endorsements: frozenset[str] | None


class _SigningKeys:
    """One issuer's published signing keys, cached and refreshed sparingly."""

    def __init__(
        self,
        *,
        label: str,
        metadata_url: str,
        fetch_json: FetchJson,
        now: Callable[[], float],
        ttl_s: float,
        min_refetch_s: float,
    ) -> None:
        self._label = label
        self._metadata_url = metadata_url
        self._fetch_json = fetch_json
        self._now = now
        self._ttl_s = ttl_s
        self._min_refetch_s = min_refetch_s
        self._keys: dict[str, _SigningKey] = {}
        self._loaded_at: float | None = None
        self._last_attempt: float | None = None
        # Held during a fetch too: concurrent requests wait for one refresh rather
        # than each starting their own.
        self._lock = threading.Lock()

    def get(self, kid: str) -> _SigningKey:
        with self._lock:
            moment = self._now()
            refreshed = False
            if self._is_stale(moment) and self._may_fetch(moment):
                self._refresh(moment)
                refreshed = True
            key = self._keys.get(kid)
            if key is None and not refreshed and self._may_fetch(moment):
                self._refresh(moment)
                key = self._keys.get(kid)
            if key is not None:
                return key
            if self._loaded_at is None:
                raise KeysUnavailable(f"{self._label} signing keys could not be fetched")
            raise UnknownKey(f"signing key {_shown(kid)} is not published by the {self._label}")

    def _is_stale(self, moment: float) -> bool:
        return self._loaded_at is None or moment - self._loaded_at >= self._ttl_s

    def _may_fetch(self, moment: float) -> bool:
        return self._last_attempt is None or moment - self._last_attempt >= self._min_refetch_s

    def _refresh(self, moment: float) -> None:
        self._last_attempt = moment
        try:
            metadata = self._fetch_json(self._metadata_url)
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri:
                raise ValueError("OpenID metadata has no jwks_uri")
            keys = _parse_jwks(self._fetch_json(jwks_uri))
        except Exception as exc:  # any failure of an injected fetcher means "no fresh keys"
            log.warning(
                "could not refresh %s signing keys from %s: %s: %s",
                self._label,
                self._metadata_url,
                type(exc).__name__,
                exc,
            )
            return
        self._keys = keys
        self._loaded_at = moment
        log.info("loaded %d %s signing keys", len(keys), self._label)


@dataclass(frozen=True, slots=True)
class _Issuer:
    """Where an allow-listed issuer's keys come from, and the tenant its ``tid`` must name."""

    keys: _SigningKeys
    tenant: str | None


def _parse_jwks(document: Mapping[str, Any]) -> dict[str, _SigningKey]:
    """Usable RS256 keys by ``kid``; unusable entries are skipped, an empty result is an error."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("JWKS document has no 'keys' list")
    keys: dict[str, _SigningKey] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or kid in keys:
            continue
        if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        try:
            public_key = jwt.PyJWK(dict(entry), algorithm=_ALGORITHM).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            log.warning("skipping unusable signing key %s: %s", _shown(kid), type(exc).__name__)
            continue
        endorsements = entry.get("endorsements")
        keys[kid] = _SigningKey(
            public_key=public_key,
            # Present but not a list of strings: endorse nothing (fail closed).
            endorsements=None
            if endorsements is None
            else frozenset(e for e in endorsements if isinstance(e, str))
            if isinstance(endorsements, list)
            else frozenset(),
        )
    if not keys:
        raise ValueError("JWKS document holds no usable RS256 signing key")
    return keys


def _http_fetch_json(
    *,
    connect_timeout_s: float = 5.0,
    read_timeout_s: float = 30.0,
    user_agent: str = "m365perf",
) -> FetchJson:
    """A plain GET returning a JSON object; metadata and keys are public, no token needed."""

    def fetch(url: str) -> Mapping[str, Any]:
        response = requests.get(
            url,
            timeout=(connect_timeout_s, read_timeout_s),
            headers={"Accept": "application/json", "User-Agent": user_agent},
        )
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError(f"{url} did not return a JSON object")
        return body

    return fetch


# --------------------------------------------------------------------------- helpers


def _bearer_token(authorization_header: str | None) -> str:
    if authorization_header is None or not authorization_header.strip():
        raise MissingToken("no Authorization header")
    scheme, _, rest = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingToken("Authorization header does not carry a Bearer token")
    token = rest.strip()
    if not token:
        raise MissingToken("Bearer token is empty")
    if any(ch.isspace() for ch in token):
        raise MalformedToken("Bearer token contains whitespace")
    return token


def _signing_key_id(token: str) -> str:
    """Check the JOSE header before any key is used: RS256 only, and a ``kid``."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise MalformedToken("bearer value is not a JWT") from None
    algorithm = header.get("alg")
    if algorithm != _ALGORITHM:
        raise UnsupportedAlgorithm(f"token algorithm {_shown(algorithm)} is not {_ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise UnknownKey("token names no signing key (kid)")
    return kid


def _claimed_issuer(token: str) -> object:
    """The unproven ``iss``: only to choose the key set; proven by the signature next."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise MalformedToken("bearer value is not a readable JWT") from None
    return unverified.get("iss")


def _signed_claims(token: str, key: _SigningKey) -> dict[str, Any]:
    """Verify the signature only; every claim is then checked by us, against our clock."""
    try:
        return jwt.decode(
            token,
            key=key.public_key,
            algorithms=[_ALGORITHM],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise BadSignature("token signature does not verify with the published key") from None
    except jwt.PyJWTError as exc:
        raise MalformedToken(f"token could not be read ({type(exc).__name__})") from None


def _matching_service_url(
    claims: Mapping[str, Any], activity: Mapping[str, Any], *, required: bool
) -> str:
    """The activity's serviceUrl, when the token's ``serviceurl`` claim vouches for it.

    Entra-issued tokens may not carry the claim; then the outbound host allow-list in
    :mod:`m365perf.m365.teams` still keeps the bot's token from going anywhere else.
    """
    claimed = claims.get(_SERVICE_URL_CLAIM)
    stated = _text(activity, "serviceUrl")
    if stated is None or not stated.rstrip("/"):
        raise BadActivity("activity has no serviceUrl")
    if claimed is None and not required:
        return stated.rstrip("/")
    if not isinstance(claimed, str) or not claimed.rstrip("/"):
        raise WrongServiceUrl(f"token carries no {_SERVICE_URL_CLAIM} claim")
    if claimed.rstrip("/") != stated.rstrip("/"):
        raise WrongServiceUrl(
            f"activity serviceUrl {_shown(stated)} is not the token's {_shown(claimed)}"
        )
    return stated.rstrip("/")


def _caller_object_id(sender: Mapping[str, Any], channel_id: str) -> str:
    raw = _text(sender, "aadObjectId")
    if raw is None and channel_id == _OUTLOOK_CHANNEL:
        raw = _text(sender, "id")
    if raw is None:
        raise UnknownCaller("the sender carries no Entra object id (from.aadObjectId)")
    try:
        parsed = uuid.UUID(raw)
    except ValueError:
        raise UnknownCaller(f"sender id {_shown(raw)} is not an Entra object id") from None
    if str(parsed) != raw.lower():
        raise UnknownCaller(f"sender id {_shown(raw)} is not an Entra object id")
    return str(parsed)


def _issuer_list(issuers: str | Sequence[str]) -> list[str]:
    parts = issuers.split(",") if isinstance(issuers, str) else list(issuers)
    return [part.strip() for part in parts if isinstance(part, str) and part.strip()]


def _text(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value if isinstance(value, str) and value else None


def _is_time(value: object) -> TypeGuard[float]:
    """A NumericDate: a finite number (``Infinity`` would make a token that never expires)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: object) -> str:
    """An attacker-supplied value, quoted and cut short, for an error message."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
