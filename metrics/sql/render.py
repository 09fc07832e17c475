"""Render a `QueryPlan` as SQL for one warehouse dialect: the only place metric SQL is made.

Every expression (a dimension's column, a time bucket, an aggregate, a join condition, a
ratio or derived formula, a filter string) is built as a sqlglot expression tree and
rendered by sqlglot for the dialect. Those renderings depend only on the semantic manifest,
so they are cached; a query then lays its cached fragments into the fixed statement shape
below. Building and rendering the whole statement as one tree took 6-11 ms per query; laying
out cached fragments takes a small fraction of a millisecond (see bench/), which is what lets
the engine compile a query far faster than it can be run.

Values from the request become named bind parameters (`$p0` in DuckDB, `%(p0)s` in
PostgreSQL, `:p0` in Spark); `RenderedQuery.inline_sql` re-parses the statement with sqlglot
and substitutes quoted literals, for analysts to paste into an editor.

Shape of the SQL:

    with q0 as (             -- one aggregate per semantic model and metric filter set
      select <group-by exprs>, <aggregates> from <model> left join <dimension models> ...
      where <time range> and <filters> group by <group-by exprs>),
    q1 as (...),
    keys as (select g0, g1 from q0 union select g0, g1 from q1)   -- only with 2+ nodes
    select keys.g0 as "metric_time__week", ..., <metric expressions> as "active_users", ...
    from keys left join q0 on keys.g0 is not distinct from q0.g0 ... left join q1 on ...
    order by ... limit ...

Ratios and derived metrics are computed after aggregation, per output row, from their
parts; every division is null-safe (`x / nullif(y, 0)`), so a zero denominator gives null.

This module walks the plan and lays out the statement; the shapes particular to one kind of
metric (cumulative windows, conversions, semi-additive edges, offsets to a grain) live in
`cumulative`, `conversion`, `semi_additive` and `offsets`, and the sqlglot helpers they all
share in `trees`, so each can be read without the rest of the renderer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlglot import exp

from metrics.errors import InvalidFilter, InvalidQuery
from metrics.query.plan import (
    AggregateNode,
    MetricExpr,
    Planner,
    QueryPlan,
    TimeSettings,
)
from metrics.query.request import Filter, FilterOp, MetricQuery, WeekStart
from metrics.semantic.graph import GroupByItem, ItemKind, JoinStep, SemanticGraph
from metrics.semantic.model import Agg, Grain, Measure, SemanticModel, Window
from metrics.sql import combine
from metrics.sql.conversion import conversion_ctes
from metrics.sql.cumulative import cumulative_ctes
from metrics.sql.filters import MetricReference, parse_filter_template
from metrics.sql.offsets import offset_to_grain_node
from metrics.sql.semi_additive import semi_additive_sql
from metrics.sql.trees import (
    RenderedQuery,
    aggregate_tree,
    column_expr,
    interval,
    localize,
    metric_tree,
    never_null,
    number,
    parse_expr,
    select_statement,
    shift,
    shifts_whole_buckets,
    table_expr,
    time_bucket,
    time_value,
)

_COMPARISON = {
    FilterOp.EQ: "=",
    FilterOp.NE: "<>",
    FilterOp.LT: "<",
    FilterOp.LE: "<=",
    FilterOp.GT: ">",
    FilterOp.GE: ">=",
}


class Renderer:
    """Renders plans for one dialect (`duckdb`, `postgres`, `spark`); thread-safe (its caches
    only ever gain entries that are equal whoever computes them)."""

    def __init__(self, graph: SemanticGraph, dialect: str = "duckdb") -> None:
        self.graph = graph
        self.dialect = dialect
        # The dbt project's own expressions are written in the warehouse's dialect.
        self.model_dialect = dialect
        self._items: dict[tuple, str] = {}
        self._aggregates: dict[Measure, str] = {}
        self._planner: Planner | None = None
        self._values: dict[tuple[str, str], str] = {}
        self._projected_aggregates: dict[tuple[Measure, str], str] = {}
        self._joins: dict[tuple[JoinStep, str, str], str] = {}
        self._tables: dict[str, str] = {}
        self._metrics: dict[Any, str] = {}
        self._orders: dict[tuple[tuple[int, bool], ...], str] = {}
        self._idents: dict[str, str] = {}
        self._time_columns: dict[tuple[str, str], str] = {}
        placeholder = exp.Placeholder(this="__name__").sql(dialect=dialect)
        self._placeholder_prefix, self._placeholder_suffix = placeholder.split("__name__")
        self._null_safe_eq = exp.NullSafeEQ(this=exp.column("__l__"), expression=exp.column("__r__")).sql(
            dialect=dialect
        )

    def render(self, plan: QueryPlan) -> RenderedQuery:
        params: dict[str, Any] = {}
        return RenderedQuery(self._statement(plan, params), params, self.dialect)

    def _statement(self, plan: QueryPlan, params: dict[str, Any]) -> str:
        ctes: list[tuple[str, str]] = []
        shared = self._scan_groups(plan)
        for node in plan.nodes:
            if node.offset_to_grain is not None:
                ctes.extend(offset_to_grain_node(self, node, plan, params))
            elif node.cumulative is not None:
                ctes.extend(cumulative_ctes(self, node, plan, params))
            elif node.conversion is not None:
                ctes.extend(conversion_ctes(self, node, plan, params))
            elif node.alias in shared:
                group = shared[node.alias]
                if group[0] is node:
                    ctes.extend(self._shared_scan(group, plan, params))
            else:
                ctes.append((node.alias, self._node(node, plan, params)))
        return self._outer(plan, ctes, params)

    def _scan_groups(self, plan: QueryPlan) -> dict[str, list[AggregateNode]]:
        """Aggregates that can share one scan of their model: the same source, group-by items
        and filters, differing only in their time range and a whole-bucket offset (a metric
        beside its value a period earlier). Keyed by each member's alias."""
        groups: dict[tuple, list[AggregateNode]] = {}
        for node in plan.nodes:
            if node.cumulative is not None or node.conversion is not None or node.offset_to_grain is not None:
                continue
            if any(m.measure.non_additive is not None or m.measure.agg not in _FILTERABLE_AGGS for m in node.measures):
                continue
            if node.offset is not None:
                grains = [g.item.grain or Grain.DAY for g in node.group_by if g.item.kind is ItemKind.METRIC_TIME]
                if (
                    plan.query.timezone is not None
                    or node.offset.grain not in (Grain.DAY, Grain.WEEK)
                    or not all(shifts_whole_buckets(node.offset, grain) for grain in grains)
                    or node.template_filters
                    or any(f.item.kind in (ItemKind.METRIC_TIME, ItemKind.TIME) for f in node.filters)
                ):
                    continue
            key = (node.source, tuple(g.item for g in node.group_by), node.filters, node.template_filters)
            groups.setdefault(key, []).append(node)
        return {node.alias: members for members in groups.values() if len(members) > 1 for node in members}

    def _shared_scan(
        self, nodes: list[AggregateNode], plan: QueryPlan, params: dict[str, Any]
    ) -> list[tuple[str, str]]:
        """One scan for several aggregates of a model: each aggregates only its own time range
        (`FILTER (WHERE ...)`), grouped by the unshifted buckets; an offset member then moves
        its buckets forward. MetricFlow reads the model once for `x - x a week ago`; so do we."""
        first = nodes[0]
        home = self.graph.models[first.source.model]
        alias_for, joins = self._joiner()
        time = plan.time
        group = [self._item(g.item, alias_for(g.item), time) for g in first.group_by]
        keys = [g.column for g in first.group_by]
        plain = dataclasses.replace(first, offset=None)
        shared_conditions = self._conditions(plain, plan, params, alias_for, joins)
        ranges = []
        for node in nodes:
            conditions = self._time_range(node, plan, params)
            ranges.append(" AND ".join(conditions) if conditions else "TRUE")
        values: dict[str, str] = {}
        for node in nodes:
            for m in node.measures:
                values.setdefault(self._value(m.measure), f"v{len(values)}")
        inner = select_statement(
            [f"{text} AS {key}" for text, key in zip(group, keys)]
            + [f"{argument} AS {value}" for argument, value in values.items()]
            + [f"{condition} AS in{i}" for i, condition in enumerate(ranges)],
            f"{self._table(home)} AS t0",
            joins,
            shared_conditions + ([] if "TRUE" in ranges else ["(" + " OR ".join(f"({c})" for c in ranges) + ")"]),
        )
        # n{i}: the rows of member i that count towards one of its measures (self._contributes)
        aggregates = []
        for i, node in enumerate(nodes):
            contributes = self._contributes([m.measure for m in node.measures], values) if keys else None
            aggregates.append(f"COUNT(*) FILTER (WHERE in{i}{f' AND {contributes}' if contributes else ''}) AS n{i}")
        for i, node in enumerate(nodes):
            aggregates += [
                f"{self._aggregate_of(m.measure, values[self._value(m.measure)])} FILTER (WHERE in{i}) "
                f"AS {node.alias}_{m.column}"
                for m in node.measures
            ]
        scan = f"{first.alias}_scan"
        ctes = [(scan, select_statement(keys + aggregates, f"({inner}) AS r", [], [], keys or None))]
        for i, node in enumerate(nodes):
            columns = []
            for g in node.group_by:
                if node.offset is not None and g.item.kind is ItemKind.METRIC_TIME:
                    shifted = exp.cast(
                        exp.Add(this=exp.column(g.column), expression=interval(node.offset)), exp.DataType.Type.DATE
                    )
                    columns.append(f"{shifted.sql(dialect=self.dialect)} AS {g.column}")
                else:
                    columns.append(g.column)
            columns += [f"{node.alias}_{m.column} AS {m.column}" for m in node.measures]
            ctes.append((node.alias, select_statement(columns, scan, [], [f"n{i} > 0"])))
        return ctes

    def newest_time_sql(self, source) -> str | None:
        """`select max(<metric time>) from <model>`: how recent a source's data is."""
        home = self.graph.models[source.model]
        time_dim = home.dimension(source.agg_time_dimension)
        if time_dim is None:
            return None
        column = column_expr(time_dim.expr, "t0", self.model_dialect)
        table = exp.alias_(table_expr(home.relation.schema, home.relation.table), "t0", table=True)
        return exp.select(exp.Max(this=column)).from_(table).sql(dialect=self.dialect)

    def reach_sql(self, source) -> str | None:
        """`select min(<metric time>), max(<metric time>) from <model>`: the span of a source's
        data (for completeness)."""
        home = self.graph.models[source.model]
        time_dim = home.dimension(source.agg_time_dimension)
        if time_dim is None:
            return None
        column = column_expr(time_dim.expr, "t0", self.model_dialect)
        table = exp.alias_(table_expr(home.relation.schema, home.relation.table), "t0", table=True)
        return exp.select(exp.Min(this=column), exp.Max(this=column.copy())).from_(table).sql(dialect=self.dialect)

    # -- cached fragments ----------------------------------------------------------------

    def _param(self, params: dict[str, Any], value: Any) -> str:
        name = f"p{len(params)}"
        params[name] = value
        return f"{self._placeholder_prefix}{name}{self._placeholder_suffix}"

    def _ident(self, name: str) -> str:
        text = self._idents.get(name)
        if text is None:
            text = self._idents[name] = exp.to_identifier(name, quoted=True).sql(dialect=self.dialect)
        return text

    def _table(self, model: SemanticModel) -> str:
        text = self._tables.get(model.name)
        if text is None:
            text = self._tables[model.name] = table_expr(model.relation.schema, model.relation.table).sql(
                dialect=self.dialect
            )
        return text

    def _item_tree(self, item: GroupByItem, alias: str, time: TimeSettings, offset: Window | None = None) -> exp.Expr:
        column = column_expr(item.expr, alias, self.model_dialect)
        if item.kind in (ItemKind.TIME, ItemKind.METRIC_TIME):
            local = localize(column, time.timezone)
            grain = item.grain or Grain.DAY
            if offset is not None and item.kind is ItemKind.METRIC_TIME:
                if shifts_whole_buckets(offset, grain):
                    # Bucket first, then move the bucket: the same answer with date
                    # arithmetic on each bucket rather than on each row.
                    shifted = exp.Add(this=time_bucket(local, grain, time.week_start), expression=interval(offset))
                    return exp.cast(shifted, exp.DataType.Type.DATE)
                local = exp.Add(this=local, expression=interval(offset))
            return time_bucket(local, grain, time.week_start)
        return column

    def _item(self, item: GroupByItem, alias: str, time: TimeSettings, offset: Window | None = None) -> str:
        key = (item, alias, time, offset)
        text = self._items.get(key)
        if text is None:
            text = self._items[key] = self._item_tree(item, alias, time, offset).sql(dialect=self.dialect)
        return text

    def _time_column(self, expr: str) -> str:
        key = (expr, "t0")
        text = self._time_columns.get(key)
        if text is None:
            text = self._time_columns[key] = column_expr(expr, "t0", self.model_dialect).sql(dialect=self.dialect)
        return text

    def _join(self, step: JoinStep, left_alias: str, alias: str) -> str:
        key = (step, left_alias, alias)
        text = self._joins.get(key)
        if text is None:
            on: exp.Expr = exp.EQ(
                this=column_expr(step.left_expr, left_alias, self.model_dialect),
                expression=column_expr(step.right_expr, alias, self.model_dialect),
            )
            # An SCD join sets all three of time, start and end.
            if step.time_expr is not None and step.start_expr is not None and step.end_expr is not None:
                at = column_expr(step.time_expr, left_alias, self.model_dialect)
                end = column_expr(step.end_expr, alias, self.model_dialect)
                on = exp.and_(
                    on,
                    exp.GTE(this=at, expression=column_expr(step.start_expr, alias, self.model_dialect)),
                    exp.paren(
                        exp.or_(exp.LT(this=at.copy(), expression=end), exp.Is(this=end.copy(), expression=exp.null()))
                    ),
                )
            target = self.graph.models[step.model]
            text = self._joins[key] = f"LEFT JOIN {self._table(target)} AS {alias} ON {on.sql(dialect=self.dialect)}"
        return text

    def _aggregate(self, measure: Measure) -> str:
        text = self._aggregates.get(measure)
        if text is None:
            text = self._aggregates[measure] = aggregate_tree(measure, self.model_dialect).sql(dialect=self.dialect)
        return text

    def _value(self, measure: Measure) -> str:
        """A measure's argument, the expression its aggregate reads, on the home model `t0`."""
        key = (measure.expr, "t0")
        text = self._values.get(key)
        if text is None:
            text = self._values[key] = column_expr(measure.expr, "t0", self.model_dialect).sql(dialect=self.dialect)
        return text

    def _aggregate_of(self, measure: Measure, column: str) -> str:
        """A measure's aggregate over a column an inner projection computed."""
        key = (measure, column)
        text = self._projected_aggregates.get(key)
        if text is None:
            text = self._projected_aggregates[key] = aggregate_tree(
                measure, self.model_dialect, exp.column(column)
            ).sql(dialect=self.dialect)
        return text

    def _metric(self, expr: MetricExpr) -> str:
        text = self._metrics.get(expr)
        if text is None:
            text = self._metrics[expr] = metric_tree(expr, self.model_dialect).sql(dialect=self.dialect)
        return text

    def _merged_metric(self, expr: MetricExpr) -> str:
        key = ("merged", expr)
        text = self._metrics.get(key)
        if text is None:
            text = self._metrics[key] = combine.to_merged(metric_tree(expr, self.model_dialect)).sql(
                dialect=self.dialect
            )
        return text

    def _order(self, positions: tuple[tuple[int, bool], ...]) -> str:
        text = self._orders.get(positions)
        if text is None:
            order = exp.Order(
                expressions=[
                    exp.Ordered(this=exp.Literal.number(position), desc=desc, nulls_first=False)
                    for position, desc in positions
                ]
            )
            text = self._orders[positions] = order.sql(dialect=self.dialect).strip()
        return text

    # -- one aggregate per node ----------------------------------------------------------

    def _joiner(self) -> tuple[Any, list[str]]:
        """`alias_for(item)` gives the table alias an item's column lives on, adding the
        many-to-one joins its entity path needs (each path joined once)."""
        aliases: dict[tuple, str] = {(): "t0"}
        joins: list[str] = []

        def alias_for(item: GroupByItem) -> str:
            path = item.path
            if path not in aliases:
                for depth in range(1, len(path) + 1):
                    prefix = path[:depth]
                    if prefix not in aliases:
                        alias = aliases[prefix] = f"t{len(aliases)}"
                        joins.append(self._join(prefix[-1], aliases[prefix[:-1]], alias))
            return aliases[path]

        return alias_for, joins

    def _node(self, node: AggregateNode, plan: QueryPlan, params: dict[str, Any]) -> str:
        home = self.graph.models[node.source.model]
        alias_for, joins = self._joiner()
        time = plan.time
        group = [self._item(g.item, alias_for(g.item), time, node.offset) for g in node.group_by]
        conditions = self._time_range(node, plan, params)
        conditions += self._conditions(node, plan, params, alias_for, joins)
        semi_additive = node.measures[0].measure.non_additive if len(node.measures) == 1 else None
        if semi_additive is not None:
            return semi_additive_sql(self, node, plan, home, group, conditions, joins, semi_additive)
        # Project the bucket and every measure's argument once, then aggregate the projected
        # columns: DuckDB splits COUNT(DISTINCT) beside other aggregates into one pass per kind,
        # and a GROUP BY on the expressions themselves recomputes them in each pass.
        keys = [g.column for g in node.group_by]
        values: dict[str, str] = {}
        aggregates = []
        for m in node.measures:
            argument = self._value(m.measure)
            value = values.setdefault(argument, f"v{len(values)}")
            aggregates.append(f"{self._aggregate_of(m.measure, value)} AS {m.column}")
        inner = select_statement(
            [f"{text} AS {key}" for text, key in zip(group, keys)]
            + [f"{argument} AS {value}" for argument, value in values.items()],
            f"{self._table(home)} AS t0",
            joins,
            conditions,
        )
        if (
            self.dialect == "postgres"
            and len(values) == 1
            and all(m.measure.agg is Agg.COUNT_DISTINCT for m in node.measures)
        ):
            # PostgreSQL sorts for COUNT(DISTINCT) and never runs it in parallel; counting the
            # rows of a SELECT DISTINCT (a parallel hash aggregate) is the same number, about
            # twice as fast on 10M events (NULLs: neither counts them).
            inner = "SELECT DISTINCT " + inner[len("SELECT ") :]
            aggregates = [f"COUNT({values[self._value(m.measure)]}) AS {m.column}" for m in node.measures]
        contributes = self._contributes([m.measure for m in node.measures], values) if keys else None
        return select_statement(
            keys + aggregates, f"({inner}) AS r", [], [contributes] if contributes else [], keys or None
        )

    def _contributes(self, measures: list[Measure], values: dict[str, str]) -> str | None:
        """The condition that a row counts towards at least one of `measures`, applied before
        grouping. The rule: *a group exists for a measure only when at least one row
        contributes to its aggregate* (COUNT(DISTINCT x), SUM(x), MIN/MAX/AVG/percentiles of x:
        a row with a non-null x; a count of rows: any row). So a slice formed only by rows the
        aggregates ignore (anonymous errors in `crashed_users` by `plan`) is no group, rather
        than a row of nulls and a 0 from nothing. Aggregates skip nulls anyway, so filtering
        first changes no value, only which groups exist; an ungrouped answer keeps its one row
        (counts 0 over no rows). None when some argument is never null (every row counts).
        Filled rows (time spine, fill_nulls_with) come from the outer query's keys, not from
        here."""
        if any(never_null(self._tree(m)) for m in measures):
            return None
        arguments = [values[self._value(m)] for m in measures]
        return "(" + " OR ".join(f"{v} IS NOT NULL" for v in dict.fromkeys(arguments)) + ")"

    def _tree(self, measure: Measure) -> exp.Expr:
        return parse_expr(measure.expr, self.model_dialect)

    def _spine(self):
        spine = self.graph.manifest.time_spine
        if spine is None:
            raise InvalidQuery(
                "this query needs the project's time spine (a day-grain model declared with "
                "`time_spine:` in the dbt YAML), and the project has none."
            )
        return spine

    def _table_of(self, relation) -> str:
        return table_expr(relation.schema, relation.table).sql(dialect=self.dialect)

    def _time_range(
        self,
        node: AggregateNode,
        plan: QueryPlan,
        params: dict[str, Any],
        bounds: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    ) -> list[str]:
        """`start <= metric time < end` (the query's range unless `bounds` are given, in the
        query's zone): on the raw UTC column (so zone maps and indexes help), or, when metric
        time is shifted by an offset, on the shifted local time."""
        query = plan.query
        start, end = bounds if bounds is not None else (query.start, query.end)
        home = self.graph.models[node.source.model]
        time_dim = home.dimension(node.source.agg_time_dimension)
        if time_dim is None or not (start or end):
            return []
        if node.offset is None:
            column, low, high = self._time_column(time_dim.expr), query.utc(start), query.utc(end)
        elif query.timezone is None and node.offset.grain in (Grain.DAY, Grain.WEEK):
            # A fixed-length shift moves the bounds exactly: filter the raw column.
            column = self._time_column(time_dim.expr)
            low = shift(start, node.offset, -1) if start else None
            high = shift(end, node.offset, -1) if end else None
            return ([f"{column} >= {self._param(params, low)}"] if low else []) + (
                [f"{column} < {self._param(params, high)}"] if high else []
            )
        else:
            shifted = exp.Add(
                this=localize(column_expr(time_dim.expr, "t0", self.model_dialect), query.timezone),
                expression=interval(node.offset),
            )
            column, low, high = shifted.sql(dialect=self.dialect), start, end
        conditions = []
        if low:
            conditions.append(f"{column} >= {self._param(params, low)}")
        if high:
            conditions.append(f"{column} < {self._param(params, high)}")
        if node.offset is not None:
            # The exact test is on shifted local time; a day-wider range on the raw column
            # lets the warehouse skip what cannot match (zone maps, indexes).
            raw, slack = self._time_column(time_dim.expr), dt.timedelta(days=1)
            if low:
                conditions.append(f"{raw} >= {self._param(params, shift(low, node.offset, -1) - slack)}")
            if high:
                conditions.append(f"{raw} < {self._param(params, shift(high, node.offset, -1) + slack)}")
        return conditions

    def _conditions(
        self, node: AggregateNode, plan: QueryPlan, params: dict[str, Any], alias_for, joins: list[str]
    ) -> list[str]:
        conditions = []
        for flt in node.filters:
            column = self._item(flt.item, alias_for(flt.item), plan.time, node.offset)
            conditions.append(self._filter(column, flt.item, flt.filter, params))
        for template in node.template_filters:
            conditions.append(self._template_filter(template, node, alias_for, joins, params, plan.time))
        return conditions

    def _filter(self, column: str, item: GroupByItem, flt: Filter, params: dict[str, Any]) -> str:
        is_time = item.kind in (ItemKind.TIME, ItemKind.METRIC_TIME)

        def value(v: Any) -> str:
            return self._param(params, time_value(v, item) if is_time else v)

        op = flt.op
        if op is FilterOp.IS_NULL:
            return f"{column} IS NULL"
        if op is FilterOp.IS_NOT_NULL:
            return f"NOT {column} IS NULL"
        if op is FilterOp.IN:
            return f"{column} IN ({', '.join(value(v) for v in flt.values)})"
        if op is FilterOp.NOT_IN:
            return f"NOT {column} IN ({', '.join(value(v) for v in flt.values)})"
        return f"{column} {_COMPARISON[op]} {value(flt.value)}"

    def _template_filter(
        self,
        template: str,
        node: AggregateNode,
        alias_for,
        joins: list[str],
        params: dict[str, Any],
        time: TimeSettings,
    ) -> str:
        parsed = parse_filter_template(template, self.model_dialect)
        measures = ", ".join(m.measure.name for m in node.measures)
        context = f"the filter {template!r} (measures of semantic model '{node.source.model}': {measures})"
        columns = []
        for ref in parsed.references:
            item = self.graph.resolve(node.source, ref, metric=measures, context=context)
            columns.append(self._item_tree(item, alias_for(item), time, node.offset))
        metric_columns = [
            self._metric_filter_join(ref, node, alias_for, joins, params, measures, context) for ref in parsed.metrics
        ]

        def swap(n: exp.Expr) -> exp.Expr:
            if isinstance(n, exp.Column) and n.name.startswith("__ref_"):
                return columns[int(n.name.removeprefix("__ref_"))].copy()
            if isinstance(n, exp.Column) and n.name.startswith("__metric_"):
                return metric_columns[int(n.name.removeprefix("__metric_"))].copy()
            if isinstance(n, exp.Literal):
                # Values written in a filter string travel as bind parameters too.
                name = f"p{len(params)}"
                params[name] = n.this if n.is_string else number(n.this)
                return exp.Placeholder(this=name)
            return n

        return exp.paren(parsed.tree.copy().transform(swap), copy=False).sql(dialect=self.dialect)

    def _metric_filter_join(
        self,
        ref: MetricReference,
        node: AggregateNode,
        alias_for,
        joins: list[str],
        params: dict[str, Any],
        measures: str,
        context: str,
    ) -> exp.Expr:
        """`{{ Metric('revenue', group_by=['user']) }}`: the metric computed per entity (its own
        query, over all time), left-joined on the entity's key, so each row sees its entity's
        value. One row per entity on the joined side: the join cannot fan out."""
        keys = []
        for name in ref.group_by:
            item = self.graph.resolve(node.source, name, metric=measures, context=context)
            if item.kind is not ItemKind.ENTITY:
                raise InvalidFilter(
                    f"{context}: a metric in a filter is computed per entity, and {name!r} "
                    "is not an entity; e.g. group_by=['user'].",
                    field=name,
                )
            keys.append(self._item(item, alias_for(item), TimeSettings(None, WeekStart.MONDAY)))
        planner = self._planner
        if planner is None:
            planner = self._planner = Planner(self.graph)
        plan = planner.plan(MetricQuery(metrics=(ref.metric,), group_by=ref.group_by))
        statement = self._statement(dataclasses.replace(plan, order_by=()), params)
        alias = f"mf{sum(j.startswith('LEFT JOIN (') for j in joins)}"
        on = " AND ".join(f"{key} = {alias}.{self._ident(name)}" for key, name in zip(keys, ref.group_by))
        joins.append(f"LEFT JOIN ({statement}) AS {alias} ON {on}")
        return exp.column(exp.to_identifier(ref.metric, quoted=True), alias)

    # -- combining nodes into the answer ------------------------------------------------

    def _outer(self, plan: QueryPlan, ctes: list[tuple[str, str]], params: dict[str, Any]) -> str:
        group_columns = [f"g{i}" for i in range(len(plan.group_by))]
        nodes = [node.alias for node in plan.nodes]
        with_parts = [f"{alias} AS ({sql})" for alias, sql in ctes]
        spine = self._spine_keys(plan, group_columns, params) if plan.needs_time_spine else None
        stacked = False
        if len(nodes) == 1 and spine is None:
            key_source = nodes[0]
            from_sql = key_source
        elif group_columns and self.dialect == "postgres":
            # PostgreSQL cannot hash a null-safe join; stacking and grouping is one hash aggregate.
            stacked = True
            key_source = from_sql = "merged"
            with_parts += [
                f"{alias} AS ({sql})"
                for alias, sql in combine.stacked(
                    [(n.alias, [m.column for m in n.measures], n.offset is None) for n in plan.nodes],
                    group_columns,
                    spine,
                )
            ]
        elif group_columns:
            key_source = "keys"
            # Offset inputs (last period's value) must not add buckets of their own.
            key_nodes = [n.alias for n in plan.nodes if n.offset is None and n.offset_to_grain is None] or nodes
            data_keys = " UNION ".join(f"SELECT {', '.join(group_columns)} FROM {alias}" for alias in key_nodes)
            if spine is None:
                with_parts.append(f"keys AS ({data_keys})")
            else:
                spine_sql, time_column = spine
                with_parts.append(f"data_keys AS ({data_keys})")
                with_parts.append(f"spine AS ({spine_sql})")
                with_parts.append(
                    f"keys AS (SELECT {', '.join(group_columns)} FROM data_keys UNION ALL "
                    f"SELECT {', '.join(group_columns)} FROM spine WHERE NOT spine.{time_column} IN "
                    f"(SELECT {time_column} FROM data_keys WHERE NOT {time_column} IS NULL))"
                )
            joins = []
            for alias in nodes:
                on = " AND ".join(
                    self._null_safe_eq.replace("__l__", f"keys.{c}").replace("__r__", f"{alias}.{c}")
                    for c in group_columns
                )
                joins.append(f"LEFT JOIN {alias} ON {on}")
            from_sql = "keys " + " ".join(joins)
        else:
            key_source = nodes[0]
            from_sql = key_source + "".join(f" CROSS JOIN {alias}" for alias in nodes[1:])

        outputs = [
            f"{key_source}.{column} AS {self._ident(name)}" for column, name in zip(group_columns, plan.group_by)
        ]
        outputs += [
            f"{self._merged_metric(metric.expr) if stacked else self._metric(metric.expr)} "
            f"AS {self._ident(metric.name)}"
            for metric in plan.metrics
        ]
        sql = f"WITH {', '.join(with_parts)} SELECT {', '.join(outputs)} FROM {from_sql}"
        if plan.order_by:
            positions = {name: i + 1 for i, name in enumerate(plan.columns)}
            sql += " " + self._order(tuple((positions[o.name], o.descending) for o in plan.order_by))
        if plan.limit is not None:
            sql += f" LIMIT {int(plan.limit)}"
        return sql

    def _spine_keys(self, plan: QueryPlan, group_columns: list[str], params: dict[str, Any]) -> tuple[str, str] | None:
        """Every metric_time bucket of the range (or of the data's span), from the time spine,
        as group-by keys with the other columns null: `join_to_timespine` series have no gaps."""
        groups = plan.nodes[0].group_by if plan.nodes else ()
        time_positions = [i for i, g in enumerate(groups) if g.item.kind is ItemKind.METRIC_TIME]
        if not time_positions:
            return None
        spine = self._spine()
        day = exp.column(spine.column, "s")
        columns = []
        for i, group in enumerate(groups):
            if i in time_positions:
                bucket = time_bucket(day.copy(), group.item.grain or Grain.DAY, plan.time.week_start)
                columns.append(f"{bucket.sql(dialect=self.dialect)} AS {group_columns[i]}")
            else:
                columns.append(f"NULL AS {group_columns[i]}")
        first = group_columns[time_positions[0]]
        first_bucket = columns[time_positions[0]].rsplit(" AS ", 1)[0]
        conditions = []
        query = plan.query
        if query.start is not None:
            conditions.append(f"{day.sql(dialect=self.dialect)} >= {self._param(params, query.start)}")
        else:
            conditions.append(f"{first_bucket} >= (SELECT MIN({first}) FROM data_keys)")
        if query.end is not None:
            conditions.append(f"{day.sql(dialect=self.dialect)} < {self._param(params, query.end)}")
        else:
            conditions.append(f"{first_bucket} <= (SELECT MAX({first}) FROM data_keys)")
        sql = select_statement(columns, f"{self._table_of(spine.relation)} AS s", [], conditions, distinct=True)
        return sql, first


# Aggregates that take a FILTER clause in every dialect we render.
_FILTERABLE_AGGS = (Agg.SUM, Agg.COUNT, Agg.COUNT_DISTINCT, Agg.SUM_BOOLEAN, Agg.AVERAGE, Agg.MIN, Agg.MAX)
