"""Same answers on DuckDB and Spark: the same landing data built by `northstar build` into each
warehouse (Spark: dbt-spark on a local session) and served by `northstar serve` must answer
every metric of the pack (by each grain and each slice), the experiment readouts and the
quality marts and scorecards identically: the same rows, floats equal to 1e-9 relative.

Marked slow (about 10 minutes: a JVM, a dbt-spark build and ~200 Spark queries), so deselected
by default: run it with `pytest -m slow tests/api/test_cross_engine_spark.py`. Skipped (with
the reason) without pyspark, dbt-spark or Java; see README "Scaling out".
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from oracle import GRAINS, METRICS  # noqa: E402

pytestmark = pytest.mark.slow

REL_TOL = 1e-9
ABS_TOL = 1e-12
# What differs between two services by design: the build, when it ran, how long a query took.
VOLATILE = {"build_id", "built_at", "query_ms", "elapsed_ms", "cached", "generated_at", "request_id",
            "newest_data_at_checked", "freshness"}


def same(expected: Any, got: Any, path: str = "$") -> None:
    """Recursive equality; floats to REL_TOL relative (ints and floats compare as numbers)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        keys = set(expected) - VOLATILE
        assert keys == set(got) - VOLATILE, f"{path}: keys {sorted(keys ^ (set(got) - VOLATILE))} differ"
        for key in keys:
            same(expected[key], got[key], f"{path}.{key}")
    elif isinstance(expected, list) and isinstance(got, list):
        assert len(expected) == len(got), f"{path}: {len(expected)} rows on DuckDB, {len(got)} on Spark"
        for i, (e, g) in enumerate(zip(expected, got)):
            same(e, g, f"{path}[{i}]")
    elif isinstance(expected, (int, float)) and isinstance(got, (int, float)) \
            and not isinstance(expected, bool) and not isinstance(got, bool):
        assert math.isclose(expected, got, rel_tol=REL_TOL, abs_tol=ABS_TOL), f"{path}: {expected} != {got}"
    else:
        assert expected == got, f"{path}: {expected!r} on DuckDB, {got!r} on Spark"


def answer(api: Any, method: str, url: str, **kwargs: Any) -> Any:
    response = api.client.request(method, url, **kwargs)
    assert response.status_code == 200, f"{api.base_url}{url}: {response.status_code} {response.text}"
    return response.json()


def rows_of(body: dict) -> list:
    """The answer's rows in a canonical order (the engines may order ties differently)."""
    return sorted(body["rows"], key=lambda row: [(v is None, str(v)) for v in row])


def same_query(api: Any, spark_api: Any, body: dict) -> None:
    duck = answer(api, "POST", "/v1/query", json=body)
    spark = answer(spark_api, "POST", "/v1/query", json=body)
    same(duck["columns"], spark["columns"], "$.columns")
    same(rows_of(duck), rows_of(spark), "$.rows")
    assert duck["rows"], f"{body}: no rows to compare"


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
