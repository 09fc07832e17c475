"""Turn a `MetricQuery` into a `QueryPlan`: which measures to aggregate where, and how the
requested metrics are computed from them.

A plan has one `AggregateNode` per (semantic model, metric_time column, metric filters)
combination; each node aggregates its measures at the requested grain. Metrics are then
expressions over node columns (`MetricExpr`): a measure, a ratio of two metric expressions,
or a derived expression. The SQL stage renders this plan; nothing here writes SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from metrics.errors import InvalidQuery, UnknownMetric, UnknownSavedQuery, UnsupportedFeature, did_you_mean, nearest
from metrics.query.request import Filter, MetricQuery, OrderBy, WeekStart
from metrics.semantic.graph import GroupByItem, SemanticGraph, SourceKey
from metrics.semantic.model import (
    Agg,
    ConversionParams,
    Grain,
    Measure,
    Metric,
    MetricInput,
    MetricType,
    PeriodAgg,
    SavedQuery,
    Window,
)

#: Aggregations whose value over no rows is 0 (a count or a sum), not unknown.
_COUNTING_AGGS = (Agg.SUM, Agg.COUNT, Agg.COUNT_DISTINCT, Agg.SUM_BOOLEAN)


@dataclass(frozen=True)
class NodeMeasure:
    column: str
    measure: Measure


@dataclass(frozen=True)
class NodeGroupBy:
    column: str
    item: GroupByItem


@dataclass(frozen=True)
class NodeFilter:
    item: GroupByItem
    filter: Filter


@dataclass(frozen=True)
class Cumulative:
    """A cumulative metric's accumulation: a trailing window, to-date of a grain, or all time."""

    window: Window | None
    grain_to_date: Grain | None
    period_agg: PeriodAgg


@dataclass(frozen=True)
class AggregateNode:
    """One aggregation over one semantic model at the query's grain.

    `offset` shifts metric_time forward (a derived metric's input `offset_window`: the value
    shown at t is the one at t - offset); `offset_to_grain` shows at each bucket the value of
    the first day of the `offset_to_grain` period the bucket starts in (an input with
    `offset_to_grain: month`: the first of the month's value); `cumulative` accumulates daily
    values over a window.
    """

    alias: str
    source: SourceKey
    group_by: tuple[NodeGroupBy, ...]
    filters: tuple[NodeFilter, ...]
    template_filters: tuple[str, ...]
    measures: tuple[NodeMeasure, ...]
    offset: Window | None = None
    cumulative: Cumulative | None = None
    conversion: ConversionParams | None = None
    offset_to_grain: Grain | None = None


@dataclass(frozen=True)
class MeasureRef:
    node: str
    column: str
    fill_nulls_with: int | None = None
    join_to_timespine: bool = False


@dataclass(frozen=True)
class RatioExpr:
    numerator: MetricExpr
    denominator: MetricExpr


@dataclass(frozen=True)
class DerivedExpr:
    expr: str
    inputs: tuple[tuple[str, MetricExpr], ...]


MetricExpr = MeasureRef | RatioExpr | DerivedExpr


@dataclass(frozen=True)
class OutputMetric:
    name: str
    expr: MetricExpr


@dataclass(frozen=True)
class TimeSettings:
    """How timestamps become buckets: the zone they are read in (None: UTC) and week start."""

    timezone: str | None
    week_start: WeekStart


@dataclass(frozen=True)
class QueryPlan:
    query: MetricQuery
    nodes: tuple[AggregateNode, ...]
    group_by: tuple[str, ...]
    metrics: tuple[OutputMetric, ...]
    order_by: tuple[OrderBy, ...]
    limit: int | None
    # Explanation for analysts: per group-by name, what it resolved to in each node.
    resolutions: tuple[tuple[str, str, str], ...] = field(default=())

    @property
    def time(self) -> TimeSettings:
        return TimeSettings(self.query.timezone, self.query.week_start)

    @property
    def needs_time_spine(self) -> bool:
        """Whether some metric asks for every time bucket (`join_to_timespine`)."""
        return any(_joins_spine(m.expr) for m in self.metrics)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.group_by + tuple(m.name for m in self.metrics)


