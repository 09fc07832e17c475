"""Real PostgreSQL clients against `northstar serve`'s SQL endpoint: psql, psycopg 3, asyncpg,
SQLAlchemy + pandas, and the PostgreSQL JDBC driver. Answers are compared with the HTTP API
for the same query."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")
asyncpg = pytest.importorskip("asyncpg")
sqlalchemy = pytest.importorskip("sqlalchemy")
pd = pytest.importorskip("pandas")

from tests.api.sql_endpoint.sql_servers import PASSWORD, SqlServer, password_server, sql_server  # noqa: E402,F401

JDBC_JAR = Path("/usr/share/java/postgresql.jar")
JDBC_SOURCE = Path(__file__).parent / "jdbc" / "NorthstarJdbc.java"

WEEKLY_SQL = (
    "SELECT metric_time__week, platform, active_users FROM semantic.metrics "
    "WHERE country = 'US' AND metric_time__week >= '2026-01-05' ORDER BY 1, 2 LIMIT 100"
)
WEEKLY_HTTP = {
    "metrics": ["active_users"],
    "group_by": ["metric_time__week", "platform"],
    "where": [{"field": "country", "op": "=", "value": "US"}],
    "start": "2026-01-05",
    "order_by": ["metric_time__week", "platform"],
    "limit": 100,
}
MONTHLY_SQL = (
    "SELECT metric_time__month, active_users, crash_free_user_rate FROM semantic.metrics ORDER BY metric_time__month"
)
MONTHLY_HTTP = {
    "metrics": ["active_users", "crash_free_user_rate"],
    "group_by": ["metric_time__month"],
    "order_by": ["metric_time__month"],
}


def http_rows(api, body: dict) -> list[tuple]:
    response = api.client.post("/v1/query", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    types = [c["type"] for c in payload["columns"]]
    return [tuple(_from_json(v, t) for v, t in zip(row, types)) for row in payload["rows"]]


def _from_json(value, type_name: str):
    if value is None:
        return None
    if type_name == "date":
        return dt.date.fromisoformat(value)
    if type_name == "timestamp":
        return dt.datetime.fromisoformat(value)
    if type_name == "number":
        return float(value)
    return value


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:  # .ci/run installs every one of these; only a bare local machine lacks them
        pytest.skip(f"{tool} is not installed (.ci/run installs it)")
    return path


# -- psql ---------------------------------------------------------------------------------


def psql(server: SqlServer, *commands: str, sslmode: str = "prefer") -> subprocess.CompletedProcess:
    args = [
        need("psql"),
        f"host={server.host} port={server.port} dbname=northstar user=analyst sslmode={sslmode}",
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-P",
        "pager=off",
    ]
    for command in commands:
        args += ["-c", command]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_psql_lists_and_describes_the_semantic_layer(sql_server):
    proc = psql(
        sql_server, r"\dt", r"\dt semantic.*", r"\dt marts.*", r"\dn", r"\l", r"\d semantic.metrics", r"\d metrics"
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"semantic \| metrics\s+\| table \|", out)
    assert re.search(r"marts\s+\| fct_events\s+\| table \|", out)
    assert re.search(r"marts\s+\| northstar", out) and re.search(r"semantic \| northstar", out)  # \dn
    assert " northstar | northstar | UTF8" in out  # \l
    assert 'Table "semantic.metrics"' in out
    assert " metric_time__week " in out and " active_users " in out
    assert "| bigint" in out and "| date" in out and "| double precision" in out


def test_psql_ssl_prefer_falls_back_to_plain_text_and_queries(sql_server, api):
    proc = psql(
        sql_server,
        "\\pset format unaligned",
        "\\pset tuples_only on",
        "SELECT metric_time__month, active_users FROM semantic.metrics ORDER BY 1",
        sslmode="prefer",
    )
    assert proc.returncode == 0, proc.stderr
    got = [tuple(line.split("|")) for line in proc.stdout.splitlines() if "|" in line]
    want = http_rows(
        api, {"metrics": ["active_users"], "group_by": ["metric_time__month"], "order_by": ["metric_time__month"]}
    )
    assert got == [(d.isoformat(), str(n)) for d, n in want]


def test_psql_sslmode_require_is_refused_cleanly(sql_server):
    proc = psql(sql_server, "SELECT 1", sslmode="require")
    assert proc.returncode != 0
    assert "SSL" in proc.stderr


def test_psql_shows_the_error_and_the_hint(sql_server):
    proc = psql(sql_server, "CREATE TABLE semantic.x (a int)")
    assert proc.returncode != 0
    assert "read-only" in proc.stderr and "HINT" in proc.stderr


# -- psycopg 3 ----------------------------------------------------------------------------


def test_psycopg_simple_extended_and_binary_agree_with_http(sql_server, api):
    want = http_rows(api, WEEKLY_HTTP)
    assert want, "the sample has US weekly data"
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        simple = conn.execute(WEEKLY_SQL, prepare=False).fetchall()
        prepared = conn.execute(WEEKLY_SQL, prepare=True).fetchall()
        with conn.cursor(binary=True) as cur:
            binary = cur.execute(WEEKLY_SQL).fetchall()
        bound = conn.execute(
            "SELECT metric_time__week, platform, active_users FROM semantic.metrics "
            "WHERE country = %s AND metric_time__week >= %s ORDER BY 1, 2 LIMIT %s",
            ["US", dt.date(2026, 1, 5), 100],
        ).fetchall()
    assert simple == prepared == binary == bound == want


def test_psycopg_floats_keep_every_digit(sql_server, api):
    want = http_rows(api, MONTHLY_HTTP)
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        text = conn.execute(MONTHLY_SQL).fetchall()
        with conn.cursor(binary=True) as cur:
            binary = cur.execute(MONTHLY_SQL).fetchall()
    assert text == binary == want
    assert any(isinstance(r[2], float) and r[2] not in (0.0, 1.0) for r in want)


def test_psycopg_describes_result_types(sql_server):
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        cur = conn.execute(
            "SELECT metric_time__month, platform, active_users, crash_free_user_rate FROM semantic.metrics LIMIT 1"
        )
        assert [(d.name, d.type_code) for d in cur.description] == [
            ("metric_time__month", 1082),
            ("platform", 25),
            ("active_users", 20),
            ("crash_free_user_rate", 701),
        ]


def test_errors_keep_the_connection_usable(sql_server):
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        cases = [
            ("INSERT INTO semantic.metrics VALUES (1)", "25006"),
            ("SELECT * FROM nowhere.table_x", "42P01"),
            ("SELECT no_such_metric FROM semantic.metrics", None),
            ("COPY semantic.metrics FROM STDIN", "0A000"),
            ("SELEC 1", "0A000"),
            ("SELECT (", "42601"),
        ]
        for sql, sqlstate in cases:
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql)
            assert info.value.sqlstate, sql
            if sqlstate:
                assert info.value.sqlstate == sqlstate, (sql, info.value.sqlstate, str(info.value))
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.Error) as info:  # several commands in one Parse
            conn.execute("SELECT 1; SELECT 2", prepare=True)
        assert info.value.sqlstate == "42601"
        # Extended protocol: an error skips to Sync, then the connection answers again.
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT no_such_metric FROM semantic.metrics WHERE country = %s", ["US"])
        assert conn.execute("SELECT %s::int + 1", [1]).fetchone() == (2,)


def test_transactions_report_their_status(sql_server):
    with psycopg.connect(sql_server.dsn()) as conn:  # psycopg opens a transaction (BEGIN) itself
        conn.execute("SELECT 1")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM semantic.metrics")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SELECT 2").fetchone() == (2,)
        conn.commit()


def test_session_statements_and_bi_startup_queries(sql_server):
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        # What Metabase, Superset and the JDBC driver send when they connect (best effort).
        for sql in [
            "SET extra_float_digits = 3",
            "SET application_name = 'Metabase v0.50'",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "SET TIME ZONE 'UTC'",
            "SHOW TRANSACTION ISOLATION LEVEL",
            "SHOW standard_conforming_strings",
            "select current_schema()",
            "SELECT pg_catalog.version()",
            "select current_database()",
            "SELECT current_setting('server_version_num')",
            "DISCARD ALL",
            "SELECT nspname FROM pg_catalog.pg_namespace ORDER BY 1",
            "SELECT t.oid, typname FROM pg_type t WHERE typname = 'hstore'",
        ]:
            conn.execute(sql)
        assert conn.execute("SHOW application_name").fetchone() == ("",)  # DISCARD ALL reset it
        conn.execute("SET application_name = 'superset'")
        assert conn.info.parameter_status("application_name") == "superset"
        assert conn.execute("SHOW transaction_isolation").fetchone() == ("read committed",)
        assert conn.execute("SELECT current_database(), current_schema()").fetchone() == ("northstar", "semantic")
        assert conn.info.parameter_status("server_version").startswith("16.")
        assert conn.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL 16")


def test_several_statements_in_one_query_and_empty_query(sql_server):
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("SET datestyle = 'ISO, MDY'; SELECT 1 AS a; SELECT 2 AS b", prepare=False)
        assert cur.statusmessage == "SET"
        assert cur.nextset() and cur.fetchall() == [(1,)]
        assert cur.nextset() and cur.fetchall() == [(2,)]
        cur.execute("", prepare=False)
        assert cur.pgresult.status == psycopg.pq.ExecStatus.EMPTY_QUERY


def test_catalog_answers_cannot_read_files(sql_server):
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT * FROM read_csv('/etc/passwd')")


def test_cancel_stops_a_running_query_and_the_connection_goes_on(sql_server):
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        conn.cancel_safe()  # nothing running: harmless
        assert conn.execute("SELECT 1").fetchone() == (1,)
        outcome: dict = {}

        def slow() -> None:
            try:
                conn.execute("SELECT count(*) FROM generate_series(1, 100000000000) AS s(i)").fetchone()
                outcome["error"] = None
            except psycopg.Error as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(1.0)
        started = time.monotonic()
        conn.cancel_safe()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert isinstance(outcome["error"], psycopg.errors.QueryCanceled), outcome
        assert time.monotonic() - started < 10
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_many_concurrent_connections_get_the_sequential_answers(sql_server):
    queries = [WEEKLY_SQL, MONTHLY_SQL, "SELECT count(*) FROM pg_catalog.pg_class WHERE relkind = 'r'"]
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        sequential = [conn.execute(q).fetchall() for q in queries]

    def client(i: int) -> list:
        with psycopg.connect(sql_server.dsn(application_name=f"c{i}"), autocommit=True) as c:
            return [c.execute(q, prepare=bool(i % 2)).fetchall() for q in queries]

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(client, range(24)))
    assert all(r == sequential for r in results)


def test_cursors_declare_fetch_close(sql_server, api):
    """psqlODBC (Tableau, Excel over ODBC) and psql's FETCH_COUNT read through cursors."""
    want = http_rows(
        api, {"metrics": ["active_users"], "group_by": ["metric_time__month"], "order_by": ["metric_time__month"]}
    )
    sql = "SELECT metric_time__month, active_users FROM semantic.metrics ORDER BY 1"
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        conn.execute("BEGIN")
        conn.execute(f'DECLARE "SQL_CUR1" NO SCROLL CURSOR WITH HOLD FOR {sql}')
        got = conn.execute('FETCH 2 IN "SQL_CUR1"').fetchall()
        got += conn.execute('FETCH FORWARD ALL FROM "SQL_CUR1"').fetchall()
        assert conn.execute('FETCH NEXT FROM "SQL_CUR1"').fetchall() == []
        assert conn.execute('CLOSE "SQL_CUR1"').statusmessage == "CLOSE CURSOR"
        conn.execute("COMMIT")
        with pytest.raises(psycopg.Error) as info:
            conn.execute('FETCH 1 FROM "SQL_CUR1"')
        assert info.value.sqlstate == "34000"
    assert got == want
    proc = psql(sql_server, "\\set FETCH_COUNT 2", "\\pset format unaligned", "\\pset tuples_only on", sql)
    assert proc.returncode == 0, proc.stderr
    assert [tuple(line.split("|")) for line in proc.stdout.splitlines() if "|" in line] == [
        (d.isoformat(), str(n)) for d, n in want
    ]


