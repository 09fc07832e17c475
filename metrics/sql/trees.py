"""SQL tree helpers shared by every renderer of metric SQL (`render`, `rollups`, `offsets`,
`experiments`, `metric_values`, `marts`).

They build sqlglot expression trees (aggregates, percentiles, ratio and derived formulas,
null-safe division, table references), bucket and shift time (truncation to a grain, week
start, time zone, offsets), lay rendered fragments out as a SELECT, and turn bind parameters
back into literals. None of them knows about plans or the statement's shape; that stays in
`metrics.sql.render.Renderer`, so anything that writes SQL for a warehouse can reuse them
without importing the renderer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp

from metrics.errors import InternalError, InvalidFilter, InvalidQuery
from metrics.query.plan import DerivedExpr, MeasureRef, MetricExpr, RatioExpr
from metrics.query.request import WeekStart
from metrics.semantic.graph import GroupByItem
from metrics.semantic.model import Agg, Dimension, Entity, Grain, Measure, SemanticModel, Window


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
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.name in params:
            return literal(params[node.name])
        return node

    return sqlglot.parse_one(sql, read=dialect).transform(swap).sql(dialect=dialect, pretty=pretty)


def literal(value: Any) -> exp.Expr:
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    return exp.convert(value)


@lru_cache(maxsize=4096)
def parse_expr(text: str, dialect: str) -> exp.Expr:
    return sqlglot.parse_one(text, read=dialect)


def column_expr(text: str, table_alias: str, dialect: str) -> exp.Expr:
    """A semantic model's column expression with its bare columns qualified by the table alias.

    >>> column_expr("case when revenue_usd > 0 then user_id end", "t0", "duckdb").sql()
    'CASE WHEN t0.revenue_usd > 0 THEN t0.user_id END'
    """
    tree = parse_expr(text, dialect).copy()
    for column in tree.find_all(exp.Column):
        if not column.table:
            column.set("table", exp.to_identifier(table_alias))
    return tree


def select_statement(
    columns: list[str],
    source: str,
    joins: list[str],
    conditions: list[str],
    group: list[str] | None = None,
    distinct: bool = False,
) -> str:
    """Lay rendered fragments out as one SELECT statement."""
    sql = f"SELECT {'DISTINCT ' if distinct else ''}{', '.join(columns)} FROM {source}"
    if joins:
        sql += " " + " ".join(joins)
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if group:
        sql += " GROUP BY " + ", ".join(group)
    return sql


def never_null(tree: exp.Expr) -> bool:
    """Whether a measure's argument is non-null on every row: a literal (`1`), or a CASE whose
    every branch and ELSE is one (`case when severity = 'crash' then 1 else 0 end`)."""
    if isinstance(tree, exp.Paren):
        return never_null(tree.this)
    if isinstance(tree, exp.Literal) or isinstance(tree, exp.Boolean) or isinstance(tree, exp.Star):
        return True
    if isinstance(tree, exp.Coalesce):  # coalesce(revenue_usd, 0)
        return any(never_null(part) for part in [tree.this, *tree.expressions])
    if isinstance(tree, exp.Case):
        default = tree.args.get("default")
        return (
            default is not None
            and never_null(default)
            and all(never_null(branch.args["true"]) for branch in tree.args.get("ifs") or [])
        )
    return False


def aggregate_tree(measure: Measure, dialect: str, value: exp.Expr | None = None) -> exp.Expr:
    """The measure's aggregate over its own expression, or over `value` when given (a column
    an earlier step already computed)."""
    value = value if value is not None else column_expr(measure.expr, "t0", dialect)
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
        return percentile(value, 0.5, discrete=measure.use_discrete_percentile, dialect=dialect)
    if agg is Agg.PERCENTILE:
        return percentile(value, measure.percentile or 0.5, discrete=measure.use_discrete_percentile, dialect=dialect)
    raise InvalidQuery(f"aggregation {agg.value!r} is not supported.")


def percentile(value: exp.Expr, fraction: float, discrete: bool, dialect: str = "duckdb") -> exp.Expr:
    """The exact percentile, `PERCENTILE_CONT(f) WITHIN GROUP (ORDER BY value)` (or `_DISC`).

    sqlglot writes the ordered-set form as `PERCENTILE_APPROX` for Spark, an estimate; Spark
    3.4+ runs the exact ordered-set aggregates under their own names, so those are kept.

    >>> percentile(exp.column("x"), 0.9, False, "spark").sql("spark")
    'PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY x NULLS LAST)'
    """
    if dialect == "spark":
        function: exp.Expr = exp.Anonymous(
            this="PERCENTILE_DISC" if discrete else "PERCENTILE_CONT", expressions=[exp.Literal.number(fraction)]
        )
    else:
        function = (exp.PercentileDisc if discrete else exp.PercentileCont)(this=exp.Literal.number(fraction))
    return exp.WithinGroup(this=function, expression=exp.Order(expressions=[exp.Ordered(this=value)]))


def metric_tree(expr: MetricExpr, dialect: str) -> exp.Expr:
    if isinstance(expr, MeasureRef):
        column = exp.column(expr.column, expr.node)
        if expr.fill_nulls_with is not None:
            return exp.func("coalesce", column, exp.Literal.number(expr.fill_nulls_with))
        return column
    if isinstance(expr, RatioExpr):
        return safe_divide(metric_tree(expr.numerator, dialect), metric_tree(expr.denominator, dialect))
    if isinstance(expr, DerivedExpr):
        inputs = {name: metric_tree(child, dialect) for name, child in expr.inputs}
        tree = parse_expr(expr.expr, dialect).copy()
        missing = {c.name for c in tree.find_all(exp.Column)} - set(inputs)
        if missing:
            raise InvalidQuery(
                f"derived metric expression {expr.expr!r} names {sorted(missing)}, "
                "which are not among its input metrics."
            )

        def null_safe(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Div):
                return safe_divide(node.this, node.expression)
            return node

        def swap(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and not node.table and node.name in inputs:
                return exp.paren(inputs[node.name].copy(), copy=False)
            return node

        # Divisions first (only the expression's own), then the inputs go in.
        return exp.paren(tree.transform(null_safe).transform(swap), copy=False)
    raise TypeError(expr)


def table_expr(schema: str, table: str) -> exp.Table:
    return exp.table_(table, db=schema, quoted=True)


def time_bucket(column: exp.Expr, grain: Grain, week_start: WeekStart = WeekStart.MONDAY) -> exp.Expr:
    """The first day of the bucket holding `column`, as a DATE (ISO weeks start on Monday;
    Sunday weeks are Monday weeks of the next day, moved back a day). The one SQL form of the
    rule; `metrics.time_buckets.truncate` is its Python form, and the SQL endpoint reads
    clients' Sunday weeks written this way (`api.sql_endpoint.semantic_sql._sunday_week_of`)."""
    if grain is Grain.WEEK and week_start is WeekStart.SUNDAY:
        one_day = interval(Window(1, Grain.DAY))
        monday = exp.TimestampTrunc(this=exp.Add(this=column, expression=one_day), unit=exp.var("WEEK"))
        return exp.cast(exp.Sub(this=monday, expression=one_day.copy()), exp.DataType.Type.DATE)
    return exp.cast(exp.TimestampTrunc(this=column, unit=exp.var(grain.value.upper())), exp.DataType.Type.DATE)


