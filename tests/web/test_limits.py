"""Bounded input: every endpoint refuses an oversized or over-nested body before any work.

The requests here carry no token and no session: the limits hold before anyone is
proven, and what they refuse changes nothing and logs no error.
"""

from __future__ import annotations

import json
import logging

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from engine_support import ANN, make_council
from web_support import Site, click, make_site

from m365perf.web.limits import MAX_BODY_BYTES, MAX_JSON_DEPTH, json_depth

FORM = "application/x-www-form-urlencoded"
POSTS = [
    "/api/messages",
    "/returns/abc.def",
    "/approvals/1",
    "/approvals/delegates/add",
    "/signout",
]


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def site(signing_key: rsa.RSAPrivateKey) -> Site:
    return make_site(make_council(), signing_key)


def test_depth_counts_arrays_and_objects_but_not_brackets_in_text() -> None:
    assert json_depth(b'{"a": [1, {"b": 2}]}') == 3
    assert json_depth(b'{"a": "[[[[{{{{ \\" ]]]]"}') == 1
    assert json_depth(b"42") == 0
    assert json_depth(b"[" * 100_000) == 100_000
    assert json_depth(b"]]]]") == 0


def test_an_activity_as_teams_sends_it_is_well_within_the_depth_limit() -> None:
    activity = click(ANN.user_id, "submitReturns", {"cycle_id": "1", "versions": {"CP001": 1}})
    assert json_depth(json.dumps(activity).encode()) < MAX_JSON_DEPTH // 2


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_deeply_nested_json_without_a_token_is_a_clear_bad_request(
    site: Site, opening: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    depth = 50_000
    body = b'{"type": "invoke", "value": ' + opening * depth + b"1" + b"]" * depth + b"}"
    before = site.snapshot()

    reply = site.client.post(
        "/api/messages", content=body, headers={"Content-Type": "application/json"}
    )

    assert reply.status_code in (400, 413)
    assert "nothing was saved" in reply.json()["error"]
    assert site.snapshot() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("path", POSTS)
def test_every_endpoint_refuses_json_nested_past_the_limit(site: Site, path: str) -> None:
    depth = MAX_JSON_DEPTH + 1
    body = b"[" * depth + b"]" * depth

    reply = site.client.post(path, content=body, headers={"Content-Type": "application/json"})

    assert reply.status_code == 400
    assert f"nested more than {MAX_JSON_DEPTH} deep" in reply.text


@pytest.mark.parametrize("path", POSTS)
def test_every_endpoint_refuses_a_body_over_the_limit_unread(site: Site, path: str) -> None:
    before = site.snapshot()

    reply = site.client.post(
        path, content=b"x=" + b"y" * MAX_BODY_BYTES, headers={"Content-Type": FORM}
    )

    assert reply.status_code == 413
    assert "larger than this service accepts" in reply.text
    assert site.snapshot() == before


def test_a_chunked_body_over_the_limit_is_cut_off_on_a_staff_page(site: Site) -> None:
    chunks = iter([b"csrf=x&padding=", *[b"y" * 65536] * 5])

    reply = site.client.post("/approvals/1", content=chunks, headers={"Content-Type": FORM})

    assert reply.status_code == 413
    assert "<h1>Too much text</h1>" in reply.text


@pytest.mark.parametrize("cycle", ["99999999999999999999999", "0", "-4", "one"])
def test_a_cycle_id_that_no_store_holds_is_a_clear_bad_request(site: Site, cycle: str) -> None:
    site.sign_in(ANN.user_id, "Ann Lee")

    reply = site.client.get(f"/approvals/{cycle}", follow_redirects=False)

    assert reply.status_code == 400
    assert "This address is not one of ours: cycle_id" in reply.text
    assert "Traceback" not in reply.text


def test_a_form_post_under_the_limits_still_reaches_its_page(site: Site) -> None:
    """The body the middleware read is handed on whole: the page sees the CSRF field."""
    site.sign_in(ANN.user_id, "Ann Lee")

    reply = site.client.post("/approvals/1", data={"csrf": "wrong", "verb": "approve"})

    assert reply.status_code == 403
    assert "did not come from your page" in reply.text
