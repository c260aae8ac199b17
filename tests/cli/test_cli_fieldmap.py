"""A flow whose field map names a column the register lacks is refused, not run half-blind.

The three cases from review: a misspelt target column (RAG silently off for the whole
flow), a misspelt filter column (no indicator due, exit 0), a misspelt approver column
(every return "has no approver"). `plan`, `cycle open` and the service's opening all
refuse them, naming the flow file's line and the column meant.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from m365perf.cli import main
from m365perf.demo import SimulatedClock
from m365perf.domain.periods import Period
from m365perf.engine.context import at_local
from m365perf.flows import Flow, load_flow
from m365perf.plan.timetable import timetable
from m365perf.service import Service
from m365perf.settings import load_settings
from m365perf.sync import CsvPeople, CsvRegister, PeopleSource, RegisterSource

ROOT = Path(__file__).resolve().parents[2]
FLOW_FILE = ROOT / "flows" / "monthly-corporate-kpis.yaml"
REGISTER = ROOT / "config" / "demo-register.csv"
DIRECTORY = ROOT / "config" / "demo-directory.csv"

#: (what the flow file says instead, the line it is on, the key shown, the hint)
CASES = {
    "target": ("    Targt: target", "register.fields.Targt", "(did you mean 'Target'?)"),
    "filter": ('    Activ: "Yes"', "register.filter.Activ", "(did you mean 'Active'?)"),
    "approver": (
        "      approver: {column: Supervisr}",
        "approval.steps[0].approver.column",
        "(did you mean 'Supervisor'?)",
    ),
}
ORIGINAL = {
    "target": "    Target: target",
    "filter": '    Active: "Yes"',
    "approver": "      approver: {column: Supervisor}",
}


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("M365PERF_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    for name in ("TENANT_ID", "CLIENT_ID"):
        monkeypatch.delenv(f"M365PERF_{name}", raising=False)
    return CliRunner()


def _misspelt(tmp_path: Path, case: str) -> tuple[Path, int]:
    """The monthly flow with one column misspelt; the 1-based line of the misspelling."""
    lines = FLOW_FILE.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(ORIGINAL[case]))
    lines[index] = lines[index].replace(ORIGINAL[case], CASES[case][0])
    path = tmp_path / f"{case}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, index + 1


def _run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, [*args, "--register", str(REGISTER), "--directory", str(DIRECTORY)])


@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_refuses_a_misspelt_column_with_the_line_and_the_column_meant(
    runner: CliRunner, tmp_path: Path, case: str
) -> None:
    flow_file, line = _misspelt(tmp_path, case)
    result = _run(runner, "plan", str(flow_file), "--period", "2026-10")
    assert result.exit_code == 2, result.output
    _, where, hint = CASES[case]
    assert f"Error: {flow_file}:{line}:" in result.stderr
    assert where in result.stderr and hint in result.stderr
    assert "is not in the register 'KPI Register'" in result.stderr
    assert "Opens" not in result.stdout  # no plan printed as if all were well


@pytest.mark.parametrize("case", sorted(CASES))
def test_cycle_open_refuses_a_misspelt_column_and_opens_nothing(
    runner: CliRunner, tmp_path: Path, case: str
) -> None:
    flow_file, line = _misspelt(tmp_path, case)
    result = _run(runner, "cycle", "open", str(flow_file), "--period", "2026-10")
    assert result.exit_code == 2, result.output
    assert f"Error: {flow_file}:{line}:" in result.stderr
    assert CASES[case][2] in result.stderr
    assert runner.invoke(main, ["cycle", "list"]).output == "No cycles.\n"


def test_the_flow_as_shipped_plans_and_opens(runner: CliRunner) -> None:
    planned = _run(runner, "plan", "monthly-corporate-kpis", "--period", "2026-10", "--json")
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["counts"]["indicators"] > 0
    opened = _run(runner, "cycle", "open", "monthly-corporate-kpis", "--period", "2026-10")
    assert opened.exit_code == 0, opened.output


def test_plan_warns_of_an_empty_target_column_and_targets_without_polarity(
    runner: CliRunner, tmp_path: Path
) -> None:
    rows = REGISTER.read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    target, polarity = header.index("Target"), header.index("Polarity")
    blank_targets, no_polarity = [rows[0]], [rows[0]]
    for line in rows[1:]:
        cells = line.split(",")
        if len(cells) != len(header):
            continue  # a quoted comma; these rows are not needed
        blank_targets.append(",".join(c if i != target else "" for i, c in enumerate(cells)))
        cells[target], cells[polarity] = "50", ""
        no_polarity.append(",".join(cells))
    (tmp_path / "blank.csv").write_text("\n".join(blank_targets) + "\n", encoding="utf-8")
    (tmp_path / "nopol.csv").write_text("\n".join(no_polarity) + "\n", encoding="utf-8")

    plan = ["plan", "monthly-corporate-kpis", "--period", "2026-10", "--register"]
    blank = runner.invoke(main, [*plan, str(tmp_path / "blank.csv"), "--json"])
    assert blank.exit_code == 0, blank.output
    assert "warning: register.fields.Target: column 'Target' (target) is empty on all" in (
        blank.stderr
    )
    assert "RAG would be off for the whole flow" in blank.stderr
    warnings = json.loads(blank.stdout)["warnings"]
    assert [w["where"] for w in warnings] == ["register.fields.Target"]

    unjudged = runner.invoke(main, [*plan, str(tmp_path / "nopol.csv")])
    assert unjudged.exit_code == 0, unjudged.output
    assert "have a target but no polarity to judge it by, so they get no RAG" in (unjudged.stderr)
    assert "warning: register.fields.Polarity: column 'Polarity' (polarity) is empty" in (
        unjudged.stderr
    )


class _Files:
    def sources(self, flow: Flow) -> tuple[RegisterSource, PeopleSource]:
        return CsvRegister(REGISTER), CsvPeople(DIRECTORY)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_service_does_not_open_a_cycle_of_a_misspelt_flow(
    tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    flow_file, line = _misspelt(tmp_path, case)
    flow = load_flow(flow_file)
    opens = timetable(flow, Period.parse("2026-10")).opens
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'service.db'}",
        tenant_id="tenant",
        client_id="client",
        client_secret="secret",
        bot_app_id="bot",
    )
    clock = SimulatedClock(at_local(opens, flow.schedule.opening_time))
    service = Service(settings, [flow], clock=clock, sources=_Files().sources, worker_id="a")
    try:
        with caplog.at_level(logging.ERROR, logger="m365perf.service"):
            assert service.open_due_cycles() == []
        with service.store.transaction() as tx:
            assert tx.list_cycles() == [] and tx.list_outbox(kind="send_card") == []
    finally:
        service.store.close()
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    text = record.getMessage()
    assert f"cannot open {flow.id} 2026-10" in text
    assert f"{flow_file}:{line}:" in text and CASES[case][2] in text
