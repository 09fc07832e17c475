"""Scorecard latency: each scorecard computed in-process on a built warehouse, with a fresh
engine (nothing cached: every semantic-layer query and mart read runs) and then again on the
same engine (its result cache answers the metric queries; mart reads still run).

Usage:
    python bench/scorecards.py --warehouse /path/to/northstar.duckdb [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metrics.engine import MetricsEngine  # noqa: E402
from metrics.scorecards.alerts import alerts  # noqa: E402
from metrics.scorecards.launches import launches, scorecard  # noqa: E402
from metrics.scorecards.quality import quality_scorecard  # noqa: E402
from metrics.scorecards.releases import all_release_health, release_health, releases  # noqa: E402


def cases(engine: MetricsEngine):
    first_launch = launches(engine)[0].launch_id
    some_release = releases(engine)[-1]
    return {
        "quality week (4 weeks)": lambda e: quality_scorecard(e, "week"),
        "quality day, android": lambda e: quality_scorecard(e, "day", platform="android"),
        "releases (all, list)": lambda e: all_release_health(e),
        f"release {some_release.platform}/{some_release.app_version}": lambda e: release_health(
            e, some_release.platform, some_release.app_version
        ),
        f"launch {first_launch} scorecard": lambda e: scorecard(e, first_launch),
        "alerts (all)": lambda e: alerts(e),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    probe = MetricsEngine.open(args.warehouse)
    names = list(cases(probe))
    probe.close()
    print(f"{'scorecard':40} {'cold p50 ms':>12} {'warm p50 ms':>12}")
    for name in names:
        cold, warm = [], []
        for _ in range(args.repeat):
            engine = MetricsEngine.open(args.warehouse)
            run = cases(engine)[name]
            started = time.perf_counter()
            run(engine)
            cold.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            run(engine)
            warm.append((time.perf_counter() - started) * 1000)
            engine.close()
        print(f"{name:40} {statistics.median(cold):12.1f} {statistics.median(warm):12.1f}")


if __name__ == "__main__":
    main()
