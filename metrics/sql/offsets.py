"""`offset_to_grain` inputs of derived metrics, rendered as SQL.

dbt's semantic layer reads an input with `offset_to_grain: month` as "the value at the start
of the month": each output bucket b (of the query's grain) shows the measure over the one
period that starts at the first day of the `offset_to_grain` period b starts in. That period
is a bucket of the query's grain when that grain rolls up into the offset grain (day, month,
quarter, year; not week, whose buckets do not), and the single day otherwise. MetricFlow computes it this way (it aggregates before or after
its time-spine join by the same rule), so:

- by day, 2026-02-17 shows the value of 2026-02-01;
- by week (offset month), the week of Monday 2026-03-02 shows the value of the day 2026-03-01;
- by month (offset quarter), May shows April's value; by month (offset month), each month
  its own value.

Each output bucket reads exactly one period and a period feeds one or more buckets, so the
measure is aggregated per period first (any aggregation), then each bucket of the time spine
picks its period:

    <q>_base as (the node at the period's grain, over [first period any bucket reads, end))
    <q>_buckets as (select distinct <bucket of spine day> as b from <time spine> where <range>)
    <q> as (select buckets.b, base.<slices>, base.<measures> from <q>_buckets
            join <q>_base on base.<period> = <first day of the offset grain's period of b>)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from metrics.errors import InternalError, UnsupportedFeature
from metrics.query.plan import AggregateNode, QueryPlan
from metrics.semantic.graph import ItemKind
from metrics.semantic.model import Grain
from metrics.sql.trees import select_statement, time_bucket
from metrics.time_buckets import truncate

if TYPE_CHECKING:
    from metrics.sql.render import Renderer


def offset_to_grain_node(
    renderer: Renderer, node: AggregateNode, plan: QueryPlan, params: dict[str, Any]
) -> list[tuple[str, str]]:

    to_grain = node.offset_to_grain
    if to_grain is None:
        raise InternalError(f"node {node.alias} has no offset_to_grain to render.")
    time = plan.time
    positions = [i for i, g in enumerate(node.group_by) if g.item.kind is ItemKind.METRIC_TIME]
    if len(positions) != 1:
        raise UnsupportedFeature(
            "an offset_to_grain input needs exactly one metric_time group-by item (e.g. metric_time__day)."
        )
    position = positions[0]
    time_group = node.group_by[position]
    grain = time_group.item.grain or Grain.DAY
    if any(m.measure.non_additive is not None for m in node.measures):
        raise UnsupportedFeature(
            "offset_to_grain on a semi-additive (non_additive_dimension) measure is not supported yet."
        )
    period = grain if grain is not Grain.WEEK and grain.rank <= to_grain.rank else Grain.DAY
    day_item = dataclasses.replace(time_group.item, name=f"metric_time__{period.value}", grain=period)
    day_group = dataclasses.replace(time_group, item=day_item)
    base_groups = node.group_by[:position] + (day_group,) + node.group_by[position + 1 :]
    # metric_time filters of the request apply to the output buckets, the others to the rows.
    time_filters = [f for f in node.filters if f.item.kind is ItemKind.METRIC_TIME]
    base_node = dataclasses.replace(
        node,
        alias=f"{node.alias}_base",
        group_by=base_groups,
        offset_to_grain=None,
        filters=tuple(f for f in node.filters if f.item.kind is not ItemKind.METRIC_TIME),
    )
    query = plan.query
    # The rows of every day an output bucket reads: from the first day of the period the
    # first bucket starts in, up to the end of the range.
    start = query.start
    if start is not None:
        start = truncate(truncate(start, grain, time.week_start), to_grain, time.week_start)
    base_plan = dataclasses.replace(plan, query=dataclasses.replace(query, start=start))
    base_sql = renderer._node(base_node, base_plan, params)

    spine = renderer._spine()
    spine_day = exp.cast(exp.column(spine.column, "s"), exp.DataType.Type.DATE)
    bucket = time_bucket(spine_day, grain, time.week_start).sql(dialect=renderer.dialect)
    conditions = []
    if query.start is not None:
        first = truncate(query.start, grain, time.week_start).date()
        conditions.append(f"{bucket} >= {renderer._param(params, first)}")
    if query.end is not None:
        conditions.append(f"{bucket} < {renderer._param(params, query.end)}")
    column = time_group.column
    for flt in time_filters:
        conditions.append(renderer._filter(bucket, flt.item, flt.filter, params))
    buckets_sql = select_statement(
        [f"{bucket} AS {column}"], f"{renderer._table_of(spine.relation)} AS s", [], conditions, distinct=True
    )
    period_start = time_bucket(exp.column(column, "buckets"), to_grain, time.week_start).sql(dialect=renderer.dialect)
    outputs = [
        f"buckets.{column} AS {column}" if g is time_group else f"base.{g.column} AS {g.column}" for g in node.group_by
    ]
    outputs += [f"base.{m.column} AS {m.column}" for m in node.measures]
    final = select_statement(
        outputs,
        f"{node.alias}_buckets AS buckets",
        [f"JOIN {node.alias}_base AS base ON base.{column} = {period_start}"],
        [],
    )
    return [(f"{node.alias}_base", base_sql), (f"{node.alias}_buckets", buckets_sql), (node.alias, final)]
