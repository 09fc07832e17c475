"""MetricFlow next to northstar over one warehouse build: shared by the parity test
(`tests/metrics/test_metricflow_parity.py`) and the compile benchmark (`compile_bench.py`).

What is here:

* `DuckDBSqlClient`: MetricFlow's `SqlClient` protocol over a DuckDB file, read-only. dbt-metricflow's
  own CLI goes through a dbt adapter (`AdapterBackedSqlClient`), which returns agate tables whose type
  inference would blur the comparison; this client hands MetricFlow DuckDB's own values.
* `open_metricflow(...)`: a `MetricFlowEngine` over a build's `semantic_manifest.json` and DuckDB file,
  the same two files northstar's `MetricsEngine.open` reads.
* `Case` and `parity_cases()`: the shared query list, and how each case becomes a MetricFlow
  `MetricFlowQueryRequest` and a northstar `MetricQuery`; `agreeing_cases()` adds the parity test's
  open-range cumulative and conversion cases (every query both engines answer alike).

Importing this module does not import MetricFlow; the functions that need it import it when called.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO / "dbt_project"


# -- MetricFlow over a DuckDB file ------------------------------------------------------------


def _sql_client_class():
    import duckdb
    from metricflow.data_table.mf_table import MetricFlowDataTable
    from metricflow.protocols.sql_client import SqlEngine
    from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer
    from metricflow_semantics.sql.sql_bind_parameters import SqlBindParameterSet

    class DuckDBSqlClient:
        """MetricFlow's `SqlClient` protocol over one DuckDB file (read-only)."""

        def __init__(self, path: Path) -> None:
            # Same configuration as northstar's DuckDBClient (read-only, default settings), so both
            # share one DuckDB database instance when they run in the same process.
            self.path = Path(path)
            self._con = duckdb.connect(str(self.path), read_only=True)
            self._renderer = DuckDbSqlPlanRenderer()

        @property
        def sql_engine_type(self) -> SqlEngine:
            return SqlEngine.DUCKDB

        @property
        def sql_plan_renderer(self) -> DuckDbSqlPlanRenderer:
            return self._renderer

        def raw(self, stmt: str, bind: SqlBindParameterSet = SqlBindParameterSet()):
            """Column names and rows exactly as DuckDB returns them."""
            cursor = self._con.cursor()
            try:
                cursor.execute(stmt, dict(bind.param_dict) or None)
                return [d[0] for d in cursor.description], cursor.fetchall()
            finally:
                cursor.close()

        def query(self, stmt: str, sql_bind_parameter_set: SqlBindParameterSet = SqlBindParameterSet()):
            names, rows = self.raw(stmt, sql_bind_parameter_set)
            return MetricFlowDataTable.create_from_rows(column_names=names, rows=rows)

        def execute(self, stmt: str, sql_bind_parameter_set: SqlBindParameterSet = SqlBindParameterSet()) -> None:
            self.raw(stmt, sql_bind_parameter_set)

        def dry_run(self, stmt: str, sql_bind_parameter_set: SqlBindParameterSet = SqlBindParameterSet()) -> None:
            self.raw("EXPLAIN " + stmt, sql_bind_parameter_set)

        def close(self) -> None:
            self._con.close()

        def render_bind_parameter_key(self, bind_parameter_key: str) -> str:
            return "$" + bind_parameter_key

    return DuckDBSqlClient


def open_metricflow(manifest_path: Path, warehouse: Path | None):
    """A `MetricFlowEngine` over `semantic_manifest.json`; with `warehouse`, able to run queries
    against that DuckDB file, without it able only to `explain` (compile)."""
    from metricflow.engine.metricflow_engine import MetricFlowEngine
    from metricflow_semantics.model.dbt_manifest_parser import parse_manifest_from_dbt_generated_manifest
    from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

    manifest = parse_manifest_from_dbt_generated_manifest(manifest_json_string=Path(manifest_path).read_text())
    client = _sql_client_class()(Path(os.path.realpath(warehouse))) if warehouse is not None else _CompileOnlyClient()
    return MetricFlowEngine(semantic_manifest_lookup=SemanticManifestLookup(manifest), sql_client=client)


class _CompileOnlyClient:
    """A SqlClient that only renders (for `explain` on a manifest with no warehouse behind it)."""

    @property
    def sql_engine_type(self):
        from metricflow.protocols.sql_client import SqlEngine

        return SqlEngine.DUCKDB

    @property
    def sql_plan_renderer(self):
        from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer

        return DuckDbSqlPlanRenderer()

    def query(self, *args, **kwargs):
        raise RuntimeError("compile-only MetricFlow client: no warehouse")

    execute = dry_run = query

    def close(self) -> None:
        pass

    def render_bind_parameter_key(self, key: str) -> str:
        return "$" + key


