"""Load under a rebuild: concurrent HTTP clients against a real `northstar serve` on loopback,
half repeating queries the result cache answers and half asking ones it has never seen, while
`northstar build` rebuilds into the same warehouse path and swaps the symlink.

Reports failed requests (anything but a 200, or a transport error) and p50/p99 latency before the
rebuild starts, while it runs, and after the swap, for cached and uncached queries.

Usage:
    python bench/load.py --warehouse data/northstar.duckdb [--clients 32] [--seconds 60]

The warehouse's builds are copied to a temporary data directory first (the rebuild swaps the
copy, never the given warehouse). The load runs for `--seconds`, and longer if the rebuild has
not swapped in by then, until `--after` seconds past the swap.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from serving import served  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "seeds" / "sample"

# The data runs 2026-01-01 .. 2026-04-04 in the committed sample.
FIRST_DAY = 0
DAYS = 94
METRICS = ["active_users", "sessions", "events", "revenue", "crashes", "new_users", "errors", "paying_users"]
PLATFORMS = ["android", "ios", "web"]
COUNTRIES = ["US", "DE", "GB", "FR", "IN", "BR", "JP", "CA"]
CACHED = [
    {"metrics": ["active_users"], "group_by": ["platform"]},
    {"metrics": ["sessions", "events"], "group_by": ["metric_time__week"]},
    {"metrics": ["revenue"], "group_by": ["metric_time__month", "platform"]},
    {"metrics": ["crash_free_user_rate"], "group_by": ["metric_time__week", "platform"]},
    {"metrics": ["active_users", "new_users"], "group_by": ["country"]},
    {"metrics": ["errors"], "group_by": ["metric_time__day"], "start": "2026-03-01", "end": "2026-04-01"},
]


def day(offset: int) -> str:
    return (dt.date(2026, 1, 1) + dt.timedelta(days=offset)).isoformat()


def uncached(rng: random.Random) -> dict:
    """A query the cache has (almost surely) not seen: a random range, metrics and filter."""
    start = rng.randrange(FIRST_DAY, DAYS - 7)
    end = rng.randrange(start + 1, DAYS + 1)
    body = {
        "metrics": rng.sample(METRICS, rng.randint(1, 2)),
        "group_by": [rng.choice(["metric_time__day", "metric_time__week", "platform", "country"])],
        "start": day(start),
        "end": day(end),
    }
    if rng.random() < 0.5:
        body["where"] = [{"field": "platform", "op": "in", "values": rng.sample(PLATFORMS, rng.randint(1, 2))}]
    else:
        body["where"] = [{"field": "country", "op": "in", "values": rng.sample(COUNTRIES, rng.randint(1, 3))}]
    return body


@dataclass
class Sample:
    started: float
    seconds: float
    kind: str  # cached | uncached
    ok: bool
    cache_hit: bool
    build_id: str | None
    error: str | None


def client_loop(base_url: str, seed: int, stop: threading.Event, out: list[Sample]) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base_url, timeout=120) as client:
        while not stop.is_set():
            kind = "cached" if rng.random() < 0.5 else "uncached"
            body = rng.choice(CACHED) if kind == "cached" else uncached(rng)
            started = time.monotonic()
            error = None
            meta: dict = {}
            try:
                response = client.post("/v1/query", json=body)
                ok = response.status_code == 200
                if ok:
                    meta = response.json()["meta"]
                else:
                    error = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
            out.append(
                Sample(
                    started, time.monotonic() - started, kind, ok, bool(meta.get("cached")), meta.get("build_id"), error
                )
            )


def copy_data_dir(warehouse: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    shutil.copytree(
        warehouse.parent / "builds", target / "builds", symlinks=True, ignore=shutil.ignore_patterns("failed-*")
    )
    copy = target / warehouse.name
    os.symlink(os.readlink(warehouse), copy)
    return copy


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, required=True, help="a published warehouse (symlink) to copy")
    parser.add_argument("--landing", type=Path, default=SAMPLE, help="landing data for the rebuild")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--before", type=float, default=10, help="seconds of load before the rebuild starts")
    parser.add_argument("--after", type=float, default=10, help="seconds of load at least after the swap")
    parser.add_argument("--seed", type=int, default=32)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="northstar-load-"))
    warehouse = copy_data_dir(args.warehouse.absolute(), scratch / "data")
    try:
        with served(warehouse, ready_seconds=120) as server:
            with httpx.Client(base_url=server.base_url, timeout=120) as warm:
                for body in CACHED:  # the cached half is answered from the cache from the start
                    assert warm.post("/v1/query", json=body).status_code == 200
            samples: list[Sample] = []
            stop = threading.Event()
            threads = [
                threading.Thread(target=client_loop, args=(server.base_url, args.seed + i, stop, samples))
                for i in range(args.clients)
            ]
            t0 = time.monotonic()
            for thread in threads:
                thread.start()
            time.sleep(args.before)
            old_target = os.readlink(warehouse)
            build_started = time.monotonic()
            build = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "northstar",
                    "build",
                    "--landing",
                    str(args.landing),
                    "--warehouse",
                    str(warehouse),
                ],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            swapped = None
            while swapped is None or time.monotonic() < max(t0 + args.seconds, swapped + args.after):
                if swapped is None and os.readlink(warehouse) != old_target:
                    swapped = time.monotonic()
                if swapped is None and build.poll() is not None:
                    raise SystemExit(f"the rebuild failed ({build.returncode}): {build.stderr.read()[-2000:]}")
                time.sleep(0.05)
            stop.set()
            for thread in threads:
                thread.join()
            ended = time.monotonic()
            build.wait()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def phase(s: Sample) -> str:
        return "before" if s.started < build_started else "during" if s.started < swapped else "after"

    print(
        f"{args.clients} clients, {ended - t0:.0f} s of load on loopback; rebuild started at "
        f"{build_started - t0:.1f} s, swapped in at {swapped - t0:.1f} s (took {swapped - build_started:.1f} s), "
        f"exit status {build.returncode}"
    )
    failed = [s for s in samples if not s.ok]
    print(
        f"requests: {len(samples)}, failed: {len(failed)}, "
        f"cache hits: {sum(s.cache_hit for s in samples if s.kind == 'cached')}/"
        f"{sum(s.kind == 'cached' for s in samples)} of the cached kind, "
        f"{sum(s.cache_hit for s in samples if s.kind == 'uncached')}/"
        f"{sum(s.kind == 'uncached' for s in samples)} of the uncached kind"
    )
    builds = sorted({s.build_id for s in samples if s.build_id})
    print(f"answered by builds: {', '.join(f'{b} ({sum(s.build_id == b for s in samples)})' for b in builds)}")
    print()
    print("| phase  | kind     | requests | req/s | p50 ms | p99 ms | failed |")
    print("|--------|----------|---------:|------:|-------:|-------:|-------:|")
    spans = {"before": build_started - t0, "during": swapped - build_started, "after": ended - swapped}
    for name in ("before", "during", "after"):
        for kind in ("cached", "uncached", "all"):
            chosen = [s for s in samples if phase(s) == name and (kind == "all" or s.kind == kind)]
            ms = [s.seconds * 1000 for s in chosen]
            print(
                f"| {name:<6} | {kind:<8} | {len(chosen):>8} | {len(chosen) / spans[name]:>5.0f} | "
                f"{percentile(ms, 50):>6.1f} | {percentile(ms, 99):>6.1f} | {sum(not s.ok for s in chosen):>6} |"
            )
    for s in failed[:5]:
        print("failed:", s.error)
    if samples:
        print(f"\noverall p50 {statistics.median(s.seconds for s in samples) * 1000:.1f} ms")
    return 1 if failed or build.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
