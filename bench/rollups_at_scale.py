"""Rollups at scale: build time with the project's rollups, and the sample project's saved
queries over HTTP answered from raw vs from their rollup, p50 uncached, in one run.

1. `northstar build` of the landing directory (DuckDB, or PostgreSQL with --postgres); the
   wall time, and the seconds the build spent on each rollup and on fct_metric_values_daily
   (from build.json).
2. The service on that build; for each saved query with a rollup, `repeat` uncached requests
   each way. Every request is made distinct by its `end`, after the data (same rows): the
   rollup one ends on a Monday, a bucket boundary of daily and weekly rollups, the raw one a
   second earlier, inside a stored bucket, so the router must answer it from the semantic
   models. `/v1/compile` confirms which path each form takes, and both give the same rows.

(bench/rollups.py times dashboard queries re-aggregated from the sample's rollups.)

Usage:
    python bench/rollups.py --landing /tmp/landing-10m --data /tmp/bench-10m
    python bench/rollups.py --landing /tmp/landing-1m --data /tmp/bench-pg-1m --postgres "$DSN"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from serving import served  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
MONDAY_AFTER_THE_DATA = dt.datetime(2030, 1, 7)


def ends(i: int) -> tuple[str, str]:
    """(rollup, raw) ends of the i-th request: a Monday, and a second before it."""
    monday = MONDAY_AFTER_THE_DATA + dt.timedelta(weeks=i)
    return monday.isoformat(), (monday - dt.timedelta(seconds=1)).isoformat()


def build(landing: Path, warehouse: Path, env: dict[str, str]) -> float:
    """`northstar build` as it runs by default (contract check, dbt, rollups, docs)."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "northstar", "build", "--landing", str(landing), "--warehouse", str(warehouse)],
        cwd=REPO,
        check=True,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def timed(client: httpx.Client, body: dict) -> tuple[float, list]:
    started = time.perf_counter()
    response = client.post("/v1/query", json=body)
    seconds = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["cached"] is False, body
    return seconds, response.json()["rows"]


def measure(warehouse: Path, env: dict[str, str], repeat: int) -> list[dict]:
    info = json.loads((warehouse.resolve().parent / "build.json").read_text())
    out = []
    with (
        served(warehouse, env=env, ready_seconds=300) as server,
        httpx.Client(base_url=server.base_url, timeout=300) as client,
    ):
        for name, rollup in sorted(info["rollups"].items()):
            rollup_end, raw_end = ends(0)
            routed = client.post("/v1/compile", json={"saved_query": name, "end": rollup_end}).json()
            assert routed["explanation"]["rollup"]["answered_by"] == rollup.get("name", rollup["table"]), routed[
                "explanation"
            ]
            raw_compiled = client.post("/v1/compile", json={"saved_query": name, "end": raw_end}).json()
            assert raw_compiled["explanation"]["rollup"]["answered_by"] is None, raw_compiled["explanation"]
            from_raw, from_rollup = [], []
            for i in range(repeat):
                rollup_end, raw_end = ends(i)
                seconds, raw_rows = timed(client, {"saved_query": name, "end": raw_end})
                from_raw.append(seconds)
                seconds, rollup_rows = timed(client, {"saved_query": name, "end": rollup_end})
                from_rollup.append(seconds)
            assert len(raw_rows) == len(rollup_rows) == rollup["rows"]
            out.append(
                {
                    "saved_query": name,
                    "rollup_rows": rollup["rows"],
                    "raw_p50_ms": statistics.median(from_raw) * 1000,
                    "rollup_p50_ms": statistics.median(from_rollup) * 1000,
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="data directory for the build")
    parser.add_argument("--postgres", help="build into this PostgreSQL database (DSN) instead of DuckDB")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    env = {"NORTHSTAR_WAREHOUSE_TYPE": "postgres", "NORTHSTAR_POSTGRES_DSN": args.postgres} if args.postgres else {}
    warehouse = args.data / ("northstar.postgres" if args.postgres else "northstar.duckdb")
    args.data.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    seconds = build(args.landing, warehouse, env)
    info = json.loads((warehouse.resolve().parent / "build.json").read_text())
    print(
        f"load average before the build: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min), "
        f"{os.cpu_count()} cores"
    )
    print(f"build: {seconds:.1f} s wall (build.json: {info['seconds']} s)")
    for _name, rollup in sorted(info["rollups"].items()):
        print(f"  rollup {rollup['table']}: {rollup['rows']} rows in {rollup['seconds']} s")
    if info.get("metric_values_daily"):
        values = info["metric_values_daily"]
        print(f"  fct_metric_values_daily staged: {values['rows']} rows in {values['seconds']} s")
    rows = measure(warehouse, env, args.repeat)
    load = os.getloadavg()
    print(f"load average after the queries: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print("\n| saved query | rollup rows | HTTP p50 from raw (ms) | HTTP p50 from rollup (ms) | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['saved_query']} | {row['rollup_rows']} | {row['raw_p50_ms']:.1f} | "
            f"{row['rollup_p50_ms']:.1f} | {row['raw_p50_ms'] / row['rollup_p50_ms']:.0f}x |"
        )


if __name__ == "__main__":
    main()
