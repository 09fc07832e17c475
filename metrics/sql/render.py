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
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp

from metrics.errors import InvalidFilter, InvalidQuery
from metrics.query.plan import (
    AggregateNode,
    DerivedExpr,
    MeasureRef,
    MetricExpr,
    QueryPlan,
    RatioExpr,
)
from metrics.query.request import Filter, FilterOp
from metrics.semantic.graph import GroupByItem, ItemKind, JoinStep, SemanticGraph
from metrics.semantic.model import Agg, Grain, Measure, SemanticModel
from metrics.sql.filters import parse_filter_template

_COMPARISON = {FilterOp.EQ: "=", FilterOp.NE: "<>", FilterOp.LT: "<", FilterOp.LE: "<=",
               FilterOp.GT: ">", FilterOp.GE: ">="}


@dataclass(frozen=True)
class RenderedQuery:
    """SQL with named bind parameters."""

    sql: str
    params: dict[str, Any]
    dialect: str

    def inline_sql(self, pretty: bool = True) -> str:
        """The statement with each bind parameter replaced by a quoted literal."""
        return inline(self.sql, self.params, self.dialect, pretty=pretty)


def inline(sql: str, params: dict[str, Any], dialect: str, pretty: bool = True) -> str:
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name in params:
            return literal(params[node.name])
        return node

    return sqlglot.parse_one(sql, read=dialect).transform(swap).sql(dialect=dialect, pretty=pretty)


def literal(value: Any) -> exp.Expression:
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    return exp.convert(value)


@lru_cache(maxsize=4096)
def _parse_expr(text: str, dialect: str) -> exp.Expression:
    return sqlglot.parse_one(text, read=dialect)


def _column_expr(text: str, table_alias: str, dialect: str) -> exp.Expression:
    """A semantic model's column expression with its bare columns qualified by the table alias.

    >>> _column_expr("case when revenue_usd > 0 then user_id end", "t0", "duckdb").sql()
    'CASE WHEN t0.revenue_usd > 0 THEN t0.user_id END'
    """
    tree = _parse_expr(text, dialect).copy()
    for column in tree.find_all(exp.Column):
        if not column.table:
            column.set("table", exp.to_identifier(table_alias))
    return tree