class Planner:
    """Plans queries against one semantic manifest; stateless between queries."""

    def __init__(self, graph: SemanticGraph) -> None:
        self.graph = graph
        self.metrics = graph.manifest.metrics

    def metric(self, name: str) -> Metric:
        metric = self.metrics.get(name)
        if metric is None:
            raise UnknownMetric(
                f"unknown metric {name!r}." + did_you_mean(name, self.metrics),
                metric=name,
                suggestions=_nearest_or_all(name, self.metrics),
            )
        return metric

    def saved_query(self, name: str) -> SavedQuery:
        saved = self.graph.manifest.saved_queries.get(name)
        if saved is None:
            raise UnknownSavedQuery(
                f"unknown saved query {name!r}." + did_you_mean(name, self.graph.manifest.saved_queries),
                saved_query=name,
                suggestions=sorted(self.graph.manifest.saved_queries),
            )
        return saved

    def measures_of(self, name: str, _seen: frozenset[str] = frozenset()) -> list[Measure]:
        """Every measure a metric reads, through ratios and derived metrics."""
        if name in _seen:
            raise InvalidQuery(f"metric {name!r} refers to itself.")
        metric = self.metric(name)
        if metric.type is MetricType.SIMPLE or metric.type is MetricType.CUMULATIVE:
            return [self._measure(metric, metric.measure.name)] if metric.measure else []
        if metric.type is MetricType.CONVERSION:
            # Sliced and filtered by the base events' dimensions only.
            return [self._measure(metric, metric.conversion.base_measure.name)] if metric.conversion else []
        out: list[Measure] = []
        for child in self._children(metric):
            out.extend(self.measures_of(child.name, _seen | {name}))
        return out

    def _children(self, metric: Metric) -> list[MetricInput]:
        if metric.type is MetricType.RATIO:
            return list(_ratio_inputs(metric))
        return list(metric.inputs)

    def _measure(self, metric: Metric, name: str) -> Measure:
        measure = self.graph.measures.get(name)
        if measure is None:
            raise InvalidQuery(f"metric {metric.name!r} reads measure {name!r}, which no semantic model defines.")
        return measure

    def plan(self, query: MetricQuery) -> QueryPlan:
        builder = _PlanBuilder(self, query)
        outputs = tuple(OutputMetric(name, builder.metric_expr(name, ())) for name in query.metrics)
        columns = set(query.group_by) | set(query.metrics)
        for order in query.order_by:
            if order.name not in columns:
                raise InvalidQuery(
                    f"cannot order by {order.name!r}: it is neither a selected metric nor a group-by."
                    + did_you_mean(order.name, columns),
                    field=order.name,
                    suggestions=sorted(columns),
                )
        order_by = query.order_by or tuple(OrderBy(name) for name in query.group_by)
        return QueryPlan(
            query=query,
            nodes=tuple(builder.nodes()),
            group_by=query.group_by,
            metrics=outputs,
            order_by=order_by,
            limit=query.limit,
            resolutions=tuple(builder.resolutions),
        )


#: What makes an aggregation node distinct: (source, filters, offset, cumulative, the metric or
#: measure with a node of its own, offset_to_grain), or for a conversion metric (source,
#: filters, offset, None, metric); the two shapes never compare equal.
_NodeKey = (
    tuple[SourceKey, tuple[str, ...], Window | None, Cumulative | None, str | None, Grain | None]
    | tuple[SourceKey, tuple[str, ...], Window | None, None, str]
)


@dataclass
class _NodeDraft:
    """An `AggregateNode` while the plan is built: measures are added as metrics need them."""

    alias: str
    source: SourceKey
    group_by: tuple[NodeGroupBy, ...]
    filters: tuple[NodeFilter, ...]
    template_filters: tuple[str, ...]
    measures: dict[str, NodeMeasure]
    offset: Window | None
    cumulative: Cumulative | None
    conversion: ConversionParams | None
    offset_to_grain: Grain | None = None


