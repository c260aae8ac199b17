"""Structured logs: JSON lines, and one correlation id per request carried into what the
request queued (``m365perf.logs``)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from engine_support import ANN, make_council, submit_data
from web_support import Site, click, make_site

from m365perf.logs import CORRELATION_HEADER, configure_logging


@pytest.fixture
def site() -> Site:
    return make_site(make_council(), rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    try:
        yield stream
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if h.get_name() == "m365perf"]:
            root.removeHandler(handler)
        root.setLevel(logging.WARNING)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def ann_submits(site: Site) -> dict[str, Any]:
    card = site.council.cards_to("ann.lee@contoso.gov.uk")[0]["card"]
    return click(ANN.user_id, "submitReturns", submit_data(card, value__CP001="46.5"))


def test_a_click_s_correlation_id_is_returned_and_names_the_rows_it_queued(
    site: Site, json_log: io.StringIO
) -> None:
    headers = {"Authorization": f"Bearer {site.token()}", CORRELATION_HEADER: "click-42"}
    reply = site.client.post("/api/messages", json=ann_submits(site), headers=headers)

    assert reply.status_code == 200
    assert reply.headers[CORRELATION_HEADER] == "click-42"
    queued = [r for r in records(json_log) if r["message"].startswith("queued outbox row")]
    assert queued and {r["correlation_id"] for r in queued} == {"click-42"}
    assert {r["level"] for r in queued} == {"INFO"}


@pytest.mark.parametrize("offered", [None, "", "x" * 65, "bad id\n", "<script>"])
def test_a_missing_or_unplain_correlation_id_is_replaced_by_a_fresh_one(
    site: Site, offered: str | None
) -> None:
    headers = {CORRELATION_HEADER: offered} if offered is not None else {}
    first = site.client.get("/health/live", headers=headers).headers[CORRELATION_HEADER]
    second = site.client.get("/health/live", headers=headers).headers[CORRELATION_HEADER]

    assert first != second and len(first) == 32 and first.isalnum()


def test_tokens_and_signed_links_are_redacted_whoever_logs_them(json_log: io.StringIO) -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJl"
    logging.getLogger("anyone").warning(
        "sent %s with Authorization: Bearer %s to /returns/%s", "x", jwt, "AbCdEf0123456789xyz"
    )

    (record,) = records(json_log)
    assert jwt not in record["message"] and "AbCdEf0123456789xyz" not in record["message"]
    assert "/returns/[link]" in record["message"]
