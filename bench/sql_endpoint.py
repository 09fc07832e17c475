"""Latency of the same metric queries over the PostgreSQL-wire SQL endpoint (psycopg) and over
the HTTP API (httpx), from one `northstar serve`.

Each query is timed uncached (every repetition made distinct by a different far `end` bound,
on both sides, so the engine's result cache cannot answer it) and cached (the same query
repeated). Prints a markdown table of medians and the SQL / HTTP ratio.

Usage:
    python bench/sql_endpoint.py                          # builds the committed sample if needed
    python bench/sql_endpoint.py --warehouse data/northstar.duckdb --repeat 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

REPO = Path(__file__).resolve().parent.parent

# name -> (SQL over semantic.metrics with an `{end}` bound, the same HTTP body)
QUERIES = {
    "dau by day": (
        "SELECT metric_time__day, active_users FROM semantic.metrics WHERE metric_time__day < '{end}' ORDER BY 1",
        {"metrics": ["active_users"], "group_by": ["metric_time__day"], "order_by": ["metric_time__day"]},
    ),
    "wau x platform, country filter": (
        "SELECT metric_time__week, platform, active_users, crash_free_user_rate FROM semantic.metrics "
        "WHERE country IN ('US', 'DE') AND metric_time__week < '{end}' ORDER BY 1, 2",
        {
            "metrics": ["active_users", "crash_free_user_rate"],
            "group_by": ["metric_time__week", "platform"],
            "where": [{"field": "country", "op": "in", "values": ["US", "DE"]}],
            "order_by": ["metric_time__week", "platform"],
        },
    ),
    "arpu by month x plan": (
        "SELECT metric_time__month, plan, arpu, revenue FROM semantic.metrics "
        "WHERE metric_time__month < '{end}' ORDER BY 1, 2",
        {
            "metrics": ["arpu", "revenue"],
            "group_by": ["metric_time__month", "plan"],
            "order_by": ["metric_time__month", "plan"],
        },
    ),
    "BI form: SUM() GROUP BY, nested": (
        "SELECT t.platform, SUM(t.active_users) AS au FROM (SELECT platform, active_users FROM semantic.metrics "
        "WHERE metric_time__day < '{end}') AS t GROUP BY t.platform ORDER BY 1",
        {"metrics": ["active_users"], "group_by": ["platform"], "order_by": ["platform"]},
    ),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def far_end(i: int) -> str:
    """Distinct bounds past the data, so the answers stay the same but are never cached. A year
    apart, since a bound on a week or month column is rounded to whole buckets."""
    return dt.date(2030 + i, 1, 1).isoformat()


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, help="warehouse to serve (default: build the committed sample)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="northstar-sql-bench-"))
    warehouse = args.warehouse
    if warehouse is None:
        warehouse = workdir / "northstar.duckdb"
        subprocess.run(
            [sys.executable, "-m", "northstar", "build", "--warehouse", str(warehouse), "--no-docs"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    http_port, sql_port = free_port(), free_port()
    log = open(workdir / "serve.log", "w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "northstar",
            "serve",
            "--warehouse",
            str(warehouse),
            "--port",
            str(http_port),
            "--sql-port",
            str(sql_port),
        ],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{http_port}"
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        rows = []
        with (
            httpx.Client(base_url=base, timeout=120) as http,
            psycopg.connect(f"host=127.0.0.1 port={sql_port} dbname=northstar user=bench", autocommit=True) as sql,
        ):
            for name, (sql_text, body) in QUERIES.items():
                timings: dict[str, list[float]] = {"sql": [], "http": [], "sql_cached": [], "http_cached": []}
                for i in range(args.repeat):
                    sql_end, http_end = far_end(2 * i), far_end(2 * i + 1)
                    started = time.perf_counter()
                    sql_rows = sql.execute(sql_text.format(end=sql_end)).fetchall()
                    timings["sql"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    response = http.post("/v1/query", json={**body, "end": http_end})
                    response.raise_for_status()
                    http_rows = response.json()["rows"]
                    timings["http"].append(time.perf_counter() - started)
                    if len(sql_rows) != len(http_rows):
                        raise SystemExit(f"{name}: {len(sql_rows)} rows over SQL, {len(http_rows)} over HTTP")
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    sql.execute(sql_text.format(end=far_end(0))).fetchall()
                    timings["sql_cached"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    http.post("/v1/query", json={**body, "end": far_end(1)}).raise_for_status()
                    timings["http_cached"].append(time.perf_counter() - started)
                medians = {k: median_ms(v) for k, v in timings.items()}
                rows.append((name, len(http_rows), medians))
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()

    print(f"#### latency over the SQL endpoint (psycopg) vs HTTP (httpx), p50 of {args.repeat} (ms)\n")
    print("| query | rows | SQL uncached | HTTP uncached | SQL / HTTP | SQL cached | HTTP cached | SQL / HTTP |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, count, m in rows:
        print(
            f"| {name} | {count} | {m['sql']:.1f} | {m['http']:.1f} | {m['sql'] / m['http']:.2f} "
            f"| {m['sql_cached']:.2f} | {m['http_cached']:.2f} | {m['sql_cached'] / m['http_cached']:.2f} |"
        )


if __name__ == "__main__":
    main()
