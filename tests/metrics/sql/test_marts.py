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
    con.execute(
        "create table marts.dim_users as select * from (values ('u1', 'emea', 'pro'), "
        "('u2', 'amer', 'pro'), ('u3', 'emea', 'free'), ('u4', null, 'free')) t(user_id, region, plan)"
    )
    yield con
    con.close()


def test_mart_select_binds_values():
    sql, params = select_sql(
        MartTable("fct_launch_users", "marts", "fct_launch_users"),
        ["user_id"],
        [
            Condition("launch_id", "=", "x'; drop table users; --"),
            Condition("metric_date", ">=", dt.date(2026, 1, 1)),
            Condition("metric_name", "in", ["a", "b"]),
        ],
    )
    assert "drop" not in sql
    assert params == {"p0": "x'; drop table users; --", "p1": dt.date(2026, 1, 1), "p2": "a", "p3": "b"}
    assert sql == (
        'SELECT "user_id" FROM "marts"."fct_launch_users" AS "fct_launch_users" WHERE ("launch_id" = $p0 '
        'AND "metric_date" >= $p1) AND "metric_name" IN ($p2, $p3)'
    )


def test_a_restricted_mart_is_read_through_its_condition(con):
    restricted = MartTable("dim_users", "marts", "dim_users", EMEA)
    sql, params = select_sql(restricted, ["user_id", "plan"], [Condition("plan", "=", "pro")], ["user_id"])
    assert con.execute(sql, params).fetchall() == [("u1", "pro")]
    sql, params = select_sql(USERS, ["user_id"], [Condition("plan", "=", "pro")], ["user_id"])
    assert con.execute(sql, params).fetchall() == [("u1",), ("u2",)]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("SELECT user_id FROM marts.dim_users ORDER BY 1", [("u1",), ("u3",)]),
        ("SELECT u.user_id FROM marts.dim_users AS u ORDER BY 1", [("u1",), ("u3",)]),
        ("SELECT marts.dim_users.user_id FROM marts.dim_users ORDER BY 1", [("u1",), ("u3",)]),
        ("SELECT x.a FROM marts.dim_users AS x(a, b, c) ORDER BY 1", [("u1",), ("u3",)]),
        ("SELECT COUNT(*) FROM marts.dim_users WHERE region = 'amer' OR 1 = 1", [(2,)]),
        ("WITH t AS (SELECT * FROM marts.dim_users) SELECT COUNT(*) FROM t", [(2,)]),
        ("SELECT COUNT(*) FROM marts.dim_users a JOIN marts.dim_users b ON a.plan = b.plan", [(2,)]),
        ("SELECT (SELECT COUNT(*) FROM marts.dim_users) AS n", [(2,)]),
    ],
)
def test_no_form_of_a_client_query_reads_past_the_restriction(con, query, expected):
    restricted = {"dim_users": MartTable("dim_users", "marts", "dim_users", EMEA)}
    sql = rewrite_mart_query(sqlglot.parse_one(query, read="postgres"), restricted, "duckdb")
    assert con.execute(sql).fetchall() == expected
    unrestricted = rewrite_mart_query(sqlglot.parse_one(query, read="postgres"), {"dim_users": USERS}, "duckdb")
    assert con.execute(unrestricted).fetchall() != expected


def test_unknown_marts_are_named():
    with pytest.raises(UnknownTable, match="marts.dim_users"):
        rewrite_mart_query(
            sqlglot.parse_one("SELECT * FROM marts.dim_user", read="postgres"), {"dim_users": USERS}, "duckdb"
        )


def test_docstring_examples():
    assert doctest.testmod(marts).failed == 0


# -- scoping: what each table reference reads -------------------------------------------------


def _reads(query: str) -> list[tuple[str, str | None]]:
    """(table as written, the CTE it reads or None) for every table of `query`, in order."""
    tree = sqlglot.parse_one(query, read="postgres")
    resolved = marts.resolve_tables(tree)
    return [(t.name, None if resolved[id(t)] is None else resolved[id(t)].alias) for t in tree.find_all(exp.Table)]


