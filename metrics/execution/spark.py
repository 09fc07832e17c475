"""A `SqlClient` over a Spark build: a Spark session in this process, its tables registered from
the Parquet folders the build wrote (see `northstar.spark` for why there is no shared
metastore), statements run by `spark.sql` with named parameters (`:p0`), never pasted values.

One Spark session (one JVM) serves the whole process; each client registers its build's
tables as external tables of that session's in-memory catalog (databases named after the
build, so two builds never collide) and drops them when the last client of that build closes.
A query runs in a job group of its own, so a timeout cancels exactly its Spark jobs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any

from metrics.errors import InternalError, QueryCancelled, QueryTimeout, WarehouseUnavailable
from metrics.execution.cancel import interruptible
from metrics.execution.client import ResultColumn, ResultSet, filter_type_mismatch, too_many_rows

DEFAULT_MASTER = "local[2]"

_TYPE_NAMES = {
    "boolean": "boolean",
    "tinyint": "integer",
    "smallint": "integer",
    "int": "integer",
    "bigint": "integer",
    "byte": "integer",
    "short": "integer",
    "integer": "integer",
    "long": "integer",
    "float": "number",
    "double": "number",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp",
}

_lock = threading.Lock()
_users: dict[str, int] = {}  # build id -> open clients in this process


def column_type(spark_type: str) -> str:
    """A northstar type from a Spark type name (`simpleString`: int, decimal(18,2), ...)."""
    name = str(spark_type).lower()
    if name.startswith("decimal"):
        return "number"
    return _TYPE_NAMES.get(name, "string")


def session_config(master: str, warehouse_dir: Path | None = None) -> dict[str, str]:
    """The Spark settings of every northstar session: the build's (dbt-spark) and each server's."""
    config = {
        "spark.master": master,
        "spark.app.name": "northstar",
        # no shared (Derby) metastore, each process its own catalog: see northstar.spark
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.session.timeZone": "UTC",
        # dbt's `create table ... as select` without a file format: a Parquet table (a Hive
        # table, the legacy default, needs the Hive catalog)
        "spark.sql.legacy.createHiveTableByDefault": "false",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # naive landing timestamps (Parquet without UTC adjustment) read as UTC, never local
        "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
    }
    if master.startswith("local"):
        # 200 shuffle partitions (Spark's default, sized for clusters) cost more than the
        # work on one machine; adaptive execution coalesces further.
        config["spark.sql.shuffle.partitions"] = "8"
    if warehouse_dir is not None:
        config["spark.sql.warehouse.dir"] = str(warehouse_dir)
    return config


def spark_session(master: str | None = None):
    """This process's Spark session (created on first use), configured as builds are."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise WarehouseUnavailable("serving a Spark build needs pyspark: pip install 'northstar[spark]'.") from exc
    master = master or os.environ.get("NORTHSTAR_SPARK_MASTER") or DEFAULT_MASTER
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        builder = SparkSession.builder
        # A scratch warehouse directory: the serving session writes nothing, and Spark would
        # otherwise create `spark-warehouse/` in the working directory.
        scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"northstar-spark-{os.getpid()}"
        for key, value in session_config(master, scratch).items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # no Java, a master that does not answer
            raise WarehouseUnavailable(
                f"cannot start Spark on {master}: {str(exc).strip().splitlines()[0]}; "
                "check NORTHSTAR_SPARK_MASTER and that Java 17 is installed."
            ) from exc
        session.sparkContext.setLogLevel("ERROR")
        return session


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _bindable(value: Any) -> Any:
    # Spark converts a naive datetime with the process's local zone; every metric time is
    # UTC, so say so.
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class SparkClient:
    """Read-only access to one Spark build (its `warehouse.spark` pointer); thread-safe."""

    dialect = "spark"

    def __init__(self, pointer: Path, *, master: str | None = None, timeout_s: float | None = None) -> None:
        self.pointer = Path(pointer)
        self.timeout_s = timeout_s
        info = json.loads(self.pointer.read_text())
        self.build_id: str = info["build_id"]
        self.schemas: dict[str, str] = info.get("schemas") or {}
        self._spark = spark_session(master)
        self._closed = False
        with _lock:
            first = _users.get(self.build_id, 0) == 0
            _users[self.build_id] = _users.get(self.build_id, 0) + 1
        if first:
            try:
                self._register(info.get("tables") or [])
            except Exception:
                self._release()
                raise

    def _register(self, tables: list[dict]) -> None:
        for table in tables:
            location = Path(table["location"])
            if not location.is_absolute():
                location = self.pointer.parent / location
            if not location.exists():
                raise WarehouseUnavailable(
                    f"table {table['schema']}.{table['table']} of build {self.build_id} "
                    f"has no data at {location}; rebuild with `northstar build`."
                )
            schema, name = _quote(table["schema"]), _quote(table["table"])
            self._spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
            self._spark.sql(
                f"CREATE TABLE IF NOT EXISTS {schema}.{name} USING {table.get('format') or 'parquet'} "
                f"LOCATION {_string(str(location))}"
            )

    def query(self, sql: str, params: dict[str, Any] | None = None, *, max_rows: int | None = None) -> ResultSet:
        if self._closed:
            raise WarehouseUnavailable("the warehouse connection was closed (a newer build was swapped in).")
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        context = self._spark.sparkContext
        group = f"northstar-{secrets.token_hex(6)}"
        context.setJobGroup(group, "northstar query", interruptOnCancel=True)
        timed_out = threading.Event()
        timer = None
        if self.timeout_s:

            def cancel() -> None:
                timed_out.set()
                context.cancelJobGroup(group)

            timer = threading.Timer(self.timeout_s, cancel)
            timer.daemon = True
            timer.start()
        cancellation = None
        try:
            with interruptible(lambda: context.cancelJobGroup(group)) as cancellation:
                args = {k: _bindable(v) for k, v in (params or {}).items()}
                frame = self._spark.sql(sql, args=args) if args else self._spark.sql(sql)
                # One row more than allowed tells a too-large answer without collecting it.
                rows = frame.limit(max_rows + 1).collect() if max_rows is not None else frame.collect()
                schema = frame.schema
            if max_rows is not None and len(rows) > max_rows:
                raise too_many_rows(max_rows)
        except (PySparkException, Py4JError) as exc:
            if cancellation is not None and cancellation.cancelled:
                raise QueryCancelled("canceling statement due to user request") from exc
            if timed_out.is_set():
                raise QueryTimeout(
                    f"the query ran longer than {self.timeout_s:g} s and was stopped; "
                    "narrow it (a shorter range, fewer slices) or ask for a coarser grain.",
                    timeout_s=self.timeout_s,
                ) from exc
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            mismatch = _value_error(exc, detail, params)
            if mismatch is not None:
                raise mismatch from exc
            raise InternalError(
                "the warehouse could not run the query.", internal=detail, reason=type(exc).__name__
            ) from exc
        finally:
            if timer is not None:
                timer.cancel()
            context.setLocalProperty("spark.jobGroup.id", None)
        columns = tuple(ResultColumn(f.name, column_type(f.dataType.simpleString())) for f in schema.fields)
        local_times = [i for i, f in enumerate(schema.fields) if f.dataType.simpleString() == "timestamp"]
        return ResultSet(columns, [_plain_row(tuple(row), local_times) for row in rows])

    def mart_columns(self, schemas: list[str]) -> list[tuple[str, str, str, str]]:
        """(schema, table, column, Spark type) of every table in `schemas`, in column order."""
        out = []
        for schema in schemas:
            if not self._spark.catalog.databaseExists(schema):
                continue
            for table in sorted(self._spark.catalog.listTables(schema), key=lambda t: t.name):
                if table.tableType == "VIEW":
                    continue
                for column in self._spark.catalog.listColumns(f"{_quote(schema)}.{_quote(table.name)}"):
                    out.append((schema, table.name, column.name, column.dataType))
        return out

    def arrow(self, sql: str, params: dict[str, Any] | None = None):
        """The result as a pyarrow Table (for Parquet/Arrow downloads)."""
        import pyarrow as pa

        result = self.query(sql, params)
        return pa.table({c.name: [row[i] for row in result.rows] for i, c in enumerate(result.columns)})

    def _release(self) -> None:
        with _lock:
            left = _users[self.build_id] = _users.get(self.build_id, 1) - 1
        if left <= 0:
            for schema in self.schemas.values():
                try:
                    # external tables: dropping them leaves the build's Parquet alone
                    self._spark.sql(f"DROP DATABASE IF EXISTS {_quote(schema)} CASCADE")
                except Exception:  # the session is already stopping
                    pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()


