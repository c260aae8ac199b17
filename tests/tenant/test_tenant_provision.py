"""``m365perf provision`` against a real sandbox over HTTP, healthy and set up wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from m365perf.cli import main
from m365perf.flows import load_flow
from m365perf.m365.factory import M365, clients_from_settings
from m365perf.m365.graph import ColumnDefinition
from m365perf.sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxApp
from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.settings import load_settings
from m365perf.tenant import results_list
from m365perf.tenant.provision import provision

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MONTHLY = ROOT / "flows" / "monthly-corporate-kpis.yaml"
REGISTER, RESULTS, HISTORY = "KPI Register", "KPI Results", "KPI History"


@dataclass
class Tenant:
    """A seeded sandbox, the clients for it, and the admin calls that break it."""

    sandbox: RunningSandbox
    m365: M365

    def admin(self, method: str, path: str, **kwargs: Any) -> None:
        url = f"{self.sandbox.base_url}/_sandbox{path}"
        requests.request(method, url, timeout=30, **kwargs).raise_for_status()

    @property
    def site_id(self) -> str:
        health = requests.get(f"{self.sandbox.base_url}/_sandbox/health", timeout=30).json()
        return str(health["site_id"])

    def columns(self, title: str) -> dict[str, ColumnDefinition]:
        graph = self.m365.graph
        listed = graph.list_columns(self.site_id, graph.get_list_id(self.site_id, title))
        return {c.name: c for c in listed if not c.read_only}

    def lists(self) -> dict[str, str]:
        health = requests.get(f"{self.sandbox.base_url}/_sandbox/health", timeout=30).json()
        return dict(health["lists"])


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[Tenant]:
    with running_sandbox(tmp_path, throttle=False) as sandbox:
        m365 = clients_from_settings(load_settings(**sandbox.settings_overrides()))
        try:
            yield Tenant(sandbox, m365)
        finally:
            m365.close()


def _cli(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.chdir(tenant.sandbox.data_dir)  # no .env of the repository's
    for name, value in tenant.sandbox.settings_overrides().items():
        monkeypatch.setenv(f"M365PERF_{name.upper()}", value)
    return CliRunner().invoke(main, ["provision", str(MONTHLY), *args])


def test_a_healthy_tenant_has_nothing_to_do(tenant: Tenant) -> None:
    report = provision(tenant.m365.graph, load_flow(MONTHLY))

    assert report.complete and report.actions == [] and report.register == []
    assert report.to_dict()["nothing_to_do"]


def test_an_absent_results_list_is_created_with_its_columns_and_indexes(tenant: Tenant) -> None:
    flow = load_flow(MONTHLY)
    tenant.admin("DELETE", f"/lists/{RESULTS}")

    report = provision(tenant.m365.graph, flow)

    assert report.complete
    assert [(a.kind, a.list_title) for a in report.actions] == [("create_list", RESULTS)]
    columns = tenant.columns(RESULTS)
    for wanted in results_list(flow).columns:
        have = columns[wanted.name]
        assert (have.type, have.indexed, have.multiline) == (
            wanted.type,
            wanted.indexed,
            wanted.multiline,
        ), wanted.name
    assert {n for n, c in columns.items() if c.indexed} == {"IndicatorId", "Period"}
    # write-back's read of one period's rows is a filter on an indexed key column
    graph, site = tenant.m365.graph, tenant.site_id
    list_id = graph.get_list_id(site, RESULTS)
    graph.create_item(site, list_id, {"IndicatorId": "COV-001", "Period": "2026-10"})
    assert len(list(graph.list_items(site, list_id, filter="fields/Period eq '2026-10'"))) == 1


def test_run_twice_leaves_the_same_lists_and_the_second_run_does_nothing(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant.admin("DELETE", f"/lists/{RESULTS}")
    tenant.admin("DELETE", f"/lists/{HISTORY}")

    first = _cli(tenant, monkeypatch)
    lists, columns = tenant.lists(), tenant.columns(RESULTS)
    second = _cli(tenant, monkeypatch)

    assert first.exit_code == 0, first.output
    assert "Done: create list 'KPI Results'" in first.output
    assert "Done: create list 'KPI History'" in first.output
    assert second.exit_code == 0, second.output
    assert "nothing to do" in second.output
    assert tenant.lists() == lists and tenant.columns(RESULTS) == columns


def test_a_dry_run_shows_what_it_would_create_and_creates_nothing(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant.admin("DELETE", f"/lists/{RESULTS}")

    result = _cli(tenant, monkeypatch, "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dry_run"] and report["complete"] and not report["nothing_to_do"]
    (action,) = report["actions"]
    assert action["kind"] == "create_list" and action["list_title"] == RESULTS
    assert {"IndicatorId", "Period", "Commentary", "Version"} <= set(action["columns"])
    assert RESULTS not in tenant.lists()


def test_a_missing_column_is_added_and_an_unindexed_key_indexed(tenant: Tenant) -> None:
    tenant.admin("DELETE", f"/lists/{RESULTS}/columns/Commentary")
    tenant.admin("PATCH", f"/lists/{RESULTS}/columns/Period", json={"indexed": False})
    list_id = tenant.lists()[RESULTS]

    report = provision(tenant.m365.graph, load_flow(MONTHLY))

    assert report.complete
    assert [(a.kind, a.column) for a in report.actions] == [
        ("index_column", "Period"),
        ("add_column", "Commentary"),
    ]
    columns = tenant.columns(RESULTS)
    assert columns["Commentary"].multiline and columns["Period"].indexed
    assert tenant.lists()[RESULTS] == list_id  # the same list, items kept


def test_missing_register_columns_are_printed_and_the_register_left_alone(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant.admin("DELETE", f"/lists/{REGISTER}/columns/Supervisor")
    tenant.admin("PATCH", f"/lists/{REGISTER}/columns/Frequency", json={"indexed": False})
    before = tenant.columns(REGISTER)

    result = _cli(tenant, monkeypatch)

    assert result.exit_code == 3, result.output
    assert "column 'Supervisor' (approver of step 'Supervisor check') is not in" in result.output
    assert "filter column 'Frequency' is not indexed" in result.output
    assert "nothing to do" in result.output  # the lists provision makes were fine
    assert tenant.columns(REGISTER) == before


def test_a_column_of_the_wrong_kind_is_reported_not_changed(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant.admin("PATCH", f"/lists/{RESULTS}/columns/Value", json={"kind": "text"})

    result = _cli(tenant, monkeypatch)

    assert result.exit_code == 1, result.output
    assert "Cannot fix: 'KPI Results' column 'Value'" in result.output
    assert "write-back writes number" in result.output
    assert tenant.columns(RESULTS)["Value"].type == "text"


def test_without_permission_to_manage_lists_it_says_which_it_needs(tmp_path: Path) -> None:
    app = SandboxApp(
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        roles=("Sites.ReadWrite.All", "User.Read.All", "Mail.Send"),
    )
    with running_sandbox(tmp_path, throttle=False, apps=(app,)) as sandbox:
        requests.delete(f"{sandbox.base_url}/_sandbox/lists/{RESULTS}", timeout=30)
        m365 = clients_from_settings(load_settings(**sandbox.settings_overrides()))
        try:
            report = provision(m365.graph, load_flow(MONTHLY))
        finally:
            m365.close()

    assert not report.complete
    assert report.error is not None and "Sites.Manage.All" in report.error


def test_a_misspelt_register_column_in_the_flow_is_reported_with_the_likely_one(
    tenant: Tenant, tmp_path: Path
) -> None:
    text = MONTHLY.read_text(encoding="utf-8")
    misspelt = tmp_path / "monthly.yaml"
    misspelt.write_text(
        text.replace("approver: {column: Supervisor}", "approver: {column: Supervsior}").replace(
            "    Service: service\n", "    service: service\n"
        ),
        encoding="utf-8",
    )

    report = provision(tenant.m365.graph, load_flow(misspelt))

    found = sorted(f.describe() for f in report.register)
    assert len(found) == 2, found
    (supervisor,) = [line for line in found if "'Supervsior'" in line]
    (service,) = [line for line in found if "'service'" in line]
    assert "did you mean 'Supervisor'" in supervisor
    assert "did you mean 'Service'" in service
    assert report.complete  # the lists provision makes are fine; the register is not its to fix


def test_a_flow_with_improvement_actions_gets_its_actions_list(
    tenant: Tenant, tmp_path: Path
) -> None:
    flow_file = tmp_path / "monthly.yaml"
    flow_file.write_text(
        MONTHLY.read_text(encoding="utf-8")
        + "\nactions:\n  required_for: [red]\n  list: KPI Actions\n",
        encoding="utf-8",
    )
    tenant.admin("DELETE", "/lists/KPI Actions")
    assert "KPI Actions" not in tenant.lists()

    report = provision(tenant.m365.graph, load_flow(flow_file))

    assert report.complete, report.to_dict()
    assert ("create_list", "KPI Actions") in [(a.kind, a.list_title) for a in report.actions]
    columns = tenant.columns("KPI Actions")
    assert columns["ActionId"].indexed
    again = provision(tenant.m365.graph, load_flow(flow_file))
    assert again.to_dict()["nothing_to_do"], again.to_dict()
