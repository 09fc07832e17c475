"""Dashboard queries answered from rollups against the same queries from raw, over HTTP, in
one run.

The service is started on a build (the sample's by default, or `--size 1m`: generated, built
and kept under bench/out/ as bench/run.py does); for each query both requests are uncached
(each made distinct by its `end`, after the data) and give the same rows: the rollup one ends
on a Monday, a bucket boundary every rollup of the sample stores, the raw one a second
earlier, inside a stored bucket, so the router must answer it from the semantic models
(`/v1/compile` confirms both routes before timing). Requests alternate, so machine noise
falls on both.

Usage:
    python bench/rollups.py                       # the sample
    python bench/rollups.py --size 1m --repeat 30
    python bench/rollups.py --warehouse data/northstar.spark --repeat 5   # a Spark build
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

import httpx
from run import (  # bench/ is on sys.path when run as a script
    OUT,
    landing_for,
    timed_build,
)
from serving import served

QUERIES = {
    "wau x platform (stored weekly)": {
        "metrics": ["active_users"],
        "group_by": ["metric_time__week", "event__platform"],
    },
    "daily core x platform (stored daily)": {"saved_query": "daily_core_by_platform"},
    "events, revenue by month (from days)": {"metrics": ["events", "revenue"], "group_by": ["metric_time__month"]},
    "arpu by day x platform, ios (filtered)": {
        "metrics": ["arpu"],
        "group_by": ["metric_time__day", "event__platform"],
        "where": [{"field": "event__platform", "op": "=", "value": "ios"}],
    },
    "quality by week (ratios from days)": {
        "metrics": ["errors_per_1k_events", "nps", "csat"],
        "group_by": ["metric_time__week"],
    },
}
MONDAY_AFTER_THE_DATA = dt.datetime(2030, 1, 7)


def ends(i: int) -> tuple[str, str]:
    """(rollup, raw) ends of the i-th request: a Monday, and a second before it."""
    monday = MONDAY_AFTER_THE_DATA + dt.timedelta(weeks=i)
    return monday.isoformat(), (monday - dt.timedelta(seconds=1)).isoformat()


def timed(client: httpx.Client, body: dict) -> tuple[float, list]:
    started = time.perf_counter()
    response = client.post("/v1/query", json=body)
    seconds = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["cached"] is False
    return seconds, response.json()["rows"]


def measure(warehouse, repeat: int) -> list[dict]:
    out = []
    # A Spark server starts a JVM and registers the build's tables before it is ready, and a raw
    # Spark query may pass the service's default timeout (30 s): this measures how long it takes.
    spark = warehouse.suffix == ".spark"
    env = {"NORTHSTAR_WAREHOUSE_TYPE": "spark", "NORTHSTAR_QUERY_TIMEOUT_S": "3600"} if spark else None
    with (
        served(warehouse, env=env, ready_seconds=300 if spark else 60) as server,
        httpx.Client(base_url=server.base_url, timeout=3600) as client,
    ):
        for name, body in QUERIES.items():
            rollup_end, raw_end = ends(0)
            routes = [
                client.post("/v1/compile", json={**body, "end": end}).json()["explanation"]["rollup"]
                for end in (rollup_end, raw_end)
            ]
            assert routes[0]["answered_by"] is not None and routes[1]["answered_by"] is None, (name, routes)
            samples: dict[str, list[float]] = {"rollup": [], "raw": []}
            for i in range(repeat + 1):  # the first pair warms the connection and the file cache
                rollup_end, raw_end = ends(i)
                rollup_seconds, rollup_rows = timed(client, {**body, "end": rollup_end})
                raw_seconds, raw_rows = timed(client, {**body, "end": raw_end})
                assert len(rollup_rows) == len(raw_rows), name
                if i:
                    samples["rollup"].append(rollup_seconds)
                    samples["raw"].append(raw_seconds)
            raw, rollup = (statistics.median(samples[k]) * 1000 for k in ("raw", "rollup"))
            out.append(
                {
                    "query": name,
                    "answered_by": routes[0]["answered_by"],
                    "read": routes[0]["read"],
                    "raw_ms": raw,
                    "rollup_ms": rollup,
                    "ratio": raw / rollup,
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="sample", choices=["sample", "1m", "10m"])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warehouse", type=Path, help="a build to serve (default: build --size under bench/out/)")
    args = parser.parse_args()
    warehouse = args.warehouse or OUT / f"rollups-{args.size}" / "northstar.duckdb"
    if not warehouse.exists():
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        seconds = timed_build(landing_for(args.size), warehouse)
        print(f"built {args.size} in {seconds:.1f}s (with its rollups)", flush=True)
    what = args.warehouse if args.warehouse else args.size
    print(f"{what}: uncached p50 over HTTP, {args.repeat} requests each, alternating")
    print(f"{'query':44} {'raw ms':>8} {'rollup ms':>10} {'raw/rollup':>11}  answered by")
    for row in measure(warehouse, args.repeat):
        print(
            f"{row['query']:44} {row['raw_ms']:8.1f} {row['rollup_ms']:10.1f} {row['ratio']:10.1f}x  "
            f"{row['answered_by']} ({row['read']})"
        )


if __name__ == "__main__":
    main()
