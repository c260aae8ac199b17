"""The exceptions report: what SLT and scrutiny are shown for a cycle, in HTML, CSV, JSON."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from engine_support import ANN, Council, open_period, submit_data
from report_support import AS_OF, COMMENT_AMBER, COMMENT_RED, report_of, reported_council

from m365perf.domain.kinds import Polarity, Rag
from m365perf.domain.spc import Variation, analyse
from m365perf.engine.context import EngineContext
from m365perf.reports.exceptions import ActionLine, IndicatorLine, Section, select_exceptions
from m365perf.reports.gather import gather_exceptions
from m365perf.reports.render import render_csv, render_html, render_json

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def council() -> Council:
    """One reported cycle for the module: reading it changes nothing."""
    return reported_council()


def _keys(report: object, section: Section) -> list[str]:
    return [x.key for x in report.sections[section]]  # type: ignore[attr-defined]


def test_each_section_lists_the_figures_that_need_members_attention(council: Council) -> None:
    report = report_of(council, big_change_percent=25)

    assert _keys(report, Section.RED) == ["CP001"]
    assert _keys(report, Section.AMBER) == ["CP002"]
    assert _keys(report, Section.CONCERN) == ["CP001"]  # below its lower process limit
    assert _keys(report, Section.IMPROVEMENT) == ["CP002"]  # fewer days than ever
    assert _keys(report, Section.BIG_CHANGE) == ["CP001"]  # 50% to 30%: a 40% fall
    assert _keys(report, Section.MISSING) == ["CP003"]
    [red] = report.sections[Section.RED]
    assert red.commentary == COMMENT_RED and red.owner == "Ann Lee"
    assert red.status == "returned"  # still with its approvers: shown, marked so
    assert [a.what for a in red.actions] == ["Two extra collection rounds a week until March."]
    [missing] = report.sections[Section.MISSING]
    assert (missing.owner, missing.service, missing.value) == ("Dan Fox", "Streetpride", None)
    [overdue] = report.overdue_actions
    assert (overdue.who, overdue.due_on, overdue.days_overdue(AS_OF)) == (
        "Ann Lee",
        date(2026, 11, 30),
        5,
    )
    assert (report.returns, report.figures_in) == (3, 2)


def test_a_big_change_is_by_default_the_flows_unusual_change(council: Council) -> None:
    """The monthly flow's outlier threshold is 50%: a 40% fall is not listed by default."""
    report = report_of(council)
    assert report.big_change_percent == 50
    assert _keys(report, Section.BIG_CHANGE) == []
    assert _keys(report, Section.RED) == ["CP001"]


def test_actions_done_or_not_yet_due_are_not_overdue() -> None:
    def action(status: str, due: date) -> ActionLine:
        return ActionLine("CP1", "Recycling", "2026-10", "Do it", "Ann", due, status, None, 1)

    report = select_exceptions(
        [],
        [
            action("done", date(2026, 11, 1)),
            action("in_progress", date(2026, 12, 5)),  # due today: not yet over
            action("in_progress", date(2026, 12, 4)),
            action("not_started", date(2026, 10, 1)),
        ],
        flow_id="f",
        flow_name="F",
        period="2026-10",
        cycle_id=1,
        due_date=date(2026, 11, 11),
        as_of=date(2026, 12, 5),
        big_change_percent=20,
    )
    assert [a.due_on for a in report.overdue_actions] == [date(2026, 10, 1), date(2026, 12, 4)]


def test_the_html_draws_one_spc_chart_per_listed_indicator_coloured_as_nhs_england_does(
    council: Council,
) -> None:
    report = report_of(council, big_change_percent=25)
    html = render_html(report)

    assert "@page { size: A4;" in html
    assert COMMENT_RED.replace("'", "&#39;") in html and COMMENT_AMBER in html
    assert "Dan Fox" in html and "5 days over" in html
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(svgs) == 2  # CP001 and CP002 once each, though listed in several sections
    charts = {}
    for text in svgs:
        svg = ET.fromstring(text)
        title = svg.find(f"{SVG}title")
        assert title is not None and title.text
        charts[title.text] = svg
    recycling = charts["Household waste recycled: SPC chart"]
    points = recycling.findall(f"{SVG}circle[@class='point']")
    assert len(points) == 13  # twelve months of history and October
    assert points[-1].get("fill") == Variation.CONCERN.colour == "#e46c0a"
    assert {p.get("fill") for p in points[:-1]} == {Variation.COMMON_CAUSE.colour}
    for line in ("mean", "upper", "lower", "target"):
        assert recycling.findall(f"{SVG}line[@class='{line}']"), f"no {line} line"
    days = charts["Days to process new benefit claims: SPC chart"]
    assert days.findall(f"{SVG}circle")[12].get("fill") == Variation.IMPROVEMENT.colour
    desc = recycling.find(f"{SVG}desc")
    assert desc is not None and "target 45" in (desc.text or "")


