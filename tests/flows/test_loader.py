"""Flow files: every error named with file, line and column; valid examples load."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from m365perf.cli import main
from m365perf.flows import FlowError, load_flow, parse_flow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "flows").glob("*.yaml"))
MONTHLY = ROOT / "flows" / "monthly-corporate-kpis.yaml"


def _position(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based line and column where ``needle`` starts (its nth occurrence)."""
    start = -1
    for _ in range(occurrence):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, column


def test_three_examples_ship_and_are_valid() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {
        "monthly-corporate-kpis",
        "quarterly-service-standards",
        "annual-statutory-returns",
    } <= names
    frequencies = {load_flow(p).frequency.value for p in EXAMPLES}
    assert frequencies == {"monthly", "quarterly", "annual"}


def test_validate_directory_exits_zero() -> None:
    result = CliRunner().invoke(main, ["validate", str(ROOT / "flows")])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "3 flow file(s) valid" in result.stderr


def _broken_monthly(tmp_path: Path) -> tuple[Path, str]:
    text = MONTHLY.read_text()
    text = text.replace("calendar: england_and_wales", "calender: england_and_wales")
    text = text.replace("due_working_days: 5", "due_working_days: five")
    text = text.replace('opens_at: "09:00"', 'opens_at: "25:61"')
    text = text.replace("      approver: {column: HeadOfService}\n", "      when_: nothing\n", 1)
    text = text.replace("channels: [teams, email]", "channels: [teams, pigeon]")
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    return path, text


def test_broken_copy_reports_each_error_with_position(tmp_path: Path) -> None:
    path, text = _broken_monthly(tmp_path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    lines = result.stdout.strip().splitlines()
    unknown = _position(text, "calender")
    wrong_type = _position(text, "five")
    bad_time = _position(text, '"25:61"')
    step = _position(text, "- name: Head of service sign-off")
    step_item = (step[0], step[1] + 2)
    extra = _position(text, "when_")
    channel = _position(text, "pigeon")
    expected = {
        f"{path}:{unknown[0]}:{unknown[1]}: unknown key 'calender' in the flow "
        "(did you mean 'calendar'?)",
        f"{path}:{wrong_type[0]}:{wrong_type[1]}: schedule.due_working_days: "
        "Input should be a valid integer, unable to parse string as an integer",
        f"{path}:{bad_time[0]}:{bad_time[1]}: schedule.opens_at: "
        "must be a 24-hour time HH:MM, not '25:61'",
        f"{path}:{step_item[0]}:{step_item[1]}: approval.steps[1].approver: "
        "required key is missing",
        f"{path}:{extra[0]}:{extra[1]}: unknown key 'when_' in approval.steps[1] "
        "(did you mean 'when'?)",
        f"{path}:{channel[0]}:{channel[1]}: channels[1]: Input should be 'teams' or 'email', "
        "not 'pigeon'",
    }
    assert set(lines) == expected
    assert len(lines) == len(expected)


def test_syntax_error_is_positioned(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\nname: [unclosed\nfrequency: monthly\n")
    with pytest.raises(FlowError) as caught:
        load_flow(path)
    (problem,) = caught.value.problems
    assert problem.path == str(path)
    assert problem.line == 3 and problem.message.startswith("YAML syntax:")


def test_approver_needs_exactly_one_kind() -> None:
    text = MONTHLY.read_text().replace(
        "approver: {column: Supervisor}", "approver: {column: Supervisor, user: a@b.gov.uk}"
    )
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "f.yaml")
    (problem,) = caught.value.problems
    line, col = _position(text, "{column: Supervisor, user")
    assert (problem.line, problem.column) == (line, col)
    assert "exactly one of column, user, group or line_manager" in problem.message


def test_unknown_group_is_named_with_suggestion() -> None:
    text = MONTHLY.read_text().replace("{group: performance-team}", "{group: performance-teem}")
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "f.yaml")
    (problem,) = caught.value.problems
    assert "group 'performance-teem' is not defined" in problem.message
    assert "did you mean 'performance-team'?" in problem.message
    assert (problem.line, problem.column) == _position(text, "performance-teem")


def test_field_map_to_unknown_indicator_field() -> None:
    text = MONTHLY.read_text().replace("Owner: owner", "Owner: ownr")
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "f.yaml")
    messages = [p.message for p in caught.value.problems]
    assert any("unknown indicator field 'ownr' (did you mean 'owner'?)" in m for m in messages)


def test_suspension_period_must_match_frequency() -> None:
    quarterly = (ROOT / "flows" / "quarterly-service-standards.yaml").read_text()
    text = quarterly.replace("from: 2020/21 Q1", "from: 2020-04")
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "q.yaml")
    (problem,) = caught.value.problems
    assert problem.message.startswith("rag.suspended[0].from:")
    assert (problem.line, problem.column) == _position(text, "2020-04")


