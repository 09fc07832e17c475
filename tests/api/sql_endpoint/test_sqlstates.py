"""The SQL endpoint's one exception -> SQLSTATE table (api/sql_endpoint/sqlstates.py), through a
real PostgreSQL client: whatever a statement's answering raises, over the simple and the
extended protocol, the client gets the SQLSTATE of the table (by the nearest listed class), the
exception's message for what the engine and the service raise, and for a bug XX000 without its
words, which go to the server log with the traceback; the connection goes on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from api.auth import TooManyRequests
from api.sql_endpoint import sqlstates
from api.sql_endpoint.server import SqlEndpoint, SqlLimits
from api.sql_endpoint.statements import SqlError
from metrics import errors
from metrics.sql.marts import InvalidMartQuery, UnknownTable
from tests.conftest import free_port

psycopg = pytest.importorskip("psycopg")

SECRET = "secret internal detail /var/lib/warehouse.duckdb"
QUERY = "SELECT active_users FROM semantic.metrics"


class RaisingEngines:
    """An engine provider whose engine cannot be had: opening it raises `exc`."""

    def __init__(self) -> None:
        self.exc: BaseException = RuntimeError("not set")

    @contextmanager
    def engine(self) -> Iterator[None]:
        raise self.exc
        yield  # pragma: no cover


@pytest.fixture(scope="module")
def endpoint():
    engines = RaisingEngines()
    endpoint = SqlEndpoint(engines, limits=SqlLimits(workers=2))  # type: ignore[arg-type]
    port = free_port()
    endpoint.start_in_thread("127.0.0.1", port)
    try:
        yield engines, f"host=127.0.0.1 port={port} dbname=northstar user=analyst connect_timeout=10"
    finally:
        endpoint.stop_thread()


# (what the statement raises, the SQLSTATE the client gets)
CASES: list[tuple[BaseException, str]] = [
    *[(cls("refused"), state) for cls, state in sqlstates.SQLSTATE.items() if issubclass(cls, errors.MetricsError)],
    # not listed: the nearest listed base class answers
    (TooManyRequests("too many"), "53400"),
    (UnknownTable("no such table"), "42P01"),
    (type("SomeUserError", (errors.UserError,), {})("refused"), "22023"),
    # what the exception says of itself
    (InvalidMartQuery("no such column", problem="unknown_column"), "42703"),
    (SqlError("42P05", "already exists"), "42P05"),
    # a bug
    (RuntimeError(SECRET), "XX000"),
    (KeyError(SECRET), "XX000"),
]


def _refusal(dsn: str, simple: bool) -> psycopg.Error:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = psycopg.ClientCursor(conn) if simple else conn.cursor()
        with pytest.raises(psycopg.Error) as info:
            cursor.execute(QUERY)
        # the connection goes on
        assert conn.execute("SHOW application_name").fetchone() is not None
    return info.value


@pytest.mark.parametrize(("exc", "state"), CASES, ids=[f"{type(e).__name__}-{s}" for e, s in CASES])
@pytest.mark.parametrize("simple", [True, False], ids=["simple", "extended"])
def test_each_exception_answers_the_sqlstate_of_the_one_table(endpoint, caplog, exc, state, simple):
    engines, dsn = endpoint
    engines.exc = exc
    with caplog.at_level(logging.ERROR, "northstar.sql"):
        error = _refusal(dsn, simple)
    assert error.sqlstate == state == sqlstates.sqlstate_for(exc), str(error)
    message = error.diag.message_primary or ""
    if isinstance(exc, errors.QueryCancelled):
        assert message == sqlstates.CANCELLED
    elif isinstance(exc, (errors.MetricsError, SqlError)):
        assert message == exc.message
        assert not [r for r in caplog.records if r.name == "northstar.sql"]
    else:  # a bug: its words stay in the log, with the traceback
        assert message == sqlstates.INTERNAL_MESSAGE and "secret" not in str(error)
        logged = [r for r in caplog.records if r.name == "northstar.sql" and r.exc_info]
        assert logged and SECRET in str(logged[0].exc_info[1]), caplog.records
    if isinstance(exc, errors.ResultTooLarge):
        assert error.diag.message_hint == sqlstates.HINTS[errors.ResultTooLarge]
