"""Small readings of a SELECT's tree shared by the semantic SQL modules: which nodes belong
to a SELECT itself, the conditions of an AND chain, a value as a literal node, and the name
PostgreSQL gives an output column."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from sqlglot import exp

from metrics.sql.marts import function_name


def own(select: exp.Select, node: exp.Expression) -> bool:
    """Whether `node` belongs to `select` itself rather than to a nested query."""
    return node.find_ancestor(exp.Select) is select


def conjuncts(node: exp.Expression) -> list[exp.Expression]:
    """The conditions an AND chain joins, through parentheses."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    return [node]


def literal_node(value: Any) -> exp.Expression:
    """A value as a literal of the tree (typed for dates and timestamps)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float, decimal.Decimal)):
        return exp.Literal.number(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    return exp.Literal.string(str(value))


def pg_name(projection: exp.Expression) -> str:
    if isinstance(projection, exp.Alias):
        return projection.alias
    node = projection
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Cast):
        # As PostgreSQL names `CAST(x AS t)`: the name of x, or else the type's.
        inner = pg_name(node.this)
        return inner if inner != "?column?" else node.to.sql(dialect="postgres").lower()
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, exp.AnyValue):
        return pg_name(node.this) if isinstance(node.this, exp.Column) else "any_value"
    if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
        return "date_trunc"
    if isinstance(node, exp.Func):
        return function_name(node)
    return "?column?"
