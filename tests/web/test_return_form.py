"""The owners' web form behind the signed link in their e-mail, over a real engine and store."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from engine_support import ROWS, Council, monthly
from fastapi.testclient import TestClient
from link_support import (
    SECRET,
    FormPage,
    form_link,
    make_client,
    make_linked_council,
    newest_link,
    path_of,
    returns_by_key,
    snapshot,
)

from m365perf.cards import IndicatorRequest, OwnerRequestView, SentBack
from m365perf.cards.summary import BROWSER_LINE
from m365perf.domain.kinds import Unit
from m365perf.messages import CardId, RejectionCardId, RequestCardId
from m365perf.store import ReturnStatus
from m365perf.web.links import LinkSigner
from m365perf.web.return_form import MAX_FORM_BYTES
from m365perf.web.return_pages import render_form

ANN = "ann.lee@contoso.gov.uk"
DAN_ID = "11111111-0000-0000-0000-000000000004"
HOSTILE = '<script>alert(1)</script> & "quoted"'


@pytest.fixture
def links() -> LinkSigner:
    return LinkSigner(SECRET, lifetime=timedelta(days=30))


@pytest.fixture
def council(links: LinkSigner) -> Council:
    return make_linked_council(links)


@pytest.fixture
def client(council: Council, links: LinkSigner) -> TestClient:
    return make_client(council, links)


def _open(client: TestClient, council: Council, email: str = ANN) -> tuple[str, FormPage]:
    path = path_of(newest_link(council, email))
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return path, FormPage.read(answer.text)


def _post(client: TestClient, path: str, fields: dict[str, str]) -> tuple[int, FormPage]:
    answer = client.post(path, data=fields)
    return answer.status_code, FormPage.read(answer.text)


def test_request_e_mail_carries_a_signed_link_to_the_owners_form(council: Council) -> None:
    (request,) = council.cards_to(ANN)
    link = form_link(council, request)
    assert link.startswith("https://performance.contoso.gov.uk/returns/")
    assert request["summary"].rstrip().endswith(BROWSER_LINE)  # the link is a button
    assert "/returns/" not in json.dumps(request)  # named, never stored signed
    dan = form_link(council, council.cards_to("dan.fox@contoso.gov.uk")[0])
    assert dan != link  # one link per owner


def test_the_form_shows_the_owners_indicators_as_the_card_does(
    client: TestClient, council: Council
) -> None:
    _, page = _open(client, council)
    text = page.text
    assert "Monthly corporate KPIs: 2026-10" in text and "Hello Ann Lee" in text
    assert "Household waste recycled" in text and "Days to process new benefit claims" in text
    assert "Fly-tips reported" not in text  # Dan's, not Ann's
    assert "Percentage (%)" in text and "45% or higher" in text and "20 days or lower" in text
    assert "2025-10 (same period last year)" in text
    assert page.forms == 1
    for name, label in [
        ("value__CP001", "Value for 2026-10"),
        ("comment__CP001", "Commentary"),
        ("nodata__CP001", "No data this period"),
        ("nodatareason__CP001", "Reason for no data"),
        ("value__CP002", "Value for 2026-10"),
    ]:
        assert page.label_of(name) == label
    visible = [c for c in page.controls if c.attrs.get("type") != "hidden"]
    assert all(page.label_of(c.attrs["name"]) for c in visible)  # a label for every input
    assert page.value("version__CP001") == "1"
    assert not page.has("confirm__CP001")  # only asked for after an outlier


def test_the_page_may_not_leak_its_link_be_cached_or_be_framed(
    client: TestClient, council: Council
) -> None:
    answer = client.get(path_of(newest_link(council, ANN)))
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "script-src" not in answer.headers["content-security-policy"]  # default 'none'


def test_register_text_is_shown_as_text_never_as_markup(links: LinkSigner) -> None:
    rows = [list(r) for r in ROWS]
    rows[2][1] = HOSTILE  # Dan's indicator name
    council = make_linked_council(links, rows=rows)
    answer = make_client(council, links).get(
        path_of(newest_link(council, "dan.fox@contoso.gov.uk"))
    )
    assert "<script>alert(1)</script>" not in answer.text
    assert HOSTILE in FormPage.read(answer.text).text


def test_an_error_is_shown_by_its_input_with_what_was_typed_and_nothing_is_saved(
    client: TestClient, council: Council
) -> None:
    path, page = _open(client, council)
    status, again = _post(
        client,
        path,
        page.submission(value__CP001="forty", comment__CP001="Typed <b>carefully</b>"),
    )
    assert status == 200
    assert "1 indicator needs your attention" in again.text
    assert "“forty” is not a number" in again.text
    assert again.value("value__CP001") == "forty"
    assert again.value("comment__CP001") == "Typed <b>carefully</b>"
    assert again.control("value__CP001").attrs.get("aria-invalid") == "true"
    assert returns_by_key(council)["CP001"].status is ReturnStatus.AWAITING


def test_an_empty_submit_on_the_form_says_what_is_missing(
    client: TestClient, council: Council
) -> None:
    path, page = _open(client, council)
    status, again = _post(client, path, page.submission())
    assert status == 200
    assert "Nothing was submitted: the boxes were empty." in again.text
    assert returns_by_key(council)["CP001"].status is ReturnStatus.AWAITING


def test_red_without_commentary_keeps_the_good_figure_and_asks_for_the_rest(
    client: TestClient, council: Council
) -> None:
    path, page = _open(client, council)
    status, again = _post(client, path, page.submission(value__CP001="46", value__CP002="31"))
    assert status == 200 and "commentary is required" in again.text
    returns = returns_by_key(council)
    assert returns["CP001"].status is ReturnStatus.RETURNED  # partial returns are kept
    assert returns["CP002"].status is ReturnStatus.AWAITING
    assert "Returned: 46% · Green · Awaiting approval by Bob Ray" in again.text
    assert not again.has("value__CP001")  # a receipt line now, not inputs
    assert again.value("value__CP002") == "31"


def test_a_valid_return_is_received_and_goes_to_the_approver(
    client: TestClient, council: Council
) -> None:
    path, page = _open(client, council)
    status, receipt = _post(
        client,
        path,
        page.submission(
            value__CP001="46.5",
            comment__CP001="Garden waste up after a wet October",
            nodata__CP002="true",
            nodatareason__CP002="System migration: no October extract",
        ),
    )
    assert status == 200
    assert "Thank you, Ann Lee. 2 returns were received." in receipt.text
    assert "no data this period (System migration: no October extract)" in receipt.text
    returns = returns_by_key(council)
    assert returns["CP001"].status is ReturnStatus.RETURNED
    assert returns["CP001"].value == 46.5
    assert returns["CP001"].commentary == "Garden waste up after a wet October"
    assert returns["CP001"].submitted_by == "11111111-0000-0000-0000-000000000001"
    assert returns["CP002"].no_data_reason == "System migration: no October extract"
    # both returns reach Bob on one digest, once its debounce window has passed
    assert council.cards_to("bob.ray@contoso.gov.uk") == []
    council.engine.fire_due_timers(worker="test", now=council.tick(minutes=2))
    approvals = council.cards_to("bob.ray@contoso.gov.uk")
    assert [a["card_id"].split("-")[0] for a in approvals] == ["digest"]
    assert "2 items wait for your approval" in approvals[0]["summary"]
    # this council has no web sign-in set up: no link to the approvals page is sent
    assert all(a["link"] == "" and "Open in your browser" not in a["summary"] for a in approvals)


def test_an_outlier_asks_for_confirmation_and_the_ticked_box_returns_it(links: LinkSigner) -> None:
    history = {"CP001": monthly("2025-04", [44, 46, 45, 47, 44, 45, 46, 45, 44, 46, 45, 47, 46])}
    council = make_linked_council(links, history=history)
    client = make_client(council, links)
    path, page = _open(client, council)
    _, again = _post(client, path, page.submission(value__CP001="95"))
    assert again.label_of("confirm__CP001") == "I confirm this value is correct"
    assert returns_by_key(council)["CP001"].status is ReturnStatus.AWAITING
    _, receipt = _post(client, path, again.submission(confirm__CP001="true"))
    ret = returns_by_key(council)["CP001"]
    assert ret.status is ReturnStatus.RETURNED and ret.outlier_confirmed
    assert "Returned: 95%" in receipt.text


def test_an_out_of_date_page_changes_nothing_and_shows_how_things_stand(
    client: TestClient, council: Council
) -> None:
    path, page = _open(client, council)
    _post(client, path, page.submission(value__CP001="46"))
    before = snapshot(council)
    status, now = _post(client, path, page.submission(value__CP001="12"))  # the old page
    assert status == 200
    assert snapshot(council) == before
    assert "Household waste recycled changed after you opened this page" in now.text
    assert "Returned: 46%" in now.text and not now.has("value__CP001")
    assert now.has("value__CP002")  # still due


def test_the_rejection_sent_back_to_the_owner_carries_a_working_link(
    client: TestClient, council: Council
) -> None:
    from engine_support import BOB

    from m365perf.cards.digest import REJECT_VERB, reason_input_id

    path, page = _open(client, council)
    _post(client, path, page.submission(value__CP001="46"))
    council.engine.fire_due_timers(worker="test", now=council.tick(minutes=2))
    digest = council.cards_to("bob.ray@contoso.gov.uk")[0]["card"]
    (reject,) = [a for a in _actions(digest) if a.get("verb") == REJECT_VERB]
    council.tick(days=2)
    reason = {reason_input_id(int(reject["data"]["return_id"])): "That is September's"}
    council.act(BOB, REJECT_VERB, {**reject["data"], **reason})
    rejection = council.cards_to(ANN)[-1]
    assert isinstance(CardId.parse(rejection["card_id"]), RejectionCardId)
    answer = client.get(path_of(form_link(council, rejection)))
    form = FormPage.read(answer.text)
    assert answer.status_code == 200 and form.has("value__CP001")


def _actions(node: Any) -> list[dict[str, Any]]:
    """Every Action.Execute in a card."""
    if isinstance(node, dict):
        own = [node] if node.get("type") == "Action.Execute" else []
        return own + [a for value in node.values() for a in _actions(value)]
    if isinstance(node, list):
        return [a for value in node for a in _actions(value)]
    return []


@pytest.mark.parametrize(
    ("spoil", "status", "words"),
    [
        (lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"), 403, "not valid"),
        (lambda t: t.split(".")[0], 400, "incomplete or damaged"),
    ],
)
def test_a_tampered_or_broken_link_is_refused_and_changes_nothing(
    client: TestClient, council: Council, spoil: object, status: int, words: str
) -> None:
    path, page = _open(client, council)
    token = path.rsplit("/", 1)[1]
    bad = f"/returns/{spoil(token)}"  # type: ignore[operator]
    before = snapshot(council)
    for answer in (client.get(bad), client.post(bad, data=page.submission(value__CP001="46"))):
        assert answer.status_code == status
        assert words in answer.text and "Traceback" not in answer.text
        assert answer.headers["cache-control"] == "no-store"
    assert snapshot(council) == before


def test_an_expired_link_is_refused_and_changes_nothing(
    client: TestClient, council: Council
) -> None:
    path, page = _open(client, council)
    council.tick(days=31)
    before = snapshot(council)
    answer = client.post(path, data=page.submission(value__CP001="46"))
    assert answer.status_code == 410
    assert "This link has expired" in answer.text and "performance team" in answer.text
    assert client.get(path).status_code == 410
    assert snapshot(council) == before


def test_a_form_naming_another_owner_or_cycle_is_refused(
    client: TestClient, council: Council
) -> None:
    path, page = _open(client, council)
    before = snapshot(council)
    for forged in (
        page.submission(owner_id=DAN_ID, value__CP001="46"),
        page.submission(cycle_id="2", value__CP001="46"),
        {k: v for k, v in page.submission(value__CP001="46").items() if k != "owner_id"},
    ):
        answer = client.post(path, data=forged)
        assert answer.status_code == 403
        assert "does not belong to the link" in answer.text
    # Dan's indicator smuggled into Ann's form: the engine refuses it, nothing is saved
    smuggled = page.submission(value__CP001="46", version__CP003="1", value__CP003="4")
    answer = client.post(path, data=smuggled)
    assert answer.status_code == 403 and "not yours" in answer.text
    assert snapshot(council) == before


def test_bad_posts_get_a_clear_page(client: TestClient, council: Council) -> None:
    path, page = _open(client, council)
    before = snapshot(council)
    too_big = client.post(path, data={**page.submission(), "comment__CP001": "x" * MAX_FORM_BYTES})
    assert too_big.status_code == 413 and "nothing was saved" in too_big.text
    as_json = client.post(path, json=page.submission(value__CP001="46"))
    assert as_json.status_code == 415
    twice = client.post(
        path,
        content="cycle_id=1&cycle_id=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert twice.status_code == 400
    bad_version = client.post(path, data=page.submission(version__CP001="one"))
    assert bad_version.status_code == 400
    assert snapshot(council) == before


def test_without_a_key_no_links_are_sent_and_none_open(links: LinkSigner) -> None:
    council = make_linked_council(None)
    (request,) = council.cards_to(ANN)
    assert request["link"] == "" and request["return_form"] is None
    assert "Open in your browser" not in request["summary"]
    forged = links.sign_return(1, "11111111-0000-0000-0000-000000000001", now=council.now)
    answer = make_client(council, None).get(f"/returns/{forged}")
    assert answer.status_code == 404 and "does not take returns by web link" in answer.text


def test_the_access_log_never_records_a_links_token(
    client: TestClient, council: Council, caplog: pytest.LogCaptureFixture
) -> None:
    path = path_of(newest_link(council, ANN))
    token = path.rsplit("/", 1)[1]
    with caplog.at_level("INFO", logger="uvicorn.access"):
        # the line uvicorn writes for each request
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", 200
        )
    assert "GET /returns/[link]" in caplog.text and token not in caplog.text


def _sent_back_page(sent_back: SentBack) -> tuple[str, FormPage]:
    view = OwnerRequestView(
        cycle_id="7",
        owner_id=DAN_ID,
        card_id="request-7",
        owner_name="Dan Fox",
        flow_name="Monthly corporate KPIs",
        period_label="2026-10",
        due=date(2026, 11, 6),
        indicators=(
            IndicatorRequest(
                "CP001", "Household waste recycled", Unit.PERCENTAGE, 2, sent_back=sent_back
            ),
            IndicatorRequest("CP002", "Days to process new benefit claims", Unit.DAYS, 1),
        ),
    )
    html = render_form(view, expires=datetime(2026, 12, 1, tzinfo=UTC))
    return html, FormPage.read(html)


def test_a_sent_back_return_says_on_the_form_who_sent_it_back_when_and_why() -> None:
    at = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)
    _, page = _sent_back_page(SentBack("Bob Ray", at, "That is September's", False, 46.0))
    assert (
        "Household waste recycled Sent back by Bob Ray on Thursday 5 November 2026: "
        "That is September's Previously returned: 46%"
    ) in page.text
    assert page.value("value__CP001") == ""  # shown, not pre-filled
    assert page.text.count("Sent back by") == 1  # not on the other indicator
    _, reopened = _sent_back_page(SentBack("Performance team", at, "Audit: double count", True))
    assert "Reopened for correction by Performance team on Thursday 5 November 2026: " in (
        reopened.text
    )
    assert "Previously returned" not in reopened.text


def test_a_send_back_reason_is_shown_as_text_never_as_markup_and_kept_short() -> None:
    at = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)
    html, page = _sent_back_page(SentBack(HOSTILE, at, HOSTILE, False, None, HOSTILE))
    assert "<script>" not in html
    assert f"Sent back by {HOSTILE} on Thursday 5 November 2026: {HOSTILE}" in page.text
    assert f"Previously returned: no data this period ({HOSTILE})" in page.text
    _, long = _sent_back_page(SentBack("Bob Ray", at, "Recount please. " * 1000, False))
    assert "Recount please. Recount please." in long.text
    assert long.text.count("Recount") < 100 and "Recount…" in long.text


def test_a_commentary_longer_than_the_form_takes_is_shown_cut_and_nothing_is_saved(
    client: TestClient, council: Council
) -> None:
    """The browser stops typing at the textarea's maxlength; a forged post is answered."""
    path, page = _open(client, council)
    before = snapshot(council)
    status, again = _post(
        client, path, page.submission(value__CP001="46", comment__CP001="c" * 100_000)
    )
    assert status == 200
    assert "The commentary is 100,000 characters long, and can be at most 4,000" in again.text
    assert again.value("comment__CP001") == "c" * int(
        again.control("comment__CP001").attrs["maxlength"]
    )
    assert snapshot(council) == before


