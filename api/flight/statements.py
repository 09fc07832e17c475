"""The dbt Semantic Layer's Flight SQL (JDBC) statements: one `{{ semantic_layer.<call>(...) }}`,
alone or wrapped in outer SQL (`select name from {{ semantic_layer.metrics() }} where ...`).

The call is read with Python's `ast` as a literal expression: keyword arguments whose values are
strings, numbers, booleans, lists, and the `Dimension('x').grain('month')`,
`TimeDimension('metric_time', 'MONTH')`, `Entity('e')`, `Metric('m').descending(True)` objects.
Nothing is evaluated or rendered as a template; anything else is refused, naming it. Outer SQL
runs over the call's Arrow answer in an in-memory DuckDB that can read nothing else.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from api.dbt_sl.request import GroupBy, Order, SemanticLayerRequest
from metrics.errors import InvalidQuery

FUNCTIONS = (
    "query",
    "metrics",
    "dimensions",
    "entities",
    "measures",
    "dimension_values",
    "queryable_granularities",
    "metrics_for_dimensions",
    "saved_queries",
)
ARGUMENTS = {
    "query": {"metrics", "group_by", "where", "order_by", "limit", "saved_query", "read_cache", "explain"},
    "metrics": set(),
    "saved_queries": set(),
    "dimensions": {"metrics"},
    "entities": {"metrics"},
    "measures": {"metrics"},
    "queryable_granularities": {"metrics"},
    "dimension_values": {"metrics", "group_by"},
    "metrics_for_dimensions": {"group_by"},
}
RESULT_TABLE = "semantic_layer_result"
_OPEN = re.compile(r"\{\{\s*semantic_layer\s*\.")


class StatementError(InvalidQuery):
    code = "invalid_statement"


@dataclass(frozen=True)
class Item:
    """`Dimension('x')`, `TimeDimension('x', 'MONTH')`, `Entity('e')` or `Metric('m')`, with
    the grain and direction set by `.grain(...)` and `.descending(...)`."""

    kind: str
    name: str
    grain: str | None = None
    descending: bool = False


@dataclass(frozen=True)
class Statement:
    function: str
    arguments: dict[str, Any] = field(default_factory=dict)
    outer_sql: str | None = None  # with the call replaced by RESULT_TABLE

    @property
    def explain(self) -> bool:
        return bool(self.arguments.get("explain"))

    def request(self) -> SemanticLayerRequest:
        """The arguments of `semantic_layer.query(...)` as a semantic-layer request."""
        args = self.arguments
        metrics = tuple(_strings(args.get("metrics"), "metrics"))
        group_by = tuple(_group_by(g) for g in _list(args.get("group_by"), "group_by"))
        where = tuple(_strings(args.get("where"), "where"))
        order_by = tuple(_order(o, metrics) for o in _list(args.get("order_by"), "order_by"))
        limit = args.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise StatementError(f"limit must be a whole number, got {limit!r}.", field="limit")
        saved_query = args.get("saved_query")
        if saved_query is not None and not isinstance(saved_query, str):
            raise StatementError(f"saved_query must be a string, got {saved_query!r}.", field="saved_query")
        read_cache = args.get("read_cache", True)
        return SemanticLayerRequest(
            metrics=metrics,
            group_by=group_by,
            where=where,
            order_by=order_by,
            limit=limit,
            saved_query=saved_query,
            read_cache=bool(read_cache),
        )


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Item)):
        return [value]
    if not isinstance(value, list):
        raise StatementError(f"{name} must be a list, got {value!r}.", field=name)
    return value


def _strings(value: Any, name: str) -> list[str]:
    items = _list(value, name)
    for item in items:
        if not isinstance(item, str):
            raise StatementError(f"{name} takes strings, got {item!r}.", field=name)
    return items


def _group_by(value: Any) -> GroupBy:
    if isinstance(value, str):
        return GroupBy(value)
    if isinstance(value, Item) and value.kind in ("Dimension", "TimeDimension", "Entity"):
        return GroupBy(value.name, value.grain)
    raise StatementError(
        f"group_by takes names, Dimension(...), TimeDimension(...) or Entity(...), got {value!r}.", field="group_by"
    )


def _order(value: Any, metrics: tuple[str, ...]) -> Order:
    if isinstance(value, str):
        descending = value.startswith("-")
        name = value.lstrip("-+").strip()
        return Order(name, metric=name in metrics, descending=descending)
    if isinstance(value, Item):
        return Order(value.name, metric=value.kind == "Metric", grain=value.grain, descending=value.descending)
    raise StatementError(f"order_by takes names, Metric(...) or Dimension(...), got {value!r}.", field="order_by")


def parse(text: str) -> Statement:
    """A statement's one semantic-layer call and the outer SQL around it."""
    match = _OPEN.search(text)
    if match is None:
        raise StatementError(
            "northstar's Flight SQL endpoint answers dbt Semantic Layer statements: "
            "{{ semantic_layer.query(metrics=['...'], group_by=['metric_time__day']) }}, "
            "{{ semantic_layer.metrics() }} and the like, alone or inside a SELECT."
        )
    start = match.start()
    body_start = text.index("semantic_layer", start)
    call = None
    end = start
    # The call ends at the first `}}` after which the text parses: a `}}` inside a where string
    # (`"{{ Dimension('x') }} = 1"`) leaves an unterminated string, so parsing goes on past it.
    for close in re.finditer(r"\}\}", text[body_start:]):
        candidate = text[body_start : body_start + close.start()].strip()
        try:
            call = ast.parse(candidate, mode="eval").body
        except SyntaxError:
            continue
        end = body_start + close.end()
        break
    if call is None:
        raise StatementError(
            "cannot read the {{ semantic_layer... }} call: it is not closed by '}}' or is not "
            "a valid call (strings quoted, lists in [...])."
        )
    if _OPEN.search(text, end):
        raise StatementError("a statement may contain one {{ semantic_layer... }} call.")
    function, arguments = _call(call)
    outer = (text[:start] + RESULT_TABLE + text[end:]).strip()
    outer_sql = None if outer.rstrip(";").strip() == RESULT_TABLE else outer
    return Statement(function, arguments, outer_sql)


