"""Same rows both ways: every metric of the pack, in the parity suite's shapes (grains, slices,
filters, ranges, Sunday weeks, a time zone), answered from the sample's rollups when the
router proves it may, and from the semantic models, on the warehouse `northstar build` wrote.

The raw answer is rendered straight from the plan (`Renderer.render`), never through the
router; the routed answer is the statement `compile` returns. Rows are matched as sorted
lists, floats within 1e-9 relative. Queries the router sends to raw are counted too, and the
shapes a rollup cannot answer (a time zone, a distinct count at a coarser grain than stored,
a range cut inside a stored bucket) are checked to go raw with their reason.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from metrics.engine import MetricsEngine
from metrics.errors import MetricsError
from metrics.query.request import Filter, FilterOp, MetricQuery, OrderBy, WeekStart

REL = 1e-9


@pytest.fixture(scope="module")
def engine(built_warehouse):
    engine = MetricsEngine.open(built_warehouse.warehouse)
    yield engine
    engine.close()


def _key(row) -> tuple:
    return tuple((v is None, str(v)) for v in row)


def _same(got: list, want: list, context) -> None:
    assert len(got) == len(want), context
    for g_row, w_row in zip(sorted(got, key=_key), sorted(want, key=_key), strict=True):
        for g, w in zip(g_row, w_row, strict=True):
            if isinstance(w, (float, Decimal)) and w is not None and g is not None:
                assert float(g) == pytest.approx(float(w), rel=REL, abs=1e-12), (context, g_row, w_row)
            else:
                assert g == w, (context, g_row, w_row)


PLATFORM_IOS = Filter("event__platform", FilterOp.EQ, "ios")
SHAPES: dict[str, dict] = {
    "total": {},
    "day": {"group_by": ("metric_time__day",)},
    "week": {"group_by": ("metric_time__week",)},
    "month": {"group_by": ("metric_time__month",)},
    "quarter": {"group_by": ("metric_time__quarter",)},
    "day_by_platform": {"group_by": ("metric_time__day", "event__platform")},
    "week_by_platform": {"group_by": ("metric_time__week", "event__platform")},
    "platform": {"group_by": ("event__platform",)},
    "week_ios": {"group_by": ("metric_time__week",), "where": (PLATFORM_IOS,)},
    "day_ios": {"group_by": ("metric_time__day",), "where": (PLATFORM_IOS,)},
    "day_ios_or_android": {
        "group_by": ("metric_time__day",),
        "where": (Filter("event__platform", FilterOp.IN, values=("ios", "android")),),
    },
    "ios_not_android_template": {"where_sql": ("{{ Dimension('event__platform') }} != 'android'",)},
    "day_weeks_filtered": {
        "group_by": ("metric_time__day",),
        "where": (Filter("metric_time__week", FilterOp.GE, "2026-02-02"),),
    },
    "week_range": {
        "group_by": ("metric_time__week",),
        "start": dt.datetime(2026, 1, 12),
        "end": dt.datetime(2026, 3, 2),
    },
    "month_range_mid_week": {
        "group_by": ("metric_time__month",),
        "start": dt.datetime(2026, 1, 14),
        "end": dt.datetime(2026, 2, 25),
    },
    "range_inside_a_day": {"group_by": ("metric_time__week",), "start": dt.datetime(2026, 1, 14, 12)},
    "sunday_weeks": {"group_by": ("metric_time__week",), "week_start": WeekStart.SUNDAY},
    "berlin_days": {"group_by": ("metric_time__day",), "timezone": "Europe/Berlin"},
    "country": {"group_by": ("metric_time__week", "user__country")},
    "ordered_top": {"group_by": ("metric_time__week",), "order_by": (OrderBy("metric_time__week", True),), "limit": 3},
}


def test_every_metric_answers_the_same_from_rollups_and_from_raw(engine) -> None:
    routed, raw_only, skipped = {}, {}, 0
    for metric, (shape, params) in itertools.product(sorted(engine.manifest.metrics), SHAPES.items()):
        query = MetricQuery(metrics=(metric,), **params)
        try:
            plan = engine.plan(query)
            compiled = engine.compile(query)
        except MetricsError:  # a shape the metric does not take (e.g. a slice its model lacks)
            skipped += 1
            continue
        explained = compiled.explanation["rollup"]
        if explained["answered_by"] is None:
            raw_only[(metric, shape)] = explained["why_not"]
            assert "rollups." not in compiled.sql
            continue
        routed[(metric, shape)] = explained["answered_by"]
        rendered = engine.renderer.render(plan)
        assert "rollups." not in rendered.sql
        raw = engine.client.query(rendered.sql, rendered.params).rows
        answer = engine.client.query(compiled.sql, compiled.params).rows
        _same(answer, raw, (metric, shape, explained))
        if query.order_by:
            assert [r[0] for r in answer] == [r[0] for r in raw]
    # The routes the sample's rollups are declared for, and those they must refuse.
    assert routed[("revenue", "month")] == "rollups.daily_core_by_platform"
    assert routed[("arpu", "day_by_platform")] == "rollups.daily_core_by_platform"
    assert routed[("events", "sunday_weeks")] == "rollups.daily_quality"
    assert routed[("nps", "quarter")] == "rollups.daily_quality"
    assert routed[("errors_per_1k_events", "week_range")] == "rollups.daily_quality"
    assert routed[("revenue", "ios_not_android_template")] == "rollups.daily_core_by_platform"
    assert routed[("active_users", "week_by_platform")] == "rollups.weekly_active_users_by_platform"
    assert routed[("arpu", "day_ios")] == "rollups.daily_core_by_platform"  # the = filter fixes the slice
    assert "count distinct" in raw_only[("arpu", "day_ios_or_android")]["rollups.daily_core_by_platform"]
    assert "count distinct" in raw_only[("arpu", "week")]["rollups.daily_core_by_platform"]
    assert "Europe/Berlin" in raw_only[("events", "berlin_days")]["rollups.daily_quality"]
    assert (
        "not the start of a stored day" in raw_only[("revenue", "range_inside_a_day")]["rollups.daily_core_by_platform"]
    )
    assert "user__country" in raw_only[("revenue", "country")]["rollups.daily_core_by_platform"]
    assert "cumulative" in raw_only[("revenue_mtd", "month")]["rollups.daily_core_by_platform"]
    assert len(routed) >= 130 and len(raw_only) >= 250, (len(routed), len(raw_only), skipped)


def test_a_row_policy_is_answered_from_a_rollup_only_with_its_column(engine) -> None:
    from metrics.policy import RestrictedEngine, RowPolicy

    query = MetricQuery(metrics=("events", "revenue"), group_by=("metric_time__week",))
    ios = RestrictedEngine(engine, RowPolicy((PLATFORM_IOS,), "platform is ios"))
    compiled = ios.compile(query)
    assert compiled.explanation["rollup"]["answered_by"] == "rollups.daily_core_by_platform"
    raw = engine.renderer.render(engine.plan(ios.restrict(query)))
    _same(
        engine.client.query(compiled.sql, compiled.params).rows, engine.client.query(raw.sql, raw.params).rows, "policy"
    )
    us = RestrictedEngine(engine, RowPolicy((Filter("user__country", FilterOp.EQ, "US"),), "country is US"))
    explained = us.compile(query).explanation["rollup"]
    assert explained["answered_by"] is None
    assert explained["why_not"]["rollups.daily_core_by_platform"] == (
        "it has no column for the filter on 'user__country'"
    )


def test_reaggregation_runs_the_same_on_postgres(engine, postgres_dsn) -> None:
    """The PostgreSQL rendering of re-aggregated answers (several models' aggregates stacked
    and grouped, as PostgreSQL combines them), run on PostgreSQL over copies of the DuckDB
    build's rollup tables, gives the DuckDB answer."""
    import os

    import psycopg

    from metrics.sql.render import Renderer
    from metrics.sql.rollups import reaggregated

    types = {"date": "date", "string": "text", "integer": "bigint", "number": "double precision"}
    schema = f"rollups_test_{os.getpid()}"
    postgres = Renderer(engine.graph, "postgres")
    cases = [
        (("events", "revenue"), shape)
        for shape in (
            "month",
            "week_ios",
            "ios_not_android_template",
            "day_weeks_filtered",
            "week_range",
            "sunday_weeks",
            "total",
        )
    ]
    cases += [
        (("arpu", "events"), "day_by_platform"),
        (("errors_per_1k_events", "nps", "tickets"), "week"),
        (("errors_per_1k_events", "csat"), "total"),
        (("crashes", "nps"), "month_range_mid_week"),
    ]
    with psycopg.connect(postgres_dsn, autocommit=True) as con:
        con.execute(f'create schema "{schema}"')
        try:
            for table in ("daily_core_by_platform", "daily_quality"):
                source = engine.client.query(f'select * from "rollups"."{table}"')
                columns = ", ".join(f'"{c.name}" {types[c.type]}' for c in source.columns)
                con.execute(f'create table "{schema}"."{table}" ({columns})')
                with con.cursor() as cursor:
                    cursor.executemany(
                        f'insert into "{schema}"."{table}" values ({", ".join(["%s"] * len(source.columns))})',
                        source.rows,
                    )
            for metrics, shape in cases:
                query = MetricQuery(metrics=metrics, **SHAPES[shape])
                plan = engine.plan(query)
                route = engine.rollups.route(query, plan)
                assert route.table is not None and route.readings is not None, (metrics, shape, route.reasons)
                duck = reaggregated(engine.renderer, plan, route.table, route.readings)
                expected = engine.client.query(duck.sql, duck.params).rows
                rendered = reaggregated(postgres, plan, f"{schema}.{route.table.split('.')[1]}", route.readings)
                with con.cursor() as cursor:
                    cursor.execute(rendered.sql, rendered.params)
                    rows = [tuple(r) for r in cursor.fetchall()]
                _same(rows, expected, (metrics, shape))
        finally:
            con.execute(f'drop schema "{schema}" cascade')


def test_a_rollup_built_without_its_parts_answers_only_its_own_query(engine) -> None:
    """A build.json from before the parts were stored (no `layout`) keeps exact matches only."""
    from metrics.rollups import RollupRouter

    router = RollupRouter(engine, {"daily_core_by_platform": {"table": "rollups.daily_core_by_platform", "rows": 270}})
    monthly = MetricQuery(metrics=("revenue",), group_by=("metric_time__month",))
    route = router.route(monthly, engine.plan(monthly))
    assert route.table is None
    assert "built without its parts" in route.reasons["rollups.daily_core_by_platform"]
    saved = engine.saved_query("daily_core_by_platform")
    own = MetricQuery(metrics=tuple(saved.metrics), group_by=tuple(saved.group_by))
    route = router.route(own, engine.plan(own))
    assert route.table == "rollups.daily_core_by_platform" and route.readings is None
