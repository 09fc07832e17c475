"""Relational operators over answers already computed: a query tree run on an in-memory DuckDB
where the answers are registered as tables.

The SQL endpoint lets BI tools wrap a metric query in outer projections, filters, ordering and
limits; those run here, over the engine's rows, never over the warehouse. The connection is
private to one call, cannot touch files or load extensions, and sees only the given tables.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from collections.abc import Mapping
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from metrics.errors import InvalidQuery
from metrics.execution.client import ResultColumn, ResultSet, _column_type

_ARROW_TYPES = {
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
}


def _arrow_table(rows: ResultSet) -> pa.Table:
    columns = {}
    for index, column in enumerate(rows.columns):
        values = [_plain(row[index]) for row in rows.rows]
        kind = _ARROW_TYPES.get(column.type, pa.string())
        if column.type == "integer" and any(v is not None and not -(2**63) <= v < 2**63 for v in values):
            kind = pa.float64()
        columns[column.name] = pa.array(values, type=kind)
    return pa.table(columns) if columns else pa.table({})


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


# Opening an in-memory DuckDB costs tens of milliseconds, more than most passes over the rows;
# each thread keeps one. It holds nothing between calls (the rows are unregistered after each)
# and its configuration is locked, so one call cannot change what the next one may do.
_connections = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    con = getattr(_connections, "con", None)
    if con is None:
        con = duckdb.connect(
            ":memory:",
            config={
                "enable_external_access": False,
                "threads": 1,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            },
        )
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET lock_configuration = true")
        _connections.con = con
    return con


def query_rows(tree: exp.Expr, tables: Mapping[str, ResultSet], dialect: str = "duckdb") -> ResultSet:
    """Run `tree` (a SELECT whose tables are the keys of `tables`) over those rows.

    >>> rows = ResultSet((ResultColumn("x", "integer"),), [(1,), (2,), (3,)])
    >>> query_rows(exp.select("SUM(x) AS s").from_("r"), {"r": rows}).rows
    [(6,)]
    """
    con = _connection()
    try:
        for name, rows in tables.items():
            con.register(name, _arrow_table(rows))
        try:
            cursor = con.execute(tree.sql(dialect=dialect))
            description = cursor.description or []
            result = cursor.fetchall()
        except duckdb.Error as exc:
            raise InvalidQuery(
                f"cannot evaluate the query over the metric rows: {_first_line(exc)}", reason=type(exc).__name__
            ) from exc
    finally:
        for name in tables:
            con.unregister(name)
    columns = tuple(ResultColumn(d[0], _column_type(d[1])) for d in description)
    return ResultSet(columns, [tuple(_output(v) for v in row) for row in result])


def _output(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
