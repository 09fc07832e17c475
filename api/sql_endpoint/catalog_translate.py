"""PostgreSQL catalog queries made to run on the catalog database: `check_catalog_query` refuses
one that would read anything but the catalog; `to_duckdb` rewrites its parse tree (schema
qualifications, PostgreSQL's operators, casts to reg* and text types, format(), the session's
settings and user) and renders it as DuckDB SQL; `duckdb_type_oid` and `with_text_types` give
the result columns the PostgreSQL types a client expects.

Pure functions of the parse tree (and the session), apart from the database that runs them.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from api.sql_endpoint import protocol
from api.sql_endpoint.catalog_relations import (
    INFORMATION_SCHEMA_OVERRIDES,
    PG_TEXT_TYPES,
    SYSTEM_COLUMNS,
    TEXT_LIKE_OIDS,
    WITH_SYSTEM_COLUMNS,
)
from api.sql_endpoint.session import DATABASE, DEFAULT_SCHEMA, Session
from api.sql_endpoint.statements import OID_TYPES, SUPPORTED, SqlError

# -- rewriting ----------------------------------------------------------------------------


# Casts of a name to these types look it up (macros of the overrides database).
_CAST_MACROS = {
    "regclass": "regclass_oid",
    "regtype": "regtype_oid",
    "regnamespace": "regnamespace_oid",
    "regproc": "regproc_oid",
    "regprocedure": "regproc_oid",
}
# PostgreSQL's text-like types (and those served as text), all VARCHAR in DuckDB.
_TEXT_TYPES = {
    "name",
    "char",
    "bpchar",
    "text",
    "varchar",
    "pg_node_tree",
    "anyarray",
    "aclitem",
    "int2vector",
    "oidvector",
    "_text",
    "_name",
}


def to_duckdb(statement: exp.Expression, session: Session) -> str:
    """Rewrites a PostgreSQL catalog query for the catalog database and renders it for DuckDB."""
    tree = statement.copy()

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.db.lower() == "pg_catalog":
            node.set("db", None)
            node.set("catalog", None)
        elif (
            isinstance(node, exp.Table)
            and node.db.lower() == "information_schema"
            and node.name.lower() in INFORMATION_SCHEMA_OVERRIDES
        ):
            node.set("this", exp.to_identifier(f"information_schema_{node.name.lower()}"))
            node.set("db", exp.to_identifier("main"))
            node.set("catalog", exp.to_identifier("overrides"))
        elif (
            isinstance(node, exp.Column)
            and node.args.get("db") is not None
            and node.args["db"].name.lower() == "pg_catalog"
        ):
            node.set("db", None)
            node.set("catalog", None)
        elif isinstance(node, exp.Collate):
            return node.this
        elif isinstance(node, exp.Select):
            # PostgreSQL leaves system columns out of `*` and `c.*`; the views keep them for
            # queries that name them.
            read = {
                t.this.alias_or_name.lower(): t.this.name.lower()
                for t in [node.args.get("from_"), *(node.args.get("joins") or [])]
                if t is not None and isinstance(t.this, exp.Table) and not t.this.db
            }
            for item in node.expressions:
                star, table = (
                    (item, None)
                    if type(item) is exp.Star
                    else (
                        (item.this, item.table.lower())
                        if isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
                        else (None, None)
                    )
                )
                if star is None or star.args.get("except_"):
                    continue
                applies = (
                    read.get(table) in WITH_SYSTEM_COLUMNS if table else bool(set(read.values()) & WITH_SYSTEM_COLUMNS)
                )
                if applies:
                    star.set("except_", [exp.column(name) for name in SYSTEM_COLUMNS])
        elif isinstance(node, exp.Operator):
            op = node.args.get("operator", "")
            op = (op.name if isinstance(op, exp.Expression) else str(op)).replace("pg_catalog.", "")
            return _operator(op, node.this, node.expression)
        elif isinstance(node, exp.Format):
            return _format(node)
        elif isinstance(node, exp.Cast):
            return _cast(node)
        elif (
            isinstance(node, exp.DataType)
            and node.this == exp.DType.USERDEFINED
            and isinstance(node.args.get("kind"), exp.Dot)
        ):
            return _builtin_type(_type_name(node))
        elif isinstance(node, (exp.CurrentUser, exp.SessionUser)) or (
            isinstance(node, exp.Column)
            and node.name.lower() in ("current_user", "session_user", "user")
            and not node.table
        ):
            return exp.Literal.string(session.user)
        elif isinstance(node, exp.JSONObject) or (
            isinstance(node, exp.Anonymous) and node.name.lower() in ("json_build_object", "jsonb_build_object")
        ):
            # Only describes identity columns and collations, of which there are none.
            return exp.cast(exp.Null(), exp.DataType.build("JSON"))
        elif isinstance(node, exp.Anonymous):
            name = node.name.lower()
            setting = _setting_name(node.expressions[0]) if node.expressions else None
            if name == "current_setting" and setting is not None:
                value = session.get(setting)
                return exp.Literal.string(value) if value is not None else exp.Null()
            if name == "set_config" and len(node.expressions) >= 2:
                return node.expressions[1]
            if name == "pg_table_is_visible" and len(node.expressions) == 1:
                # Visible without a schema: what the search path (semantic) holds. Rewritten
                # here, not a macro, so pg_class is read in the query's own database.
                visible = sqlglot.parse_one(
                    f"visible_oid IN (SELECT c.oid FROM pg_class AS c JOIN pg_namespace AS n "
                    f"ON n.oid = c.relnamespace WHERE n.nspname IN ('{DEFAULT_SCHEMA}', 'pg_catalog'))",
                    read="duckdb",
                )
                visible.this.replace(node.expressions[0].copy())
                return visible
            if name == "pg_backend_pid":
                return exp.Literal.number(session.process_id)
        return node

    names = _output_names(tree) if isinstance(tree, exp.Select) else None
    # Inner queries' calls are named as PostgreSQL names them (`count`, `row_number`), which
    # outer references use (pgcli: `WITH Words AS (SELECT ..., COUNT(1) ...) ... ORDER BY Count`).
    for select in list(tree.find_all(exp.Select)):
        if select is tree:
            continue
        for item in select.expressions:
            call = item.this if isinstance(item, exp.Window) else item
            if isinstance(call, exp.Func) and not isinstance(item, exp.Alias) and not isinstance(call, exp.Column):
                item.replace(exp.alias_(item.copy(), call.sql("postgres").split("(")[0].lower().split(".")[-1]))
    for cast in list(tree.find_all(exp.Cast)):
        inner = cast.this
        if (
            isinstance(inner, exp.Cast)
            and _type_name(cast.to) in ("text", "varchar", "name")
            and _type_name(inner.to) == "regtype"
            and not _is_text(inner.this)
        ):
            replacement = exp.Anonymous(this="format_type", expressions=[inner.this.copy(), exp.Null()])
            if cast is tree:
                tree = replacement
            else:
                cast.replace(replacement)
    # Innermost first: a qualified call inside another (`pg_size_pretty(pg_catalog.pg_table_size(c.oid))`)
    # is unqualified too, which a top-down transform skips once it replaced the outer one.
    for node in reversed(list(tree.walk(bfs=False))):
        replacement = _unqualify(node)
        if replacement is not node:
            if node is tree:
                tree = replacement
            else:
                node.replace(replacement)
    # Children first, so nested casts and calls are all rewritten.
    for node in reversed(list(tree.walk(bfs=False))):
        replacement = rewrite(node)
        if replacement is not node:
            if node is tree:
                tree = replacement
            else:
                node.replace(replacement)
    if names and isinstance(tree, exp.Select) and len(tree.expressions) == len(names):
        tree.set(
            "expressions",
            [
                item if name is None else exp.alias_(item, name, quoted=True)
                for item, name in zip(tree.expressions, names)
            ],
        )
    return tree.sql("duckdb")


def _unqualify(node: exp.Expression) -> exp.Expression:
    """`pg_catalog.f(...)` (or `information_schema.f(...)`) -> `f(...)`, so the overrides are found first."""
    if (
        isinstance(node, exp.Dot)
        and isinstance(node.this, exp.Identifier)
        and node.this.name.lower() in ("pg_catalog", "information_schema")
        and isinstance(node.expression, exp.Func)
    ):
        return node.expression
    return node


def _output_names(select: exp.Select) -> list[str | None]:
    """Output names as PostgreSQL gives them: unquoted names lower-cased, a function's name
    for an unaliased call, else ?column? (None: the item names itself)."""
    names: list[str | None] = []
    for item in select.expressions:
        if isinstance(item, (exp.Alias, exp.Column)):
            # PostgreSQL folds an unquoted name to lower case (`result.TABLE_CAT` is table_cat).
            identifier = item.args.get("alias") if isinstance(item, exp.Alias) else item.this
            if isinstance(identifier, exp.Identifier) and not identifier.quoted:
                names.append(identifier.name.lower())
                continue
            names.append(None)
            continue
        if isinstance(item, exp.Star):
            names.append(None)
            continue
        inner = item.this if isinstance(item, exp.Cast) else item
        if isinstance(inner, exp.Column):
            names.append(inner.name)
        elif isinstance(inner, exp.Dot) and isinstance(inner.expression, exp.Func):
            names.append(inner.expression.sql("postgres").split("(")[0].lower())
        elif isinstance(inner, exp.Func):
            names.append(inner.sql("postgres").split("(")[0].lower())
        else:
            names.append("?column?")
    return names


def _operator(op: str, left: exp.Expression, right: exp.Expression) -> exp.Expression:
    if isinstance(right, exp.Collate):
        right = right.this
    table = {
        "~": lambda: exp.RegexpLike(this=left, expression=right),
        "!~": lambda: exp.not_(exp.RegexpLike(this=left, expression=right)),
        "~*": lambda: exp.RegexpILike(this=left, expression=right),
        "!~*": lambda: exp.not_(exp.RegexpILike(this=left, expression=right)),
        "=": lambda: exp.EQ(this=left, expression=right),
        "<>": lambda: exp.NEQ(this=left, expression=right),
        "~~": lambda: exp.Like(this=left, expression=right),
        "!~~": lambda: exp.not_(exp.Like(this=left, expression=right)),
    }
    if op not in table:
        raise SqlError("42883", f"operator {op} is not supported in catalog queries")
    return table[op]()


def _type_name(to: exp.DataType) -> str:
    kind = to.args.get("kind")
    if isinstance(to, exp.DataType) and to.this == exp.DType.USERDEFINED and kind is not None:
        name = kind.name if isinstance(kind, (exp.Dot, exp.Identifier)) else str(kind)
        if isinstance(kind, exp.Dot):
            name = kind.expression.name
        return name.lower()
    if isinstance(to, exp.ObjectIdentifier) or not isinstance(to, exp.DataType):
        return to.name.lower()
    return to.this.value.lower() if hasattr(to.this, "value") else str(to.this).lower()


def _builtin_type(name: str) -> exp.DataType:
    """A `pg_catalog.<type>` name as a DuckDB type."""
    if name in OID_TYPES:
        return exp.DataType.build("BIGINT")
    if name in _TEXT_TYPES:
        return exp.DataType.build("VARCHAR")
    try:
        return exp.DataType.build(name, dialect="postgres")
    except Exception as exc:
        raise SqlError("42704", f'type "{name}" does not exist') from exc


def _is_text(node: exp.Expression) -> bool:
    """Whether an expression is plainly a string (a name to look up when cast to regclass),
    rather than an OID."""
    if isinstance(node, exp.Paren):
        return _is_text(node.this)
    if isinstance(node, exp.Literal):
        return node.is_string
    if isinstance(node, exp.Cast):
        return node.to.is_type(*exp.DataType.TEXT_TYPES)
    return isinstance(node, (exp.DPipe, exp.Concat, exp.Format, exp.Replace, exp.Lower, exp.Upper, exp.Trim))


def _format(node: exp.Format) -> exp.Expression:
    """PostgreSQL's format(): %s (the value, NULL as empty), %I (quote_ident), %L
    (quote_nullable) and %%, as a concatenation (DuckDB's format has another syntax)."""
    template = node.this
    args = list(node.expressions)
    if not (isinstance(template, exp.Literal) and template.is_string):
        raise SqlError("0A000", "format() needs a literal format string in catalog queries")
    parts: list[exp.Expression] = []
    text, index, position = template.name, 0, 0
    for match in re.finditer(r"%(?:(\d+)\$)?([sIL%])", text):
        if match.start() > position:
            parts.append(exp.Literal.string(text[position : match.start()]))
        position = match.end()
        if match.group(2) == "%":
            parts.append(exp.Literal.string("%"))
            continue
        index = int(match.group(1)) - 1 if match.group(1) else index
        if index >= len(args):
            raise SqlError("22023", "too few arguments for format()")
        value, index = args[index], index + 1
        if match.group(2) == "I":
            parts.append(exp.Anonymous(this="quote_ident", expressions=[exp.cast(value.copy(), "VARCHAR")]))
        elif match.group(2) == "L":
            parts.append(exp.Anonymous(this="quote_nullable", expressions=[value.copy()]))
        else:
            parts.append(exp.func("coalesce", exp.cast(value.copy(), "VARCHAR"), exp.Literal.string("")))
    if position < len(text):
        parts.append(exp.Literal.string(text[position:]))
    if not parts:
        return exp.Literal.string("")
    result = parts[0]
    for part in parts[1:]:
        result = exp.DPipe(this=result, expression=part, safe=True)
    return exp.Paren(this=result)


def _cast(node: exp.Cast) -> exp.Expression:
    name = _type_name(node.to)
    value = node.this
    if (
        isinstance(value, exp.Literal)
        and value.is_string
        and value.name.startswith("{")
        and value.name.endswith("}")
        and isinstance(node.to, exp.DataType)
        and node.to.is_type(exp.DType.ARRAY)
    ):
        # '{1,2}'::int2[]: PostgreSQL's array literal as a list of the element type.
        items = [i.strip().strip('"') for i in value.name[1:-1].split(",") if i.strip()]
        element = node.to.expressions[0] if node.to.expressions else exp.DataType.build("VARCHAR")
        return exp.Array(expressions=[exp.cast(exp.Literal.string(i), element.copy()) for i in items])
    if name in _CAST_MACROS and _is_text(value):
        return exp.Anonymous(this=_CAST_MACROS[name], expressions=[value])
    if name == "_regtype":  # type oids as their names, as a regtype[] prints (in order: one thread)
        return sqlglot.parse_one(
            "(SELECT list(format_type(type_oid, NULL)) FROM (SELECT unnest(x) AS type_oid))", read="duckdb"
        ).transform(lambda n: value.copy() if isinstance(n, exp.Column) and n.name == "x" else n)
    if name in OID_TYPES:
        return exp.cast(value, "BIGINT")
    if name in _TEXT_TYPES:
        return exp.cast(value, "VARCHAR")
    return node


# -- what a catalog query may read --------------------------------------------------------


# Table functions a catalog query may read from (BI tools expand arrays and series).
_CATALOG_TABLE_FUNCTIONS = frozenset(
    {"generate_series", "exploding_generate_series", "unnest", "generate_subscripts", "_pg_expandarray"}
)
# Functions that would describe or reach the DuckDB behind the catalog rather than the catalog
# (its settings, databases, files, extensions, other queries); the database cannot reach files
# anyway, but neither its internals nor other statements are the client's to run.
_DUCKDB_FUNCTION_PREFIXES = (
    "duckdb_",
    "pragma_",
    "read_",
    "parquet_",
    "sniff_",
    "iceberg_",
    "delta_",
    "sqlite_",
    "postgres_",
    "mysql_",
    "json_execute",
    "http",
    "arrow_",
)
_DUCKDB_FUNCTION_NAMES = frozenset(
    {
        "query",
        "query_table",
        "glob",
        "getenv",
        "getvariable",
        "which_secret",
        "summary",
        "load",
        "install",
        "checkpoint",
        "force_checkpoint",
        "current_setting",
        "set_config",
        "csv_scan",
        "parquet_scan",
        "json_scan",
        "test_all_types",
        "test_vector_types",
        "repeat_row",
        "range",
        "read",
    }
)


# DuckDB's own databases and schemas, which no client statement names.
_DUCKDB_SCHEMAS = {"system", "temp", "main", "overrides"}


def relations_by_schema(rows: list[tuple[str, str, str]]) -> dict[str, frozenset[str]]:
    """The relation names a catalog query may name, by schema as the client writes it ("" for
    an unqualified name)."""
    by_schema: dict[str, set[str]] = {}
    for database, schema, name in rows:
        if name.startswith(("duckdb_", "sqlite_", "pragma_")):
            continue
        if database == "system" and schema in ("pg_catalog", "information_schema"):
            by_schema.setdefault(schema, set()).add(name)
        elif database == "overrides" and name.startswith("information_schema_"):
            by_schema.setdefault("information_schema", set()).add(name[len("information_schema_") :])
        elif database == "overrides":
            by_schema.setdefault("pg_catalog", set()).add(name)
        elif database == DATABASE:
            by_schema.setdefault(schema, set()).add(name)
    unqualified = by_schema.get("pg_catalog", set()) | by_schema.get(DEFAULT_SCHEMA, set())
    return {"": frozenset(unqualified), **{k: frozenset(v) for k, v in by_schema.items()}}


def check_catalog_query(statement: exp.Expression, relations: dict[str, frozenset[str]]) -> None:
    """Refuse (0A000) a catalog query that reads anything but the catalog: table functions
    other than array and series expansions, relations outside pg_catalog, information_schema
    and the served tables, and functions that describe or reach DuckDB itself."""
    from metrics.sql.marts import cte_references, function_name

    ctes = cte_references(statement)
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            name = function_name(table.this) if isinstance(table.this, exp.Func) else table.this.key
            if name.lower() not in _CATALOG_TABLE_FUNCTIONS:
                raise SqlError(
                    "0A000",
                    f"table function {name}() is not supported here; catalog queries read "
                    "pg_catalog and information_schema.",
                    hint=SUPPORTED,
                )
            continue
        if id(table) in ctes:
            continue
        schema, name = table.db.lower(), table.name.lower()
        catalog = table.catalog.lower()
        if (catalog and catalog != DATABASE) or name not in relations.get(schema, frozenset()):
            internal = name.startswith(("duckdb_", "sqlite_", "pragma_")) or {schema, catalog} & _DUCKDB_SCHEMAS
            raise SqlError(
                "0A000" if internal else "42P01",
                f'relation "{".".join(p.name for p in table.parts)}" is not available: catalog queries '
                "read pg_catalog, information_schema and the served tables.",
                hint=SUPPORTED,
            )
    for node in statement.walk():
        if isinstance(node, (exp.ReadCSV, exp.ReadParquet)) or (
            isinstance(node, exp.Func)
            and not isinstance(node, (exp.Unnest, exp.ExplodingGenerateSeries, exp.GenerateSeries))
            and _duckdb_function(function_name(node), node)
        ):
            raise SqlError(
                "0A000",
                f"function {function_name(node)}() is not supported here; catalog queries "
                "read pg_catalog and information_schema.",
                hint=SUPPORTED,
            )


def _setting_name(node: exp.Expression) -> str | None:
    """The setting a current_setting() call names: a string, or a cast one (a bound
    parameter, as SQLAlchemy sends `current_setting($1::VARCHAR)`)."""
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    return node.name if isinstance(node, exp.Literal) and node.is_string else None


def _duckdb_function(name: str, node: exp.Func) -> bool:
    if name == "current_setting" and node.expressions and _setting_name(node.expressions[0]) is not None:
        return False  # answered from the session (to_duckdb)
    if name == "set_config":
        return False  # answered with its value (to_duckdb)
    return name in _DUCKDB_FUNCTION_NAMES or name.startswith(_DUCKDB_FUNCTION_PREFIXES)


# -- result types -------------------------------------------------------------------------


def duckdb_type_oid(type_name: str) -> int:
    """pg_type OID for a DuckDB result type (anything unusual is served as text); a list is
    the array of its element type (reloptions is text[], indkey int2[]).

    >>> duckdb_type_oid("BIGINT"), duckdb_type_oid("INTEGER"), duckdb_type_oid("DECIMAL(5,2)"), duckdb_type_oid("INTEGER[]")
    (20, 23, 701, 1007)
    >>> duckdb_type_oid("VARCHAR[]"), duckdb_type_oid("STRUCT(x INTEGER)[]"), duckdb_type_oid("INTEGER[][]")
    (1009, 25, 25)
    """
    name = type_name.upper()
    if name.endswith("[]") and not name.endswith("][]") and "(" not in name:
        return protocol.ARRAY_TYPES.get(duckdb_type_oid(name[:-2]), protocol.TEXT)
    if name.endswith("]"):
        return protocol.TEXT
    if name in ("BIGINT", "HUGEINT", "UBIGINT", "UHUGEINT"):
        return protocol.INT8
    if name == "UINTEGER":  # the catalog's oid columns (an unsigned 32-bit number, as oid is)
        return protocol.OID
    if name == "INTEGER":
        return protocol.INT4
    if name in ("SMALLINT", "TINYINT", "USMALLINT", "UTINYINT"):
        return protocol.INT2
    if name in ("FLOAT", "REAL"):
        return protocol.FLOAT4
    if name == "DOUBLE" or name.startswith("DECIMAL"):
        return protocol.FLOAT8
    if name == "BOOLEAN":
        return protocol.BOOL
    if name == "JSON":
        return 114  # json: its binary form is its text
    if name == "DATE":
        return protocol.DATE
    if name.startswith("TIMESTAMP"):
        return protocol.TIMESTAMP
    return protocol.TEXT


def with_text_types(statement: exp.Expression, columns: tuple[protocol.Column, ...]) -> tuple[protocol.Column, ...]:
    """Text columns that read a catalog column as it is (`SELECT *`, `c.relname`, through
    subqueries, CTEs and UNION branches) get the text-like type PostgreSQL gives it (name,
    "char", varchar, pg_node_tree); so do casts to varchar."""
    select = _leftmost_select(statement)
    if select is None:
        return columns
    ctes = {cte.alias_or_name.lower(): cte.this for cte in statement.find_all(exp.CTE)}
    read: dict[str, int] = {}  # output name -> PostgreSQL's type of what it reads
    star = False
    for projection in select.expressions:
        node = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star)):
            star = True
        else:
            found = _text_type_of(select, projection, ctes)
            if found:
                read[projection.alias_or_name.lower()] = found  # unquoted names fold to lower case
    result = []
    for column in columns:
        type_oid = column.type_oid
        if type_oid == protocol.TEXT:
            type_oid = (
                read.get(column.name.lower())
                or (star and _text_type_read(select, column.name.lower(), None, ctes))
                or type_oid
            )
        result.append(protocol.Column(column.name, type_oid))
    return tuple(result)


