"""One real sandbox for the dispatcher tests; each test keeps to its own lists and rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dispatch_support import Bench

from m365perf.sandbox.testing import running_sandbox


@pytest.fixture(scope="session")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    # Plain http (tokens are fetched directly, not through MSAL) and pages large
    # enough that one read of a test's list is one request.
    with running_sandbox(tmp_path_factory.mktemp("dispatch"), tls=False, page_size=100) as box:
        yield Bench(box)
