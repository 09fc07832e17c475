"""`northstar build --dbt-project DIR` works on any dbt project with semantic-layer YAML and a
DuckDB profile, not only ours: here a small shop project with its own profile name."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from metrics.engine import MetricsEngine
from metrics.errors import NotFound
from metrics.query.request import MetricQuery
from tests.conftest import northstar

PROJECT = {
    "dbt_project.yml": """
name: shop
version: "1.0.0"
profile: shop_warehouse
model-paths: ["models"]
""",
    "profiles.yml": """
shop_warehouse:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: /nonexistent/shop.duckdb
      threads: 1
""",
    "models/orders.sql": """
select * from (values
    ('o1', 'c1', timestamp '2026-01-05 12:00', 'web', 10.0),
    ('o2', 'c1', timestamp '2026-01-06 12:00', 'app', 20.0),
    ('o3', 'c2', timestamp '2026-01-13 09:00', 'web', 30.0)
) as t(order_id, customer_id, ordered_at, channel, amount)
""",
    "models/metricflow_time_spine.sql": """
select cast(range as date) as date_day from range(date '2025-01-01', date '2027-01-01', interval 1 day)
""",
    "models/orders.yml": """
models:
  - name: orders
    columns:
      - name: order_id
        data_tests: [unique, not_null]
  - name: metricflow_time_spine
    time_spine:
      standard_granularity_column: date_day
    columns:
      - name: date_day
        granularity: day
semantic_models:
  - name: orders
    model: ref('orders')
    defaults:
      agg_time_dimension: ordered_at
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
      - {name: channel, type: categorical}
    measures:
      - {name: order_total, agg: sum, expr: amount}
      - {name: buyers, agg: count_distinct, expr: customer_id}
metrics:
  - name: revenue
    label: Revenue
    type: simple
    type_params: {measure: order_total}
  - name: revenue_per_buyer
    label: Revenue per buyer
    type: ratio
    type_params: {numerator: revenue, denominator: buyer_count}
  - name: buyer_count
    label: Buyers
    type: simple
    type_params: {measure: buyers}
""",
}


def test_build_and_query_a_project_that_is_not_ours(tmp_path: Path):
    project = tmp_path / "shop"
    for name, text in PROJECT.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip())
    warehouse = tmp_path / "data" / "shop.duckdb"
    northstar("build", "--dbt-project", str(project), "--warehouse", str(warehouse), "--no-docs")
    assert Path(os.path.realpath(warehouse)).name == "warehouse.duckdb"

    engine = MetricsEngine.open(warehouse)
    try:
        got = engine.query(
            MetricQuery(metrics=("revenue", "revenue_per_buyer"), group_by=("metric_time__week", "channel"))
        ).rows
        # A project without experiment marts has no experiments: NotFound, not an internal error.
        with pytest.raises(NotFound, match="no experiments"):
            engine.experiments.experiments()
    finally:
        engine.close()
    con = duckdb.connect(str(warehouse), read_only=True)
    expected = con.execute("""
        select date_trunc('week', ordered_at)::date, channel, sum(amount), sum(amount) / count(distinct customer_id)
        from orders group by 1, 2 order by 1, 2""").fetchall()
    con.close()
    assert got == expected
