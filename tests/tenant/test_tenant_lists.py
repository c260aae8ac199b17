"""What lists a flow needs, as provision and doctor read it from the flow file."""

from __future__ import annotations

from pathlib import Path

from m365perf.flows import load_flow
from m365perf.flows.model import Flow
from m365perf.tenant import history_list, results_list

ROOT = Path(__file__).resolve().parents[2]
MONTHLY = ROOT / "flows" / "monthly-corporate-kpis.yaml"


def _with_writeback(flow: Flow, **changes: object) -> Flow:
    writeback = flow.writeback.model_copy(update=changes)
    return flow.model_copy(update={"writeback": writeback})


def test_the_results_list_indexes_the_key_write_back_filters_on() -> None:
    spec = results_list(load_flow(MONTHLY))

    assert (spec.site, spec.title) == ("contoso.sharepoint.com:/sites/performance", "KPI Results")
    assert spec.indexed == ("IndicatorId", "Period")
    assert spec.column("Value").type == "number"  # type: ignore[union-attr]
    assert spec.column("ApprovedAt").type == "dateTime"  # type: ignore[union-attr]
    assert spec.column("Commentary").multiline  # type: ignore[union-attr]
    assert len({c.name for c in spec.columns}) == len(spec.columns)


def test_a_flow_with_its_own_key_gets_those_columns_indexed() -> None:
    flow = _with_writeback(load_flow(MONTHLY), key=["KpiCode", "ReportingPeriod"])

    spec = results_list(flow)

    assert spec.indexed == ("KpiCode", "ReportingPeriod")
    assert spec.column("IndicatorId") is None and spec.column("Period") is None


def test_a_one_column_key_keeps_the_period_in_its_own_column() -> None:
    spec = results_list(_with_writeback(load_flow(MONTHLY), key=["IndicatorId"]))

    assert spec.indexed == ("IndicatorId", "Period")


def test_the_history_list_is_there_only_when_the_flow_names_one() -> None:
    flow = load_flow(MONTHLY)
    spec = history_list(flow)

    assert spec is not None and spec.title == "KPI History"
    assert spec.indexed == ("IndicatorId", "Period", "Series")
    assert history_list(_with_writeback(flow, history_list=None)) is None
