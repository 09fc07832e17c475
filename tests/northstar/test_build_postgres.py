"""`northstar build` into PostgreSQL: a failed build (here a dbt test failing on landing data
loaded from CSV) drops the schemas it wrote and leaves the served build, its schemas and the
running service untouched.

Skipped unless NORTHSTAR_TEST_POSTGRES_DSN names a PostgreSQL server (`.ci/run` starts one).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
import pytest

from metrics.errors import BuildFailed
from northstar.build import build
from northstar.postgres import schema_suffix
from tests.conftest import REPO, SAMPLE
from tests.northstar.test_build import rewrite


def build_schemas(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as con:
        return {r[0] for r in con.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE '%\\_\\_%'")}


def test_failed_build_drops_its_schemas_and_leaves_the_served_one(postgres_api, postgres_dsn, tmp_path: Path):
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    # Two different rows with the same event_id: not an exact duplicate, so the build must stop.
    rewrite(landing, "events",
            "select * from t union all select * replace ('tampered' as event_name) from (select * from t limit 1)")
    warehouse = postgres_api.warehouse
    served = os.readlink(warehouse)
    ready = postgres_api.client.get("/readyz").json()
    before = build_schemas(postgres_dsn)

    with pytest.raises(BuildFailed) as info:
        build(landing, warehouse, REPO / "dbt_project", docs=False, warehouse_type="postgres",
              postgres_dsn=postgres_dsn)
    assert "unique" in info.value.message and "event_id" in info.value.message
    failed = info.value.details["build_id"]

    assert os.readlink(warehouse) == served
    assert build_schemas(postgres_dsn) == before
    assert not any(name.endswith(schema_suffix(failed)) for name in build_schemas(postgres_dsn))
    assert (warehouse.parent / "builds" / f"failed-{failed}").is_dir()
    assert postgres_api.client.get("/readyz").json() == ready
    answer = postgres_api.client.post("/v1/query", json={"metrics": ["events"], "group_by": []})
    assert answer.status_code == 200, answer.text
