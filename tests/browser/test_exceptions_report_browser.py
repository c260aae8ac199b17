"""The exceptions report in real Chromium: it prints on A4 and passes axe-core.

The report of a cycle with every kind of exception (a red concern with an overdue
action, an amber improvement, a missing return) is printed to PDF as Chromium prints
it; the PDF and a screenshot are saved in ``tests/artefacts/`` (or
``$M365PERF_ARTEFACTS``) for a person to look at.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from axe_support import assert_no_serious_violations

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reports"))

from report_support import report_of, reported_council

from m365perf.reports.render import render_html

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
A4_POINTS = (595, 842)  # 210 x 297 mm in PDF points
A4_CSS_PX = 794  # 210 mm at 96 CSS pixels per inch


def artefacts() -> Path:
    folder = Path(os.environ.get("M365PERF_ARTEFACTS") or ROOT / "tests" / "artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    page = tmp_path_factory.mktemp("report") / "exceptions.html"
    page.write_text(render_html(report_of(reported_council(), big_change_percent=25)), "utf-8")
    return page


def test_the_report_prints_on_a4_with_its_charts(browser: Any, report_file: Path) -> None:
    page = browser.new_page(viewport={"width": A4_CSS_PX, "height": 1123})
    try:
        page.goto(report_file.as_uri())
        page.emulate_media(media="print")
        # nothing is wider than the paper: no table or chart runs off the page's edge
        assert page.evaluate("document.documentElement.scrollWidth") <= A4_CSS_PX
        assert page.locator("figure svg.spc").count() == 2
        assert page.locator("svg.spc circle.point").first.is_visible()
        pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
        page.emulate_media(media="screen")
        page.screenshot(path=str(artefacts() / "exceptions-report.png"), full_page=True)
    finally:
        page.close()
    (artefacts() / "exceptions-report.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF")
    boxes = {
        tuple(round(float(n)) for n in box.split()[2:])
        for box in re.findall(rb"/MediaBox\s*\[([^\]]+)\]", pdf)
        for box in [box.decode()]
    }
    assert boxes == {A4_POINTS}, f"pages are not A4: {boxes}"
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 2 <= pages <= 4  # the tables, then the charts from a new page


def test_the_report_passes_axe_core(browser: Any, report_file: Path) -> None:
    page = browser.new_page()
    try:
        page.goto(report_file.as_uri())
        assert_no_serious_violations(page)
    finally:
        page.close()
