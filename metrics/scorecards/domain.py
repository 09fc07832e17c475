"""What values a metric can take and which way is good, read from its definition.

Domain (`metric_domain`): a metric's meta `domain: [low, high]` (either may be null) wins;
otherwise it is derived from the definition:

- a simple metric counting rows or users (`count`, `count_distinct`, `sum_boolean`, or `sum`
  of an expression that cannot be negative, such as `1` or `case when ... then 1 else 0 end`)
  is >= 0; any other sum, min or max is unbounded (revenue nets refunds);
- a ratio or derived metric is bounded by interval arithmetic over its expression, each input
  metric standing for its own domain (`1 - crashed_users / active_users` is <= 1; a ratio of
  counts is >= 0).

Direction (`metric_direction`): meta `slo.direction`, `direction`, `lower_is_better: true` or
`higher_is_better: true`, in that order; a metric that declares none is higher-is-better (users,
events, revenue: more is good). Counts of bad things (crashes, errors, tickets) declare
`direction: lower_is_better` in the dbt project.
"""

from __future__ import annotations

import math
from typing import Any

import sqlglot
from sqlglot import exp

from metrics.protocols import Engine
from metrics.scorecards.slo import Direction
from metrics.semantic.model import Agg, MetricType

Interval = tuple[float, float]
UNBOUNDED: Interval = (-math.inf, math.inf)
NONNEGATIVE: Interval = (0.0, math.inf)
_COUNTING = (Agg.COUNT, Agg.COUNT_DISTINCT, Agg.SUM_BOOLEAN)


def _meta_domain(meta: dict) -> Interval | None:
    raw = meta.get("domain")
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        return None
    low, high = raw
    return (-math.inf if low is None else float(low), math.inf if high is None else float(high))


def _add(a: Interval, b: Interval) -> Interval:
    return (a[0] + b[0], a[1] + b[1])


def _product(a: Interval, b: Interval) -> Interval:
    if a[0] >= 0 and b[0] >= 0:
        return (a[0] * b[0], a[1] * b[1])
    return UNBOUNDED


def _evaluate(node: exp.Expr, inputs: dict[str, Interval]) -> Interval:
    """Interval arithmetic over a derived metric's expression (unknown shapes: unbounded)."""
    if isinstance(node, exp.Paren):
        return _evaluate(node.this, inputs)
    if isinstance(node, exp.Literal) and not node.is_string:
        value = float(node.this)
        return (value, value)
    if isinstance(node, exp.Column):
        return inputs.get(node.name, UNBOUNDED)
    if isinstance(node, exp.Neg):
        low, high = _evaluate(node.this, inputs)
        return (-high, -low)
    if isinstance(node, exp.Case):
        # the values of its branches (a missing ELSE is null, which a sum skips)
        parts = [_evaluate(i.args["true"], inputs) for i in node.args.get("ifs") or []]
        if node.args.get("default") is not None:
            parts.append(_evaluate(node.args["default"], inputs))
        return (min(p[0] for p in parts), max(p[1] for p in parts)) if parts else UNBOUNDED
    if isinstance(node, exp.Coalesce):
        parts = [_evaluate(node.this, inputs)] + [_evaluate(e, inputs) for e in node.expressions]
        return (min(p[0] for p in parts), max(p[1] for p in parts))
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div)):
        left, right = _evaluate(node.left, inputs), _evaluate(node.right, inputs)
        if isinstance(node, exp.Add):
            return _add(left, right)
        if isinstance(node, exp.Sub):
            return _add(left, (-right[1], -right[0]))
        if isinstance(node, exp.Mul):
            return _product(left, right)
        # a quotient of non-negative values is non-negative (null on a zero denominator)
        return NONNEGATIVE if left[0] >= 0 and right[0] >= 0 else UNBOUNDED
    return UNBOUNDED


def _expression_domain(sql: str | None, inputs: dict[str, Interval] | None = None) -> Interval:
    """Interval arithmetic over a SQL expression (columns not in `inputs` are unbounded).

    >>> _expression_domain("case when severity = 'crash' then 1 else 0 end")
    (0.0, 1.0)
    >>> _expression_domain("1 - coalesce(a, 0) / b", {"a": NONNEGATIVE, "b": NONNEGATIVE})
    (-inf, 1.0)
    >>> _expression_domain("coalesce(revenue_usd, 0)")
    (-inf, inf)
    """
    if not sql:
        return UNBOUNDED
    try:
        return _evaluate(sqlglot.parse_one(sql), inputs or {})
    except sqlglot.errors.ParseError:
        return UNBOUNDED


def metric_domain(engine: Engine, name: str, _seen: frozenset[str] = frozenset()) -> Interval:
    """(low, high) bounds of the values metric `name` can take (infinite when unknown)."""
    metric = engine.manifest.metrics.get(name)
    if metric is None or name in _seen:
        return UNBOUNDED
    declared = _meta_domain(metric.meta)
    if declared is not None:
        return declared
    seen = _seen | {name}
    if metric.type is MetricType.SIMPLE and metric.measure is not None:
        measure = engine.graph.measures.get(metric.measure.name)
        if measure is None:
            return UNBOUNDED
        if measure.agg in _COUNTING:
            return NONNEGATIVE
        if measure.agg is Agg.SUM and _expression_domain(measure.expr)[0] >= 0:
            return NONNEGATIVE  # a sum of 1s, or of `case when ... then 1 else 0 end`
        return UNBOUNDED
    if metric.type is MetricType.RATIO and metric.numerator and metric.denominator:
        parts = (
            metric_domain(engine, metric.numerator.name, seen),
            metric_domain(engine, metric.denominator.name, seen),
        )
        return NONNEGATIVE if all(p[0] >= 0 for p in parts) else UNBOUNDED
    if metric.type is MetricType.DERIVED and metric.expr:
        inputs = {(i.alias or i.name): metric_domain(engine, i.name, seen) for i in metric.inputs}
        return _expression_domain(metric.expr, inputs)
    return UNBOUNDED


def metric_direction(meta: dict[str, Any]) -> Direction:
    """Which way is good for a metric, from its meta (see the module docstring)."""
    slo = meta.get("slo")
    for raw in ((slo or {}).get("direction") if isinstance(slo, dict) else None, meta.get("direction")):
        if raw in tuple(d.value for d in Direction):
            return Direction(raw)
    if meta.get("lower_is_better"):
        return Direction.LOWER_IS_BETTER
    return Direction.HIGHER_IS_BETTER


def clamp(value: float, domain: Interval) -> float:
    """`value` moved into `domain`.

    >>> clamp(-5.41, (0.0, math.inf)), clamp(1.2, (-math.inf, 1.0)), clamp(0.5, (0.0, 1.0))
    (0.0, 1.0, 0.5)
    """
    return min(max(value, domain[0]), domain[1])
