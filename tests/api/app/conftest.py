"""The app's browser tests share one Chromium for the session and the session's service."""

from __future__ import annotations

import pytest

from tests.api.browser import launch_browser


@pytest.fixture(scope="session")
def browser():
    with launch_browser() as launched:
        yield launched