def test_catalog_queries_of_dbeaver_and_superset(sql_server):
    """Best effort: introspection these tools send (from their sources) runs and answers."""
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.oid, n.*, d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN "
            "pg_catalog.pg_description d ON d.objoid = n.oid AND d.objsubid = 0 "
            "AND d.classoid = 'pg_namespace'::regclass ORDER BY nspname"
        ).fetchall()
        assert {"semantic", "marts"} <= {r[2] for r in rows}
        rows = conn.execute(
            "SELECT c.relname, a.attname, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) AS def_value, "
            "dsc.description FROM pg_catalog.pg_attribute a INNER JOIN pg_catalog.pg_class c ON a.attrelid = c.oid "
            "LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum "
            "LEFT OUTER JOIN pg_catalog.pg_description dsc ON c.oid = dsc.objoid AND a.attnum = dsc.objsubid "
            "WHERE NOT a.attisdropped AND c.oid = 'semantic.metrics'::regclass ORDER BY a.attnum"
        ).fetchall()
        assert ("metrics", "active_users") in {r[:2] for r in rows}
        assert conn.execute(
            "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'standard_conforming_strings'"
        ).fetchall() == [("on",)]
        assert conn.execute("SHOW TIME ZONE").fetchone() == ("UTC",)
        assert conn.execute("SELECT count(*) FROM pg_type WHERE oid IS NULL").fetchone() == (0,)
        assert conn.execute("SELECT typname FROM pg_type WHERE oid = ANY('{20,25}'::int4[]) ORDER BY 1").fetchall() == [
            ("int8",),
            ("text",),
        ]
        assert conn.execute("SELECT has_table_privilege('semantic.metrics', 'SELECT')").fetchone() == (True,)
        assert (
            conn.execute(
                "SELECT t.oid, typarray FROM pg_type t JOIN pg_namespace ns ON typnamespace = ns.oid "
                "WHERE typname = 'hstore'"
            ).fetchall()
            == []
        )


