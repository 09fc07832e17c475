"""Same answers on DuckDB and PostgreSQL: the same landing data built by `northstar build` into
each warehouse and served by `northstar serve` must answer every metric of the pack (by each
grain and each slice), the experiment readouts and the quality marts identically: the same
rows, floats equal to 1e-9 relative.

Skipped unless NORTHSTAR_TEST_POSTGRES_DSN names a PostgreSQL server (`.ci/run` starts one).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.cross_engine import CrossEngine, answer, build_info, duckdb_table, plain_rows
from tests.oracle import GRAINS, METRICS

_compare = CrossEngine("PostgreSQL")
same, same_query = _compare.same, _compare.same_query


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_by_every_grain(api: Any, postgres_api: Any, metric: str) -> None:
    for grain in GRAINS:
        same_query(api, postgres_api, {"metrics": [metric], "group_by": [f"metric_time__{grain}"]})


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_by_each_slice(api: Any, postgres_api: Any, metric: str) -> None:
    for slice_ in METRICS[metric].slices:
        same_query(api, postgres_api, {"metrics": [metric], "group_by": ["metric_time__week", slice_]})


def test_all_metrics_together_in_a_time_zone(api: Any, postgres_api: Any) -> None:
    same_query(
        api, postgres_api, {"metrics": list(METRICS), "group_by": ["metric_time__day"], "timezone": "America/New_York"}
    )


def test_sunday_weeks(api: Any, postgres_api: Any) -> None:
    same_query(
        api,
        postgres_api,
        {"metrics": ["active_users", "revenue"], "group_by": ["metric_time__week"], "week_start": "sunday"},
    )


def test_experiment_readouts(api: Any, postgres_api: Any) -> None:
    experiments = answer(api, "GET", "/v1/experiments")
    same(experiments, answer(postgres_api, "GET", "/v1/experiments"), "$.experiments")
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
                answer(api, "GET", url, params=params),
                answer(postgres_api, "GET", url, params=params),
                f"{url}?{params}",
            )


@pytest.mark.parametrize("url", ["/v1/quality", "/v1/alerts", "/v1/releases", "/v1/launches"])
def test_quality_marts_and_scorecards(api: Any, postgres_api: Any, url: str) -> None:
    same(answer(api, "GET", url), answer(postgres_api, "GET", url), url)


def test_metrics_together_by_a_slice(api: Any, postgres_api: Any) -> None:
    """Several aggregates side by side with a nullable slice key and an offset input (the
    prior week's revenue adds no buckets of its own): PostgreSQL stacks them (`UNION ALL` +
    `GROUP BY`) where DuckDB joins them on null-safe keys."""
    for grain in ("day", "week", "month"):
        same_query(
            api,
            postgres_api,
            {
                "metrics": ["active_users", "revenue", "revenue_change_vs_prior_week"],
                "group_by": [f"metric_time__{grain}", "platform"],
            },
        )


@pytest.mark.parametrize(
    "where",
    [
        "{{ Dimension('user__country') }} = 3",  # text against a bound number: no such operator
        "{{ Dimension('user__country') }} = true",  # text against a boolean written in the SQL
        "{{ TimeDimension('metric_time', 'day') }} = 'ES'",  # a date against a string that is none
    ],
)
def test_a_filter_value_of_the_wrong_type_is_the_same_422(api: Any, postgres_api: Any, where: str) -> None:
    """The warehouse refuses the comparison in its own words (DuckDB: a conversion error;
    PostgreSQL: invalid input syntax, or no such operator); the client reads one status, code
    and message on both, without the warehouse's text."""
    errors = []
    for served in (api, postgres_api):
        response = served.client.get("/v1/query", params={"metrics": "active_users", "where": where})
        assert response.status_code == 422, response.text
        errors.append(response.json()["error"])
    duckdb_error, postgres_error = errors
    assert postgres_error["code"] == duckdb_error["code"] == "invalid_filter"
    assert postgres_error["message"] == duckdb_error["message"]
    assert not any(word in postgres_error["message"] for word in ("syntax", "operator", "varying", "BOOL"))
    assert ("'country'" in postgres_error["message"]) == ("country" in where)


def _postgres_table(dsn: str, table: str) -> list:
    import psycopg

    schema, name = table.split(".", 1)
    with psycopg.connect(dsn) as con:
        return plain_rows(con.execute(f'select * from "{schema}"."{name}"').fetchall())


def test_metric_values_daily_is_the_same_table(api: Any, postgres_api: Any, postgres_dsn: str) -> None:
    """Both builds wrote fct_metric_values_daily from the engine (no dbt SQL of its own): the
    same rows, values to 1e-9 relative."""
    marts = build_info(postgres_api.warehouse)["schemas"]["marts"]
    expected = duckdb_table(api.warehouse, "marts.fct_metric_values_daily")
    got = _postgres_table(postgres_dsn, f"{marts}.fct_metric_values_daily")
    assert len(expected) > 100
    _compare.same(expected, got, "fct_metric_values_daily")
    written = build_info(postgres_api.warehouse)["metric_values_daily"]
    assert written["rows"] == len(got) and written["table"].endswith(".metric_values_daily")


def test_rollups_are_the_same_tables_and_answer(api: Any, postgres_api: Any, postgres_dsn: str) -> None:
    """Every rollup of the DuckDB build exists in the PostgreSQL build's own schema with the
    same rows, and a saved query is answered from it there."""
    duck, pg = build_info(api.warehouse)["rollups"], build_info(postgres_api.warehouse)["rollups"]
    assert set(duck) == set(pg) and duck
    suffix = "__" + build_info(postgres_api.warehouse)["schemas"]["marts"].split("__", 1)[1]
    for saved_query, info in duck.items():
        table = pg[saved_query]["table"]
        assert table == info["table"].replace(".", suffix + ".", 1)
        expected, got = duckdb_table(api.warehouse, info["table"]), _postgres_table(postgres_dsn, table)
        assert pg[saved_query]["rows"] == len(got) == info["rows"] > 0
        _compare.same(expected, got, table)
        explained = answer(postgres_api, "POST", "/v1/compile", json={"saved_query": saved_query})
        # the public name, as on DuckDB, not where this build wrote it
        assert pg[saved_query]["name"] == info["name"] == info["table"]
        assert explained["explanation"]["rollup"]["answered_by"] == info["name"]
        same_query(api, postgres_api, {"saved_query": saved_query})
