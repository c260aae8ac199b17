"""The accessibility check itself: it must catch a real violation, and pass a clean page."""

from __future__ import annotations

from typing import Any

import pytest
from axe_support import assert_no_serious_violations, axe_violations

pytestmark = pytest.mark.browser

CLEAN = """<!doctype html><html lang="en"><head><title>Clean</title></head>
<body><main><h1>Returns</h1><form><label for="v">Value</label><input id="v" name="v">
<button type="submit">Submit</button></form></main></body></html>"""

BROKEN = """<!doctype html><html lang="en"><head><title>Broken</title></head>
<body><main><h1>Returns</h1><form><input name="v"><button></button></form>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></main></body></html>"""


def test_a_clean_page_passes(browser: Any) -> None:
    page = browser.new_page()
    page.set_content(CLEAN)
    assert_no_serious_violations(page)
    page.close()


def test_an_unlabelled_field_and_an_image_without_alt_are_caught(browser: Any) -> None:
    page = browser.new_page()
    page.set_content(BROKEN)
    found = {v["id"] for v in axe_violations(page)}
    assert {"label", "image-alt", "button-name"} <= found
    with pytest.raises(AssertionError, match="image-alt"):
        assert_no_serious_violations(page)
    page.close()
