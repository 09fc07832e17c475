"""The catalog database: what PostgreSQL clients ask besides data (`pg_catalog` /
`information_schema` introspection and built-in functions such as `version()`,
`current_schema()`, `SELECT 1`), answered by a small in-memory DuckDB database per build.

The schemas `semantic` and `marts` hold empty tables with the columns, types and comments
clients may query, and DuckDB's own `pg_catalog` / `information_schema` views describe them.
The few PostgreSQL functions, casts and relation shapes DuckDB lacks are macros and views in an
`overrides` database searched first (defined in `catalog_relations`); a client's query is
checked and transpiled from PostgreSQL (`catalog_translate`) and run here, bounded like a
metric query. The catalog database has no file access, so a client's SQL can read nothing but
the catalog. Session statements (SET, SHOW, BEGIN, ...) never reach it: `session` answers them.
"""

from __future__ import annotations

import threading
from typing import Any

import duckdb
from sqlglot import exp

from api.sql_endpoint import protocol
from api.sql_endpoint.catalog_relations import (
    DUCKDB_TYPES,
    OVERRIDES,
    PG_COLUMNS,
    CatalogTable,
    created_view,
    ident,
    literal,
    pg_shaped_view,
    settings_view,
)
from api.sql_endpoint.catalog_translate import (
    check_catalog_query,
    duckdb_type_oid,
    relations_by_schema,
    to_duckdb,
    with_text_types,
)
from api.sql_endpoint.session import DATABASE, DEFAULT_SCHEMA, Session
from api.sql_endpoint.sqlstates import as_sql_error
from api.sql_endpoint.statements import SUPPORTED, SqlError
from metrics.errors import MetricsError
from metrics.execution.cancel import interruptible
from metrics.execution.client import fetch_capped


