"""`m365perf doctor` against a real sandbox: healthy, and broken one way at a time.

Each broken variant must fail the one check it breaks, with a fix, and exit non-zero;
the healthy tenant passes every check. The service's web app runs on a free port so the
bot endpoint check has something to knock on.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from m365perf.cli import main
from m365perf.flows import load_flow
from m365perf.m365.errors import M365Error
from m365perf.m365.factory import clients_from_settings
from m365perf.sandbox.config import (
    ALL_APP_ROLES,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SandboxApp,
)
from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.service import Service
from m365perf.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
MONTHLY = ROOT / "flows" / "monthly-corporate-kpis.yaml"
FLOW_ID = "monthly-corporate-kpis"
PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
SERVICE_MAILBOX = "performance@contoso.gov.uk"
#: The app as docs/deploy.md sets it up: no tenant-wide Mail.Send in Entra, but
#: "Application Mail.Send" by RBAC for Applications, scoped to the service mailbox.
DOCS_APP = SandboxApp(
    client_id=DEFAULT_CLIENT_ID,
    client_secret=DEFAULT_CLIENT_SECRET,
    roles=tuple(r for r in ALL_APP_ROLES if r != "Mail.Send"),
    rbac_mail_send=(SERVICE_MAILBOX,),
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Tenant:
    """A sandbox tenant, the settings pointing at it, and a flows folder for it."""

    sandbox: RunningSandbox
    health: dict[str, Any]
    env: dict[str, str]
    flows_dir: Path

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = requests.request(
            method, f"{self.sandbox.base_url}/_sandbox{path}", timeout=30, **kwargs
        )
        answer.raise_for_status()
        return answer.json()

    def doctor(self, monkeypatch: pytest.MonkeyPatch, **changes: str) -> tuple[int, dict[str, Any]]:
        """Run `m365perf doctor --json` with these settings changed; (exit code, report)."""
        for key, value in {**self.env, **changes}.items():
            monkeypatch.setenv(f"M365PERF_{key.upper()}", value)
        result = CliRunner().invoke(main, ["doctor", "--flows", str(self.flows_dir), "--json"])
        report: dict[str, Any] = json.loads(result.stdout)
        return result.exit_code, report

    def write_flow(self, *, dataset: str | None = None) -> None:
        text = MONTHLY.read_text(encoding="utf-8")
        flow = load_flow(MONTHLY)
        assert flow.powerbi is not None
        text = text.replace(flow.powerbi.workspace, str(self.health["powerbi_workspace_id"]))
        text = text.replace(flow.powerbi.dataset, dataset or str(self.health["powerbi_dataset_id"]))
        (self.flows_dir / MONTHLY.name).write_text(text, encoding="utf-8")


@contextlib.contextmanager
def _serving(app: Any, port: int) -> Iterator[None]:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the service's web app did not start"
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def tenant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **config: Any) -> Iterator[Tenant]:
    monkeypatch.chdir(tmp_path)  # no .env of the repository's
    config.setdefault("apps", (DOCS_APP,))
    with running_sandbox(tmp_path, throttle=False, **config) as sandbox:
        health = requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=30).json()
        port = _free_port()
        env = {
            **health["settings"],
            "database_url": f"sqlite:///{tmp_path / 'service.db'}",
            "public_base_url": f"http://127.0.0.1:{port}",
            "certificate_path": "",
        }
        env.pop("certificate_path")
        flows_dir = tmp_path / "flows"
        flows_dir.mkdir()
        found = Tenant(sandbox, health, env, flows_dir)
        found.write_flow()
        service = Service(load_settings(**env), [load_flow(flows_dir / MONTHLY.name)])
        try:
            with _serving(service.app, port):
                yield found
        finally:
            service.store.close()


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in report["checks"]}


def _failed(report: dict[str, Any]) -> list[str]:
    return [c["name"] for c in report["checks"] if c["status"] == "fail"]


def test_a_healthy_tenant_passes_every_check_and_the_broken_ones_fail_theirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenant(tmp_path, monkeypatch) as council:
        code, report = council.doctor(monkeypatch)
        assert _failed(report) == [] and report["ok"] is True, report
        assert code == 0
        names = set(_by_name(report))
        assert {
            "token: Microsoft Graph",
            "token: Power BI",
            "token: Bot Framework",
            f"register ({FLOW_ID})",
            f"register columns ({FLOW_ID})",
            f"results list ({FLOW_ID})",
            f"results columns ({FLOW_ID})",
            "service mailbox",
            "bot endpoint",
            f"Power BI dataset ({FLOW_ID})",
            "flows validate",
        } <= names
        mailbox = _by_name(report)["service mailbox"]
        assert mailbox["status"] == "pass"  # the docs' RBAC-scoped setup passes
        assert "cannot be proven without sending" in mailbox["detail"]
        assert "Test-ServicePrincipalAuthorization" in mailbox["detail"]
        indexes = _by_name(report)[f"register indexes ({FLOW_ID})"]["detail"]
        assert "indexed: Frequency" in indexes and "no index needed: Active" in indexes
        healthy_names = [c["name"] for c in report["checks"]]

        # A wrong client secret: every token fails, with the fix naming the secret; the
        # checks that need a token are listed as not checked, so the set never changes.
        code, report = council.doctor(monkeypatch, client_secret="not-the-secret")
        assert code == 1
        assert _failed(report) == [
            "token: Microsoft Graph",
            "token: Power BI",
            "token: Bot Framework",
        ]
        assert "M365PERF_CLIENT_SECRET" in _by_name(report)["token: Microsoft Graph"]["fix"]
        assert [c["name"] for c in report["checks"]] == healthy_names
        unchecked = {c["name"]: c["detail"] for c in report["checks"]}
        assert unchecked["service mailbox"] == "not checked (needs a Graph token)"
        assert unchecked[f"register ({FLOW_ID})"] == "not checked (needs a Graph token)"
        assert unchecked[f"Power BI dataset ({FLOW_ID})"] == "not checked (needs a Power BI token)"
        text = CliRunner().invoke(main, ["doctor", "--flows", str(council.flows_dir)]).stdout
        assert f"3 of {len(healthy_names)} checks failed, 7 not checked" in text
        assert "SKIP  service mailbox: not checked (needs a Graph token)" in text

        # A placeholder dataset id: the dataset check fails before asking Power BI.
        council.write_flow(dataset=PLACEHOLDER)
        code, report = council.doctor(monkeypatch)
        assert code == 1 and _failed(report) == [f"Power BI dataset ({FLOW_ID})"]
        check = _by_name(report)[f"Power BI dataset ({FLOW_ID})"]
        assert "placeholder" in check["detail"] and "datasets/<dataset>" in check["fix"]

        # A dataset id that is no dataset: Power BI's 404, with where to look.
        council.write_flow(dataset="5b0c7a55-1d2e-4f3a-9b8c-7d6e5f4a3b2c")
        code, report = council.doctor(monkeypatch)
        assert code == 1 and _failed(report) == [f"Power BI dataset ({FLOW_ID})"]
        assert "not found" in _by_name(report)[f"Power BI dataset ({FLOW_ID})"]["detail"]
        council.write_flow()

        # A flow file that does not validate: named with its line, the others still checked.
        (council.flows_dir / "broken.yaml").write_text("id: Broken Flow\n", encoding="utf-8")
        code, report = council.doctor(monkeypatch)
        assert code == 1 and _failed(report) == ["flows validate"]
        assert "broken.yaml:1:" in _by_name(report)["flows validate"]["detail"]
        assert f"register ({FLOW_ID})" in _by_name(report)
        (council.flows_dir / "broken.yaml").unlink()

        # Nothing listens at the public URL: the bot check fails, saying to serve there.
        code, report = council.doctor(
            monkeypatch, public_base_url=f"http://127.0.0.1:{_free_port()}"
        )
        assert code == 1 and _failed(report) == ["bot endpoint"]
        assert "m365perf serve" in _by_name(report)["bot endpoint"]["fix"]


def test_scheduled_refreshes_are_counted_against_the_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenant(tmp_path, monkeypatch) as council:
        ids = {"workspace": council.health["powerbi_workspace_id"]}
        ids["dataset"] = council.health["powerbi_dataset_id"]
        for _ in range(2):
            council.admin("POST", "/powerbi/scheduled-refresh", json=ids)
        code, report = council.doctor(monkeypatch)
        assert code == 1 and _failed(report) == [f"Power BI schedule ({FLOW_ID})"]
        check = _by_name(report)[f"Power BI schedule ({FLOW_ID})"]
        assert "2 scheduled refresh(es)" in check["detail"]
        assert "scheduled_refreshes_per_day: 2" in check["fix"]
        assert "2 Scheduled" in _by_name(report)[f"Power BI dataset ({FLOW_ID})"]["detail"]


def test_an_app_power_bi_does_not_let_in_fails_the_dataset_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = SandboxApp(
        client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET, powerbi=False
    )
    with tenant(tmp_path, monkeypatch, apps=(app,)) as council:
        code, report = council.doctor(monkeypatch)
        assert code == 1 and _failed(report) == [f"Power BI dataset ({FLOW_ID})"]
        check = _by_name(report)[f"Power BI dataset ({FLOW_ID})"]
        assert "refused" in check["detail"]
        assert "Service principals can call Fabric public APIs" in check["fix"]
        assert _by_name(report)["token: Power BI"]["status"] == "pass"  # Entra still issues it


def test_register_and_results_columns_set_up_wrong_fail_their_own_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenant(tmp_path, monkeypatch) as council:
        # The filter column the register read sends to SharePoint, un-indexed.
        council.admin("PATCH", "/lists/KPI Register/columns/Frequency", json={"indexed": False})
        code, report = council.doctor(monkeypatch)
        assert code == 1 and _failed(report) == [f"register indexes ({FLOW_ID})"]
        check = _by_name(report)[f"register indexes ({FLOW_ID})"]
        assert "filter column 'Frequency' is not indexed" in check["detail"]
        assert "Create a new index → Frequency" in check["fix"]
        council.admin("PATCH", "/lists/KPI Register/columns/Frequency", json={"indexed": True})

        # The owner column turned into a number: it would not read as an e-mail.
        council.admin("PATCH", "/lists/KPI Register/columns/Owner", json={"kind": "number"})
        code, report = council.doctor(monkeypatch)
        assert code == 1 and _failed(report) == [f"register columns ({FLOW_ID})"]
        assert (
            "'Owner' is a number column"
            in _by_name(report)[f"register columns ({FLOW_ID})"]["detail"]
        )
        council.admin("PATCH", "/lists/KPI Register/columns/Owner", json={"kind": "text"})

        # The results list's key column un-indexed: write-back's look-up would be refused.
        council.admin("PATCH", "/lists/KPI Results/columns/Period", json={"indexed": False})
        code, report = council.doctor(monkeypatch)
        assert code == 1 and _failed(report) == [f"results columns ({FLOW_ID})"]
        check = _by_name(report)[f"results columns ({FLOW_ID})"]
        assert "not indexed" in check["detail"] and "Period" in check["detail"]
        assert f"m365perf provision {FLOW_ID}" in check["fix"]
        council.admin("PATCH", "/lists/KPI Results/columns/Period", json={"indexed": True})

        # A register column the field map names, dropped: named with its flow-file line.
        council.admin("DELETE", "/lists/KPI Register/columns/Target")
        code, report = council.doctor(monkeypatch)
        assert code == 1 and _failed(report) == [f"register columns ({FLOW_ID})"]
        check = _by_name(report)[f"register columns ({FLOW_ID})"]
        assert f"{council.flows_dir / MONTHLY.name}:" in check["detail"]
        assert "column 'Target' (mapped to target) is not in the register" in check["detail"]
        assert "add the column to 'KPI Register'" in check["fix"]

        # ... and `plan` against the tenant refuses the flow for the same reason.
        for key, value in council.env.items():
            monkeypatch.setenv(f"M365PERF_{key.upper()}", value)
        flow_file = str(council.flows_dir / MONTHLY.name)
        planned = CliRunner().invoke(main, ["plan", flow_file, "--period", "2026-10"])
        assert planned.exit_code == 2
        assert "register.fields.Target: column 'Target' (mapped to target)" in planned.stderr


def test_tenant_wide_mail_send_is_a_least_privilege_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An app as a trial leaves it: Mail.Send consented in Entra for every mailbox.
    app = SandboxApp(client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET)
    with tenant(tmp_path, monkeypatch, apps=(app,)) as council:
        code, report = council.doctor(monkeypatch)
        check = _by_name(report)["service mailbox"]
        assert check["status"] == "warn" and code == 0  # mail works; it is too wide
        assert "consented tenant-wide" in check["detail"]
        assert "remove" in check["fix"] and "RBAC for Applications" in check["fix"]
        assert "add the Microsoft Graph application permission" not in check["fix"]
        assert (
            council.admin("GET", f"/mailboxes/{SERVICE_MAILBOX}?folder=sentitems")["value"] == []
        )  # nothing was sent to find out


def test_the_docs_rbac_setup_passes_doctor_and_sends_only_from_the_service_mailbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenant(tmp_path, monkeypatch) as council:  # DOCS_APP: no Mail.Send role
        code, report = council.doctor(monkeypatch)
        assert code == 0 and _by_name(report)["service mailbox"]["status"] == "pass"
        m365 = clients_from_settings(load_settings(**council.env))
        try:
            m365.mail.send_mail(SERVICE_MAILBOX, ["someone@contoso.gov.uk"], "s", "<p>x</p>")
            with pytest.raises(M365Error):
                m365.mail.send_mail(
                    "someone.else@contoso.gov.uk", ["a@contoso.gov.uk"], "s", "<p>x</p>"
                )
        finally:
            m365.close()
        sent = council.admin("GET", f"/mailboxes/{SERVICE_MAILBOX}?folder=sentitems")["value"]
        assert len(sent) == 1