# -- passwords ----------------------------------------------------------------------------


def test_password_is_checked(password_server):
    method, server, process = password_server
    with psycopg.connect(server.dsn(password=PASSWORD), autocommit=True) as conn:
        assert conn.execute("SELECT active_users FROM semantic.metrics").fetchone()[0] > 0
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(server.dsn(password="wrong"))
    assert "28P01" in str(info.value) or "password authentication failed" in str(info.value)
    assert PASSWORD not in process.output()


def test_wrong_scram_password_is_28p01_for_asyncpg(password_server):
    method, server, _ = password_server

    async def run() -> None:
        with pytest.raises(asyncpg.InvalidPasswordError) as info:
            await asyncpg.connect(
                host=server.host, port=server.port, database="northstar", user="analyst", password="wrong"
            )
        assert info.value.sqlstate == "28P01"
        conn = await asyncpg.connect(
            host=server.host, port=server.port, database="northstar", user="analyst", password=PASSWORD
        )
        assert await conn.fetchval("SELECT 41 + 1") == 42
        await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def token_server(built_warehouse, tmp_path_factory):
    """API tokens exist (made by `northstar tokens create`): the SQL password must be one."""
    import httpx

    from tests.conftest import Server, free_port, northstar

    data_dir = tmp_path_factory.mktemp("sql-tokens")
    (data_dir / "northstar.duckdb").symlink_to(Path(built_warehouse.warehouse).resolve())

    def create(name: str, *options: str) -> str:
        return (
            northstar("tokens", "create", "--name", name, "--data-dir", str(data_dir), *options)
            .stdout.strip()
            .splitlines()[-1]
        )

    tokens = {
        "reader": create("reader", "--scope", "metrics:read"),
        "experimenter": create("experimenter", "--scope", "experiments:read"),
    }
    with httpx.Client(timeout=60) as probe:  # a region that has data, for the row policy
        server = Server(data_dir / "northstar.duckdb", env={"NORTHSTAR_DATA_DIR": str(data_dir)}, sql_port=free_port())
        try:
            server.wait_ready()
            region = probe.post(
                server.base_url + "/v1/query",
                headers={"Authorization": f"Bearer {tokens['reader']}"},
                json={"metrics": ["active_users"], "group_by": ["region"], "order_by": ["-active_users"], "limit": 1},
            ).json()["rows"][0][0]
            tokens["regional"] = create("regional", "--scope", "metrics:read", "--row-filter", f"region={region}")
            server.data_dir = data_dir  # for tests that create and revoke tokens of their own
            yield SqlServer("127.0.0.1", server.sql_port, server.base_url), tokens, server
        finally:
            server.stop()


