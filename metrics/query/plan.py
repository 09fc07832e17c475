"""Turn a `MetricQuery` into a `QueryPlan`: which measures to aggregate where, and how the
requested metrics are computed from them.

A plan has one `AggregateNode` per (semantic model, metric_time column, metric filters)
combination; each node aggregates its measures at the requested grain. Metrics are then
expressions over node columns (`MetricExpr`): a measure, a ratio of two metric expressions,
or a derived expression. The SQL stage renders this plan; nothing here writes SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from metrics.errors import InvalidQuery, UnknownMetric, UnknownSavedQuery, did_you_mean, nearest
from metrics.query.request import Filter, MetricQuery, OrderBy
from metrics.semantic.graph import GroupByItem, SemanticGraph, SourceKey
from metrics.semantic.model import Measure, Metric, MetricType


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
class AggregateNode:
    """One aggregation over one semantic model at the query's grain."""

    alias: str
    source: SourceKey
    group_by: tuple[NodeGroupBy, ...]
    filters: tuple[NodeFilter, ...]
    template_filters: tuple[str, ...]
    measures: tuple[NodeMeasure, ...]


@dataclass(frozen=True)
class MeasureRef:
    node: str
    column: str
    fill_nulls_with: int | None = None


@dataclass(frozen=True)
class RatioExpr:
    numerator: "MetricExpr"
    denominator: "MetricExpr"


@dataclass(frozen=True)
class DerivedExpr:
    expr: str
    inputs: tuple[tuple[str, "MetricExpr"], ...]


MetricExpr = MeasureRef | RatioExpr | DerivedExpr


@dataclass(frozen=True)
class OutputMetric:
    name: str
    expr: MetricExpr


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

    def saved_query(self, name: str):
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
        out: list[Measure] = []
        for child in self._children(metric):
            out.extend(self.measures_of(child.name, _seen | {name}))
        return out

    def _children(self, metric: Metric):
        if metric.type is MetricType.RATIO:
            return [metric.numerator, metric.denominator]
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


class _PlanBuilder:
    def __init__(self, planner: Planner, query: MetricQuery) -> None:
        self.planner = planner
        self.graph = planner.graph
        self.query = query
        self._nodes: dict[tuple[SourceKey, tuple[str, ...]], dict] = {}
        self.resolutions: list[tuple[str, str, str]] = []

    def metric_expr(self, name: str, filters: tuple[str, ...], _seen: frozenset[str] = frozenset()):
        if name in _seen:
            raise InvalidQuery(f"metric {name!r} refers to itself.")
        metric = self.planner.metric(name)
        filters = filters + metric.filters
        seen = _seen | {name}
        if metric.type is MetricType.SIMPLE:
            measure_input = metric.measure
            measure = self.planner._measure(metric, measure_input.name)
            node, column = self._place(measure, filters + measure_input.filters, metric.name)
            return MeasureRef(node, column, measure_input.fill_nulls_with)
        if metric.type is MetricType.RATIO:
            return RatioExpr(
                self._input(metric.numerator, filters, seen),
                self._input(metric.denominator, filters, seen),
            )
        if metric.type is MetricType.DERIVED:
            inputs = []
            for child in metric.inputs:
                if child.offset_window or child.offset_to_grain:
                    raise InvalidQuery(
                        f"metric {name!r} uses a time offset on {child.name!r}, which this version does not "
                        "compute yet; query its inputs directly.", metric=name)
                inputs.append((child.alias or child.name, self._input(child, filters, seen)))
            return DerivedExpr(metric.expr or "", tuple(inputs))
        raise InvalidQuery(
            f"metric {name!r} is a {metric.type.value} metric, which this version does not compute yet; "
            "simple, ratio and derived metrics are supported.", metric=name)

    def _input(self, child, filters: tuple[str, ...], seen: frozenset[str]):
        return self.metric_expr(child.name, filters + child.filters, seen)

    def _place(self, measure: Measure, filters: tuple[str, ...], metric: str) -> tuple[str, str]:
        source = self.graph.source_of(measure)
        key = (source, tuple(sorted(set(filters))))
        node = self._nodes.get(key)
        if node is None:
            alias = f"q{len(self._nodes)}"
            node = self._nodes[key] = {
                "alias": alias,
                "source": source,
                "group_by": self._group_by(source, metric),
                "filters": self._filters(source, metric),
                "template_filters": key[1] + self.query.where_sql,
                "measures": {},
            }
        measures = node["measures"]
        if measure.name not in measures:
            measures[measure.name] = NodeMeasure(f"m{len(measures)}", measure)
        return node["alias"], measures[measure.name].column

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
                alias=n["alias"],
                source=n["source"],
                group_by=n["group_by"],
                filters=n["filters"],
                template_filters=n["template_filters"],
                measures=tuple(n["measures"].values()),
            )
            for n in self._nodes.values()
        ]


def _via(item: GroupByItem) -> str:
    if not item.path:
        return f" (column {item.expr} of {item.model})"
    hops = " -> ".join(f"{step.model} on {step.entity}" for step in item.path)
    return f" (column {item.expr} of {item.model}, joined {hops})"


def _nearest_or_all(name: str, choices) -> list[str]:
    return nearest(name, choices) or sorted(choices)
