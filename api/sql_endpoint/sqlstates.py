"""The one exception -> SQLSTATE table of the SQL endpoint, and the error a client is sent for
any exception: `SqlError` carries its own SQLSTATE; the engine's and the service's exceptions
take theirs from `SQLSTATE` by class (a class not listed takes its nearest listed base's);
anything else is a bug of the endpoint, answered XX000 with the traceback in the log only."""

from __future__ import annotations

import logging
import struct

from api.auth import Forbidden, TooManyRequests, Unauthorized
from api.sql_endpoint.protocol import ProtocolViolation
from api.sql_endpoint.statements import SqlError
from core.tokens import TokenStoreUnavailable
from metrics import errors
from metrics.policy import PolicyDenied
from metrics.sql.marts import InvalidMartQuery, UnknownTable, UnsupportedSql

log = logging.getLogger("northstar.sql")

CANCELLED = "canceling statement due to user request"
INTERNAL_MESSAGE = "internal error: the statement could not be answered (the server log has the details)"

SQLSTATE: dict[type[BaseException], str] = {
    # the service's guardrails: too many rows, too long a query, too many at once
    errors.ResultTooLarge: "54000",
    errors.QueryTimeout: "57014",
    errors.QueryCancelled: "57014",
    TooManyRequests: "53400",
    # who may read what
    Unauthorized: "28000",
    Forbidden: "42501",
    PolicyDenied: "42501",
    # the client's SQL or values
    UnknownTable: "42P01",
    UnsupportedSql: "0A000",
    errors.UnsupportedFeature: "0A000",
    errors.MetricUnavailable: "0A000",
    errors.UnknownMetric: "42703",
    errors.UnknownDimension: "42703",
    errors.AmbiguousDimension: "42702",
    errors.UnknownSavedQuery: "42P01",
    errors.NotFound: "42P01",
    errors.InvalidFilter: "22023",
    errors.InvalidQuery: "22023",
    errors.UserError: "22023",
    ValueError: "22023",
    # the connection's messages
    struct.error: "08P01",
    ProtocolViolation: "08P01",
    # the service itself
    errors.WarehouseUnavailable: "57P03",
    TokenStoreUnavailable: "57P03",
    errors.InternalError: "XX000",
    errors.MetricsError: "XX000",
}

# What the client can do about it, where the exception does not say.
HINTS: dict[type[BaseException], str] = {
    errors.ResultTooLarge: "add a LIMIT or a WHERE clause",
    TooManyRequests: "wait for a running statement to finish, or use a token "
    "with a higher limit (tokens create --max-concurrent)",
    errors.WarehouseUnavailable: "run `northstar build`; the endpoint answers once a build lands",
}

# What is wrong with a client's marts SQL (`InvalidMartQuery.problem`), as PostgreSQL says it.
PROBLEM_STATES = {
    "unknown_column": "42703",
    "unknown_function": "42883",
    "syntax": "42601",
    "grouping": "42803",
    "ambiguous_column": "42702",
    "unknown_table": "42P01",
    "invalid_sql": "42000",
    "invalid_value": "22P02",
    "out_of_range": "22003",
    "division_by_zero": "22012",
    "out_of_memory": "53200",
}


def _rowset_state(exc: errors.MetricsError) -> str | None:
    """The SQLSTATE of a query the answer rows could not evaluate, by the kind of failure."""
    reason = exc.details.get("reason")
    if reason == "BinderException" and "Referenced table" in exc.message:
        return "42P01"
    if reason == "BinderException":
        return "42803" if "GROUP BY" in exc.message else "42703" if "column" in exc.message.lower() else "42601"
    return {
        "CatalogException": "42883",
        "ConversionException": "22P02",
        "ParserException": "42601",
        "OutOfRangeException": "22003",
        "InvalidInputException": "22023",
    }.get(reason or "")


def _listed(exc: BaseException, table: dict[type[BaseException], str]) -> str | None:
    return next((table[cls] for cls in type(exc).__mro__ if cls in table), None)


def sqlstate_for(exc: BaseException) -> str:
    """The SQLSTATE a client is sent for `exc`.

    >>> sqlstate_for(SqlError("42P05", 'prepared statement "s" already exists'))
    '42P05'
    >>> sqlstate_for(errors.UnknownMetric("unknown metric 'x'.")), sqlstate_for(errors.ResultTooLarge("rows"))
    ('42703', '54000')
    >>> sqlstate_for(InvalidMartQuery("no such column", problem="unknown_column"))
    '42703'
    >>> sqlstate_for(KeyError("a bug"))
    'XX000'
    """
    if isinstance(exc, SqlError):
        return exc.sqlstate
    if isinstance(exc, InvalidMartQuery):
        return PROBLEM_STATES.get(exc.details.get("problem", ""), "42000")
    if isinstance(exc, errors.MetricsError):
        # a query the warehouse or the answer rows could not evaluate: by the kind of failure
        state = _rowset_state(exc)
        if state is not None:
            return state
    return _listed(exc, SQLSTATE) or "XX000"


def as_sql_error(exc: BaseException, statement: str | None = None) -> SqlError:
    """The error a client is sent for `exc`, raised while answering `statement`. An exception
    the table does not know is a bug: logged with its traceback, answered XX000 without its
    text."""
    if isinstance(exc, SqlError):
        return exc
    state = sqlstate_for(exc)
    if isinstance(exc, errors.QueryCancelled):
        return SqlError(state, CANCELLED)
    if isinstance(exc, errors.MetricsError):
        return SqlError(state, exc.message, hint=_listed(exc, HINTS), position=exc.details.get("position"))
    if isinstance(exc, (struct.error, ProtocolViolation)):
        return SqlError(state, f"invalid message: {exc}")
    if isinstance(exc, ValueError):
        return SqlError(state, str(exc))
    return internal_error(exc, statement)


def internal_error(exc: BaseException, statement: str | None = None) -> SqlError:
    """XX000 for a bug met while answering `statement`: its words and traceback go to the log."""
    log.error("SQL statement failed: %s", statement or "(no statement)", exc_info=exc)
    return SqlError("XX000", INTERNAL_MESSAGE)