def test_with_tokens_the_password_is_a_token(token_server):
    server, tokens, process = token_server
    query = "SELECT metric_time__month, active_users FROM semantic.metrics ORDER BY 1"
    # As the token's name: SCRAM-SHA-256 against the verifier the token store keeps.
    with psycopg.connect(server.dsn(user="reader", password=tokens["reader"]), autocommit=True) as conn:
        by_scram = conn.execute(query).fetchall()
    # Any user name with the token as password (SCRAM too: every token shares the store's salt).
    with psycopg.connect(server.dsn(user="tableau", password=tokens["reader"]), autocommit=True) as conn:
        by_token = conn.execute(query).fetchall()
    assert by_scram == by_token and by_scram
    for user, password in [("reader", "wrong"), ("tableau", tokens["reader"][:-3] + "AAA"), ("tableau", "")]:
        with pytest.raises(psycopg.OperationalError, match="28P01|password authentication failed"):
            psycopg.connect(server.dsn(user=user, password=password or "x"))
    with pytest.raises(psycopg.OperationalError, match="metrics:read"):
        psycopg.connect(server.dsn(user="experimenter", password=tokens["experimenter"]))
    assert all(token not in process.output() for token in tokens.values())


def test_a_token_row_policy_applies_to_sql_as_to_http(token_server):
    import httpx

    server, tokens, _ = token_server
    body = {"metrics": ["active_users"], "group_by": ["metric_time__month"], "order_by": ["metric_time__month"]}
    query = "SELECT metric_time__month, active_users FROM semantic.metrics ORDER BY 1"
    answers = {}
    for name in ("reader", "regional"):
        with psycopg.connect(server.dsn(user=name, password=tokens[name]), autocommit=True) as conn:
            sql_rows = conn.execute(query).fetchall()
        response = httpx.post(
            server.http_url + "/v1/query", json=body, timeout=60, headers={"Authorization": f"Bearer {tokens[name]}"}
        )
        assert response.status_code == 200, response.text
        assert [(d.isoformat(), n) for d, n in sql_rows] == [tuple(r) for r in response.json()["rows"]]
        answers[name] = sql_rows
    assert answers["regional"] != answers["reader"]
    assert sum(n for _, n in answers["regional"]) < sum(n for _, n in answers["reader"])


