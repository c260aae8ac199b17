"""State, keys and the seed survive a restart of the sandbox process."""

from __future__ import annotations

from pathlib import Path

import requests
from sandbox_support import Wire

from m365perf.sandbox.testing import running_sandbox


def test_items_mail_chats_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    with running_sandbox(tmp_path) as sandbox:
        wire = Wire(sandbox)
        items = wire.list_path("KPI Results") + "/items"
        created = wire.graph("POST", items, json={"fields": {"IndicatorId": "COV-960", "Value": 5}})
        assert created.status_code == 201
        wire.graph(
            "POST",
            "/users/performance@contoso.gov.uk/sendMail",
            json={
                "message": {
                    "subject": "Kept",
                    "body": {"contentType": "Text", "content": "x"},
                    "toRecipients": [{"emailAddress": {"address": "ben.foster@contoso.gov.uk"}}],
                }
            },
        )
        token = wire.token()

    with running_sandbox(tmp_path) as sandbox:
        wire = Wire(sandbox)
        item = wire.graph("GET", f"{items}/{created.json()['id']}", params={"expand": "fields"})
        assert item.status_code == 200
        assert item.json()["eTag"] == created.json()["eTag"]
        assert item.json()["fields"]["Value"] == 5
        mail = wire.admin("GET", "/mailboxes/ben.foster@contoso.gov.uk").json()["value"]
        assert [m["subject"] for m in mail] == ["Kept"]
        still_valid = requests.get(
            f"{wire.base}/v1.0/users/ben.foster@contoso.gov.uk",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert still_valid.status_code == 200
        register = wire.graph("GET", wire.list_path("KPI Register") + "/items/237")
        assert register.status_code == 404  # the seed was not loaded twice
