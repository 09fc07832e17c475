"""Anomaly alerts: the days the warehouse's daily check (dbt model fct_metric_checks, read
through fct_metric_alerts) flagged as outside their expected band."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from metrics.scorecards.common import check_choice
from metrics.scorecards.marts import Condition, read_mart
from metrics.scorecards.slo import Direction, Slo

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
    adverse: bool | None  # worse in the metric's SLO direction; None without an SLO


def watched_metrics(engine) -> list[str]:
    """Metrics the daily check covers (those with values in fct_metric_values_daily)."""
    rows = read_mart(engine, "fct_metric_values_daily", ["metric_name"], distinct=True)
    return sorted({r["metric_name"] for r in rows})


def alerts(engine, metric: str | None = None, since: dt.date | None = None,
           until: dt.date | None = None) -> list[Alert]:
    where: list[Condition] = []
    if metric is not None:
        check_choice(metric, watched_metrics(engine), "metric")
        where.append(Condition("metric_name", "=", metric))
    if since is not None:
        where.append(Condition("metric_date", ">=", since))
    if until is not None:
        where.append(Condition("metric_date", "<", until))
    rows = read_mart(engine, "fct_metric_alerts", COLUMNS, where, ["metric_date", "metric_name"])
    out = []
    for r in rows:
        definition = engine.manifest.metrics.get(r["metric_name"])
        slo = Slo.from_meta(r["metric_name"], definition.meta) if definition is not None else None
        adverse = None
        if slo is not None:
            adverse = (r["direction"] == "below") == (slo.direction is Direction.HIGHER_IS_BETTER)
        elif definition is not None and definition.meta.get("lower_is_better"):
            adverse = r["direction"] == "above"
        out.append(Alert(r["metric_name"], r["metric_date"], r["metric_value"], r["baseline_median"],
                         r["lower_bound"], r["upper_bound"], r["direction"], r["score"], adverse))
    return out