def _leftmost_select(node: exp.Expression | None) -> exp.Select | None:
    while isinstance(node, (exp.Union, exp.Subquery, exp.Paren)):
        node = node.this
    return node if isinstance(node, exp.Select) else None


def _text_type_of(select: exp.Select, projection: exp.Expression, ctes: dict, depth: int = 0) -> int | None:
    node = projection.this if isinstance(projection, exp.Alias) else projection
    if isinstance(node, exp.Cast) and node.to.this == exp.DType.VARCHAR:
        return TEXT_LIKE_OIDS["varchar"]
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        return _text_type_read(select, node.name.lower(), node.table.lower() or None, ctes, depth)
    return None


def _text_type_read(select: exp.Select, name: str, table: str | None, ctes: dict, depth: int = 0) -> int | None:
    """PostgreSQL's text-like type of column `name` (of `table`, or of any source) that
    `select` reads from its FROM and JOINs: a catalog relation's, or what a subquery or CTE
    outputs under that name."""
    if depth > 8:
        return None
    sources = {}
    for item in [select.args.get("from_"), *(select.args.get("joins") or [])]:
        if item is not None:
            sources[item.this.alias_or_name.lower()] = item.this
    for alias, source in sources.items():
        if table and alias != table:
            continue
        inner = ctes.get(source.name.lower()) if isinstance(source, exp.Table) else source
        if isinstance(source, exp.Table) and inner is None:
            if name in PG_TEXT_TYPES:
                return PG_TEXT_TYPES[name]
            continue
        inner_select = _leftmost_select(inner)
        if inner_select is None:
            continue
        for projection in inner_select.expressions:
            if projection.alias_or_name.lower() == name:
                return _text_type_of(inner_select, projection, ctes, depth + 1)
    return None