@pytest.mark.parametrize(
    "query, expected",
    [
        # The repro of issue 21: the inner WITH hides nothing outside its own query.
        (
            'SELECT * FROM "/p/f.csv" f WHERE EXISTS (WITH "/p/f.csv" AS (SELECT 1) SELECT 1 FROM marts.dim_users)',
            {("/p/f.csv", None), ("dim_users", None)},
        ),
        # A CTE is visible in later CTEs of its WITH, not in earlier ones.
        ("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", {("b", None), ("a", "a")}),
        ("WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b", {("a", "a"), ("b", "b")}),
        # ... and below its own query level, in subqueries.
        ("WITH c AS (SELECT 1) SELECT * FROM (SELECT * FROM c) s WHERE EXISTS (SELECT 1 FROM c)", {("c", "c")}),
        # A derived table's WITH is not visible beside it.
        ("SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) s, c", {("c", "c"), ("c", None)}),
        # A set operation's branch WITH does not reach the other branch.
        ("(WITH c AS (SELECT 1) SELECT * FROM c) UNION ALL SELECT * FROM c", {("c", "c"), ("c", None)}),
        # Recursive CTEs see themselves; without RECURSIVE the name is a table.
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r", {("r", "r")}),
        ("WITH r AS (SELECT 1 UNION ALL SELECT 1 FROM r) SELECT * FROM r", {("r", None), ("r", "r")}),
        # PostgreSQL folds unquoted names: T is t, "T" is not.
        ("WITH T AS (SELECT 1) SELECT * FROM t", {("t", "T")}),
        ('WITH "T" AS (SELECT 1) SELECT * FROM t', {("t", None)}),
        # A schema-qualified name never reads a CTE.
        ("WITH dim_users AS (SELECT 1) SELECT * FROM marts.dim_users", {("dim_users", None)}),
        # An outer table alias is not a relation inside a subquery.
        ("SELECT * FROM marts.dim_users AS y WHERE EXISTS (SELECT 1 FROM y)", {("dim_users", None), ("y", None)}),
    ],
)
def test_table_references_are_scoped_as_in_postgresql(query, expected):
    assert set(_reads(query)) == expected


def _rewrite(query: str, tables=None) -> str:
    return rewrite_mart_query(
        sqlglot.parse_one(query, read="postgres"),
        tables or {"dim_users": MartTable("dim_users", "marts", "dim_users", EMEA)},
        "duckdb",
    )


@pytest.mark.parametrize(
    "query, error",
    [
        (
            'SELECT * FROM "/p/f.csv" f WHERE EXISTS (WITH "/p/f.csv" AS (SELECT 1) SELECT 1 FROM marts.dim_users)',
            UnknownTable,
        ),
        ("SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) s, c, marts.dim_users", UnknownTable),
        ("SELECT * FROM information_schema.tables, marts.dim_users", UnknownTable),
        ("SELECT * FROM main.dim_users", UnknownTable),
        ("SELECT * FROM other.marts.dim_users", UnknownTable),
        ("SELECT * FROM marts.dim_users, read_csv('/etc/passwd')", marts.UnsupportedSql),
        ("SELECT * FROM marts.dim_users, \"read_csv\"('/etc/passwd')", marts.UnsupportedSql),
        ("SELECT * FROM marts.dim_users, query('SELECT 1')", marts.UnsupportedSql),
        ("SELECT pg_read_file('/etc/passwd') FROM marts.dim_users", marts.UnsupportedSql),
        ("SELECT lo_import('/etc/passwd') FROM marts.dim_users", marts.UnsupportedSql),
        ("SELECT current_setting('data_directory') FROM marts.dim_users", marts.UnsupportedSql),
        ("SELECT no_such_function(user_id) FROM marts.dim_users", marts.UnsupportedSql),
        ("SELECT pg_catalog.upper(user_id) FROM marts.dim_users", marts.UnsupportedSql),
        ("SELECT * FROM marts.dim_users TABLESAMPLE SYSTEM (50)", marts.UnsupportedSql),
        # value builders sized by an argument: a few bytes of SQL, gigabytes of answer
        ("SELECT repeat('x', 100000000) FROM marts.dim_users", marts.UnsupportedSql),
        ("SELECT lpad(user_id, 100000000) FROM marts.dim_users", marts.UnsupportedSql),
        ("SELECT rpad(user_id, 100000000, 'x') FROM marts.dim_users", marts.UnsupportedSql),
    ],
)
def test_anything_but_marts_and_scoped_ctes_is_refused(query, error):
    with pytest.raises(error):
        _rewrite(query)


