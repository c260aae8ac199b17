"""The Power BI project under powerbi/: its TMDL model is the lists we actually write.

The model's tables and columns are checked against the columns write-back and the
actions list are built from (``m365perf.tenant.lists``, derived from
``m365perf.flows.results``), not against a copied list; every measure and calculated
column refers to columns and measures that exist; the project's files point at each
other; the report's visuals use fields of the model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tmdl import TmdlError, TmdlObject, parse, parse_folder

from m365perf.flows import load_flow
from m365perf.flows.model import ImprovementActions
from m365perf.tenant.lists import ColumnSpec, actions_list, results_list

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "powerbi"
MODEL = PROJECT / "M365Perf.SemanticModel"
REPORT = PROJECT / "M365Perf.Report"
MONTHLY = ROOT / "flows" / "monthly-corporate-kpis.yaml"
GRAPH_TO_TMDL = {"text": "string", "number": "double", "boolean": "boolean", "dateTime": "dateTime"}
M_TYPES = {
    "type date": "dateTime",
    "type number": "double",
    "type datetimezone": "dateTime",
    "type logical": "boolean",
    "type text": "string",
}


def _tables() -> dict[str, TmdlObject]:
    files = parse_folder(MODEL / "definition")
    return {o.name: o for objects in files.values() for o in objects if o.type == "table"}


def _written() -> dict[str, tuple[ColumnSpec, ...]]:
    """The columns of the lists the example flow writes, as provision creates them."""
    flow = load_flow(MONTHLY)
    actions = ImprovementActions.model_validate({"required_for": ["red"], "list": "KPI Actions"})
    spec = actions_list(flow.model_copy(update={"actions": actions}))
    assert spec is not None
    return {"Results": results_list(flow).columns, "Actions": spec.columns}


def _source(table: TmdlObject) -> str:
    [partition] = table.all("partition")
    assert partition.expression == "m" and partition.properties["mode"] == "import"
    return partition.properties["source"]


def _m_types(source: str) -> dict[str, str]:
    """Column -> model type, from the partition's Table.TransformColumnTypes."""
    return {
        name: M_TYPES[kind] for name, kind in re.findall(r'\{"([^"]+)",\s*(type \w+)\}', source)
    }


@pytest.mark.parametrize("table_name", ["Results", "Actions"])
def test_each_table_has_exactly_the_columns_we_write(table_name: str) -> None:
    table = _tables()[table_name]
    written = _written()[table_name]
    stored = [c for c in table.all("column") if c.expression is None]
    assert [c.properties["sourceColumn"] for c in stored] == [c.name for c in written]
    assert all(c.name == c.properties["sourceColumn"] for c in stored)
    source = _source(table)
    [selected] = re.findall(r"Table\.SelectColumns\(Items, \{([^}]*)\}", source)
    assert re.findall(r'"([^"]+)"', selected) == [c.name for c in written]
    typed = _m_types(source)
    for spec, column in zip(written, stored, strict=True):
        expected = typed.get(spec.name, GRAPH_TO_TMDL[spec.type])
        assert column.properties["dataType"] == expected, spec.name
        if spec.type != "text":  # numbers, booleans and dates are typed in Power Query
            assert spec.name in typed, f"{spec.name} is not typed in the partition's M"


def test_the_lists_are_read_from_the_parameterised_site() -> None:
    expressions = parse_folder(MODEL / "definition")["expressions.tmdl"]
    parameters = {e.name: e.expression or "" for e in expressions}
    assert set(parameters) == {"SiteUrl", "ResultsList", "ActionsList"}
    assert all("IsParameterQuery = true" in p for p in parameters.values())
    flow = load_flow(MONTHLY)
    host, path = flow.writeback.site.split(":", 1)
    assert parameters["SiteUrl"].startswith(f'"https://{host}{path}"')
    assert parameters["ResultsList"].startswith(f'"{flow.writeback.list_title}"')
    tables = _tables()
    assert "SharePoint.Tables(SiteUrl," in _source(tables["Results"])
    assert "[Title = ResultsList]" in _source(tables["Results"])
    assert "[Title = ActionsList]" in _source(tables["Actions"])
    assert "contoso" not in _source(tables["Results"])  # the site is the parameter's alone


