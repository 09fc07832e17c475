"""Reference answers for the governed metric pack, computed straight from the landing files.

The oracle is the yardstick the acceptance tests hold the product against, so it shares no code
with the product: it does not read the dbt marts, the semantic-layer YAML or anything under
``metrics/`` or ``api/``. It opens an in-memory DuckDB connection, puts typed views over the raw
landing files and answers a metric query with one hand-written SQL statement per metric, written
from ``spec/metric-pack.md`` as literally as possible. Keep it that way: plain, readable SQL is
what makes it a reference.

Rules it implements (the common rules of the metric pack, plus the details the pack leaves open,
stated here so the engine can be held to the same answer):

* **Internal users count nowhere.** A row of any table whose ``user_id`` belongs to a user with
  ``is_internal = true`` is dropped before anything is counted. A row with no ``user_id`` (an
  anonymous error, a ticket with no user) is kept; so is a row whose ``user_id`` is unknown.
* **An event counts once per ``event_id``.** Exact duplicate event rows collapse to one row
  (``select distinct`` over the contract columns) before any metric reads them.
* **metric_time** is the metric's own timestamp, truncated in UTC with ``date_trunc``: ``week`` is
  the ISO week (Monday start). A bucket is named by its first day as ``YYYY-MM-DD``.
* **Time range**: ``start <= metric_time < end``, applied to the raw timestamp before bucketing.
  ``start``/``end`` may be dates (midnight UTC) or timestamps.
* **Slices**: country, plan and region of an event, error or feedback row are its user's (plan
  and region via the user's account); the plan and region of a ticket are its account's. Rows
  whose slice value is null form their own (null) group.
* **Which rows a metric has.** A metric has one output row per (bucket, slice values) in which
  at least one row of its source, after the internal-user rule, the time range and the filters,
  *counts towards it* (``Metric.contributes``): for a count of rows any row does (``crashes``,
  ``tickets``, ``nps``'s responses), for a distinct count, sum or mean a row whose counted
  value is there (``active_users``: a row with a user; ``crashed_users``: a crash of a known
  user; ``paying_users``: a purchase of a user; ``mttr_hours``: a resolved incident). So
  anonymous errors alone (no plan) make no ``crashed_users`` row by ``plan``, and
  ``paying_users`` by day has no row on a day without purchases. Without group-by there is
  always one row (see *No rows at all*). Where a row exists, the value follows the definition:
  a conditional count that matches nothing is ``0`` (``crashes`` in a bucket with only
  warnings), a sum over no values is ``0`` (``revenue``), and a ratio with nothing in its
  denominator is null (``nps`` over a bucket with only CSAT answers). When several metrics are
  asked, a row that one metric brings shows another metric's definition over its source's rows
  there if it has any (``crashed_users`` 0 beside ``crashes`` on a day of warnings only), null
  if its source has none.
* **Ratios** are computed per output row from their parts over the same bucket and slice, never
  averaged from finer rows. A ratio whose denominator is 0 or absent is null.
* **Metrics over two sources** (``crash_free_user_rate``, ``errors_per_1k_events``) aggregate the
  events side and the errors side separately over the same bucket and slice values, then join the
  two with full outer join semantics (a bucket present on only one side still appears). A
  missing errors side counts as zero errors, a missing events side leaves the denominator null:

      crash_free_user_rate = 1 - coalesce(crashed_users, 0) / nullif(active_users, 0)
      errors_per_1k_events = 1000 * coalesce(crash_or_error_errors, 0) / nullif(events, 0)

  so a bucket with active users and no crashes is 100% crash-free, and a bucket with errors but
  no events is null.
* **d7_retention** is timed by signup (the cohort): the range and a ``metric_time`` filter pick
  signups, while the day-1..7 events are looked for among all of the user's events, even those
  past ``end``. Its ``platform`` is that of the user's first event (earliest ``event_ts``, ties
  by ``event_id``; null for a user without events), and filters on it pick cohort members.
* **A cohort's retention is known only once its window is in the data.** A ``d7_retention``
  bucket is null when one of its signup days (the bucket's days within ``start``/``end`` and
  within the first and last signup day) has a day 1..7 outside the first and last day with
  events: the events that would retain it are not (or no longer) in the data.
* **No rows at all**: a query without group-by over no rows answers one row, counts and sums 0,
  ratios null.
* **Numbers**: revenue is read as ``DECIMAL(38, 6)``, so sums are exact; ratios are doubles.
* **Refunds** are events with a negative ``revenue_usd``: ``revenue`` (and ``arpu``) sum them
  in, so they are net; ``paying_users`` counts only events with ``revenue_usd > 0``.
* **Several metrics in one query** are each computed on their own and then joined on the group-by
  values with full outer join semantics; a metric with no row for some key is null there.
* **Filters** (``where``) use the HTTP API's shape, ``{"field", "op", "value" | "values"}``, and
  are applied to the source rows of every metric in the query (both sides of a two-source
  metric) with SQL semantics: ``!=``, ``<`` ... and ``not_in`` never match a null value; use
  ``is_null`` for those. A filter on ``metric_time__<grain>`` compares bucket starts. Values are
  always bind parameters.

Example (against a landing directory)::

    oracle = Oracle("seeds/sample")
    oracle.query(["active_users", "crash_free_user_rate"], ["metric_time__week", "platform"],
                 where=[{"field": "platform", "op": "in", "values": ["ios", "android"]}],
                 start="2026-01-05", end="2026-02-02")
    # -> [("2026-01-05", "android", 812, 0.9901...), ...]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

GRAINS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")

#: Contract columns the oracle reads, with the type each is cast to. Extra landing columns are
#: ignored; the tables no metric reads (releases, launches, experiments, ...) are not opened.
TABLES: dict[str, dict[str, str]] = {
    "accounts": {
        "account_id": "VARCHAR",
        "account_name": "VARCHAR",
        "plan": "VARCHAR",
        "industry": "VARCHAR",
        "region": "VARCHAR",
        "created_at": "TIMESTAMP",
    },
    "users": {
        "user_id": "VARCHAR",
        "account_id": "VARCHAR",
        "signup_at": "TIMESTAMP",
        "country": "VARCHAR",
        "is_internal": "BOOLEAN",
    },
    "events": {
        "event_id": "VARCHAR",
        "user_id": "VARCHAR",
        "session_id": "VARCHAR",
        "event_name": "VARCHAR",
        "event_ts": "TIMESTAMP",
        "platform": "VARCHAR",
        "app_version": "VARCHAR",
        "feature_key": "VARCHAR",
        "revenue_usd": "DECIMAL(38, 6)",
    },
    "errors": {
        "error_id": "VARCHAR",
        "user_id": "VARCHAR",
        "session_id": "VARCHAR",
        "occurred_at": "TIMESTAMP",
        "platform": "VARCHAR",
        "app_version": "VARCHAR",
        "severity": "VARCHAR",
        "error_type": "VARCHAR",
    },
    "incidents": {
        "incident_id": "VARCHAR",
        "severity": "VARCHAR",
        "opened_at": "TIMESTAMP",
        "resolved_at": "TIMESTAMP",
        "feature_key": "VARCHAR",
        "launch_id": "VARCHAR",
    },
    "support_tickets": {
        "ticket_id": "VARCHAR",
        "account_id": "VARCHAR",
        "user_id": "VARCHAR",
        "created_at": "TIMESTAMP",
        "resolved_at": "TIMESTAMP",
        "category": "VARCHAR",
        "priority": "VARCHAR",
        "feature_key": "VARCHAR",
    },
    "experiments": {
        "experiment_id": "VARCHAR",
        "experiment_name": "VARCHAR",
        "control_variant": "VARCHAR",
        "started_at": "TIMESTAMP",
        "ended_at": "TIMESTAMP",
    },
    "experiment_assignments": {
        "experiment_id": "VARCHAR",
        "user_id": "VARCHAR",
        "variant": "VARCHAR",
        "assigned_at": "TIMESTAMP",
    },
    "feedback": {
        "feedback_id": "VARCHAR",
        "user_id": "VARCHAR",
        "submitted_at": "TIMESTAMP",
        "channel": "VARCHAR",
        "nps_score": "INTEGER",
        "csat_score": "INTEGER",
        "comment": "VARCHAR",
        "feature_key": "VARCHAR",
    },
}

# ---------------------------------------------------------------------------------------------
# Metric sources: one view per source table, one row per counted row, with `metric_time` and
# every slice column the metrics over it support. The internal-user rule is applied here, once.
# ---------------------------------------------------------------------------------------------

SOURCE_VIEWS: dict[str, str] = {
    # Events, each event_id once, internal users' events dropped; country from the user, plan
    # and region from the user's account.
    "src_events": """
        with distinct_events as (
            select distinct * from events
        )
        select
            e.event_id,
            e.user_id,
            e.session_id,
            e.event_name,
            e.event_ts as metric_time,
            e.platform,
            e.app_version,
            e.feature_key,
            e.revenue_usd,
            u.country,
            a.plan,
            a.region
        from distinct_events as e
        left join users as u on u.user_id = e.user_id
        left join accounts as a on a.account_id = u.account_id
        where u.is_internal is not true
    """,
    # Errors of external or anonymous users; platform and app_version are the error's own,
    # country from the user and plan/region via the user's account (null for anonymous errors).
    "src_errors": """
        select
            r.error_id,
            r.user_id,
            r.occurred_at as metric_time,
            r.platform,
            r.app_version,
            r.severity,
            u.country,
            a.plan,
            a.region
        from errors as r
        left join users as u on u.user_id = r.user_id
        left join accounts as a on a.account_id = u.account_id
        where u.is_internal is not true
    """,
    # External users, timed by their signup.
    "src_users": """
        select
            u.user_id,
            u.signup_at as metric_time,
            u.country,
            a.plan,
            a.region
        from users as u
        left join accounts as a on a.account_id = u.account_id
        where u.is_internal is not true
    """,
    # Incidents have no user: all of them count, timed by when they were opened.
    "src_incidents": """
        select
            i.incident_id,
            i.opened_at as metric_time,
            i.opened_at,
            i.resolved_at,
            i.severity,
            i.feature_key
        from incidents as i
    """,
    # Tickets of external users or of no user; plan and region are the ticket's account's.
    "src_tickets": """
        select
            t.ticket_id,
            t.created_at as metric_time,
            t.priority,
            t.category,
            a.plan,
            a.region
        from support_tickets as t
        left join users as u on u.user_id = t.user_id
        left join accounts as a on a.account_id = t.account_id
        where u.is_internal is not true
    """,
    # Feedback of external users; country from the user, plan via the user's account.
    "src_feedback": """
        select
            f.feedback_id,
            f.submitted_at as metric_time,
            f.channel,
            f.nps_score,
            f.csat_score,
            u.country,
            a.plan
        from feedback as f
        left join users as u on u.user_id = f.user_id
        left join accounts as a on a.account_id = u.account_id
        where u.is_internal is not true
    """,
    # Signup cohorts for d7 retention: every external user, timed by signup, with the platform of
    # its first event (earliest event_ts, ties broken by event_id; null if it has no event) and
    # whether it has an event on UTC day 1..7 after its signup day (the signup day is day 0).
    "src_cohort": """
        with ranked_events as (
            select
                user_id,
                platform,
                row_number() over (partition by user_id order by metric_time, event_id) as n
            from src_events
        ),
        first_event as (
            select user_id, platform from ranked_events where n = 1
        ),
        retained_users as (
            select distinct e.user_id
            from src_events as e
            join src_users as s on s.user_id = e.user_id
            where date_diff('day', cast(s.metric_time as date), cast(e.metric_time as date))
                between 1 and 7
        )
        select
            s.user_id,
            s.metric_time,
            s.country,
            s.plan,
            f.platform,
            r.user_id is not null as retained
        from src_users as s
        left join first_event as f on f.user_id = s.user_id
        left join retained_users as r on r.user_id = s.user_id
    """,
}


#: The columns of each source a query may group or filter by. The pack's required slices of a
#: metric are a subset of these; the rest follow the same slice semantics (e.g. the HTTP spec's
#: example filters crash_free_user_rate by country: the country of the event's or error's user).
SOURCE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "src_events": (
        "platform",
        "app_version",
        "feature_key",
        "event_name",
        "country",
        "plan",
        "region",
    ),
    "src_errors": ("platform", "app_version", "country", "plan", "region"),
    "src_users": ("country", "plan", "region"),
    "src_incidents": ("severity", "feature_key"),
    "src_tickets": ("priority", "category", "plan", "region"),
    "src_feedback": ("channel", "country", "plan"),
    "src_cohort": ("country", "plan", "platform"),
}


@dataclass(frozen=True)
class Metric:
    """One governed metric as the oracle computes it.

    Attributes:
        name: The metric's name in the pack.
        definition: The pack's definition, for readers and failure messages.
        slices: The slices the pack says the metric supports.
        source: The source view aggregated (single-source metrics).
        value_sql: The aggregate over ``source`` giving the metric (single-source metrics).
        sides: For two-source metrics, ``(source, {part_name: aggregate})`` per side.
        combine_sql: For two-source metrics, the expression over the parts giving the metric.
        contributes: Which source rows count towards the metric (a condition on a row of
            ``source``; for two-source metrics one per side, in ``sides`` order). A group-by
            key exists only where one of its rows does.
    """

    name: str
    definition: str
    slices: tuple[str, ...]
    source: str | None = None
    value_sql: str | None = None
    sides: tuple[tuple[str, dict[str, str]], ...] = ()
    combine_sql: str | None = None
    contributes: tuple[str, ...] = ("true",)

    @property
    def sources(self) -> tuple[str, ...]:
        """The source views the metric reads."""
        return (self.source,) if self.source is not None else tuple(s for s, _ in self.sides)

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Fields the oracle can group or filter this metric by (besides metric_time)."""
        common = set.intersection(*(set(SOURCE_DIMENSIONS[s]) for s in self.sources))
        return tuple(d for d in SOURCE_DIMENSIONS[self.sources[0]] if d in common)


