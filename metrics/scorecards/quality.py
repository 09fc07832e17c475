"""The quality scorecard: each quality KPI per period, against the previous period and the
SLO governed in the metric's `meta.slo` in the dbt project."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from metrics.errors import InvalidQuery
from metrics.protocols import Engine
from metrics.scorecards.common import (
    PERIODS,
    Withheld,
    as_date,
    as_datetime,
    check_choice,
    data_days,
    next_period,
    period_start,
    platform_filter,
    platforms,
    previous_period,
    run_restricted,
)
from metrics.scorecards.slo import Slo, Status

#: KPI metrics of the scorecard; the first two can be scoped to a platform (the others have
#: no platform: incidents, tickets and feedback are not per platform).
PLATFORM_KPIS = ("crash_free_user_rate", "errors_per_1k_events")
GLOBAL_KPIS = ("tickets_per_1k_active_users", "nps", "csat")
SEVERITY_KPIS = ("incidents", "mttr_hours")
#: Count-like KPIs: a period without rows is 0, not missing.
ZERO_WHEN_EMPTY = ("incidents",)
MAX_PERIODS = 400
DEFAULT_PERIODS = 4


@dataclass(frozen=True)
class KpiPeriod:
    period_start: dt.date
    period_end: dt.date  # exclusive
    complete: bool
    value: float | None
    previous: float | None
    change: float | None
    relative_change: float | None
    status: Status
    target: float | None
    warn: float | None


@dataclass(frozen=True)
class Kpi:
    metric: str
    label: str
    severity: str | None
    platform_scoped: bool
    direction: str | None
    periods: tuple[KpiPeriod, ...]

    @property
    def current(self) -> KpiPeriod | None:
        return self.periods[-1] if self.periods else None


@dataclass(frozen=True)
class QualityScorecard:
    period: str
    start: dt.date
    end: dt.date
    platform: str | None
    kpis: tuple[Kpi, ...]
    # KPIs left out because the caller's row policy cannot restrict them.
    withheld: tuple[Withheld, ...] = ()


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def resolve_range(
    engine: Engine, period: str, start: dt.datetime | None, end: dt.datetime | None
) -> tuple[dt.date, dt.date, dt.date]:
    """Aligned start (a period's first day), end (exclusive) and the day after the data."""
    first, last = data_days(engine)
    data_end = last + dt.timedelta(days=1)
    end_day = as_date(end) if end is not None else data_end
    if end is not None and as_datetime(end) != as_datetime(end_day):
        end_day += dt.timedelta(days=1)  # a timestamp inside a day: keep that day
    if start is None:
        start_day = period_start(end_day - dt.timedelta(days=1), period)
        for _ in range(DEFAULT_PERIODS - 1):
            start_day = previous_period(start_day, period)
    else:
        start_day = period_start(as_date(start), period)
    if start_day >= end_day:
        raise InvalidQuery(f"'start' ({start_day}) must be before 'end' ({end_day}).", field="start")
    count, day = 0, start_day
    while day < end_day:
        day, count = next_period(day, period), count + 1
        if count > MAX_PERIODS:
            raise InvalidQuery(
                f"the range holds more than {MAX_PERIODS} {period}s; use a coarser period or a shorter range.",
                field="period",
            )
    return start_day, end_day, data_end


def quality_scorecard(
    engine: Engine,
    period: str = "week",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    platform: str | None = None,
) -> QualityScorecard:
    check_choice(period, PERIODS, "period")
    if platform is not None:
        check_choice(platform, platforms(engine), "platform")
    start_day, end_day, data_end = resolve_range(engine, period, start, end)
    query_start = as_datetime(previous_period(start_day, period))
    query_end = as_datetime(end_day)
    bucket = f"metric_time__{period}"

    def by_bucket(rows: list[dict[str, Any]], key: str = bucket) -> dict[Any, dict[str, Any]]:
        return {(as_date(r[key]),) + tuple(r[k] for k in r if k == "severity"): r for r in rows}

    withheld: list[Withheld] = []
    scoped = by_bucket(
        run_restricted(engine, PLATFORM_KPIS, withheld, [bucket], platform_filter(platform), query_start, query_end)
    )
    unscoped = by_bucket(
        run_restricted(engine, GLOBAL_KPIS + SEVERITY_KPIS, withheld, [bucket], (), query_start, query_end)
    )
    severities = run_restricted(engine, SEVERITY_KPIS, withheld, [bucket, "severity"], (), query_start, query_end)
    left_out = {w.metric for w in withheld}
    by_severity = {(as_date(r[bucket]), r["severity"]): r for r in severities}

    periods: list[tuple[dt.date, dt.date]] = []
    day = previous_period(start_day, period)
    while day < end_day:
        periods.append((day, next_period(day, period)))
        day = next_period(day, period)

    kpis: list[Kpi] = []
    manifest = engine.manifest.metrics

    def build(metric: str, values: dict[dt.date, float | None], severity: str | None, scoped_: bool) -> Kpi:
        definition = manifest[metric]
        slo = Slo.from_meta(metric, definition.meta)
        rows: list[KpiPeriod] = []
        for i, (p_start, p_end) in enumerate(periods[1:], start=1):
            value = values.get(p_start)
            previous = values.get(periods[i - 1][0])
            span_end = min(p_end, end_day)
            days = (span_end - p_start).days
            change = value - previous if value is not None and previous is not None else None
            relative = (value / previous - 1) if value is not None and previous else None
            if slo is None:
                status, target, warn = Status.NO_SLO, None, None
            else:
                status = slo.status(value, days, "severity" if severity else None, severity)
                thresholds = slo.thresholds(days, "severity" if severity else None, severity)
                target, warn = thresholds.target, thresholds.warn
            rows.append(
                KpiPeriod(
                    p_start,
                    span_end,
                    p_end <= end_day and p_end <= data_end,
                    value,
                    previous,
                    change,
                    relative,
                    status,
                    target,
                    warn,
                )
            )
        return Kpi(metric, definition.label, severity, scoped_, slo.direction.value if slo else None, tuple(rows))

    def series(source: dict, metric: str, zero: bool) -> dict[dt.date, float | None]:
        out = {}
        for p_start, _p_end in periods:
            row = source.get((p_start,))
            value = _number(row[metric]) if row is not None else None
            if value is None and zero and p_start < data_end:
                value = 0.0
            out[p_start] = value
        return out

    for metric in PLATFORM_KPIS:
        if metric not in left_out:
            kpis.append(build(metric, series(scoped, metric, False), None, True))
    for metric in SEVERITY_KPIS:
        if metric in left_out:
            continue
        kpis.append(build(metric, series(unscoped, metric, metric in ZERO_WHEN_EMPTY), None, False))
        slo = Slo.from_meta(metric, manifest[metric].meta)
        names = {s for (_, s) in by_severity if s is not None} | set(
            (slo.by_slice.get("severity") or {}) if slo else ()
        )
        for severity in sorted(names):
            values = {}
            for p_start, _ in periods:
                row = by_severity.get((p_start, severity))
                value = _number(row[metric]) if row is not None else None
                if value is None and metric in ZERO_WHEN_EMPTY and p_start < data_end:
                    value = 0.0
                values[p_start] = value
            kpis.append(build(metric, values, severity, False))
    for metric in GLOBAL_KPIS:
        if metric not in left_out:
            kpis.append(build(metric, series(unscoped, metric, False), None, False))
    return QualityScorecard(period, start_day, end_day, platform, tuple(kpis), tuple(withheld))
