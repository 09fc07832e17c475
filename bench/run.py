"""northstar benchmarks: build times and metric-query latency against raw DuckDB.

For each data size (the committed sample, and generated sets of about 1M and 10M events):

1. `northstar build` wall time (contract check + dbt build + dbt docs generate).
2. The service is started on that warehouse; for a few representative queries we measure,
   over HTTP, the p50 latency uncached (each request made distinct by a shifted `end`, so the
   result cache cannot answer it) and cached (the same request repeated), and, as the baseline
   in the same run, raw DuckDB executing the very SQL the engine generated (taken from
   `/v1/compile`) on its own read-only connection to the same file.

Usage:
    python bench/run.py                       # sample, 1m, 10m
    python bench/run.py --sizes sample,1m --repeat 20
    python bench/run.py --throughput /tmp/bench-10m/northstar.duckdb --seconds 8   # a built warehouse

Generated landing data and warehouses are kept under bench/out/ and reused when present.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
from serving import served, uncached_seconds  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
DAYS = 90
EVENTS_PER_USER = 0.5 * DAYS  # the generator's measured density (seeds/README.md)
SIZES = {"sample": None, "1m": 1_000_000, "10m": 10_000_000}

# The naive form of a rolling distinct count (the shape MetricFlow generates): every event
# range-joined to every spine day. northstar pre-aggregates to distinct (day, user) first.
NAIVE_ROLLING_7D = """
select s.date_day, count(distinct e.user_id)
from marts.metricflow_time_spine s
join marts.fct_events e
  on cast(e.event_ts as date) <= s.date_day and cast(e.event_ts as date) > s.date_day - interval 7 day
where s.date_day between (select min(cast(event_ts as date)) from marts.fct_events)
                     and (select max(cast(event_ts as date)) from marts.fct_events)
