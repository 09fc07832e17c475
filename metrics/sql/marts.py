"""Read-only SELECTs over the dbt marts, as BI tools send them, checked and rebuilt.

A client's statement arrives as a sqlglot tree (parsed from PostgreSQL). It is rebuilt so that
it can read nothing but what is allowed, rather than searched for what is not: one query
(SELECT, possibly with set operations and CTEs); every table reference resolved with SQL's
scoping to either one of the statement's own CTEs (renamed to a private name) or a mart of the
`marts` schema (replaced by the mart's physical table, read through the caller's row policy);
only ordinary scalar, aggregate and window functions from an allow-list. Anything else (files,
table functions, other schemas, settings, extensions) is refused. The tree is rendered for the
warehouse's dialect; literals stay sqlglot literals, so nothing the client wrote is pasted into
SQL text."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope

from metrics.errors import InternalError, InvalidQuery, MetricsError, UserError, did_you_mean
from metrics.query.request import Filter, FilterOp
from metrics.sql.trees import RenderedQuery, literal

MARTS_SCHEMA = "marts"
# The database name clients see (`northstar.marts.<name>` is `marts.<name>`).
DATABASE = "northstar"

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
        return MART_COLUMNS_SQL.replace("list_contains($schemas, c.table_schema)", "c.table_schema = ANY(%(schemas)s)")
    return MART_COLUMNS_SQL


# The functions a client's SELECT may call: ordinary scalar, aggregate and window functions, as
# sqlglot classes (what the parser made of a known function) plus a few names sqlglot leaves as
# `Anonymous`. Anything else (table functions, file readers, settings, extensions, other
# databases, functions unknown to sqlglot) is refused before the warehouse sees the statement,
# whatever its name or the engine behind the warehouse.
_ALLOWED_FUNCTION_CLASSES = frozenset(
    cls
    for cls in (
        getattr(exp, name, None)
        for name in (
            # operators sqlglot models as functions
            "And",
            "Or",
            "Xor",
            "Collate",
            "ArrayContains",
            "ArrayContainedBy",
            "ArrayOverlaps",
            # conditionals, casts and subquery tests
            "Exists",
            "Any",
            "All",
            "Case",
            "If",
            "Coalesce",
            "Nullif",
            "Greatest",
            "Least",
            "Cast",
            "TryCast",
            # numbers
            "Abs",
            "Ceil",
            "Floor",
            "Round",
            "Trunc",
            "Sign",
            "Sqrt",
            "Cbrt",
            "Ln",
            "Log",
            "Exp",
            "Pow",
            "Mod",
            "Pi",
            "Degrees",
            "Radians",
            "Sin",
            "Cos",
            "Tan",
            "Rand",
            "WidthBucket",
            "ToNumber",
            # text
            # (Not `repeat`, `lpad`, `rpad`: an argument sets their output's size, so one call may build
            # gigabytes per row in memory no warehouse memory limit covers: results leave the limit.)
            "Lower",
            "Upper",
            "Length",
            "BitLength",
            "Substring",
            "Trim",
            "Left",
            "Right",
            "Concat",
            "ConcatWs",
            "Replace",
            "Translate",
            "Reverse",
            "Initcap",
            "StrPosition",
            "StartsWith",
            "SplitPart",
            "Ascii",
            "Chr",
            "MD5",
            "RegexpLike",
            "RegexpILike",
            "RegexpReplace",
            "RegexpExtract",
            "Overlay",
            "Format",
            "StringToArray",
            "ArrayToString",
            "ArraySize",
            "Array",
            "JSONExtractScalar",
            "JSONExtract",
            # dates and times
            "CurrentDate",
            "CurrentTimestamp",
            "Localtimestamp",
            "Date",
            "DateTrunc",
            "TimestampTrunc",
            "Extract",
            "TimeToStr",
            "StrToDate",
            "StrToTime",
            "UnixToTime",
            "DateAdd",
            "DateSub",
            "DateDiff",
            "DateBin",
            "JustifyDays",
            "MakeInterval",
            # aggregates
            "Count",
            "Sum",
            "Avg",
            "Min",
            "Max",
            "AnyValue",
            "ArrayAgg",
            "GroupConcat",
            "LogicalAnd",
            "LogicalOr",
            "Stddev",
            "StddevPop",
            "StddevSamp",
            "Variance",
            "VariancePop",
            "Corr",
            "CovarPop",
            "CovarSamp",
            "PercentileCont",
            "PercentileDisc",
            "Median",
            "Mode",
            "ApproxDistinct",
            "CountIf",
            # windows
            "RowNumber",
            "Rank",
            "DenseRank",
            "PercentRank",
            "CumeDist",
            "Ntile",
            "Lag",
            "Lead",
            "FirstValue",
            "LastValue",
            "NthValue",
        )
    )
    if cls is not None
)
# (`x <> ALL(ARRAY[...])` reaches sqlglot's tree as a function named `all`.)
_ALLOWED_FUNCTION_NAMES = frozenset(
    {
        "all",
        "age",
        "every",
        "isfinite",
        "make_date",
        "octet_length",
        "cardinality",
        "bool_and",
        "bool_or",
        "date_part",
        "to_char",
    }
)
_WRITES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Copy,
    exp.Pragma,
    exp.Set,
    exp.Use,
    exp.Into,
    exp.TruncateTable,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.LoadData,
)
# Values that come from the server rather than the statement (`$1` left unbound, `@@x`).
_SERVER_VALUES = (exp.Parameter, exp.SessionParameter, exp.Placeholder)
# Name prefixes of the relations CTEs are renamed to; nothing in a warehouse is called this.
_CTE_PREFIX = "__northstar_cte_"


class UnknownTable(UserError):
    """A table the SQL endpoint does not serve."""

    code = "unknown_table"


class UnsupportedSql(UserError):
    """SQL the endpoint cannot answer (writes, file access, joins of metrics, ...)."""

    code = "unsupported_sql"


class InvalidMartQuery(InvalidQuery):
    """A client's SELECT over the marts that the warehouse could not run because of the SQL
    itself: `problem` says what is wrong (`unknown_column`, `unknown_function`, `syntax`,
    `grouping`, ...), the message speaks of the client's statement only (never of the SQL it
    was rebuilt into), and `position`, when known, is where in the client's statement."""


