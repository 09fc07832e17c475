"""The page tests (tests/api/test_pages.py, tests/api/app/) share one Chromium for the session."""

from __future__ import annotations

import pytest

from tests.api.browser import launch_browser


@pytest.fixture(scope="session")
def browser():
    with launch_browser() as launched:
        yield launched