class _PlanBuilder:
    def __init__(self, planner: Planner, query: MetricQuery) -> None:
        self.planner = planner
        self.graph = planner.graph
        self.query = query
        self._nodes: dict[_NodeKey, _NodeDraft] = {}
        self.resolutions: list[tuple[str, str, str]] = []

    def metric_expr(
        self,
        name: str,
        filters: tuple[str, ...],
        _seen: frozenset[str] = frozenset(),
        offset: Window | None = None,
        to_grain: Grain | None = None,
    ) -> MetricExpr:
        if name in _seen:
            raise InvalidQuery(f"metric {name!r} refers to itself.")
        metric = self.planner.metric(name)
        if metric.unsupported:
            raise UnsupportedFeature(metric.unsupported + ".", metric=name)
        filters = filters + metric.filters
        seen = _seen | {name}
        if metric.type in (MetricType.SIMPLE, MetricType.CUMULATIVE):
            measure_input = metric.measure
            if measure_input is None:
                raise InvalidQuery(f"metric {name!r} names no measure to aggregate.", metric=name)
            measure = self.planner._measure(metric, measure_input.name)
            cumulative = None
            if metric.type is MetricType.CUMULATIVE:
                cumulative = Cumulative(metric.window, metric.grain_to_date, metric.period_agg)
                self._require_metric_time(metric)
                if to_grain is not None or offset is not None:
                    raise UnsupportedFeature(
                        f"an offset_window or offset_to_grain on the cumulative metric {name!r} (as a derived "
                        "metric's input) is not supported yet.",
                        metric=name,
                    )
            node, column = self._place(
                measure, filters + measure_input.filters, metric.name, offset, cumulative, to_grain
            )
            return MeasureRef(
                node, column, self._fill(measure, measure_input.fill_nulls_with), measure_input.join_to_timespine
            )
        if metric.type is MetricType.RATIO:
            numerator, denominator = _ratio_inputs(metric)
            return RatioExpr(
                self._input(numerator, filters, seen, offset, to_grain),
                self._input(denominator, filters, seen, offset, to_grain),
            )
        if metric.type is MetricType.DERIVED:
            inputs: list[tuple[str, MetricExpr]] = []
            for child in metric.inputs:
                child_offset = _add_offsets(offset, child.offset_window)
                child_grain = to_grain or child.offset_to_grain
                if child_offset is not None or child_grain is not None:
                    self._require_metric_time(metric)
                if child_offset is not None and child_grain is not None:
                    raise UnsupportedFeature(
                        f"metric {name!r} combines offset_window and offset_to_grain on {child.name!r}; "
                        "one or the other is supported, not both.",
                        metric=name,
                    )
                if to_grain is not None and child.offset_to_grain is not None and child.offset_to_grain != to_grain:
                    raise UnsupportedFeature(
                        f"metric {name!r} nests offset_to_grain {to_grain.value} and "
                        f"{child.offset_to_grain.value}; one offset_to_grain per input is supported.",
                        metric=name,
                    )
                inputs.append((child.alias or child.name, self._input(child, filters, seen, child_offset, child_grain)))
            return DerivedExpr(metric.expr or "", tuple(inputs))
        if metric.type is MetricType.CONVERSION and metric.conversion is not None:
            if to_grain is not None:
                raise UnsupportedFeature(
                    f"offset_to_grain on the conversion metric {name!r} is not supported yet.", metric=name
                )
            params = metric.conversion
            base = self.planner._measure(metric, params.base_measure.name)
            target = self.planner._measure(metric, params.conversion_measure.name)
            node = self._place_conversion(metric, params, base, target, filters, offset)
            opportunities = MeasureRef(node, "m0", self._fill(base, params.base_measure.fill_nulls_with))
            # No matched conversion in a bucket with base events means zero conversions.
            conversions = MeasureRef(node, "m1", 0)
            if params.calculation == "conversions":
                return conversions
            return RatioExpr(conversions, opportunities)
        raise InvalidQuery(f"metric {name!r} has type {metric.type.value!r}, which is not supported.", metric=name)

    def _fill(self, measure: Measure, fill_nulls_with: int | None) -> int | None:
        """Without a group-by the answer is one row even over no rows at all; a count or sum
        there is 0 (SQL's SUM says null), so every count means the same on every interface.
        Grouped answers keep MetricFlow's semantics: a group only some inputs have is null in
        the others."""
        if fill_nulls_with is None and not self.query.group_by and measure.agg in _COUNTING_AGGS:
            return 0
        return fill_nulls_with

    def _place_conversion(
        self,
        metric: Metric,
        params: ConversionParams,
        base: Measure,
        target: Measure,
        filters: tuple[str, ...],
        offset: Window | None,
    ) -> str:
        source = self.graph.source_of(base)
        if (
            self.graph.models[target.semantic_model].entity(params.entity) is None
            or self.graph.models[base.semantic_model].entity(params.entity) is None
        ):
            raise InvalidQuery(
                f"conversion metric {metric.name!r}: entity {params.entity!r} must be "
                "on both the base and the conversion semantic models.",
                metric=metric.name,
            )
        key: _NodeKey = (source, tuple(sorted(set(filters))), offset, None, metric.name)
        if key not in self._nodes:
            self._nodes[key] = _NodeDraft(
                alias=f"q{len(self._nodes)}",
                source=source,
                group_by=self._group_by(source, metric.name),
                filters=self._filters(source, metric.name),
                template_filters=key[1] + self.query.where_sql,
                measures={
                    base.name + ":base": NodeMeasure("m0", base),
                    target.name + ":conversion": NodeMeasure("m1", target),
                },
                offset=offset,
                cumulative=None,
                conversion=params,
            )
        return self._nodes[key].alias

    def _require_metric_time(self, metric: Metric) -> None:
        if not any(g == "metric_time" or g.startswith("metric_time__") for g in self.query.group_by):
            kind = "cumulative" if metric.type is MetricType.CUMULATIVE else "time-offset"
            raise InvalidQuery(
                f"metric {metric.name!r} is {kind}: group it by metric_time (e.g. 'metric_time__day').",
                metric=metric.name,
            )

    def _input(
        self,
        child: MetricInput,
        filters: tuple[str, ...],
        seen: frozenset[str],
        offset: Window | None,
        to_grain: Grain | None = None,
    ) -> MetricExpr:
        return self.metric_expr(child.name, filters + child.filters, seen, offset, to_grain)

    def _place(
        self,
        measure: Measure,
        filters: tuple[str, ...],
        metric: str,
        offset: Window | None = None,
        cumulative: Cumulative | None = None,
        to_grain: Grain | None = None,
    ) -> tuple[str, str]:
        source = self.graph.source_of(measure)
        # Cumulative and semi-additive measures each get a node of their own shape.
        own = metric if cumulative else measure.name if measure.non_additive else None
        key: _NodeKey = (source, tuple(sorted(set(filters))), offset, cumulative, own, to_grain)
        node = self._nodes.get(key)
        if node is None:
            alias = f"q{len(self._nodes)}"
            node = self._nodes[key] = _NodeDraft(
                alias=alias,
                source=source,
                group_by=self._group_by(source, metric),
                filters=self._filters(source, metric),
                template_filters=key[1] + self.query.where_sql,
                measures={},
                offset=offset,
                cumulative=cumulative,
                conversion=None,
                offset_to_grain=to_grain,
            )
        measures = node.measures
        if measure.name not in measures:
            measures[measure.name] = NodeMeasure(f"m{len(measures)}", measure)
        return node.alias, measures[measure.name].column

    def _group_by(self, source: SourceKey, metric: str) -> tuple[NodeGroupBy, ...]:
        out = []
        for index, name in enumerate(self.query.group_by):
            item = self.graph.resolve(source, name, metric=metric)
            self.resolutions.append((name, metric, item.name + _via(item)))
            out.append(NodeGroupBy(f"g{index}", item))
        return tuple(out)

    def _filters(self, source: SourceKey, metric: str) -> tuple[NodeFilter, ...]:
        out = []
        for flt in self.query.where:
            item = self.graph.resolve(source, flt.field, metric=metric)
            out.append(NodeFilter(item, flt))
        return tuple(out)

    def nodes(self) -> list[AggregateNode]:
        return [
            AggregateNode(
                alias=n.alias,
                source=n.source,
                group_by=n.group_by,
                filters=n.filters,
                template_filters=n.template_filters,
                measures=tuple(n.measures.values()),
                offset=n.offset,
                cumulative=n.cumulative,
                conversion=n.conversion,
                offset_to_grain=n.offset_to_grain,
            )
            for n in self._nodes.values()
        ]


