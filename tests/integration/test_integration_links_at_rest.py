"""No live credential at rest: a cycle opens and drains by e-mail, and no table holds a link.

The owners' e-mails reach the sandbox's mailboxes with working signed links to the web
form (signed as they were sent), while every table of the service's database, scanned
whole, holds no signed link and no token; revoking the cycle's links then closes the
form to every one of them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
import sqlalchemy
from integration_support import bench, monthly_flow, opening_time, sandbox_health

from m365perf.sandbox.testing import running_sandbox

pytestmark = pytest.mark.slow

PERIOD = "2026-10"
LINK_SECRET = "an-integration-test-key-for-web-form-links-0123"
SIGNED = re.compile(r"[A-Za-z0-9_-]{40,}\.[A-Za-z0-9_-]{43}")
"""A signed link's token: base64url claims, a dot, a base64url HMAC-SHA256."""


def test_a_drained_cycle_leaves_no_signed_link_in_any_table(tmp_path: Path) -> None:
    with running_sandbox(tmp_path) as sandbox:
        flow = monthly_flow(sandbox_health(sandbox)).model_copy(update={"channels": ["email"]})
        database = f"sqlite:///{tmp_path / 'm365perf.db'}"
        start = opening_time(flow, PERIOD)
        with bench(
            sandbox, database, start=start, flow=flow, settings={"link_secret": LINK_SECRET}
        ) as council:
            assert [o.created for o in council.service.open_due_cycles()] == [True]
            council.service.settle()
            with council.store.transaction() as tx:
                owners = {r.owner_id for r in tx.list_returns(cycle_id=1)}
                emails = [p.email for p in tx.list_people() if p.id in owners]
            links = [_link(m) for e in emails for m in council.mails(e)]
            assert len(links) == len(owners) >= 2

            leaks = _signed_links_in(database)

            assert leaks == []
            opened = requests.get(links[0], timeout=10)
            assert opened.status_code == 200 and "<form" in opened.text
            council.service.engine.revoke_links(
                cycle_id=1, by="perf.lead@contoso.gov.uk", now=council.clock()
            )
            for link in links:
                refused = requests.get(link, timeout=10)
                assert refused.status_code == 410 and "withdrawn" in refused.text
            assert _signed_links_in(database) == []


def _link(mail: dict[str, object]) -> str:
    """The web-form link in an e-mail's body (the button's address)."""
    body = str(mail.get("body", ""))
    found = re.findall(r'href="(http://127\.0\.0\.1:\d+/returns/[^"]+)"', body)
    assert len(found) == 1, body[:500]
    return found[0]


def _signed_links_in(database: str) -> list[str]:
    """Every table, every row, every column: what looks like a signed link or token."""
    engine = sqlalchemy.create_engine(database)
    leaks: list[str] = []
    try:
        with engine.connect() as conn:
            for table in sqlalchemy.inspect(conn).get_table_names():
                for row in conn.execute(sqlalchemy.text(f'SELECT * FROM "{table}"')):
                    text = " ".join(str(value) for value in row)
                    leaks += [f"{table}: {m}" for m in SIGNED.findall(text)]
                    if "/returns/" in text:
                        leaks.append(f"{table}: a /returns/ link")
    finally:
        engine.dispose()
    return leaks