def test_ctes_get_private_names_and_marts_their_policy():
    sql = _rewrite(
        'WITH "Users" AS (SELECT * FROM marts.dim_users), x AS (SELECT * FROM "Users") '
        "SELECT x.user_id FROM x WHERE EXISTS (WITH x AS (SELECT 1) SELECT * FROM x)"
    )
    tables = [(t.db, t.name) for t in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Table)]
    assert sorted(tables) == [
        ("", "__northstar_cte_1"),
        ("", "__northstar_cte_2"),
        ("", "__northstar_cte_3"),
        ("marts", "dim_users"),
    ]
    assert "\"region\" IN ('emea')" in sql


def test_ordinary_functions_pass():
    sql = _rewrite(
        "SELECT date_trunc('week', CURRENT_DATE), COALESCE(plan, '?'), COUNT(DISTINCT user_id), "
        "ROW_NUMBER() OVER (ORDER BY user_id), region <> ALL(ARRAY['x']) FROM marts.dim_users GROUP BY "
        "plan, user_id, region"
    )
    assert "dim_users" in sql


# -- fuzz: no shadowing, quoting, nesting or function variant reads past the allow-list --------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from metrics.errors import UserError  # noqa: E402
from metrics.execution.client import locked_config  # noqa: E402

SECRET = "SECRET-ROW"
FUZZ_MART = MartTable("dim_users", "main_marts", "dim_users", EMEA)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """A warehouse file (marts in `main_marts`, a non-mart table beside them) and files with a
    marker row, opened as the server opens it (`locked_config`)."""
    root = tmp_path_factory.mktemp("fuzz")
    path = root / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema main_marts")
    con.execute(
        "create table main_marts.dim_users as select * from (values ('u1', 'emea', 'pro'), "
        "('u2', 'amer', 'pro'), ('u3', 'emea', 'free'), ('u4', null, 'free')) t(user_id, region, plan)"
    )
    con.execute(f"create table main.secret as select '{SECRET}' as user_id")
    con.execute(f"create table main_marts.secret as select '{SECRET}' as user_id")
    for kind in ("csv", "json", "parquet"):
        con.execute(f"copy (select '{SECRET}' as user_id) to '{root / ('secret.' + kind)}' (format {kind})")
    con.close()
    other = duckdb.connect(str(root / "other.duckdb"))
    other.execute(f"create table secret as select '{SECRET}' as user_id")
    other.close()
    locked = duckdb.connect(str(path), read_only=True, config=locked_config("256MB", 1))
    yield root, locked
    locked.close()


def _payloads(root) -> list[str]:
    """Names that would read something other than a mart, quoted as identifiers."""
    paths = [str(root / f"secret.{kind}") for kind in ("csv", "json", "parquet")] + [
        str(root / "other.duckdb"),
        "http://127.0.0.1:9/secret.csv",
    ]
    return [f'"{p}"' for p in paths] + [
        "secret",
        "main.secret",
        "main_marts.secret",
        "marts.secret",
        "information_schema.tables",
        "pg_catalog.pg_class",
        "duckdb_settings",
        "system.main.duckdb_settings",
        "main_marts.dim_users",
        '"main_marts"."dim_users"',
        "marts.dim_users",
        '"marts"."dim_users"',
        "MARTS.DIM_USERS",
        '"MARTS"."dim_users"',
        "dim_users",
        "temp.main.secret",
    ]


