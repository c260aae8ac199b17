"""`m365perf demo --flows DIR --period FLOW=PERIOD`: bad choices stop before the sandbox starts."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from m365perf.cli import main


def test_a_broken_flow_in_flows_dir_is_reported_with_its_position(tmp_path: Path) -> None:
    (tmp_path / "ours.yaml").write_text("id: ours\nname: Ours\nfrequency: weekly\n")
    result = CliRunner().invoke(main, ["demo", "--auto", "--flows", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'ours.yaml'}:3:12: frequency:" in result.output


def test_a_flows_dir_without_flows_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--auto", "--flows", str(tmp_path)])
    assert result.exit_code == 2
    assert "no *.yaml flow files" in result.output


def test_a_period_for_a_flow_not_rehearsed_names_the_flows_that_are() -> None:
    result = CliRunner().invoke(main, ["demo", "--auto", "--period", "ours=2026-10"])
    assert result.exit_code == 2
    assert "annual-statutory-returns, monthly-corporate-kpis" in result.output


def test_a_period_of_the_wrong_frequency_says_what_works() -> None:
    result = CliRunner().invoke(
        main, ["demo", "--auto", "--period", "monthly-corporate-kpis=2025/26"]
    )
    assert result.exit_code == 2
    assert "use a label like '2025-04'" in result.output