def test_the_csv_has_one_row_per_indicator_per_section_and_the_json_the_charts(
    council: Council,
) -> None:
    report = report_of(council, big_change_percent=25)
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert [(r["section"], r["indicator_id"]) for r in rows] == [
        ("red", "CP001"),
        ("amber", "CP002"),
        ("special_cause_concern", "CP001"),
        ("special_cause_improvement", "CP002"),
        ("big_change", "CP001"),
        ("missing_return", "CP003"),
        ("overdue_action", "CP001"),
    ]
    assert rows[0]["commentary"] == COMMENT_RED and rows[0]["rag"] == "red"
    assert rows[-1]["action_due"] == "2026-11-30" and rows[-1]["days_overdue"] == "5"

    document = json.loads(render_json(report))
    assert document["counts"]["red"] == 1 and document["counts"]["overdue_action"] == 1
    assert sorted(document["charts"]) == ["CP001", "CP002"]
    assert document["charts"]["CP001"]["points"][-1]["label"] == Variation.CONCERN.value


def test_commentary_cannot_inject_markup_into_the_report() -> None:
    chart = analyse(
        [(f"2026-0{i}", float(v)) for i, v in enumerate([5, 6, 5, 6, 9], 1)],
        Polarity.LOWER_IS_BETTER,
        target=4,
    )
    line = IndicatorLine(
        key="X1",
        name="<b>Name</b>",
        service=None,
        owner="O",
        unit="count",
        status="approved",
        value=9,
        target=4,
        rag=Rag.RED,
        chart=chart,
        commentary='<script>alert("x")</script> & more',
    )
    report = select_exceptions(
        [line],
        [],
        flow_id="f",
        flow_name="F & G",
        period="2026-05",
        cycle_id=1,
        due_date=date(2026, 6, 10),
        as_of=date(2026, 6, 20),
        big_change_percent=20,
    )
    html = render_html(report)
    assert "<script>" not in html and "<b>Name</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in html
    assert "F &amp; G" in html


def test_an_approved_return_with_no_data_is_listed_as_missing_with_its_reason() -> None:
    """SLT must see that a figure could not be given, even once its "no data" is approved."""
    line = IndicatorLine(
        key="X2",
        name="Fly-tipping incidents",
        service=None,
        owner="O",
        unit="count",
        status="approved",
        value=None,
        no_data_reason="the case system was down all month",
    )
    report = select_exceptions(
        [line],
        [],
        flow_id="f",
        flow_name="F",
        period="2026-05",
        cycle_id=1,
        due_date=date(2026, 6, 10),
        as_of=date(2026, 6, 20),
        big_change_percent=20,
    )
    assert [x.key for x in report.sections[Section.MISSING]] == ["X2"]
    assert "no data: the case system was down all month" in render_html(report)


def test_an_earlier_cycles_report_leaves_out_actions_agreed_in_a_later_one() -> None:
    council = reported_council()
    open_period(council.engine, "2026-11", now=council.now)
    november = next(
        c["card"]
        for c in reversed(council.cards_to("ann.lee@contoso.gov.uk"))
        if str(c["card_id"]).startswith("request-")
    )
    council.act(
        ANN,
        "submitReturns",
        submit_data(
            november,
            value__CP001="29",
            comment__CP001="Still short of crews.",
            actionwhat__CP001="Hire two more crews.",
            actionby__CP001="2026-12-01",
            confirm__CP001="true",
        ),
    )
    with council.store.transaction() as tx:
        october, later = sorted(tx.list_cycles(), key=lambda c: c.period)
        ctx = EngineContext(council.engine.flows)
        then = gather_exceptions(tx, ctx, october, as_of=AS_OF)
        now = gather_exceptions(tx, ctx, later, as_of=AS_OF)
    assert [a.what for a in then.overdue_actions] == [
        "Two extra collection rounds a week until March."
    ]
    assert [a.what for a in now.overdue_actions] == [
        "Two extra collection rounds a week until March.",
        "Hire two more crews.",
    ]
