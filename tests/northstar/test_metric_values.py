"""`fct_metric_values_daily` is written by the build from the engine: each watched metric's
value on each day is what `/v1/query` answers for that metric by day, with the model's
contract (0 for a simple metric on a day without rows, no row for a null ratio) and with no
metric computed in the model's own SQL on DuckDB."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from metrics.sql.metric_values import WATCHED_METRICS

REPO = Path(__file__).resolve().parents[2]
RATIOS = {"crash_free_user_rate", "errors_per_1k_events", "tickets_per_1k_active_users"}


def by_day(api, metric: str) -> dict[dt.date, float | None]:
    response = api.client.post("/v1/query", json={"metrics": [metric], "group_by": ["metric_time__day"]})
    assert response.status_code == 200, response.text
    return {dt.date.fromisoformat(day[:10]): value for day, value in response.json()["rows"]}


def test_mart_values_are_the_engine_answers_by_day(api) -> None:
    with duckdb.connect(str(api.warehouse), read_only=True) as con:
        rows = con.execute(
            "select metric_name, metric_date, metric_value from marts.fct_metric_values_daily"
        ).fetchall()
    mart: dict[str, dict[dt.date, float]] = {}
    for name, day, value in rows:
        mart.setdefault(name, {})[day] = value
    assert set(mart) == set(WATCHED_METRICS)
    events = by_day(api, "events")
    span = [d for d, v in events.items() if v is not None]
    first, last = min(span), max(span)
    days = {first + dt.timedelta(days=i) for i in range((last - first).days + 1)}
    for metric in WATCHED_METRICS:
        answered = {d: v for d, v in by_day(api, metric).items() if first <= d <= last}
        if metric in RATIOS:
            expected = {d: v for d, v in answered.items() if v is not None}
        else:
            expected = {d: answered.get(d) or 0 for d in days}
        assert set(mart[metric]) == set(expected), metric
        for day, value in expected.items():
            assert mart[metric][day] == pytest.approx(value, rel=1e-12, abs=1e-12), (metric, day)


def test_the_model_reads_the_engine_table_on_duckdb(api) -> None:
    """The build compiled the model's engine branch: it selects from the engine's table and
    names no metric aggregate of its own."""
    build = Path(api.warehouse).resolve().parent
    compiled = next(build.glob("compiled/**/fct_metric_values_daily.sql")).read_text().lower()
    assert '"engine_tables".metric_values_daily' in compiled
    assert "count(" not in compiled and "sum(" not in compiled
    results = json.loads((build / "run_results.json").read_text())["results"]
    assert any(r["unique_id"].endswith(".fct_metric_values_daily") for r in results)
