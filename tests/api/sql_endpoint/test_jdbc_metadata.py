"""pgjdbc's DatabaseMetaData in full (getTypeInfo, getTables, getColumns with REMARKS,
getPrimaryKeys, getIndexInfo, getFunctions, getSchemas, getCatalogs, getTableTypes,
getImportedKeys), through the real driver, on northstar and on a real PostgreSQL with a
comparable table: every call answers with PostgreSQL's result-set columns."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")

from tests.api.sql_endpoint.sql_servers import SqlServer, sql_server  # noqa: E402,F401
from tests.api.sql_endpoint.test_clients import JDBC_JAR, need  # noqa: E402

SOURCE = Path(__file__).parent / "jdbc" / "NorthstarJdbcMetadata.java"
CALLS = [
    "getTypeInfo",
    "getTables",
    "getColumns",
    "getPrimaryKeys",
    "getIndexInfo",
    "getFunctions",
    "getSchemas",
    "getCatalogs",
    "getTableTypes",
    "getImportedKeys",
]
# northstar's catalog serves `name` columns as text and widens integers and floats (DuckDB's
# types); a JDBC client reads them with the same getters.
SAME_TYPE = {
    "name": "text",
    "varchar": "text",
    "int2": "int",
    "int4": "int",
    "int8": "int",
    "float4": "float",
    "float8": "float",
}
# The table on PostgreSQL that stands for semantic.metrics (created if missing; never dropped,
# so concurrent runs do not race).
POSTGRES_TABLE = [
    "CREATE SCHEMA IF NOT EXISTS jdbc_metadata",
    "CREATE TABLE IF NOT EXISTS jdbc_metadata.metrics (metric_time__day date, platform text, active_users bigint)",
    "COMMENT ON TABLE jdbc_metadata.metrics IS 'metrics'",
    "COMMENT ON COLUMN jdbc_metadata.metrics.active_users IS 'users'",
]


@pytest.fixture(scope="module")
def metadata_classes(tmp_path_factory) -> Path:
    javac = need("javac")
    if not JDBC_JAR.exists():
        pytest.skip(f"{JDBC_JAR} missing (.ci/run installs libpostgresql-jdbc-java)")
    out = tmp_path_factory.mktemp("jdbc-metadata")
    subprocess.run([javac, "-d", str(out), str(SOURCE)], check=True, capture_output=True, timeout=120)
    return out


def _metadata(classes: Path, url: str, user: str, password: str, schema: str, table: str) -> dict:
    proc = subprocess.run(
        [need("java"), "-cp", f"{JDBC_JAR}:{classes}", "NorthstarJdbcMetadata", url, user, password, schema, table],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    calls: dict[str, dict] = {}
    for line in proc.stdout.splitlines():
        call, kind, *values = line.split("\t")
        entry = calls.setdefault(call, {"columns": [], "rows": []})
        if kind == "columns":
            entry["columns"] = [tuple(value.rsplit(":", 1)) for value in values]
        else:
            entry["rows"].append(values)
    return calls


def _shape(columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(label.lower(), SAME_TYPE.get(type_name, type_name)) for label, type_name in columns]


def test_jdbc_database_metadata_answers_like_postgresql(sql_server: SqlServer, metadata_classes):
    ours = _metadata(
        metadata_classes,
        f"jdbc:postgresql://{sql_server.host}:{sql_server.port}/northstar",
        "analyst",
        "",
        "semantic",
        "metrics",
    )
    assert list(ours) == CALLS  # every call answered (the program stops at the first error)

    types = {row[0] for row in ours["getTypeInfo"]["rows"]}
    assert {"bool", "int8", "float8", "text", "varchar", "date", "timestamp", "numeric"} <= types
    [table] = ours["getTables"]["rows"]
    assert table[1:4] == ["semantic", "metrics", "TABLE"] and table[4] not in ("", "null")  # REMARKS
    columns = {row[3]: row for row in ours["getColumns"]["rows"]}
    assert columns["active_users"][5] == "int8" and columns["metric_time__day"][5] == "date"
    assert all(columns[name][11] not in ("", "null") for name in ("active_users", "metric_time__day"))
    assert ours["getPrimaryKeys"]["rows"] == [] and ours["getImportedKeys"]["rows"] == []
    assert {row[0] for row in ours["getSchemas"]["rows"]} >= {"semantic", "marts"}
    assert ours["getCatalogs"]["rows"] == [["northstar"]]
    assert ["TABLE"] in ours["getTableTypes"]["rows"]

    dsn = os.environ.get("NORTHSTAR_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip("NORTHSTAR_TEST_POSTGRES_DSN is not set: shapes not compared with PostgreSQL")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in POSTGRES_TABLE:
            conn.execute(statement)
        info = conn.info
        host, port, dbname, user, password = info.host, info.port, info.dbname, info.user, info.password
    theirs = _metadata(
        metadata_classes, f"jdbc:postgresql://{host}:{port}/{dbname}", user, password, "jdbc_metadata", "metrics"
    )
    for call in CALLS:
        assert _shape(ours[call]["columns"]) == _shape(theirs[call]["columns"]), call
    # The same type names as PostgreSQL's (a subset: no table row types, no extensions).
    assert types <= {row[0] for row in theirs["getTypeInfo"]["rows"]}
    pg_columns = {row[3]: row for row in theirs["getColumns"]["rows"]}
    for name in ("active_users", "metric_time__day"):  # DATA_TYPE, TYPE_NAME, COLUMN_SIZE agree
        assert columns[name][4:7] == pg_columns[name][4:7], name
    assert ours["getTableTypes"]["rows"] == theirs["getTableTypes"]["rows"]
