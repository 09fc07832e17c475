"""What a client is told when its SQL over the semantic layer cannot be answered: the engine's
errors as SQLSTATEs, with messages about the client's own SQL (never the internal texts of the
engine, sqlglot or the in-memory database the outer query runs on)."""

from __future__ import annotations

import difflib
import re
from typing import Any

from api.sql_endpoint.semantic_tables import (
    SEMANTIC_SCHEMA,
    SUPPORTED,
    SqlEndpointError,
    _SemanticTable,
)
from metrics import errors
from metrics.policy import PolicyDenied
from metrics.sql.marts import (
    InvalidMartQuery,
    UnknownTable,
    UnsupportedSql,
)

# -- errors -------------------------------------------------------------------------------

_SQLSTATES: tuple[tuple[type[errors.MetricsError], str], ...] = tuple(
    (cls, state)
    for cls, state in (
        # Service guardrails, where the engine has them: too many rows, too long a query.
        (getattr(errors, "ResultTooLarge", None), "54000"),
        (getattr(errors, "QueryTimeout", None), "57014"),
        (errors.QueryCancelled, "57014"),
        (PolicyDenied, "42501"),
        (UnknownTable, "42P01"),
        (UnsupportedSql, "0A000"),
        (errors.UnsupportedFeature, "0A000"),
        (errors.MetricUnavailable, "0A000"),
        (errors.UnknownMetric, "42703"),
        (errors.UnknownDimension, "42703"),
        (errors.AmbiguousDimension, "42702"),
        (errors.UnknownSavedQuery, "42P01"),
        (errors.NotFound, "42P01"),
        (errors.InvalidFilter, "22023"),
        (errors.InvalidQuery, "22023"),
        (errors.UserError, "22023"),
        (errors.WarehouseUnavailable, "57P03"),
        (errors.InternalError, "XX000"),
        (errors.MetricsError, "XX000"),
    )
    if cls is not None
)


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


# DuckDB's words for what failed over the answer rows, as PostgreSQL says them: the client
# wrote PostgreSQL and never sees the in-memory database its outer query runs on.
_DUCKDB_ERROR = re.compile(
    r"\b(?:Binder|Catalog|Conversion|Parser|Invalid Input|Out of Range|Not implemented|"
    r"Invalid|Type|Syntax|Internal|Constraint|Dependency) Error: "
)
_DUCKDB_TYPES = {
    "INT64": "bigint",
    "INT32": "integer",
    "INT16": "smallint",
    "INT8": "smallint",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
    "VARCHAR": "text",
    "DECIMAL": "numeric",
    "HUGEINT": "numeric",
}
_DUCKDB_PHRASES: tuple[tuple[re.Pattern[str], Any], ...] = (
    (
        re.compile(r'Referenced column "([^"]+)" not found in FROM clause!?.*', re.S),
        lambda m: f'column "{m.group(1)}" does not exist',
    ),
    (
        re.compile(r'Values list "([^"]+)" does not have a column named "([^"]+)".*', re.S),
        lambda m: f"column {m.group(1)}.{m.group(2)} does not exist",
    ),
    (
        re.compile(r"(?:Scalar|Aggregate|Table) Function with name ([\w.]+) does not exist!?.*", re.S),
        lambda m: f"function {m.group(1)} does not exist",
    ),
    (
        re.compile(r"Could not convert string '([^']*)' to (\w+)(?: when casting from source column [\w\"]+)?"),
        lambda m: f'invalid input syntax for type {_DUCKDB_TYPES.get(m.group(2), m.group(2).lower())}: "{m.group(1)}"',
    ),
    (
        re.compile(r"Referenced table \"([^\"]+)\" not found!?.*", re.S),
        lambda m: f'missing FROM-clause entry for table "{m.group(1)}"',
    ),
    (
        re.compile(r"No function matches the given name and argument types '([^']*)'.*", re.S),
        lambda m: f"function {m.group(1)} does not exist",
    ),
)


def _client_message(message: str) -> str:
    """An engine message without the internal texts of the rows' database."""
    rows_prefix = "cannot evaluate the query over the metric rows: "
    if message.startswith(rows_prefix):
        message = message[len(rows_prefix) :]
    message = _DUCKDB_ERROR.sub("", message)
    for pattern, say in _DUCKDB_PHRASES:
        match = pattern.search(message)
        if match:
            message = message[: match.start()] + say(match) + message[match.end() :]
            break
    return message.split("\n", 1)[0]


# What is wrong with a client's marts SQL (`InvalidMartQuery.problem`), as PostgreSQL says it.
_PROBLEM_STATES = {
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


def _from_engine(exc: errors.MetricsError) -> SqlEndpointError:
    if isinstance(exc, InvalidMartQuery):
        return SqlEndpointError(
            _PROBLEM_STATES.get(exc.details.get("problem", ""), "42000"),
            exc.message,
            position=exc.details.get("position"),
        )
    state = _rowset_state(exc) or next(code for cls, code in _SQLSTATES if isinstance(exc, cls))
    hint = None
    candidates = exc.details.get("candidates") or exc.details.get("suggestions")
    if isinstance(candidates, (list, tuple)) and candidates and "Did you mean" not in exc.message:
        hint = "Valid names include: " + ", ".join(str(c) for c in list(candidates)[:12]) + "."
    if state == "0A000" or (hint is None and exc.details.get("reason")):
        hint = SUPPORTED
    return SqlEndpointError(state, _client_message(exc.message), hint)


def _unsupported(message: str) -> SqlEndpointError:
    return SqlEndpointError("0A000", message, SUPPORTED)


def _unknown_column(name: str, table: _SemanticTable) -> SqlEndpointError:
    columns = [c.name for c in table.definition.columns]
    close = difflib.get_close_matches(name, columns, n=3, cutoff=0.6) or errors.nearest(name, columns)
    if close:
        hint = "Did you mean " + ", ".join(f'"{c}"' for c in close) + "?"
    else:
        metrics = sorted(table.metrics)
        hint = (
            f"Metrics: {', '.join(metrics[:12])}{', ...' if len(metrics) > 12 else ''}; slices such as "
            f"metric_time__week and {', '.join(sorted(n for n in table.slices if '__' not in n)[:8])}."
        )
    return SqlEndpointError(
        "42703", f'column "{name}" does not exist in {SEMANTIC_SCHEMA}.{table.definition.name}', hint
    )
