"""Render a `QueryPlan` as SQL for one warehouse dialect: the only place metric SQL is made.

Every statement is a sqlglot expression tree. Values from the request become named bind
parameters (`$p0` in DuckDB, `%(p0)s` in PostgreSQL); `inline_sql` renders the same tree
with those values as properly quoted literals, for analysts to paste into an editor.

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
from metrics.semantic.graph import GroupByItem, ItemKind, SemanticGraph
from metrics.semantic.model import Agg, Grain, Measure
from metrics.sql.filters import parse_filter_template


@dataclass(frozen=True)
class RenderedQuery:
    """SQL with named parameters, plus the tree for re-rendering (inline, pretty)."""

    sql: str
    params: dict[str, Any]
    tree: exp.Expression
    dialect: str

    def inline_sql(self, pretty: bool = True) -> str:
        return inline(self.tree, self.params, self.dialect, pretty=pretty)


def inline(tree: exp.Expression, params: dict[str, Any], dialect: str, pretty: bool = True) -> str:
    """The statement with each bind parameter replaced by a quoted literal."""

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name in params:
            return literal(params[node.name])
        return node

    return tree.copy().transform(swap).sql(dialect=dialect, pretty=pretty)


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
    """Renders plans for one dialect (`duckdb`, `postgres`, `spark`)."""

    def __init__(self, graph: SemanticGraph, dialect: str = "duckdb") -> None:
        self.graph = graph
        self.dialect = dialect
        # The dbt project's own expressions are written in the warehouse's dialect.
        self.model_dialect = dialect

    def render(self, plan: QueryPlan) -> RenderedQuery:
        params: dict[str, Any] = {}
        ctes = [(node.alias, self._node(node, plan, params)) for node in plan.nodes]
        select = self._outer(plan, ctes)
        tree = select
        return RenderedQuery(tree.sql(dialect=self.dialect), params, tree, self.dialect)

    # -- one aggregate per node ----------------------------------------------------------

    def _node(self, node: AggregateNode, plan: QueryPlan, params: dict[str, Any]) -> exp.Select:
        home = self.graph.models[node.source.model]
        aliases: dict[tuple, str] = {(): "t0"}
        joins: list[tuple[str, exp.Expression, exp.Expression]] = []

        def alias_for(item: GroupByItem) -> str:
            path = item.path
            for depth in range(1, len(path) + 1):
                prefix = path[:depth]
                if prefix not in aliases:
                    step = prefix[-1]
                    left_alias = aliases[prefix[:-1]]
                    alias = f"t{len(aliases)}"
                    aliases[prefix] = alias
                    target = self.graph.models[step.model]
                    on = exp.EQ(
                        this=_column_expr(step.left_expr, left_alias, self.model_dialect),
                        expression=_column_expr(step.right_expr, alias, self.model_dialect),
                    )
                    joins.append((alias, _table(target.relation.schema, target.relation.table), on))
            return aliases[path]

        def item_expr(item: GroupByItem) -> exp.Expression:
            column = _column_expr(item.expr, alias_for(item), self.model_dialect)
            if item.kind in (ItemKind.TIME, ItemKind.METRIC_TIME):
                return _bucket(column, item.grain or Grain.DAY)
            return column

        select = exp.Select()
        group_exprs = []
        for group in node.group_by:
            expr = item_expr(group.item)
            group_exprs.append(expr)
            select = select.select(exp.alias_(expr, group.column, quoted=False), copy=False)
        for measure in node.measures:
            select = select.select(
                exp.alias_(self._aggregate(measure.measure), measure.column, quoted=False), copy=False)

        conditions: list[exp.Expression] = []
        time_dim = home.dimension(node.source.agg_time_dimension)
        start, end = plan.query.start, plan.query.end
        if time_dim is not None and (start or end):
            time_col = _column_expr(time_dim.expr, "t0", self.model_dialect)
            if start:
                conditions.append(exp.GTE(this=time_col.copy(), expression=_param(params, start)))
            if end:
                conditions.append(exp.LT(this=time_col.copy(), expression=_param(params, end)))
        for flt in node.filters:
            conditions.append(self._filter(item_expr(flt.item), flt.item, flt.filter, params))
        for template in node.template_filters:
            conditions.append(self._template_filter(template, node, item_expr, params))

        select = select.from_(exp.alias_(_table(home.relation.schema, home.relation.table), "t0",
                                         table=True), copy=False)
        for alias, table, on in joins:
            select = select.join(exp.alias_(table, alias, table=True), on=on, join_type="left", copy=False)
        if conditions:
            select = select.where(exp.and_(*conditions), copy=False)
        if group_exprs:
            select = select.group_by(*[e.copy() for e in group_exprs], copy=False)
        return select

    def _aggregate(self, measure: Measure) -> exp.Expression:
        value = _column_expr(measure.expr, "t0", self.model_dialect)
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
            return self._percentile(value, 0.5, discrete=measure.use_discrete_percentile)
        if agg is Agg.PERCENTILE:
            return self._percentile(value, measure.percentile or 0.5, discrete=measure.use_discrete_percentile)
        raise InvalidQuery(f"aggregation {agg.value!r} is not supported.")

    @staticmethod
    def _percentile(value: exp.Expression, fraction: float, discrete: bool) -> exp.Expression:
        cls = exp.PercentileDisc if discrete else exp.PercentileCont
        return exp.WithinGroup(
            this=cls(this=exp.Literal.number(fraction)),
            expression=exp.Order(expressions=[exp.Ordered(this=value)]),
        )

    def _filter(self, column: exp.Expression, item: GroupByItem, flt: Filter,
                params: dict[str, Any]) -> exp.Expression:
        is_time = item.kind in (ItemKind.TIME, ItemKind.METRIC_TIME)

        def value(v: Any) -> exp.Expression:
            return _param(params, _time_value(v, item) if is_time else v)

        op = flt.op
        if op is FilterOp.IS_NULL:
            return exp.Is(this=column, expression=exp.Null())
        if op is FilterOp.IS_NOT_NULL:
            return exp.Not(this=exp.Is(this=column, expression=exp.Null()))
        if op is FilterOp.IN:
            return exp.In(this=column, expressions=[value(v) for v in flt.values])
        if op is FilterOp.NOT_IN:
            return exp.Not(this=exp.In(this=column, expressions=[value(v) for v in flt.values]))
        comparison = {
            FilterOp.EQ: exp.EQ, FilterOp.NE: exp.NEQ, FilterOp.LT: exp.LT,
            FilterOp.LE: exp.LTE, FilterOp.GT: exp.GT, FilterOp.GE: exp.GTE,
        }[op]
        return comparison(this=column, expression=value(flt.value))

    def _template_filter(self, template: str, node: AggregateNode, item_expr,
                         params: dict[str, Any]) -> exp.Expression:
        parsed = parse_filter_template(template, self.model_dialect)
        columns = [
            item_expr(self.graph.resolve(
                node.source, ref, metric=", ".join(m.measure.name for m in node.measures),
                context=f"the filter {template!r} (measures of semantic model '{node.source.model}':"
                        f" {', '.join(m.measure.name for m in node.measures)})"))
            for ref in parsed.references
        ]

        def swap(n: exp.Expression) -> exp.Expression:
            if isinstance(n, exp.Column) and n.name.startswith("__ref_"):
                return columns[int(n.name.removeprefix("__ref_"))].copy()
            if isinstance(n, exp.Literal):
                # Values written in a filter string travel as bind parameters too.
                return _param(params, n.this if n.is_string else _number(n.this))
            return n

        return exp.paren(parsed.tree.copy().transform(swap), copy=False)

    # -- combining nodes into the answer ------------------------------------------------

    def _outer(self, plan: QueryPlan, ctes: list[tuple[str, exp.Select]]) -> exp.Select:
        group_columns = [f"g{i}" for i in range(len(plan.group_by))]
        select = exp.Select()
        for alias, cte in ctes:
            select = select.with_(alias, as_=cte, copy=False)
        if len(ctes) == 1:
            base = ctes[0][0]
            key_source = base
            select = select.from_(base, copy=False)
        elif group_columns:
            key_source = "keys"
            union: exp.Expression | None = None
            for alias, _ in ctes:
                part = exp.select(*group_columns).from_(alias)
                union = part if union is None else exp.union(union, part, distinct=True)
            select = select.with_("keys", as_=union, copy=False).from_("keys", copy=False)
            for alias, _ in ctes:
                on = exp.and_(*[
                    exp.NullSafeEQ(this=exp.column(c, "keys"), expression=exp.column(c, alias))
                    for c in group_columns
                ])
                select = select.join(alias, on=on, join_type="left", copy=False)
        else:
            key_source = ctes[0][0]
            select = select.from_(ctes[0][0], copy=False)
            for alias, _ in ctes[1:]:
                select = select.join(alias, join_type="cross", copy=False)

        for column, name in zip(group_columns, plan.group_by):
            select = select.select(exp.alias_(exp.column(column, key_source), name, quoted=True), copy=False)
        for metric in plan.metrics:
            select = select.select(exp.alias_(self._metric(metric.expr), metric.name, quoted=True), copy=False)
        outputs = {name: i + 1 for i, name in enumerate(plan.columns)}
        if plan.order_by:
            select = select.order_by(*[
                exp.Ordered(this=exp.Literal.number(outputs[o.name]), desc=o.descending,
                            nulls_first=False)
                for o in plan.order_by
            ], copy=False)
        if plan.limit is not None:
            select = select.limit(plan.limit, copy=False)
        return select

    def _metric(self, expr: MetricExpr) -> exp.Expression:
        if isinstance(expr, MeasureRef):
            column = exp.column(expr.column, expr.node)
            if expr.fill_nulls_with is not None:
                return exp.func("coalesce", column, exp.Literal.number(expr.fill_nulls_with))
            return column
        if isinstance(expr, RatioExpr):
            return _safe_divide(self._metric(expr.numerator), self._metric(expr.denominator))
        if isinstance(expr, DerivedExpr):
            inputs = {name: self._metric(child) for name, child in expr.inputs}
            tree = _parse_expr(expr.expr, self.model_dialect).copy()

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


def _param(params: dict[str, Any], value: Any) -> exp.Placeholder:
    name = f"p{len(params)}"
    params[name] = value
    return exp.Placeholder(this=name)


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
