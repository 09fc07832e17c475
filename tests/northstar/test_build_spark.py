"""`northstar build` into Spark: a failed build (a dbt test failing on landing data from CSV)
deletes the data it wrote and leaves the served build and the running service untouched; a
new build is published and the running server switches over to it, registering its tables.

Marked slow (each Spark build takes minutes); run with `pytest -m slow tests/northstar/test_build_spark.py`.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from northstar.build import build
from northstar.errors import BuildFailed
from tests.conftest import REPO, SAMPLE
from tests.northstar.test_build import FAILING_TEST, failing_dbt_project

pytestmark = pytest.mark.slow

QUERY = {
    "metrics": ["active_users", "revenue"],
    "group_by": ["metric_time__month", "platform"],
    "order_by": ["metric_time__month", "platform"],
}


def test_failed_build_deletes_its_data_and_leaves_the_served_one(spark_api, tmp_path: Path):
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    warehouse = spark_api.warehouse
    served = os.readlink(warehouse)
    ready = spark_api.client.get("/readyz").json()

    with pytest.raises(BuildFailed) as info:
        build(landing, warehouse, failing_dbt_project(tmp_path), docs=False, warehouse_type="spark")
    assert FAILING_TEST in info.value.message, info.value.message
    failed = warehouse.parent / "builds" / f"failed-{info.value.details['build_id']}"

    assert os.readlink(warehouse) == served
    assert failed.is_dir() and (failed / "logs").is_dir()
    assert not (failed / "spark-warehouse").exists() and not (failed / "landing").exists()
    assert spark_api.client.get("/readyz").json() == ready
    answer = spark_api.client.post("/v1/query", json={"metrics": ["events"], "group_by": []})
    assert answer.status_code == 200, answer.text


def test_a_new_build_is_served_without_a_restart(spark_api):
    warehouse = spark_api.warehouse
    first = spark_api.client.get("/readyz").json()["build_id"]
    expected = spark_api.client.post("/v1/query", json=QUERY).json()["rows"]
    result = build(SAMPLE, warehouse, REPO / "dbt_project", docs=False, warehouse_type="spark")
    assert result.build_id != first
    deadline = time.monotonic() + 120  # the server registers the new build's tables first
    while spark_api.client.get("/readyz").json()["build_id"] != result.build_id:
        assert time.monotonic() < deadline, "the server did not switch over to the new build"
        time.sleep(0.5)
    answer = spark_api.client.post("/v1/query", json=QUERY)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == expected
