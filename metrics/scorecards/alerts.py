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
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from metrics.errors import UnknownMetric, did_you_mean, nearest
from metrics.protocols import Engine
from metrics.query.request import MetricQuery
from metrics.scorecards.common import as_date, check_range, data_days
from metrics.scorecards.domain import UNBOUNDED, clamp, metric_direction, metric_domain
from metrics.scorecards.marts import Condition, read_mart
from metrics.scorecards.slo import Direction
from metrics.semantic.model import MetricType
from metrics.sql.metric_values import WATCHED_METRICS

# The daily check's settings: the dbt vars of fct_metric_checks at their defaults.
BASELINE_WEEKS = 4  # anomaly_baseline_weeks
MIN_BASELINE_WEEKS = 3  # anomaly_min_baseline_weeks
THRESHOLD = 5.0  # anomaly_threshold
RELATIVE_FLOOR = 0.1  # anomaly_relative_floor
#: Counts whose band is at least sqrt(median) wide (the check's Poisson floor).
POISSON_FLOOR_METRICS = frozenset(
    {"active_users", "events", "sessions", "feature_users", "new_users", "crashes", "errors", "tickets"}
)

COLUMNS = [
    "metric_name",
    "metric_date",
    "metric_value",
    "baseline_median",
    "lower_bound",
    "upper_bound",
    "direction",
    "score",
]


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


def alerts(
    engine: Engine, metric: str | None = None, since: dt.date | None = None, until: dt.date | None = None
) -> list[Alert]:
    check_range(since, until, "since", "until")
    where: list[Condition] = []
    if metric is not None:
        watched = watched_metrics(engine)
        if metric not in watched:
            # the same error as an unknown metric on any other route (422 unknown_metric)
            raise UnknownMetric(
                f"unknown metric {metric!r} for alerts; the daily check watches "
                f"{', '.join(repr(m) for m in watched)}." + did_you_mean(metric, watched),
                field="metric",
                metric=metric,
                suggestions=nearest(metric, watched) or watched,
            )
        where.append(Condition("metric_name", "=", metric))
    if since is not None:
        where.append(Condition("metric_date", ">=", since))
    if until is not None:
        where.append(Condition("metric_date", "<", until))
    rows = read_mart(engine, "fct_metric_alerts", COLUMNS, where, ["metric_date", "metric_name"])
    return [_alert(engine, r) for r in rows]


def _alert(engine, r: dict) -> Alert:
    definition = engine.manifest.metrics.get(r["metric_name"])
    meta = definition.meta if definition is not None else {}
    domain = metric_domain(engine, r["metric_name"]) if definition is not None else UNBOUNDED
    adverse = (r["direction"] == "below") == (metric_direction(meta) is Direction.HIGHER_IS_BETTER)
    return Alert(
        r["metric_name"],
        r["metric_date"],
        r["metric_value"],
        r["baseline_median"],
        clamp(r["lower_bound"], domain),
        clamp(r["upper_bound"], domain),
        r["direction"],
        r["score"],
        adverse,
    )


def checked_alerts(engine, metrics: Iterable[str] = ()) -> list[Alert]:
    """The daily check of `fct_metric_checks` run over the metrics' daily values as `engine`
    answers them: for a caller under a row policy, which cannot read the warehouse's check (its
    marts have no user column), the same band over the caller's own rows.

    Same rule as the dbt model (with its default vars): each day against the same weekday of the
    previous BASELINE_WEEKS weeks (at least MIN_BASELINE_WEEKS), band = median +/- THRESHOLD x
    max(1.4826 x MAD, RELATIVE_FLOOR x |median|, sqrt(max(median, 1)) for counts); a simple
    metric's day without rows is 0 (over the days with events), a ratio's null day has no value.
    """
    names = [m for m in (tuple(metrics) or WATCHED_METRICS) if m in engine.manifest.metrics]
    if not names:
        return []
    first, last = data_days(engine)
    result = engine.query(MetricQuery(metrics=tuple(names), group_by=("metric_time__day",)))
    by_day = {as_date(r[0]): r[1:] for r in result.rows if r[0] is not None}
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    out = []
    for i, name in enumerate(names):
        simple = engine.manifest.metrics[name].type is MetricType.SIMPLE
        values: dict[dt.date, float] = {}
        for day in days:
            value = by_day.get(day, (None,) * len(names))[i]
            if value is not None or simple:
                values[day] = float(value or 0)
        for day, value in values.items():
            baseline = [
                values[b] for b in (day - dt.timedelta(days=7 * k) for k in range(1, BASELINE_WEEKS + 1)) if b in values
            ]
            if len(baseline) < MIN_BASELINE_WEEKS:
                continue
            median = statistics.median(baseline)
            mad = statistics.median(abs(b - median) for b in baseline)
            half = THRESHOLD * max(
                1.4826 * mad,
                RELATIVE_FLOOR * abs(median),
                math.sqrt(max(median, 1)) if name in POISSON_FLOOR_METRICS else 0.0,
            )
            if median - half <= value <= median + half:
                continue
            out.append(
                _alert(
                    engine,
                    {
                        "metric_name": name,
                        "metric_date": day,
                        "metric_value": value,
                        "baseline_median": median,
                        "lower_bound": median - half,
                        "upper_bound": median + half,
                        "direction": "above" if value > median + half else "below",
                        "score": (value - median) / half if half else None,
                    },
                )
            )
    return sorted(out, key=lambda a: (a.date, a.metric))