def shifts_whole_buckets(offset: Window, grain: Grain) -> bool:
    """Whether shifting every timestamp by `offset` moves each `grain` bucket as a whole
    (a fixed number of days at day grain, whole weeks at week grain)."""
    if offset.grain is Grain.DAY or offset.grain is Grain.WEEK:
        return grain is Grain.DAY or (grain is Grain.WEEK and offset.grain is Grain.WEEK)
    return False


def localize(column: exp.Expr, timezone: str | None) -> exp.Expr:
    """A naive UTC timestamp as naive wall-clock time in `timezone` (DST-aware)."""
    if timezone is None:
        return column
    as_utc = exp.AtTimeZone(this=column, zone=exp.Literal.string("UTC"))
    return exp.AtTimeZone(this=as_utc, zone=exp.Literal.string(timezone))


def interval(window: Window) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string(str(window.count)), unit=exp.var(window.grain.value.upper()))


def shift(value: dt.datetime, window: Window, sign: int) -> dt.datetime:
    """`value` moved by `sign * window` (calendar months clamp to the month's last day)."""
    count = sign * window.count
    if window.grain is Grain.DAY:
        return value + dt.timedelta(days=count)
    if window.grain is Grain.WEEK:
        return value + dt.timedelta(weeks=count)
    months = count * {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}[window.grain]
    index = value.year * 12 + value.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return value.replace(year=year, month=month, day=min(value.day, last))


def time_dimension(model: SemanticModel, name: str) -> Dimension:
    """A measure's aggregation time dimension (the graph only keeps measures whose model has it)."""
    found = model.dimension(name)
    if found is None:
        raise InternalError(f"semantic model {model.name!r} has no time dimension {name!r}.")
    return found


def model_entity(model: SemanticModel, name: str) -> Entity:
    """A conversion metric's entity (the plan checked both models have it)."""
    found = model.entity(name)
    if found is None:
        raise InternalError(f"semantic model {model.name!r} has no entity {name!r}.")
    return found


def constant_property(model: SemanticModel, name: str) -> str:
    """A conversion metric's constant property: a dimension or entity of its semantic model."""
    found = model.property_expr(name)
    if found is None:
        raise InvalidQuery(
            f"constant property {name!r} is neither a dimension nor an entity of semantic model {model.name!r}."
        )
    return found


def safe_divide(numerator: exp.Expr, denominator: exp.Expr) -> exp.Expr:
    return exp.Div(
        this=exp.cast(numerator, exp.DataType.Type.DOUBLE),
        expression=exp.func("nullif", denominator, exp.Literal.number(0)),
    )


def number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def time_value(value: Any, item: GroupByItem) -> Any:
    """Filters on time items compare against dates (bucket starts) or timestamps."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value
    text = str(value)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFilter(
            f"filter on {item.name!r} needs a date (YYYY-MM-DD), got {text!r}.", field=item.name
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    if parsed.time() == dt.time(0):
        return parsed.date()
    return parsed
