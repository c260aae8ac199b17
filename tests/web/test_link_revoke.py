"""Revoking web-form links: the form refuses a person's or a cycle's links with a clear page.

Links are signed at send time and never stored, so a revocation is a cut-off: links
signed up to it are refused (410, "withdrawn"), a link signed afterwards works, and
the revocation is in the audit trail. ``m365perf links revoke`` does it from the CLI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine_support import Council
from fastapi.testclient import TestClient
from link_support import (
    SECRET,
    form_link,
    make_client,
    make_linked_council,
    newest_link,
    path_of,
    snapshot,
)

from m365perf.cli import main
from m365perf.engine import ActionError
from m365perf.messages import AuditAction
from m365perf.store import create_store
from m365perf.web.links import LinkSigner

ANN = "ann.lee@contoso.gov.uk"
DAN = "dan.fox@contoso.gov.uk"
PERFORMANCE = "perf.lead@contoso.gov.uk"


@pytest.fixture
def council() -> Council:
    return make_linked_council(LinkSigner(SECRET))


@pytest.fixture
def client(council: Council) -> TestClient:
    return make_client(council, LinkSigner(SECRET))


def _withdrawn(client: TestClient, link: str) -> bool:
    answer = client.get(path_of(link))
    if answer.status_code == 200:
        return False
    assert answer.status_code == 410, answer.text
    assert "This link has been withdrawn" in answer.text
    assert "ask the performance team for a new link" in answer.text
    return True


def test_revoking_a_persons_links_ends_theirs_only_and_is_audited(
    council: Council, client: TestClient
) -> None:
    ann, dan = newest_link(council, ANN), newest_link(council, DAN)
    council.tick(minutes=5)

    council.engine.revoke_links(person=ANN, by=PERFORMANCE, reason="forwarded", now=council.now)

    assert _withdrawn(client, ann) and not _withdrawn(client, dan)
    with council.store.transaction() as tx:
        (event,) = [e for e in tx.list_audit() if e.action == AuditAction.LINKS_REVOKED]
    assert event.actor == PERFORMANCE and event.after is not None
    assert event.after["email"] == ANN and event.after["reason"] == "forwarded"


def test_a_link_signed_after_the_revocation_opens_the_form(
    council: Council, client: TestClient
) -> None:
    council.engine.revoke_links(person=ANN, by=PERFORMANCE, now=council.now)
    council.tick(minutes=1)

    fresh = form_link(council, council.cards_to(ANN)[-1])  # as the next e-mail signs it

    assert not _withdrawn(client, fresh)


def test_revoking_a_cycles_links_ends_every_owners_and_a_post_saves_nothing(
    council: Council, client: TestClient
) -> None:
    ann, dan = newest_link(council, ANN), newest_link(council, DAN)
    council.tick(minutes=5)
    council.engine.revoke_links(cycle_id=1, by=PERFORMANCE, now=council.now)
    before = snapshot(council)

    posted = client.post(path_of(ann), data={"cycle_id": "1", "value__CP001": "40"})

    assert posted.status_code == 410 and "Nothing was saved" in posted.text
    assert snapshot(council) == before
    assert _withdrawn(client, ann) and _withdrawn(client, dan)


@pytest.mark.parametrize(
    ("person", "cycle_id", "message"),
    [
        (None, None, "name one person"),
        (ANN, 1, "name one person"),
        ("nobody@contoso.gov.uk", None, "nobody called"),
        (None, 99, "cycle 99 does not exist"),
    ],
)
def test_a_revocation_that_names_no_one_is_refused_and_records_nothing(
    council: Council, person: str | None, cycle_id: int | None, message: str
) -> None:
    before = snapshot(council)
    with pytest.raises(ActionError, match=message):
        council.engine.revoke_links(
            person=person, cycle_id=cycle_id, by=PERFORMANCE, now=council.now
        )
    assert snapshot(council) == before


def test_links_revoke_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    monkeypatch.setenv("M365PERF_DATABASE_URL", url)
    runner = CliRunner()
    opened = runner.invoke(
        main,
        [
            "cycle",
            "open",
            "monthly-corporate-kpis",
            "--period",
            "2026-10",
            "--register",
            str(root / "config" / "demo-register.csv"),
            "--directory",
            str(root / "config" / "demo-directory.csv"),
        ],
    )
    assert opened.exit_code == 0, opened.output
    signer = LinkSigner(SECRET)
    early = signer.sign_return(1, "anyone", now=_now() - timedelta(minutes=1))

    done = runner.invoke(main, ["links", "revoke", "--cycle", "1", "--by", PERFORMANCE])
    refused = runner.invoke(main, ["links", "revoke", "--cycle", "7", "--by", PERFORMANCE])
    both = runner.invoke(
        main, ["links", "revoke", "--cycle", "1", "--person", "x@y.z", "--by", PERFORMANCE]
    )

    assert done.exit_code == 0 and "Revoked every web-form link of cycle 1" in done.output
    assert refused.exit_code == 1 and "cycle 7 does not exist" in refused.output
    assert both.exit_code == 1 and "name one person" in both.output
    store = create_store(url)
    try:
        with store.transaction() as tx:
            issued = signer.verify_return(early, now=_now()).issued
            assert tx.link_revoked(1, "anyone", issued)
            assert not tx.link_revoked(2, "anyone", issued)
    finally:
        store.close()


def _now() -> datetime:
    return datetime.now(UTC)
