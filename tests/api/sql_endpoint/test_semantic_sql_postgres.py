"""The SQL endpoint's semantic-layer and marts SQL (tests/api/sql_endpoint/test_semantic_sql.py),
unchanged, over an engine on the build in PostgreSQL, held to the same oracle.

Skipped unless NORTHSTAR_TEST_POSTGRES_DSN names a PostgreSQL server (`.ci/run` starts one).
"""

from __future__ import annotations

import pytest

from metrics.engine import MetricsEngine
from tests.api.sql_endpoint.test_semantic_sql import *  # noqa: F401,F403  (collected here again)


@pytest.fixture(scope="module")
def engine(postgres_api, postgres_dsn):
    engine = MetricsEngine.open(postgres_api.warehouse, postgres_dsn=postgres_dsn)
    yield engine
    engine.close()
