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

from tests.api.cross_engine import CrossEngine, answer, rows_of
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
    same_query(api, spark_api, {"metrics": list(METRICS), "group_by": ["metric_time__day"],
                                "timezone": "America/New_York"})


def test_sunday_weeks_and_a_date_range(api: Any, spark_api: Any) -> None:
    same_query(api, spark_api, {"metrics": ["active_users", "revenue"], "group_by": ["metric_time__week"],
                                "week_start": "sunday", "start": "2026-02-01", "end": "2026-03-01"})


def test_filter_values_are_bound_not_pasted(api: Any, spark_api: Any) -> None:
    # a quote and a colon (Spark's parameter marker) in a value answer as a plain value would
    for where in ([{"field": "platform", "op": "!=", "value": "o'brien: :p0"}],
                  [{"field": "country", "op": "=", "value": "US"}],
                  ["{{ Dimension('user__country') }} = 'US'"]):
        same_query(api, spark_api, {"metrics": ["events", "revenue"], "group_by": ["metric_time__month"],
                                    "where": where})


def test_experiment_readouts(api: Any, spark_api: Any) -> None:
    experiments = answer(api, "GET", "/v1/experiments")
    same(experiments, answer(spark_api, "GET", "/v1/experiments"), "$.experiments")
    assert experiments["experiments"]
    for experiment in experiments["experiments"]:
        url = f"/v1/experiments/{experiment['experiment_id']}/readout"
        metrics = answer(api, "GET", f"/v1/experiments/{experiment['experiment_id']}/metrics")["metrics"]
        names = ",".join(m["name"] if isinstance(m, dict) else m for m in metrics)
        for params in ({"metrics": names}, {"metrics": names, "group_by": "platform", "cuped": "false"}):
            same(answer(api, "GET", url, params=params), answer(spark_api, "GET", url, params=params),
                 f"{url}?{params}")


@pytest.mark.parametrize("url", ["/v1/quality", "/v1/alerts", "/v1/releases", "/v1/launches"])
def test_quality_marts_and_scorecards(api: Any, spark_api: Any, url: str) -> None:
    same(answer(api, "GET", url), answer(spark_api, "GET", url), url)
