"""The Spark dialect of the SQL generation, run on a real (local) Spark session: the tiny shop
warehouse's tables, exported to Parquet and served by `SparkClient`, must answer every shop
metric (simple, ratio, derived, offsets, cumulative windows and grain-to-date, conversions,
non-additive balances, exact percentiles) by every grain, in a time zone, with Sunday weeks and
date bounds, exactly as the DuckDB file does (floats to 1e-9 relative).

Marked slow (a JVM and ~150 Spark statements, minutes on a shared machine): run it with
`pytest -m slow tests/metrics/sql/test_render_spark.py`. Skipped (with the reason) without
pyspark or Java.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from metrics.engine import BuildInfo, MetricsEngine
from metrics.errors import InvalidQuery
from metrics.execution.client import DuckDBClient
from metrics.query.request import Filter, FilterOp, MetricQuery, WeekStart
from metrics.semantic.manifest import parse_semantic_manifest
from tests.conftest import spark_missing
from tests.metrics.manifest_fixture import RAW

TABLES = ("fct_orders", "dim_customers", "dim_regions", "dim_customer_tiers", "fct_balances", "time_spine")
GRAINS = ("day", "week", "month", "quarter", "year")

pytestmark = pytest.mark.slow


def _manifest():
    """The shop manifest plus exact percentile metrics (continuous and discrete)."""
    raw = copy.deepcopy(RAW)
    orders = next(m for m in raw["semantic_models"] if m["name"] == "orders")
    orders["measures"] += [
        {"name": "p90_order", "agg": "percentile", "expr": "amount", "agg_params": {"percentile": 0.9}},
        {
            "name": "p40_order_disc",
            "agg": "percentile",
            "expr": "amount",
            "agg_params": {"percentile": 0.4, "use_discrete_percentile": True},
        },
    ]
    for name, measure in (
        ("median_order", "median_order"),
        ("p90_order", "p90_order"),
        ("p40_order_disc", "p40_order_disc"),
    ):
        raw["metrics"].append(
            {
                "name": name,
                "type": "simple",
                "label": name,
                "description": "",
                "type_params": {"measure": {"name": measure}},
            }
        )
    return parse_semantic_manifest(raw)


@pytest.fixture(scope="module")
def engines(shop_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    missing = spark_missing()
    if missing:
        pytest.skip(missing)
    from metrics.execution.spark import SparkClient

    build = tmp_path_factory.mktemp("shop-spark")
    # The engine's DuckDB client locks the shared database against file access (no COPY TO);
    # the rows leave through Arrow instead.
    con = duckdb.connect(str(shop_warehouse), read_only=True)
    tables = []
    for table in TABLES:
        (build / table).mkdir()
        pq.write_table(con.sql(f"select * from marts.{table}").to_arrow_table(), build / table / "part-0.parquet")
        tables.append({"schema": "marts", "table": table, "location": table, "format": "parquet"})
    con.close()
    pointer = build / "warehouse.spark"
    pointer.write_text(
        json.dumps({"type": "spark", "build_id": "shop", "schemas": {"marts": "marts"}, "tables": tables})
    )
    manifest = _manifest()
    duck = MetricsEngine(manifest, DuckDBClient(shop_warehouse), BuildInfo("shop", None, True, build))
    spark = MetricsEngine(manifest, SparkClient(pointer, master="local[1]"), BuildInfo("shop", None, True, build))
    yield duck, spark
    spark.close()
    duck.close()


def same_rows(duck_rows: list, spark_rows: list, what: str) -> None:
    key = lambda row: [(v is None, str(v)) for v in row]  # noqa: E731
    expected, got = sorted(duck_rows, key=key), sorted(spark_rows, key=key)
    assert len(expected) == len(got), f"{what}: {len(expected)} rows on DuckDB, {len(got)} on Spark"
    for e_row, g_row in zip(expected, got):
        for e, g in zip(e_row, g_row):
            if isinstance(e, float) or isinstance(g, float):
                assert e is not None and g is not None and math.isclose(e, g, rel_tol=1e-9, abs_tol=1e-12), (
                    f"{what}: {e_row} on DuckDB, {g_row} on Spark"
                )
            else:
                assert e == g, f"{what}: {e_row} on DuckDB, {g_row} on Spark"


def check(engines, **query) -> None:
    duck, spark = engines
    request = MetricQuery(**query)
    expected = duck.query(request)
    got = spark.query(request)
    assert [c.name for c in got.columns] == [c.name for c in expected.columns]
    assert [c.type for c in got.columns] == [c.type for c in expected.columns], query
    same_rows(expected.rows, got.rows, str(query))


def test_every_metric_by_every_grain(engines) -> None:
    duck, _ = engines
    for metric in duck.metric_names():
        grains = duck.metric(metric).grains
        for grain in GRAINS:
            if grain in grains:
                check(engines, metrics=(metric,), group_by=(f"metric_time__{grain}",))


def test_every_metric_without_grouping_and_by_a_joined_dimension(engines) -> None:
    duck, _ = engines
    for metric in duck.metric_names():
        try:
            duck.compile(MetricQuery(metrics=(metric,)))
        except InvalidQuery:  # cumulative and offset metrics need metric_time
            continue
        check(engines, metrics=(metric,), group_by=())
    check(engines, metrics=("revenue", "orders", "median_order"), group_by=("metric_time__week", "customer__country"))
    check(engines, metrics=("revenue",), group_by=("customer__region__region_name",))


def test_percentile_answers(engines) -> None:
    _, spark = engines
    (row,) = spark.query(MetricQuery(metrics=("median_order", "p90_order", "p40_order_disc"), group_by=())).rows
    # the shop's seven orders are 10, 20, ..., 70: the continuous median is 40, p90 sits at
    # rank 0.9 * 6 = 5.4 (60 + 0.4 * 10); the discrete p40 is the first amount whose cumulative
    # share reaches 0.4 (30: 3/7). sqlglot's Spark rendering would have been PERCENTILE_APPROX.
    assert row == pytest.approx((40.0, 64.0, 30.0))


def test_time_zone_week_start_and_bounds(engines) -> None:
    for grain in ("day", "week", "month"):
        check(
            engines,
            metrics=("revenue", "orders", "buyers"),
            group_by=(f"metric_time__{grain}",),
            timezone="America/New_York",
        )
        check(
            engines,
            metrics=("revenue", "revenue_7d", "revenue_wow"),
            group_by=(f"metric_time__{grain}",),
            start=dt.datetime(2026, 1, 6),
            end=dt.datetime(2026, 1, 25),
        )
    check(engines, metrics=("revenue", "buyers"), group_by=("metric_time__week",), week_start=WeekStart.SUNDAY)
    check(
        engines,
        metrics=("revenue",),
        group_by=("metric_time__day",),
        timezone="Asia/Kolkata",
        start=dt.datetime(2026, 1, 11),
        end=dt.datetime(2026, 1, 13),
    )


def test_bound_values_with_quotes_and_markers(engines) -> None:
    for country in ("O'Brien", "US", ":p0"):
        check(
            engines,
            metrics=("new_customers",),
            group_by=("metric_time__month",),
            where=(Filter("country", FilterOp.EQ, value=country),),
        )
        check(
            engines,
            metrics=("orders",),
            group_by=("metric_time__month",),
            where=(Filter("country", FilterOp.IN, values=(country, "DE")),),
        )
