"""A metric query as the engine receives it, independent of HTTP, SQL wire or CLI."""

from __future__ import annotations

import datetime as dt
import difflib
import enum
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, overload

from metrics.errors import InvalidFilter, InvalidQuery


class FilterOp(enum.Enum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not_in"
    IS_NULL = "is_null"
    IS_NOT_NULL = "is_not_null"

    @property
    def takes_value(self) -> bool:
        return self in (FilterOp.EQ, FilterOp.NE, FilterOp.LT, FilterOp.LE, FilterOp.GT, FilterOp.GE)

    @property
    def takes_values(self) -> bool:
        return self in (FilterOp.IN, FilterOp.NOT_IN)

    @classmethod
    def parse(cls, text: str) -> FilterOp:
        aliases = {"==": "=", "<>": "!=", "not in": "not_in", "is null": "is_null", "is not null": "is_not_null"}
        text = aliases.get(text.strip().lower(), text.strip().lower())
        try:
            return cls(text)
        except ValueError:
            valid = ", ".join(repr(op.value) for op in cls)
            raise InvalidFilter(f"unknown filter op {text!r}; valid ops are {valid}.", op=text) from None


Scalar = str | int | float | bool | dt.date | dt.datetime


@dataclass(frozen=True)
class Filter:
    """`field op value(s)`, on a dimension or a `metric_time__<grain>` bucket start."""

    field: str
    op: FilterOp
    value: Scalar | None = None
    values: tuple[Scalar, ...] = ()

    def __post_init__(self) -> None:
        if self.op.takes_value and self.value is None:
            raise InvalidFilter(
                f"filter on {self.field!r} with op {self.op.value!r} needs a 'value'.", field=self.field
            )
        if self.op.takes_values and not self.values:
            raise InvalidFilter(
                f"filter on {self.field!r} with op {self.op.value!r} needs a non-empty 'values' list.", field=self.field
            )


@dataclass(frozen=True)
class OrderBy:
    name: str
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> OrderBy:
        """`-active_users` sorts descending; `active_users` or `+active_users` ascending.

        >>> OrderBy.parse("-active_users")
        OrderBy(name='active_users', descending=True)
        """
        text = text.strip()
        if text.startswith("-"):
            return cls(text[1:].strip(), True)
        return cls(text.lstrip("+").strip(), False)


class WeekStart(enum.Enum):
    MONDAY = "monday"
    SUNDAY = "sunday"

    @classmethod
    def parse(cls, text: str | None) -> WeekStart:
        try:
            return cls((text or "monday").strip().lower())
        except ValueError:
            raise InvalidQuery(
                f"week_start must be 'monday' (ISO, the default) or 'sunday', got {text!r}.", field="week_start"
            ) from None


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def parse_timezone(text: str | None) -> str | None:
    """An IANA time zone name, checked against the tz database; None means UTC.

    >>> parse_timezone("Europe/Berlin")
    'Europe/Berlin'
    """
    if text is None or text.strip() in ("", "UTC", "Etc/UTC", "utc"):
        return None
    name = text.strip()
    if name not in _time_zones():
        close = difflib.get_close_matches(name, sorted(_time_zones()), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise InvalidQuery(
            f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin'.{hint}", field="timezone"
        )
    return name


@dataclass(frozen=True)
class MetricQuery:
    """What to compute: metrics, sliced by group-by items, filtered, over a half-open range."""

    metrics: tuple[str, ...]
    group_by: tuple[str, ...] = ()
    where: tuple[Filter, ...] = ()
    where_sql: tuple[str, ...] = field(default=())
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None
    # Buckets, start and end are read in this zone (None: UTC); weeks start on week_start.
    timezone: str | None = None
    week_start: WeekStart = WeekStart.MONDAY
    # A windowed metric whose window the data does not cover is null (metrics.query.completeness);
    # False keeps the value as computed (for comparing the SQL with other engines).
    null_uncovered_windows: bool = True

    def __post_init__(self) -> None:
        if not self.metrics:
            raise InvalidQuery("a query needs at least one metric in 'metrics'.")
        for name, values in (("metrics", self.metrics), ("group_by", self.group_by)):
            seen = set()
            for value in values:
                if value in seen:
                    raise InvalidQuery(f"{value!r} is listed twice in '{name}'.")
                seen.add(value)
        if self.start and self.end and self.start >= self.end:
            raise InvalidQuery(
                f"'start' ({self.start.isoformat()}) must be before 'end' ({self.end.isoformat()}); "
                "the range is start-inclusive, end-exclusive.",
                field="start",
            )
        if self.limit is not None and self.limit < 0:
            raise InvalidQuery("'limit' must be zero or positive.")

    def cache_key(self) -> tuple[Any, ...]:
        """A hashable, order-insensitive identity where order does not change the answer."""
        return (
            self.metrics,
            self.group_by,
            frozenset(self.where),
            frozenset(self.where_sql),
            self.start,
            self.end,
            self.order_by,
            self.limit,
            self.timezone,
            self.week_start,
            self.null_uncovered_windows,
        )

    @overload
    def utc(self, local: dt.datetime) -> dt.datetime: ...

    @overload
    def utc(self, local: None) -> None: ...

    def utc(self, local: dt.datetime | None) -> dt.datetime | None:
        """A wall-clock bound in the query's zone as naive UTC (exact across DST changes).

        A wall time that never happened (inside a spring-forward gap) maps to the instant of
        the jump, the first instant whose wall time is not earlier; so ranges still compose.
        """
        if local is None or self.timezone is None:
            return local
        return to_utc(local, zoneinfo.ZoneInfo(self.timezone))


def to_utc(local: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """Naive wall-clock time in `zone` -> naive UTC.

    >>> tz = zoneinfo.ZoneInfo("America/Los_Angeles")
    >>> to_utc(dt.datetime(2026, 3, 8, 2, 30), tz)  # clocks jump 02:00 -> 03:00 that night
    datetime.datetime(2026, 3, 8, 10, 0)
    >>> to_utc(dt.datetime(2026, 1, 15, 12, 0), tz)
    datetime.datetime(2026, 1, 15, 20, 0)
    """

    def as_utc(fold: int) -> dt.datetime:
        aware = local.replace(tzinfo=zone, fold=fold)
        return aware.astimezone(dt.UTC).replace(tzinfo=None)

    def wall(utc: dt.datetime) -> dt.datetime:
        return utc.replace(tzinfo=dt.UTC).astimezone(zone).replace(tzinfo=None)

    first = as_utc(0)
    if wall(first) == local:
        return first
    # In a gap: the two folds straddle the jump; find its instant (to the microsecond).
    low, high = sorted((first, as_utc(1)))
    while high - low > dt.timedelta(microseconds=1):
        middle = low + (high - low) / 2
        if wall(middle) >= local:
            high = middle
        else:
            low = middle
    return high if wall(low) < local else low


def parse_time_bound(text: str | dt.date | dt.datetime | None, name: str) -> dt.datetime | None:
    """Accept `YYYY-MM-DD` or an ISO-8601 timestamp (UTC) for `start`/`end`.

    >>> parse_time_bound("2026-01-05", "start")
    datetime.datetime(2026, 1, 5, 0, 0)
    """
    if text is None or text == "":
        return None
    if isinstance(text, dt.datetime):
        value = text
    elif isinstance(text, dt.date):
        return dt.datetime(text.year, text.month, text.day)
    else:
        try:
            value = dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidQuery(
                f"'{name}' must be a date (YYYY-MM-DD) or ISO-8601 timestamp, got {text!r}.", field=name
            ) from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def names(text: str | Sequence[str]) -> list[str]:
    """A list of names as interfaces take them: a sequence, or one comma-separated string.

    >>> names("active_users, events,"), names(["arpu"])
    (['active_users', 'events'], ['arpu'])
    """
    if isinstance(text, str):
        return [part.strip() for part in text.split(",") if part.strip()]
    return list(text)


def query_from_text(
    *,
    metrics: str | Sequence[str],
    group_by: str | Sequence[str] = (),
    where: Sequence[Filter | str] = (),
    start: str | dt.date | dt.datetime | None = None,
    end: str | dt.date | dt.datetime | None = None,
    order_by: str | Sequence[str] = (),
    limit: int | None = None,
    timezone: str | None = None,
    week_start: str | WeekStart | None = None,
) -> MetricQuery:
    """A metric query from the forms every interface receives (an HTTP body or query string,
    the CLI's options, the SQL endpoint's translation): names as lists or comma-separated
    text, `where` as structured filters and dbt-style filter strings, bounds as ISO text or
    dates, order items as `name` or `-name` (descending), the week start by name.

    >>> query = query_from_text(metrics="active_users", group_by="metric_time__week",
    ...                         start="2026-01-05", order_by="-metric_time__week")
    >>> query.group_by, query.start, query.order_by[0].descending
    (('metric_time__week',), datetime.datetime(2026, 1, 5, 0, 0), True)
    """
    return MetricQuery(
        metrics=tuple(names(metrics)),
        group_by=tuple(names(group_by)),
        where=tuple(w for w in where if isinstance(w, Filter)),
        where_sql=tuple(w for w in where if isinstance(w, str)),
        start=parse_time_bound(start, "start"),
        end=parse_time_bound(end, "end"),
        order_by=tuple(OrderBy.parse(o) for o in names(order_by)),
        limit=limit,
        timezone=parse_timezone(timezone),
        week_start=week_start if isinstance(week_start, WeekStart) else WeekStart.parse(week_start),
    )
