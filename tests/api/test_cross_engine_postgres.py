"""Same answers on DuckDB and PostgreSQL: the same landing data built by `northstar build` into
each warehouse and served by `northstar serve` must answer every metric of the pack (by each
grain and each slice), the experiment readouts and the quality marts identically: the same
rows, floats equal to 1e-9 relative.

Skipped unless NORTHSTAR_TEST_POSTGRES_DSN names a PostgreSQL server (`.ci/run` starts one).
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
        assert len(expected) == len(got), f"{path}: {len(expected)} rows on DuckDB, {len(got)} on PostgreSQL"
        for i, (e, g) in enumerate(zip(expected, got)):
            same(e, g, f"{path}[{i}]")
    elif isinstance(expected, (int, float)) and isinstance(got, (int, float)) \
            and not isinstance(expected, bool) and not isinstance(got, bool):
        assert math.isclose(expected, got, rel_tol=REL_TOL, abs_tol=ABS_TOL), f"{path}: {expected} != {got}"
    else:
        assert expected == got, f"{path}: {expected!r} on DuckDB, {got!r} on PostgreSQL"


def answer(api: Any, method: str, url: str, **kwargs: Any) -> Any:
    response = api.client.request(method, url, **kwargs)
    assert response.status_code == 200, f"{api.base_url}{url}: {response.status_code} {response.text}"
    return response.json()


def rows_of(body: dict) -> list:
    """The answer's rows in a canonical order (the engines may order ties differently)."""
    return sorted(body["rows"], key=lambda row: [(v is None, str(v)) for v in row])


def same_query(api: Any, postgres_api: Any, body: dict) -> None:
    duck = answer(api, "POST", "/v1/query", json=body)
    pg = answer(postgres_api, "POST", "/v1/query", json=body)
    same(duck["columns"], pg["columns"], "$.columns")
    same(rows_of(duck), rows_of(pg), "$.rows")
    assert duck["rows"], f"{body}: no rows to compare"


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_by_every_grain(api: Any, postgres_api: Any, metric: str) -> None:
    for grain in GRAINS:
        same_query(api, postgres_api, {"metrics": [metric], "group_by": [f"metric_time__{grain}"]})


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_by_each_slice(api: Any, postgres_api: Any, metric: str) -> None:
    for slice_ in METRICS[metric].slices:
        same_query(api, postgres_api, {"metrics": [metric], "group_by": ["metric_time__week", slice_]})


def test_all_metrics_together_in_a_time_zone(api: Any, postgres_api: Any) -> None:
    same_query(api, postgres_api, {"metrics": list(METRICS), "group_by": ["metric_time__day"],
                                   "timezone": "America/New_York"})


def test_sunday_weeks(api: Any, postgres_api: Any) -> None:
    same_query(api, postgres_api, {"metrics": ["active_users", "revenue"], "group_by": ["metric_time__week"],
                                   "week_start": "sunday"})


def test_experiment_readouts(api: Any, postgres_api: Any) -> None:
    experiments = answer(api, "GET", "/v1/experiments")
    same(experiments, answer(postgres_api, "GET", "/v1/experiments"), "$.experiments")
    for experiment in experiments["experiments"]:
        url = f"/v1/experiments/{experiment['experiment_id']}/readout"
        metrics = answer(api, "GET", f"/v1/experiments/{experiment['experiment_id']}/metrics")["metrics"]
        names = ",".join(m["name"] if isinstance(m, dict) else m for m in metrics)
        for params in ({"metrics": names}, {"metrics": names, "group_by": "platform", "cuped": "false"}):
            same(answer(api, "GET", url, params=params), answer(postgres_api, "GET", url, params=params),
                 f"{url}?{params}")


@pytest.mark.parametrize("url", ["/v1/quality", "/v1/alerts", "/v1/releases", "/v1/launches"])
def test_quality_marts_and_scorecards(api: Any, postgres_api: Any, url: str) -> None:
    same(answer(api, "GET", url), answer(postgres_api, "GET", url), url)