EVENT_SLICES = ("platform", "country", "plan", "region")

METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric(
            "events",
            "count of events (each event_id once)",
            ("platform", "app_version", "feature_key", "event_name", "country", "plan", "region"),
            source="src_events",
            value_sql="count(distinct event_id)",
        ),
        Metric(
            "active_users",
            "distinct users with at least one event",
            ("platform", "app_version", "country", "plan", "region"),
            source="src_events",
            value_sql="count(distinct user_id)",
            contributes=("user_id is not null",),
        ),
        Metric(
            "sessions",
            "distinct session_id",
            EVENT_SLICES,
            source="src_events",
            value_sql="count(distinct session_id)",
            contributes=("session_id is not null",),
        ),
        Metric(
            "new_users",
            "users, by signup",
            ("country", "plan", "region"),
            source="src_users",
            value_sql="count(distinct user_id)",
        ),
        Metric(
            "revenue",
            "sum of revenue_usd (0 over events without revenue)",
            EVENT_SLICES,
            source="src_events",
            value_sql="coalesce(sum(revenue_usd), 0)",
        ),
        Metric(
            "paying_users",
            "distinct users with an event with revenue_usd > 0",
            EVENT_SLICES,
            source="src_events",
            value_sql="count(distinct user_id) filter (where revenue_usd > 0)",
            contributes=("revenue_usd > 0 and user_id is not null",),
        ),
        Metric(
            "arpu",
            "revenue / active_users",
            EVENT_SLICES,
            source="src_events",
            value_sql="coalesce(sum(revenue_usd), 0) / nullif(count(distinct user_id), 0)",
        ),
        Metric(
            "feature_users",
            "distinct users with an event whose feature_key is not null",
            ("feature_key", "platform", "plan"),
            source="src_events",
            value_sql="count(distinct user_id) filter (where feature_key is not null)",
            contributes=("feature_key is not null and user_id is not null",),
        ),
        Metric(
            "feature_adoption_rate",
            "feature_users / active_users",
            ("platform", "plan"),
            source="src_events",
            value_sql=(
                "(count(distinct user_id) filter (where feature_key is not null)) / nullif(count(distinct user_id), 0)"
            ),
            contributes=("user_id is not null",),
        ),
        Metric(
            "crashes",
            "count of errors with severity crash",
            ("platform", "app_version"),
            source="src_errors",
            value_sql="count(*) filter (where severity = 'crash')",
        ),
        Metric(
            "crashed_users",
            "distinct users with at least one crash",
            ("platform", "app_version"),
            source="src_errors",
            value_sql="count(distinct user_id) filter (where severity = 'crash')",
            contributes=("severity = 'crash' and user_id is not null",),
        ),
        Metric(
            "crash_free_user_rate",
            "1 - crashed_users / active_users (events and errors over the same bucket)",
            ("platform", "app_version"),
            sides=(
                ("src_events", {"active_users": "count(distinct user_id)"}),
                (
                    "src_errors",
                    {"crashed_users": "count(distinct user_id) filter (where severity = 'crash')"},
                ),
            ),
            combine_sql="1 - coalesce(crashed_users, 0) / nullif(active_users, 0)",
            contributes=("user_id is not null", "severity = 'crash' and user_id is not null"),
        ),
        Metric(
            "errors_per_1k_events",
            "1000 * (errors with severity crash or error) / events",
            ("platform", "app_version"),
            sides=(
                ("src_events", {"events": "count(distinct event_id)"}),
                (
                    "src_errors",
                    {"bad_errors": "count(*) filter (where severity in ('crash', 'error'))"},
                ),
            ),
            combine_sql="1000 * coalesce(bad_errors, 0) / nullif(events, 0)",
            contributes=("true", "true"),
        ),
        Metric(
            "incidents",
            "count of incidents",
            ("severity", "feature_key"),
            source="src_incidents",
            value_sql="count(*)",
        ),
        Metric(
            "mttr_hours",
            "mean hours from opened_at to resolved_at over resolved incidents",
            ("severity",),
            source="src_incidents",
            value_sql=(
                "avg(date_diff('microsecond', opened_at, resolved_at) / 3600e6) filter (where resolved_at is not null)"
            ),
            contributes=("resolved_at is not null",),
        ),
        Metric(
            "tickets",
            "count of support tickets",
            ("priority", "category", "plan", "region"),
            source="src_tickets",
            value_sql="count(*)",
        ),
        Metric(
            "nps",
            "100 * (promoters 9-10 - detractors 0-6) / responses with an nps_score",
            ("channel", "country", "plan"),
            source="src_feedback",
            value_sql=(
                "100 * ((count(*) filter (where nps_score >= 9))"
                " - (count(*) filter (where nps_score <= 6)))"
                " / nullif(count(nps_score), 0)"
            ),
        ),
        Metric(
            "csat",
            "share of csat responses with csat_score >= 4",
            ("channel", "plan"),
            source="src_feedback",
            value_sql="(count(*) filter (where csat_score >= 4)) / nullif(count(csat_score), 0)",
        ),
        Metric(
            "d7_retention",
            "share of new users with an event on UTC day 1..7 after their signup day",
            ("country", "plan", "platform"),
            source="src_cohort",
            value_sql="(count(*) filter (where retained)) / nullif(count(*), 0)",
        ),
    ]
}