class CatalogDatabase:
    """The in-memory catalog database of one build.

    Client SQL runs here, so it is bounded like a metric query: one thread, `memory_limit`
    (no spilling to disk), `timeout_s` per statement and at most `max_rows` rows per answer.
    """

    def __init__(
        self,
        tables: list[CatalogTable],
        *,
        memory_limit: str = "256MB",
        timeout_s: float | None = 30.0,
        max_rows: int | None = 1_000_000,
    ) -> None:
        self._lock = threading.Lock()
        self.memory_limit = memory_limit
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        # No temp directory: a query over the memory limit fails instead of writing to disk.
        con = duckdb.connect(":memory:", config={"threads": 1, "memory_limit": memory_limit, "temp_directory": ""})
        con.execute(f"ATTACH ':memory:' AS {DATABASE}")
        con.execute("ATTACH ':memory:' AS overrides")
        # Views first: some macros read them.
        for statement in sorted([*OVERRIDES, settings_view()], key=lambda text: not text.startswith("CREATE VIEW")):
            relation = created_view(statement)
            if relation in PG_COLUMNS:
                # The override is the source of PostgreSQL's shape, created before the views
                # and macros that read the relation by name.
                source = f"overrides.main.{relation}__source"
                con.execute(statement.replace(f"CREATE VIEW {relation} ", f"CREATE VIEW {source} ", 1))
                con.execute(
                    pg_shaped_view(con, relation, source).replace("CREATE VIEW ", "CREATE VIEW overrides.main.", 1)
                )
                continue
            con.execute(
                statement.replace("CREATE MACRO ", "CREATE MACRO overrides.main.", 1).replace(
                    "CREATE VIEW ", "CREATE VIEW overrides.main.", 1
                )
            )
        for relation in PG_COLUMNS:  # the ones DuckDB's pg_catalog answers without an override
            if not any(created_view(statement) == relation for statement in [*OVERRIDES, settings_view()]):
                con.execute(
                    pg_shaped_view(con, relation, f"system.pg_catalog.{relation}").replace(
                        "CREATE VIEW ", "CREATE VIEW overrides.main.", 1
                    )
                )
        con.execute(f"USE {DATABASE}")
        for schema in sorted({t.schema for t in tables} | {DEFAULT_SCHEMA, "marts"}):
            con.execute(f"CREATE SCHEMA {ident(schema)}")
        ddl = []  # one transaction: a statement per column comment would each commit
        for table in tables:
            qualified = f"{ident(table.schema)}.{ident(table.name)}"
            columns = ", ".join(f"{ident(c.name)} {DUCKDB_TYPES.get(c.type, 'VARCHAR')}" for c in table.columns)
            ddl.append(f"CREATE TABLE {qualified} ({columns or 'placeholder VARCHAR'})")
            if table.comment:
                ddl.append(f"COMMENT ON TABLE {qualified} IS {literal(table.comment)}")
            for column in table.columns:
                if column.comment:
                    ddl.append(f"COMMENT ON COLUMN {qualified}.{ident(column.name)} IS {literal(column.comment)}")
        con.execute("BEGIN")
        for statement in ddl:
            con.execute(statement)
        con.execute("COMMIT")
        # What client SQL may read here: the catalog views (DuckDB's pg_catalog and
        # information_schema, the overrides) and the served tables' empty stand-ins.
        relations = con.execute(
            "SELECT database_name, schema_name, view_name FROM duckdb_views() "
            "UNION ALL SELECT database_name, schema_name, table_name FROM duckdb_tables()"
        ).fetchall()
        self.relations = relations_by_schema(relations)
        # Client SQL runs here: no files, no extensions, no changing that back.
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        self._con = con
        self.tables = tables

    def cursor(self) -> duckdb.DuckDBPyConnection:
        # A cursor is a new connection to the same database: it gets its own search path.
        with self._lock:
            cursor = self._con.cursor()
        cursor.execute(f"USE {DATABASE}")
        cursor.execute(f"SET search_path = '{DATABASE}.{DEFAULT_SCHEMA},overrides.main'")
        return cursor

    def run(
        self, statement: exp.Expression, session: Session
    ) -> tuple[tuple[protocol.Column, ...], list[tuple[Any, ...]]]:
        """Runs a (PostgreSQL) catalog query, interruptible by the caller's cancellation token
        (`metrics.execution.cancel`) and stopped after `timeout_s`."""
        check_catalog_query(statement, self.relations)
        sql = to_duckdb(statement, session)
        cursor = self.cursor()
        timed_out = threading.Event()
        timer = None
        if self.timeout_s:

            def stop() -> None:
                timed_out.set()
                cursor.interrupt()

            timer = threading.Timer(self.timeout_s, stop)
            timer.daemon = True
        try:
            try:
                with interruptible(cursor.interrupt):
                    if timer is not None:
                        timer.start()
                    result = cursor.execute(sql)
                    columns = with_text_types(
                        statement, tuple(protocol.Column(d[0], duckdb_type_oid(str(d[1]))) for d in result.description)
                    )
                    rows = fetch_capped(result, self.max_rows)
                return columns, rows
            except MetricsError as exc:  # too many rows, cancelled: the one table (sqlstates.py)
                raise as_sql_error(exc, sql) from exc
            except duckdb.InterruptException as exc:
                if timed_out.is_set():
                    raise SqlError(
                        "57014",
                        "canceling statement due to statement timeout",
                        hint=f"catalog queries may run {self.timeout_s:g} s",
                    ) from exc
                raise SqlError("57014", "canceling statement due to user request") from exc
            except duckdb.OutOfMemoryException as exc:
                raise SqlError(
                    "53200",
                    f"out of memory: the query needs more than the {self.memory_limit} a catalog query may use",
                    hint="narrow it (fewer rows, no large joins)",
                ) from exc
            except duckdb.CatalogException as exc:
                raise SqlError("42P01" if "Table" in str(exc) else "42883", _first_line(exc), hint=SUPPORTED) from exc
            except duckdb.Error as exc:
                raise SqlError(
                    "42601" if isinstance(exc, duckdb.ParserException) else "XX000", _first_line(exc), hint=SUPPORTED
                ) from exc
        finally:
            if timer is not None:
                timer.cancel()
            cursor.close()

    def close(self) -> None:
        self._con.close()


def _first_line(exc: Exception) -> str:
    return str(exc).split("\n")[0]
