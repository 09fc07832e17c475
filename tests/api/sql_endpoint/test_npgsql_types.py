"""Npgsql's type loading (Power BI's PostgreSQL connector runs it on every new connection):
the query's shape, over psycopg, answers with the base, array, range, multirange and pseudo
types PostgreSQL returns, row for row."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")

from tests.api.sql_endpoint.sql_servers import SqlServer, sql_server  # noqa: E402,F401

QUERY = (Path(__file__).parent / "sql" / "npgsql_types.sql").read_text()


def _types(dsn: str) -> tuple[list[str], dict[int, tuple]]:
    # One simple Query with version() first, as Npgsql batches it.
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT version();\n" + QUERY, prepare=False)
        assert cur.nextset()  # the second result: the types
        return [d.name for d in cur.description], {row[1]: row for row in cur.fetchall()}


def test_npgsql_type_loading_answers_as_postgresql(sql_server: SqlServer):
    names, ours = _types(sql_server.dsn())
    assert names == ["nspname", "oid", "typname", "typtype", "typnotnull", "elemtypoid"]
    kinds = {row[3] for row in ours.values()}
    assert {"b", "a", "r", "m", "p"} <= kinds
    assert ours[20][2:] == ("int8", "b", False, None)
    assert ours[1016][2:] == ("_int8", "a", False, 20)  # an array: told apart by array_recv
    assert ours[3912][2:] == ("daterange", "r", False, 1082)  # a range: its subtype from pg_range
    assert ours[4535][2:] == ("datemultirange", "m", False, 3912)
    # Every array's element type comes before it (Npgsql resolves them in order).
    order = list(ours)
    assert all(order.index(row[5]) < order.index(oid) for oid, row in ours.items() if row[3] == "a")

    dsn = os.environ.get("NORTHSTAR_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip("NORTHSTAR_TEST_POSTGRES_DSN is not set: rows not compared with PostgreSQL")
    pg_names, theirs = _types(dsn)
    assert names == pg_names
    # Each type served is PostgreSQL's, with the same kind and element; PostgreSQL has more
    # (geometric, network, text search types and information_schema's domains).
    assert {oid: theirs.get(oid) for oid in ours} == ours
