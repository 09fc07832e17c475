"""Conversion metrics: base events, the conversion events of the same entity, and the
attribution of each conversion to the entity's latest base event within the window, rendered
as CTEs. Called by `Renderer` for a conversion node of the plan; kept apart because event
attribution is a shape of its own, unlike any aggregate over one model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from metrics.errors import InternalError
from metrics.query.plan import AggregateNode, QueryPlan
from metrics.semantic.model import Dimension, Grain
from metrics.sql.trees import (
    aggregate_tree,
    column_expr,
    constant_property,
    interval,
    model_entity,
    select_statement,
    shift,
    time_bucket,
    time_dimension,
)

if TYPE_CHECKING:
    from metrics.sql.render import Renderer


def conversion_ctes(
    renderer: Renderer, node: AggregateNode, plan: QueryPlan, params: dict[str, Any]
) -> list[tuple[str, str]]:
    """A conversion metric as CTEs:

    - `<q>_base`: base events in range, with their entity, time and group-by values;
    - `<q>_conv`: conversion events of the same entity, from the range start to its end
      plus the window, each with a row key;
    - `<q>_matched`: each conversion event attributed to the entity's most recent base
      event at or before it, within the window (and equal constant properties); times
      are compared at their dimensions' grain, so with day grain and a 7-day window a
      conversion counts on the base event's day and the 6 days after;
    - `<q>`: per group-by key, the base measure over all base events (`m0`) and the
      conversion measure over the attributed conversion events (`m1`).
    """
    params_ = node.conversion
    if params_ is None:
        raise InternalError(f"node {node.alias} is not a conversion.")
    base_measure, target_measure = node.measures[0].measure, node.measures[1].measure
    base_model = renderer.graph.models[base_measure.semantic_model]
    target_model = renderer.graph.models[target_measure.semantic_model]
    query, time = plan.query, plan.time
    alias_for, joins = renderer._joiner()
    group = [renderer._item(g.item, alias_for(g.item), time, node.offset) for g in node.group_by]
    columns = [f"{text} AS {g.column}" for text, g in zip(group, node.group_by)]

    def expr(text: str) -> str:
        return column_expr(text, "t0", renderer.model_dialect).sql(dialect=renderer.dialect)

    base_time = time_dimension(base_model, base_measure.agg_time_dimension)
    target_time = time_dimension(target_model, target_measure.agg_time_dimension)

    # Event times at their dimensions' grain (usually day), as dbt's semantic layer reads
    # them: a conversion counts from the base event's day until the window has passed.
    def at_grain(dimension: Dimension) -> str:
        column = column_expr(dimension.expr, "t0", renderer.model_dialect)
        return time_bucket(column, dimension.time_granularity or Grain.DAY).sql(dialect=renderer.dialect)

    base_columns = columns + [
        f"{expr(model_entity(base_model, params_.entity).expr)} AS entity_key",
        f"{at_grain(base_time)} AS base_ts",
        f"{expr(base_measure.expr)} AS v",
    ]
    base_columns += [
        f"{expr(constant_property(base_model, b))} AS cp{i}" for i, (b, _) in enumerate(params_.constant_properties)
    ]
    conditions = renderer._time_range(node, plan, params) + renderer._conditions(node, plan, params, alias_for, joins)
    base = select_statement(base_columns, f"{renderer._table(base_model)} AS t0", joins, conditions)

    # a key per conversion row; Spark refuses ROW_NUMBER() without an ORDER BY, and its
    # row ids need no sort (the CTE is read once, so the ids stay put)
    row_key = "MONOTONICALLY_INCREASING_ID()" if renderer.dialect == "spark" else "ROW_NUMBER() OVER ()"
    target_columns = [
        f"{expr(model_entity(target_model, params_.entity).expr)} AS entity_key",
        f"{at_grain(target_time)} AS conv_ts",
        f"{expr(target_measure.expr)} AS v",
        f"{row_key} AS conv_key",
    ]
    target_columns += [
        f"{expr(constant_property(target_model, c))} AS cp{i}" for i, (_, c) in enumerate(params_.constant_properties)
    ]
    target_conditions = []
    if query.start is not None:
        target_conditions.append(f"{expr(target_time.expr)} >= {renderer._param(params, query.utc(query.start))}")
    if query.end is not None and params_.window is not None:
        target_conditions.append(
            f"{expr(target_time.expr)} < {renderer._param(params, shift(query.utc(query.end), params_.window, 1))}"
        )
    conv = select_statement(target_columns, f"{renderer._table(target_model)} AS t0", [], target_conditions)

    base_alias, conv_alias, matched_alias = f"{node.alias}_base", f"{node.alias}_conv", f"{node.alias}_matched"
    match = ["b.entity_key = c.entity_key", "c.conv_ts >= b.base_ts"]
    if params_.window is not None:
        upper = exp.cast(
            exp.Add(this=exp.column("base_ts", "b"), expression=interval(params_.window)), exp.DataType.Type.DATE
        )
        match.append(f"c.conv_ts < {upper.sql(dialect=renderer.dialect)}")
    match += [f"b.cp{i} = c.cp{i}" for i in range(len(params_.constant_properties))]
    keys = [g.column for g in node.group_by]
    matched = select_statement(
        [f"b.{k} AS {k}" for k in keys]
        + ["c.v AS v", "ROW_NUMBER() OVER (PARTITION BY c.conv_key ORDER BY b.base_ts DESC) AS rn"],
        f"{base_alias} AS b",
        [f"JOIN {conv_alias} AS c ON {' AND '.join(match)}"],
        [],
    )

    base_agg = aggregate_tree(base_measure, renderer.model_dialect, exp.column("v")).sql(dialect=renderer.dialect)
    conv_agg = aggregate_tree(target_measure, renderer.model_dialect, exp.column("v")).sql(dialect=renderer.dialect)
    opportunities = select_statement(keys + [f"{base_agg} AS m0"], base_alias, [], [], keys or None)
    conversions = select_statement(keys + [f"{conv_agg} AS m1"], matched_alias, [], ["rn = 1"], keys or None)
    if keys:
        on = " AND ".join(renderer._null_safe_eq.replace("__l__", f"o.{k}").replace("__r__", f"c.{k}") for k in keys)
        final = select_statement(
            [f"o.{k} AS {k}" for k in keys] + ["o.m0 AS m0", "c.m1 AS m1"],
            f"({opportunities}) AS o",
            [f"LEFT JOIN ({conversions}) AS c ON {on}"],
            [],
        )
    else:
        final = select_statement(
            ["o.m0 AS m0", "c.m1 AS m1"], f"({opportunities}) AS o", [f"CROSS JOIN ({conversions}) AS c"], []
        )
    return [(base_alias, base), (conv_alias, conv), (matched_alias, matched), (node.alias, final)]