# Error classes of a value Spark cannot compare with its column: an analysis-time type
# mismatch (`country = true`) or a value that does not cast (`country = 3` under ANSI mode).
_MISMATCH_CLASSES = ("DATATYPE_MISMATCH", "CAST_INVALID_INPUT", "INVALID_TYPED_LITERAL")
# `Cannot resolve "(country = true)"`: the comparison Spark names, a plain column on its left
_RESOLVED = re.compile(r'Cannot resolve "\(?(?:\w+\.)*`?(\w+)`?\s*(?:=|<>|!=|<=>|<=|>=|<|>)')


def _value_error(exc: Exception, detail: str, params: dict[str, Any] | None):
    """A filter value Spark cannot compare with its column, answered as on DuckDB and
    PostgreSQL (metrics.execution.client.filter_type_mismatch); None for any other error."""
    error_class = getattr(exc, "getErrorClass", lambda: None)() or ""
    if not error_class.startswith(_MISMATCH_CLASSES):
        return None
    column = _RESOLVED.search(str(exc))
    if not params and column is None:
        return None
    return filter_type_mismatch(column.group(1) if column else None, detail)


def _plain_row(row: tuple, local_times: list[int]) -> tuple:
    if not local_times and not any(isinstance(v, decimal.Decimal) for v in row):
        return row
    values = list(row)
    for i, value in enumerate(values):
        if isinstance(value, decimal.Decimal):
            values[i] = float(value)
    for i in local_times:
        # Spark hands timestamps over as naive local times of this process; back to naive UTC
        if isinstance(values[i], dt.datetime):
            values[i] = values[i].astimezone(dt.UTC).replace(tzinfo=None)
    return tuple(values)
