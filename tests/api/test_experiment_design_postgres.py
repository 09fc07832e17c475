"""The experiment tables a PostgreSQL build writes equal the readouts its API serves, row for
row, and the DuckDB build's. Skipped unless NORTHSTAR_TEST_POSTGRES_DSN names a server."""

from __future__ import annotations

import json
import os

import pytest

from tests.api.test_experiment_design import assert_tables_equal_api


def _fetcher(postgres_api):
    import psycopg
    from psycopg.rows import dict_row

    with open(os.path.realpath(postgres_api.warehouse)) as pointer:
        schemas = json.load(pointer)["schemas"]
    conn = psycopg.connect(os.environ["NORTHSTAR_TEST_POSTGRES_DSN"], row_factory=dict_row)

    def fetch(sql):
        return conn.execute(sql.replace("marts.", f'"{schemas["marts"]}".')).fetchall()

    return conn, fetch


def test_written_tables_equal_the_api_readouts_on_postgres(postgres_api):
    conn, fetch = _fetcher(postgres_api)
    with conn:
        assert_tables_equal_api(postgres_api, fetch)


def test_postgres_tables_equal_the_duckdb_tables(api, postgres_api):
    import duckdb

    conn, fetch = _fetcher(postgres_api)
    con = duckdb.connect(str(api.warehouse), read_only=True)
    try:
        for table, key in (
            ("fct_experiment_results", "experiment_result_key"),
            ("fct_experiment_health", "experiment_id"),
        ):
            cursor = con.execute(f"select * from marts.{table}")
            names = [d[0] for d in cursor.description]
            duck = {r[names.index(key)]: dict(zip(names, r)) for r in cursor.fetchall()}
            pg = {r[key]: r for r in fetch(f"select * from marts.{table}")}
            assert set(duck) == set(pg)
            for k, row in duck.items():
                for column, value in row.items():
                    if column == "build_id":
                        continue
                    if isinstance(value, float):
                        assert pg[k][column] == pytest.approx(value, rel=1e-9), (table, k, column)
                    else:
                        assert pg[k][column] == value, (table, k, column)
    finally:
        con.close()
        conn.close()