# -- the shared query list ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One metric query, stated once for both engines.

    `where` holds dbt filter templates (`{{ Dimension('user__country') }} = 'US'`), which both engines
    read. `start`/`end` follow northstar's convention: a half-open range `[start, end)` on metric time.
    MetricFlow's `time_constraint_start/end` is inclusive at day precision and widened to whole buckets
    of the query's grain, so the request gives it `end - 1 day`; for bounds on bucket boundaries of the
    query's grain the two mean the same rows (`mf_request` checks that unless `aligned=False`).
    """

    id: str
    metrics: tuple[str, ...]
    group_by: tuple[str, ...] = ()
    where: tuple[str, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None
    order_by: tuple[str, ...] = ()  # "-name" sorts descending
    limit: int | None = None
    aligned: bool = True
    tags: frozenset[str] = field(default_factory=frozenset)

    @property
    def ordered(self) -> bool:
        return bool(self.order_by)


_GRAIN_STARTS = {
    "day": lambda d: True,
    "week": lambda d: d.weekday() == 0,
    "month": lambda d: d.day == 1,
    "quarter": lambda d: d.day == 1 and d.month in (1, 4, 7, 10),
    "year": lambda d: d.day == 1 and d.month == 1,
}


def _grains(case: Case) -> list[str]:
    return [g.rsplit("__", 1)[1] for g in case.group_by if g.startswith("metric_time__")]


def mf_request(case: Case, sorted_like_northstar: bool = False):
    """MetricFlow's request for a case. northstar answers sorted by the group-by columns when a query
    names no order; `sorted_like_northstar` asks MetricFlow for that same order, so that timing the
    two compares the same answer."""
    from metricflow.engine.metricflow_engine import MetricFlowQueryRequest

    end_inclusive = None
    if case.aligned:
        for grain in _grains(case):
            for bound in (case.start, case.end):
                if bound is not None and not _GRAIN_STARTS[grain](bound):
                    raise ValueError(
                        f"{case.id}: {bound} is not on a {grain} boundary; MetricFlow would "
                        "widen the range to whole buckets"
                    )
    if case.end is not None:
        end_inclusive = dt.datetime.combine(case.end - dt.timedelta(days=1), dt.time())
    return MetricFlowQueryRequest.create(
        metric_names=list(case.metrics),
        group_by_names=list(case.group_by) or None,
        where_constraints=list(case.where) or None,
        time_constraint_start=dt.datetime.combine(case.start, dt.time()) if case.start else None,
        time_constraint_end=end_inclusive,
        order_by_names=list(case.order_by) or (list(case.group_by) if sorted_like_northstar else None) or None,
        limit=case.limit,
    )


def northstar_query(case: Case):
    """The case as a northstar query, answered with the values as the SQL computes them:
    MetricFlow has no completeness step, so windows the data does not cover are not nulled."""
    from metrics.query.request import MetricQuery, OrderBy, parse_time_bound

    return MetricQuery(
        metrics=case.metrics,
        group_by=case.group_by,
        where_sql=case.where,
        start=parse_time_bound(case.start, "start"),
        end=parse_time_bound(case.end, "end"),
        order_by=tuple(OrderBy.parse(o) for o in case.order_by),
        limit=case.limit,
        null_uncovered_windows=False,
    )


def pack_metrics(project: Path = DBT_PROJECT) -> dict[str, dict]:
    """Every metric defined in the dbt project's YAML, by name (read at collection time, so a metric
    added to the pack is checked without touching the test)."""
    import yaml

    metrics: dict[str, dict] = {}
    for path in sorted((project / "models").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for metric in doc.get("metrics") or []:
            metrics[metric["name"]] = metric
    return dict(sorted(metrics.items()))


def simple_metric_names(project: Path = DBT_PROJECT) -> list[str]:
    return [name for name, m in pack_metrics(project).items() if m.get("type") == "simple"]


def cumulative_metric_names(project: Path = DBT_PROJECT) -> list[str]:
    return [name for name, m in pack_metrics(project).items() if m.get("type") == "cumulative"]


def offset_metric_names(project: Path = DBT_PROJECT) -> list[str]:
    """Derived metrics with an offset_window / offset_to_grain input."""
    return [
        name
        for name, m in pack_metrics(project).items()
        if m.get("type") == "derived"
        and any(
            i.get("offset_window") or i.get("offset_to_grain")
            for i in (m.get("type_params") or {}).get("metrics") or []
            if isinstance(i, dict)
        )
    ]


def all_time_cumulative_names(project: Path = DBT_PROJECT) -> list[str]:
    """Cumulative metrics with neither a window nor grain_to_date."""
    out = []
    for name, m in pack_metrics(project).items():
        if m.get("type") != "cumulative":
            continue
        params = {**(m.get("type_params") or {}), **((m.get("type_params") or {}).get("cumulative_type_params") or {})}
        if not params.get("window") and not params.get("grain_to_date"):
            out.append(name)
    return out


def conversion_metric_names(project: Path = DBT_PROJECT) -> list[str]:
    return [name for name, m in pack_metrics(project).items() if m.get("type") == "conversion"]


RATIO_SLICES = {
    # ratio metric -> an entity-qualified dimension of its semantic model (or one joined to it)
    "arpu": "user__country",
    "nps": "feedback__channel",
    "csat": "feedback__channel",
    "d7_retention": "user__plan",
    "feature_adoption_rate": "user__country",
}
DERIVED = ("crash_free_user_rate", "errors_per_1k_events")

# The sample's events run from 2026-01-05 (a Monday) to 2026-04-04. Cumulative and offset metrics
# are compared over an explicit range on bucket boundaries: without one, the two engines choose
# different spans of buckets (see the test's KNOWN_DIFFERENCES).
RANGES = {
    "day": (dt.date(2026, 1, 5), dt.date(2026, 4, 6)),
    "week": (dt.date(2026, 1, 5), dt.date(2026, 4, 6)),
    "month": (dt.date(2026, 1, 1), dt.date(2026, 5, 1)),
}


def parity_cases(simple: Sequence[str] | None = None) -> list[Case]:
    simple = simple_metric_names() if simple is None else simple
    cases: list[Case] = []
    for metric in simple:
        for grain in ("day", "month"):
            cases.append(
                Case(f"{metric}-by-{grain}", (metric,), (f"metric_time__{grain}",), tags=frozenset({"simple"}))
            )
    for metric, dim in RATIO_SLICES.items():
        cases.append(Case(f"{metric}-by-week", (metric,), ("metric_time__week",), tags=frozenset({"ratio"})))
        cases.append(Case(f"{metric}-by-{dim}", (metric,), (dim,), tags=frozenset({"ratio"})))
    cases.append(Case("tickets-by-account__region", ("tickets",), ("account__region",), tags=frozenset({"ratio"})))
    for metric in DERIVED:
        cases.append(Case(f"{metric}-by-week", (metric,), ("metric_time__week",), tags=frozenset({"derived"})))
    for metric in cumulative_metric_names():
        for grain, (start, end) in RANGES.items():
            cases.append(
                Case(
                    f"{metric}-by-{grain}-range",
                    (metric,),
                    (f"metric_time__{grain}",),
                    start=start,
                    end=end,
                    tags=frozenset({"cumulative"}),
                )
            )
        start, end = RANGES["week"]
        cases.append(
            Case(
                f"{metric}-by-week-platform-range",
                (metric,),
                ("metric_time__week", "event__platform"),
                start=start,
                end=end,
                tags=frozenset({"cumulative"}),
            )
        )
    for metric in offset_metric_names():
        # Offsets add no buckets of their own in northstar: the day range stops at the data's end.
        for grain, (start, end) in (("day", (dt.date(2026, 1, 5), dt.date(2026, 4, 5))), ("week", RANGES["week"])):
            cases.append(
                Case(
                    f"{metric}-by-{grain}-range",
                    (metric,),
                    (f"metric_time__{grain}",),
                    start=start,
                    end=end,
                    tags=frozenset({"offset"}),
                )
            )
    cases += [
        # where filters (dbt template syntax) and time constraints
        Case(
            "events-ios-by-day-range",
            ("events", "active_users"),
            ("metric_time__day",),
            where=("{{ Dimension('event__platform') }} = 'ios'",),
            start=dt.date(2026, 1, 10),
            end=dt.date(2026, 2, 1),
            tags=frozenset({"where"}),
        ),
        Case(
            "arpu-us-de-by-week-range",
            ("arpu",),
            ("metric_time__week", "user__country"),
            where=("{{ Dimension('user__country') }} in ('US', 'DE')",),
            start=dt.date(2026, 1, 12),
            end=dt.date(2026, 2, 9),
            tags=frozenset({"where"}),
        ),
        Case(
            "nps-in_app-by-week",
            ("nps", "nps_responses"),
            ("metric_time__week",),
            where=("{{ Dimension('feedback__channel') }} = 'in_app'",),
            tags=frozenset({"where"}),
        ),
        Case(
            "tickets-urgent-by-region",
            ("tickets",),
            ("account__region",),
            where=(
                "{{ Dimension('ticket__priority') }} in ('high', 'urgent')",
                "{{ TimeDimension('metric_time', 'day') }} >= '2026-01-15'",
            ),
            tags=frozenset({"where"}),
        ),
        Case(
            "revenue-paid-plans-by-month",
            ("revenue", "paying_users"),
            ("metric_time__month", "user__plan"),
            where=("{{ Dimension('user__plan') }} != 'free'",),
            start=dt.date(2026, 1, 1),
            tags=frozenset({"where"}),
        ),
        # a metric in a filter, per entity: events of users whose all-time revenue is over 100
        Case(
            "events-of-big-spenders-by-month",
            ("events", "active_users"),
            ("metric_time__month",),
            where=("{{ Metric('revenue', group_by=['user']) }} > 100",),
            tags=frozenset({"where"}),
        ),
        Case(
            "tickets-of-busy-accounts-by-priority",
            ("tickets",),
            ("ticket__priority",),
            where=("{{ Metric('tickets', group_by=['account']) }} >= 3",),
            tags=frozenset({"where"}),
        ),
        Case(
            "errors-per-1k-by-week-range",
            ("errors_per_1k_events",),
            ("metric_time__week",),
            start=dt.date(2026, 1, 5),
            end=dt.date(2026, 2, 2),
            tags=frozenset({"where", "derived"}),
        ),
        # order_by + limit (orderings chosen to be total, so the first N rows are well defined)
        Case(
            "top-days-by-events",
            ("events",),
            ("metric_time__day",),
            order_by=("-events", "metric_time__day"),
            limit=10,
            tags=frozenset({"order"}),
        ),
        Case(
            "top-countries-by-revenue",
            ("revenue", "active_users"),
            ("user__country",),
            order_by=("-revenue", "user__country"),
            limit=5,
            tags=frozenset({"order"}),
        ),
        Case(
            "first-weeks-csat",
            ("csat",),
            ("metric_time__week",),
            order_by=("metric_time__week",),
            limit=3,
            tags=frozenset({"order"}),
        ),
        # beyond the brief: derived metrics sliced through their shared `user` entity (anonymous errors
        # give a null user__platform on one side), metrics of several models in one query (null keys
        # on both sides), grand totals, an entity and a two-hop dimension
        Case(
            "crash_free_user_rate-by-user__platform",
            ("crash_free_user_rate",),
            ("user__platform",),
            tags=frozenset({"derived", "extra"}),
        ),
        Case(
            "errors_per_1k_events-by-week-country",
            ("errors_per_1k_events",),
            ("metric_time__week", "user__country"),
            tags=frozenset({"derived", "extra"}),
        ),
        Case(
            "new_users-errors-by-user__platform",
            ("new_users", "errors"),
            ("metric_time__month", "user__platform"),
            tags=frozenset({"extra"}),
        ),
        Case("totals-three-models", ("events", "tickets", "nps", "crash_free_user_rate"), tags=frozenset({"extra"})),
        Case(
            "events-by-user-entity-top",
            ("events",),
            ("user",),
            order_by=("-events", "user"),
            limit=5,
            tags=frozenset({"extra", "order"}),
        ),
        Case(
            "events-by-user__account__industry",
            ("events", "arpu"),
            ("user__account__industry",),
            tags=frozenset({"extra"}),
        ),
        Case("d7_retention-by-signup-week", ("d7_retention",), ("user__signup_at__week",), tags=frozenset({"extra"})),
    ]
    return cases


# The parity test's other agreeing cases (tests/metrics/test_metricflow_parity.py states them again
# next to their tests): cumulative metrics with a window or grain_to_date queried without a range,
# and conversion metrics in total, by week over a range and by an entity-qualified dimension.


def cumulative_open_range_cases() -> list[Case]:
    return [
        Case(f"{m}-by-day-no-range", (m,), ("metric_time__day",), tags=frozenset({"cumulative"}))
        for m in cumulative_metric_names()
        if m not in all_time_cumulative_names()
    ]


def conversion_cases() -> list[Case]:
    start, end = RANGES["week"]
    tags = frozenset({"conversion"})
    return [
        case
        for m in conversion_metric_names()
        for case in (
            Case(f"{m}-total", (m,), tags=tags),
            Case(f"{m}-by-week-range", (m,), ("metric_time__week",), start=start, end=end, tags=tags),
            Case(f"{m}-by-user__country", (m,), ("user__country",), tags=tags),
        )
    ]


def agreeing_cases() -> list[Case]:
    """Every query on which the parity test expects both engines to give the same rows."""
    return parity_cases() + cumulative_open_range_cases() + conversion_cases()
