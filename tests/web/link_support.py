"""A council whose engine signs web-form links, the app serving the form, and a form reader.

The council is the engine tests' council (tests/engine/engine_support.py), opened with
an engine configured with a link signer, so its request cards carry real signed links.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from engine_support import COLUMNS, MONTHLY, PEOPLE, ROWS, START, Council
from fastapi.testclient import TestClient

from m365perf.domain.periods import Period
from m365perf.engine import Engine, EngineConfig
from m365perf.flows import load_flow
from m365perf.flows.model import ImprovementActions
from m365perf.plan.register import read_indicators
from m365perf.store import AuditEvent, OutboxMessage, PersonSpec, Return
from m365perf.store.testing import memory_store
from m365perf.web.app import create_app
from m365perf.web.bot_auth import BotTokenVerifier
from m365perf.web.links import LinkSigner

SECRET = "a-test-key-for-web-form-links-0123456789"
BASE_URL = "https://performance.contoso.gov.uk"


def make_linked_council(
    links: LinkSigner | None,
    *,
    rows: list[list[str]] | None = None,
    history: dict[str, list[tuple[str, float]]] | None = None,
    start: datetime = START,
    actions: dict[str, Any] | None = None,
    cards: str | None = None,
    approvals_base_url: str | None = None,
) -> Council:
    """The engine tests' council and its October cycle, with links signed by ``links``.

    ``cards`` overrides the flow's ``approval.cards`` (its own: one digest per approver);
    ``approvals_base_url`` turns on the approvals page's link (web sign-in).
    """
    store = memory_store()
    flow = load_flow(MONTHLY)
    if actions is not None:
        flow = flow.model_copy(update={"actions": ImprovementActions.model_validate(actions)})
    if cards is not None:
        approval = flow.approval.model_copy(update={"cards": cards})
        flow = flow.model_copy(update={"approval": approval})
    config = EngineConfig(
        public_base_url=BASE_URL, return_links=links, approvals_base_url=approvals_base_url
    )
    engine = Engine(store, [flow], config)
    with store.transaction() as tx:
        tx.upsert_people(
            [PersonSpec(id=i, name=n, email=e, line_manager_id=m) for i, n, e, m in PEOPLE],
            now=start,
        )
        for key, points in (history or {}).items():
            for label, value in points:
                past = Period.parse(label)
                tx.put_history(
                    key,
                    frequency=past.frequency,
                    period=past.label,
                    period_start=past.start,
                    value=value,
                    source="test",
                    now=start,
                )
    register = [
        dict(zip(COLUMNS, row + [""] * (len(COLUMNS) - len(row)), strict=True))
        for row in (rows or ROWS)
    ]
    indicators, problems = read_indicators(flow, register)
    engine.open_cycle(flow.id, Period.parse("2026-10"), indicators, problems, now=start)
    return Council(engine, store, start)


def make_app(council: Council, links: LinkSigner | None) -> Any:
    """The real web app over the council's engine (no bot clicks are made here)."""
    verifier = BotTokenVerifier(
        openid_metadata_url="https://login.botframework.com/v1/.well-known/openidconfiguration",
        issuers="https://api.botframework.com",
        bot_app_id="0b8e4b5c-6a1d-4d8e-9f3a-2c7b1e5d9a40",
        tenant_id="7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09",
        fetch_json=_no_fetch,
    )
    return create_app(council.engine, verifier, clock=lambda: council.now, links=links)


def _no_fetch(url: str) -> dict[str, Any]:
    raise AssertionError(f"the returns form must not fetch {url}")


def make_client(council: Council, links: LinkSigner | None) -> TestClient:
    return TestClient(make_app(council, links))


def newest_link(council: Council, email: str) -> str:
    """The link in the newest card sent to ``email``, as the dispatcher signs it when
    it sends the e-mail (the outbox row names the form, never the link)."""
    return form_link(council, council.cards_to(email)[-1])


def form_link(council: Council, payload: dict[str, Any]) -> str:
    """The web-form link the dispatcher makes for one card's outbox payload, now."""
    signer = council.engine.ctx.config.return_links
    assert isinstance(signer, LinkSigner), "this council signs no links"
    form = payload["return_form"]
    assert payload["link"] == "" and form is not None, payload
    return signer.return_url(BASE_URL, form["cycle_id"], form["owner_id"], now=council.now)


def path_of(link: str) -> str:
    assert link.startswith(BASE_URL + "/returns/"), link
    return urlsplit(link).path


def snapshot(council: Council) -> tuple[list[Return], list[OutboxMessage], list[AuditEvent]]:
    """Everything a submit could change, to compare before and after."""
    with council.store.transaction() as tx:
        return tx.list_returns(), tx.list_outbox(), tx.list_audit()


def returns_by_key(council: Council) -> dict[str, Return]:
    with council.store.transaction() as tx:
        return {r.indicator_key: r for r in tx.list_returns(cycle_id=1)}


@dataclass
class Control:
    tag: str
    attrs: dict[str, str]
    text: str = ""


class FormPage(HTMLParser):
    """A page read the way a browser reads a form: its controls, labels and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.controls: list[Control] = []
        self.labels: dict[str, str] = {}
        self.texts: list[str] = []
        self.forms = 0
        self._open: Control | None = None
        self._label_for: str | None = None
        self._hidden_text = False

    @classmethod
    def read(cls, html: str) -> FormPage:
        page = cls()
        page.feed(html)
        page.close()
        return page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in ("style", "title"):
            self._hidden_text = True
        elif tag == "form":
            self.forms += 1
        elif tag == "input":
            self.controls.append(Control(tag, values))
        elif tag == "textarea":
            self._open = Control(tag, values)
            self.controls.append(self._open)
        elif tag == "label":
            self._label_for = values.get("for", "")
            self.labels[self._label_for] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title"):
            self._hidden_text = False
        elif tag == "textarea":
            self._open = None
        elif tag == "label":
            self._label_for = None

    def handle_data(self, data: str) -> None:
        if self._hidden_text:
            return
        self.texts.append(data)
        if self._open is not None:
            self._open.text += data
        if self._label_for is not None:
            self.labels[self._label_for] += data

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())

    def control(self, name: str) -> Control:
        return next(c for c in self.controls if c.attrs.get("name") == name)

    def has(self, name: str) -> bool:
        return any(c.attrs.get("name") == name for c in self.controls)

    def label_of(self, name: str) -> str:
        return self.labels.get(self.control(name).attrs.get("id", ""), "").strip()

    def value(self, name: str) -> str:
        found = self.control(name)
        return found.text if found.tag == "textarea" else found.attrs.get("value", "")

    def submission(self, **typed: str) -> dict[str, str]:
        """What a browser posts: every field as drawn (ticked boxes only), then ``typed``."""
        fields: dict[str, str] = {}
        for c in self.controls:
            name = c.attrs.get("name")
            if not name:
                continue
            if c.attrs.get("type") == "checkbox":
                if "checked" in c.attrs:
                    fields[name] = c.attrs.get("value", "on")
            else:
                fields[name] = c.text if c.tag == "textarea" else c.attrs.get("value", "")
        fields.update(typed)
        return fields
