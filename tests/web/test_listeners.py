"""Settings to service: web sign-in on or off, one listener or a public and a staff one."""

from __future__ import annotations

from pathlib import Path

from engine_support import MONTHLY
from fastapi.testclient import TestClient

from m365perf.flows import load_flow
from m365perf.service import Service, engine_config
from m365perf.settings import Settings, load_settings
from m365perf.web.signin import CALLBACK_PATH, signin_from_settings

GROUP = "5d3f1c2a-8b7e-4a6d-9c0f-1e2d3c4b5a69"
SECRET = "a-test-key-for-web-sign-in-cookies-0123456789"
FLOW = load_flow(MONTHLY).model_copy(update={"staff_group": GROUP})


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return load_settings(
        tenant_id="72f988bf-86f1-41af-91ab-2d7cd011db47",
        client_id="3c1e2f4a-9b8d-4e7f-a6c5-1d2e3f4a5b6c",
        client_secret="secret",
        bot_app_id="bot",
        public_base_url="https://performance.contoso.gov.uk",
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        **extra,
    )


def test_without_a_session_key_nobody_signs_in_and_no_approvals_link_is_sent(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)

    assert signin_from_settings(settings, [FLOW]) is None
    assert engine_config(settings).approvals_base_url is None


def test_sign_in_returns_to_the_staff_address_and_knows_the_flows_staff_groups(
    tmp_path: Path,
) -> None:
    settings = _settings(
        tmp_path, session_secret=SECRET, staff_base_url="https://staff.contoso.gov.uk/"
    )

    signin = signin_from_settings(settings, [FLOW])

    assert signin is not None
    assert signin.staff_groups == frozenset({GROUP})
    assert signin.base_url == "https://staff.contoso.gov.uk"
    assert signin.entra._redirect_uri == "https://staff.contoso.gov.uk" + CALLBACK_PATH
    assert engine_config(settings).approvals_base_url == "https://staff.contoso.gov.uk"


def test_a_staff_port_keeps_staff_pages_off_the_public_listener(tmp_path: Path) -> None:
    settings = _settings(tmp_path, session_secret=SECRET, staff_port=8081)
    service = Service(settings, [FLOW])
    try:
        public = TestClient(service.app)
        assert service.staff_app is not None
        staff = TestClient(service.staff_app)

        for path in ("/status", "/status.json", "/approvals", "/signin"):
            assert public.get(path, follow_redirects=False).status_code == 404, path
        assert public.get("/health").status_code == 200
        assert public.post("/api/messages", json={}).status_code == 401
        assert staff.get("/status.json").status_code == 401  # there, and behind sign-in
        assert staff.get("/approvals", follow_redirects=False).status_code == 302
        assert staff.post("/api/messages", json={}).status_code == 404
    finally:
        service.store.close()


def test_one_listener_serves_everything_with_staff_pages_behind_sign_in(tmp_path: Path) -> None:
    service = Service(_settings(tmp_path, session_secret=SECRET), [FLOW])
    try:
        client = TestClient(service.app)
        assert service.staff_app is None
        assert client.get("/status.json").status_code == 401
        assert client.get("/approvals/1", follow_redirects=False).status_code == 302
    finally:
        service.store.close()