def _call(node: ast.expr) -> tuple[str, dict[str, Any]]:
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "semantic_layer"
    ):
        raise StatementError("the {{ ... }} block must be one call: semantic_layer.<function>(...).")
    function = node.func.attr
    if function not in FUNCTIONS:
        raise StatementError(
            f"unknown function semantic_layer.{function}; northstar has " + ", ".join(FUNCTIONS) + ".", field=function
        )
    if node.args:
        raise StatementError(f"semantic_layer.{function} takes keyword arguments only (name=value).")
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None or keyword.arg not in ARGUMENTS[function]:
            allowed = ", ".join(sorted(ARGUMENTS[function])) or "no arguments"
            raise StatementError(
                f"semantic_layer.{function} has no argument {keyword.arg!r}; it takes {allowed}.", field=keyword.arg
            )
        arguments[keyword.arg] = _value(keyword.value)
    return function, arguments


_ITEM_KINDS = ("Dimension", "TimeDimension", "Entity", "Metric")


def _value(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(v) for v in node.elts]
    if isinstance(node, ast.Call):
        return _item(node)
    raise StatementError(
        f"cannot use {ast.unparse(node)!r} as a value: use strings, numbers, True/False, "
        "lists, or Dimension(...)/TimeDimension(...)/Entity(...)/Metric(...)."
    )


def _item(node: ast.Call) -> Item:
    if isinstance(node.func, ast.Name):
        kind = node.func.id
        if kind not in _ITEM_KINDS:
            raise StatementError(f"unknown object {kind}(...); use {', '.join(_ITEM_KINDS)}.")
        args = [_value(a) for a in node.args]
        if not args or not all(isinstance(a, str) for a in args) or node.keywords or len(args) > 2:
            raise StatementError(
                f"{ast.unparse(node)}: write {kind}('name')"
                + (", TimeDimension('name', 'GRAIN')" if kind == "TimeDimension" else "")
                + "."
            )
        if len(args) == 2 and kind != "TimeDimension":
            raise StatementError(f"{ast.unparse(node)}: {kind} takes one name; set a grain with .grain('month').")
        return Item(kind, args[0], args[1] if len(args) == 2 else None)
    if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Call):
        base = _item(node.func.value)
        method = node.func.attr
        args = [_value(a) for a in node.args]
        if method == "grain" and len(args) == 1 and isinstance(args[0], str) and not node.keywords:
            return Item(base.kind, base.name, args[0], base.descending)
        if method == "descending" and len(args) <= 1 and not node.keywords:
            return Item(base.kind, base.name, base.grain, bool(args[0]) if args else True)
        raise StatementError(f"{ast.unparse(node)}: objects have .grain('month') and .descending(True).")
    raise StatementError(f"cannot use {ast.unparse(node)!r} in a statement.")


def run_outer(outer_sql: str, table: pa.Table) -> pa.Table:
    """Outer SQL over the call's answer (named `semantic_layer_result` in it), in a DuckDB that
    holds only that table and may not read files or the network."""
    try:
        trees = sqlglot.parse(outer_sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise StatementError(
            f"cannot parse the SQL around the semantic_layer call: "
            f"{exc.errors[0]['description'] if exc.errors else exc}."
        ) from None
    if len([t for t in trees if t is not None]) != 1 or not isinstance(trees[0], exp.Query):
        raise StatementError("the SQL around a semantic_layer call must be one SELECT over it.")
    tree = trees[0]
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for node in tree.find_all(exp.Table):
        named = isinstance(node.this, exp.Identifier) and not node.args.get("db")
        if not named or node.name.lower() not in ctes | {RESULT_TABLE}:
            raise StatementError(
                f"the SQL around a semantic_layer call may read only the call's answer, not {node.sql()!r}."
            )
    con = duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    try:
        con.register(RESULT_TABLE, table)
        con.execute("SET lock_configuration = true")
        try:
            return con.sql(tree.sql(dialect="duckdb")).to_arrow_table()
        except duckdb.Error as exc:
            raise StatementError(f"the SQL around the semantic_layer call failed: {exc}") from None
    finally:
        con.close()
