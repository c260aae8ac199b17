"""The size switch the reliability suites share picks the CI size unless asked for full."""

from __future__ import annotations

import reliability_support


def test_ci_size_unless_full_size_is_asked_for() -> None:
    expected = 2000 if reliability_support.FULL_SIZE else 200
    assert reliability_support.sized(200, 2000) == expected
