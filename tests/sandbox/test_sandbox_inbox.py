"""The inbox pages' plumbing over HTTP: the renderer served locally, or a clear refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox_support import Wire

ROOT = Path(__file__).resolve().parents[2]
NPM_RENDERER = ROOT / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js"
HANNAH = "hannah.price@contoso.gov.uk"


def test_the_inbox_page_loads_microsofts_renderer_from_the_sandbox_itself(wire: Wire) -> None:
    page = wire.admin("GET", f"/inbox/{HANNAH}")
    assert page.status_code == 200
    assert "src='/_sandbox/assets/adaptivecards.min.js'" in page.text
    assert "https://" not in page.text.split("<body>")[0]  # no CDN in the head
    script = wire.admin("GET", "/assets/adaptivecards.min.js")
    assert script.status_code == 200 and script.content == NPM_RENDERER.read_bytes()
    assert script.headers["content-type"].startswith("text/javascript")
    assert wire.health()["renderer"] == {"dir": str(NPM_RENDERER.parent), "problem": None}


def test_the_page_carries_teams_and_outlook_host_configs(wire: Wire) -> None:
    page = wire.admin("GET", f"/inbox/{HANNAH}").text
    assert '"hostConfigs": {"teams": {' in page and '"outlook": {' in page
    assert "Segoe UI" in page  # Microsoft's fonts, from their host configs


def test_assets_are_only_the_named_files(wire: Wire) -> None:
    for name in ("package.json", "..%2F..%2Fpackage.json", "adaptivecards.js"):
        assert wire.admin("GET", f"/assets/{name}").status_code == 404


def test_items_give_each_card_with_where_a_click_on_it_goes(wire: Wire) -> None:
    answer = wire.admin("GET", f"/inbox/{HANNAH}/items")
    body: dict[str, Any] = answer.json()
    assert answer.status_code == 200 and body["name"] == "Hannah Price"
    for item in body["items"]:
        target = set(item["target"])
        assert target == (
            {"message_id"} if item["channel"] == "outlook" else {"conversation_id", "activity_id"}
        )
    missing = wire.admin("GET", "/inbox/nobody@contoso.gov.uk/items")
    assert missing.status_code == 404 and "nobody@contoso.gov.uk" in missing.json()["error"]
    page = wire.admin("GET", "/inbox/nobody@contoso.gov.uk")
    assert page.status_code == 404 and "No user nobody@contoso.gov.uk" in page.text


def test_without_the_renderer_the_inbox_says_how_to_install_it(fresh: Any, tmp_path: Path) -> None:
    with fresh(renderer_dir=tmp_path / "nowhere") as wire:
        page = wire.admin("GET", f"/inbox/{HANNAH}")
        script = wire.admin("GET", "/assets/adaptivecards.min.js")
        health = wire.health()
    assert page.status_code == 503
    assert "renderer is not installed" in page.text and "make install" in page.text
    assert script.status_code == 503 and "npm ci" in script.text
    assert health["renderer"]["dir"] is None and "--renderer-dir" in health["renderer"]["problem"]
