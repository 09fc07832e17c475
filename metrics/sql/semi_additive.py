"""Semi-additive measures (balances, snapshots): the aggregate only sees the rows at the edge
of the non-additive dimension, so a balance is summed over accounts at a period's last
snapshot rather than over every day of the period. Called by `Renderer` for a plain
aggregate whose measure is non-additive; kept apart because its window-function shape
shares nothing with the plain GROUP BY."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from metrics.errors import InvalidQuery
from metrics.query.plan import AggregateNode, QueryPlan
from metrics.semantic.graph import ItemKind
from metrics.semantic.model import SemanticModel
from metrics.sql.trees import (
    aggregate_tree,
    column_expr,
    select_statement,
)

if TYPE_CHECKING:
    from metrics.sql.render import Renderer


def semi_additive_sql(
    renderer: Renderer,
    node: AggregateNode,
    plan: QueryPlan,
    home: SemanticModel,
    group: list[str],
    conditions: list[str],
    joins: list[str],
    spec,
) -> str:
    """Aggregate only the rows at the edge (latest or earliest) of the non-additive
    dimension within each metric_time bucket and window grouping: a balance is summed
    over accounts at the period's last snapshot, never over days."""
    measure, column = node.measures[0].measure, node.measures[0].column
    dimension = home.dimension(spec.dimension)
    if dimension is None:
        raise InvalidQuery(
            f"measure {measure.name!r} is non-additive along {spec.dimension!r}, "
            f"which is not a dimension of semantic model {home.name!r}."
        )
    edge_at = column_expr(dimension.expr, "t0", renderer.model_dialect).sql(dialect=renderer.dialect)
    partition = [text for text, g in zip(group, node.group_by) if g.item.kind is ItemKind.METRIC_TIME]
    for name in spec.groupings:
        entity = home.entity(name)
        if entity is None:
            raise InvalidQuery(
                f"measure {measure.name!r} groups its window by {name!r}, which is not an "
                f"entity of semantic model {home.name!r}."
            )
        partition.append(column_expr(entity.expr, "t0", renderer.model_dialect).sql(dialect=renderer.dialect))
    edge = "MAX" if spec.window_choice == "max" else "MIN"
    over = f"PARTITION BY {', '.join(partition)}" if partition else ""
    inner = select_statement(
        [f"{text} AS {g.column}" for text, g in zip(group, node.group_by)]
        + [
            f"{column_expr(measure.expr, 't0', renderer.model_dialect).sql(dialect=renderer.dialect)} AS v",
            f"{edge_at} AS edge_at",
            f"{edge}({edge_at}) OVER ({over}) AS edge",
        ],
        f"{renderer._table(home)} AS t0",
        joins,
        conditions,
    )
    value = aggregate_tree(measure, renderer.model_dialect, exp.column("v")).sql(dialect=renderer.dialect)
    keys = [g.column for g in node.group_by]
    return select_statement(
        keys + [f"{value} AS {column}"], f"({inner}) AS snapshot", [], ["edge_at = edge"], keys or None
    )


# -- cumulative metrics ----------------------------------------------------------------
