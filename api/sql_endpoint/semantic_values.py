"""The values a client's SQL compares with: literals (with the casts and date functions BI
tools wrap them in) and time-grain comparisons turned into the engine's half-open ranges."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from api.sql_endpoint.semantic_tables import METRIC_TIME
from api.sql_endpoint.statements import SqlError
from metrics.query.request import WeekStart
from metrics.semantic.model import Grain
from metrics.time_buckets import truncate


def _literal(node: exp.Expression) -> tuple[bool, Any]:
    """A literal's Python value: (True, value), or (False, None) when it is not a literal."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Null):
        return True, None
    if isinstance(node, exp.Boolean):
        return True, bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return True, node.this
        text = node.this
        try:
            return True, int(text)
        except ValueError:
            return True, float(text)
    if isinstance(node, exp.Neg):
        ok, value = _literal(node.this)
        if ok and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, -value
        return False, None
    if isinstance(node, exp.Cast):
        ok, value = _literal(node.this)
        if not ok or value is None:
            return ok, value
        kind = node.to.this
        text = str(value)
        try:
            if kind == exp.DataType.Type.DATE:
                return True, dt.date.fromisoformat(text.strip()[:10]) if len(text.strip()) > 10 and text.strip()[
                    10
                ] in " T" else dt.date.fromisoformat(text.strip())
            if kind in (
                exp.DataType.Type.TIMESTAMP,
                exp.DataType.Type.TIMESTAMPTZ,
                exp.DataType.Type.TIMESTAMPNTZ,
                exp.DataType.Type.DATETIME,
            ):
                parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
                if parsed.tzinfo is not None:
                    parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
                return True, parsed
        except ValueError:
            raise SqlError("22007", f'invalid input syntax for type {kind.value.lower()}: "{text}"') from None
        if kind in exp.DataType.TEXT_TYPES:
            return True, text
        if kind in exp.DataType.INTEGER_TYPES:
            try:
                return True, int(text)
            except ValueError:
                raise SqlError("22P02", f'invalid input syntax for type integer: "{text}"') from None
        if kind in exp.DataType.REAL_TYPES:
            try:
                return True, float(text)
            except ValueError:
                raise SqlError("22P02", f'invalid input syntax for type numeric: "{text}"') from None
        if kind == exp.DataType.Type.BOOLEAN and isinstance(value, (bool, str)):
            return True, value if isinstance(value, bool) else text.strip().lower() in ("t", "true", "1", "yes", "on")
        return False, None
    return False, None


def _grain_of(name: str) -> Grain | None:
    """`metric_time__week` -> WEEK; `metric_time` -> DAY (its finest grain); else None."""
    if name == METRIC_TIME:
        return Grain.DAY
    if name.startswith(f"{METRIC_TIME}__"):
        return Grain.parse(name.split("__", 1)[1])
    return None


def _as_datetime(value: Any, column: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise SqlError(
                "22007",
                f'invalid input syntax for type date: "{value}"',
                f"Compare {column} with a date such as '2026-01-05'.",
            ) from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return parsed
    raise SqlError(
        "42883",
        f"cannot compare {column} (a date) with {value!r}",
        f"Compare {column} with a date such as '2026-01-05'.",
    )


def _next(bucket: dt.datetime, grain: Grain) -> dt.datetime:
    if grain is Grain.DAY:
        return bucket + dt.timedelta(days=1)
    if grain is Grain.WEEK:
        return bucket + dt.timedelta(days=7)
    months = {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}[grain]
    month = bucket.month - 1 + months
    return bucket.replace(year=bucket.year + month // 12, month=month % 12 + 1)


def _ceil(value: dt.datetime, grain: Grain, week_start: WeekStart = WeekStart.MONDAY) -> dt.datetime:
    floor = truncate(value, grain, week_start)
    return floor if floor == value else _next(floor, grain)


def _time_range(
    op: str, value: dt.datetime, grain: Grain, week_start: WeekStart = WeekStart.MONDAY
) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    """The half-open range of raw metric time whose `grain` buckets satisfy `bucket op value`
    (bucket starts compared with `value`), or None when it is not a single range.

    >>> _time_range(">=", dt.datetime(2026, 1, 7), Grain.WEEK)
    (datetime.datetime(2026, 1, 12, 0, 0), None)
    >>> _time_range("<=", dt.datetime(2026, 1, 7), Grain.WEEK)
    (None, datetime.datetime(2026, 1, 12, 0, 0))
    """
    if op == ">=":
        return _ceil(value, grain, week_start), None
    if op == ">":
        return _next(truncate(value, grain, week_start), grain), None
    if op == "<":
        return None, _ceil(value, grain, week_start)
    if op == "<=":
        return None, _next(truncate(value, grain, week_start), grain)
    if op == "=" and truncate(value, grain, week_start) == value:
        return value, _next(value, grain)
    return None


_COMPARISONS = {exp.EQ: "=", exp.NEQ: "!=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEGATED = {"=": "!=", "!=": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _json_value(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value
