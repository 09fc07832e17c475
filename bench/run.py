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

Generated landing data and warehouses are kept under bench/out/ and reused when present.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
DAYS = 90
EVENTS_PER_USER = 0.5 * DAYS  # the generator's measured density (seeds/README.md)
SIZES = {"sample": None, "1m": 1_000_000, "10m": 10_000_000}

QUERIES = {
    "dau by day": {"metrics": ["active_users"], "group_by": ["metric_time__day"]},
    "wau x platform, country filter": {
        "metrics": ["active_users", "crash_free_user_rate"], "group_by": ["metric_time__week", "platform"],
        "where": [{"field": "country", "op": "in", "values": ["US", "DE"]}]},
    "arpu by month x plan": {"metrics": ["arpu", "revenue"], "group_by": ["metric_time__month", "plan"]},
    "events by feature": {"metrics": ["events", "feature_users"], "group_by": ["feature_key"]},
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
    print(f"  generated {size} landing data ({users:,} users) in {time.perf_counter() - started:.1f}s",
          flush=True)
    return out


def run(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "northstar", *args], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def timed_build(landing: Path, warehouse: Path) -> float:
    started = time.perf_counter()
    run(["build", "--landing", str(landing), "--warehouse", str(warehouse)])
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure_queries(warehouse: Path, repeat: int) -> list[dict]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "northstar", "serve", "--warehouse", str(warehouse),
                               "--port", str(port)], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            for _ in range(200):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            raw = duckdb.connect(str(warehouse), read_only=True)
            rows = []
            for name, body in QUERIES.items():
                end = dt.datetime(2030, 1, 1)
                uncached, cached, baseline = [], [], []
                for i in range(repeat):
                    distinct = {**body, "end": (end - dt.timedelta(seconds=i + 1)).isoformat()}
                    started = time.perf_counter()
                    response = client.post("/v1/query", json=distinct)
                    uncached.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                    assert response.json()["meta"]["cached"] is False
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
                rows.append({"query": name, "http_uncached_ms": p50(uncached), "http_cached_ms": p50(cached),
                             "raw_duckdb_ms": p50(baseline)})
            raw.close()
            return rows
    finally:
        server.terminate()
        server.wait(timeout=20)


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
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    OUT.mkdir(parents=True, exist_ok=True)

    builds, queries = [], []
    for size in args.sizes.split(","):
        print(f"[{size}]", flush=True)
        landing = landing_for(size)
        data = OUT / f"data-{size}"
        shutil.rmtree(data, ignore_errors=True)
        seconds = timed_build(landing, data / "northstar.duckdb")
        builds.append((size, event_count(landing), seconds))
        print(f"  build {seconds:.1f}s", flush=True)
        for row in measure_queries(data / "northstar.duckdb", args.repeat):
            queries.append({"size": size, **row})

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
        print(f"| {q['size']} | {q['query']} | {q['http_uncached_ms']:.1f} | {q['http_cached_ms']:.2f} | "
              f"{q['raw_duckdb_ms']:.1f} | {ratio:.2f} |")
    print(f"\nmachine: {os.cpu_count()} cores, python {sys.version.split()[0]}, duckdb {duckdb.__version__}")


if __name__ == "__main__":
    main()