def _token(process, name: str, *options: str) -> str:
    from tests.conftest import northstar

    return (
        northstar(
            "tokens", "create", "--name", name, "--scope", "metrics:read", *options, "--data-dir", str(process.data_dir)
        )
        .stdout.strip()
        .splitlines()[-1]
    )


def test_revocation_closes_open_sql_sessions(token_server):
    from tests.conftest import northstar

    server, _, process = token_server
    token = _token(process, "session")
    by_name = psycopg.connect(server.dsn(user="session", password=token), autocommit=True)
    by_other_name = psycopg.connect(server.dsn(user="tableau", password=token), autocommit=True)
    with by_name, by_other_name:
        assert by_name.execute("SELECT 1").fetchone() == (1,)
        assert by_other_name.execute("SELECT %s::int", [2]).fetchone() == (2,)  # extended protocol
        northstar("tokens", "revoke", "session", "--data-dir", str(process.data_dir))
        revoked_at = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match='token "session" was revoked') as simple:
            by_name.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError, match="was revoked") as extended:
            by_other_name.execute("SELECT %s::int", [2])
        assert time.monotonic() - revoked_at < 1.0
        assert simple.value.sqlstate == extended.value.sqlstate == "28000"
        assert by_name.closed and by_other_name.closed
    with pytest.raises(psycopg.OperationalError, match="28P01|password authentication failed"):
        psycopg.connect(server.dsn(user="session", password=token))


