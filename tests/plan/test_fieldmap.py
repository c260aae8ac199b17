"""The field-map check on its own: what SharePoint says of a column, and the hints it gives."""

from __future__ import annotations

from pathlib import Path

from m365perf.flows import load_flow
from m365perf.plan.fieldmap import RegisterColumn, check_field_map

ROOT = Path(__file__).resolve().parents[2]
FLOW = load_flow(ROOT / "flows" / "monthly-corporate-kpis.yaml")
NAMES = [*FLOW.source.fields, *FLOW.source.filter, "Supervisor", "HeadOfService"]


def _columns(**changed: RegisterColumn | None) -> list[RegisterColumn]:
    base = {n: RegisterColumn(n, "text", indexed=n in FLOW.source.filter) for n in NAMES}
    for name, column in changed.items():
        if column is None:
            del base[name]
        else:
            base[name] = column
    return list(base.values())


def test_a_register_with_every_column_has_no_problem() -> None:
    assert check_field_map(FLOW, _columns(), check_indexes=True) == []


def test_a_person_column_is_refused_because_it_reads_as_a_lookup_id() -> None:
    owner = RegisterColumn("Owner", "personOrGroup")
    (problem,) = check_field_map(FLOW, _columns(Owner=owner))
    assert problem.severity == "error" and problem.kind == "type"
    assert "reads as a person's lookup id, not an e-mail" in problem.message


def test_the_hint_names_the_internal_name_when_the_flow_used_the_display_name() -> None:
    renamed = RegisterColumn("HoS", "text", display_name="HeadOfService")
    (problem,) = check_field_map(FLOW, _columns(HeadOfService=None, HoS=renamed))
    assert problem.where == "approval.steps[1].approver.column"
    assert "did you mean 'HoS'? 'HeadOfService' is its display name" in problem.message


def test_only_filters_sent_to_sharepoint_need_an_index() -> None:
    # Active: "Yes" is matched by m365perf itself (SharePoint keeps it as a boolean).
    columns = _columns(
        Active=RegisterColumn("Active", "boolean", indexed=False),
        Frequency=RegisterColumn("Frequency", "text", indexed=False),
    )
    problems = check_field_map(FLOW, columns, check_indexes=True)
    assert [(p.kind, p.where) for p in problems] == [("index", "register.filter.Frequency")]
    assert check_field_map(FLOW, columns) == []  # plan and cycle open do not ask
