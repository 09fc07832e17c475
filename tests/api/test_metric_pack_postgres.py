"""The metric-pack acceptance suite (tests/api/test_metric_pack.py), unchanged, against the
service built into and answering from PostgreSQL: every answer must equal the same
independent oracle (plain DuckDB SQL over the landing files) the DuckDB service is held to.

Skipped unless NORTHSTAR_TEST_POSTGRES_DSN names a PostgreSQL server (`.ci/run` starts one).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

_API_TESTS = str(Path(__file__).resolve().parent)
if _API_TESTS not in sys.path:
    sys.path.insert(0, _API_TESTS)

from test_metric_pack import *  # noqa: E402,F401,F403  (the suite's tests, collected here again)

# These two check the pack and the oracle themselves, not the service: once is enough.
del test_pack_is_complete, test_oracle_agrees_with_plain_python  # noqa: F821


@pytest.fixture(scope="module")
def api(postgres_api: Any) -> Any:
    """This module's tests talk to the PostgreSQL-backed service."""
    return postgres_api