def _first_auth_messages(server, user: str) -> tuple[bytes, str]:
    """The server's authentication request for `user`, and its SCRAM server-first-message
    with the nonce taken out (the part that is random per connection)."""
    import socket
    import struct

    def read(sock) -> tuple[bytes, bytes]:
        header = sock.recv(5, socket.MSG_WAITALL)
        body = sock.recv(struct.unpack("!i", header[1:])[0] - 4, socket.MSG_WAITALL)
        return header[:1], body

    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        params = (
            b"".join(
                k.encode() + b"\0" + v.encode() + b"\0" for k, v in {"user": user, "database": "northstar"}.items()
            )
            + b"\0"
        )
        sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        kind, offer = read(sock)
        assert kind == b"R"
        first = b"n,,n=,r=abcdefghijklmnopqrstuvwx"
        payload = b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first
        sock.sendall(b"p" + struct.pack("!i", 4 + len(payload)) + payload)
        kind, challenge = read(sock)
        assert kind == b"R" and struct.unpack("!i", challenge[:4])[0] == 11  # SASLContinue
        attrs = dict(part.split("=", 1) for part in challenge[4:].decode().split(","))
        return offer, f"s={attrs['s']},i={attrs['i']},nonce length {len(attrs['r'])}"


def test_known_and_unknown_user_names_get_the_same_challenge(token_server):
    server, _, _ = token_server
    known = _first_auth_messages(server, "reader")
    assert known[0] == b"\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00"  # AuthenticationSASL, one mechanism
    for name in ("nobody", "tableau", "reader2", "experimenter-x"):
        assert _first_auth_messages(server, name) == known
    assert _first_auth_messages(server, "experimenter") == known


def test_sql_statements_are_audited(token_server):
    import json

    server, tokens, process = token_server
    long_sql = "SELECT 1 AS x" + " " * 3000 + "-- end"
    with psycopg.connect(server.dsn(user="reader", password=tokens["reader"]), autocommit=True) as conn:
        conn.execute("SELECT metric_time__month, active_users FROM semantic.metrics ORDER BY 1").fetchall()
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM marts.no_such_mart")
        conn.execute(long_sql)
        conn.execute("SELECT %s AS secret", [tokens["reader"]])
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.dsn(user="reader", password="wrong"))
    text = (process.data_dir / "audit.jsonl").read_text()
    assert all(token.split("_", 2)[2] not in text for token in tokens.values())
    lines = [json.loads(line) for line in text.splitlines()]
    sql = [e for e in lines if e["interface"] == "sql"]
    query = next(e for e in sql if e["sql"] and e["sql"].startswith("SELECT metric_time__month"))
    assert query["caller"] == "reader" and query["token_id"] and query["client"].startswith("127.0.0.1:")
    assert (query["kind"], query["sqlstate"], query["outcome"]) == ("select", "00000", "ok")
    assert query["rows"] > 0 and query["ms"] > 0
    refused = next(e for e in sql if e["sql"] == "SELECT * FROM marts.no_such_mart")
    assert (refused["sqlstate"], refused["outcome"], refused["rows"]) == ("42P01", "error", None)
    truncated = next(e for e in sql if e["sql"] and e["sql"].startswith("SELECT 1 AS x"))
    assert len(truncated["sql"]) == 2003 and truncated["sql"].endswith("...")
    logins = [e for e in sql if e["kind"] == "login" and e["user"] == "reader"]
    assert {e["outcome"] for e in logins} == {"ok", "error"}