class Renderer:
    """Renders plans for one dialect (`duckdb`, `postgres`, `spark`); thread-safe (its caches
    only ever gain entries that are equal whoever computes them)."""

    def __init__(self, graph: SemanticGraph, dialect: str = "duckdb") -> None:
        self.graph = graph
        self.dialect = dialect
        # The dbt project's own expressions are written in the warehouse's dialect.
        self.model_dialect = dialect
        self._items: dict[tuple[GroupByItem, str], str] = {}
        self._aggregates: dict[Measure, str] = {}
        self._joins: dict[tuple[JoinStep, str, str], str] = {}
        self._tables: dict[str, str] = {}
        self._metrics: dict[MetricExpr, str] = {}
        self._orders: dict[tuple[tuple[int, bool], ...], str] = {}
        self._idents: dict[str, str] = {}
        self._time_columns: dict[tuple[str, str], str] = {}
        placeholder = exp.Placeholder(this="__name__").sql(dialect=dialect)
        self._placeholder_prefix, self._placeholder_suffix = placeholder.split("__name__")
        self._null_safe_eq = exp.NullSafeEQ(this=exp.column("__l__"), expression=exp.column("__r__")).sql(
            dialect=dialect)

    def render(self, plan: QueryPlan) -> RenderedQuery:
        params: dict[str, Any] = {}
        ctes = [(node.alias, self._node(node, plan, params)) for node in plan.nodes]
        return RenderedQuery(self._outer(plan, ctes), params, self.dialect)

    def newest_time_sql(self, source) -> str | None:
        """`select max(<metric time>) from <model>`: how recent a source's data is."""
        home = self.graph.models[source.model]
        time_dim = home.dimension(source.agg_time_dimension)
        if time_dim is None:
            return None
        column = _column_expr(time_dim.expr, "t0", self.model_dialect)
        table = exp.alias_(_table(home.relation.schema, home.relation.table), "t0", table=True)
        return exp.select(exp.Max(this=column)).from_(table).sql(dialect=self.dialect)

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
            text = self._tables[model.name] = _table(model.relation.schema, model.relation.table).sql(
                dialect=self.dialect)
        return text

    def _item_tree(self, item: GroupByItem, alias: str) -> exp.Expression:
        column = _column_expr(item.expr, alias, self.model_dialect)
        if item.kind in (ItemKind.TIME, ItemKind.METRIC_TIME):
            return _bucket(column, item.grain or Grain.DAY)
        return column

    def _item(self, item: GroupByItem, alias: str) -> str:
        key = (item, alias)
        text = self._items.get(key)
        if text is None:
            text = self._items[key] = self._item_tree(item, alias).sql(dialect=self.dialect)
        return text

    def _time_column(self, expr: str) -> str:
        key = (expr, "t0")
        text = self._time_columns.get(key)
        if text is None:
            text = self._time_columns[key] = _column_expr(expr, "t0", self.model_dialect).sql(dialect=self.dialect)
        return text

    def _join(self, step: JoinStep, left_alias: str, alias: str) -> str:
        key = (step, left_alias, alias)
        text = self._joins.get(key)
        if text is None:
            on = exp.EQ(this=_column_expr(step.left_expr, left_alias, self.model_dialect),
                        expression=_column_expr(step.right_expr, alias, self.model_dialect))
            target = self.graph.models[step.model]
            text = self._joins[key] = (f"LEFT JOIN {self._table(target)} AS {alias} "
                                       f"ON {on.sql(dialect=self.dialect)}")
        return text

    def _aggregate(self, measure: Measure) -> str:
        text = self._aggregates.get(measure)
        if text is None:
            text = self._aggregates[measure] = _aggregate_tree(measure, self.model_dialect).sql(
                dialect=self.dialect)
        return text

    def _metric(self, expr: MetricExpr) -> str:
        text = self._metrics.get(expr)
        if text is None:
            text = self._metrics[expr] = _metric_tree(expr, self.model_dialect).sql(dialect=self.dialect)
        return text

    def _order(self, positions: tuple[tuple[int, bool], ...]) -> str:
        text = self._orders.get(positions)
        if text is None:
            order = exp.Order(expressions=[
                exp.Ordered(this=exp.Literal.number(position), desc=desc, nulls_first=False)
                for position, desc in positions])
            text = self._orders[positions] = order.sql(dialect=self.dialect).strip()
        return text

    # -- one aggregate per node ----------------------------------------------------------

    def _node(self, node: AggregateNode, plan: QueryPlan, params: dict[str, Any]) -> str:
        home = self.graph.models[node.source.model]
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

        group = [self._item(g.item, alias_for(g.item)) for g in node.group_by]
        columns = [f"{text} AS {g.column}" for text, g in zip(group, node.group_by)]
        columns += [f"{self._aggregate(m.measure)} AS {m.column}" for m in node.measures]

        conditions: list[str] = []
        time_dim = home.dimension(node.source.agg_time_dimension)
        start, end = plan.query.start, plan.query.end
        if time_dim is not None and (start or end):
            time_col = self._time_column(time_dim.expr)
            if start:
                conditions.append(f"{time_col} >= {self._param(params, start)}")
            if end:
                conditions.append(f"{time_col} < {self._param(params, end)}")
        for flt in node.filters:
            column = self._item(flt.item, alias_for(flt.item))
            conditions.append(self._filter(column, flt.item, flt.filter, params))
        for template in node.template_filters:
            conditions.append(self._template_filter(template, node, alias_for, params))

        sql = f"SELECT {', '.join(columns)} FROM {self._table(home)} AS t0"
        if joins:
            sql += " " + " ".join(joins)
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        if group:
            sql += " GROUP BY " + ", ".join(group)
        return sql

    def _filter(self, column: str, item: GroupByItem, flt: Filter, params: dict[str, Any]) -> str:
        is_time = item.kind in (ItemKind.TIME, ItemKind.METRIC_TIME)

        def value(v: Any) -> str:
            return self._param(params, _time_value(v, item) if is_time else v)

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

    def _template_filter(self, template: str, node: AggregateNode, alias_for, params: dict[str, Any]) -> str:
        parsed = parse_filter_template(template, self.model_dialect)
        measures = ", ".join(m.measure.name for m in node.measures)
        columns = []
        for ref in parsed.references:
            item = self.graph.resolve(
                node.source, ref, metric=measures,
                context=f"the filter {template!r} (measures of semantic model '{node.source.model}': {measures})")
            columns.append(self._item_tree(item, alias_for(item)))

        def swap(n: exp.Expression) -> exp.Expression:
            if isinstance(n, exp.Column) and n.name.startswith("__ref_"):
                return columns[int(n.name.removeprefix("__ref_"))].copy()
            if isinstance(n, exp.Literal):
                # Values written in a filter string travel as bind parameters too.
                name = f"p{len(params)}"
                params[name] = n.this if n.is_string else _number(n.this)
                return exp.Placeholder(this=name)
            return n

        return exp.paren(parsed.tree.copy().transform(swap), copy=False).sql(dialect=self.dialect)

    # -- combining nodes into the answer ------------------------------------------------

    def _outer(self, plan: QueryPlan, ctes: list[tuple[str, str]]) -> str:
        group_columns = [f"g{i}" for i in range(len(plan.group_by))]
        with_parts = [f"{alias} AS ({sql})" for alias, sql in ctes]
        if len(ctes) == 1:
            key_source = ctes[0][0]
            from_sql = key_source
        elif group_columns:
            key_source = "keys"
            keys = " UNION ".join(f"SELECT {', '.join(group_columns)} FROM {alias}" for alias, _ in ctes)
            with_parts.append(f"keys AS ({keys})")
            joins = []
            for alias, _ in ctes:
                on = " AND ".join(
                    self._null_safe_eq.replace("__l__", f"keys.{c}").replace("__r__", f"{alias}.{c}")
                    for c in group_columns)
                joins.append(f"LEFT JOIN {alias} ON {on}")
            from_sql = "keys " + " ".join(joins)
        else:
            key_source = ctes[0][0]
            from_sql = key_source + "".join(f" CROSS JOIN {alias}" for alias, _ in ctes[1:])

        outputs = [f"{key_source}.{column} AS {self._ident(name)}"
                   for column, name in zip(group_columns, plan.group_by)]
        outputs += [f"{self._metric(metric.expr)} AS {self._ident(metric.name)}" for metric in plan.metrics]
        sql = f"WITH {', '.join(with_parts)} SELECT {', '.join(outputs)} FROM {from_sql}"
        if plan.order_by:
            positions = {name: i + 1 for i, name in enumerate(plan.columns)}
            sql += " " + self._order(tuple((positions[o.name], o.descending) for o in plan.order_by))
        if plan.limit is not None:
            sql += f" LIMIT {int(plan.limit)}"
        return sql


