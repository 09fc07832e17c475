"""node-postgres and Evidence's PostgreSQL connector (its runQuery: search_path on connect, a
COUNT over the query, then pg-cursor batches) against the SQL endpoint; JS Dates bound to
date comparisons; every value equals /v1/query's."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api.sql_endpoint.sql_servers import SqlServer, sql_server  # noqa: F401
from tests.api.sql_endpoint.test_clients import http_rows

SCRIPT = Path(__file__).parent / "node" / "clients.js"
# Installed once per machine outside the repository (never committed); pinned majors.
PACKAGES = ["pg@8", "pg-cursor@2"]
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "northstar-tests" / "node"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed")
    modules = CACHE / "node_modules"
    if not (modules / "pg").exists() or not (modules / "pg-cursor").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--no-save", *PACKAGES],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            pytest.skip(f"npm could not install {PACKAGES}: {proc.stderr[-500:]}")
    return modules


def test_node_postgres_and_evidence_agree_with_http(sql_server: SqlServer, api, node_modules):
    proc = subprocess.run(
        ["node", str(SCRIPT), str(sql_server.port)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(node_modules)},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)

    def as_json(rows):
        return [[v.isoformat() if isinstance(v, dt.date) else v for v in row] for row in rows]

    # JS Dates as bounds of a week and of a day comparison (/v1/query's `end` is exclusive).
    assert out["weekly"] == as_json(
        http_rows(
            api,
            {
                "metrics": ["sessions"],
                "group_by": ["metric_time__week", "platform"],
                "start": "2026-01-05",
                "end": "2026-02-02",
                "order_by": ["metric_time__week", "platform"],
            },
        )
    )
    assert out["weekly_types"] == [1082, 25, 20]  # date, text, int8
    assert out["daily"] == as_json(
        http_rows(
            api,
            {
                "metrics": ["sessions"],
                "group_by": ["metric_time__day"],
                "start": "2026-02-01",
                "end": "2026-02-04",
                "order_by": ["metric_time__day"],
            },
        )
    )

    evidence = out["evidence"]
    want = as_json(
        http_rows(
            api, {"metrics": ["active_users"], "group_by": ["metric_time__month"], "order_by": ["metric_time__month"]}
        )
    )
    assert evidence["expected_rows"] == len(want)
    assert [row for batch in evidence["batches"] for row in batch] == want
    assert all(len(batch) == 2 for batch in evidence["batches"][:-1])  # read in batches of the cursor
    assert evidence["fields"] == [["metric_time__month", 1082], ["active_users", 20]]
