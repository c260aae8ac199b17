"""The demo council: Coventry's register as published, a made-up but consistent directory."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

from click.testing import CliRunner
from sandbox_support import Wire

from m365perf.cli import main
from m365perf.domain.kinds import Frequency, Polarity
from m365perf.sandbox.config import DEFAULT_BOT_APP_ID, Faults
from m365perf.sandbox.seed import (
    REGISTER_FIELDS,
    directory,
    history_rows,
    period_label,
    register_rows,
    write_register_csv,
)


def test_register_csv_has_the_list_columns_and_every_coventry_metric(tmp_path: Path) -> None:
    path = write_register_csv(tmp_path / "register.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == REGISTER_FIELDS
        rows = list(reader)
    assert len(rows) == 236
    council_tax = next(r for r in rows if r["Title"] == "Council tax collection rate")
    assert council_tax["Unit"] == "percentage" and council_tax["Target"] == "94%+"
    assert council_tax["Polarity"] == Polarity.HIGHER_IS_BETTER
    assert council_tax["Active"] == "true"
    assert council_tax["Frequency"] in {f.value for f in Frequency}


def test_the_messy_rows_are_kept_as_published() -> None:
    rows = register_rows()
    assert any(r["Target"] == "" for r in rows)
    assert any(r["Target"] == "None set" for r in rows)
    assert any(r["Polarity"] == "" for r in rows)
    assert any(r["Unit"] == "grade" for r in rows)
    assert sum(1 for r in rows if r["Title"] == "Participation in the staff survey") == 2


def test_the_directory_is_deterministic_with_resolvable_managers() -> None:
    users = directory("contoso.gov.uk", DEFAULT_BOT_APP_ID)
    assert users == directory("contoso.gov.uk", DEFAULT_BOT_APP_ID)
    assert 25 <= len(users) <= 32
    ids = {u.id for u in users}
    assert all(uuid.UUID(i).version == 5 for i in ids)
    assert all(u.manager_id in ids for u in users if u.manager_id is not None)
    emails = {u.mail for u in users}
    for row in register_rows():
        assert {row["Owner"], row["Supervisor"], row["HeadOfService"]} <= emails
    assert "performance@contoso.gov.uk" in emails


def test_history_periods_read_as_financial_years() -> None:
    assert period_label("2019-20 end of year") == "2019/20"
    assert period_label("2017-18 half year") == "2017/18 H1"
    rows = history_rows()
    gdp = [r for r in rows if r["IndicatorId"] == "COV-001" and r["Series"] == "coventry"]
    assert ("2024/25", 35719.0) in [(r["Period"], r["Value"]) for r in gdp]
    assert any(r["Value"] is None and r["ValueText"] == "23 out of 35" for r in rows)


def test_the_seeded_list_matches_the_csv(wire: Wire, tmp_path: Path) -> None:
    with write_register_csv(tmp_path / "r.csv").open(encoding="utf-8", newline="") as handle:
        first = next(csv.DictReader(handle))
    item = wire.graph(
        "GET",
        wire.list_path("KPI Register") + "/items",
        params={"$filter": f"fields/IndicatorId eq '{first['IndicatorId']}'", "expand": "fields"},
    ).json()["value"][0]["fields"]
    for name in ("Title", "Unit", "Owner", "Supervisor", "HeadOfService", "Service"):
        assert item[name] == first[name]


def test_cli_refuses_a_bad_fault_spec() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--faults", "503=0.5,lag=0.1"])
    assert result.exit_code == 2
    assert "503, 429, slow, drop" in result.output
    assert Faults.parse("503=0.1,drop=0.02") == Faults(share_503=0.1, share_drop=0.02)