_FUNCTIONS = [
    "read_csv('{p}')",
    "read_parquet('{p}')",
    "read_json_auto('{p}')",
    "glob('{p}')",
    "query('SELECT 1')",
    "query_table('secret')",
    "sniff_csv('{p}')",
    "duckdb_settings()",
    "pg_read_file('{p}')",
    "lo_import('{p}')",
    "getenv('HOME')",
    "current_setting('memory_limit')",
    "parquet_metadata('{p}')",
    "read_text('{p}')",
    "read_blob('{p}')",
]


def _query(payloads: list[str]) -> st.SearchStrategy[str]:
    # Half the references name something readable (a CTE name, a mart), so that many
    # statements get past the rewrite and run.
    name = st.sampled_from(payloads) | st.sampled_from(["c", "C", '"c"', "x", "marts.dim_users"])
    cte_name = st.sampled_from(
        [p for p in payloads if "." not in p.strip('"') or p.startswith('"/')] + ["c", "C", '"c"', "x"]
    )
    leaf = st.builds(lambda n: f"SELECT * FROM {n} AS t0", name) | st.just("SELECT * FROM marts.dim_users")

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.builds(lambda c, a, b: f"WITH {c} AS ({a}) {b}", cte_name, inner, inner),
            st.builds(
                lambda c, a, b, q: f"WITH {c} AS ({a}), {b} AS (SELECT * FROM {c}) {q}",
                cte_name,
                inner,
                cte_name,
                inner,
            ),
            st.builds(
                lambda c, q: f"WITH RECURSIVE {c}(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM {c} WHERE n < 3) {q}",
                cte_name,
                inner,
            ),
            st.builds(lambda n, q: f"SELECT * FROM {n} AS t1 WHERE EXISTS ({q})", name, inner),
            st.builds(lambda n, q: f"SELECT * FROM {n} AS t2 WHERE 1 IN (SELECT 1 FROM ({q}) AS s)", name, inner),
            st.builds(lambda q: f"SELECT * FROM ({q}) AS s2", inner),
            st.builds(lambda q, n: f"SELECT * FROM marts.dim_users AS u, LATERAL ({q}) AS l, {n} AS t3", inner, name),
            st.builds(lambda a, b: f"({a}) UNION ALL ({b})", inner, inner),
            st.builds(lambda q: f"SELECT (SELECT COUNT(*) FROM ({q}) AS s3) AS n", inner),
        )

    return st.recursive(leaf, extend, max_leaves=6)


def _assert_reads_only_marts_and_ctes(sql: str) -> None:
    tree = sqlglot.parse_one(sql, read="duckdb")
    for table in tree.find_all(exp.Table):
        assert isinstance(table.this, exp.Identifier), sql
        if table.db:
            assert (table.catalog, table.db, table.name) == ("", "main_marts", "dim_users"), sql
            # Read only through its policy: the SELECT around it keeps the restriction.
            assert table.parent_select.args["where"].this.sql() == EMEA.sql(), sql
        else:
            assert table.name.startswith("__northstar_cte_"), sql
    for func in tree.find_all(exp.Func):
        assert not function_is_reader(func), sql


def function_is_reader(func: exp.Func) -> bool:
    name = marts.function_name(func)
    return isinstance(func, (exp.ReadCSV, exp.ReadParquet)) or name.startswith(("read_", "duckdb_", "glob", "query"))