@dataclass(frozen=True)
class MartTable:
    """A mart as clients see it (`marts.<name>`) and where it lives in the warehouse.

    `restriction`, when set, is a condition over the mart's own columns that every read of it
    keeps (a caller's row-level policy): the mart is read as `(SELECT * ... WHERE restriction)`.
    """

    name: str
    schema: str
    table: str
    restriction: exp.Expr | None = None

    def source(self, alias: str, quoted: bool = True) -> exp.Expr:
        """The FROM item that reads this mart, under `alias`."""
        table = exp.Table(
            this=exp.to_identifier(self.table, quoted=True), db=exp.to_identifier(self.schema, quoted=True)
        )
        if self.restriction is None:
            return exp.alias_(table, exp.to_identifier(alias, quoted=quoted), table=True)
        restricted = exp.select(exp.Star()).from_(table).where(self.restriction.copy())
        return exp.alias_(restricted.subquery(), exp.to_identifier(alias, quoted=quoted), table=True)


def column_restriction(filters: Sequence[Filter], columns: set[str]) -> exp.Expr | None:
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


def users_restriction(users: RenderedQuery, column: str = "user_id") -> exp.Expr:
    """`column IN (users)`: a mart restricted to the users a rendered statement selects."""
    return exp.column(column, quoted=True).isin(
        query=sqlglot.parse_one(users.inline_sql(pretty=False), read=users.dialect)
    )


def _filter_condition(column: exp.Expr, flt: Filter) -> exp.Expr:
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


def select_sql(
    mart: MartTable,
    columns: Sequence[str],
    where: Sequence[Condition] = (),
    order_by: Sequence[str] = (),
    dialect: str = "duckdb",
    distinct: bool = False,
) -> tuple[str, dict[str, Any]]:
    """A SELECT over one mart with bound values.

    >>> select_sql(MartTable("dim_releases", "marts", "dim_releases"), ["platform", "app_version"],
    ...            [Condition("platform", "=", "ios")], ["app_version"])
    ('SELECT "platform", "app_version" FROM "marts"."dim_releases" AS "dim_releases" WHERE "platform" = $p0 ORDER BY "app_version"', {'p0': 'ios'})
    """
    params: dict[str, Any] = {}

    def bind(value: Any) -> exp.Expr:
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


