"""Latency of the same metric queries through the dbt Semantic Layer APIs (the dbt-sl-sdk's
GraphQL client, and its ADBC Flight SQL client) next to `POST /v1/query`, from one
`northstar serve` on the committed sample (cached answers: this measures the protocol paths).

Usage:
    python bench/dbt_sl.py --warehouse data/northstar.duckdb --repeat 20
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
QUERIES = {
    "dau by day": {"metrics": ["active_users"], "group_by": ["metric_time__day"]},
    "revenue x country by month": {"metrics": ["revenue"], "group_by": ["metric_time__month", "user__country"]},
    "dau x country by day (2 GraphQL pages)": {
        "metrics": ["active_users"],
        "group_by": ["metric_time__day", "user__country"],
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def median_ms(run, repeat: int) -> float:
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    port, flight_port = free_port(), free_port()
    os.environ["DBT_SL_GRAPHQL_URL_FORMAT"] = "http://{server_host}/api/graphql"
    os.environ["DBT_SL_ADBC_URL_FORMAT"] = f"grpc://127.0.0.1:{flight_port}"
    import dbtsl.env
    from dbtsl import SyncSemanticLayerClient
    from dbtsl.api.graphql.client.sync import SyncGraphQLClient

    data_dir = Path(tempfile.mkdtemp())
    (data_dir / "northstar.duckdb").symlink_to(os.path.realpath(args.warehouse))
    log = open(data_dir / "serve.log", "w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "northstar",
            "serve",
            "--warehouse",
            str(data_dir / "northstar.duckdb"),
            "--port",
            str(port),
            "--sql-port",
            "0",
            "--flight-port",
            str(flight_port),
        ],
        cwd=REPO,
        env={**os.environ, "NORTHSTAR_DATA_DIR": str(data_dir)},
        stdout=log,
        stderr=log,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        host = f"127.0.0.1:{port}"
        http = httpx.Client(base_url=f"http://{host}", timeout=60)
        adbc = SyncSemanticLayerClient(environment_id=1, auth_token="-", host=host)
        graphql = SyncGraphQLClient(host, 1, "-", url_format=dbtsl.env.GRAPHQL_URL_FORMAT, lazy=False)
        print("| query | /v1/query ms | GraphQL (SDK) ms | Flight SQL (SDK, ADBC) ms | GraphQL / v1 | Flight / v1 |")
        print("|---|---:|---:|---:|---:|---:|")
        with adbc.session(), graphql.session():
            for name, body in QUERIES.items():
                v1 = median_ms(lambda: http.post("/v1/query", json=body).raise_for_status(), args.repeat)
                gql = median_ms(lambda: graphql.query(**body), args.repeat)
                fl = median_ms(lambda: adbc.query(**body), args.repeat)
                print(f"| {name} | {v1:.1f} | {gql:.1f} | {fl:.1f} | {gql / v1:.1f}x | {fl / v1:.1f}x |")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
