"""What a client is told when its SQL over the semantic layer cannot be answered: the engine's
errors as SQLSTATEs, with messages about the client's own SQL (never the internal texts of the
engine, sqlglot or the in-memory database the outer query runs on)."""

from __future__ import annotations

import difflib
import re
from typing import Any

from api.sql_endpoint.semantic_tables import SEMANTIC_SCHEMA, SUPPORTED, _SemanticTable
from api.sql_endpoint.sqlstates import sqlstate_for
from api.sql_endpoint.statements import SqlError
from metrics import errors
from metrics.sql.marts import InvalidMartQuery

# -- errors -------------------------------------------------------------------------------

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


def _from_engine(exc: errors.MetricsError) -> SqlError:
    """The engine's error as the client is told it: the SQLSTATE of the one table
    (`sqlstates.sqlstate_for`), a message about the client's SQL, and what would be right."""
    state = sqlstate_for(exc)
    if isinstance(exc, InvalidMartQuery):
        return SqlError(state, exc.message, position=exc.details.get("position"))
    hint = None
    candidates = exc.details.get("candidates") or exc.details.get("suggestions")
    if isinstance(candidates, (list, tuple)) and candidates and "Did you mean" not in exc.message:
        hint = "Valid names include: " + ", ".join(str(c) for c in list(candidates)[:12]) + "."
    if state == "0A000" or (hint is None and exc.details.get("reason")):
        hint = SUPPORTED
    return SqlError(state, _client_message(exc.message), hint)


def _unsupported(message: str) -> SqlError:
    return SqlError("0A000", message, SUPPORTED)


def _unknown_column(name: str, table: _SemanticTable) -> SqlError:
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
    return SqlError("42703", f'column "{name}" does not exist in {SEMANTIC_SCHEMA}.{table.definition.name}', hint)
