"""Read-only SELECTs over the dbt marts, as BI tools send them, checked and rewritten.

A client's statement arrives as a sqlglot tree (parsed from PostgreSQL). It may only read:
one query (SELECT, possibly with set operations and CTEs), only tables of the `marts` schema
(or its own CTEs), and no function that reaches outside the warehouse (files, globs, settings,
other databases). Table names are rewritten to where the marts physically live, and the tree is
rendered for the warehouse's dialect; literals stay sqlglot literals, so nothing the client
wrote is pasted into SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from metrics.errors import UserError, did_you_mean
from metrics.query.request import Filter, FilterOp
from metrics.sql.render import RenderedQuery, literal

MARTS_SCHEMA = "marts"

# The columns of every base table in the schemas given as $schemas (the marts' schemas).
MART_COLUMNS_SQL = (
    "SELECT c.table_schema, c.table_name, c.column_name, c.data_type "
    "FROM information_schema.columns AS c JOIN information_schema.tables AS t "
    "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
    "WHERE t.table_type = 'BASE TABLE' AND list_contains($schemas, c.table_schema) "
    "ORDER BY c.table_schema, c.table_name, c.ordinal_position"
)


def mart_columns_sql(dialect: str) -> str:
    """MART_COLUMNS_SQL with the dialect's list test and placeholder for $schemas."""
    if dialect == "postgres":
        return MART_COLUMNS_SQL.replace("list_contains($schemas, c.table_schema)",
                                        "c.table_schema = ANY(%(schemas)s)")
    return MART_COLUMNS_SQL

# Function names (lower case) that read files, list directories, reach other databases or
# expose the server's settings; refused wherever they appear.
_FORBIDDEN_PREFIXES = ("read_", "parquet_", "iceberg_", "delta_", "sniff_", "duckdb_", "pragma_",
                       "pg_read", "pg_ls", "pg_stat_file", "lo_", "dblink", "sqlite_", "postgres_",
                       "mysql_", "json_execute", "http")
_FORBIDDEN_NAMES = frozenset({
    "glob", "getenv", "current_setting", "set_config", "query", "query_table", "load", "install",
    "copy", "attach", "detach", "export_database", "import_database", "which_secret", "checkpoint",
    "force_checkpoint", "summary", "arrow_scan", "csv_scan", "parquet_scan", "json_scan", "read",
})
_FORBIDDEN_CLASSES = (exp.ReadCSV, exp.ReadParquet)
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
           exp.Command, exp.Copy, exp.Pragma, exp.Set, exp.Use, exp.Into, exp.TruncateTable,
           exp.Transaction, exp.Commit, exp.Rollback, exp.LoadData)


class UnknownTable(UserError):
    """A table the SQL endpoint does not serve."""

    code = "unknown_table"


class UnsupportedSql(UserError):
    """SQL the endpoint cannot answer (writes, file access, joins of metrics, ...)."""

    code = "unsupported_sql"


@dataclass(frozen=True)
class MartTable:
    """A mart as clients see it (`marts.<name>`) and where it lives in the warehouse.

    `restriction`, when set, is a condition over the mart's own columns that every read of it
    keeps (a caller's row-level policy): the mart is read as `(SELECT * ... WHERE restriction)`.
    """

    name: str
    schema: str
    table: str
    restriction: exp.Expression | None = None

    def source(self, alias: str, quoted: bool = True) -> exp.Expression:
        """The FROM item that reads this mart, under `alias`."""
        table = exp.Table(this=exp.to_identifier(self.table, quoted=True),
                          db=exp.to_identifier(self.schema, quoted=True))
        if self.restriction is None:
            return exp.alias_(table, exp.to_identifier(alias, quoted=quoted), table=True)
        restricted = exp.select(exp.Star()).from_(table).where(self.restriction.copy())
        return exp.alias_(restricted.subquery(), exp.to_identifier(alias, quoted=quoted), table=True)


def column_restriction(filters: Sequence[Filter], columns: set[str]) -> exp.Expression | None:
    """`filters` on a mart's own columns (a filter on `user__account__region` reads column
    `region`), when the mart has a column for every one; else None. Values are literals (they
    come from the token store, never from a request); NULL passes neither `in` nor `not in`,
    as in metric queries.

    >>> print(column_restriction([Filter("region", FilterOp.IN, values=("emea",))], {"region"}).sql())
    "region" IN ('emea')
    """
    names = [f.field.split("__")[-1] for f in filters]
    if not filters or not all(n in columns for n in names):
        return None
    return exp.and_(*(_filter_condition(exp.column(n, quoted=True), f) for n, f in zip(names, filters)))


def users_restriction(users: RenderedQuery, column: str = "user_id") -> exp.Expression:
    """`column IN (users)`: a mart restricted to the users a rendered statement selects."""
    return exp.column(column, quoted=True).isin(query=sqlglot.parse_one(users.inline_sql(pretty=False),
                                                                         read=users.dialect))


def _filter_condition(column: exp.Expression, flt: Filter) -> exp.Expression:
    if flt.op is FilterOp.IN:
        return column.isin(*(literal(v) for v in flt.values))
    if flt.op is FilterOp.NOT_IN:
        return exp.Not(this=column.isin(*(literal(v) for v in flt.values)))
    if flt.op is FilterOp.EQ:
        return exp.EQ(this=column, expression=literal(flt.value))
    if flt.op is FilterOp.NE:
        return exp.Not(this=exp.EQ(this=column, expression=literal(flt.value)))
    raise UnsupportedSql(f"row policies filter with =, !=, in and not in, not {flt.op.value!r}.")


