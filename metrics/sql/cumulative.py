"""Cumulative metrics (trailing windows, grain-to-date, all time): rendered as a chain of
CTEs over a daily pre-aggregate and the time spine, because a window over days cannot be
expressed as one GROUP BY over raw rows. Called by `Renderer` for a cumulative node of the
plan."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from metrics.errors import InternalError, InvalidQuery
from metrics.query.plan import AggregateNode, QueryPlan
from metrics.semantic.graph import ItemKind
from metrics.semantic.model import Agg, Grain, PeriodAgg, Window
from metrics.sql.trees import (
    column_expr,
    interval,
    localize,
    never_null,
    select_statement,
    shift,
    time_bucket,
    time_dimension,
)
from metrics.time_buckets import truncate

if TYPE_CHECKING:
    from metrics.sql.render import Renderer

# Aggregates a window can compute from the per-day base (a distinct count from its distinct triples).
_CUMULATIVE_AGGS = (Agg.SUM, Agg.COUNT, Agg.SUM_BOOLEAN, Agg.COUNT_DISTINCT, Agg.MIN, Agg.MAX)


def cumulative_ctes(
    renderer: Renderer, node: AggregateNode, plan: QueryPlan, params: dict[str, Any]
) -> list[tuple[str, str]]:
    """A cumulative metric in four steps, each a CTE:

    - `<q>_base`: the measure pre-aggregated per day and slice (for a distinct count: the
      distinct (day, slice, value) triples), so the window joins days, not raw rows;
    - `<q>_days`: the output days, from the time spine;
    - `<q>_daily`: each output day's value over its window (trailing `window`,
      `grain_to_date`, or all time up to that day);
    - `<q>`: at the requested grain, the first, last or average daily value per bucket.
    """
    spec = node.cumulative
    if spec is None:
        raise InternalError(f"node {node.alias} is not cumulative.")
    measure = node.measures[0].measure
    column = node.measures[0].column
    agg = measure.agg
    if agg not in _CUMULATIVE_AGGS:
        raise InvalidQuery(
            f"cumulative metrics over a {agg.value!r} measure ({measure.name}) are not supported; "
            "use sum, count, count_distinct, sum_boolean, min or max."
        )
    spine = renderer._spine()
    home = renderer.graph.models[node.source.model]
    time_dim = time_dimension(home, node.source.agg_time_dimension)
    query, time = plan.query, plan.time
    alias_for, joins = renderer._joiner()
    day = time_bucket(
        localize(column_expr(time_dim.expr, "t0", renderer.model_dialect), time.timezone), Grain.DAY, time.week_start
    ).sql(dialect=renderer.dialect)
    is_time = [g.item.kind is ItemKind.METRIC_TIME for g in node.group_by]
    slices = [g for g, t in zip(node.group_by, is_time) if not t]
    slice_sql = [renderer._item(g.item, alias_for(g.item), time) for g in slices]
    value = column_expr(measure.expr, "t0", renderer.model_dialect).sql(dialect=renderer.dialect)

    # Inputs: everything up to `end`, and from as far back as the first window reaches.
    lower = None
    if query.start is not None and spec.window is not None:
        lower = shift(query.start, spec.window, -1)
    elif query.start is not None and spec.grain_to_date is not None:
        lower = truncate(query.start, spec.grain_to_date, time.week_start)
    conditions = renderer._time_range(node, plan, params, bounds=(lower, query.end))
    conditions += renderer._conditions(
        AggregateNode(
            node.alias,
            node.source,
            node.group_by,
            tuple(f for f in node.filters if f.item.kind is not ItemKind.METRIC_TIME),
            node.template_filters,
            node.measures,
        ),
        plan,
        params,
        alias_for,
        joins,
    )
    if slices and not never_null(renderer._tree(measure)):
        conditions.append(f"{value} IS NOT NULL")  # no slice from rows the measure ignores
    base_columns = [f"{day} AS d"] + [f"{sql} AS {g.column}" for sql, g in zip(slice_sql, slices)]
    if agg is Agg.COUNT_DISTINCT:
        base = select_statement(
            base_columns + [f"{value} AS v"], f"{renderer._table(home)} AS t0", joins, conditions, distinct=True
        )
        rollup = "COUNT(DISTINCT b.v)"
    else:
        base = select_statement(
            base_columns + [f"{renderer._aggregate(measure)} AS v"],
            f"{renderer._table(home)} AS t0",
            joins,
            conditions,
            [day] + slice_sql,
        )
        rollup = "MIN(b.v)" if agg is Agg.MIN else "MAX(b.v)" if agg is Agg.MAX else "SUM(b.v)"

    base_alias, days_alias, daily_alias = f"{node.alias}_base", f"{node.alias}_days", f"{node.alias}_daily"
    spine_day = exp.cast(exp.column(spine.column, "s"), exp.DataType.Type.DATE).sql(dialect=renderer.dialect)
    # Output days: the query's range; where it is open, from the first day with data to
    # the last day whose window still reaches data (as dbt's semantic layer does).
    last = exp.Subquery(this=exp.select(exp.Max(this=exp.column("d"))).from_(base_alias))
    if spec.window is not None:
        reach = exp.cast(exp.Add(this=last, expression=interval(spec.window)), exp.DataType.Type.DATE)
        upper = f"{spine_day} < {reach.sql(dialect=renderer.dialect)}"
    elif spec.grain_to_date is not None:
        period_end = exp.cast(
            exp.Add(
                this=time_bucket(last, spec.grain_to_date, time.week_start),
                expression=interval(Window(1, spec.grain_to_date)),
            ),
            exp.DataType.Type.DATE,
        )
        upper = f"{spine_day} < {period_end.sql(dialect=renderer.dialect)}"
    else:
        upper = f"{spine_day} <= {last.sql(dialect=renderer.dialect)}"
    # Days outside the data's reach have no value; bounding by it keeps the window join
    # small when the range is much wider than the data.
    day_conditions = [f"{spine_day} >= (SELECT MIN(d) FROM {base_alias})", upper]
    if query.start is not None:
        day_conditions.append(f"{spine_day} >= {renderer._param(params, query.start.date())}")
    if query.end is not None:
        day_conditions.append(f"{spine_day} < {renderer._param(params, query.end)}")
    for flt in node.filters:
        if flt.item.kind is ItemKind.METRIC_TIME:
            bucket = time_bucket(exp.column(spine.column, "s"), flt.item.grain or Grain.DAY, time.week_start)
            day_conditions.append(renderer._filter(bucket.sql(dialect=renderer.dialect), flt.item, flt.filter, params))
    days = select_statement([f"{spine_day} AS d"], f"{renderer._table_of(spine.relation)} AS s", [], day_conditions)

    window = ["b.d <= days.d"]
    if spec.window is not None:
        # Both sides DATE, so the engine can run a range join rather than a nested loop.
        earliest = exp.cast(
            exp.Sub(this=exp.column("d", "days"), expression=interval(spec.window)), exp.DataType.Type.DATE
        )
        window.append(f"b.d > {earliest.sql(dialect=renderer.dialect)}")
    elif spec.grain_to_date is not None:
        start_of = time_bucket(exp.column("d", "days"), spec.grain_to_date, time.week_start).sql(
            dialect=renderer.dialect
        )
        window.append(f"b.d >= {start_of}")
    slice_cols = [f"b.{g.column}" for g in slices]
    daily = select_statement(
        ["days.d AS d"] + [f"{c} AS {g.column}" for c, g in zip(slice_cols, slices)] + [f"{rollup} AS {column}"],
        f"{days_alias} AS days",
        [f"JOIN {base_alias} AS b ON {' AND '.join(window)}"],
        [],
        ["days.d"] + slice_cols,
    )

    outputs: list[str] = []
    partition: list[str] = []
    for group, time_item in zip(node.group_by, is_time):
        if time_item:
            bucket_sql = time_bucket(exp.column("d"), group.item.grain or Grain.DAY, time.week_start).sql(
                dialect=renderer.dialect
            )
            outputs.append(f"{bucket_sql} AS {group.column}")
            partition.append(bucket_sql)
        else:
            outputs.append(group.column)
            partition.append(group.column)
    daily_grain = all(g.item.grain in (None, Grain.DAY) for g, t in zip(node.group_by, is_time) if t)
    if daily_grain:
        final = select_statement(outputs + [column], daily_alias, [], [])
    elif spec.period_agg is PeriodAgg.AVERAGE:
        final = select_statement(outputs + [f"AVG({column}) AS {column}"], daily_alias, [], [], partition)
    else:
        order = "d DESC" if spec.period_agg is PeriodAgg.LAST else "d"
        ranked = (
            f"(SELECT *, ROW_NUMBER() OVER (PARTITION BY {', '.join(partition)} ORDER BY {order}) AS rn "
            f"FROM {daily_alias}) AS ranked"
        )
        final = select_statement(outputs + [column], ranked, [], ["rn = 1"])
    return [(base_alias, base), (days_alias, days), (daily_alias, daily), (node.alias, final)]


# -- conversion metrics -----------------------------------------------------------------
