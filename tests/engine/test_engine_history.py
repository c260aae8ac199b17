"""History from day one: an export imported per indicator gives the first cycle its trends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from engine_support import ANN, COLUMNS, PEOPLE, card_text, per_item, submit_data

from m365perf.domain.kinds import Frequency
from m365perf.domain.periods import Period
from m365perf.engine import Engine
from m365perf.engine.history import ImportReport, import_history
from m365perf.flows import load_flow
from m365perf.history_files import PRESETS, ColumnMap, HistoryFileError, read_export
from m365perf.plan.register import read_indicators
from m365perf.store import APPROVED_SOURCE, PersonSpec, Store
from m365perf.store.testing import memory_store

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "src" / "m365perf" / "examples" / "history" / "coventry-pentana-export.csv"
BAD_ROWS = Path(__file__).parent / "data" / "history-bad-rows.csv"
ANNUAL = ROOT / "flows" / "annual-statutory-returns.yaml"
SOURCE = "import:coventry-pentana-export.csv"
#: 1 May 2026: the 2025/26 year-end cycle, the council's first in m365perf.
FIRST_CYCLE = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

# Coventry's "Active enterprises (rate per 10,000)": ten year-ends in the sample export.
ENTERPRISES = [
    "COV-011",
    "Active enterprises (rate per 10,000)",
    "ratio",
    "higher_is_better",
    "Annual",
    "",
    "",
    "",
    "",
    "ann.lee@contoso.gov.uk",
    "bob.ray@contoso.gov.uk",
    "cat.doe@contoso.gov.uk",
    "Economy",
    "Yes",
]


def _people(store: Store) -> None:
    with store.transaction() as tx:
        tx.upsert_people(
            [PersonSpec(id=i, name=n, email=e, line_manager_id=m) for i, n, e, m in PEOPLE]
            + [PersonSpec(id="priya", name="Priya Sharma", email="priya.sharma@contoso.gov.uk")],
            now=FIRST_CYCLE,
        )


def _import(
    store: Store, *, apply: bool = True, path: Path = SAMPLE, preset: str = "pentana"
) -> ImportReport:
    rows = read_export(path, PRESETS[preset])
    return import_history(
        store,
        rows,
        source=f"import:{path.name}",
        by="nadia.clarke@contoso.gov.uk",
        now=FIRST_CYCLE,
        apply=apply,
    )


def _open_first_cycle(store: Store, row: list[str]) -> Engine:
    flow = per_item(load_flow(ANNUAL))
    engine = Engine(store, [flow])
    register = [dict(zip(COLUMNS, row + [""] * (len(COLUMNS) - len(row)), strict=True))]
    indicators, problems = read_indicators(flow, register)
    assert problems == []
    engine.open_cycle(flow.id, Period.parse("2025/26"), indicators, problems, now=FIRST_CYCLE)
    return engine


def _cards_to(store: Store, email: str) -> list[dict[str, object]]:
    with store.transaction() as tx:
        return [
            m.payload["card"]
            for m in tx.list_outbox(kind="send_card")
            if m.payload["user"]["email"] == email
        ]


def test_the_sample_export_gives_the_first_cycle_trends_and_spc_limits() -> None:
    store = memory_store()
    _people(store)
    report = _import(store)
    assert (report.rejected, report.clashes) == ([], [])
    assert report.new == report.rows == 1153  # every row of the shipped sample imports
    engine = _open_first_cycle(store, ENTERPRISES)

    (request,) = _cards_to(store, "ann.lee@contoso.gov.uk")
    shown = card_text(request)
    assert "2024/25" in shown and "345" in shown  # last year's figure, from the export

    reply = engine.handle_action(
        ANN, "submitReturns", submit_data(request, **{"value__COV-011": "352"}), now=FIRST_CYCLE
    )
    assert "352" in card_text(reply)
    (approval,) = _cards_to(store, "bob.ray@contoso.gov.uk")
    text = card_text(approval)
    # eleven year-ends (ten imported, this one): limits, but trial ones, and it says so
    assert "trial limits from 11 points" in text
    assert "common cause" in text
    assert "improving" in text.lower()  # 352 against 2024/25's 345: direction of travel


def test_with_no_history_the_first_card_says_so_rather_than_common_cause() -> None:
    store = memory_store()
    _people(store)
    engine = _open_first_cycle(store, ENTERPRISES)
    (request,) = _cards_to(store, "ann.lee@contoso.gov.uk")
    assert "not recorded" in card_text(request)  # last year's figure: none was recorded
    engine.handle_action(
        ANN, "submitReturns", submit_data(request, **{"value__COV-011": "352"}), now=FIRST_CYCLE
    )
    (approval,) = _cards_to(store, "bob.ray@contoso.gov.uk")
    text = card_text(approval)
    assert "not enough history (1 point)" in text
    assert "common cause" not in text and "normal variation" not in text


def test_importing_again_changes_nothing() -> None:
    store = memory_store()
    first = _import(store)
    with store.transaction() as tx:
        before = tx.history("COV-011", Frequency.ANNUAL)
        audits = len(tx.list_audit())
    again = _import(store)
    assert (again.new, again.unchanged, again.clashes) == (0, first.new, [])
    assert "0 new, 1153 unchanged" in "\n".join(again.lines())
    with store.transaction() as tx:
        assert tx.history("COV-011", Frequency.ANNUAL) == before
        assert len(tx.list_audit()) == audits  # nothing written, nothing to audit


def test_an_applied_import_is_audited_with_its_counts_and_source() -> None:
    store = memory_store()
    _import(store)
    with store.transaction() as tx:
        (event,) = tx.list_audit(subject_type="history")
        (point, *_rest) = tx.history("COV-011", Frequency.ANNUAL)
    assert event.action == "history.imported" and event.actor == "nadia.clarke@contoso.gov.uk"
    assert event.after is not None
    assert (event.after["source"], event.after["new"], event.after["rejected"]) == (
        SOURCE,
        1153,
        0,
    )
    assert (point.period, point.value, point.source) == ("2015/16", 326.0, SOURCE)
    assert point.note == "Scope: Coventry; Data date: 2015 revised"


def test_a_dry_run_writes_nothing() -> None:
    store = memory_store()
    report = _import(store, apply=False)
    assert report.new == 1153 and not report.applied
    assert "dry run, nothing written" in report.lines()[0]
    with store.transaction() as tx:
        assert tx.history("COV-011", Frequency.ANNUAL) == []
        assert tx.list_audit() == []


def test_bad_rows_are_reported_with_their_line_and_reason_and_the_rest_imported() -> None:
    store = memory_store()
    report = _import(store, path=BAD_ROWS, preset="camms")
    reasons = {r.line: r.reason for r in report.rejected}
    assert sorted(reasons) == [4, 5, 6, 7, 10]
    assert "indicator id is blank" in reasons[4]
    assert "cannot read period '2024 H1'" in reasons[5]
    assert "'twelve' is not a number" in reasons[6]
    assert "duplicate row: line 3 already gives CP900 2024/25 Q2" in reasons[7]
    assert "no value" in reasons[10]
    assert report.new == 4
    text = "\n".join(report.lines())
    assert "line 5: CP900 2024 H1: cannot read period" in text
    with store.transaction() as tx:
        quarters = tx.history("CP900", Frequency.QUARTERLY)
        months = tx.history("CP901", Frequency.MONTHLY)
    assert [(p.period, p.value) for p in quarters] == [("2024/25 Q1", 12.0), ("2024/25 Q2", 13.0)]
    assert [(p.period, p.value) for p in months] == [("2024-04", 1234.0), ("2024-05", 1200.0)]


def test_a_clash_is_reported_and_the_value_held_is_kept(tmp_path: Path) -> None:
    store = memory_store()
    _import(store)
    corrected = tmp_path / "corrected.csv"
    corrected.write_text(
        "Code,Year,Actual\nCOV-011,2024-25,999\nCOV-011,2023-24,363\nCOV-011,2025-26,350\n",
        encoding="utf-8",
    )
    columns = ColumnMap.parse("id=Code,period=Year,value=Actual")
    report = import_history(
        store,
        read_export(corrected, columns),
        source="import:corrected.csv",
        by="x",
        now=FIRST_CYCLE,
        apply=True,
    )
    (clash,) = report.clashes
    assert (clash.line, clash.period, clash.value, clash.existing) == (2, "2024/25", 999.0, 345.0)
    assert (report.new, report.unchanged) == (1, 1)
    assert "the file says 999, the store holds 345 (from import:coventry-pentana-export.csv)" in (
        "\n".join(report.lines())
    )
    with store.transaction() as tx:
        by_period = {p.period: p.value for p in tx.history("COV-011", Frequency.ANNUAL)}
    assert by_period["2024/25"] == 345.0 and by_period["2025/26"] == 350.0


def test_a_period_of_another_frequency_than_the_registers_is_refused() -> None:
    store = memory_store()
    _people(store)
    quarterly = [*ENTERPRISES]
    quarterly[4] = "Quarterly"
    flow = load_flow(ROOT / "flows" / "quarterly-service-standards.yaml")
    register = [dict(zip(COLUMNS, quarterly + [""] * (len(COLUMNS) - len(quarterly)), strict=True))]
    indicators, _ = read_indicators(flow, register)
    Engine(store, [flow]).open_cycle(
        flow.id, Period.parse("2025/26 Q4"), indicators, [], now=FIRST_CYCLE
    )
    report = _import(store, apply=False)
    refused = [r for r in report.rejected if r.indicator == "COV-011"]
    assert len(refused) == 10
    assert "is an annual period, but the indicator is reported quarterly" in refused[0].reason


def test_an_xlsx_export_round_trips(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["PI Code", "PI Title", "Period", "Value", "Latest Note"])
    sheet.append(["COV-011", "Active enterprises", "2023/24", 363, "year end"])
    sheet.append(["COV-011", "Active enterprises", datetime(2025, 3, 31), 345.0, None])
    sheet.append([None, None, None, None, None])
    sheet.append(["COV-011", "Active enterprises", "Q1 2024/25", "abc", None])
    path = tmp_path / "pentana.xlsx"
    book.save(path)
    rows = read_export(path, PRESETS["pentana"])
    assert [r.line for r in rows] == [2, 3, 5]
    store = memory_store()
    report = import_history(
        store, rows, source="import:pentana.xlsx", by="x", now=FIRST_CYCLE, apply=True
    )
    # the date places the value in the month it falls in (no register says it is annual)
    assert report.new == 2 and [r.line for r in report.rejected] == [5]
    with store.transaction() as tx:
        (year,) = tx.history("COV-011", Frequency.ANNUAL)
        (month,) = tx.history("COV-011", Frequency.MONTHLY)
    assert year.period == "2023/24"
    assert (month.period, month.value) == ("2025-03", 345.0)


def test_a_malformed_xlsx_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "export.xlsx"
    broken.write_bytes(b"PK\x03\x04 this is not really a workbook")
    with pytest.raises(HistoryFileError, match=r"export\.xlsx: not a readable Excel workbook"):
        read_export(broken, PRESETS["pentana"])


def test_a_column_the_map_names_but_the_file_lacks_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryFileError, match="no column 'Actual' for the value"):
        read_export(SAMPLE, ColumnMap.parse("id=PI Code,period=Period,value=Actual"))


def test_history_follows_an_indicator_to_another_flow() -> None:
    """Approved in the annual flow, then moved: the quarterly flow's first card has its past."""
    store = memory_store()
    _people(store)
    _import(store)
    with store.transaction() as tx:
        assert [p.source for p in tx.history("COV-011", Frequency.ANNUAL)][-1] == SOURCE
    engine = _open_first_cycle(store, ENTERPRISES)
    (request,) = _cards_to(store, "ann.lee@contoso.gov.uk")
    engine.handle_action(
        ANN, "submitReturns", submit_data(request, **{"value__COV-011": "352"}), now=FIRST_CYCLE
    )
    with store.transaction() as tx:
        (cycle,) = tx.list_cycles()
        (ret,) = tx.list_returns(cycle_id=cycle.id)
        tx.approve_return(ret.id or 0, ret.version, by="bob", now=FIRST_CYCLE)
    # the register moves COV-011 to another annual flow (a copy of the statutory one)
    moved = load_flow(ANNUAL).model_copy(update={"id": "council-plan-annual"})
    register = [dict(zip(COLUMNS, ENTERPRISES + [""] * 2, strict=True))]
    indicators, _ = read_indicators(moved, register)
    Engine(store, [moved]).open_cycle(
        moved.id, Period.parse("2026/27"), indicators, [], now=FIRST_CYCLE
    )
    with store.transaction() as tx:
        points = tx.history("COV-011", Frequency.ANNUAL, before=Period.parse("2026/27").start)
    assert [(p.period, p.value) for p in points][-2:] == [("2024/25", 345.0), ("2025/26", 352.0)]
    assert points[-1].source == APPROVED_SOURCE
    requests = _cards_to(store, "ann.lee@contoso.gov.uk")
    assert "352" in card_text(requests[-1])  # the new flow's card shows last year's figure