def test_unknown_database_is_refused(sql_server):
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(sql_server.dsn(dbname="postgres"))


# -- asyncpg ------------------------------------------------------------------------------


def test_asyncpg_prepared_binary_and_cursor_agree_with_http(sql_server, api):
    want = http_rows(api, WEEKLY_HTTP)

    async def run() -> tuple:
        conn = await asyncpg.connect(host=sql_server.host, port=sql_server.port, database="northstar", user="analyst")
        try:
            fetched = [tuple(r) for r in await conn.fetch(WEEKLY_SQL)]
            statement = await conn.prepare(
                "SELECT metric_time__week, platform, active_users FROM semantic.metrics "
                "WHERE country = $1 AND metric_time__week >= $2 ORDER BY 1, 2 LIMIT $3"
            )
            types = [t.name for t in statement.get_parameters()]
            prepared = [tuple(r) for r in await statement.fetch("US", dt.date(2026, 1, 5), 100)]
            async with conn.transaction():  # a cursor fetches in batches: Execute with a row limit
                cursor = [tuple(r) async for r in conn.cursor(WEEKLY_SQL, prefetch=7)]
            return fetched, prepared, cursor, types
        finally:
            await conn.close()

    fetched, prepared, cursor, types = asyncio.run(run())
    assert types == ["text", "date", "int8"]
    assert fetched == prepared == cursor == want
    assert len(want) > 7


# -- SQLAlchemy and pandas ----------------------------------------------------------------


def test_sqlalchemy_inspector_and_pandas_read_sql(sql_server, api):
    engine = sqlalchemy.create_engine(f"postgresql+psycopg://analyst@{sql_server.host}:{sql_server.port}/northstar")
    try:
        inspector = sqlalchemy.inspect(engine)
        assert {"semantic", "marts"} <= set(inspector.get_schema_names())
        assert "metrics" in inspector.get_table_names(schema="semantic")
        assert "fct_events" in inspector.get_table_names(schema="marts")
        columns = {c["name"]: c for c in inspector.get_columns("metrics", schema="semantic")}
        assert isinstance(columns["active_users"]["type"], sqlalchemy.BigInteger)
        assert isinstance(columns["metric_time__week"]["type"], sqlalchemy.Date)
        assert columns["active_users"]["comment"], "metric descriptions are column comments"
        # What Superset asks when a table becomes a dataset.
        assert inspector.get_pk_constraint("metrics", schema="semantic")["constrained_columns"] == []
        assert inspector.get_foreign_keys("metrics", schema="semantic") == []
        assert inspector.get_indexes("metrics", schema="semantic") == []
        assert inspector.get_view_names(schema="semantic") == []
        assert inspector.default_schema_name == "semantic"
        assert "metrics" in inspector.get_table_names()  # the default schema
        assert "fct_events" not in inspector.get_table_names()
        frame = pd.read_sql(sqlalchemy.text(MONTHLY_SQL), engine)
    finally:
        engine.dispose()
    want = http_rows(api, MONTHLY_HTTP)
    assert list(frame.columns) == ["metric_time__month", "active_users", "crash_free_user_rate"]
    got = [(d, int(n), None if pd.isna(r) else float(r)) for d, n, r in frame.itertuples(index=False)]
    assert got == want


