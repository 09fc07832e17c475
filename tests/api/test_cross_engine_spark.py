"""Same answers on DuckDB and Spark: the same landing data built by `northstar build` into each
warehouse (Spark: dbt-spark on a local session) and served by `northstar serve` must answer
every metric of the pack (by each grain and each slice), the experiment readouts and the
quality marts and scorecards identically: the same rows, floats equal to 1e-9 relative.

Marked slow (about 10 minutes: a JVM, a dbt-spark build and ~200 Spark queries; `pytest -m
'not slow'` leaves it out). Skipped (with the reason) without pyspark, dbt-spark or Java; see
README "Scaling out".
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.cross_engine import CrossEngine, answer, build_info, duckdb_table, plain_rows
from tests.oracle import GRAINS, METRICS

pytestmark = pytest.mark.slow

_compare = CrossEngine("Spark")
same, same_query = _compare.same, _compare.same_query


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_by_every_grain(api: Any, spark_api: Any, metric: str) -> None:
    for grain in GRAINS:
        same_query(api, spark_api, {"metrics": [metric], "group_by": [f"metric_time__{grain}"]})


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_by_each_slice(api: Any, spark_api: Any, metric: str) -> None:
    for slice_ in METRICS[metric].slices:
        same_query(api, spark_api, {"metrics": [metric], "group_by": ["metric_time__week", slice_]})


def test_all_metrics_together_in_a_time_zone(api: Any, spark_api: Any) -> None:
    same_query(
        api, spark_api, {"metrics": list(METRICS), "group_by": ["metric_time__day"], "timezone": "America/New_York"}
    )


def test_sunday_weeks_and_a_date_range(api: Any, spark_api: Any) -> None:
    same_query(
        api,
        spark_api,
        {
            "metrics": ["active_users", "revenue"],
            "group_by": ["metric_time__week"],
            "week_start": "sunday",
            "start": "2026-02-01",
            "end": "2026-03-01",
        },
    )


def test_filter_values_are_bound_not_pasted(api: Any, spark_api: Any) -> None:
    # a quote and a colon (Spark's parameter marker) in a value answer as a plain value would
    for where in (
        [{"field": "platform", "op": "!=", "value": "o'brien: :p0"}],
        [{"field": "country", "op": "=", "value": "US"}],
        ["{{ Dimension('user__country') }} = 'US'"],
    ):
        same_query(
            api, spark_api, {"metrics": ["events", "revenue"], "group_by": ["metric_time__month"], "where": where}
        )


def test_experiment_readouts(api: Any, spark_api: Any) -> None:
    experiments = answer(api, "GET", "/v1/experiments")
    same(experiments, answer(spark_api, "GET", "/v1/experiments"), "$.experiments")
    assert experiments["experiments"]
    for experiment in experiments["experiments"]:
        url = f"/v1/experiments/{experiment['experiment_id']}/readout"
        metrics = answer(api, "GET", f"/v1/experiments/{experiment['experiment_id']}/metrics")["metrics"]
        names = ",".join(m["name"] if isinstance(m, dict) else m for m in metrics)
        # platform is a column of the per-user table; the account's industry is joined to it
        for params in (
            {"metrics": names},
            {"metrics": names, "group_by": "platform", "cuped": "false"},
            {"metrics": names, "group_by": "platform,industry"},
        ):
            same(
                answer(api, "GET", url, params=params), answer(spark_api, "GET", url, params=params), f"{url}?{params}"
            )


@pytest.mark.parametrize("url", ["/v1/quality", "/v1/alerts", "/v1/releases", "/v1/launches"])
def test_quality_marts_and_scorecards(api: Any, spark_api: Any, url: str) -> None:
    same(answer(api, "GET", url), answer(spark_api, "GET", url), url)


def _spark_table(warehouse: Any, table: str) -> list:
    """Every row of a Spark build's table, read from its Parquet by DuckDB (no second JVM)."""
    import json
    import os
    from pathlib import Path

    import duckdb

    pointer = Path(os.path.realpath(warehouse))
    schema, name = table.split(".", 1)
    entry = next(t for t in json.loads(pointer.read_text())["tables"] if (t["schema"], t["table"]) == (schema, name))
    location = pointer.parent / entry["location"]
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return plain_rows(con.execute("select * from read_parquet(?)", [f"{location}/*.parquet"]).fetchall())


def test_metric_values_daily_is_the_same_table(api: Any, spark_api: Any) -> None:
    """Both builds wrote fct_metric_values_daily from the engine (no dbt SQL of its own)."""
    marts = build_info(spark_api.warehouse)["schemas"]["marts"]
    expected = duckdb_table(api.warehouse, "marts.fct_metric_values_daily")
    got = _spark_table(spark_api.warehouse, f"{marts}.fct_metric_values_daily")
    assert len(expected) > 100
    same(expected, got, "fct_metric_values_daily")
    assert build_info(spark_api.warehouse)["metric_values_daily"]["rows"] == len(got)


def test_rollups_are_the_same_tables_and_answer(api: Any, spark_api: Any) -> None:
    """Every rollup of the DuckDB build is a table of the Spark build with the same rows, and a
    saved query is answered from it there."""
    duck, spark = build_info(api.warehouse)["rollups"], build_info(spark_api.warehouse)["rollups"]
    assert set(duck) == set(spark) and duck
    suffix = "__" + build_info(spark_api.warehouse)["schemas"]["marts"].split("__", 1)[1]
    for saved_query, info in duck.items():
        table = spark[saved_query]["table"]
        assert table == info["table"].replace(".", suffix + ".", 1)
        expected, got = duckdb_table(api.warehouse, info["table"]), _spark_table(spark_api.warehouse, table)
        assert spark[saved_query]["rows"] == len(got) == info["rows"] > 0
        same(expected, got, table)
        explained = answer(spark_api, "POST", "/v1/compile", json={"saved_query": saved_query})
        # the public name, as on DuckDB, not where this build wrote it
        assert spark[saved_query]["name"] == info["name"] == info["table"]
        assert explained["explanation"]["rollup"]["answered_by"] == info["name"]
        same_query(api, spark_api, {"saved_query": saved_query})


# Queries the sample's rollups answer by re-aggregating their stored parts (coarser grains,
# fewer slices, a filter on a stored column, ratios from their parts; a distinct count at the
# rollup's own grain with its other slice fixed by a filter).
REAGGREGATED = {
    "sums by month": {"metrics": ["events", "revenue"], "group_by": ["metric_time__month"]},
    "arpu by day for one platform": {
        "metrics": ["arpu", "events"],
        "group_by": ["metric_time__day"],
        "where": [{"field": "platform", "op": "=", "value": "ios"}],
    },
    "one platform by month": {
        "metrics": ["events", "revenue"],
        "group_by": ["metric_time__month"],
        "where": [{"field": "platform", "op": "=", "value": "ios"}],
    },
    "quality by week": {"metrics": ["errors_per_1k_events", "nps", "tickets"], "group_by": ["metric_time__week"]},
}


@pytest.mark.parametrize("name", list(REAGGREGATED))
def test_rollups_reaggregate_on_spark(api: Any, spark_api: Any, name: str) -> None:
    """The Spark build records its rollups' parts, so coarser queries are answered from them
    there too, with the DuckDB build's rows."""
    body = REAGGREGATED[name]
    explained = answer(spark_api, "POST", "/v1/compile", json=body)["explanation"]["rollup"]
    assert explained["answered_by"], (name, explained)
    same_query(api, spark_api, body)
