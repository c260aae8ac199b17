"""Settings: every setting is documented in config/.env.example and read from the env."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from m365perf.cli import main
from m365perf.settings import Settings, is_settings_error, load_settings, settings_problems

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / ".env.example"


def test_every_setting_is_documented() -> None:
    documented = {
        line.split("=", 1)[0].strip()
        for line in EXAMPLE.read_text().splitlines()
        if line.startswith("M365PERF_")
    }
    expected = {f"M365PERF_{name.upper()}" for name in Settings.model_fields}
    assert expected == documented


def test_every_setting_says_where_its_value_comes_from() -> None:
    """Each setting line sits under a comment (one comment may cover a pair of lines)."""
    lines = EXAMPLE.read_text().splitlines()
    uncommented = []
    for number, line in enumerate(lines):
        if not line.startswith("M365PERF_"):
            continue
        above = number - 1
        while above >= 0 and lines[above].startswith("M365PERF_"):
            above -= 1
        if above < 0 or not lines[above].startswith("# ") or lines[above].startswith("# ---"):
            uncommented.append(line.split("=", 1)[0])
    assert uncommented == []


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


def _clean_environment(monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
    monkeypatch.chdir(where)
    for name in Settings.model_fields:
        monkeypatch.delenv(f"M365PERF_{name.upper()}", raising=False)


def _env_from_example(where: Path, **values: str) -> Path:
    """config/.env.example copied as it says, with some values filled in."""
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        name = line.split("=", 1)[0]
        if name.startswith("M365PERF_") and name.removeprefix("M365PERF_").lower() in values:
            line = f"{name}={values[name.removeprefix('M365PERF_').lower()]}"
        lines.append(line)
    env = where / ".env"
    env.write_text("\n".join(lines) + "\n")
    return env


def test_the_example_copied_with_a_secret_and_no_certificate_works(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    _env_from_example(tmp_path, tenant_id="contoso", client_id="app", client_secret="s3cret")
    settings = load_settings()
    assert settings.certificate_path is None
    assert settings.certificate_thumbprint == ""
    assert settings.client_secret is not None
    assert settings.client_secret.get_secret_value() == "s3cret"
    assert settings.link_secret is None  # blank: no links
    # Nothing of another council's is pre-filled: no Contoso mailbox, no made-up address.
    assert settings.service_mailbox == ""
    assert settings.public_base_url == Settings.model_fields["public_base_url"].default
    assert (settings.privacy_url, settings.terms_url) == ("", "")
    from m365perf.m365 import clients_from_settings

    clients_from_settings(settings).close()  # picks the secret; no "not both" refusal


def test_blank_means_unset_for_every_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    defaults = load_settings()
    for name in Settings.model_fields:
        monkeypatch.setenv(f"M365PERF_{name.upper()}", "  ")
    assert load_settings() == defaults
    assert load_settings(certificate_path="", client_secret="", database_url="") == defaults


def test_a_bad_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("M365PERF_PUBLIC_BASE_URL", "perf.contoso.gov.uk")
    monkeypatch.setenv("M365PERF_LINK_LIFETIME_DAYS", "a month")
    monkeypatch.setenv("M365PERF_CERTIFICATE_PATH", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("M365PERF_DATABASE_URL", "mysql://db/perf")
    with pytest.raises(ValidationError) as caught:
        load_settings()
    assert is_settings_error(caught.value)
    problems = settings_problems(caught.value)
    named = sorted(line.split(":", 1)[0] for line in problems)
    assert named == [
        "M365PERF_CERTIFICATE_PATH",
        "M365PERF_DATABASE_URL",
        "M365PERF_LINK_LIFETIME_DAYS",
        "M365PERF_PUBLIC_BASE_URL",
    ]
    assert all("\n" not in line for line in problems)


def test_a_secret_and_a_certificate_together_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    pem = tmp_path / "app.pem"
    pem.write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(ValidationError) as caught:
        load_settings(client_secret="s3cret", certificate_path=str(pem))
    [problem] = settings_problems(caught.value)
    assert "M365PERF_CLIENT_SECRET and M365PERF_CERTIFICATE_PATH are both set" in problem
    assert "s3cret" not in problem


def test_the_command_line_reports_a_bad_setting_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    _env_from_example(tmp_path, link_secret="too-short-to-be-safe")
    result = CliRunner().invoke(main, ["db", "current"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "M365PERF_LINK_SECRET: must be at least 32 characters" in result.output
    assert "too-short-to-be-safe" not in result.output
    assert not isinstance(result.exception, ValidationError)
