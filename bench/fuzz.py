"""Full-size OpenAPI fuzz: tests/api/test_fuzz.py with many more cases per operation, against a
`northstar serve` started here on a built warehouse (or a server already running).

Usage:
    python bench/fuzz.py --warehouse data/northstar.duckdb [--examples 1000] [--seed 7]
    python bench/fuzz.py --base-url http://127.0.0.1:8000 [--examples 1000]

Prints pytest's summary; exit status 0 means no 5xx and no response outside the spec.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import Server  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--warehouse", type=Path, help="a built warehouse to serve on loopback")
    where.add_argument("--base-url", help="a running server")
    parser.add_argument("--examples", type=int, default=1000, help="cases per operation (CI runs 125)")
    parser.add_argument("--seed", type=int, help="random seed (default: derandomized, as in CI)")
    args = parser.parse_args()

    server = None
    base_url = args.base_url
    if base_url is None:
        server = Server(args.warehouse.absolute())
        server.wait_ready()
        base_url = server.base_url
    env = {**os.environ, "NORTHSTAR_FUZZ_BASE_URL": base_url, "NORTHSTAR_FUZZ_EXAMPLES": str(args.examples)}
    if args.seed is not None:
        env["NORTHSTAR_FUZZ_SEED"] = str(args.seed)
    try:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "tests/api/test_fuzz.py", "-k", "every_route"], cwd=REPO, env=env).returncode
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
