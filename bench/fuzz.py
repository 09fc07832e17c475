"""Full-size OpenAPI fuzz: tests/api/test_fuzz.py with many more cases per operation, per caller.

Modes (one pytest run each, servers started here on the given warehouse, loopback only):
    open        no token exists; every request is answered without one
    admin       a secured server (tokens made with `northstar tokens create`), an admin token
    restricted  the same server, a metrics:read + experiments:read token bound to one region
    anonymous   the same server, each case sent with no token, a forged one and a malformed one
    sql         the SQL endpoint (psycopg) with a region-restricted token: seeded generated
                statements over semantic.*, marts.*, the catalog, files and table functions

Usage:
    python bench/fuzz.py --warehouse data/northstar.duckdb [--mode all] [--examples 400] [--seed 1]
    python bench/fuzz.py --base-url http://127.0.0.1:8000 --mode open [--examples 400]

Prints a table per mode: requests sent, answers by status, 5xx answers, answers outside the spec
(an undeclared status, content type or body; for the token modes also data answered without a
valid token, or another region's rows to the restricted token). Exit status 0 means every mode
passed. (When a check fails, hypothesis shrinks the failing case, so the counts include the
requests it sends while shrinking.)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TESTS = {
    "open": "test_every_route_answers_within_its_spec_in_open_mode",
    "admin": "test_every_route_answers_within_its_spec_with_an_admin_token",
    "restricted": "test_every_route_answers_within_its_spec_with_a_restricted_token",
    "anonymous": "test_every_route_answers_within_its_spec_without_a_valid_token",
}


def run_mode(mode: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="northstar-fuzz-") as tmp:
        log = Path(tmp) / "requests.jsonl"
        env = {**os.environ, "NORTHSTAR_FUZZ_EXAMPLES": str(args.examples), "NORTHSTAR_FUZZ_LOG": str(log)}
        if args.base_url:
            env["NORTHSTAR_FUZZ_BASE_URL"] = args.base_url
        else:
            env["NORTHSTAR_FUZZ_WAREHOUSE"] = str(args.warehouse.absolute())
        if args.seed is not None:
            env["NORTHSTAR_FUZZ_SEED"] = str(args.seed)
        started = time.monotonic()
        # The test id names the one test; -k would also match the regression tests' fixtures.
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"tests/api/test_fuzz.py::{TESTS[mode]}"],
            cwd=REPO,
            env=env,
        )
        seconds = time.monotonic() - started
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    statuses = collections.Counter(r["status"] for r in records)
    return {
        "mode": mode,
        "passed": proc.returncode == 0,
        "seconds": seconds,
        "requests": len(records),
        "server_errors": sum(n for status, n in statuses.items() if status >= 500),
        "outside_spec": sum(1 for r in records if r["problem"] and r["status"] < 500),
        "statuses": dict(sorted(statuses.items())),
        "problems": sorted({f"{r['method']} {r['path']}: {r['problem']}" for r in records if r["problem"]})[:10],
    }


# -- the SQL endpoint ----------------------------------------------------------------------

SQL_PIECES = {
    "tables": [
        "marts.dim_users",
        "marts.fct_events",
        "marts.dim_accounts",
        "semantic.metrics",
        "pg_catalog.pg_class",
        "information_schema.columns",
        "'/etc/passwd'",
        '"/etc/hosts"',
        "read_csv('/etc/passwd')",
        "range(100000000)",
        "duckdb_settings()",
        "main.secrets",
        "glob('/*')",
        "marts.no_such_table",
    ],
    "columns": [
        "*",
        "count(*)",
        "1",
        "user_id",
        "region",
        "active_users",
        "relname",
        "current_setting('x')",
        "version()",
        "repeat('x', 1000)",
        "$1",
        "NULL::int",
        "'a' || 'b'",
    ],
    "wheres": [
        "",
        " WHERE 1 = 1",
        " WHERE region = 'emea'",
        " WHERE user_id < 'u5'",
        " WHERE x IN (SELECT 1)",
        " WHERE EXISTS (SELECT 1 FROM marts.dim_accounts)",
        " WHERE true OR 1/0 = 1",
    ],
    "tails": ["", " LIMIT 5", " ORDER BY 1 LIMIT 3", " GROUP BY 1", " OFFSET 2", ";", "; SELECT 1", " --"],
}
# Answers a client's statement may get: rows, or a refusal naming the problem.
SQL_ALLOWED_STATES = {
    "0A000",
    "42601",
    "42P01",
    "42703",
    "42883",
    "42702",
    "42803",
    "22023",
    "22P02",
    "22012",
    "42501",
    "54000",
    "57014",
    "53200",
    "53400",
    "25006",
    "08P01",
    "42846",
    "21000",
    "22003",
}


def generate_sql(rng) -> str:
    choice = rng.random()
    table = rng.choice(SQL_PIECES["tables"])
    sql = (
        f"SELECT {rng.choice(SQL_PIECES['columns'])} FROM {table}{rng.choice(SQL_PIECES['wheres'])}"
        f"{rng.choice(SQL_PIECES['tails'])}"
    )
    if choice < 0.2:  # a CTE shadowing a name, at some level
        name = rng.choice(['"/etc/passwd"', "dim_users", "r"])
        sql = f"WITH {name} AS (SELECT 1 AS x) SELECT * FROM {rng.choice([name, table])} WHERE EXISTS ({sql})"
    elif choice < 0.3:
        sql = f"SELECT * FROM ({sql}) AS s, {rng.choice(SQL_PIECES['tables'])} AS t LIMIT 10"
    elif choice < 0.35:
        sql = "".join(rng.choice("SELECT(),'\"$;*/- 1aqx") for _ in range(rng.randint(1, 60)))
    return sql


def run_sql_mode(args: argparse.Namespace) -> dict:
    """Sends generated statements to a server of its own with a region-restricted token."""
    import random
    import socket

    import httpx
    import psycopg

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="northstar-fuzz-sql-") as tmp:
        data = Path(tmp)
        (data / "northstar.duckdb").symlink_to(Path(os.path.realpath(args.warehouse)))

        def cli(*words: str) -> str:
            return (
                subprocess.run(
                    [sys.executable, "-m", "northstar", *words], cwd=REPO, capture_output=True, text=True, check=True
                )
                .stdout.strip()
                .splitlines()[-1]
            )

        token = cli(
            "tokens",
            "create",
            "--name",
            "fuzz",
            "--scope",
            "metrics:read",
            "--row-filter",
            "region=emea",
            "--data-dir",
            str(data),
        )
        log = (data / "serve.log").open("w")
        ports = []
        for _ in range(2):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                ports.append(sock.getsockname()[1])
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "northstar",
                "serve",
                "--warehouse",
                str(data / "northstar.duckdb"),
                "--host",
                "127.0.0.1",
                "--port",
                str(ports[0]),
                "--sql-port",
                str(ports[1]),
            ],
            cwd=REPO,
            env={**os.environ, "NORTHSTAR_DATA_DIR": str(data), "NORTHSTAR_QUERY_TIMEOUT_S": "5"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        states: collections.Counter = collections.Counter()
        problems: list[str] = []
        drops = internal = outside = 0
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"http://127.0.0.1:{ports[0]}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            dsn = f"host=127.0.0.1 port={ports[1]} dbname=northstar user=fuzz password={token}"
            rng = random.Random(args.seed or 0)

            def record(exc: Exception, sql: str) -> None:
                nonlocal internal, outside
                states[exc.sqlstate or "?"] += 1
                if exc.sqlstate == "XX000":
                    internal += 1
                    problems.append(f"XX000 {str(exc).splitlines()[0]}: {sql}")
                elif exc.sqlstate not in SQL_ALLOWED_STATES:
                    outside += 1
                    problems.append(f"{exc.sqlstate} {str(exc).splitlines()[0]}: {sql}")

            conn = psycopg.connect(dsn, autocommit=True)
            for _ in range(args.examples):
                sql = generate_sql(rng)
                try:
                    rows = conn.execute(sql).fetchall()
                    states["rows"] += 1
                    text = repr(rows)
                    if "root:" in text or "localhost" in text:  # a file's content came back
                        outside += 1
                        problems.append(f"file content answered: {sql}")
                except psycopg.Error as exc:
                    if not conn.closed:  # an answer (psycopg raises classes 08/53/54 as OperationalError)
                        record(exc, sql)
                        continue
                    drops += 1
                    problems.append(f"connection dropped ({str(exc).splitlines()[0]}): {sql}")
                    if server.poll() is not None:
                        problems.append("the server exited: " + (data / "serve.log").read_text()[-2000:])
                        break
                    conn = psycopg.connect(dsn, autocommit=True)
            conn.close()
        finally:
            server.terminate()
            server.wait(10)
    return {
        "mode": "sql",
        "passed": not (drops or internal or outside),
        "seconds": time.monotonic() - started,
        "requests": sum(states.values()) + drops,
        "server_errors": internal,
        "outside_spec": outside + drops,
        "statuses": dict(states),
        "problems": sorted(set(problems), key=lambda p: (not p.startswith(("connection", "the server")), p))[:12],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--warehouse", type=Path, help="a built warehouse to serve on loopback")
    where.add_argument("--base-url", help="a running server in open mode (--mode open only)")
    parser.add_argument("--mode", choices=[*TESTS, "sql", "all"], default="all")
    parser.add_argument(
        "--examples", type=int, default=400, help="cases per operation (CI: 125 in open mode, 40 in the token modes)"
    )
    parser.add_argument("--seed", type=int, help="random seed (default: derandomized, as in CI)")
    args = parser.parse_args()
    modes = [*TESTS, "sql"] if args.mode == "all" else [args.mode]
    if args.base_url and modes != ["open"]:
        parser.error(
            "--base-url fuzzes a running server in open mode; the token modes need --warehouse "
            "(they make their own tokens in a data directory of their own)"
        )

    results = [run_sql_mode(args) if mode == "sql" else run_mode(mode, args) for mode in modes]
    print(
        f"\nOpenAPI fuzz, {args.examples} cases per operation, "
        f"{'seed ' + str(args.seed) if args.seed is not None else 'derandomized'}:\n"
    )
    print("| mode | requests | 5xx | outside the spec | seconds | answers by status |")
    print("|---|---:|---:|---:|---:|---|")
    for r in results:
        by_status = ", ".join(
            f"{n:,} × {status}" for status, n in sorted(r["statuses"].items(), key=lambda item: -item[1])
        )
        print(
            f"| {r['mode']} | {r['requests']:,} | {r['server_errors']} | {r['outside_spec']} "
            f"| {r['seconds']:.0f} | {by_status} |"
        )
    for r in results:
        for problem in r["problems"]:
            print(f"{r['mode']}: {problem}")
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
