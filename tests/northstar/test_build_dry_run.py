"""Every metric is compiled and dry-run (EXPLAIN: planned, no rows read) when a build is made
and when a server opens a build made elsewhere. A metric the warehouse would refuse, or one
using a feature northstar cannot answer yet, is named in the build output, marked in
`GET /v1/metrics` with the reason, and a query of it is a 422 with that reason, never a 500;
the other metrics are served as usual."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import httpx
import pytest

from metrics.engine import MetricsEngine
from metrics.errors import MetricUnavailable
from metrics.query.request import MetricQuery
from tests.conftest import Server, northstar

PROJECT = {
    "dbt_project.yml": "name: orders\nversion: '1.0.0'\nprofile: orders\nmodel-paths: ['models']\n",
    "models/orders.sql": """
select * from (values
    (1, 'c1', timestamp '2026-01-05 12:00', 'web', 10.0),
    (2, 'c1', timestamp '2026-01-06 12:00', 'app', 20.0),
    (3, 'c2', timestamp '2026-01-13 09:00', 'web', 30.0)
) as t(order_id, customer_id, ordered_at, channel, amount)
""",
    "models/metricflow_time_spine.sql": "select cast(range as date) as date_day from range(date '2025-01-01', date '2027-01-01', interval 1 day)\n",
    "models/orders.yml": """
models:
  - name: metricflow_time_spine
    time_spine: {standard_granularity_column: date_day}
    columns: [{name: date_day, granularity: day}]
semantic_models:
  - name: orders
    model: ref('orders')
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: order, type: primary, expr: order_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
      - {name: channel, type: categorical}
      - {name: region, type: categorical, expr: shipping_region}
    measures:
      - {name: order_total, agg: sum, expr: amount}
      - {name: discounts, agg: sum, expr: discount_usd}
      - {name: median_amount, agg: median, expr: amount}
metrics:
  - {name: revenue, label: Revenue, type: simple, type_params: {measure: order_total}}
  - {name: discounts, label: Discounts, type: simple, type_params: {measure: discounts}}
  - name: net_revenue
    label: Net revenue
    type: derived
    type_params: {expr: revenue - discounts, metrics: [{name: revenue}, {name: discounts}]}
  - name: running_median
    label: Running median
    type: cumulative
    type_params: {measure: median_amount}
""",
}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("dry-run")
    project = root / "orders"
    for name, text in PROJECT.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip())
    warehouse = root / "data" / "orders.duckdb"
    done = northstar(
        "build", "--dbt-project", str(project), "--warehouse", str(warehouse), "--no-docs", env={"COLUMNS": "300"}
    )
    return warehouse, done.stdout + done.stderr


def test_build_output_and_build_json_name_what_cannot_be_served(build):
    warehouse, output = build
    assert "cannot serve: metric discounts: the warehouse rejected generated SQL" in output
    assert "discount_usd" in output
    assert "cannot serve: metric net_revenue:" in output
    assert "cannot serve: metric running_median:" in output and "median" in output
    assert "cannot serve: metric revenue by region:" in output and "shipping_region" in output
    assert "cannot serve: metric revenue:" not in output
    info = json.loads((Path(os.path.realpath(warehouse)).parent / "build.json").read_text())
    assert {(u["metric"], u["group_by"]) for u in info["unservable_metrics"]} == {
        ("discounts", None),
        ("net_revenue", None),
        ("running_median", None),
        ("revenue", "region"),
    }
    assert info["dry_run"]["statements"] >= 4


def test_queries_of_unservable_metrics_are_422_with_the_reason(build):
    warehouse, _ = build
    server = Server(warehouse, env={"NORTHSTAR_DATA_DIR": str(Path(warehouse).parent)})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            listed = {m["name"]: m for m in client.get("/v1/metrics").json()["metrics"]}
            assert listed["revenue"]["servable"] is True
            assert [u["group_by"] for u in listed["revenue"]["unavailable"]] == ["region"]
            assert listed["discounts"]["servable"] is False
            assert "discount_usd" in listed["discounts"]["unavailable"][0]["reason"]
            refused = client.post("/v1/query", json={"metrics": ["net_revenue"], "group_by": ["metric_time__week"]})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["code"] == "metric_unavailable"
            assert "discount_usd" in refused.json()["error"]["message"]
            by_region = client.post("/v1/query", json={"metrics": ["revenue"], "group_by": ["region"]})
            assert by_region.status_code == 422 and "shipping_region" in by_region.json()["error"]["message"]
            ok = client.post("/v1/query", json={"metrics": ["revenue"], "group_by": ["channel"]})
            assert ok.status_code == 200, ok.text
            con = duckdb.connect(str(warehouse), read_only=True)
            expected = con.execute("select channel, sum(amount) from orders group by 1 order by 1").fetchall()
            con.close()
            assert [(k, float(v)) for k, v in ok.json()["rows"]] == [(k, float(v)) for k, v in expected]
    finally:
        server.stop()


def test_a_build_made_elsewhere_is_checked_when_opened(build, tmp_path):
    """A build.json without the dry run's result (an older northstar, another tool): the engine
    runs the check on open and refuses the same metrics."""
    warehouse, _ = build
    real = Path(os.path.realpath(warehouse))
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    for name in ("warehouse.duckdb", "semantic_manifest.json"):
        (copy / name).write_bytes((real.parent / name).read_bytes())
    info = json.loads((real.parent / "build.json").read_text())
    info.pop("unservable_metrics")
    (copy / "build.json").write_text(json.dumps(info))
    engine = MetricsEngine.open(copy / "warehouse.duckdb")
    try:
        assert {(u.metric, u.group_by) for u in engine.unservable} == {
            ("discounts", None),
            ("net_revenue", None),
            ("running_median", None),
            ("revenue", "region"),
        }
        with pytest.raises(MetricUnavailable, match="discount_usd"):
            engine.query(MetricQuery(metrics=("discounts",)))
        ((total,),) = engine.query(MetricQuery(metrics=("revenue",))).rows
        assert float(total) == 60.0
    finally:
        engine.close()
