"""Calendar buckets in Python: the first day of the week, month, quarter or year holding a
day. The SQL form of the same rule is `metrics.sql.trees.time_bucket`; both start ISO weeks
on Monday and Sunday weeks a day earlier."""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from metrics.query.request import WeekStart
from metrics.semantic.model import Grain

Day = TypeVar("Day", dt.date, dt.datetime)


def week_floor(day: Day, week_start: WeekStart = WeekStart.MONDAY) -> Day:
    """The first day of the week holding `day` (a date, or a midnight datetime).

    >>> week_floor(dt.date(2026, 3, 1)), week_floor(dt.date(2026, 3, 1), WeekStart.SUNDAY)
    (datetime.date(2026, 2, 23), datetime.date(2026, 3, 1))
    """
    return day - dt.timedelta(days=(day.weekday() + (1 if week_start is WeekStart.SUNDAY else 0)) % 7)


def truncate(value: dt.datetime, grain: Grain, week_start: WeekStart = WeekStart.MONDAY) -> dt.datetime:
    """The first instant (naive midnight) of the `grain` bucket holding `value`."""
    day = dt.datetime(value.year, value.month, value.day)
    if grain is Grain.DAY:
        return day
    if grain is Grain.WEEK:
        return week_floor(day, week_start)
    if grain is Grain.MONTH:
        return day.replace(day=1)
    if grain is Grain.QUARTER:
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)
