"""A `SqlClient` over a PostgreSQL warehouse (psycopg 3 with a connection pool).

Every session is read-only (`default_transaction_read_only`), in UTC, without JIT, and
bounded by `statement_timeout`, all set when a pooled connection is opened, so a query costs
one round trip. Result columns are typed from the driver's type OIDs into northstar's types.
"""

from __future__ import annotations

import decimal
import re
from typing import Any

from metrics.errors import InternalError, QueryCancelled, QueryTimeout, WarehouseUnavailable
from metrics.execution.cancel import interruptible
from metrics.execution.client import ResultColumn, ResultSet, fetch_capped, filter_type_mismatch

# PostgreSQL type OIDs (pg_type.oid; fixed in the catalog) -> northstar column types.
_OID_TYPES = {
    16: "boolean",
    20: "integer",
    21: "integer",
    23: "integer",
    26: "integer",
    700: "number",
    701: "number",
    1700: "number",
    1082: "date",
    1114: "timestamp",
    1184: "timestamp",
}
_TYPE_NAMES = {
    "boolean": "boolean",
    "bigint": "integer",
    "integer": "integer",
    "smallint": "integer",
    "double precision": "number",
    "real": "number",
    "numeric": "number",
    "date": "date",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamp",
}


def column_type(type_code: Any) -> str:
    """A northstar type from a type OID (cursor description) or an information_schema name."""
    if isinstance(type_code, int):
        return _OID_TYPES.get(type_code, "string")
    return _TYPE_NAMES.get(str(type_code).lower(), "string")


# The operand just before where PostgreSQL points (the operator of `country = 3`, or the value
# of `country = 'x'`): a plain column (`t1.country`, `"country"`), else none.
_OPERAND = re.compile(
    r'(?:^|[\s(,])(?:[\w"]+\.)?"?(\w+)"?\s*(?:(?:=|<>|!=|<=|>=|<|>|LIKE|ILIKE|IN\s*\()\s*)?$', re.IGNORECASE
)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def _sent_text(sql: str, params: dict[str, Any] | None) -> str:
    """`sql` as psycopg sends it (`%(name)s` as `$n` numbered by first appearance, `%%` as
    `%`), the text PostgreSQL's error positions count in."""
    if not params:
        return sql
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "%"
        return f"${numbers.setdefault(match.group(1), len(numbers) + 1)}"

    return _PLACEHOLDER.sub(number, sql)


def _value_error(exc: Any, sql: str, params: dict[str, Any] | None) -> Exception:
    """A value PostgreSQL cannot compare with its column (class 22 data exceptions such as
    `invalid input syntax for type boolean`, 42804 datatype mismatch, 42883 `operator does not
    exist: text = integer`) is the caller's filter, answered as DuckDB's conversion errors are
    (metrics.execution.client.filter_type_mismatch): generated SQL casts nothing it has not
    checked, so such an error is ours unless the statement binds caller values or the error
    points at a comparison with a column. Any other undefined function is ours."""
    detail = (exc.diag.message_primary or str(exc)).strip().splitlines()[0]
    if exc.sqlstate == "42883" and not detail.startswith("operator does not exist"):
        return InternalError("the warehouse could not run the query.", sqlstate=exc.sqlstate, internal=detail)
    column = None
    position = exc.diag.statement_position
    if position and str(position).isdigit():
        column_match = _OPERAND.search(_sent_text(sql, params)[: int(position) - 1])
        column = column_match.group(1) if column_match else None
    if not params and column is None:
        return InternalError("the warehouse could not run the query.", sqlstate=exc.sqlstate, internal=detail)
    return filter_type_mismatch(column, detail)


class PostgresClient:
    """Read-only, pooled access to the PostgreSQL database of `dsn`; thread-safe."""

    dialect = "postgres"

    def __init__(
        self, dsn: str, *, timeout_s: float | None = None, min_size: int = 1, max_size: int = 8, work_mem: str = "64MB"
    ) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        self.timeout_s = timeout_s
        self._psycopg = psycopg
        # jit=off: metric queries are short analytic statements whose (over)estimated cost
        # triggers JIT compilation, which alone took 1 s of a 1.3 s query on the sample.
        # work_mem bounds each sort and hash of a query (a client's marts SELECT among them)
        # before it spills; reading server files (pg_read_file, COPY, lo_import) never reaches
        # PostgreSQL: marts SQL calls only allow-listed functions (metrics/sql/marts.py).
        options = f"-c default_transaction_read_only=on -c TimeZone=UTC -c jit=off -c work_mem={work_mem}"
        if timeout_s:
            options += f" -c statement_timeout={int(timeout_s * 1000)}"
        self._pool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"options": options, "autocommit": True},
            name="northstar",
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except Exception as exc:  # PoolTimeout: the server is down or refuses us
            self._pool.close()
            raise WarehouseUnavailable(
                f"cannot connect to the PostgreSQL warehouse: {exc}; "
                "check NORTHSTAR_POSTGRES_DSN and that the server is up."
            ) from exc
        self._closed = False

    def query(self, sql: str, params: dict[str, Any] | None = None, *, max_rows: int | None = None) -> ResultSet:
        if self._closed:
            raise WarehouseUnavailable("the warehouse connection was closed (a newer build was swapped in).")
        errors = self._psycopg.errors
        cancellation = None
        try:
            with (
                self._pool.connection(timeout=self.timeout_s or 30) as con,
                con.cursor() as cursor,
                interruptible(con.cancel) as cancellation,
            ):
                # Without parameters the text goes as is (a literal % in generated SQL stays one).
                cursor.execute(sql, params) if params else cursor.execute(sql)
                description = cursor.description or []
                rows = fetch_capped(cursor, max_rows) if cursor.description else []
        except errors.QueryCanceled as exc:
            if cancellation is not None and cancellation.cancelled:
                raise QueryCancelled("canceling statement due to user request") from exc
            raise QueryTimeout(
                f"the query ran longer than {self.timeout_s:g} s and was stopped; "
                "narrow it (a shorter range, fewer slices) or ask for a coarser grain.",
                timeout_s=self.timeout_s,
            ) from exc
        except (self._psycopg.DataError, errors.DatatypeMismatch, errors.UndefinedFunction) as exc:
            raise _value_error(exc, sql, params) from exc
        except self._psycopg.OperationalError as exc:
            raise WarehouseUnavailable(f"the PostgreSQL warehouse is unavailable: {exc}") from exc
        except self._psycopg.Error as exc:
            raise InternalError(
                "the warehouse could not run the query.",
                sqlstate=exc.sqlstate,
                internal=(exc.diag.message_primary or str(exc)).strip().splitlines()[0],
            ) from exc
        except Exception as exc:  # PoolTimeout: every connection busy for the whole timeout
            if type(exc).__name__ == "PoolTimeout":
                raise WarehouseUnavailable(f"no PostgreSQL connection became free in time: {exc}") from exc
            raise
        columns = tuple(ResultColumn(d.name, column_type(d.type_code)) for d in description)
        if any(c.type == "number" for c in columns):
            rows = [tuple(float(v) if isinstance(v, decimal.Decimal) else v for v in row) for row in rows]
        else:
            rows = [tuple(row) for row in rows]
        return ResultSet(columns, rows)

    def arrow(self, sql: str, params: dict[str, Any] | None = None):
        """The result as a pyarrow Table (for Parquet/Arrow downloads)."""
        import pyarrow as pa

        result = self.query(sql, params)
        return pa.table({c.name: [row[i] for row in result.rows] for i, c in enumerate(result.columns)})

    def close(self) -> None:
        self._closed = True
        self._pool.close()