def _references(expression: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(table, column-or-measure) references and bare [name] references in DAX."""
    code = re.sub(r'"(?:[^"]|"")*"', '""', expression)  # string literals hold no references
    qualified = [
        (table.strip("'").replace("''", "'"), name)
        for table, name in re.findall(r"('(?:[^']|'')+'|\b[A-Za-z_]\w*)\[([^\]]+)\]", code)
    ]
    bare = re.findall(r"(?<![\w'\]])\[([^\]]+)\]", code)
    return qualified, bare


def test_every_measure_and_calculated_column_refers_to_what_exists() -> None:
    tables = _tables()
    fields = {
        name: {c.name for c in t.all("column")} | {m.name for m in t.all("measure")}
        for name, t in tables.items()
    }
    checked = 0
    for name, table in tables.items():
        for obj in [*table.all("measure"), *(c for c in table.all("column") if c.expression)]:
            assert obj.expression, f"{name}[{obj.name}] has no expression"
            qualified, bare = _references(obj.expression)
            for ref_table, ref in qualified:
                assert ref_table in tables, f"{obj.name} refers to a table {ref_table!r}"
                assert ref in fields[ref_table], f"{obj.name} refers to {ref_table}[{ref}]"
            for ref in bare:
                assert ref in fields[name], f"{obj.name} refers to [{ref}], not in {name}"
            checked += 1
    measures = {m.name for t in tables.values() for m in t.all("measure")}
    for wanted in (
        "Red Count",
        "Amber Count",
        "Green Count",
        "On Target Share",
        "Improving Count",
        "Worsening Count",
        "Latest Value",
        "Overdue Actions",
    ):
        assert wanted in measures
    assert checked >= len(measures)


def test_the_reference_check_catches_a_missing_column() -> None:
    """The check above can fail: a measure naming a column we never write is caught."""
    [table] = parse(
        "table T\n\n\tmeasure M =\n\t\t\tSUM ( T[Nope] ) + [Other]\n\n\tcolumn A\n"
        "\t\tdataType: string\n\t\tsourceColumn: A\n"
    )
    [measure] = table.all("measure")
    qualified, bare = _references(measure.expression or "")
    assert qualified == [("T", "Nope")] and bare == ["Other"]
    assert "Nope" not in {c.name for c in table.all("column")}


def test_the_variation_and_assurance_icons_use_the_columns_we_write() -> None:
    results = {c.name: c for c in _tables()["Results"].all("column")}
    icon = results["Variation Icon"]
    assert icon.properties["dataCategory"] == "ImageUrl"
    assert "Results[VariationColour]" in (icon.expression or "")
    kind = results["Variation Kind"].expression or ""
    from m365perf.domain.spc import Assurance, Variation

    for label in ("common cause", "improvement", "concern", "neither"):
        assert f'"{label}"' in kind
    assert all(
        v.value.startswith("common cause") or v.value.split("— ")[1] in kind for v in Variation
    )
    assurance = results["Assurance Icon"].expression or ""
    for value in Assurance:
        assert f'"{value.value}"' in assurance  # every assurance we write has an icon


def test_a_badly_indented_file_is_an_error_with_its_line() -> None:
    with pytest.raises(TmdlError, match=r"x\.tmdl:3: indented 4 levels under a line at 1"):
        parse("table T\n\tcolumn A\n\t\t\t\tdataType: string\n", "x.tmdl")
    with pytest.raises(TmdlError, match=r"x\.tmdl:1: 'dataType: string' is not"):
        parse("dataType: string\n", "x.tmdl")


def _json(path: Path) -> dict[str, object]:
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), f"{path} has a BOM"
    document: dict[str, object] = json.loads(raw)
    return document


def test_the_project_files_point_at_each_other() -> None:
    [pbip] = PROJECT.glob("*.pbip")
    artefacts = _json(pbip)["artifacts"]
    assert isinstance(artefacts, list)
    [report_path] = [a["report"]["path"] for a in artefacts]
    report = (PROJECT / report_path).resolve()
    assert report == REPORT.resolve() and (report / "definition.pbir").is_file()
    dataset = _json(report / "definition.pbir")["datasetReference"]
    assert isinstance(dataset, dict)
    model = (report / dataset["byPath"]["path"]).resolve()
    assert model == MODEL.resolve() and (model / "definition.pbism").is_file()
    assert (model / "definition" / "model.tmdl").is_file()
    assert _json(report / ".platform")["metadata"] == {"type": "Report", "displayName": "M365Perf"}
    assert _json(model / ".platform")["metadata"]["type"] == "SemanticModel"  # type: ignore[index]
    refs = [o for o in parse_folder(model / "definition")["model.tmdl"] if o.type == "ref table"]
    assert sorted(r.name for r in refs) == sorted(_tables())
    pages = _json(report / "definition" / "pages" / "pages.json")
    for page in pages["pageOrder"]:  # type: ignore[attr-defined]
        assert _json(report / "definition" / "pages" / page / "page.json")["name"] == page


def test_every_visual_uses_fields_of_the_model() -> None:
    tables = _tables()
    visuals = sorted((REPORT / "definition" / "pages").glob("*/visuals/*/visual.json"))
    assert len(visuals) >= 5
    for path in visuals:
        document = _json(path)
        assert document["name"] == path.parent.name
        for field in re.findall(
            r'"(Measure|Column)": \{\s*"Expression": \{\s*"SourceRef": '
            r'\{\s*"Entity": "([^"]+)"\s*\}\s*\},\s*"Property": "([^"]+)"',
            path.read_text(encoding="utf-8"),
        ):
            kind, entity, prop = field
            names = {o.name for o in tables[entity].all(kind.lower())}
            assert prop in names, f"{path.parent.name}: {entity}[{prop}] is not a {kind.lower()}"
