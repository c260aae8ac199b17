"""``m365perf spc`` on a real council series (Coventry's fly-tips) and on bad files."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner

from m365perf.cli import main

COVENTRY_FLYTIPS = Path(__file__).resolve().parent / "data" / "coventry_flytips.csv"
"""Coventry's own fly-tip counts, one row per reporting period, as published (OGL v3)."""


@pytest.fixture
def flytips() -> Path:
    return COVENTRY_FLYTIPS


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["spc", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "series.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_coventry_fly_tips_as_json(flytips: Path) -> None:
    code, out, _ = run(str(flytips), "--polarity", "lower_is_better", "--target", "6000", "--json")
    assert code == 0
    doc = json.loads(out)
    values = [p["value"] for p in doc["points"]]
    assert values == [2316, 1505, 3342, 2030, 4704, 6922, 6955, 10727, 8473, 6840, 5925, 6428]
    assert doc["points"][0]["period"] == "2015-16 end of year"
    assert doc["points"][-1]["period"] == "2024-25 end of year"

    # twelve points: one fixed baseline of all of them
    mean = sum(values) / 12
    mr_bar = sum(abs(b - a) for a, b in pairwise(values)) / 11
    for point in doc["points"]:
        assert point["mean"] == pytest.approx(mean)
        assert point["upper_limit"] == pytest.approx(mean + 2.66 * mr_bar)
        assert point["lower_limit"] == pytest.approx(mean - 2.66 * mr_bar)
    assert doc["trial_limits"] is False
    assert doc["baseline"] == 12

    rules = [p["rules"] for p in doc["points"]]
    labels = [p["label"] for p in doc["points"]]
    # the early low counts sit close to the lower limit; the last seven are all above the
    # mean (more fly-tips: a concern); 2020-21 broke through the upper limit
    assert rules[:5] == [["two_in_three"], ["two_in_three"], [], ["two_in_three"], []]
    assert rules[7] == ["outside_limits", "shift"]
    assert all(r[-1:] == ["shift"] for r in rules[5:])
    assert labels[:2] == ["special cause — improvement"] * 2
    assert labels[5:] == ["special cause — concern"] * 7
    assert {p["colour"] for p in doc["points"][5:]} == {"#e46c0a"}
    assert doc["assurance"] == "hit and miss"
    assert doc["summary"] == "special cause — concern: 7 points above the mean; target hit and miss"


def test_coventry_fly_tips_as_a_readable_table_and_chart(flytips: Path) -> None:
    code, out, _ = run(str(flytips), "--polarity", "lower_is_better", "--target", "6000")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        "XmR chart of coventry_flytips.csv: 12 points, polarity lower_is_better, target 6000"
    )
    row = next(line for line in lines if "2020-21 end of year" in line)
    assert "10727" in row and "special cause — concern" in row and "outside_limits" in row
    chart = [line for line in lines if "|" in line]
    assert len(chart) == 15
    assert chart[0].split("|")[0].strip() == "10727"  # the highest point tops the chart
    assert "x" in chart[0]  # drawn as a concern
    assert any("upper limit 9857.5" in line for line in chart)
    assert any("target 6000" in line for line in chart)
    assert lines[-1] == (
        "Latest point (2024-25 end of year): special cause — concern: 7 points above the mean; "
        "target hit and miss"
    )


def test_the_command_is_registered_with_help() -> None:
    result = CliRunner().invoke(main, ["spc", "--help"])
    assert result.exit_code == 0
    assert "--polarity" in result.stdout and "--baseline" in result.stdout


def test_blank_values_are_skipped_with_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, "period,value\n2024-04,5\n2024-05,\n2024-06,7\n")
    code, out, err = run(str(path), "--polarity", "none", "--json")
    assert code == 0
    assert [p["period"] for p in json.loads(out)["points"]] == ["2024-04", "2024-06"]
    assert f"{path}:3: note: no value for 2024-05; skipped" in err


def test_spreadsheet_style_numbers_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, 'Period,Value\n2024-04,"6,840"\n2024-05,5.4%\n')
    code, out, _ = run(str(path), "--polarity", "none", "--json")
    assert code == 0
    assert [p["value"] for p in json.loads(out)["points"]] == [6840, 5.4]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("period,value\n2024-04,5\n2024-05,n/a\n", ":3: value 'n/a' is not a number"),
        ("month,amount\n2024-04,5\n", ":1: the first row must name the columns"),
        ("period,value\n,5\n", ":2: the row has no period"),
        ("period,value\n2024-04,5\n2024-04,6\n", "'2024-04' appears more than once"),
        ("period,value\n2024-04,\n", "no values to chart"),
    ],
)
def test_a_bad_file_names_the_line_and_exits_2(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    code, out, err = run(str(path), "--polarity", "higher_is_better", "--json")
    assert code == 2
    assert out == ""
    assert str(path) in err and message in err


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "nope.csv"), "--polarity", "none")
    assert code == 2 and "cannot be read" in err


def test_options_reach_the_chart(flytips: Path) -> None:
    code, out, _ = run(
        str(flytips), "--polarity", "lower_is_better", "--baseline", "20", "--screen", "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["trial_limits"] is True and doc["baseline"] == 12
    code, out, _ = run(
        str(flytips),
        "--polarity",
        "lower_is_better",
        "--json",
        "--rebase",
        "2018-19 end of year=new enforcement policy",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["rebases"] == [
        {"from_period": "2018-19 end of year", "reason": "new enforcement policy"}
    ]
    assert doc["points"][5]["mean"] != doc["points"][4]["mean"]


def test_a_bad_rebase_is_refused(flytips: Path) -> None:
    code, _, err = run(str(flytips), "--polarity", "none", "--rebase", "2031-32")
    assert code == 2 and "PERIOD=REASON" in err
    code, _, err = run(str(flytips), "--polarity", "none", "--rebase", "2031-32=why")
    assert code == 2 and "no such period" in err


def test_png_chart(flytips: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "chart.png"
    code, _, _ = run(str(flytips), "--polarity", "lower_is_better", "--png", str(png))
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
