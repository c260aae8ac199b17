"""A dispatcher wired to a real sandbox, and a miniature engine that records what it hears.

``MiniEngine.on_sent`` does the two things the real engine does with a card's outcome:
remember where the card went (for ``update_card``) and store a newly opened Teams
conversation. Rows are queued as raw payloads, the way they are stored, so the tests
also pin the stored shape of each message.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from m365perf.dispatch import Dispatcher
from m365perf.m365 import Tokens, clients_from_settings
from m365perf.m365.auth import StaticToken
from m365perf.m365.factory import M365
from m365perf.messages import (
    CardSent,
    CardUpdated,
    Outcome,
    RequestCardId,
    SendCard,
    UpdateCard,
    WriteBack,
    WrittenBack,
    card_fingerprint,
    parse_message,
)
from m365perf.messages.ids import ROUND_OPEN
from m365perf.sandbox.testing import RunningSandbox
from m365perf.settings import Settings, load_settings
from m365perf.store import OutboxMessage, OutboxStatus, Store
from m365perf.store.testing import memory_store

GRAPH = "https://graph.microsoft.com/.default"
POWERBI = "https://analysis.windows.net/powerbi/api/.default"
BOT = "https://api.botframework.com/.default"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ORIGINATOR = "5f1b2c3d-0000-4000-8000-000000000abc"
_CYCLES = itertools.count(1)


def new_card_id(user_id: str = "9d2f0c1e-0000-4000-8000-000000000def") -> str:
    """A card id no other test uses (an opening request of a cycle of its own)."""
    return str(RequestCardId(next(_CYCLES), user_id, ROUND_OPEN))


def card(text: str) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
    }


@dataclass(frozen=True)
class Delivery:
    channel: str
    conversation_id: str | None
    activity_id: str | None
    service_url: str | None
    card_hash: str | None = None


class Bench:
    """One sandbox seen from the test's side: tokens, ids, the admin endpoints."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        self.base = sandbox.base_url
        self.http = requests.Session()
        self.tokens = Tokens(
            graph=StaticToken(sandbox.token(GRAPH)),
            powerbi=StaticToken(sandbox.token(POWERBI)),
            bot=StaticToken(sandbox.token(BOT)),
        )
        self.health: dict[str, Any] = self.admin("GET", "/health").json()
        self.users: list[dict[str, Any]] = self.admin("GET", "/users").json()["value"]

    @property
    def site(self) -> str:
        config = self.sandbox.config
        return f"{config.sharepoint_host}:{config.site_path}"

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.base}/_sandbox{path}", timeout=30, **kwargs)

    def user(self, n: int) -> dict[str, Any]:
        """A seeded user (the n-th, so tests can keep to their own people)."""
        return self.users[n]

    def last_request_id(self) -> int:
        rows = self.admin("GET", "/requests").json()["value"]
        return max((r["id"] for r in rows), default=0)

    def requests_since(self, after: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.admin("GET", "/requests", params={"after": after}).json()[
            "value"
        ]
        return rows

    def chat_activity(self, user_id: str, activity_id: str) -> dict[str, Any]:
        chats = self.admin("GET", f"/chats/{user_id}").json()["value"]
        for chat in chats:
            for activity in chat["activities"]:
                if activity["id"] == activity_id:
                    found: dict[str, Any] = activity
                    return found
        raise AssertionError(f"no activity {activity_id} in {user_id}'s chats")

    def inbox(self, address: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.admin("GET", f"/mailboxes/{address}").json()["value"]
        return rows

    def graph(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens.graph.token()}"}
        return self.http.request(
            method, f"{self.base}/v1.0{path}", headers=headers, timeout=30, **kwargs
        )

    def new_results_list(self, *, indexed: bool = True) -> str:
        """A fresh list shaped like the results list, so a test sees only its own items."""
        title = f"Results {uuid.uuid4().hex[:8]}"
        columns = [
            {"name": "IndicatorId", "text": {}, "indexed": indexed},
            {"name": "Period", "text": {}, "indexed": indexed},
            {"name": "Value", "number": {}},
            {"name": "Version", "number": {}},
        ]
        response = self.graph(
            "POST",
            f"/sites/{self.health['site_id']}/lists",
            json={"displayName": title, "columns": columns},
        )
        response.raise_for_status()
        return title

    def list_items(self, title: str) -> list[dict[str, Any]]:
        lists = self.graph("GET", f"/sites/{self.health['site_id']}/lists").json()["value"]
        list_id = next(lst["id"] for lst in lists if lst["displayName"] == title)
        response = self.graph(
            "GET", f"/sites/{self.health['site_id']}/lists/{list_id}/items?expand=fields"
        )
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["value"]
        return items


class LatchedSession(requests.Session):
    """Holds each request whose URL contains ``marker`` until ``parties`` are waiting at once.

    A dispatcher that sent those requests one after another would never fill the
    barrier: it breaks after ``timeout_s`` and the request fails.
    """

    def __init__(self, marker: str, parties: int, timeout_s: float = 15.0) -> None:
        super().__init__()
        adapter = HTTPAdapter(pool_connections=10, pool_maxsize=20, max_retries=0)
        self.mount("http://", adapter)
        self.marker = marker
        self.barrier = threading.Barrier(parties, timeout=timeout_s)

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if self.marker in str(url):
            self.barrier.wait()
        return super().request(method, url, *args, **kwargs)


class MiniEngine:
    """A store, the clients and a dispatcher, with an ``on_sent`` that acts like the engine."""

    def __init__(
        self,
        bench: Bench,
        *,
        store: Store | None = None,
        session: requests.Session | None = None,
        find_delivery: Any = None,
        remember_items: bool = False,
        **options: Any,
    ) -> None:
        """``remember_items``: record each written row's item, as the engine does."""
        self.bench = bench
        self.remember_items = remember_items
        self.now = NOW
        self.store = store or memory_store()
        overrides: dict[str, Any] = {
            "actionable_originator": ORIGINATOR,
            **bench.sandbox.settings_overrides(),
        }
        self.settings: Settings = load_settings(**overrides)
        self.clients: M365 = clients_from_settings(
            self.settings, tokens=bench.tokens, session=session
        )
        self.sent: dict[int, Outcome] = {}
        self.deliveries: dict[str, Delivery] = {}
        self.dispatcher = Dispatcher(
            self.store,
            self.clients,
            self.settings,
            on_sent=self.on_sent,
            find_delivery=find_delivery or self.deliveries.get,
            worker_id="test-worker",
            clock=lambda: self.now,
            **options,
        )

    def on_sent(self, row: OutboxMessage, outcome: Outcome, now: datetime) -> None:
        assert row.id is not None
        self.sent[row.id] = outcome
        message = parse_message(row.kind, row.payload)
        if isinstance(message, WriteBack) and isinstance(outcome, WrittenBack):
            self._remember_item(message, outcome, now)
        if isinstance(message, UpdateCard) and isinstance(outcome, CardUpdated):
            shown = self.deliveries.get(str(message.card_id))
            if shown is not None and outcome.replaced:
                self.deliveries[str(message.card_id)] = replace(
                    shown, card_hash=card_fingerprint(message.card)
                )
        if not isinstance(message, SendCard):
            return
        assert isinstance(outcome, CardSent), f"a card's outcome is CardSent, not {outcome!r}"
        self.deliveries[str(message.card_id)] = Delivery(
            message.channel,
            outcome.conversation_id,
            outcome.activity_id,
            outcome.service_url,
            card_fingerprint(message.card),
        )
        if message.channel == "teams":
            assert outcome.conversation_id and outcome.service_url
            with self.store.transaction() as tx:
                tx.put_conversation_ref(
                    message.user.id,
                    conversation_id=outcome.conversation_id,
                    service_url=outcome.service_url,
                    now=now,
                )

    def _remember_item(self, message: WriteBack, outcome: WrittenBack, now: datetime) -> None:
        """As the engine does: where the key lives, and the version written there."""
        if self.remember_items and outcome.item_id:
            with self.store.transaction() as tx:
                tx.put_writeback_item(
                    message.site,
                    message.list_title,
                    [str(message.fields[k]) for k in message.key_fields],
                    item_id=outcome.item_id,
                    version=None if outcome.skipped_older else float(message.version),
                    now=now,
                )

    def enqueue(self, kind: str, budget: str, payload: dict[str, Any]) -> int:
        with self.store.transaction() as tx:
            message, _ = tx.enqueue(
                kind, budget=budget, payload=payload, dedup_key=uuid.uuid4().hex, now=self.now
            )
        assert message.id is not None
        return message.id

    def written(self, message_id: int) -> WrittenBack:
        """The outcome reported for a write-back row."""
        outcome = self.sent[message_id]
        assert isinstance(outcome, WrittenBack), f"not a write-back outcome: {outcome!r}"
        return outcome

    def row(self, message_id: int) -> OutboxMessage:
        with self.store.transaction() as tx:
            rows = [m for m in tx.list_outbox() if m.id == message_id]
        assert rows, f"outbox row {message_id} has gone"
        return rows[0]

    def status(self, message_id: int) -> OutboxStatus:
        return self.row(message_id).status

    # payload builders, as docs/outbox.md defines them

    def card_payload(self, user: dict[str, Any], channel: str, text: str) -> dict[str, Any]:
        return {
            "card_id": new_card_id(user["id"]),
            "channel": channel,
            "user": {"id": user["id"], "name": user["display_name"], "email": user["mail"]},
            "card": card(text),
            "subject": f"Performance return: {text}",
            "summary": f"Please send your figure for {text}.",
            "link": "https://perf.example.gov.uk/approvals/1",
            "subject_type": "return",
            "subject_id": 1,
        }

    def send_card(self, user: dict[str, Any], channel: str, text: str) -> tuple[int, str]:
        payload = self.card_payload(user, channel, text)
        budget = "bot" if channel == "teams" else f"mailbox:{self.settings.service_mailbox}"
        return self.enqueue("send_card", budget, payload), payload["card_id"]

    def write_back(
        self, title: str, indicator: str, period: str, value: float, version: int
    ) -> int:
        return self.enqueue(
            "write_back",
            "sharepoint",
            {
                "site": self.bench.site,
                "list": title,
                "key_fields": ["IndicatorId", "Period"],
                "fields": {
                    "IndicatorId": indicator,
                    "Period": period,
                    "Value": value,
                    "Version": version,
                },
            },
        )

    def send_mail(self, to: str, subject: str) -> int:
        return self.enqueue(
            "send_mail",
            f"mailbox:{self.settings.service_mailbox}",
            {"to": [to], "cc": [], "subject": subject, "html": "<p>Hello</p>", "text": "Hello"},
        )