# -- JDBC ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jdbc_classes(tmp_path_factory) -> Path:
    javac = need("javac")
    if not JDBC_JAR.exists():
        pytest.skip(f"{JDBC_JAR} missing (.ci/run installs libpostgresql-jdbc-java)")
    out = tmp_path_factory.mktemp("jdbc")
    subprocess.run([javac, "-d", str(out), str(JDBC_SOURCE)], check=True, capture_output=True, timeout=120)
    return out


def test_jdbc_metadata_and_query(sql_server, api, jdbc_classes):
    url = f"jdbc:postgresql://{sql_server.host}:{sql_server.port}/northstar"
    query = (
        "SELECT metric_time__month, active_users FROM semantic.metrics "
        "WHERE metric_time__month >= CAST(? AS date) ORDER BY 1"
    )
    proc = subprocess.run(
        [need("java"), "-cp", f"{JDBC_JAR}:{jdbc_classes}", "NorthstarJdbc", url, query, "2026-02-01"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line.split("\t") for line in proc.stdout.splitlines()]
    assert ["product", "PostgreSQL", "16.0 (northstar)"] in lines
    assert {"semantic", "marts"} <= {line[1] for line in lines if line[0] == "schema"}
    assert ["table", "semantic", "metrics", "TABLE"] in lines
    columns = {line[1]: line for line in lines if line[0] == "column"}
    assert columns["active_users"][2] == "int8" and columns["metric_time__month"][2] == "date"
    assert columns["active_users"][3] not in ("", "null")
    rows = [tuple(line[1:]) for line in lines if line[0] == "row"]
    want = http_rows(
        api,
        {
            "metrics": ["active_users"],
            "group_by": ["metric_time__month"],
            "start": "2026-02-01",
            "order_by": ["metric_time__month"],
        },
    )
    assert rows == [(d.isoformat(), str(n)) for d, n in want]


def test_completeness_columns_answer_what_http_answers(sql_server):
    """`<metric>__complete` on the SQL endpoint is the flag `completeness=columns` answers over
    HTTP for the same query: false for d7_retention's cohorts whose days 1..7 leave the data and
    for the partial first and last months; listed in the catalog as booleans with a comment,
    and not part of `SELECT *` previews."""
    import httpx

    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT metric_time__month, d7_retention, d7_retention__complete, new_users, "
            "new_users__complete FROM semantic.metrics ORDER BY metric_time__month"
        ).fetchall()
        catalog = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'semantic' AND c.relname = 'users' AND a.attname = 'new_users__complete'"
        ).fetchall()
        preview = conn.execute("SELECT * FROM semantic.metrics LIMIT 1")
        preview_columns = [d.name for d in preview.description]
    body = httpx.get(
        f"{sql_server.http_url}/v1/query",
        timeout=60,
        params={
            "metrics": "d7_retention,new_users",
            "group_by": "metric_time__month",
            "completeness": "columns",
            "order_by": "metric_time__month",
        },
    ).json()
    names = [c["name"] for c in body["columns"]]
    order = [
        names.index(n)
        for n in ("metric_time__month", "d7_retention", "d7_retention__complete", "new_users", "new_users__complete")
    ]
    expected = [tuple(row[i] for i in order) for row in body["rows"]]
    assert [(r[0].isoformat(),) + tuple(r[1:]) for r in rows] == expected
    flags = {r[2] for r in rows} | {r[4] for r in rows}
    assert flags == {True, False}  # both kinds of bucket are in the sample
    assert all(r[1] is None for r in rows if not r[2])  # an uncovered cohort is null, never 0
    assert catalog and catalog[0][1] == "boolean" and "complete" in catalog[0][2]
    assert "new_users" in preview_columns and not any(c.endswith("__complete") for c in preview_columns)