group by 1
"""

QUERIES = {
    "dau by day": {"metrics": ["active_users"], "group_by": ["metric_time__day"]},
    "wau x platform, country filter": {
        "metrics": ["active_users", "crash_free_user_rate"],
        "group_by": ["metric_time__week", "platform"],
        "where": [{"field": "country", "op": "in", "values": ["US", "DE"]}],
    },
    "arpu by month x plan": {"metrics": ["arpu", "revenue"], "group_by": ["metric_time__month", "plan"]},
    "events by feature": {"metrics": ["events", "feature_users"], "group_by": ["feature_key"]},
    "rolling 7d active users by day": {"metrics": ["active_users_7d"], "group_by": ["metric_time__day"]},
}


def landing_for(size: str) -> Path:
    target = SIZES[size]
    if target is None:
        return REPO / "seeds" / "sample"
    out = OUT / f"landing-{size}"
    users = int(target / EVENTS_PER_USER)
    marker = out / ".generated.json"
    wanted = {"users": users, "days": DAYS, "seed": 7}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return out
    started = time.perf_counter()
    run(["generate", "--out", str(out), "--users", str(users), "--days", str(DAYS), "--seed", "7"])
    marker.write_text(json.dumps(wanted))
    print(f"  generated {size} landing data ({users:,} users) in {time.perf_counter() - started:.1f}s", flush=True)
    return out


def run(args: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "northstar", *args],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def timed_build(landing: Path, warehouse: Path) -> float:
    started = time.perf_counter()
    run(["build", "--landing", str(landing), "--warehouse", str(warehouse)])
    return time.perf_counter() - started


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure_queries(warehouse: Path, repeat: int) -> list[dict]:
    with served(warehouse) as server, httpx.Client(base_url=server.base_url, timeout=120) as client:
        raw = duckdb.connect(str(warehouse), read_only=True)
        rows = []
        for name, body in QUERIES.items():
            end = dt.datetime(2030, 1, 1)
            uncached = [uncached_seconds(client, body, i) for i in range(repeat)]
            cached, baseline = [], []
            fixed = {**body, "end": end.isoformat()}
            client.post("/v1/query", json=fixed)
            for _ in range(repeat):
                started = time.perf_counter()
                response = client.post("/v1/query", json=fixed)
                cached.append(time.perf_counter() - started)
                assert response.json()["meta"]["cached"] is True
            compiled = client.post("/v1/compile", json=fixed).json()
            params = {k: _param(v) for k, v in compiled["parameters"].items()}
            for _ in range(repeat):
                started = time.perf_counter()
                raw.execute(compiled["parameterized_sql"], params).fetchall()
                baseline.append(time.perf_counter() - started)
            rows.append(
                {
                    "query": name,
                    "http_uncached_ms": p50(uncached),
                    "http_cached_ms": p50(cached),
                    "raw_duckdb_ms": p50(baseline),
                }
            )
        raw.close()
        return rows


def measure_rolling(warehouse: Path, repeat: int) -> tuple[float, float]:
    """p50 (ms) of northstar's SQL for the rolling 7-day distinct users and of the naive range
    join, run alternately on one connection so both see the same machine."""
    from metrics.engine import MetricsEngine
    from metrics.query.request import MetricQuery

    engine = MetricsEngine.open(warehouse)
    try:
        compiled = engine.compile(MetricQuery(metrics=("active_users_7d",), group_by=("metric_time__day",)))
    finally:
        engine.close()
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        ours, naive = [], []
        for _ in range(max(3, repeat // 4)):
            for samples, sql, params in ((ours, compiled.sql, compiled.params), (naive, NAIVE_ROLLING_7D, {})):
                started = time.perf_counter()
                con.execute(sql, params).fetchall()
                samples.append(time.perf_counter() - started)
        return p50(ours), p50(naive)
    finally:
        con.close()


def measure_compile(warehouse: Path) -> dict:
    """In-process compile time (plan + SQL, no execution) of distinct queries: every pair of
    pack metrics by every grain and slice they share, each compiled once, in random order."""
    import itertools
    import random

    from metrics.engine import MetricsEngine
    from metrics.query.request import MetricQuery

    engine = MetricsEngine.open(warehouse)
    try:
        catalog = engine.catalog()
        names = [n for n, m in catalog.items() if m.type in ("simple", "ratio", "derived")]
        queries = []
        for a, b in itertools.combinations(names, 2):
            shared = sorted(set(catalog[a].dimensions) & set(catalog[b].dimensions))
            for grain in ("day", "week", "month"):
                for dim in [d for d in shared if "__" not in d][:3]:
                    queries.append(MetricQuery(metrics=(a, b), group_by=(f"metric_time__{grain}", dim)))
        random.Random(7).shuffle(queries)
        samples = []
        for query in queries:
            started = time.perf_counter()
            engine.renderer.render(engine.planner.plan(query))
            samples.append(time.perf_counter() - started)
        samples.sort()
        return {"queries": len(queries), "p50_ms": p50(samples), "p90_ms": samples[int(len(samples) * 0.9)] * 1000}
    finally:
        engine.close()


def raw_shape(n: int) -> dict:
    """Events and WAU by week x platform; an odd request is distinct by its `end` (a second
    apart, inside a stored bucket, so no rollup can answer it)."""
    body: dict = {"metrics": ["events", "active_users"], "group_by": ["metric_time__week", "platform"]}
    if n % 2:
        body["end"] = (dt.datetime(2030, 1, 1) - dt.timedelta(seconds=n)).isoformat()
    return body


def dashboard_shape(n: int) -> dict:
    """A dashboard tile the sample project's rollups answer (events and revenue by week x
    platform, re-aggregated from `daily_core_by_platform`); an odd request is distinct by its
    `end`, a different Monday after the data each time (a stored bucket boundary)."""
    body: dict = {"metrics": ["events", "revenue"], "group_by": ["metric_time__week", "platform"]}
    if n % 2:
        body["end"] = (dt.datetime(2030, 1, 7) + dt.timedelta(weeks=n)).isoformat()
    return body


def measure_concurrency(warehouse: Path, seconds: float, shape=raw_shape) -> list[dict]:
    """Requests per second over HTTP with 1, 8 and 32 concurrent clients, half of the
    requests distinct (uncached), half repeated (cached), of the given `shape`."""
    import threading

    with served(warehouse) as server:
        base = server.base_url
        results = []
        serial = iter(range(10**9))
        for clients in (1, 8, 32):
            counts, errors = [0] * clients, [0] * clients
            stop = time.perf_counter() + seconds

            def worker(index: int) -> None:
                with httpx.Client(base_url=base, timeout=60) as client:
                    while time.perf_counter() < stop:
                        response = client.post("/v1/query", json=shape(next(serial)))
                        counts[index] += 1
                        errors[index] += response.status_code != 200

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            results.append({"clients": clients, "rps": sum(counts) / seconds, "errors": sum(errors)})
        return results


def throughput(warehouse: Path, seconds: float) -> list[dict]:
    """Both shapes in one run: a query no rollup answers, and a dashboard tile one does."""
    return [
        {"shape": name, **level}
        for name, shape in (("raw", raw_shape), ("dashboard (rollup)", dashboard_shape))
        for level in measure_concurrency(warehouse, seconds, shape)
    ]


def print_throughput(concurrency: dict[str, list[dict]], seconds: float) -> None:
    print(f"\n## throughput over HTTP, {seconds:.0f} s per level, half the requests uncached\n")
    print("| data | query | clients | requests/s | failed |")
    print("|---|---|---:|---:|---:|")
    for size, levels in concurrency.items():
        for level in levels:
            print(f"| {size} | {level['shape']} | {level['clients']} | {level['rps']:.0f} | {level['errors']} |")


def _param(value):
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def event_count(landing: Path) -> int:
    from northstar.landing import locate

    events = locate(landing)["events"]
    con = duckdb.connect()
    try:
        return con.execute(f"select count(*) from {events.reader_sql()}").fetchone()[0]
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="sample,1m,10m")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each concurrency level")
    parser.add_argument("--throughput", type=Path, help="only the throughput levels, on this built warehouse")
    args = parser.parse_args()
    if args.throughput:
        print_throughput({args.throughput.parent.name: throughput(args.throughput, args.seconds)}, args.seconds)
        return
    sys.path.insert(0, str(REPO))
    OUT.mkdir(parents=True, exist_ok=True)

    builds, queries, rolling, concurrency = [], [], [], {}
    compile_stats = None
    for size in args.sizes.split(","):
        print(f"[{size}]", flush=True)
        landing = landing_for(size)
        data = OUT / f"data-{size}"
        shutil.rmtree(data, ignore_errors=True)
        seconds = timed_build(landing, data / "northstar.duckdb")
        builds.append((size, event_count(landing), seconds))
        print(f"  build {seconds:.1f}s", flush=True)
        warehouse = data / "northstar.duckdb"
        if compile_stats is None:
            compile_stats = measure_compile(warehouse)
        for row in measure_queries(warehouse, args.repeat):
            queries.append({"size": size, **row})
        rolling.append((size, *measure_rolling(warehouse, args.repeat)))
        concurrency[size] = throughput(warehouse, args.seconds)

    print("\n## northstar build (contract check + dbt build + dbt docs generate)\n")
    print("| data | landing event rows | build wall time (s) |")
    print("|---|---:|---:|")
    for size, events, seconds in builds:
        print(f"| {size} | {events:,} | {seconds:.1f} |")
    print(f"\n## metric query latency, p50 of {args.repeat} (ms); baseline: raw DuckDB on the same SQL\n")
    print("| data | query | HTTP uncached | HTTP cached | raw DuckDB | uncached / raw |")
    print("|---|---|---:|---:|---:|---:|")
    for q in queries:
        ratio = q["http_uncached_ms"] / q["raw_duckdb_ms"] if q["raw_duckdb_ms"] else float("nan")
        print(
            f"| {q['size']} | {q['query']} | {q['http_uncached_ms']:.1f} | {q['http_cached_ms']:.2f} | "
            f"{q['raw_duckdb_ms']:.1f} | {ratio:.2f} |"
        )
    print("\n## compile (plan + SQL, no execution), in-process, distinct queries\n")
    print("| queries | p50 (ms) | p90 (ms) |")
    print("|---:|---:|---:|")
    print(f"| {compile_stats['queries']} | {compile_stats['p50_ms']:.3f} | {compile_stats['p90_ms']:.3f} |")
    print("\n## rolling 7-day distinct users: northstar's SQL vs the naive range join, in DuckDB (ms)\n")
    print("| data | northstar SQL | naive range join | speed-up |")
    print("|---|---:|---:|---:|")
    for size, ours, naive in rolling:
        print(f"| {size} | {ours:.1f} | {naive:.1f} | {naive / ours:.1f}x |")
    print_throughput(concurrency, args.seconds)
    print(f"\nmachine: {os.cpu_count()} cores, python {sys.version.split()[0]}, duckdb {duckdb.__version__}")


if __name__ == "__main__":
    main()
