"""What translating SQL costs on top of the engine, in-process (no network, no wire protocol).

For each statement: the median time of `semantic_sql.answer()` and of `engine.query()` for the
equivalent metric query, both with the engine's result cache warm (so the difference is the
translation: parsing is excluded, catalog lookups, filter mapping, and, for statements the
engine cannot answer alone, the in-memory DuckDB pass over its rows), and once more with a cold
cache (a fresh engine per run) to put it against a real warehouse query.

    .venv/bin/python bench/sql_translator.py --warehouse data/northstar.duckdb [--runs 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

import sqlglot

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.sql_endpoint.semantic_sql import answer, visible_tables  # noqa: E402
from metrics.engine import MetricsEngine  # noqa: E402
from metrics.query.request import Filter, FilterOp, MetricQuery, OrderBy  # noqa: E402

CASES = [
    (
        "plain (direct)",
        "SELECT metric_time__week, platform, active_users FROM semantic.metrics "
        "WHERE country = 'US' AND metric_time__week >= '2026-01-05' ORDER BY 1 LIMIT 100",
        MetricQuery(
            ("active_users",),
            ("metric_time__week", "platform"),
            where=(Filter("country", FilterOp.EQ, "US"),),
            start=dt.datetime(2026, 1, 5),
            order_by=(OrderBy("metric_time__week"), OrderBy("platform")),
            limit=100,
        ),
    ),
    (
        "SUM(ratio) GROUP BY (direct)",
        "SELECT platform, SUM(arpu) AS arpu FROM semantic.metrics GROUP BY platform ORDER BY 1",
        MetricQuery(("arpu",), ("platform",), order_by=(OrderBy("platform"),)),
    ),
    (
        "nested, outer filter (DuckDB pass)",
        'SELECT "t"."platform", "t"."au" FROM (SELECT metric_time__week, platform, active_users AS au '
        'FROM semantic.metrics) "t" WHERE "t"."au" > 100 ORDER BY 2 DESC LIMIT 1000',
        MetricQuery(("active_users",), ("metric_time__week", "platform")),
    ),
    (
        "COUNT(*) over subquery (DuckDB pass)",
        "SELECT COUNT(*) FROM (SELECT metric_time__day, platform, events FROM semantic.metrics) q",
        MetricQuery(("events",), ("metric_time__day", "platform")),
    ),
]


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    engine = MetricsEngine.open(args.warehouse)
    started = time.perf_counter()
    visible_tables(engine)
    print(f"catalog (first visible_tables call, per build): {(time.perf_counter() - started) * 1000:.1f} ms\n")
    print(f"{'statement':40} {'answer() warm':>14} {'engine warm':>12} {'answer() cold':>14} {'engine cold':>12}")
    for label, sql, query in CASES:
        tree = sqlglot.parse_one(sql, read="postgres")
        answer(tree, engine)
        engine.query(query)
        warm_sql = median_ms(lambda: answer(tree, engine), args.runs)
        warm_engine = median_ms(lambda: engine.query(query), args.runs)
        cold_runs = max(3, args.runs // 10)
        cold_sql, cold_engine = [], []
        for _ in range(cold_runs):
            fresh = MetricsEngine.open(args.warehouse)
            visible_tables(fresh)
            cold_sql.append(median_ms(lambda: answer(tree, fresh), 1))
            fresh.close()
            fresh = MetricsEngine.open(args.warehouse)
            cold_engine.append(median_ms(lambda: fresh.query(query), 1))
            fresh.close()
        print(
            f"{label:40} {warm_sql:11.2f} ms {warm_engine:9.2f} ms "
            f"{statistics.median(cold_sql):11.2f} ms {statistics.median(cold_engine):9.2f} ms"
        )
    engine.close()


if __name__ == "__main__":
    main()