@pytest.mark.parametrize(
    ("forged", "words"),
    [
        ({"comment__CP001": "nul\x00"}, "character no card sends"),
        ({"version__CP001": "0"}, "version of CP001 is damaged"),
        ({"version__CP001": "99999999999"}, "version of CP001 is damaged"),
        ({"card_id": ""}, "no 'card_id'"),
        ({"version__" + "k" * 50_000: "1"}, "is not yours"),
    ],
    ids=["NUL", "version 0", "version too long", "no card id", "50 kB indicator id"],
)
def test_a_forged_form_gets_a_clear_page_and_changes_nothing(
    client: TestClient, council: Council, forged: dict[str, str], words: str
) -> None:
    path, page = _open(client, council)
    before = snapshot(council)
    answer = client.post(path, data=page.submission(value__CP001="46", **forged))
    assert 400 <= answer.status_code < 500
    text = FormPage.read(answer.text).text
    assert words in text and "not saved" in text.lower()
    assert len(answer.text) < 20_000  # the forged text is not echoed back whole
    assert snapshot(council) == before


def test_the_forms_own_card_id_is_the_one_the_engine_draws(
    client: TestClient, council: Council
) -> None:
    path, page = _open(client, council)
    _, again = _post(client, path, page.submission(value__CP001="forty"))
    assert page.value("card_id") == again.value("card_id")
    assert isinstance(CardId.parse(page.value("card_id")), RequestCardId)


def test_a_red_figure_on_the_web_form_needs_an_improvement_action_typed_there(
    links: LinkSigner,
) -> None:
    council = make_linked_council(links, actions={"required_for": ["red"], "list": "KPI Actions"})
    client = make_client(council, links)
    path, page = _open(client, council)
    names = {c.attrs.get("name") for c in page.controls}
    assert {"actionwhat__CP001", "actionwho__CP001", "actionby__CP001"} <= names
    red = {"value__CP001": "30", "comment__CP001": "Crews were short."}

    status, again = _post(client, path, page.submission(**red))

    assert status == 200
    assert "Add an improvement action: one is required when the figure is red." in again.text
    assert returns_by_key(council)["CP001"].status is ReturnStatus.AWAITING

    _post(
        client,
        path,
        again.submission(
            **red, actionwhat__CP001="Two extra rounds a week.", actionby__CP001="2026-11-30"
        ),
    )
    returned = returns_by_key(council)["CP001"]
    assert returned.status is ReturnStatus.RETURNED
    with council.store.transaction() as tx:
        action = tx.find_action(returned.id or 0)
    assert action is not None and action.what == "Two extra rounds a week."
    assert action.due_on == date(2026, 11, 30)
