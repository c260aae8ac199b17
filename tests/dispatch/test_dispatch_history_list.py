"""`m365perf history import --from-sharepoint` against the sandbox's KPI History list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from dispatch_support import Bench

from m365perf.cli import main
from m365perf.domain.kinds import Frequency
from m365perf.store import create_store

BY = "nadia.clarke@contoso.gov.uk"


def _invoke(bench: Bench, monkeypatch: pytest.MonkeyPatch, database: str, *args: str) -> Result:
    for key, value in bench.health["settings"].items():
        monkeypatch.setenv(f"M365PERF_{key.upper()}", str(value))
    monkeypatch.setenv("M365PERF_DATABASE_URL", database)
    result = CliRunner().invoke(
        main,
        [
            "history",
            "import",
            "--from-sharepoint",
            "--site",
            bench.site,
            "--json",
            *args,
        ],
    )
    return result


def _run(bench: Bench, monkeypatch: pytest.MonkeyPatch, database: str, *args: str) -> Any:
    result = _invoke(bench, monkeypatch, database, "--series", "coventry", *args)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_the_sharepoint_history_list_imports_once_and_reports_its_half_years(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'history.db'}"
    first = _run(bench, monkeypatch, database, "--apply", "--by", BY)
    assert first["applied"] and first["new"] > 500 and first["source"] == "sharepoint:KPI History"
    # the list's half-year rows ("2016/17 H1") name no period of ours: rejected, by item
    half_years = [r for r in first["rejected"] if r["period"].endswith("H1")]
    assert half_years and all("cannot read period" in r["reason"] for r in half_years)
    assert first["place"] == "item" and all(r["line"] > 0 for r in first["rejected"])
    again = _run(bench, monkeypatch, database, "--apply", "--by", BY)
    assert (again["new"], again["unchanged"], again["clashes"]) == (0, first["new"], [])
    store = create_store(database)
    try:
        with store.transaction() as tx:
            points = tx.history("COV-011", Frequency.ANNUAL)
    finally:
        store.close()
    assert [p.period for p in points][-1] == "2024/25" and len(points) >= 7
    assert points[-1].source == "sharepoint:KPI History"


def test_without_series_the_comparators_are_not_taken_for_the_councils_history(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'history.db'}"
    refused = _invoke(bench, monkeypatch, database, "--apply", "--by", BY)
    assert refused.exit_code == 1
    assert "holds several series" in refused.stderr
    assert "national (530 rows)" in refused.stderr and "--series coventry" in refused.stderr
    assert not (tmp_path / "history.db").exists()  # refused before anything was written
    # The council's series alone: England's and the comparator's values are not imported.
    only = _run(bench, monkeypatch, database)
    assert only["new"] > 500 and only["clashes"] == []