def _check(warehouse, text: str) -> None:
    _, con = warehouse
    try:
        statement = sqlglot.parse_one(text, read="postgres")
        sql = rewrite_mart_query(statement, {"dim_users": FUZZ_MART}, "duckdb")
    except (UserError, sqlglot.errors.ParseError):
        return  # refused before the warehouse
    _assert_reads_only_marts_and_ctes(sql)
    try:
        rows = con.cursor().execute(sql).fetchall()
    except duckdb.PermissionException as exc:  # the rebuilt SQL tried to reach a file
        raise AssertionError(f"{sql}: {exc}") from exc
    except duckdb.Error:
        return  # the client's mistake (column counts of a union, ...), answered as an error
    cells = {str(v) for row in rows for v in row}
    assert SECRET not in cells and "u2" not in cells and "u4" not in cells, (sql, rows)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_shadowing_nesting_and_quoting_never_reads_past_the_marts(warehouse, data):
    root, _ = warehouse
    text = data.draw(_query(_payloads(root)))
    _check(warehouse, text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_file_reader_functions_are_refused_anywhere(warehouse, data):
    root, _ = warehouse
    path = data.draw(st.sampled_from(_payloads(root)[:5])).strip('"')
    call = data.draw(st.sampled_from(_FUNCTIONS)).format(p=path)
    call = data.draw(st.sampled_from([call, call.upper(), f"pg_catalog.{call}", f"main.{call}"]))
    where = data.draw(
        st.sampled_from(
            [
                "SELECT * FROM {f}",
                "SELECT * FROM marts.dim_users, {f} AS f",
                "SELECT {f} FROM marts.dim_users",
                "SELECT * FROM marts.dim_users WHERE user_id IN (SELECT * FROM {f})",
                "WITH c AS (SELECT * FROM {f}) SELECT * FROM marts.dim_users, c",
                "SELECT * FROM marts.dim_users u, LATERAL (SELECT {f}) l",
            ]
        )
    )
    text = where.format(f=call)
    with pytest.raises((UserError, sqlglot.errors.ParseError)):
        rewrite_mart_query(sqlglot.parse_one(text, read="postgres"), {"dim_users": FUZZ_MART}, "duckdb")


def test_the_locked_warehouse_connection_reads_no_file(warehouse):
    root, con = warehouse
    for sql in (
        f"SELECT * FROM '{root / 'secret.csv'}'",
        f"SELECT * FROM read_parquet('{root / 'secret.parquet'}')",
        f"ATTACH '{root / 'other.duckdb'}' AS o",
        "SELECT * FROM 'http://127.0.0.1:9/x.csv'",
    ):
        with pytest.raises(duckdb.PermissionException):
            con.cursor().execute(sql)
    with pytest.raises(duckdb.InvalidInputException, match="locked"):
        con.cursor().execute("SET enable_external_access = true")


def test_the_engines_warehouse_client_is_locked(tmp_path):
    from metrics.errors import InternalError
    from metrics.execution.client import DuckDBClient

    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute(f"create table t as select 1 as a; copy (select '{SECRET}' as s) to '{tmp_path / 's.csv'}'")
    con.close()
    client = DuckDBClient(path, memory_limit="256MB", threads=1)
    try:
        assert client.query("SELECT a FROM t").rows == [(1,)]
        for sql in (
            f"SELECT * FROM '{tmp_path / 's.csv'}'",
            f"ATTACH '{tmp_path / 'x.duckdb'}' AS x",
            "INSTALL httpfs",
            "SET enable_external_access = true",
            "SET memory_limit = '64GB'",
        ):
            with pytest.raises(InternalError) as info:
                client.query(sql)
            assert info.value.details["reason"] in ("PermissionException", "InvalidInputException"), sql
        settings = dict(
            client.query(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('memory_limit', 'threads', 'lock_configuration')"
            ).rows
        )
        assert settings["threads"] == "1" and settings["lock_configuration"] == "true"
        assert settings["memory_limit"].startswith(("244", "256"))
        # A hand-written reader of the same file in the same process shares the locked database.
        reader = duckdb.connect(str(path), read_only=True)
        with pytest.raises(duckdb.PermissionException):
            reader.execute(f"SELECT * FROM '{tmp_path / 's.csv'}'")
        reader.close()
    finally:
        client.close()
