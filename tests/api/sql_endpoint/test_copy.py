"""COPY ... TO STDOUT, as exports use it: psql's \\copy to a CSV file and psycopg's
cursor.copy(), in text and CSV formats; the values are /v1/query's. COPY FROM and COPY to a
server file are refused with PostgreSQL's SQLSTATEs."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess

import pytest

psycopg = pytest.importorskip("psycopg")

from tests.api.sql_endpoint.sql_servers import SqlServer, sql_server  # noqa: E402,F401
from tests.api.sql_endpoint.test_clients import http_rows, need  # noqa: E402

QUERY = (
    "SELECT metric_time__week, platform, sessions FROM semantic.metrics "
    "WHERE metric_time__week >= '2026-01-05' ORDER BY 1, 2"
)
HTTP = {
    "metrics": ["sessions"],
    "group_by": ["metric_time__week", "platform"],
    "start": "2026-01-05",
    "order_by": ["metric_time__week", "platform"],
}


def test_psql_copy_writes_a_csv_file_with_a_header(sql_server: SqlServer, api, tmp_path):
    target = tmp_path / "weekly sessions.csv"
    proc = subprocess.run(
        [
            need("psql"),
            f"host={sql_server.host} port={sql_server.port} dbname=northstar user=analyst sslmode=disable",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            rf"\copy ({QUERY}) to '{target}' csv header",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    want = http_rows(api, HTTP)
    assert proc.stdout.strip() == f"COPY {len(want)}"
    rows = list(csv.reader(io.StringIO(target.read_text())))
    assert rows[0] == ["metric_time__week", "platform", "sessions"]
    assert [(dt.date.fromisoformat(d), p, int(n)) for d, p, n in rows[1:]] == want


def test_psycopg_copy_in_text_and_csv(sql_server: SqlServer, api):
    want = http_rows(api, HTTP)
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY ({QUERY}) TO STDOUT") as copy:
            copy.set_types(["date", "text", "int8"])
            assert list(copy.rows()) == want
        # CSV with a header, a delimiter and a NULL marker of its own; empty strings stay quoted.
        marts = "SELECT account_id, account_name, plan FROM marts.dim_accounts ORDER BY account_id"
        with cur.copy(f"COPY ({marts}) TO STDOUT WITH (FORMAT csv, HEADER true, DELIMITER ';', NULL 'n/a')") as copy:
            text = b"".join(bytes(block) for block in copy).decode()
        lines = list(csv.reader(io.StringIO(text), delimiter=";"))
        assert lines[0] == ["account_id", "account_name", "plan"]
        selected = cur.execute(marts).fetchall()
        assert [tuple(None if v == "n/a" else v for v in line) for line in lines[1:]] == selected
        # A table by name, as `COPY marts.dim_accounts (account_id) TO STDOUT` exports it.
        with cur.copy("COPY marts.dim_accounts (account_id) TO STDOUT") as copy:
            ids = sorted(row[0] for row in copy.rows())
        assert ids == [row[0] for row in selected]


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [
        ("COPY semantic.metrics FROM STDIN", "0A000"),
        ("COPY (SELECT 1) TO '/tmp/northstar-copy.csv'", "42501"),
        ("COPY (SELECT 1) TO PROGRAM 'cat'", "42501"),
        ("COPY (SELECT 1) TO STDOUT (FORMAT binary)", "0A000"),
        ("COPY (SELECT 1) TO STDOUT (FORCE_QUOTE *)", "0A000"),
    ],
)
def test_copy_that_would_write_or_read_on_the_server_is_refused(sql_server: SqlServer, sql, sqlstate):
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(sql)
        assert raised.value.sqlstate == sqlstate
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the connection goes on
