"""`northstar build` into PostgreSQL: a failed build (here a dbt test failing on landing data
loaded from CSV) drops the schemas it wrote and leaves the served build, its schemas and the
running service untouched; rebuilds switch the running server over and prune old schemas.

Skipped unless NORTHSTAR_TEST_POSTGRES_DSN names a PostgreSQL server (`.ci/run` starts one).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import psycopg
import pytest

from northstar.build import build
from northstar.errors import BuildFailed
from northstar.postgres import schema_suffix
from tests.conftest import REPO, SAMPLE
from tests.northstar.test_build import FAILING_TEST, failing_dbt_project, over_2000

QUERY = {
    "metrics": ["active_users", "revenue"],
    "group_by": ["metric_time__month", "platform"],
    "order_by": ["metric_time__month", "platform"],
}


def build_schemas(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as con:
        return {r[0] for r in con.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE '%\\_\\_%'")}


def test_failed_build_drops_its_schemas_and_leaves_the_served_one(postgres_api, postgres_dsn, tmp_path: Path):
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    warehouse = postgres_api.warehouse
    served = os.readlink(warehouse)
    ready = postgres_api.client.get("/readyz").json()
    before = build_schemas(postgres_dsn)

    with pytest.raises(BuildFailed) as info:
        build(
            landing,
            warehouse,
            failing_dbt_project(tmp_path),
            docs=False,
            warehouse_type="postgres",
            postgres_dsn=postgres_dsn,
        )
    assert FAILING_TEST in info.value.message
    # the failing rows, read from the build's schemas before they were dropped
    assert "sample rows" in info.value.message and repr(over_2000(landing)) in info.value.message, info.value.message
    failed = info.value.details["build_id"]

    assert os.readlink(warehouse) == served
    assert build_schemas(postgres_dsn) == before
    assert not any(name.endswith(schema_suffix(failed)) for name in build_schemas(postgres_dsn))
    assert (warehouse.parent / "builds" / f"failed-{failed}").is_dir()
    assert postgres_api.client.get("/readyz").json() == ready
    answer = postgres_api.client.post("/v1/query", json={"metrics": ["events"], "group_by": []})
    assert answer.status_code == 200, answer.text


def _served_build(api) -> str:
    return api.client.get("/readyz").json()["build_id"]


def _wait_for_build(api, build_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _served_build(api) != build_id:
        assert time.monotonic() < deadline, f"the server did not switch over to {build_id}"
        time.sleep(0.2)


def test_rebuilds_switch_the_server_over_and_prune_old_schemas(postgres_api, postgres_dsn):
    """Two more builds into the served warehouse (keeping 2): the running server switches to
    each one as it is published and keeps answering; the schemas of the build that fell out of
    `keep` are dropped, those of the kept ones stay."""
    warehouse = postgres_api.warehouse
    first = _served_build(postgres_api)
    expected = postgres_api.client.post("/v1/query", json=QUERY).json()["rows"]
    built = []
    for _ in range(2):
        result = build(
            SAMPLE,
            warehouse,
            REPO / "dbt_project",
            docs=False,
            keep=2,
            warehouse_type="postgres",
            postgres_dsn=postgres_dsn,
        )
        built.append(result.build_id)
        _wait_for_build(postgres_api, result.build_id)
        answer = postgres_api.client.post("/v1/query", json=QUERY)
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"] == expected
    schemas = build_schemas(postgres_dsn)
    assert not any(name.endswith(schema_suffix(first)) for name in schemas)
    for build_id in built:
        assert {name for name in schemas if name.endswith(schema_suffix(build_id))}, build_id
    assert not (warehouse.parent / "builds" / first).exists()
