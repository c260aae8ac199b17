"""Migration 0007: a signed web-form link stored by an older version leaves the outbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy

from m365perf.store import create_store
from m365perf.store.migrate import upgrade
from m365perf.web.links import LinkSigner

OWNER = "11111111-0000-0000-0000-000000000001"


def test_a_stored_signed_link_becomes_the_form_it_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0006")
    token = LinkSigner("k" * 40).sign_return(3, OWNER, now=datetime(2026, 11, 2, tzinfo=UTC))
    payload = {"card_id": "x", "link": f"https://perf.example/returns/{token}", "summary": "s"}
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                "INSERT INTO outbox (kind, budget, payload, status, attempts, dedup_key, "
                "next_attempt_at, created_at, updated_at) VALUES ('send_card', 'bot', :p, "
                "'done', 1, 'k1', '2026-11-02', '2026-11-02', '2026-11-02')"
            ),
            {"p": json.dumps(payload)},
        )
    engine.dispose()

    upgrade(url)

    store = create_store(url)
    try:
        with store.transaction() as tx:
            (row,) = tx.list_outbox()
    finally:
        store.close()
    assert row.payload["link"] == "" and token not in json.dumps(row.payload)
    assert row.payload["return_form"] == {"cycle_id": 3, "owner_id": OWNER}
