"""A council behind the real web app: a real engine, store and token verifier.

The Bot Framework's key endpoint is played in memory with an RSA key made here, so
tokens are minted and verified exactly as in production, only with our own key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from engine_support import Council
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm
from signin_support import STAFF_GROUP, offline_signin, sealed, session_cookie

from m365perf.store import AuditEvent, ConversationRef, OutboxMessage, Return
from m365perf.web.app import create_app
from m365perf.web.bot_auth import BotTokenVerifier
from m365perf.web.signin import SignIn

BOT_APP_ID = "0b8e4b5c-6a1d-4d8e-9f3a-2c7b1e5d9a40"
ISSUER = "https://api.botframework.com"
METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
JWKS_URL = "https://login.botframework.com/v1/.well-known/keys"
SERVICE_URL = "https://smba.trafficmanager.net/uk/"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"


class KeyDirectory:
    """Plays login.botframework.com: OpenID metadata and the published signing keys."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk.update(kid="key-1", use="sig", endorsements=["msteams", "outlook"])
        self.keys = [jwk]
        self.down = False

    def __call__(self, url: str) -> dict[str, Any]:
        if self.down:
            raise ConnectionError(f"cannot reach {url}")
        if url == METADATA_URL:
            return {"issuer": ISSUER, "jwks_uri": JWKS_URL}
        if url == JWKS_URL:
            return {"keys": [dict(k) for k in self.keys]}
        raise AssertionError(f"unexpected fetch of {url}")


@dataclass
class Site:
    """The running app and what it runs on."""

    council: Council
    client: TestClient
    key: rsa.RSAPrivateKey
    directory: KeyDirectory
    signin: SignIn

    def sign_in(self, user_id: str, name: str, *, staff: bool = False) -> str:
        """Sign ``user_id`` in on this client (a performance team member if ``staff``)."""
        cookie, session = session_cookie(
            self.signin, user_id, name, (STAFF_GROUP,) if staff else ()
        )
        self.client.cookies.set(cookie, sealed(self.signin, session))
        return session.csrf

    def token(self, key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        """A Bot Framework token for this bot, valid for an hour from the council's now."""
        at = self.council.now.timestamp()
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": BOT_APP_ID,
            "nbf": at - 60,
            "exp": at + 3600,
            "serviceurl": SERVICE_URL,
            **claims,
        }
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": "key-1"})

    def post(self, activity: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        return self.client.post("/api/messages", json=activity, headers=headers)

    def snapshot(
        self,
    ) -> tuple[list[Return], list[OutboxMessage], list[AuditEvent], list[ConversationRef | None]]:
        """Everything a click could change, to compare before and after."""
        with self.council.store.transaction() as tx:
            refs = [tx.find_conversation_ref(p.id) for p in tx.list_people()]
            return tx.list_returns(), tx.list_outbox(), tx.list_audit(), refs


def make_site(council: Council, key: rsa.RSAPrivateKey, **options: Any) -> Site:
    """The app over ``council``; ``options`` go to ``create_app`` (``metrics_token=…``)."""
    directory = KeyDirectory(key)
    verifier = BotTokenVerifier(
        openid_metadata_url=METADATA_URL,
        issuers=ISSUER,
        bot_app_id=BOT_APP_ID,
        tenant_id=TENANT_ID,
        now=lambda: council.now.timestamp(),
        fetch_json=directory,
    )
    signin = offline_signin()
    app = create_app(council.engine, verifier, clock=lambda: council.now, signin=signin, **options)
    return Site(council, TestClient(app), key, directory, signin)


def click(
    user_id: str,
    verb: str,
    data: dict[str, Any],
    *,
    channel: str = "msteams",
    conversation_type: str = "personal",
) -> dict[str, Any]:
    """An ``adaptiveCard/action`` invoke as Teams sends it: inputs merged into the data."""
    return {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "id": "f:1234",
        "channelId": channel,
        "serviceUrl": SERVICE_URL,
        "from": {"id": "29:1a2b3c", "aadObjectId": user_id, "name": "Someone"},
        "recipient": {"id": f"28:{BOT_APP_ID}", "name": "Performance returns"},
        "conversation": {
            "id": f"a:1-{user_id}",
            "conversationType": conversation_type,
            "tenantId": TENANT_ID,
        },
        "channelData": {"tenant": {"id": TENANT_ID}},
        "value": {
            "action": {"type": "Action.Execute", "verb": verb, "data": data},
            "trigger": "manual",
        },
    }
