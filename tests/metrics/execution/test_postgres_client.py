"""PostgresClient against a real PostgreSQL server: northstar types from the driver's types,
read-only sessions, the query timeout, and bound values of the wrong type as InvalidFilter.

Skipped unless NORTHSTAR_TEST_POSTGRES_DSN names a PostgreSQL server (`.ci/run` starts one).
"""

from __future__ import annotations

import datetime as dt

import pytest

from metrics.errors import InternalError, InvalidFilter, QueryTimeout
from metrics.execution.postgres import PostgresClient


@pytest.fixture(scope="module")
def client(postgres_dsn: str):
    client = PostgresClient(postgres_dsn, timeout_s=0.5)
    yield client
    client.close()


def test_types_and_values(client: PostgresClient) -> None:
    result = client.query(
        "SELECT DATE '2024-03-04' AS d, TIMESTAMP '2024-03-04 05:06:07' AS ts, 'x'::varchar AS s, "
        "7::bigint AS i, 2.5::numeric(18,2) AS n, 0.25::double precision AS f, true AS b"
    )
    assert [(c.name, c.type) for c in result.columns] == [
        ("d", "date"),
        ("ts", "timestamp"),
        ("s", "string"),
        ("i", "integer"),
        ("n", "number"),
        ("f", "number"),
        ("b", "boolean"),
    ]
    assert result.rows == [(dt.date(2024, 3, 4), dt.datetime(2024, 3, 4, 5, 6, 7), "x", 7, 2.5, 0.25, True)]
    assert isinstance(result.rows[0][4], float)  # numeric leaves as a float, as DuckDB decimals do


def test_bound_values(client: PostgresClient) -> None:
    assert client.query("SELECT %(a)s::text || '!' AS v", {"a": "it's"}).rows == [("it's!",)]


def test_sessions_are_read_only(client: PostgresClient) -> None:
    with pytest.raises(InternalError) as refused:
        client.query("CREATE TABLE northstar_should_not_exist (x int)")
    # PostgreSQL's own words stay in the server log; the caller reads a plain message.
    assert "read-only" in refused.value.internal and "read-only" not in refused.value.message


def test_timeout_stops_the_query(client: PostgresClient) -> None:
    with pytest.raises(QueryTimeout):
        client.query("SELECT pg_sleep(5)")
    assert client.query("SELECT 1 AS one").rows == [(1,)]  # the pooled connection is still usable


def test_a_value_of_the_wrong_type_is_the_callers(client: PostgresClient) -> None:
    with pytest.raises(InvalidFilter, match="does not match the type"):
        client.query("SELECT 1 WHERE 'abc'::text = %(v)s", {"v": 3})
