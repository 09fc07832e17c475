"""The warehouse behind a Protocol: the engine only asks a `SqlClient` to run a statement."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb

from metrics.errors import (
    InternalError,
    InvalidFilter,
    QueryCancelled,
    QueryTimeout,
    ResultTooLarge,
    WarehouseUnavailable,
)
from metrics.execution.cancel import interruptible

# Rows are fetched this many at a time: each fetch holds the GIL while it builds Python rows,
# so small batches keep other threads (the HTTP event loop) responsive during a big read.
FETCH_BATCH = 2048


@dataclass(frozen=True)
class ResultColumn:
    name: str
    type: str  # one of: date, timestamp, string, integer, number, boolean


@dataclass(frozen=True)
class ResultSet:
    columns: tuple[ResultColumn, ...]
    rows: list[tuple[Any, ...]]


class SqlClient(Protocol):
    dialect: str

    def query(self, sql: str, params: dict[str, Any] | None = None, *, max_rows: int | None = None) -> ResultSet:
        """Runs `sql`; with `max_rows`, raises ResultTooLarge rather than fetch more rows."""
        ...

    def close(self) -> None: ...


def _column_type(type_code: Any) -> str:
    text = str(type_code).upper()
    if text == "DATE":
        return "date"
    if text.startswith("TIMESTAMP"):
        return "timestamp"
    if text in ("BOOLEAN", "BOOL"):
        return "boolean"
    if text in (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    ):
        return "integer"
    if text in ("DOUBLE", "FLOAT", "REAL") or text.startswith("DECIMAL"):
        return "number"
    return "string"


def _plain(value: Any) -> Any:
    # Decimal sums (money) leave the engine as floats: JSON, CSV and Arrow all take them.
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def too_many_rows(max_rows: int) -> ResultTooLarge:
    return ResultTooLarge(
        f"the answer has more than {max_rows:,} rows, the most one result may have; "
        "add a LIMIT, filters, or aggregate (GROUP BY) to narrow it.",
        max_rows=max_rows,
    )


def fetch_capped(cursor: Any, max_rows: int | None) -> list[tuple[Any, ...]]:
    """Every row of an executed DB-API cursor, in batches; at most `max_rows` of them."""
    rows: list[tuple[Any, ...]] = []
    while True:
        batch = cursor.fetchmany(FETCH_BATCH)
        if not batch:
            return rows
        rows.extend(batch)
        if max_rows is not None and len(rows) > max_rows:
            raise too_many_rows(max_rows)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def filter_type_mismatch(column: str | None, internal: str) -> InvalidFilter:
    """The one answer, on every warehouse, to a filter value the warehouse cannot compare with
    its column: the caller's to fix, named by the column when the warehouse says which; the
    warehouse's own words (`internal`) go to the server log only."""
    which = f" {column!r}" if column else ""
    return InvalidFilter(
        f"a filter value does not match the type of the dimension{which} it is compared with; "
        "compare text with text, numbers with numbers and true/false with boolean dimensions.",
        internal=internal,
        field=column,
    )


def _value_error(exc: duckdb.ConversionException, params: dict[str, Any] | None) -> Exception:
    """A value the warehouse cannot compare with its column (`true` against a text dimension,
    `'abc'` against a number, bound or written in a filter string) is the caller's to fix;
    generated SQL itself casts nothing it has not checked, so a conversion error that names no
    column of the caller's is ours."""
    detail = str(exc).strip().splitlines()[0]
    column = re.search(r"source column (\w+)", detail)
    if not params and column is None:
        return InternalError("the warehouse could not run the query.", internal=detail, reason=type(exc).__name__)
    return filter_type_mismatch(column.group(1) if column else None, detail)


