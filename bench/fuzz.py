"""Full-size OpenAPI fuzz: tests/api/test_fuzz.py with many more cases per operation, per caller.

Modes (one pytest run each, servers started here on the given warehouse, loopback only):
    open        no token exists; every request is answered without one
    admin       a secured server (tokens made with `northstar tokens create`), an admin token
    restricted  the same server, a metrics:read + experiments:read token bound to one region
    anonymous   the same server, each case sent with no token, a forged one and a malformed one

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
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               f"tests/api/test_fuzz.py::{TESTS[mode]}"], cwd=REPO, env=env)
        seconds = time.monotonic() - started
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    statuses = collections.Counter(r["status"] for r in records)
    return {
        "mode": mode, "passed": proc.returncode == 0, "seconds": seconds, "requests": len(records),
        "server_errors": sum(n for status, n in statuses.items() if status >= 500),
        "outside_spec": sum(1 for r in records if r["problem"] and r["status"] < 500),
        "statuses": dict(sorted(statuses.items())),
        "problems": sorted({f"{r['method']} {r['path']}: {r['problem']}" for r in records if r["problem"]})[:10],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--warehouse", type=Path, help="a built warehouse to serve on loopback")
    where.add_argument("--base-url", help="a running server in open mode (--mode open only)")
    parser.add_argument("--mode", choices=[*TESTS, "all"], default="all")
    parser.add_argument("--examples", type=int, default=400,
                        help="cases per operation (CI: 125 in open mode, 40 in the token modes)")
    parser.add_argument("--seed", type=int, help="random seed (default: derandomized, as in CI)")
    args = parser.parse_args()
    modes = list(TESTS) if args.mode == "all" else [args.mode]
    if args.base_url and modes != ["open"]:
        parser.error("--base-url fuzzes a running server in open mode; the token modes need --warehouse "
                     "(they make their own tokens in a data directory of their own)")

    results = [run_mode(mode, args) for mode in modes]
    print(f"\nOpenAPI fuzz, {args.examples} cases per operation, "
          f"{'seed ' + str(args.seed) if args.seed is not None else 'derandomized'}:\n")
    print("| mode | requests | 5xx | outside the spec | seconds | answers by status |")
    print("|---|---:|---:|---:|---:|---|")
    for r in results:
        by_status = ", ".join(f"{n:,} × {status}" for status, n in
                              sorted(r["statuses"].items(), key=lambda item: -item[1]))
        print(f"| {r['mode']} | {r['requests']:,} | {r['server_errors']} | {r['outside_spec']} "
              f"| {r['seconds']:.0f} | {by_status} |")
    for r in results:
        for problem in r["problems"]:
            print(f"{r['mode']}: {problem}")
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
