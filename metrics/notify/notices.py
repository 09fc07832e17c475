"""Notices: one thing worth telling someone, with its numbers, computed through an engine (a
`RestrictedEngine` for a destination bound to a token's row policy).

Each notice has a `subject` (what it is about: `anomaly_alerts:tickets`) and a `state` (what is
true of it now: the newest alert day). A notice whose subject and state were already delivered
to a destination is not sent again, so a rebuild with no change sends nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from metrics.protocols import Engine
from metrics.query.request import MetricQuery
from metrics.scorecards.alerts import alerts
from metrics.scorecards.common import as_date, next_period, period_start, previous_period
from metrics.scorecards.quality import quality_scorecard
from metrics.scorecards.slo import Status

#: Alerts on days older than this, counted back from the newest alert day in the data, are
#: history rather than news.
DEFAULT_LOOKBACK_DAYS = 7
#: At most this many alert days are listed in one notice (the newest).
MAX_ALERT_DAYS = 5


@dataclass(frozen=True)
class Figure:
    """One number of a notice and what it is compared with."""

    metric: str
    label: str
    period: str  # the day or period start it is about (ISO)
    value: float | None
    compared_to: str  # "expected" | "previous_period" | "target" ...
    comparison: float | None
    change: float | None = None
    relative_change: float | None = None
    status: str | None = None  # alert direction, SLO status
    lower_bound: float | None = None
    upper_bound: float | None = None


@dataclass(frozen=True)
class Notice:
    kind: str  # anomaly_alerts | slo_status | digest
    subject: str
    state: str
    title: str
    summary: str
    figures: tuple[Figure, ...]
    link: str  # a path of the HTTP API, e.g. /v1/alerts?metric=tickets


def anomaly_notices(engine: Engine, metrics: tuple[str, ...] = (), lookback_days: int = DEFAULT_LOOKBACK_DAYS,
                    adverse_only: bool = False) -> list[Notice]:
    """One notice per metric with alerts in the last `lookback_days` days of alerts."""
    found = alerts(engine)
    if not found:
        return []
    newest_day = max(a.date for a in found)
    since = newest_day - dt.timedelta(days=lookback_days - 1)
    notices = []
    for metric in sorted({a.metric for a in found}):
        if metrics and metric not in metrics:
            continue
        recent = [a for a in found if a.metric == metric and a.date >= since and (not adverse_only or a.adverse)]
        if not recent:
            continue
        recent.sort(key=lambda a: a.date, reverse=True)
        newest = recent[0]
        label = engine.manifest.metrics[metric].label if metric in engine.manifest.metrics else metric
        days = len(recent)
        title = (f"{label}: {_number(newest.value)} on {newest.date.isoformat()} is {newest.direction} its expected band "
                 f"({_number(newest.lower_bound)} to {_number(newest.upper_bound)}; expected {_number(newest.expected)})")
        summary = (f"{days} anomalous day{'s' if days > 1 else ''} for {metric} since {since.isoformat()}"
                   + ("" if newest.adverse is None else ("; worse than expected" if newest.adverse else
                                                         "; better than expected")) + ".")
        figures = tuple(Figure(metric, label, a.date.isoformat(), a.value, "expected", a.expected,
                               a.value - a.expected, (a.value / a.expected - 1) if a.expected else None,
                               a.direction, a.lower_bound, a.upper_bound) for a in recent[:MAX_ALERT_DAYS])
        notices.append(Notice("anomaly_alerts", f"anomaly_alerts:{metric}",
                              f"{newest.date.isoformat()}:{newest.direction}", title, summary, figures,
                              f"/v1/alerts?metric={metric}"))
    return notices


def slo_notices(engine: Engine, metrics: tuple[str, ...] = (), statuses: tuple[str, ...] = ("warn", "breach"),
                period: str = "week") -> list[Notice]:
    """One notice per quality KPI whose last complete period is in one of `statuses`."""
    card = quality_scorecard(engine, period)
    notices = []
    for kpi in card.kpis:
        if kpi.severity is not None or (metrics and kpi.metric not in metrics):
            continue
        complete = [p for p in kpi.periods if p.complete]
        if not complete or complete[-1].status.value not in statuses:
            continue
        p = complete[-1]
        bound = p.warn if p.status is Status.BREACH else p.target
        title = (f"{kpi.label}: {p.status.value.upper()} for the {period} of {p.period_start.isoformat()}: "
                 f"{_number(p.value)} against a target of {_number(p.target)} (warn at {_number(p.warn)})")
        summary = (f"{kpi.metric} was {_number(p.value)} in the {period} starting {p.period_start.isoformat()}"
                   + (f", {_number(p.previous)} the {period} before" if p.previous is not None else "") + ".")
        figures = (Figure(kpi.metric, kpi.label, p.period_start.isoformat(), p.value, "previous_period", p.previous,
                          p.change, p.relative_change, p.status.value, None, bound),)
        notices.append(Notice("slo_status", f"slo_status:{kpi.metric}",
                              f"{period}:{p.period_start.isoformat()}:{p.status.value}", title, summary, figures,
                              f"/v1/quality?period={period}"))
    return notices


def digest_notice(engine: Engine, name: str, metrics: tuple[str, ...], period: str = "week") -> Notice | None:
    """The metrics' last complete period against the one before (None before two periods of data)."""
    grain = f"metric_time__{period}"
    result = engine.query(MetricQuery(metrics=tuple(metrics), group_by=(grain,)))
    newest = result.freshness.newest_metric_time
    if newest is None:
        return None
    data_end = as_date(newest) + dt.timedelta(days=1)
    # the newest period that is complete: it ends on or before the day after the data
    current = period_start(data_end - dt.timedelta(days=1), period)
    if next_period(current, period) > data_end:
        current = previous_period(current, period)
    before = previous_period(current, period)
    rows = {as_date(r[0]): r for r in result.rows if r[0] is not None}
    figures = []
    for i, metric in enumerate(metrics, start=1):
        value = rows.get(current, (None,) * (len(metrics) + 1))[i]
        previous = rows.get(before, (None,) * (len(metrics) + 1))[i]
        value = None if value is None else float(value)
        previous = None if previous is None else float(previous)
        change = value - previous if value is not None and previous is not None else None
        relative = value / previous - 1 if value is not None and previous else None
        label = engine.manifest.metrics[metric].label
        figures.append(Figure(metric, label, current.isoformat(), value, "previous_period", previous, change, relative))
    if all(f.value is None for f in figures):
        return None
    title = f"{name}: the {period} of {current.isoformat()}"
    summary = "; ".join(f"{f.label} {_number(f.value)} ({_signed(f.relative_change)} vs previous {period})"
                        for f in figures)
    return Notice("digest", f"digest:{name}", f"{period}:{current.isoformat()}", title, summary, tuple(figures),
                  f"/v1/query?metrics={','.join(metrics)}&group_by={grain}")


def _number(value: float | None) -> str:
    """A number as a person reads it in a message.

    >>> _number(12007.65), _number(24.848), _number(0.99337), _number(None)
    ('12,008', '24.8', '0.993', 'n/a')
    """
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def _signed(relative: float | None) -> str:
    """A relative change as a signed percentage.

    >>> _signed(0.1234), _signed(-0.05), _signed(None)
    ('+12.3%', '-5.0%', 'n/a')
    """
    return "n/a" if relative is None else f"{relative * 100:+.1f}%"


__all__ = ["Figure", "Notice", "anomaly_notices", "digest_notice", "slo_notices"]
