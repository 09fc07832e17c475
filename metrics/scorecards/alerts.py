"""Anomaly alerts: the days the warehouse's daily check (dbt model fct_metric_checks, read
through fct_metric_alerts) flagged as outside their expected band.

The band is served inside the metric's domain (`metrics.scorecards.domain`): a count's lower
edge is never below 0, a rate's edges stay within its bounds. Clamping never changes which
days are flagged: a value inside the domain cannot be beyond an edge that lies outside it.
`adverse` says whether the move is in the metric's bad direction (from its meta; default
higher-is-better), so it is set on every alert.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from metrics.errors import UnknownMetric, did_you_mean, nearest
from metrics.protocols import Engine
from metrics.scorecards.common import check_range
from metrics.scorecards.domain import UNBOUNDED, clamp, metric_direction, metric_domain
from metrics.scorecards.marts import Condition, read_mart
from metrics.scorecards.slo import Direction

COLUMNS = ["metric_name", "metric_date", "metric_value", "baseline_median", "lower_bound", "upper_bound",
           "direction", "score"]


@dataclass(frozen=True)
class Alert:
    metric: str
    date: dt.date
    value: float
    expected: float
    lower_bound: float
    upper_bound: float
    direction: str  # above | below
    score: float
    adverse: bool  # a move in the metric's bad direction (meta direction; default higher is better)


def watched_metrics(engine: Engine) -> list[str]:
    """Metrics the daily check covers (those with values in fct_metric_values_daily)."""
    rows = read_mart(engine, "fct_metric_values_daily", ["metric_name"], distinct=True)
    return sorted({r["metric_name"] for r in rows})


def alerts(engine: Engine, metric: str | None = None, since: dt.date | None = None,
           until: dt.date | None = None) -> list[Alert]:
    check_range(since, until, "since", "until")
    where: list[Condition] = []
    if metric is not None:
        watched = watched_metrics(engine)
        if metric not in watched:
            # the same error as an unknown metric on any other route (422 unknown_metric)
            raise UnknownMetric(f"unknown metric {metric!r} for alerts; the daily check watches "
                                f"{', '.join(repr(m) for m in watched)}." + did_you_mean(metric, watched),
                                field="metric", metric=metric, suggestions=nearest(metric, watched) or watched)
        where.append(Condition("metric_name", "=", metric))
    if since is not None:
        where.append(Condition("metric_date", ">=", since))
    if until is not None:
        where.append(Condition("metric_date", "<", until))
    rows = read_mart(engine, "fct_metric_alerts", COLUMNS, where, ["metric_date", "metric_name"])
    out = []
    for r in rows:
        definition = engine.manifest.metrics.get(r["metric_name"])
        meta = definition.meta if definition is not None else {}
        domain = metric_domain(engine, r["metric_name"]) if definition is not None else UNBOUNDED
        adverse = (r["direction"] == "below") == (metric_direction(meta) is Direction.HIGHER_IS_BETTER)
        out.append(Alert(r["metric_name"], r["metric_date"], r["metric_value"], r["baseline_median"],
                         clamp(r["lower_bound"], domain), clamp(r["upper_bound"], domain), r["direction"],
                         r["score"], adverse))
    return out
