"""Build and query times per warehouse engine (DuckDB, PostgreSQL, Spark) on the same landing data.

For each size (the committed sample; about 1M events generated as in bench/run.py) and each
engine: `northstar build` wall time (contract check, for PostgreSQL the COPY load, dbt build,
docs), then the service on that build and, over HTTP, the p50 of uncached metric queries (each
request made distinct by a shifted `end`, so the result cache cannot answer) for the queries
of bench/run.py.

Usage:
    export NORTHSTAR_POSTGRES_DSN=$(scripts/postgres_test_server.sh start)
    python bench/engines.py                          # sample and 1m, both engines
    python bench/engines.py --sizes sample --repeat 5
    python bench/engines.py --engines spark          # needs the spark extra and Java 17

Results are printed as a table and written to bench/out/engines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import OUT, QUERIES, REPO, landing_for  # noqa: E402
from serving import served, uncached_seconds  # noqa: E402


def build(landing: Path, warehouse: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "northstar", "build", "--landing", str(landing), "--warehouse", str(warehouse)],
        cwd=REPO,
        check=True,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def query_times(warehouse: Path, env: dict[str, str], repeat: int) -> dict[str, float]:
    out = {}
    # a Spark server starts a JVM and registers the build's tables before it is ready; the
    # service's query timeout (30 s) is lifted: this measures how long a query takes
    env = {**env, "NORTHSTAR_QUERY_TIMEOUT_S": "3600"}
    with (
        served(warehouse, env=env, ready_seconds=300 if warehouse.suffix == ".spark" else 30) as server,
        httpx.Client(base_url=server.base_url, timeout=3600) as client,
    ):
        for name, body in QUERIES.items():
            out[name] = statistics.median(uncached_seconds(client, body, i) for i in range(repeat)) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="sample,1m")
    parser.add_argument("--engines", default="duckdb,postgres")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--reuse-builds",
        action="store_true",
        help="query the build a previous run left for a size and engine instead of rebuilding",
    )
    args = parser.parse_args()
    dsn = os.environ.get("NORTHSTAR_POSTGRES_DSN")
    results = []
    for size in args.sizes.split(","):
        landing = landing_for(size)
        for engine in args.engines.split(","):
            if engine == "postgres" and not dsn:
                sys.exit("set NORTHSTAR_POSTGRES_DSN (scripts/postgres_test_server.sh start prints one)")
            env = {"NORTHSTAR_WAREHOUSE_TYPE": engine}
            data = OUT / f"engines-{size}-{engine}"
            warehouse = data / f"northstar.{engine}"
            if args.reuse_builds and warehouse.exists():
                seconds = None
                print(f"{size:>7} {engine:<9} build (reused)", flush=True)
            else:
                shutil.rmtree(data, ignore_errors=True)
                seconds = build(landing, warehouse, env)
                print(f"{size:>7} {engine:<9} build {seconds:7.1f} s", flush=True)
            queries = query_times(warehouse, env, args.repeat)
            for name, ms in queries.items():
                print(f"{'':>7} {engine:<9} {name:<32} p50 {ms:9.1f} ms", flush=True)
            results.append(
                {
                    "size": size,
                    "engine": engine,
                    "build_s": round(seconds, 1) if seconds else None,
                    "query_p50_ms": {k: round(v, 1) for k, v in queries.items()},
                }
            )
    (OUT / "engines.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
