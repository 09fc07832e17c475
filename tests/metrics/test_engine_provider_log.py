"""The engine provider logs (logger `northstar.metrics`) a build it cannot open, once per
failure rather than on every check, and says whether a previous build is still served."""

from __future__ import annotations

import logging

import pytest

from metrics.engine import EngineProvider


def test_a_build_that_cannot_be_opened_is_logged_once(tmp_path, caplog):
    provider = EngineProvider(tmp_path / "missing.duckdb")
    with caplog.at_level(logging.WARNING, "northstar.metrics"):
        for _ in range(3):
            with pytest.raises(Exception):  # noqa: B017 (whatever opening it raises)
                provider.refresh(force=True)
    logged = [r for r in caplog.records if r.name == "northstar.metrics"]
    assert len(logged) == 1 and "no build to serve" in logged[0].getMessage(), logged
    assert provider.last_error and provider.last_error in logged[0].getMessage()
