"""E-mail (actionable messages) and Teams (Bot Connector) clients."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
import responses
from m365_support import FakeClock, sample_card, validate_card

from m365perf.m365.auth import StaticToken
from m365perf.m365.errors import M365Error
from m365perf.m365.http import ApiClient, Budgets, HttpCore, Limits, RetryPolicy, new_session
from m365perf.m365.mail import MailClient, actionable_html
from m365perf.m365.teams import BotConnectorClient, card_activity

GRAPH = "https://graph.test/v1.0"
SERVICE_URL = "https://smba.trafficmanager.net/uk/"
ORIGINATOR = "6c7f1b8e-0e2f-4b5e-9a55-1f3e2b7c9d10"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


class _Parts(HTMLParser):
    """Collects the card script (and where it sits) and the body text of an e-mail."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.scripts: list[tuple[str, list[str], str]] = []
        self.body_text: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("meta", "br", "link", "img", "hr", "input"):  # void elements
            self.stack.append(tag)
        self._attrs = dict(attrs)
        if tag == "a":
            self.links.append(self._attrs.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "script":
            self.scripts.append((self._attrs.get("type") or "", list(self.stack), data))
        elif "body" in self.stack:
            self.body_text.append(data)


def test_actionable_html_puts_the_card_in_head_with_originator_and_a_plain_summary():
    card = sample_card("Returns due </script> for Q2")
    validate_card(card)

    page = actionable_html(
        card,
        originator=ORIGINATOR,
        subject="Your KPI returns for 2026/27 Q2",
        summary="You have 3 indicators to return by 14 October 2026.\n\nMissed bins & fly-tipping.",
        link="https://kpi.council.gov.uk/r/abc123",
    )

    parts = _Parts()
    parts.feed(page)
    [(script_type, stack, text)] = parts.scripts
    assert script_type == "application/adaptivecard+json"
    assert stack == ["html", "head", "script"]
    embedded = json.loads(text)
    assert embedded["originator"] == ORIGINATOR
    assert embedded["body"][0]["text"] == "Returns due </script> for Q2"
    validate_card(embedded)
    body = " ".join(parts.body_text)
    assert "You have 3 indicators to return by 14 October 2026." in body
    assert "Missed bins & fly-tipping." in body
    assert parts.links == ["https://kpi.council.gov.uk/r/abc123"]


def test_actionable_html_without_originator_is_refused():
    with pytest.raises(ValueError, match="originator"):
        actionable_html(sample_card(), originator="", subject="s", summary="x", link="https://a/b")


def test_send_card_posts_send_mail_from_the_service_mailbox(
    clock: FakeClock, mocked: responses.RequestsMock
):
    mocked.post(f"{GRAPH}/users/kpi@council.gov.uk/sendMail", status=202)
    core = HttpCore(new_session("ua"), clock=clock)
    budgets = Budgets(Limits(), clock)
    api = ApiClient(core, GRAPH, tokens=StaticToken("t"), budget=budgets.graph, retry=RetryPolicy())
    mail = MailClient(api, budgets, originator=ORIGINATOR)

    mail.send_card(
        "kpi@council.gov.uk",
        ["jo@council.gov.uk"],
        "Your KPI returns",
        sample_card(),
        summary="Three indicators due.",
        link="https://kpi.council.gov.uk/r/1",
    )

    sent = json.loads(mocked.calls[0].request.body)
    message = sent["message"]
    assert sent["saveToSentItems"] is True
    assert message["subject"] == "Your KPI returns"
    assert message["body"]["contentType"] == "HTML"
    assert message["toRecipients"] == [{"emailAddress": {"address": "jo@council.gov.uk"}}]
    assert f'"originator": "{ORIGINATOR}"' in message["body"]["content"]


def test_send_mail_refuses_bad_input(clock: FakeClock):
    budgets = Budgets(Limits(), clock)
    api = ApiClient(
        HttpCore(new_session("ua"), clock=clock),
        GRAPH,
        tokens=None,
        budget=budgets.graph,
        retry=RetryPolicy(),
    )
    mail = MailClient(api, budgets)
    with pytest.raises(ValueError, match="recipient"):
        mail.send_mail("kpi@council.gov.uk", [], "s", "<p>x</p>")
    with pytest.raises(ValueError, match="x-"):
        mail.send_mail("kpi@council.gov.uk", ["a@b.c"], "s", "<p/>", internet_headers={"Ref": "1"})


def make_bot(clock: FakeClock, *, rate: float = 30.0) -> BotConnectorClient:
    budgets = Budgets(Limits(bot_sends_per_second=rate), clock)
    core = HttpCore(new_session("ua"), clock=clock, rng=random.Random(3))
    return BotConnectorClient(
        core,
        tokens=StaticToken("bot-token"),
        budget=budgets.bot,
        retry=RetryPolicy(),
        extra_hosts=["127.0.0.1"],
    )


def test_create_conversation_then_send_and_update_a_card(
    clock: FakeClock, mocked: responses.RequestsMock
):
    conversation = "a:1Xyz-AbC_123"
    mocked.post(f"{SERVICE_URL}v3/conversations", status=201, json={"id": conversation})
    activities = f"{SERVICE_URL}v3/conversations/a%3A1Xyz-AbC_123/activities"
    mocked.post(activities, status=201, json={"id": "1700000000001"})
    mocked.put(f"{activities}/1700000000001", json={"id": "1700000000001"})
    bot = make_bot(clock)
    card = sample_card()
    validate_card(card)

    conversation_id = bot.create_conversation(SERVICE_URL, "bot-app-id", "tenant-1", "29:user")
    activity_id = bot.send_activity(SERVICE_URL, conversation_id, card_activity(card))
    done = sample_card("Thank you: returned")
    validate_card(done)
    bot.update_activity(SERVICE_URL, conversation_id, activity_id, card_activity(done))

    created = json.loads(mocked.calls[0].request.body)
    assert created == {
        "bot": {"id": "28:bot-app-id"},
        "members": [{"id": "29:user"}],
        "channelData": {"tenant": {"id": "tenant-1"}},
        "isGroup": False,
        "tenantId": "tenant-1",
    }
    sent = json.loads(mocked.calls[1].request.body)
    attachment = sent["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    validate_card(attachment["content"])
    assert mocked.calls[1].request.headers["Authorization"] == "Bearer bot-token"
    updated = json.loads(mocked.calls[2].request.body)
    assert updated["id"] == activity_id
    assert updated["attachments"][0]["content"]["body"][0]["text"] == "Thank you: returned"


def test_bot_token_is_never_sent_to_an_unknown_service_url(
    clock: FakeClock, mocked: responses.RequestsMock
):
    bot = make_bot(clock)
    with pytest.raises(M365Error, match="refusing"):
        bot.send_activity(
            "https://smba.trafficmanager.net.evil.example/", "a:1", {"type": "message"}
        )
    with pytest.raises(M365Error, match="refusing"):
        bot.send_activity("http://smba.trafficmanager.net/uk/", "a:1", {"type": "message"})
    assert len(mocked.calls) == 0


def test_bot_retries_412_and_502_as_teams_asks(clock: FakeClock, mocked: responses.RequestsMock):
    url = "http://127.0.0.1:9000/v3/conversations/c1/activities"
    mocked.post(url, status=412)
    mocked.post(url, status=502)
    mocked.post(url, json={"id": "9"})

    assert make_bot(clock).send_activity("http://127.0.0.1:9000", "c1", {"type": "message"}) == "9"
    assert len(mocked.calls) == 3


def test_bot_sends_are_paced_per_second(clock: FakeClock, mocked: responses.RequestsMock):
    url = "http://127.0.0.1:9000/v3/conversations/c1/activities"
    sent_at: list[float] = []

    def record(_request: object) -> tuple[int, dict[str, str], str]:
        sent_at.append(clock.monotonic())
        return 200, {}, '{"id": "1"}'

    mocked.add_callback(responses.POST, url, callback=record)
    bot = make_bot(clock, rate=2)
    for _ in range(5):
        bot.send_activity("http://127.0.0.1:9000", "c1", {"type": "message"})

    start = sent_at[0]
    # Two a second, the burst less a quarter second's worth (arrival jitter): 1.5 at once.
    assert [round(t - start, 6) for t in sent_at] == [0, 0.25, 0.75, 1.25, 1.75]


def test_card_activity_rejects_something_that_is_not_a_card():
    with pytest.raises(ValueError, match="AdaptiveCard"):
        card_activity({"type": "MessageCard"})


def test_html_escapes_summary_markup():
    page = actionable_html(
        sample_card(),
        originator=ORIGINATOR,
        subject="s",
        summary="<b>not bold</b>",
        link="https://kpi.council.gov.uk/r/1",
    )
    body = page.split("<body>", 1)[1]
    assert "&lt;b&gt;not bold&lt;/b&gt;" in body
    assert not re.search(r"<b>", body)


def test_actionable_html_without_a_link_has_the_summary_and_no_anchor():
    page = actionable_html(
        sample_card(), originator="orig-1", subject="Approve", summary="CP001 46.5%", link=""
    )
    assert "<p>CP001 46.5%</p>" in page
    assert "<a " not in page


def test_actionable_html_refuses_a_link_that_is_not_http():
    with pytest.raises(ValueError, match="http"):
        actionable_html(sample_card(), originator="o", subject="s", summary="x", link="file:///x")


def test_the_link_is_a_button_and_outlook_hides_the_body_under_the_card():
    link = "https://kpi.council.gov.uk/returns/" + "x" * 150
    page = actionable_html(
        sample_card(), originator=ORIGINATOR, subject="s", summary="Due Friday.", link=link
    )
    parts = _Parts()
    parts.feed(page)
    [(_, _, text)] = parts.scripts
    assert json.loads(text)["hideOriginalBody"] is True
    assert parts.links == [link]
    body = " ".join(parts.body_text)
    assert "Open in your browser" in body
    assert link not in body  # the address is in href only, not 170 characters of text
    assert 'style="display:inline-block' in page
