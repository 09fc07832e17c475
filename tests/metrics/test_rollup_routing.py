"""Same rows both ways: every metric of the pack, in the parity suite's shapes (grains, slices,
filters, ranges, Sunday weeks, a time zone), answered from the sample's rollups when the
router proves it may, and from the semantic models, on each warehouse `northstar build` wrote
from the sample: DuckDB, PostgreSQL and Spark (each engine runs both statements).

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


# Several metrics at once: their models' aggregates stacked and grouped (on PostgreSQL a
# UNION ALL and GROUP BY), each re-aggregated from its rollup's parts.
TOGETHER: list[tuple[tuple[str, ...], str]] = [
    *((("events", "revenue"), shape) for shape in SHAPES),
    (("arpu", "events"), "day_by_platform"),
    (("errors_per_1k_events", "nps", "tickets"), "week"),
    (("errors_per_1k_events", "csat"), "total"),
    (("crashes", "nps"), "month_range_mid_week"),
]


def both_ways(engine: MetricsEngine) -> tuple[dict, dict]:
    """Every metric in every shape, and the metrics of TOGETHER, on `engine`'s warehouse: the
    routed answer must equal the raw one wherever a rollup answers. Returns (routed: (metrics,
    shape) -> rollup, raw_only: (metrics, shape) -> why not)."""
    routed, raw_only = {}, {}
    alone = [((metric,), shape) for metric, shape in itertools.product(sorted(engine.manifest.metrics), SHAPES)]
    for metrics, shape in alone + TOGETHER:
        query = MetricQuery(metrics=metrics, **SHAPES[shape])
        try:
            plan = engine.plan(query)
            compiled = engine.compile(query)
        except MetricsError:  # a shape the metric does not take (e.g. a slice its model lacks)
            continue
        explained = compiled.explanation["rollup"]
        if explained["answered_by"] is None:
            raw_only[(metrics, shape)] = explained["why_not"]
            assert "rollups" not in compiled.sql
            continue
        routed[(metrics, shape)] = explained["answered_by"]
        rendered = engine.renderer.render(plan)
        assert "rollups" not in rendered.sql
        raw = engine.client.query(rendered.sql, rendered.params).rows
        answer = engine.client.query(compiled.sql, compiled.params).rows
        _same(answer, raw, (metrics, shape, explained))
        if query.order_by:
            assert [r[0] for r in answer] == [r[0] for r in raw]
    return routed, raw_only


@pytest.fixture(scope="module")
def on_duckdb(engine) -> tuple[dict, dict]:
    return both_ways(engine)


def test_every_metric_answers_the_same_from_rollups_and_from_raw(on_duckdb) -> None:
    routed, raw_only = on_duckdb
    # The routes the sample's rollups are declared for, and those they must refuse.
    assert routed[(("revenue",), "month")] == "rollups.daily_core_by_platform"
    assert routed[(("arpu",), "day_by_platform")] == "rollups.daily_core_by_platform"
    assert routed[(("events",), "sunday_weeks")] == "rollups.daily_quality"
    assert routed[(("nps",), "quarter")] == "rollups.daily_quality"
    assert routed[(("errors_per_1k_events",), "week_range")] == "rollups.daily_quality"
    assert routed[(("revenue",), "ios_not_android_template")] == "rollups.daily_core_by_platform"
    assert routed[(("active_users",), "week_by_platform")] == "rollups.weekly_active_users_by_platform"
    assert routed[(("arpu",), "day_ios")] == "rollups.daily_core_by_platform"  # the = filter fixes the slice
    assert "count distinct" in raw_only[(("arpu",), "day_ios_or_android")]["rollups.daily_core_by_platform"]
    assert "count distinct" in raw_only[(("arpu",), "week")]["rollups.daily_core_by_platform"]
    assert "Europe/Berlin" in raw_only[(("events",), "berlin_days")]["rollups.daily_quality"]
    assert (
        "not the start of a stored day"
        in raw_only[(("revenue",), "range_inside_a_day")]["rollups.daily_core_by_platform"]
    )
    assert "user__country" in raw_only[(("revenue",), "country")]["rollups.daily_core_by_platform"]
    assert "cumulative" in raw_only[(("revenue_mtd",), "month")]["rollups.daily_core_by_platform"]
    reaggregated_together = [
        *((("events", "revenue"), shape) for shape in ("month", "week_ios", "ios_not_android_template")),
        *((("events", "revenue"), shape) for shape in ("day_weeks_filtered", "week_range", "sunday_weeks", "total")),
        *TOGETHER[len(SHAPES) :],
    ]
    assert all(case in routed for case in reaggregated_together), [c for c in reaggregated_together if c not in routed]
    assert len(routed) >= 140 and len(raw_only) >= 250, (len(routed), len(raw_only))


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


def _both_ways_on(warehouse, dialect: str, **how) -> tuple[dict, dict]:
    """`both_ways` on another engine's build of the sample, opened in this process."""
    other = MetricsEngine.open(warehouse, check=False, **how)
    try:
        assert other.client.dialect == dialect
        return both_ways(other)
    finally:
        other.close()


def test_every_metric_answers_the_same_from_rollups_and_from_raw_on_postgres(on_duckdb, postgres_api, postgres_dsn):
    """The same matrix on the sample built into PostgreSQL (`northstar build --warehouse-type
    postgres`, which writes the rollups there): PostgreSQL runs both statements, and the
    router takes the same decisions as on DuckDB."""
    routed, raw_only = _both_ways_on(postgres_api.warehouse, "postgres", postgres_dsn=postgres_dsn)
    assert routed == on_duckdb[0] and raw_only.keys() == on_duckdb[1].keys()


@pytest.mark.slow
def test_every_metric_answers_the_same_from_rollups_and_from_raw_on_spark(on_duckdb, spark_api):
    """The same matrix on the sample built into Spark (a local session in this process reading
    the build's Parquet tables): Spark runs both statements, and the router takes the same
    decisions as on DuckDB."""
    routed, raw_only = _both_ways_on(spark_api.warehouse, "spark")
    assert routed == on_duckdb[0] and raw_only.keys() == on_duckdb[1].keys()


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