@dataclass(frozen=True)
class Condition:
    """`column op value`; `op` is one of =, >=, <, in."""

    column: str
    op: str
    value: Any


def select_sql(mart: MartTable, columns: Sequence[str], where: Sequence[Condition] = (),
               order_by: Sequence[str] = (), dialect: str = "duckdb",
               distinct: bool = False) -> tuple[str, dict[str, Any]]:
    """A SELECT over one mart with bound values.

    >>> select_sql(MartTable("dim_releases", "marts", "dim_releases"), ["platform", "app_version"],
    ...            [Condition("platform", "=", "ios")], ["app_version"])
    ('SELECT "platform", "app_version" FROM "marts"."dim_releases" AS "dim_releases" WHERE "platform" = $p0 ORDER BY "app_version"', {'p0': 'ios'})
    """
    params: dict[str, Any] = {}

    def bind(value: Any) -> exp.Expression:
        name = f"p{len(params)}"
        params[name] = value
        return exp.Placeholder(this=name)

    query = exp.select(*(exp.column(c, quoted=True) for c in columns)).from_(mart.source(mart.name))
    if distinct:
        query = query.distinct()
    for cond in where:
        column = exp.column(cond.column, quoted=True)
        if cond.op == "=":
            query = query.where(column.eq(bind(cond.value)))
        elif cond.op == ">=":
            query = query.where(exp.GTE(this=column, expression=bind(cond.value)))
        elif cond.op == "<":
            query = query.where(exp.LT(this=column, expression=bind(cond.value)))
        elif cond.op == "in":
            query = query.where(column.isin(*(bind(v) for v in cond.value)))
        else:
            raise ValueError(f"unsupported condition op {cond.op!r}")
    if order_by:
        query = query.order_by(*(exp.column(c, quoted=True) for c in order_by))
    return query.sql(dialect=dialect), params


def function_name(node: exp.Expression) -> str:
    """The lower-case SQL name of a function node (`read_csv`, `sum`, `measure`)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower() if isinstance(node, exp.Func) else node.key.lower()


def check_functions(statement: exp.Expression) -> None:
    """Refuse functions that touch files, settings or other databases."""
    for node in statement.walk():
        if isinstance(node, _FORBIDDEN_CLASSES):
            raise UnsupportedSql(f"{function_name(node)}() is not allowed: only the served tables can be read.")
        if isinstance(node, exp.Func):
            name = function_name(node)
            if name in _FORBIDDEN_NAMES or name.startswith(_FORBIDDEN_PREFIXES):
                raise UnsupportedSql(f"{name}() is not allowed: only the served tables can be read.")


def check_read_only(statement: exp.Expression) -> None:
    """Only one query: SELECT, set operations of SELECTs, and CTEs; nothing that writes."""
    if not isinstance(statement, exp.Query):
        raise UnsupportedSql(
            f"only SELECT queries are supported here (got {statement.key.upper()}); the endpoint is read-only.")
    for node in statement.walk():
        if isinstance(node, _WRITES):
            raise UnsupportedSql(f"{node.key.upper()} is not supported; the endpoint is read-only (SELECT only).")
        if isinstance(node, exp.Lock):
            raise UnsupportedSql("SELECT ... FOR UPDATE/SHARE is not supported; the endpoint is read-only.")


def cte_names(statement: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}


def rewrite_mart_query(statement: exp.Expression, marts: dict[str, MartTable], dialect: str) -> str:
    """Check a client's SELECT over `marts.*` and render it for the warehouse.

    Raises:
        UnsupportedSql: not a single read-only query, or it calls a forbidden function.
        UnknownTable: it reads something other than a mart or one of its own CTEs.
    """
    check_read_only(statement)
    check_functions(statement)
    tree = statement.copy()
    local = cte_names(tree)
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            raise UnsupportedSql("only tables of the marts schema can be read (no table functions).")
        schema = (table.db or "").lower()
        name = table.name.lower() if not table.this.quoted else table.name
        if table.catalog and table.catalog.lower() not in ("northstar",):
            raise UnknownTable(f"relation \"{table.sql(dialect='postgres')}\" does not exist; "
                               f"mart tables are {_listing(marts)}.")
        if not schema and name.lower() in local:
            continue
        mart = marts.get(name) if schema == MARTS_SCHEMA else None
        if mart is None:
            hint = did_you_mean(name, marts)
            raise UnknownTable(f"relation \"{table.sql(dialect='postgres')}\" does not exist; "
                               f"mart tables are {_listing(marts)}.{hint}", table=table.name)
        alias = table.args.get("alias")
        if alias is not None and alias.columns:
            replacement = mart.source(alias.name, alias.this.quoted if alias.this else True)
            replacement.args["alias"].set("columns", [c.copy() for c in alias.columns])
        elif alias is not None:
            replacement = mart.source(alias.name, alias.this.quoted)
        else:
            replacement = mart.source(table.name, table.this.quoted)
        table.replace(replacement)
    # `marts.fct_events.user_id` names the table by its schema; after the rewrite the table is
    # known by its alias only, so column references keep just the table part.
    for column in tree.find_all(exp.Column):
        if column.args.get("db") is not None:
            column.set("db", None)
            column.set("catalog", None)
    return tree.sql(dialect=dialect)


def _listing(marts: dict[str, MartTable]) -> str:
    return ", ".join(f"marts.{name}" for name in sorted(marts)) or "(none)"
