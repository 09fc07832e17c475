"""Completeness: whether each bucket of an answer is covered by the data behind it.

The rule, stated once (the README repeats it for users):

* Every source a metric reads (a semantic model at its metric time) has a *reach*: the UTC days
  from its first to its last `metric_time` with data, read once per build (`min`/`max`).
* A bucket (a `metric_time__<grain>` value; without a time group-by, the query's whole range)
  spans the days from its first day to the next bucket's, cut by the query's `start`/`end`.
* A metric's value in a bucket is **complete** when every day the bucket spans lies within the
  reach of each source the metric reads, and the bucket is not cut by `start`/`end`. Otherwise
  it is kept and flagged: `range_cut`, `before_data` or `after_data`.
* A **windowed** metric reads, for each day of its bucket, a window of days of some source: a
  conversion (`signup_to_purchase_7d`: the signup day and the 6 days after it, of the purchase
  events), a cohort window declared in the metric's `meta.cohort_window` (`d7_retention`: days
  1..7 after the signup day, of the events) or a trailing cumulative window (7-day users: the
  day and the 6 before it). When some window of the bucket is not inside that source's reach,
  the value is not known yet (or no longer known): it is **null**, with the reason
  `window_not_covered`, never the 0 or the partial count the SQL computed.
* A metric made of others (a ratio, a derived metric, an offset input) reads what its inputs
  read; an offset moves the days it reads back by the offset.

Completeness depends on a bucket's time only (a slice never changes the reach), so it is
evaluated per (metric, bucket) and applied to every row of that bucket. Filters other than
`start`/`end` do not change it: the SQL endpoint turns its time-grain `WHERE` into `start`/`end`.
"""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metrics.query.plan import QueryPlan
from metrics.semantic.graph import METRIC_TIME, SourceKey
from metrics.semantic.model import Grain, Metric, MetricType, Window

DAY = dt.timedelta(days=1)


class Reason(enum.Enum):
    """Why a bucket is not complete for a metric."""

    RANGE_CUT = "range_cut"  # start/end cut the bucket: fewer days than its grain
    BEFORE_DATA = "before_data"  # the bucket starts before the source's first day
    AFTER_DATA = "after_data"  # the bucket ends after the source's last day
    WINDOW_NOT_COVERED = "window_not_covered"  # a window of the bucket leaves the data: value null

    @property
    def nulls_value(self) -> bool:
        return self is Reason.WINDOW_NOT_COVERED


@dataclass(frozen=True)
class Reach:
    """The first and last UTC timestamps with data in one source (None: no data)."""

    first: dt.datetime | None
    last: dt.datetime | None

    def days(self, timezone: str | None) -> tuple[dt.date, dt.date] | None:
        """The first and last day with data, in the query's zone."""
        if self.first is None or self.last is None:
            return None
        return _local(self.first, timezone).date(), _local(self.last, timezone).date()


@dataclass(frozen=True)
class Needs:
    """A metric reads `source` for each day d of its buckets over days [d + lo, d + hi]; a
    window (`windowed`) nulls the value when not covered, a plain read only flags it."""

    source: SourceKey
    lo: Window | None = None  # signed: negative counts reach back
    hi: Window | None = None
    windowed: bool = False
    what: str = ""  # for the message: "the day-1..7 window of its cohorts"


@dataclass(frozen=True)
class Incomplete:
    """One metric in one bucket is not complete."""

    metric: str
    bucket: dt.date | None  # the bucket's first day; None: the query's whole range
    reason: Reason
    message: str

    @property
    def nulled(self) -> bool:
        return self.reason.nulls_value


def cohort_window(metric: Metric) -> tuple[str, int, int] | None:
    """`meta.cohort_window: {semantic_model: events, first_day: 1, last_day: 7}`: the metric's
    value for a cohort day d reads that model's data on days d+first_day .. d+last_day."""
    spec = metric.meta.get("cohort_window") if metric.meta else None
    if not isinstance(spec, dict) or "semantic_model" not in spec:
        return None
    return str(spec["semantic_model"]), int(spec.get("first_day", 0)), int(spec.get("last_day", 0))


