"""Small pieces the scorecards share: periods, data range, platforms, metric queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from metrics.errors import InvalidQuery, NotFound, nearest
from metrics.policy import PolicyDenied
from metrics.protocols import Engine
from metrics.query.request import Filter, FilterOp, MetricQuery
from metrics.time_buckets import week_floor

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")


def period_start(day: dt.date, period: str) -> dt.date:
    """First day of the period holding `day` (weeks are ISO, Monday start).

    >>> period_start(dt.date(2026, 2, 19), "week"), period_start(dt.date(2026, 2, 19), "month")
    (datetime.date(2026, 2, 16), datetime.date(2026, 2, 1))
    """
    if period == "day":
        return day
    if period == "week":
        return week_floor(day)
    if period == "month":
        return day.replace(day=1)
    raise InvalidQuery(
        f"unknown period {period!r}; valid periods are {', '.join(PERIODS)}.",
        field="period",
        suggestions=nearest(period, PERIODS) or list(PERIODS),
    )


def check_range(start, end, start_field: str = "start", end_field: str = "end") -> None:
    """Refuse a range whose (exclusive) end is not after its start, as every route does.

    >>> check_range(dt.date(2026, 3, 1), dt.date(2026, 2, 1), "since", "until")
    Traceback (most recent call last):
    ...
    metrics.errors.InvalidQuery: 'since' (2026-03-01) must be before 'until' (2026-02-01).
    """
    if start is not None and end is not None and start >= end:
        raise InvalidQuery(f"{start_field!r} ({start}) must be before {end_field!r} ({end}).", field=start_field)


def next_period(start: dt.date, period: str) -> dt.date:
    """First day of the period after the one starting at `start`.

    >>> next_period(dt.date(2026, 12, 1), "month")
    datetime.date(2027, 1, 1)
    """
    if period == "day":
        return start + dt.timedelta(days=1)
    if period == "week":
        return start + dt.timedelta(days=7)
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def previous_period(start: dt.date, period: str) -> dt.date:
    """First day of the period before the one starting at `start`.

    >>> previous_period(dt.date(2026, 3, 1), "month")
    datetime.date(2026, 2, 1)
    """
    if period == "day":
        return start - dt.timedelta(days=1)
    if period == "week":
        return start - dt.timedelta(days=7)
    return (start - dt.timedelta(days=1)).replace(day=1)


def as_datetime(day: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(day, dt.datetime):
        return day
    return dt.datetime(day.year, day.month, day.day)


def as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def run(
    engine: Engine,
    metrics: Iterable[str],
    group_by: Iterable[str] = (),
    where: Iterable[Filter] = (),
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """A semantic-layer metric query, rows keyed by column name."""
    result = engine.query(
        MetricQuery(metrics=tuple(metrics), group_by=tuple(group_by), where=tuple(where), start=start, end=end)
    )
    names = [c.name for c in result.columns]
    return [dict(zip(names, row)) for row in result.rows]


@dataclass(frozen=True)
class Withheld:
    """A metric a scorecard leaves out because the caller's row policy cannot restrict it."""

    metric: str
    reason: str


def run_restricted(
    engine: Engine,
    metrics: Iterable[str],
    withheld: list[Withheld],
    group_by: Iterable[str] = (),
    where: Iterable[Filter] = (),
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """`run`, leaving out (and noting in `withheld`) each metric the caller's row policy cannot
    restrict, so that a restricted caller gets the rest of a scorecard rather than nothing."""
    metrics, group_by, where = tuple(metrics), tuple(group_by), tuple(where)
    try:
        return run(engine, metrics, group_by, where, start, end)
    except PolicyDenied:
        pass
    allowed = []
    for metric in metrics:
        try:
            engine.plan(MetricQuery(metrics=(metric,), group_by=group_by, where=where, start=start, end=end))
        except PolicyDenied as exc:
            if metric not in {w.metric for w in withheld}:
                withheld.append(Withheld(metric, exc.message))
        else:
            allowed.append(metric)
    return run(engine, allowed, group_by, where, start, end) if allowed else []


def data_days(engine: Engine) -> tuple[dt.date, dt.date]:
    """First and last UTC day with events (active users by day from the semantic layer)."""
    rows = run(engine, ["active_users"], ["metric_time__day"])
    days = [as_date(r["metric_time__day"]) for r in rows if r["metric_time__day"] is not None]
    if not days:
        raise NotFound("the warehouse has no events yet.")
    return min(days), max(days)


def platforms(engine: Engine) -> list[str]:
    """Platforms with at least one event."""
    rows = run(engine, ["active_users"], ["platform"])
    return sorted(r["platform"] for r in rows if r["platform"] is not None)


def check_choice(value: str, choices: Iterable[str], what: str, *, not_found: bool = False) -> str:
    """`value` when it is one of `choices`; otherwise an error naming the nearest valid ones."""
    choices = sorted(set(choices))
    if value in choices:
        return value
    close = nearest(value, choices) or choices[:5]
    message = f"unknown {what} {value!r}; valid choices are {', '.join(repr(c) for c in choices[:20])}" + (
        f". Did you mean {', '.join(repr(c) for c in close)}?" if close else "."
    )
    error = NotFound if not_found else InvalidQuery
    raise error(message, field=what.replace(" ", "_"), value=value, suggestions=close)


def platform_filter(platform: str | None) -> tuple[Filter, ...]:
    return () if platform is None else (Filter("platform", FilterOp.EQ, platform),)