def test_power_bi_dataset_must_be_an_id() -> None:
    text = MONTHLY.read_text()
    dataset = text.split("dataset: ", 1)[1].split("\n", 1)[0]
    broken = text.replace(f"dataset: {dataset}", "dataset: 'KPI results: live'")
    with pytest.raises(FlowError) as caught:
        parse_flow(broken, "f.yaml")
    (problem,) = caught.value.problems
    assert problem.message.startswith("powerbi.dataset:")
    assert "must be a Power BI id (no spaces or ':'), not 'KPI results: live'" in problem.message


def test_staff_group_must_be_an_entra_object_id() -> None:
    text = MONTHLY.read_text()
    good = parse_flow(text + "staff_group: 3F2A9C1E-0B7D-4E5F-8A6B-1C2D3E4F5A6B\n", "f.yaml")
    with pytest.raises(FlowError) as caught:
        parse_flow(text + "staff_group: Performance team\n", "f.yaml")
    (problem,) = caught.value.problems
    assert good.staff_group == "3f2a9c1e-0b7d-4e5f-8a6b-1c2d3e4f5a6b"
    assert problem.message.startswith("staff_group:")
    assert "the Entra group's object id" in problem.message
    assert problem.line == text.count("\n") + 1


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 2
    assert "no flow files" in result.stdout


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("2026/27 Q3", "collect_from: '2026/27 Q3' is a quarterly period, but this flow reports "),
        ("2026-13", "collect_from: cannot read period '2026-13': months run from 01 to 12"),
        ("October", "collect_from: cannot read period 'October'"),
    ],
)
def test_collect_from_must_be_a_period_of_the_flow(label: str, message: str) -> None:
    text = MONTHLY.read_text().replace('collect_from: "2025-04"', f'collect_from: "{label}"')
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "m.yaml")
    (problem,) = caught.value.problems
    assert problem.message.startswith(message)
    where = _position(text, f'"{label}"')
    assert (problem.path, problem.line, problem.column) == ("m.yaml", *where)


def test_collect_from_is_optional_and_read_as_the_flow_period() -> None:
    text = MONTHLY.read_text()
    assert parse_flow(text).first_period is not None
    assert parse_flow(text).first_period.label == "2025-04"  # type: ignore[union-attr]
    unset = text.replace('collect_from: "2025-04"\n', "")
    assert parse_flow(unset).first_period is None


def _with_actions(block: str) -> str:
    return MONTHLY.read_text() + "\nactions:\n" + block


def test_an_actions_block_loads_with_its_defaults() -> None:
    flow = parse_flow(
        _with_actions("  required_for: [red, special_cause_concern]\n  list: KPI Actions\n"),
        "f.yaml",
    )
    assert flow.actions is not None
    assert flow.actions.required_for == ["red", "special_cause_concern"]
    assert (flow.actions.list_title, flow.actions.chase) == ("KPI Actions", True)


@pytest.mark.parametrize(
    ("block", "needle", "expected"),
    [
        (
            "  required_for: [red, amber]\n  list: KPI Actions\n",
            "amber",
            "actions.required_for[1]: Input should be 'red' or 'special_cause_concern'",
        ),
        ("  required_for: []\n  list: KPI Actions\n", "[]", "actions.required_for: List should"),
        (
            "  required_for: [red, red]\n  list: KPI Actions\n",
            "[red, red]",
            "actions.required_for: a result is listed twice",
        ),
        (
            "  required_for: [red]\n  list: KPI Results\n",
            "KPI Results\n",
            "actions.list: 'KPI Results' is already the results or history list",
        ),
        ("  required_for: [red]\n  lst: KPI Actions\n", "lst", "unknown key 'lst' in actions"),
        ("  required_for: [red]\n", "required_for", "actions.list: required key is missing"),
    ],
)
def test_a_bad_actions_block_is_named_with_its_position(
    block: str, needle: str, expected: str
) -> None:
    text = _with_actions(block)
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "f.yaml")
    found = [p for p in caught.value.problems if p.message.startswith(expected)]
    assert found, caught.value.problems
    problem = found[0]
    at = text.index("\nactions:\n")
    line, column = _position(text[at:], needle)
    assert (problem.line, problem.column) == (text.count("\n", 0, at) + line, column)


def test_approval_cards_are_a_digest_unless_the_flow_asks_for_one_per_item() -> None:
    text = MONTHLY.read_text()
    assert parse_flow(text, "monthly.yaml").approval.cards == "digest"
    per_item = text.replace("cards: digest ", "cards: per_item ")
    assert parse_flow(per_item, "monthly.yaml").approval.cards == "per_item"
    wrong = text.replace("cards: digest ", "cards: weekly ")
    with pytest.raises(FlowError) as caught:
        parse_flow(wrong, "monthly.yaml")
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == _position(wrong, "weekly")
    assert "digest" in problem.message and "per_item" in problem.message
