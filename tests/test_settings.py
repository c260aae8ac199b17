"""Settings: every setting is documented in config/.env.example and read from the env."""

from __future__ import annotations

from pathlib import Path

import pytest

from m365perf.settings import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / ".env.example"


def test_every_setting_is_documented() -> None:
    documented = {
        line.split("=", 1)[0].strip()
        for line in EXAMPLE.read_text().splitlines()
        if line.startswith("M365PERF_")
    }
    expected = {f"M365PERF_{name.upper()}" for name in Settings.model_fields}
    assert expected == documented


def test_environment_points_clients_at_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M365PERF_GRAPH_BASE_URL", "http://127.0.0.1:8765/v1.0")
    monkeypatch.setenv("M365PERF_TENANT_ID", "contoso")
    monkeypatch.setenv("M365PERF_CLIENT_ID", "app")
    settings = load_settings()
    assert settings.graph_base_url == "http://127.0.0.1:8765/v1.0"
    assert settings.has_tenant


def test_default_store_is_a_sqlite_file_and_no_tenant(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in Settings.model_fields:
        monkeypatch.delenv(f"M365PERF_{name.upper()}", raising=False)
    settings = load_settings()
    assert settings.database_url.startswith("sqlite:///")
    assert not settings.has_tenant
    assert settings.client_secret is None