COMPARISON_OPS: dict[str, str] = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
LIST_OPS: dict[str, str] = {"in": "in", "not_in": "not in"}
NULL_OPS: dict[str, str] = {"is_null": "is null", "is_not_null": "is not null"}


def _time_grain(field: str) -> str | None:
    """The grain of a ``metric_time__<grain>`` field, or None for a slice.

    >>> _time_grain("metric_time__week"), _time_grain("platform")
    ('week', None)
    """
    if not field.startswith("metric_time__"):
        return None
    grain = field.removeprefix("metric_time__")
    if grain not in GRAINS:
        raise ValueError(f"unknown grain in {field!r}; grains are {GRAINS}")
    return grain


def _sql_string(path: Path) -> str:
    """A file path as a SQL string literal.

    >>> _sql_string(Path("/data/o'brien/events.csv"))
    "'/data/o''brien/events.csv'"
    """
    return "'" + str(path).replace("'", "''") + "'"


def _sort_key(row: Sequence[Any]) -> tuple[Any, ...]:
    """Order rows by their values with nulls first, so results are deterministic."""
    return tuple((v is not None, v) for v in row)


class Oracle:
    """Answers metric queries from a landing directory with hand-written DuckDB SQL.

    Args:
        landing_dir: A directory holding one ``<table>.parquet``, ``<table>.csv`` or
            ``<table>/`` folder of Parquet files per table of the landing contract.
    """

    def __init__(self, landing_dir: str | Path) -> None:
        self.landing_dir = Path(landing_dir)
        self.con = duckdb.connect(":memory:")
        self.con.execute("set TimeZone = 'UTC'")
        for table, columns in TABLES.items():
            self._create_table_view(table, columns)
        for name, sql in SOURCE_VIEWS.items():
            self.con.execute(f"create view {name} as {sql}")

    # -- landing files -------------------------------------------------------------------------

    def _reader(self, table: str) -> str:
        """The DuckDB table function reading one landing table, whatever form it landed in."""
        folder = self.landing_dir / table
        parquet = self.landing_dir / f"{table}.parquet"
        csv = self.landing_dir / f"{table}.csv"
        if folder.is_dir():
            glob = _sql_string(folder / "**" / "*.parquet")
            return f"read_parquet({glob}, hive_partitioning = true, union_by_name = true)"
        if parquet.is_file():
            return f"read_parquet({_sql_string(parquet)})"
        if csv.is_file():
            return f"read_csv({_sql_string(csv)}, header = true, all_varchar = true)"
        raise FileNotFoundError(f"landing table {table!r} not found in {self.landing_dir}")

    def _create_table_view(self, table: str, columns: Mapping[str, str]) -> None:
        """A view named after the table with the contract columns cast to their types.

        Timestamps go through TIMESTAMPTZ so that an explicit offset (``Z``, ``+02:00``) is
        honoured and everything ends up as naive UTC.
        """
        casts = []
        for column, sql_type in columns.items():
            if sql_type == "TIMESTAMP":
                casts.append(f"cast(cast({column} as timestamptz) as timestamp) as {column}")
            else:
                casts.append(f"cast({column} as {sql_type}) as {column}")
        self.con.execute(f"create view {table} as select {', '.join(casts)} from {self._reader(table)}")

    # -- queries -------------------------------------------------------------------------------

    def sql(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run ad-hoc SQL over the landing views (for checks in tests)."""
        return self.con.execute(text, list(params)).fetchall()

    def query(
        self,
        metrics: Sequence[str],
        group_by: Sequence[str] = (),
        where: Iterable[Mapping[str, Any]] = (),
        start: str | dt.date | None = None,
        end: str | dt.date | None = None,
    ) -> list[tuple[Any, ...]]:
        """Answer a metric query.

        Args:
            metrics: Metric names of the pack.
            group_by: ``metric_time__<grain>`` and/or slice names, in output order.
            where: Filters in the HTTP API's shape (``field``, ``op``, ``value``/``values``).
            start: Inclusive lower bound on metric_time (date or timestamp, UTC).
            end: Exclusive upper bound on metric_time.

        Returns:
            One tuple per output row: the group-by values (buckets as ``YYYY-MM-DD`` strings)
            followed by the metric values in ``metrics`` order, sorted by those values (nulls
            first).
        """
        where = list(where)
        per_metric: list[dict[tuple[Any, ...], Any]] = []
        # Per metric, its value over every group where its source has rows at all (no
        # contribution rule): what a row that another metric brings shows for it.
        over_any_rows: list[dict[tuple[Any, ...], Any]] = []
        for name in metrics:
            metric = self.metric(name)
            self._check_fields(metric, group_by, where)
            sql, params = self._metric_sql(metric, group_by, where, start, end)
            rows = self.con.execute(sql, params).fetchall()
            values = {tuple(r[:-1]): r[-1] for r in rows}
            if name == "d7_retention":
                values = {
                    k: None if self._cohort_window_open(k, group_by, start, end) else v for k, v in values.items()
                }
            per_metric.append(values)
            everywhere = values
            if len(metrics) > 1 and group_by and any(c != "true" for c in metric.contributes):
                relaxed = Metric(**{**metric.__dict__, "contributes": ("true",) * len(metric.contributes)})
                sql, params = self._metric_sql(relaxed, group_by, where, start, end)
                everywhere = {tuple(r[:-1]): r[-1] for r in self.con.execute(sql, params).fetchall()}
            over_any_rows.append(everywhere)
        keys = set().union(*per_metric) if per_metric else set()
        # A row exists where some metric has a contributing row. There, a metric whose source
        # has rows but none that count (crashed_users beside crashes on a day of warnings only)
        # is its definition over those rows (a count 0, a mean null); a metric whose source has
        # no row there at all is null.
        out = [
            key
            + tuple(
                values[key] if key in values else everywhere.get(key)
                for values, everywhere in zip(per_metric, over_any_rows)
            )
            for key in keys
        ]
        return sorted(out, key=_sort_key)

    def _cohort_window_open(
        self, key: tuple[Any, ...], group_by: Sequence[str], start: str | dt.date | None, end: str | dt.date | None
    ) -> bool:
        """Whether some signup day of this row's bucket has a day 1..7 outside the events."""
        ((first_event, last_event),) = self.con.execute(
            "select min(metric_time)::date, max(metric_time)::date from src_events"
        ).fetchall()
        ((first_signup, last_signup),) = self.con.execute(
            "select min(metric_time)::date, max(metric_time)::date from src_users"
        ).fetchall()
        low = dt.datetime.combine(first_signup, dt.time())
        high = dt.datetime.combine(last_signup, dt.time()) + dt.timedelta(days=1)
        for value, field in zip(key, group_by):
            grain = _time_grain(field)
            if grain is None or value is None:
                continue
            day = dt.date.fromisoformat(value)
            following = {
                "day": day + dt.timedelta(days=1),
                "week": day + dt.timedelta(days=7),
                "month": dt.date(day.year + day.month // 12, day.month % 12 + 1, 1),
                "quarter": dt.date(day.year + (day.month + 2) // 12, (day.month + 2) % 12 + 1, 1),
                "year": dt.date(day.year + 1, 1, 1),
            }[grain]
            low = max(low, dt.datetime.combine(day, dt.time()))
            high = min(high, dt.datetime.combine(following, dt.time()))
        if start is not None:
            low = max(low, dt.datetime.fromisoformat(str(start)))
        if end is not None:
            high = min(high, dt.datetime.fromisoformat(str(end)))
        if high <= low:
            return False
        first_day = low.date()
        last_day = (high - dt.timedelta(microseconds=1)).date()
        return first_day + dt.timedelta(days=1) < first_event or last_day + dt.timedelta(days=7) > last_event

    @staticmethod
    def metric(name: str) -> Metric:
        """The metric called ``name``, or KeyError."""
        try:
            return METRICS[name]
        except KeyError:
            raise KeyError(f"unknown metric {name!r}") from None

    @staticmethod
    def _check_fields(metric: Metric, group_by: Sequence[str], where: Sequence[Mapping[str, Any]]) -> None:
        for field in [*group_by, *(f["field"] for f in where)]:
            if _time_grain(field) is None and field not in metric.dimensions:
                raise ValueError(f"{metric.name} has no dimension {field!r}; it has {metric.dimensions}")

    def _metric_sql(
        self,
        metric: Metric,
        group_by: Sequence[str],
        where: Sequence[Mapping[str, Any]],
        start: str | dt.date | None,
        end: str | dt.date | None,
    ) -> tuple[str, list[Any]]:
        """The SQL statement (and its parameters) computing one metric per group-by key."""
        if metric.source is not None:
            assert metric.value_sql is not None
            sql, params = self._aggregate_sql(
                metric.source,
                {"value": metric.value_sql},
                group_by,
                where,
                start,
                end,
                metric.contributes[0],
            )
            return sql, params
        # Two sources: aggregate each side, then full outer join on the (null-safe) keys.
        assert metric.combine_sql is not None and len(metric.sides) == 2
        params: list[Any] = []
        ctes = []
        for side_name, (source, parts), contributes in zip(
            ("lhs", "rhs"), metric.sides, metric.contributes, strict=True
        ):
            side_sql, side_params = self._aggregate_sql(source, parts, group_by, where, start, end, contributes)
            ctes.append(f"{side_name} as ({side_sql})")
            params += side_params
        keys = [f"k{i}" for i in range(len(group_by))]
        key_select = [f"coalesce(lhs.{k}, rhs.{k}) as {k}" for k in keys]
        on = " and ".join(f"lhs.{k} is not distinct from rhs.{k}" for k in keys) or "true"
        sql = (
            f"with {', '.join(ctes)}\n"
            f"select {', '.join([*key_select, f'{metric.combine_sql} as value'])}\n"
            f"from lhs full outer join rhs on {on}"
        )
        return sql, params

    @staticmethod
    def _aggregate_sql(
        source: str,
        aggregates: Mapping[str, str],
        group_by: Sequence[str],
        where: Sequence[Mapping[str, Any]],
        start: str | dt.date | None,
        end: str | dt.date | None,
        contributes: str = "true",
    ) -> tuple[str, list[Any]]:
        """``select <keys k0..kn>, <aggregates> from <source> where ... group by <keys>``,
        grouped over the rows that count towards the metric (``contributes``) only.

        Field names come from the fixed metric table (checked by ``_check_fields``); every value
        the caller supplies is a bind parameter.
        """
        select = []
        for i, field in enumerate(group_by):
            grain = _time_grain(field)
            expr = field if grain is None else (f"strftime(date_trunc('{grain}', metric_time), '%Y-%m-%d')")
            select.append(f"{expr} as k{i}")
        select += [f"{sql} as {name}" for name, sql in aggregates.items()]

        conditions: list[str] = []
        params: list[Any] = []
        if start is not None:
            conditions.append("metric_time >= cast(cast(? as timestamptz) as timestamp)")
            params.append(str(start))
        if end is not None:
            conditions.append("metric_time < cast(cast(? as timestamptz) as timestamp)")
            params.append(str(end))
        for f in where:
            field, op = f["field"], f["op"]
            grain = _time_grain(field)
            column = field if grain is None else f"date_trunc('{grain}', metric_time)"
            value_sql = "?" if grain is None else "cast(? as date)"
            if op in COMPARISON_OPS:
                conditions.append(f"{column} {COMPARISON_OPS[op]} {value_sql}")
                params.append(f["value"])
            elif op in LIST_OPS:
                values = list(f["values"])
                if not values:
                    raise ValueError(f"{op} needs at least one value")
                placeholders = ", ".join([value_sql] * len(values))
                conditions.append(f"{column} {LIST_OPS[op]} ({placeholders})")
                params += values
            elif op in NULL_OPS:
                conditions.append(f"{column} {NULL_OPS[op]}")
            else:
                raise ValueError(f"unknown filter op {op!r}")

        if group_by and contributes != "true":
            # A key exists only where a row counts towards the metric; without group-by the
            # one row stays (counts 0 over nothing), and the aggregates skip such rows anyway.
            conditions.append(f"({contributes})")
        sql = f"select {', '.join(select)}\nfrom {source}"
        if conditions:
            sql += "\nwhere " + "\n  and ".join(conditions)
        if group_by:
            sql += "\ngroup by " + ", ".join(str(i + 1) for i in range(len(group_by)))
        return sql, params


# Who a readout counts: each non-internal user's first assignment to the experiment, with the
# window its values are measured over (to the experiment's end, or the end of the data).
EXPERIMENT_POPULATION = """
    with first as (
        select a.experiment_id, a.user_id, a.variant, a.assigned_at,
               row_number() over (partition by a.experiment_id, a.user_id order by a.assigned_at, a.variant) as rn
        from experiment_assignments a join users u on u.user_id = a.user_id
        where u.is_internal is not true)
    select f.user_id, f.variant, f.assigned_at,
           coalesce(x.ended_at, (select max(event_ts) + interval 1 microsecond from events)) as window_end
    from first f join experiments x on x.experiment_id = f.experiment_id
    where f.rn = 1 and f.experiment_id = ?
"""


def hand_conversion(oracle: Oracle, experiment_id: str, region: str | None = None) -> dict[str, tuple[int, float]]:
    """Per variant: users and the share who bought after their assignment (optionally only the
    users of one account region)."""
    in_region = (
        ("join users u on u.user_id = p0.user_id join accounts ac on ac.account_id = u.account_id where ac.region = ?")
        if region
        else ""
    )
    rows = oracle.sql(
        f"""
        with p as (select p0.* from ({EXPERIMENT_POPULATION}) p0 {in_region}),
        per_user as (
            select p.variant, p.user_id,
                   max(case when e.revenue_usd > 0 then 1 else 0 end) as converted
            from p left join (select distinct * from events) e
              on e.user_id = p.user_id and e.event_ts >= p.assigned_at and e.event_ts < p.window_end
            group by 1, 2)
        select variant, count(*), avg(converted) from per_user group by 1 order by 1""",
        [experiment_id, region] if region else [experiment_id],
    )
    return {variant: (n, mean) for variant, n, mean in rows}