def metric_needs(
    name: str,
    metrics: dict[str, Metric],
    source_of: Callable[[str], SourceKey],
    model_source: Callable[[str], SourceKey],
    offset: Window | None = None,
    _seen: frozenset[str] = frozenset(),
) -> list[Needs]:
    """What a metric reads, through ratios, derived metrics and offsets.

    `source_of(measure)` is a measure's source; `model_source(model)` a semantic model's
    source at its default metric time (for a cohort window).
    """
    metric = metrics[name]
    if name in _seen:
        return []
    seen = _seen | {name}
    back = None if offset is None else Window(-offset.count, offset.grain)
    out: list[Needs] = []
    if metric.type in (MetricType.SIMPLE, MetricType.CUMULATIVE) and metric.measure is not None:
        source = source_of(metric.measure.name)
        if metric.type is MetricType.CUMULATIVE and metric.window is not None:
            reach_back = (
                Window(-(metric.window.count - 1), metric.window.grain)
                if metric.window.grain is Grain.DAY
                else Window(-metric.window.count, metric.window.grain)
            )
            out.append(Needs(source, _add(back, reach_back), back, True, f"its trailing {metric.window} window"))
        else:
            out.append(Needs(source, back, back))
        cohort = cohort_window(metric)
        if cohort is not None:
            model, first, last = cohort
            out.append(
                Needs(
                    model_source(model),
                    _add(back, Window(first, Grain.DAY)),
                    _add(back, Window(last, Grain.DAY)),
                    True,
                    f"days {first}..{last} after each day of its cohort",
                )
            )
    elif metric.type is MetricType.CONVERSION and metric.conversion is not None:
        params = metric.conversion
        out.append(Needs(source_of(params.base_measure.name), back, back))
        if params.window is not None:
            reach_ahead = (
                Window(params.window.count - 1, params.window.grain)
                if params.window.grain is Grain.DAY
                else params.window
            )
            out.append(
                Needs(
                    source_of(params.conversion_measure.name),
                    back,
                    _add(back, reach_ahead),
                    True,
                    f"its {params.window} conversion window",
                )
            )
    else:
        children = [metric.numerator, metric.denominator] if metric.type is MetricType.RATIO else list(metric.inputs)
        for child in children:
            if child is None:
                continue
            child_offset = _add(offset, getattr(child, "offset_window", None))
            out.extend(metric_needs(child.name, metrics, source_of, model_source, child_offset, seen))
    return out


def assess(
    plan: QueryPlan, rows: list[tuple[Any, ...]], needs: dict[str, list[Needs]], reach: dict[SourceKey, Reach]
) -> tuple[list[tuple[Any, ...]], list[tuple[bool, ...]], tuple[Incomplete, ...]]:
    """Apply the rule to an answer: the rows with windowed values nulled where their window is
    not covered, per row whether each metric is complete, and every (metric, bucket) that is
    not complete."""
    query = plan.query
    grains = [(i, grain) for i, name in enumerate(plan.group_by) if (grain := _grain_of(name)) is not None]
    n_keys = len(plan.group_by)
    verdicts: dict[tuple[str, dt.date | None], Incomplete | None] = {}
    out_rows: list[tuple[Any, ...]] = []
    flags: list[tuple[bool, ...]] = []
    for row in rows:
        span, key = _bucket(row, grains)
        if grains and span is None:  # a null time key: no time to judge
            out_rows.append(row)
            flags.append(tuple(True for _ in plan.metrics))
            continue
        values = list(row)
        complete = []
        for j, metric in enumerate(plan.metrics):
            if (metric.name, key) not in verdicts:
                verdicts[(metric.name, key)] = _judge(
                    metric.name, span, key, query.start, query.end, needs[metric.name], reach, query.timezone
                )
            found = verdicts[(metric.name, key)]
            if found is not None and found.nulled and query.null_uncovered_windows:
                values[n_keys + j] = None
            complete.append(found is None)
        out_rows.append(tuple(values))
        flags.append(tuple(complete))
    incomplete = tuple(
        sorted((v for v in verdicts.values() if v is not None), key=lambda v: (v.bucket or dt.date.min, v.metric))
    )
    return out_rows, flags, incomplete


def _judge(
    metric: str,
    bucket: tuple[dt.datetime, dt.datetime] | None,
    key: dt.date | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    needs: list[Needs],
    reach: dict[SourceKey, Reach],
    timezone: str | None,
) -> Incomplete | None:
    lo_b, hi_b = bucket if bucket is not None else (None, None)
    cut_lo = max([t for t in (lo_b, start) if t is not None], default=None)
    cut_hi = min([t for t in (hi_b, end) if t is not None], default=None)
    # The days that can hold the metric's own data: a bucket's days outside its own sources'
    # reach have no rows (no cohort, no base event), so no window to wait for.
    own = [
        d for n in needs if not n.windowed if (d := reach.get(n.source, Reach(None, None)).days(timezone)) is not None
    ]
    if own:
        own_first = dt.datetime.combine(min(d[0] for d in own), dt.time())
        own_end = dt.datetime.combine(max(d[1] for d in own), dt.time()) + DAY
        cut_lo = own_first if cut_lo is None else max(cut_lo, own_first)
        cut_hi = own_end if cut_hi is None else min(cut_hi, own_end)
    flags: list[Incomplete] = []
    for need in needs:
        days = reach.get(need.source, Reach(None, None)).days(timezone)
        if days is None:
            if need.windowed:
                return Incomplete(
                    metric, key, Reason.WINDOW_NOT_COVERED, f"{need.source.model} has no data for {need.what}."
                )
            flags.append(Incomplete(metric, key, Reason.BEFORE_DATA, f"{need.source.model} has no data."))
            continue
        first = dt.datetime.combine(days[0], dt.time())
        after_last = dt.datetime.combine(days[1], dt.time()) + DAY
        if need.windowed:
            low, high = (cut_lo or first), (cut_hi or after_last)
        else:  # a plain read: is the whole bucket (as start/end cut it) inside the data?
            low = max([t for t in (lo_b, start) if t is not None], default=first)
            high = min([t for t in (hi_b, end) if t is not None], default=after_last)
        if high <= low:
            continue
        read_from = _shift(low, need.lo)
        read_to = _shift(high, need.hi)  # exclusive
        if need.windowed and (read_from < first or read_to > after_last):
            window_days = _covered(first, after_last, need)
            hint = (
                f"only days {window_days[0]} to {window_days[1]} have their whole window in the data"
                if window_days
                else "no day has its whole window in the data"
            )
            return Incomplete(
                metric,
                key,
                Reason.WINDOW_NOT_COVERED,
                f"not known: {need.what} reaches outside the {need.source.model} data "
                f"({days[0]} to {days[1]}); {hint}.",
            )
        if read_from < first:
            flags.append(
                Incomplete(
                    metric,
                    key,
                    Reason.BEFORE_DATA,
                    f"the bucket starts before the first day with {need.source.model} data ({days[0]}).",
                )
            )
        elif read_to > after_last:
            flags.append(
                Incomplete(
                    metric,
                    key,
                    Reason.AFTER_DATA,
                    f"the bucket ends after the last day with {need.source.model} data ({days[1]}).",
                )
            )
    if flags:
        return flags[0]
    if bucket is not None:
        lo, hi = bucket
        if (start is not None and start > lo) or (end is not None and end < hi):
            return Incomplete(
                metric,
                key,
                Reason.RANGE_CUT,
                f"start/end cut the bucket to {_day_text(max(lo, start or lo))} .. "
                f"{_day_text(min(hi, end or hi))} (exclusive).",
            )
    return None