def _ratio_inputs(metric: Metric) -> tuple[MetricInput, MetricInput]:
    if metric.numerator is None or metric.denominator is None:
        raise InvalidQuery(f"ratio metric {metric.name!r} needs a numerator and a denominator.", metric=metric.name)
    return metric.numerator, metric.denominator


def _joins_spine(expr: MetricExpr) -> bool:
    if isinstance(expr, MeasureRef):
        return expr.join_to_timespine
    if isinstance(expr, RatioExpr):
        return _joins_spine(expr.numerator) or _joins_spine(expr.denominator)
    return any(_joins_spine(child) for _, child in expr.inputs)


def _add_offsets(outer: Window | None, inner: Window | None) -> Window | None:
    """Offsets of nested derived metrics add up when they share a grain."""
    if outer is None or inner is None:
        return outer or inner
    if outer.grain is not inner.grain:
        raise InvalidQuery(f"cannot combine time offsets of {outer} and {inner}.")
    return Window(outer.count + inner.count, outer.grain)


def _via(item: GroupByItem) -> str:
    if not item.path:
        return f" (column {item.expr} of {item.model})"
    hops = " -> ".join(f"{step.model} on {step.entity}" for step in item.path)
    return f" (column {item.expr} of {item.model}, joined {hops})"


def _nearest_or_all(name: str, choices: Iterable[str]) -> list[str]:
    return nearest(name, choices) or sorted(choices)
