"""The status page, its JSON and /metrics over HTTP, as the performance team sees them."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric import rsa
from engine_support import (
    ANN,
    BOB,
    COLUMNS,
    NADIA,
    PEOPLE,
    ROWS,
    approval_data,
    make_council,
    submit_data,
)
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from web_support import Site, make_site

from m365perf.store import OutboxStatus

HOSTILE_NAME = "<script>alert('owned')</script> Fly-tips"
METRICS_TOKEN = "a-scraper-token-for-the-metrics-0123456789"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def site(signing_key: rsa.RSAPrivateKey) -> Site:
    """The test council with a hostile fly-tipping name, Nadia (performance team) signed in."""
    rows = [list(r) for r in ROWS]
    rows[2][COLUMNS.index("Title")] = HOSTILE_NAME
    site = make_site(make_council(rows=rows), signing_key)
    site.sign_in(NADIA.user_id, NADIA.name, staff=True)
    return site


def ann_returns(site: Site, **inputs: str) -> None:
    card = site.council.cards_to("ann.lee@contoso.gov.uk")[-1]["card"]
    site.council.act(ANN, "submitReturns", submit_data(card, **inputs))


def items(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (cycle,) = report["cycles"]
    return {i["indicator_key"]: i for i in cycle["items"]}


def test_each_return_shows_its_state_value_rag_and_who_it_waits_on(site: Site) -> None:
    ann_returns(site, value__CP001="46.5")
    site.council.tick(hours=5)

    report = site.client.get("/status.json").json()
    page = site.client.get("/status")

    found = items(report)
    assert found["CP001"]["state"] == "awaiting_approval"
    assert (found["CP001"]["value"], found["CP001"]["rag"]) == ("46.5%", "green")
    assert (found["CP001"]["step"], found["CP001"]["waiting_on"]) == (
        "Supervisor check",
        ["Bob Ray"],
    )
    assert found["CP001"]["waited_hours"] == 5.0
    assert (found["CP002"]["state"], found["CP002"]["waiting_on"]) == ("not_started", ["Ann Lee"])
    assert found["CP003"]["waiting_on"] == ["Dan Fox"]
    html = page.text
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "Supervisor check" in html and "Bob Ray" in html and ">Green<" in html
    assert "5 hours" in html
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt; Fly-tips" in html
    assert "<script" not in html
    for person_id, *_ in PEOPLE:  # names, not ids
        assert person_id not in html


def test_progress_is_counted_by_service_and_by_owner(site: Site) -> None:
    ann_returns(site, value__CP001="46.5")

    (cycle,) = site.client.get("/status.json").json()["cycles"]

    services = {
        p["name"]: (p["total"], p["awaiting_approval"], p["not_started"])
        for p in cycle["by_service"]
    }
    owners = {
        p["name"]: (p["total"], p["awaiting_approval"], p["not_started"]) for p in cycle["by_owner"]
    }
    assert services == {"Revenues": (1, 0, 1), "Streetpride": (2, 1, 1)}
    assert owners == {"Ann Lee": (2, 1, 1), "Dan Fox": (1, 0, 1)}
    html = site.client.get("/status").text
    assert '<th scope="row" data-label="Service">Streetpride</th>' in html


def test_the_approval_queue_lists_each_approver_with_the_age_of_what_waits(site: Site) -> None:
    ann_returns(site, value__CP001="46.5")
    site.council.tick(hours=30)
    ann_returns(site, value__CP002="19")
    site.council.tick(hours=2)

    (queue,) = site.client.get("/status.json").json()["approval_queue"]

    assert queue["approver_name"] == "Bob Ray"
    assert [(i["indicator_name"], i["waited_hours"]) for i in queue["items"]] == [
        ("Household waste recycled", 32.0),
        ("Days to process new benefit claims", 2.0),
    ]
    assert queue["oldest_hours"] == 32.0
    assert "Bob Ray (bob.ray@contoso.gov.uk): 2 waiting, the oldest for 1 day 8 hours" in (
        site.client.get("/status").text
    )


def test_late_and_rejected_returns_are_back_with_their_owner(site: Site) -> None:
    ann_returns(site, value__CP001="44", comment__CP001="Short of target.")
    bob_card = site.council.cards_to("bob.ray@contoso.gov.uk")[-1]["card"]
    site.council.act(BOB, "reject", approval_data(bob_card, "reject", reason="Check the tonnage."))

    before = items(site.client.get("/status.json").json())
    site.council.tick(days=8)  # past Wednesday 11 November
    after = items(site.client.get("/status.json").json())

    assert (before["CP001"]["state"], before["CP001"]["waiting_on"]) == ("rejected", ["Ann Lee"])
    assert {k: i["state"] for k, i in after.items()} == {
        "CP001": "late",
        "CP002": "late",
        "CP003": "late",
    }
    assert '<span class="late">late</span>' in site.client.get("/status").text


def test_measures_count_a_return_made_before_any_chase_as_self_returned(site: Site) -> None:
    ann_returns(site, value__CP001="46.5")

    report = site.client.get("/status.json").json()

    (flow,) = report["measures"]
    assert flow["flow_id"] == "monthly-corporate-kpis" and flow["scope"] == "flow"
    assert (flow["measures"]["self_returned"], flow["measures"]["returned"]) == (1, 1)
    (cycle,) = report["cycles"]
    scopes = [(g["scope"], g["service"]) for g in cycle["measures"]]
    assert scopes == [("cycle", None), ("service", "Revenues"), ("service", "Streetpride")]
    assert "100% (1 of 1)" in site.client.get("/status").text


def test_power_bi_refreshes_are_shown_against_the_daily_budget(site: Site) -> None:
    (budget,) = site.client.get("/status.json").json()["powerbi"]

    assert budget["flow_name"] == "Monthly corporate KPIs"
    assert (budget["asked_today"], budget["used"], budget["daily_budget"]) == (0, 0, 8)
    assert budget["remaining"] == 8
    assert "Refreshes today against each dataset's daily budget" in (
        site.client.get("/status").text
    )


# --------------------------------------------------------------------------- parked


def park_one(site: Site, error: str = "403 <b>MessageWritesBlocked</b>") -> int:
    store = site.council.store
    (claimed,) = store.claim_outbox(site.council.now, 1, "test-worker")
    store.park(claimed.id or 0, error, now=site.council.now)
    return claimed.id or 0


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def outbox_row(site: Site, message_id: int) -> Any:
    with site.council.store.transaction() as tx:
        return next(m for m in tx.list_outbox() if m.id == message_id)


def test_parked_messages_show_their_error_escaped_and_whom_they_were_for(site: Site) -> None:
    message_id = park_one(site)

    html = site.client.get("/status").text
    (parked,) = site.client.get("/status.json").json()["parked"]

    assert "403 &lt;b&gt;MessageWritesBlocked&lt;/b&gt;" in html and "<b>" not in html
    assert parked["id"] == message_id and parked["last_error"] == "403 <b>MessageWritesBlocked</b>"
    assert parked["about"] == (
        "Teams card for Ann Lee: Monthly corporate KPIs 2026-10: returns due Wednesday "
        "11 November 2026"
    )
    assert "Teams card for Ann Lee" in html
    assert f'action="/status/parked/{message_id}/retry"' in html


def test_retry_requeues_a_parked_message_and_the_audit_names_who(site: Site) -> None:
    message_id = park_one(site)
    csrf = csrf_of(site.client.get("/status").text)

    page = site.client.post(f"/status/parked/{message_id}/retry", data={"csrf": csrf})
    again = site.client.post(f"/status/parked/{message_id}/retry", data={"csrf": csrf})

    assert page.status_code == 200
    assert f"Message {message_id} is back in the queue" in page.text
    row = outbox_row(site, message_id)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)
    with site.council.store.transaction() as tx:
        (event,) = tx.list_audit(subject_type="outbox")
    assert (event.action, event.actor) == ("outbox.retried", NADIA.user_id)
    assert event.before is not None and event.before["error"] == "403 <b>MessageWritesBlocked</b>"
    assert again.status_code == 400 and "is not parked" in again.text


def test_retry_without_the_pages_token_or_sign_in_changes_nothing(site: Site) -> None:
    message_id = park_one(site)

    forged = site.client.post(f"/status/parked/{message_id}/retry", data={"csrf": "guess"})
    anonymous = TestClient(site.client.app).post(
        f"/status/parked/{message_id}/retry", data={"csrf": "guess"}
    )
    site.sign_in(BOB.user_id, BOB.name)  # signed in, but not in the performance team
    csrf = csrf_of(site.client.get("/approvals").text)
    not_staff = site.client.post(f"/status/parked/{message_id}/retry", data={"csrf": csrf})
    unknown = site.client.post("/status/parked/not-a-number/retry", data={"csrf": csrf})

    assert (forged.status_code, anonymous.status_code, not_staff.status_code) == (403, 401, 403)
    assert unknown.status_code == 400  # a clear page, not FastAPI's 422
    assert outbox_row(site, message_id).status is OutboxStatus.PARKED


# --------------------------------------------------------------------------- reads


def count_queries(site: Site) -> int:
    engine = site.council.store.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(str(args[2]))

    sqlalchemy.event.listen(engine, "before_cursor_execute", note)
    try:
        assert site.client.get("/status.json").status_code == 200
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", note)
    return len(seen)


def test_the_status_reads_are_batched_not_one_per_return(signing_key: rsa.RSAPrivateKey) -> None:
    few = make_site(make_council(), signing_key)
    rows = [list(r) for r in ROWS]
    for n in range(4, 40):
        rows.append([f"CP{n:03d}", f"Indicator {n}", *ROWS[0][2:]])
    many = make_site(make_council(rows=rows), signing_key)
    for s in (few, many):
        s.sign_in(NADIA.user_id, NADIA.name, staff=True)
        cards = [c["card"] for c in s.council.cards_to("ann.lee@contoso.gov.uk")]
        card = next(c for c in cards if "value__CP001" in json.dumps(c))
        s.council.act(ANN, "submitReturns", submit_data(card, value__CP001="46.5"))

    assert count_queries(few) == count_queries(many) < 20


# --------------------------------------------------------------------------- metrics


def metrics_site(site: Site, token: str | None = METRICS_TOKEN) -> TestClient:
    """Another app over the same council, with the scraper's token set (or none)."""
    return make_site(site.council, site.key, metrics_token=token).client


