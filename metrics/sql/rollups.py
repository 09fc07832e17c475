"""SQL that answers a query from a rollup table (see metrics/rollups.py for when it may)."""

from __future__ import annotations

from metrics.query.plan import QueryPlan
from metrics.sql.render import Renderer, RenderedQuery, _table


def from_rollup(renderer: Renderer, plan: QueryPlan, schema: str, table: str) -> RenderedQuery:
    """The plan's columns, in its order, read from the rollup; its order and limit applied.
    The rollup's columns are named as the saved query's answer (group-by items, metrics)."""
    columns = ", ".join(renderer._ident(name) for name in plan.columns)
    sql = f"SELECT {columns} FROM {_table(schema, table).sql(dialect=renderer.dialect)}"
    if plan.order_by:
        positions = {name: i + 1 for i, name in enumerate(plan.columns)}
        sql += " " + renderer._order(tuple((positions[o.name], o.descending) for o in plan.order_by))
    if plan.limit is not None:
        sql += f" LIMIT {int(plan.limit)}"
    return RenderedQuery(sql, {}, renderer.dialect)
