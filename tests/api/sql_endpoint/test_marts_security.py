"""The SQL endpoint's marts reads attacked from outside, as issue 21 found them: a running
`northstar serve` with a region-restricted API token, over psycopg.

Every statement that names a file, a URL, another database or a DuckDB internal (directly, as a
CTE shadowed at another scope, or as a table function) is refused (0A000 or 42P01) and answers
no row; a user's own mistakes answer 42xxx about the user's statement, never the SQL it was
rebuilt into."""

from __future__ import annotations

import os

import duckdb
import pytest

from tests.api.test_auth import create_token
from tests.conftest import Server, free_port
from tests.oracle import Oracle

psycopg = pytest.importorskip("psycopg")

MARKER = "northstar-secret-marker"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def restricted(built_warehouse, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("marts-security")
    (data_dir / "northstar.duckdb").symlink_to(os.path.realpath(built_warehouse.warehouse))
    region = Oracle(built_warehouse.landing_dir).sql(
        "select region, count(*) from accounts where region is not null group by 1 order by 2 desc limit 1"
    )[0][0]
    token = create_token(data_dir, "regional", "--scope", "metrics:read", "--row-filter", f"region={region}")
    files = data_dir / "files"
    files.mkdir()
    con = duckdb.connect()
    for kind in ("csv", "json", "parquet"):
        con.execute(f"copy (select '{MARKER}' as secret) to '{files / ('secret.' + kind)}' (format {kind})")
    con.close()
    other = duckdb.connect(str(files / "secret.duckdb"))
    other.execute(f"create table secret as select '{MARKER}' as secret")
    other.close()
    server = Server(data_dir / "northstar.duckdb", env={"NORTHSTAR_DATA_DIR": str(data_dir)}, sql_port=free_port())
    try:
        server.wait_ready()
        yield {"port": server.sql_port, "token": token, "region": region, "files": files, "data_dir": data_dir}
    finally:
        server.stop()


def connect(restricted):
    return psycopg.connect(
        host="127.0.0.1",
        port=restricted["port"],
        dbname="northstar",
        user="regional",
        password=restricted["token"],
        connect_timeout=10,
        autocommit=True,
    )


def refusal(restricted, sql: str) -> psycopg.Error:
    with connect(restricted) as conn:
        with pytest.raises(psycopg.Error) as info:
            rows = conn.execute(sql).fetchall()
            raise AssertionError(f"answered {rows!r}")  # reached only when nothing was refused
        # The connection stays usable after a refusal.
        assert conn.execute("SELECT 1").fetchall() == [(1,)]
        return info.value


def _targets(restricted) -> list[str]:
    files = restricted["files"]
    return [
        str(files / "secret.csv"),
        str(files / "secret.json"),
        str(files / "secret.parquet"),
        str(files / "secret.duckdb"),
        "http://127.0.0.1:9/secret.csv",
        str(restricted["data_dir"] / "tokens.json"),
        os.path.join(REPO, "seeds", "sample", "accounts.parquet"),
    ]


@pytest.mark.parametrize("index", range(7), ids=["csv", "json", "parquet", "duckdb", "http", "tokens", "landing"])
def test_the_issue_21_repro_reads_no_file(restricted, index):
    target = _targets(restricted)[index]
    error = refusal(
        restricted,
        f'SELECT * FROM "{target}" f WHERE EXISTS (WITH "{target}" AS (SELECT 1) SELECT 1 FROM marts.dim_accounts)',
    )
    assert error.sqlstate in ("0A000", "42P01"), (error.sqlstate, str(error))
    assert MARKER not in str(error)


@pytest.mark.parametrize(
    "template",
    [
        'SELECT * FROM "{t}"',
        'SELECT * FROM marts.dim_accounts WHERE EXISTS (SELECT 1 FROM "{t}")',
        'WITH x AS (SELECT * FROM "{t}") SELECT * FROM marts.dim_accounts, x',
        'SELECT * FROM (WITH "{t}" AS (SELECT 1) SELECT * FROM "{t}") s, "{t}", marts.dim_accounts',
        'SELECT * FROM marts.dim_accounts UNION ALL (WITH "{t}" AS (SELECT 1) SELECT * FROM marts.dim_accounts) '
        'UNION ALL SELECT * FROM "{t}"',
        "SELECT * FROM marts.dim_accounts a, read_csv('{t}')",
        "SELECT * FROM marts.dim_accounts a, read_parquet('{t}')",
        "SELECT * FROM marts.dim_accounts a, read_json_auto('{t}')",
        "SELECT * FROM marts.dim_accounts a WHERE a.region IN (SELECT * FROM query('SELECT * FROM ''{t}'''))",
    ],
)
def test_shadowing_and_readers_are_refused(restricted, template):
    for target in _targets(restricted)[:5]:
        error = refusal(restricted, template.format(t=target))
        assert error.sqlstate in ("0A000", "42P01"), (template, error.sqlstate, str(error))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM query('SELECT 42')",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM duckdb_databases()",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM duckdb_tables",
        "SELECT * FROM system.main.duckdb_settings",
        "SELECT query('SELECT 42')",
        "SELECT getenv('HOME')",
    ],
)
def test_catalog_queries_reach_no_duckdb_internals(restricted, sql):
    assert refusal(restricted, sql).sqlstate == "0A000"


@pytest.mark.parametrize(
    "sql", ["SELECT * FROM glob('/tmp/*')", "SELECT * FROM \"glob\"('/tmp/*')", "SELECT glob('/tmp/*')"]
)
def test_glob_never_parses_so_never_runs(restricted, sql):
    # PostgreSQL's grammar has no one-argument glob: the parser refuses it before any database.
    assert refusal(restricted, sql).sqlstate == "42601"


def test_the_token_reads_marts_through_its_policy(restricted):
    with connect(restricted) as conn:
        rows = conn.execute(
            "WITH a AS (SELECT region FROM marts.dim_accounts) SELECT DISTINCT region FROM a"
        ).fetchall()
    assert rows == [(restricted["region"],)]


@pytest.mark.parametrize(
    "sql, state, name",
    [
        ("SELECT nope FROM marts.dim_accounts", "42703", "nope"),
        ("SELECT a.region FROM marts.dim_accounts AS b", "42P01", "a"),
        ("SELECT region, COUNT(*) FROM marts.dim_accounts", "42803", "region"),
        ("SELECT no_such_fn(region) FROM marts.dim_accounts", "0A000", None),
        ("SELECT region + 'x' FROM marts.dim_accounts", None, None),
    ],
)
def test_user_mistakes_answer_about_the_users_sql(restricted, sql, state, name):
    error = refusal(restricted, sql)
    # libpq itself quotes the client's statement at the position the server gives.
    message = error.diag.message_primary
    if state:
        assert error.sqlstate == state, (error.sqlstate, message)
    assert error.sqlstate.startswith(("42", "0A", "22")), (error.sqlstate, message)
    # Neither the rebuilt SQL nor the row policy is shown.
    for leaked in ("__northstar", "main_marts", "SELECT *", restricted["region"], "LINE 1", "WHERE"):
        assert leaked not in message, (leaked, message)
    if name:
        position = int(error.diag.statement_position)
        assert sql[position - 1 : position - 1 + len(name)].lower() == name.lower(), (position, message)