def test_metrics_parse_as_prometheus_text_with_the_measures_and_the_outbox(site: Site) -> None:
    ann_returns(site, value__CP001="46.5")
    park_one(site)
    client = metrics_site(site)

    reply = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    ratios = {
        (s.labels["scope"], s.labels["service"]): s.value
        for s in families["m365perf_self_return_ratio"].samples
    }
    assert ratios[("flow", "")] == 1.0 and ratios[("service", "Streetpride")] == 1.0
    assert families["m365perf_parked_messages"].samples[0].value == 1
    depth = {
        (s.labels["kind"], s.labels["status"]): s.value
        for s in families["m365perf_outbox_messages"].samples
    }
    assert depth[("send_card", "parked")] == 1 and depth[("send_card", "pending")] >= 1
    budget = families["m365perf_powerbi_refresh_budget"].samples[0]
    assert budget.value == 8


def test_metrics_refuse_a_wrong_token_and_anyone_not_signed_in_as_staff(site: Site) -> None:
    client = metrics_site(site)

    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and "m365perf_" not in wrong.text
    assert site.client.get("/metrics").status_code == 200  # Nadia, signed in as staff
    site.sign_in(BOB.user_id, BOB.name)
    assert site.client.get("/metrics").status_code == 401
    no_token = metrics_site(site, token=None)
    assert no_token.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_status_survives_a_register_row_with_no_service(signing_key: rsa.RSAPrivateKey) -> None:
    rows = [list(r) for r in ROWS]
    rows[1][COLUMNS.index("Service")] = ""
    site = make_site(make_council(rows=rows), signing_key)
    site.sign_in(NADIA.user_id, NADIA.name, staff=True)

    (cycle,) = site.client.get("/status.json").json()["cycles"]

    assert {p["name"] for p in cycle["by_service"]} == {"Other", "Streetpride"}
    assert cycle["counts"]["total"] == 3


def test_a_day_later_waits_grow(site: Site) -> None:
    site.council.tick(days=1)
    hours = items(site.client.get("/status.json").json())["CP002"]["waited_hours"]
    site.council.now = site.council.now + timedelta(days=1)
    later = items(site.client.get("/status.json").json())["CP002"]["waited_hours"]

    assert later == hours + 24
