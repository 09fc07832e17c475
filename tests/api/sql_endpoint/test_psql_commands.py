"""psql 15's backslash commands against the SQL endpoint: each answers without an error and
with the title and column headers the same command shows on a real PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.api.sql_endpoint.sql_servers import SqlServer, sql_server  # noqa: F401
from tests.api.sql_endpoint.test_clients import need

# Each command as analysts use it; \sf and the like need a function, of which northstar has none.
COMMANDS = [r"\dt+", r"\df", r"\du", r"\dp", r"\dd", r"\dv", r"\di", r"\dx", r"\dT", r"\dn+", r"\l"]
# On PostgreSQL, a commented temporary table, so the listings of relations are not empty there either.
POSTGRES_SETUP = ["CREATE TEMP TABLE psql_commands (x int)", "COMMENT ON TABLE psql_commands IS 'a table'"]


def _psql(conninfo: str, *commands: str) -> str:
    args = [need("psql"), conninfo, "-X", "-v", "ON_ERROR_STOP=1", "-P", "pager=off"]
    for command in commands:
        args += ["-c", command]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "ERROR" not in proc.stderr, f"{commands}: {proc.stderr}"
    return proc.stdout


def _headers(output: str) -> list[str]:
    """The title and column-header lines (or psql's 'Did not find any relations.'), spacing aside."""
    lines = [re.sub(r"\s+", " ", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line and line not in ("CREATE TABLE", "COMMENT")]
    return lines[:2] if len(lines) > 1 and "|" in lines[1] else lines[:1]


def test_backslash_commands_answer_with_postgresql_headers(sql_server: SqlServer):
    ours = f"host={sql_server.host} port={sql_server.port} dbname=northstar user=analyst sslmode=disable"
    dsn = os.environ.get("NORTHSTAR_TEST_POSTGRES_DSN")
    for command in COMMANDS:
        out = _psql(ours, command)
        if dsn:
            assert _headers(out) == _headers(_psql(dsn, *POSTGRES_SETUP, command)), command
    # The served tables with their owner, access method and comment, as \dt+ lists them.
    listing = _psql(ours, r"\dt+")
    assert re.search(r"semantic \| metrics\s+\| table \| northstar \| permanent\s+\| heap\s+\|.*\| \S", listing)
    if not dsn:
        pytest.skip("NORTHSTAR_TEST_POSTGRES_DSN is not set: headers not compared with PostgreSQL")