def locked_config(memory_limit: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """DuckDB settings for a database that runs SQL built from client statements: no file,
    URL or other database can be read (`enable_external_access`), no extension installed or
    loaded, no Python object scanned by name, bounded memory and threads, and nothing of it
    can be changed back by a statement (`lock_configuration`, last)."""
    config: dict[str, Any] = {
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "python_enable_replacements": False,
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    config["lock_configuration"] = True
    return config


def lock_down(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None, threads: int | None = None) -> None:
    """Apply `locked_config` to the database `con` belongs to.

    Set on the open database rather than passed to `duckdb.connect`: DuckDB shares one
    database per file within a process and refuses a second connection to it with a different
    configuration, so hand-written readers of the same file (tests, benchmarks) could not open
    it beside the engine; set here, the shared database is locked for every connection. A
    database already locked (a second client on the same file) must already be closed to files.
    """
    locked = con.execute(
        "SELECT current_setting('lock_configuration'), current_setting('enable_external_access')"
    ).fetchone()
    if locked is None:  # a SELECT without FROM has one row
        raise InternalError("DuckDB returned no row for its own settings.")
    if locked[0]:
        if locked[1]:
            raise WarehouseUnavailable(
                "the warehouse database is locked with file access on; it cannot serve client SQL."
            )
        return
    for name, value in locked_config(memory_limit, threads).items():
        con.execute(f"SET {name} = {_setting_sql(value)}")


def _setting_sql(value: Any) -> str:
    """A setting's value as SQL (`false`, `4`, `'4GB'`); values come from settings, not clients."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class DuckDBClient:
    """Read-only access to one DuckDB warehouse file, safe for concurrent callers.

    One database instance is opened per file; each call runs on its own cursor (a
    connection sharing that instance), so concurrent queries do not serialise on a single
    connection. The instance is locked down (`locked_config`): everything served is in the
    warehouse's own tables, so nothing needs files, extensions or settings at serve time.
    """

    dialect = "duckdb"

    def __init__(
        self, path: Path, *, threads: int | None = None, timeout_s: float | None = None, memory_limit: str | None = None
    ) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        if not self.path.exists():
            raise WarehouseUnavailable(f"warehouse file {self.path} does not exist; run `northstar build`.")
        try:
            self._con = duckdb.connect(str(self.path), read_only=True)
            lock_down(self._con, memory_limit, threads)
        except duckdb.Error as exc:
            raise WarehouseUnavailable(f"cannot open warehouse {self.path}: {exc}") from exc
        self._local = threading.local()
        self._closed = False

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self._con.cursor()
        return cursor

    def query(self, sql: str, params: dict[str, Any] | None = None, *, max_rows: int | None = None) -> ResultSet:
        if self._closed:
            raise WarehouseUnavailable("the warehouse connection was closed (a newer build was swapped in).")
        cursor = self._cursor()
        timer = self._watchdog(cursor)
        cancellation = None
        try:
            with interruptible(cursor.interrupt) as cancellation:
                cursor.execute(sql, params or {})
                description = cursor.description or []
                rows = fetch_capped(cursor, max_rows)
        except duckdb.InterruptException as exc:
            if cancellation is not None and cancellation.cancelled:
                raise QueryCancelled("canceling statement due to user request") from exc
            raise QueryTimeout(
                f"the query ran longer than {self.timeout_s:g} s and was stopped; "
                "narrow it (a shorter range, fewer slices) or ask for a coarser grain.",
                timeout_s=self.timeout_s,
            ) from exc
        except duckdb.ConversionException as exc:
            raise _value_error(exc, params) from exc
        except duckdb.Error as exc:
            raise InternalError(
                "the warehouse could not run the query.", internal=_first_line(exc), reason=type(exc).__name__
            ) from exc
        finally:
            if timer is not None:
                timer.cancel()
        columns = tuple(ResultColumn(d[0], _column_type(d[1])) for d in description)
        if any(c.type == "number" for c in columns):
            rows = [tuple(_plain(v) for v in row) for row in rows]
        return ResultSet(columns, rows)

    def _watchdog(self, cursor: duckdb.DuckDBPyConnection) -> threading.Timer | None:
        """Interrupt `cursor` once the timeout has passed, so a runaway query frees its
        worker thread and its share of the warehouse instead of holding them."""
        if not self.timeout_s:
            return None
        timer = threading.Timer(self.timeout_s, cursor.interrupt)
        timer.daemon = True
        timer.start()
        return timer

    def arrow(self, sql: str, params: dict[str, Any] | None = None):
        """The result as a pyarrow Table (for Parquet/Arrow downloads), without Python rows."""
        cursor = self._cursor()
        try:
            return cursor.execute(sql, params or {}).to_arrow_table()
        except duckdb.ConversionException as exc:
            raise _value_error(exc, params) from exc
        except duckdb.Error as exc:
            raise InternalError("the warehouse could not run the query.", internal=str(exc)) from exc

    def close(self) -> None:
        self._closed = True
        try:
            self._con.close()
        except duckdb.Error:
            pass


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value