def function_name(node: exp.Expr) -> str:
    """The lower-case SQL name of a function node (`read_csv`, `sum`, `measure`)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower() if isinstance(node, exp.Func) else node.key.lower()


def check_functions(statement: exp.Expr, also: Collection[str] = ()) -> None:
    """Refuse every function but ordinary scalar, aggregate and window functions (and the
    names in `also`), and every value the server would supply (`@@x`, an unbound `$1`)."""
    for node in statement.walk():
        if isinstance(node, _SERVER_VALUES):
            raise UnsupportedSql(
                f"{node.sql(dialect='postgres')} is not supported: a statement carries its own values."
            )
        if isinstance(node, exp.Func) and not _allowed_function(node, also):
            name = function_name(node)
            raise UnsupportedSql(
                f"function {name}() is not available here: queries may call ordinary scalar, "
                "aggregate and window functions, and read only the served tables.",
                function=name,
            )


def _allowed_function(node: exp.Func, also: Collection[str]) -> bool:
    if isinstance(node, exp.Anonymous):
        # A quoted or qualified name (`"f"(...)`, `pg_catalog.f(...)`) is never an allowed one.
        return isinstance(node.this, str) and (
            node.this.lower() in _ALLOWED_FUNCTION_NAMES or node.this.lower() in also
        )
    return type(node) in _ALLOWED_FUNCTION_CLASSES


def check_read_only(statement: exp.Expr) -> None:
    """Only one query: SELECT, set operations of SELECTs, and CTEs; nothing that writes."""
    if not isinstance(statement, exp.Query):
        raise UnsupportedSql(
            f"only SELECT queries are supported here (got {statement.key.upper()}); the endpoint is read-only."
        )
    for node in statement.walk():
        if isinstance(node, _WRITES):
            raise UnsupportedSql(f"{node.key.upper()} is not supported; the endpoint is read-only (SELECT only).")
        if isinstance(node, exp.Lock):
            raise UnsupportedSql("SELECT ... FOR UPDATE/SHARE is not supported; the endpoint is read-only.")


def resolve_tables(statement: exp.Expr) -> dict[int, exp.CTE | None]:
    """Every table reference of `statement`, by `id()` of its `exp.Table` node: the CTE it
    reads, or None when it names a stored relation.

    Scoping is PostgreSQL's, as sqlglot's scope analysis implements it: a CTE is visible in
    its own WITH's query and below, and in the later CTEs of the same WITH (a WITH RECURSIVE
    CTE also in its own recursive term); an inner WITH hides nothing outside itself. Names are
    compared after PostgreSQL's case folding (unquoted names are lower case). A reference
    sqlglot does not place in any scope is refused: what cannot be resolved is not read.

    Raises:
        UnsupportedSql: a table reference outside any scope, or a statement sqlglot cannot scope.
        InvalidQuery: the same alias twice in one FROM.
    """
    normalized = normalize_identifiers(statement.copy(), dialect="postgres")
    try:
        scopes = traverse_scope(normalized)
        resolved: dict[int, exp.CTE | None] = {}
        for scope in scopes:
            for node, source in scope.selected_sources.values():
                if not isinstance(node, exp.Table):
                    continue
                if isinstance(source, Scope):
                    cte = source.expression.find_ancestor(exp.CTE)
                    if cte is None or source.scope_type is not ScopeType.CTE:
                        raise UnsupportedSql(f"cannot tell what {node.sql(dialect='postgres')} reads.")
                    resolved[id(node)] = cte
                else:
                    resolved[id(node)] = None
    except OptimizeError as exc:
        if "Alias already used" in str(exc):
            raise InvalidQuery(f"table name specified more than once ({exc}).", reason="DuplicateAlias") from exc
        raise UnsupportedSql(f"this query's table references cannot be resolved: {exc}.") from exc
    # The copy has the statement's shape: its n-th table is the statement's n-th table.
    originals = {
        id(copy): original for copy, original in zip(normalized.find_all(exp.Table), statement.find_all(exp.Table))
    }
    ctes = {id(copy): original for copy, original in zip(normalized.find_all(exp.CTE), statement.find_all(exp.CTE))}
    out: dict[int, exp.CTE | None] = {}
    for table in normalized.find_all(exp.Table):
        if id(table) not in resolved:
            raise UnsupportedSql(
                f"{table.sql(dialect='postgres')} cannot be read here: only tables in FROM and JOIN clauses are."
            )
        cte = resolved[id(table)]
        out[id(originals[id(table)])] = None if cte is None else ctes[id(cte)]
    return out


def cte_references(statement: exp.Expr) -> set[int]:
    """`id()`s of the table nodes of `statement` that read one of its CTEs (scoped as
    `resolve_tables` does); empty when the statement cannot be scoped (it is refused later)."""
    try:
        return {key for key, cte in resolve_tables(statement).items() if cte is not None}
    except UserError:
        return set()


# Parts of a table reference besides its name and alias (TABLESAMPLE, time travel, ONLY,
# pivots, nested joins, ...); a mart is read whole, so none is accepted.
_TABLE_PARTS = frozenset({"this", "db", "catalog", "alias"})


def rewrite_mart_query(statement: exp.Expr, marts: dict[str, MartTable], dialect: str) -> str:
    """Check a client's SELECT over `marts.*` and rebuild it for the warehouse.

    The statement is rebuilt so that it reads nothing but allowed relations: every table
    reference is resolved (`resolve_tables`); a CTE reference is renamed to its CTE's private
    name (`__northstar_cte_<n>`, the CTE renamed alike), so the warehouse's own name resolution
    can only find that CTE or nothing; a `marts.<name>` reference is replaced by the mart's
    source (`MartTable.source`: the physical table, through its row policy); anything else is
    refused. Only allow-listed functions may be called (`check_functions`).

    Raises:
        UnsupportedSql: not a single read-only query, a function not on the allow-list, a table
            function or a reference that cannot be resolved.
        UnknownTable: it reads something other than a mart or one of its own CTEs.
    """
    check_read_only(statement)
    check_functions(statement)
    tree = normalize_identifiers(statement.copy(), dialect="postgres")
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise UnsupportedSql("only tables of the marts schema can be read (no table functions).")
        extra = sorted(k for k, v in table.args.items() if v and k not in _TABLE_PARTS)
        if extra:
            raise UnsupportedSql(
                f"{table.sql(dialect='postgres')}: {', '.join(extra)} is not supported on a mart "
                "reference; read the mart as a whole."
            )
    references = resolve_tables(tree)
    private = {id(cte): f"{_CTE_PREFIX}{n}" for n, cte in enumerate(tree.find_all(exp.CTE), start=1)}
    for table in list(tree.find_all(exp.Table)):
        cte = references[id(table)]
        if cte is not None:
            alias = table.args.get("alias")
            alias = alias.copy() if alias is not None else exp.TableAlias(this=table.this.copy())
            table.replace(exp.Table(this=exp.to_identifier(private[id(cte)], quoted=True), alias=alias))
            continue
        table.replace(_mart_source(table, marts))
    for cte in tree.find_all(exp.CTE):
        cte.args["alias"].set("this", exp.to_identifier(private[id(cte)], quoted=True))
    # `marts.fct_events.user_id` names the table by its schema; after the rewrite the table is
    # known by its alias only, so column references keep just the table part.
    for column in tree.find_all(exp.Column):
        if column.args.get("db") is not None:
            column.set("db", None)
            column.set("catalog", None)
    return tree.sql(dialect=dialect)


def _mart_source(table: exp.Table, marts: dict[str, MartTable]) -> exp.Expr:
    """The FROM item that reads the mart `table` names (its names case-folded already)."""
    mart = marts.get(table.name) if table.db == MARTS_SCHEMA and table.catalog in ("", DATABASE) else None
    if mart is None:
        hint = did_you_mean(table.name, marts)
        name = ".".join(part.sql(dialect="postgres") for part in table.parts)
        raise UnknownTable(
            f'relation "{name}" does not exist; mart tables are {_listing(marts)}.{hint}', table=table.name
        )
    alias = table.args.get("alias")
    if alias is not None and alias.columns:
        replacement = mart.source(alias.name, alias.this.quoted if alias.this else True)
        replacement.args["alias"].set("columns", [c.copy() for c in alias.columns])
        return replacement
    if alias is not None:
        return mart.source(alias.name, alias.this.quoted)
    return mart.source(table.name, table.this.quoted)


# What the warehouse says about SQL it cannot run, by DuckDB's exception class and (first
# match) words of its message; PostgreSQL warehouses report SQLSTATEs instead.
_DUCKDB_PROBLEMS: tuple[tuple[str, str, str], ...] = (
    ("BinderException", "group by", "grouping"),
    ("BinderException", "aggregate", "grouping"),
    ("BinderException", "ambiguous", "ambiguous_column"),
    ("BinderException", "referenced table", "unknown_table"),
    ("BinderException", "column", "unknown_column"),
    ("BinderException", "function", "unknown_function"),
    ("BinderException", "", "invalid_sql"),
    ("CatalogException", "function", "unknown_function"),
    ("CatalogException", "table", "unknown_table"),
    ("CatalogException", "", "invalid_sql"),
    ("ParserException", "", "syntax"),
    ("ConversionException", "", "invalid_value"),
    ("OutOfRangeException", "", "out_of_range"),
    ("InvalidInputException", "", "invalid_value"),
    ("OutOfMemoryException", "", "out_of_memory"),
)
_POSTGRES_PROBLEMS = {
    "42703": "unknown_column",
    "42883": "unknown_function",
    "42601": "syntax",
    "42803": "grouping",
    "42702": "ambiguous_column",
    "42P01": "unknown_table",
    "42804": "invalid_sql",
    "42P10": "invalid_sql",
    "22P02": "invalid_value",
    "22007": "invalid_value",
    "22008": "out_of_range",
    "22003": "out_of_range",
    "22012": "division_by_zero",
    "53200": "out_of_memory",
}


def mart_query_error(exc: MetricsError, statement: exp.Expr, marts: dict[str, MartTable]) -> MetricsError:
    """What to tell the client when the warehouse refused the SQL rebuilt from `statement`:
    an `InvalidMartQuery` when the fault is in the client's SQL (its message rid of the
    private CTE names and the marts' physical names, with the position in the client's
    statement of the name it is about, when found), else an internal error that names
    neither the rebuilt SQL nor the row policy."""
    reason, detail = exc.details.get("reason", ""), str(exc.internal or "")
    sqlstate = str(exc.details.get("sqlstate") or "")
    problem = (
        _POSTGRES_PROBLEMS.get(sqlstate)
        if sqlstate
        else next((p for cls, words, p in _DUCKDB_PROBLEMS if cls == reason and words in detail.lower()), None)
    )
    if problem is None:
        return InternalError(
            f"the warehouse could not run this query ({reason or sqlstate or 'error'}); the query was not answered.",
            reason=reason or None,
        )
    message = re.sub(r"^[A-Za-z ]*Error: ", "", detail).strip()
    private = {f"{_CTE_PREFIX}{n}": cte.alias for n, cte in enumerate(statement.find_all(exp.CTE), start=1)}
    message = re.sub(rf"{_CTE_PREFIX}\d+", lambda m: private.get(m.group(0), "a CTE"), message)
    for mart in marts.values():
        message = message.replace(f'"{mart.schema}"."{mart.table}"', f"marts.{mart.name}")
        message = message.replace(f"{mart.schema}.{mart.table}", f"marts.{mart.name}")
    named = re.search(r'"([^"]+)"', message)
    position = _position_of(statement, named.group(1)) if named else None
    return InvalidMartQuery(message, problem=problem, position=position)


def _position_of(statement: exp.Expr, name: str) -> int | None:
    """The 1-based character position in the client's statement of the first identifier or
    function called `name` (case-insensitive), when the parser recorded one."""
    wanted = name.split(".")[-1].lower()
    for node in statement.walk():
        if isinstance(node, exp.Identifier) and node.name.lower() == wanted and "start" in node.meta:
            return int(node.meta["start"]) + 1
        if isinstance(node, exp.Func) and function_name(node) == wanted:
            meta = (
                node.meta
                if "start" in node.meta
                else getattr(node.this, "meta", {})
                if isinstance(node.this, exp.Expression)
                else {}
            )
            if "start" in meta:
                return int(meta["start"]) + 1
    return None


def _listing(marts: dict[str, MartTable]) -> str:
    return ", ".join(f"marts.{name}" for name in sorted(marts)) or "(none)"