def _covered(first: dt.datetime, after_last: dt.datetime, need: Needs) -> tuple[dt.date, dt.date] | None:
    """The first and last day whose window lies inside [first, after_last)."""
    low = _shift(first, _negate(need.lo))
    high = _shift(after_last, _negate(need.hi)) - DAY
    if high < low:
        return None
    return low.date(), high.date()


def _bucket(
    row: tuple[Any, ...], grains: list[tuple[int, Grain]]
) -> tuple[tuple[dt.datetime, dt.datetime] | None, dt.date | None]:
    """The span of days a row's bucket covers (the intersection of its time keys), and its key."""
    if not grains:
        return None, None
    low: dt.datetime | None = None
    high: dt.datetime | None = None
    key = None
    for index, grain in grains:
        value = row[index]
        if value is None:
            return None, None
        day = (
            value
            if isinstance(value, dt.date) and not isinstance(value, dt.datetime)
            else (value.date() if isinstance(value, dt.datetime) else dt.date.fromisoformat(str(value)[:10]))
        )
        begin = dt.datetime.combine(day, dt.time())
        finish = _next(begin, grain)
        if low is None or begin > low:
            low, key = begin, day
        high = finish if high is None or finish < high else high
    if low is None or high is None:  # not reached: `grains` is not empty
        return None, None
    return (low, high), key


def _grain_of(name: str) -> Grain | None:
    if name == METRIC_TIME:
        return Grain.DAY
    if name.startswith(METRIC_TIME + "__"):
        return Grain.parse(name[len(METRIC_TIME) + 2 :])
    return None


def _next(day: dt.datetime, grain: Grain) -> dt.datetime:
    if grain is Grain.DAY:
        return day + DAY
    if grain is Grain.WEEK:
        return day + 7 * DAY
    return _shift(day, Window(1, grain))


def _shift(value: dt.datetime, window: Window | None) -> dt.datetime:
    """`value` moved by a signed window (calendar months clamp to the month's last day)."""
    if window is None or window.count == 0:
        return value
    if window.grain is Grain.DAY:
        return value + window.count * DAY
    if window.grain is Grain.WEEK:
        return value + 7 * window.count * DAY
    months = window.count * {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}[window.grain]
    index = value.year * 12 + value.month - 1 + months
    year, month = divmod(index, 12)
    first_of_next = dt.date(year + (month == 11), (month + 1) % 12 + 1, 1)
    last = (first_of_next - DAY).day
    return value.replace(year=year, month=month + 1, day=min(value.day, last))


def _negate(window: Window | None) -> Window | None:
    return None if window is None else Window(-window.count, window.grain)


def _add(a: Window | None, b: Window | None) -> Window | None:
    """Windows of one grain add up; of two grains, the day-based one is turned into days."""
    if a is None or b is None:
        return a or b
    if a.grain is b.grain:
        return Window(a.count + b.count, a.grain)
    days = {Grain.DAY: 1, Grain.WEEK: 7}
    if a.grain in days and b.grain in days:
        return Window(a.count * days[a.grain] + b.count * days[b.grain], Grain.DAY)
    return b if abs(b.count) > abs(a.count) else a  # months with days: the larger reach (rare)


def _local(value: dt.datetime, timezone: str | None) -> dt.datetime:
    if timezone is None:
        return value
    aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    return aware.astimezone(zoneinfo.ZoneInfo(timezone)).replace(tzinfo=None)


def _day_text(value: dt.datetime | None) -> str:
    if value is None:
        return "open"
    return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
