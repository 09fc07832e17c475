"""SQL for rollup tables: what the build stores in one, and a query answered from one.

The table layout (metrics/rollups.py documents it; every engine's build writes it with
`stored(...)`) keeps, beside the saved query's answer, the parts it is computed from, so a
coarser grain, fewer slices or a subset of the metrics can be re-aggregated from it exactly.
Whether a rollup may answer a query is decided in metrics/rollups.py; this module only writes
the SQL for a decision already made.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from metrics.query.plan import (
    AggregateNode,
    MeasureRef,
    NodeMeasure,
    OutputMetric,
    QueryPlan,
)
from metrics.query.request import Filter, MetricQuery, WeekStart
from metrics.semantic.graph import GroupByItem
from metrics.semantic.model import Agg, Grain, Measure
from metrics.sql.filters import parse_filter_template
from metrics.sql.render import Renderer
from metrics.sql.trees import RenderedQuery, never_null, number, parse_expr, table_expr, time_bucket
from metrics.time_buckets import truncate

#: Aggregates whose partial results combine into the total: sums and counts add up, and the
#: least of the least values is the least value. Other aggregates (distinct counts,
#: averages, percentiles) are read from a rollup only one stored row per answered row.
REAGGREGATE = {Agg.SUM: "SUM", Agg.COUNT: "SUM", Agg.SUM_BOOLEAN: "SUM", Agg.MIN: "MIN", Agg.MAX: "MAX"}

ROWS_PREFIX = "__rows__"


def decomposable(node: AggregateNode) -> bool:
    """Whether an aggregate's parts are stored: plain aggregates, not cumulative windows,
    time offsets, conversions or semi-additive measures (their values depend on rows or
    periods outside a group)."""
    return (
        node.offset is None
        and node.cumulative is None
        and node.conversion is None
        and node.offset_to_grain is None
        and all(m.measure.non_additive is None for m in node.measures)
    )


def node_key(node: AggregateNode, query: MetricQuery) -> str:
    """What an aggregate is, independent of the query that planned it: its semantic model,
    time dimension and the metric's own filters (the query's `where` is applied on top)."""
    own = node.template_filters[: len(node.template_filters) - len(query.where_sql)]
    text = json.dumps([node.source.model, node.source.agg_time_dimension, sorted(own)])
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def rows_column(key: str) -> str:
    return f"{ROWS_PREFIX}{key}"


def component_column(key: str, measure: Measure) -> str:
    return f"__{measure.name}__{key}"


def stored(renderer: Renderer, plan: QueryPlan) -> RenderedQuery:
    """What a rollup table holds: the saved query's answer (group-by items, then metrics, as
    `/v1/query` answers it) followed by, for each plain aggregate, the number of its rows in
    the group (`__rows__<key>`, null where it has none) and each measure's aggregate
    (`__<measure>__<key>`)."""
    nodes, outputs = [], list(plan.metrics)
    for node in plan.nodes:
        if not decomposable(node):
            nodes.append(node)
            continue
        key = node_key(node, plan.query)
        counter = Measure(
            name=ROWS_PREFIX + key,
            agg=Agg.COUNT,
            expr=_contributing_row(renderer, node),
            semantic_model=node.source.model,
            agg_time_dimension=node.source.agg_time_dimension,
        )
        rows = NodeMeasure(f"m{len(node.measures)}", counter)
        outputs.append(OutputMetric(rows_column(key), MeasureRef(node.alias, rows.column)))
        outputs += [
            OutputMetric(component_column(key, m.measure), MeasureRef(node.alias, m.column)) for m in node.measures
        ]
        nodes.append(dataclasses.replace(node, measures=node.measures + (rows,)))
    return renderer.render(
        dataclasses.replace(plan, nodes=tuple(nodes), metrics=tuple(outputs), order_by=(), limit=None)
    )


def _contributing_row(renderer: Renderer, node: AggregateNode) -> str:
    """The row counter's argument: non-null on a row that counts towards one of the node's
    measures (the renderer's rule that a group exists only where a row contributes), so a
    group the semantic models would not answer is not stored with a row count either."""
    trees = [parse_expr(m.measure.expr, renderer.model_dialect) for m in node.measures]
    if not trees or any(never_null(tree) for tree in trees):
        return "1"
    counted = exp.or_(*[exp.not_(exp.Is(this=exp.paren(tree), expression=exp.Null())) for tree in trees])
    return exp.Case().when(counted, exp.Literal.number(1)).sql(dialect=renderer.model_dialect)


def from_rollup(renderer: Renderer, plan: QueryPlan, schema: str, table: str) -> RenderedQuery:
    """The plan's columns, in its order, read from the rollup; its order and limit applied.
    The rollup's columns are named as the saved query's answer (group-by items, metrics)."""
    columns = ", ".join(renderer._ident(name) for name in plan.columns)
    sql = f"SELECT {columns} FROM {table_expr(schema, table).sql(dialect=renderer.dialect)}"
    if plan.order_by:
        positions = {name: i + 1 for i, name in enumerate(plan.columns)}
        sql += " " + renderer._order(tuple((positions[o.name], o.descending) for o in plan.order_by))
    if plan.limit is not None:
        sql += f" LIMIT {int(plan.limit)}"
    return RenderedQuery(sql, {}, renderer.dialect)


@dataclass(frozen=True)
class StoredColumn:
    """A rollup column standing for a query's item: `grain` re-buckets a stored time column
    to a coarser one (None: read as stored)."""

    name: str
    grain: Grain | None = None


@dataclass(frozen=True)
class NodeReading:
    """How one aggregate of a query is read from a rollup."""

    rows: str  # the aggregate's row-count column
    group_by: tuple[StoredColumn, ...]  # per group-by item of the node, in order
    measures: tuple[tuple[NodeMeasure, str, str], ...]  # (the node's measure, stored column, SQL aggregate)
    filters: tuple[tuple[StoredColumn, GroupByItem, Filter], ...]
    templates: tuple[tuple[str, tuple[StoredColumn, ...]], ...]  # extra `where` templates, per reference
    time: str | None  # the stored metric_time column a time range applies to
    integers: frozenset[str] = frozenset()  # stored part columns of an integer type


def reaggregated(renderer: Renderer, plan: QueryPlan, table: str, readings: dict[str, NodeReading]) -> RenderedQuery:
    """The plan answered from `table` (schema-qualified): each aggregate re-aggregated from the
    stored rows where it has data, then combined into metrics exactly as from the semantic
    models (the same joins, fills, ratios and derived expressions)."""
    schema, name = table.split(".", 1)
    source = table_expr(schema, name).sql(dialect=renderer.dialect)
    params: dict[str, Any] = {}
    week_start = plan.query.week_start
    ctes = []
    for node in plan.nodes:
        reading = readings[node.alias]
        keys = [g.column for g in node.group_by]
        columns = [f"{_stored(renderer, c, week_start)} AS {key}" for c, key in zip(reading.group_by, keys)]
        for measure, column, aggregate in reading.measures:
            value = f"{aggregate}({renderer._ident(column)})"
            if measure.measure.agg is Agg.COUNT or column in reading.integers:
                # An integer stays one, as from the semantic models (a SUM widens it: to a
                # numeric on PostgreSQL, a HUGEINT on DuckDB).
                value = f"CAST({value} AS BIGINT)"
            columns.append(f"{value} AS {measure.column}")
        conditions = [f"NOT {renderer._ident(reading.rows)} IS NULL"]
        contributed = _contributed(renderer, reading) if keys else None
        if contributed is not None:
            conditions.append(contributed)
        for stored_column, item, flt in reading.filters:
            conditions.append(renderer._filter(_stored(renderer, stored_column, week_start), item, flt, params))
        for template, references in reading.templates:
            conditions.append(_template(renderer, template, references, week_start, params))
        if reading.time is not None:
            time = renderer._ident(reading.time)
            if plan.query.start is not None:
                conditions.append(f"{time} >= {renderer._param(params, plan.query.start.date())}")
            if plan.query.end is not None:
                conditions.append(f"{time} < {renderer._param(params, plan.query.end.date())}")
        sql = f"SELECT {', '.join(columns)} FROM {source} WHERE {' AND '.join(conditions)}"
        if keys:
            sql += " GROUP BY " + ", ".join(keys)
        ctes.append((node.alias, sql))
    return RenderedQuery(renderer._outer(plan, ctes, params), params, renderer.dialect)


def _contributed(renderer: Renderer, reading: NodeReading) -> str | None:
    """The renderer's rule on stored rows: a group exists only where a row counts towards one
    of the node's measures. A stored count of a nullable argument is 0, any other aggregate
    null, where no row of that stored group did. None when a measure reads every row."""
    parts = []
    for measure, column, _aggregate in reading.measures:
        if never_null(parse_expr(measure.measure.expr, renderer.model_dialect)):
            return None
        stored_value = renderer._ident(column)
        counted = measure.measure.agg in (Agg.COUNT, Agg.COUNT_DISTINCT)
        parts.append(f"{stored_value} > 0" if counted else f"NOT {stored_value} IS NULL")
    return "(" + " OR ".join(parts) + ")" if parts else None


def _stored_tree(column: StoredColumn, week_start: WeekStart) -> exp.Expr:
    tree: exp.Expr = exp.column(exp.to_identifier(column.name, quoted=True))
    if column.grain is not None:
        tree = time_bucket(tree, column.grain, week_start)
    return tree


def _stored(renderer: Renderer, column: StoredColumn, week_start: WeekStart) -> str:
    return _stored_tree(column, week_start).sql(dialect=renderer.dialect)


def _template(
    renderer: Renderer,
    template: str,
    references: tuple[StoredColumn, ...],
    week_start: WeekStart,
    params: dict[str, Any],
) -> str:
    """A `where` template over the rollup's columns (its references mapped by the router)."""
    parsed = parse_filter_template(template, renderer.model_dialect)

    def swap(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Column) and n.name.startswith("__ref_"):
            return _stored_tree(references[int(n.name.removeprefix("__ref_"))], week_start)
        if isinstance(n, exp.Literal):
            name = f"p{len(params)}"
            params[name] = n.this if n.is_string else number(n.this)
            return exp.Placeholder(this=name)
        return n

    return exp.paren(parsed.tree.copy().transform(swap), copy=False).sql(dialect=renderer.dialect)


def aligned(value: dt.datetime, grain: Grain) -> bool:
    """Whether a time bound is the first instant of a `grain` bucket (ISO weeks), so the
    stored buckets on each side of it are whole."""
    return truncate(value, grain) == value
