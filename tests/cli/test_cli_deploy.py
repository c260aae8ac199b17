"""`teams-app`, `db upgrade` / `db current` and `health`: the commands going live needs."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from m365perf.cli import main
from m365perf.settings import Settings
from m365perf.store import create_store, migrate
from m365perf.teams_app import png_size

ROOT = Path(__file__).resolve().parents[2]

BOT_ID = "5f0c2a9e-3b7d-4e61-9c28-a14b7d03e6f2"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in Settings.model_fields:
        monkeypatch.delenv(f"M365PERF_{name.upper()}", raising=False)
    monkeypatch.setenv("M365PERF_DATABASE_URL", f"sqlite:///{tmp_path / 'live.db'}")
    return CliRunner()


# --------------------------------------------------------------------------- teams-app


def test_teams_app_writes_the_manifest_and_icons_for_this_bot(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("M365PERF_BOT_APP_ID", BOT_ID)
    monkeypatch.setenv("M365PERF_PUBLIC_BASE_URL", "https://perf.coventry.gov.uk")
    out = tmp_path / "m365perf-teams-app.zip"
    result = runner.invoke(main, ["teams-app", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        color, outline = archive.read("color.png"), archive.read("outline.png")
    assert manifest["manifestVersion"] == "1.23"
    assert manifest["$schema"].endswith("/v1.23/MicrosoftTeams.schema.json")
    assert manifest["id"] == BOT_ID
    [bot] = manifest["bots"]
    assert bot["botId"] == BOT_ID
    assert bot["scopes"] == ["personal"]
    assert bot["supportsFiles"] is False
    assert manifest["validDomains"] == ["perf.coventry.gov.uk"]
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert len(manifest["name"]["short"]) <= 30
    assert png_size(color) == (192, 192)
    assert png_size(outline) == (32, 32)
    assert _alpha_values(outline) == {0, 255}  # white on transparent
    assert _alpha_values(color) == {255}


def test_the_teams_apps_privacy_and_terms_links_reach_a_public_page_not_the_status_page(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from m365perf.flows import load_flow
    from m365perf.service import Service
    from m365perf.settings import load_settings

    monkeypatch.setenv("M365PERF_BOT_APP_ID", BOT_ID)
    monkeypatch.setenv("M365PERF_PUBLIC_BASE_URL", "https://perf.coventry.gov.uk")
    monkeypatch.setenv("M365PERF_SERVICE_MAILBOX", "performance@coventry.gov.uk")
    out = tmp_path / "app.zip"
    assert runner.invoke(main, ["teams-app", "--out", str(out)]).exit_code == 0
    with zipfile.ZipFile(out) as archive:
        developer = json.loads(archive.read("manifest.json"))["developer"]
    links = [developer["privacyUrl"], developer["termsOfUseUrl"], developer["websiteUrl"]]
    assert all(u.startswith("https://perf.coventry.gov.uk/about") for u in links), links
    tenant = {"tenant_id": BOT_ID, "client_id": BOT_ID, "client_secret": "unused here"}
    flow = load_flow(ROOT / "flows" / "monthly-corporate-kpis.yaml")
    service = Service(load_settings(**tenant), [flow])  # what `m365perf serve` serves
    try:
        with TestClient(service.app) as client:
            page = client.get("/about")  # no sign-in: anyone following the link may read it
    finally:
        service.store.close()
    assert page.status_code == 200
    assert "What it stores" in page.text and "performance@coventry.gov.uk" in page.text

    # A council's own privacy notice and terms replace them.
    monkeypatch.setenv("M365PERF_PRIVACY_URL", "https://www.coventry.gov.uk/privacy")
    monkeypatch.setenv("M365PERF_TERMS_URL", "https://www.coventry.gov.uk/terms")
    assert runner.invoke(main, ["teams-app", "--out", str(out)]).exit_code == 0
    with zipfile.ZipFile(out) as archive:
        developer = json.loads(archive.read("manifest.json"))["developer"]
    assert developer["privacyUrl"] == "https://www.coventry.gov.uk/privacy"
    assert developer["termsOfUseUrl"] == "https://www.coventry.gov.uk/terms"


def test_teams_app_refuses_a_missing_bot_id_or_an_http_address(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["teams-app", "--out", str(tmp_path / "app.zip")])
    assert result.exit_code == 1
    assert "M365PERF_BOT_APP_ID must be the bot's Microsoft App ID" in result.output
    assert "M365PERF_PUBLIC_BASE_URL must be the https address" in result.output
    assert not (tmp_path / "app.zip").exists()


def _alpha_values(data: bytes) -> set[int]:
    """The alpha channel's values in one of our RGBA PNGs, decoded with the stdlib."""
    import struct
    import zlib

    width, height = png_size(data)
    stream = io.BytesIO(data[8:])
    pixels = b""
    while True:
        length, kind = struct.unpack(">I4s", stream.read(8))
        body = stream.read(length)
        stream.read(4)
        if kind == b"IDAT":
            pixels += body
        if kind == b"IEND":
            break
    raw = zlib.decompress(pixels)
    stride = 1 + width * 4
    assert len(raw) == stride * height
    return {raw[row * stride + 1 + 4 * x + 3] for row in range(height) for x in range(width)}


# --------------------------------------------------------------------------- db


def test_db_upgrade_brings_an_empty_database_to_head_and_again_changes_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    behind = runner.invoke(main, ["db", "current"])
    assert behind.exit_code == 1
    assert "database: empty" in behind.output
    first = runner.invoke(main, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert f"now at schema revision {migrate.head_revision()} (was empty)" in first.output
    assert migrate.current_revision(url) == migrate.head_revision()
    create_store(url).close()  # no SchemaOutOfDate
    again = runner.invoke(main, ["db", "upgrade"])
    assert again.exit_code == 0
    assert "already at schema revision" in again.output
    assert runner.invoke(main, ["db", "current"]).exit_code == 0


def test_db_upgrade_on_an_unreachable_database_is_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "M365PERF_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    )
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: could not read the database:")
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- health


class _Answer(BaseHTTPRequestHandler):
    status = 200
    body: ClassVar[dict[str, object]] = {}

    def do_GET(self) -> None:
        payload = json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[tuple[str, type[_Answer]]]:
    """A stand-in /health answering what each test sets (the real one is in tests/deploy)."""
    handler = type("Answer", (_Answer,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health", handler
    finally:
        server.shutdown()
        server.server_close()


def test_health_passes_a_healthy_service_and_fails_an_unavailable_one(
    runner: CliRunner, service: tuple[str, type[_Answer]]
) -> None:
    url, answer = service
    answer.body = {"status": "ok", "outbox": {"pending": 2, "parked": 1}}
    healthy = runner.invoke(main, ["health", "--url", url])
    assert healthy.exit_code == 0
    assert "pending 2" in healthy.output
    too_many_parked = runner.invoke(main, ["health", "--url", url, "--max-parked", "0"])
    assert too_many_parked.exit_code == 1
    assert "1 outbox messages parked" in too_many_parked.output
    answer.body = {
        "status": "degraded",
        "outbox": {"pending": 2},
        "outage": {"service": "Microsoft 365", "since": "2026-12-02T09:00:00+00:00"},
    }
    outage = runner.invoke(main, ["health", "--url", url])
    assert outage.exit_code == 0  # restarting cannot bring Microsoft 365 back
    assert "Microsoft 365 unreachable since 2026-12-02T09:00" in outage.output
    answer.status, answer.body = 503, {"status": "unavailable"}
    down = runner.invoke(main, ["health", "--url", url])
    assert down.exit_code == 1
    assert "answered 503" in down.output