def _aggregate_tree(measure: Measure, dialect: str) -> exp.Expression:
    value = _column_expr(measure.expr, "t0", dialect)
    agg = measure.agg
    if agg is Agg.SUM:
        return exp.Sum(this=value)
    if agg is Agg.COUNT:
        return exp.Count(this=value)
    if agg is Agg.COUNT_DISTINCT:
        return exp.Count(this=exp.Distinct(expressions=[value]))
    if agg is Agg.SUM_BOOLEAN:
        return exp.Sum(this=exp.cast(value, exp.DataType.Type.INT))
    if agg is Agg.AVERAGE:
        return exp.Avg(this=value)
    if agg is Agg.MIN:
        return exp.Min(this=value)
    if agg is Agg.MAX:
        return exp.Max(this=value)
    if agg is Agg.MEDIAN:
        return _percentile(value, 0.5, discrete=measure.use_discrete_percentile)
    if agg is Agg.PERCENTILE:
        return _percentile(value, measure.percentile or 0.5, discrete=measure.use_discrete_percentile)
    raise InvalidQuery(f"aggregation {agg.value!r} is not supported.")


def _percentile(value: exp.Expression, fraction: float, discrete: bool) -> exp.Expression:
    cls = exp.PercentileDisc if discrete else exp.PercentileCont
    return exp.WithinGroup(this=cls(this=exp.Literal.number(fraction)),
                           expression=exp.Order(expressions=[exp.Ordered(this=value)]))


def _metric_tree(expr: MetricExpr, dialect: str) -> exp.Expression:
    if isinstance(expr, MeasureRef):
        column = exp.column(expr.column, expr.node)
        if expr.fill_nulls_with is not None:
            return exp.func("coalesce", column, exp.Literal.number(expr.fill_nulls_with))
        return column
    if isinstance(expr, RatioExpr):
        return _safe_divide(_metric_tree(expr.numerator, dialect), _metric_tree(expr.denominator, dialect))
    if isinstance(expr, DerivedExpr):
        inputs = {name: _metric_tree(child, dialect) for name, child in expr.inputs}
        tree = _parse_expr(expr.expr, dialect).copy()
        missing = {c.name for c in tree.find_all(exp.Column)} - set(inputs)
        if missing:
            raise InvalidQuery(f"derived metric expression {expr.expr!r} names {sorted(missing)}, "
                               "which are not among its input metrics.")

        def null_safe(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Div):
                return _safe_divide(node.this, node.expression)
            return node

        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table and node.name in inputs:
                return exp.paren(inputs[node.name].copy(), copy=False)
            return node

        # Divisions first (only the expression's own), then the inputs go in.
        return exp.paren(tree.transform(null_safe).transform(swap), copy=False)
    raise TypeError(expr)


def _table(schema: str, table: str) -> exp.Table:
    return exp.table_(table, db=schema, quoted=True)


def _bucket(column: exp.Expression, grain: Grain) -> exp.Expression:
    """The first day of the bucket holding `column`, as a DATE (weeks start on Monday)."""
    return exp.cast(exp.TimestampTrunc(this=column, unit=exp.var(grain.value.upper())),
                    exp.DataType.Type.DATE)


def _safe_divide(numerator: exp.Expression, denominator: exp.Expression) -> exp.Expression:
    return exp.Div(
        this=exp.cast(numerator, exp.DataType.Type.DOUBLE),
        expression=exp.func("nullif", denominator, exp.Literal.number(0)),
    )


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _time_value(value: Any, item: GroupByItem) -> Any:
    """Filters on time items compare against dates (bucket starts) or timestamps."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value
    text = str(value)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFilter(f"filter on {item.name!r} needs a date (YYYY-MM-DD), got {text!r}.",
                            field=item.name) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if parsed.time() == dt.time(0):
        return parsed.date()
    return parsed

