"""SELECTs over the marts: the scorecards' bound reads and the SQL endpoint's rewrite, with and
without a row-policy restriction on the mart."""

from __future__ import annotations

import datetime as dt
import doctest

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from metrics.sql import marts
from metrics.sql.marts import Condition, MartTable, UnknownTable, rewrite_mart_query, select_sql

USERS = MartTable("dim_users", "marts", "dim_users")
EMEA = exp.column("region", quoted=True).isin(exp.Literal.string("emea"))


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.dim_users as select * from (values ('u1', 'emea', 'pro'), "
                "('u2', 'amer', 'pro'), ('u3', 'emea', 'free'), ('u4', null, 'free')) t(user_id, region, plan)")
    yield con
    con.close()


def test_mart_select_binds_values():
    sql, params = select_sql(MartTable("fct_launch_users", "marts", "fct_launch_users"), ["user_id"], [
        Condition("launch_id", "=", "x'; drop table users; --"),
        Condition("metric_date", ">=", dt.date(2026, 1, 1)),
        Condition("metric_name", "in", ["a", "b"])])
    assert "drop" not in sql
    assert params == {"p0": "x'; drop table users; --", "p1": dt.date(2026, 1, 1), "p2": "a", "p3": "b"}
    assert sql == ('SELECT "user_id" FROM "marts"."fct_launch_users" AS "fct_launch_users" WHERE ("launch_id" = $p0 '
                   'AND "metric_date" >= $p1) AND "metric_name" IN ($p2, $p3)')


def test_a_restricted_mart_is_read_through_its_condition(con):
    restricted = MartTable("dim_users", "marts", "dim_users", EMEA)
    sql, params = select_sql(restricted, ["user_id", "plan"], [Condition("plan", "=", "pro")], ["user_id"])
    assert con.execute(sql, params).fetchall() == [("u1", "pro")]
    sql, params = select_sql(USERS, ["user_id"], [Condition("plan", "=", "pro")], ["user_id"])
    assert con.execute(sql, params).fetchall() == [("u1",), ("u2",)]


@pytest.mark.parametrize("query, expected", [
    ("SELECT user_id FROM marts.dim_users ORDER BY 1", [("u1",), ("u3",)]),
    ("SELECT u.user_id FROM marts.dim_users AS u ORDER BY 1", [("u1",), ("u3",)]),
    ("SELECT marts.dim_users.user_id FROM marts.dim_users ORDER BY 1", [("u1",), ("u3",)]),
    ("SELECT x.a FROM marts.dim_users AS x(a, b, c) ORDER BY 1", [("u1",), ("u3",)]),
    ("SELECT COUNT(*) FROM marts.dim_users WHERE region = 'amer' OR 1 = 1", [(2,)]),
    ("WITH t AS (SELECT * FROM marts.dim_users) SELECT COUNT(*) FROM t", [(2,)]),
    ("SELECT COUNT(*) FROM marts.dim_users a JOIN marts.dim_users b ON a.plan = b.plan", [(2,)]),
    ("SELECT (SELECT COUNT(*) FROM marts.dim_users) AS n", [(2,)]),
])
def test_no_form_of_a_client_query_reads_past_the_restriction(con, query, expected):
    restricted = {"dim_users": MartTable("dim_users", "marts", "dim_users", EMEA)}
    sql = rewrite_mart_query(sqlglot.parse_one(query, read="postgres"), restricted, "duckdb")
    assert con.execute(sql).fetchall() == expected
    unrestricted = rewrite_mart_query(sqlglot.parse_one(query, read="postgres"), {"dim_users": USERS}, "duckdb")
    assert con.execute(unrestricted).fetchall() != expected


def test_unknown_marts_are_named():
    with pytest.raises(UnknownTable, match="marts.dim_users"):
        rewrite_mart_query(sqlglot.parse_one("SELECT * FROM marts.dim_user", read="postgres"), {"dim_users": USERS},
                           "duckdb")


def test_docstring_examples():
    assert doctest.testmod(marts).failed == 0
