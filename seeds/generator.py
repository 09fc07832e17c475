"""Deterministic synthetic landing data for northstar.

``generate(out)`` writes the landing contract into ``out/``: one
``<table>.parquet`` per table, except ``events`` which is a folder of Parquet
part files. The data tells the story declared in :mod:`seeds.story` (a
crashing Android release, feature launches, one incident-causing launch, an
experiment with a real effect and one without, ...). See ``seeds/README.md``.

Events are simulated a chunk of days (and, for very large runs, a block of
users) at a time, vectorised with numpy, and each chunk is written as its own
part file before the next one is built, so memory stays bounded whatever the
number of events. The per-user state that has to survive between chunks
(experiment assignments, signup times) is a handful of arrays of length
``users``.

Regenerate the committed sample with ``python -m seeds.generator`` (see the
README for the exact command).
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from seeds import landing as L
from seeds.activity import (
    _assignments_table,
    _errors_table,
    _events_table,
    _feedback_table,
    _refunds_table,
    _simulate_sessions,
    _tickets_table,
    _World,
)
from seeds.knobs import (
    ANDROID,
    DEFAULT_USERS,
    EVENTS_PER_USER_DAY,
    IOS,
    MAX_DAYS_PER_PART,
    REFUND_STREAM,
    SAMPLE_DIR,
    TARGET_EVENTS_PER_PART,
)
from seeds.population import (
    _accounts_table,
    _make_accounts,
    _make_population,
    _users_table,
)
from seeds.reference_tables import (
    _experiments_table,
    _incidents_table,
    _launches_table,
    _releases_table,
)
from seeds.story import (
    BAD_RELEASE,
    DEFAULT_DAYS,
    DEFAULT_START,
    DUPLICATE_EVENT_SHARE,
    EXPERIMENTS,
    HOTFIX_RELEASE,
    INCIDENT_LAUNCH_ID,
    LAUNCHES,
    PLANTED,
    PLATFORMS,
    planted_facts,
    story_timeline,
)

__all__ = [
    "BAD_RELEASE",
    "DEFAULT_USERS",
    "EVENTS_PER_USER_DAY",
    "EXPERIMENTS",
    "GenerationSummary",
    "HOTFIX_RELEASE",
    "INCIDENT_LAUNCH_ID",
    "LAUNCHES",
    "PLANTED",
    "SAMPLE_DIR",
    "generate",
    "main",
    "planted_facts",
]


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate` wrote.

    Attributes:
        out: Output directory.
        tables: Rows written per table (events include the duplicate rows).
        seed: Seed used.
        users: Number of users.
        days: Window length in days.
        start: First day of the window.
        event_parts: Number of part files under ``events/``.
        duplicate_events: Number of exact duplicate event rows planted.
        seconds: Wall-clock time of the run.
    """

    out: Path
    tables: dict[str, int]
    seed: int
    users: int
    days: int
    start: datetime.date
    event_parts: int = 0
    duplicate_events: int = 0
    seconds: float = 0.0

    @property
    def events_per_user_day(self) -> float:
        """Event rows per user per window day (the sizing figure of the README)."""
        return self.tables.get("events", 0) / max(1, self.users * self.days)


# ===================================================================== driver


def _plan_parts(users: int, days: int) -> tuple[int, int]:
    """Days per chunk and user blocks per chunk so a part holds ~TARGET_EVENTS_PER_PART events."""
    per_day = max(1.0, users * EVENTS_PER_USER_DAY * 1.3)  # headroom: weekdays and launch weeks run hot
    chunk_days = int(min(MAX_DAYS_PER_PART, max(1, TARGET_EVENTS_PER_PART // per_day)))
    blocks = max(1, math.ceil(per_day * chunk_days / TARGET_EVENTS_PER_PART))
    return chunk_days, blocks


def _clean(out: Path) -> None:
    """Remove landing files of a previous run (only contract files, nothing else)."""
    for name in L.FILE_TABLES:
        (out / f"{name}.parquet").unlink(missing_ok=True)
    events = out / L.EVENTS_DIR
    if events.is_dir():
        for part in events.glob("part-*.parquet"):
            part.unlink()


def generate(
    out: Path,
    *,
    users: int = DEFAULT_USERS,
    days: int = DEFAULT_DAYS,
    seed: int = 7,
    start: datetime.date = DEFAULT_START,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationSummary:
    """Generate the synthetic landing data into ``out``.

    Args:
        out: Output directory (created if missing). Landing files of a previous
            run there are replaced; other files are left alone.
        users: Number of users (the event volume scales linearly, see
            ``EVENTS_PER_USER_DAY``).
        days: Length of the window in days, starting at ``start``.
        seed: Seed; the same seed and arguments give the same data, ids included.
        start: First day (UTC) of the window.
        progress: Called as ``progress(done_days, total_days)`` after each chunk of days.

    Returns:
        Rows written per table and where.

    Raises:
        ValueError: If ``users`` or ``days`` is not positive.
    """
    if users < 1 or days < 1:
        raise ValueError("users and days must be positive")
    t0 = time.perf_counter()
    out = Path(out)
    (out / L.EVENTS_DIR).mkdir(parents=True, exist_ok=True)
    _clean(out)
    rng = np.random.Generator(np.random.PCG64(seed))
    tl = story_timeline(start, days)
    epoch_us = int(
        (datetime.datetime(start.year, start.month, start.day) - datetime.datetime(1970, 1, 1))
        // datetime.timedelta(microseconds=1)
    )

    accounts = _make_accounts(rng, users)
    pop = _make_population(rng, users, accounts, tl, epoch_us)
    versions: list[str] = []
    release_days: dict[int, np.ndarray] = {}
    release_codes: dict[int, np.ndarray] = {}
    bad_code = -1
    for plat in (IOS, ANDROID):
        rel = tl.releases[PLATFORMS[plat]]
        release_days[plat] = np.array([d for _, d in rel])
        release_codes[plat] = np.arange(len(versions), len(versions) + len(rel))
        for version, _ in rel:
            if (PLATFORMS[plat], version) == BAD_RELEASE:
                bad_code = len(versions)
            versions.append(version)
    w = _World(
        seed=seed,
        tl=tl,
        epoch_us=epoch_us,
        pop=pop,
        user_ids=L.seq_ids("usr_", users, max(6, len(str(users)))),
        account_ids=L.seq_ids("acc_", accounts.n, max(5, len(str(accounts.n)))),
        versions=L.strings(versions),
        release_days=release_days,
        release_codes=release_codes,
        bad_code=bad_code,
        salts={
            k: L.salt(seed, k)
            for k in ("event", "session", "error", "ticket", "feedback")
            + tuple("variant:" + spec.experiment_id for spec in EXPERIMENTS)
        },
        refund_rng=np.random.Generator(np.random.PCG64([seed, REFUND_STREAM])),
    )

    counts: dict[str, int] = {}
    for name, tbl in (
        ("releases", _releases_table(tl, epoch_us)),
        ("launches", _launches_table(tl, epoch_us)),
        ("experiments", _experiments_table(tl, epoch_us)),
        ("incidents", _incidents_table(rng, tl, epoch_us)),
    ):
        L.write_table(out / f"{name}.parquet", tbl)
        counts[name] = tbl.num_rows

    sinks = {
        name: L.TableSink(out / f"{name}.parquet", name)
        for name in ("errors", "support_tickets", "feedback", "experiment_assignments")
    }
    chunk_days, blocks = _plan_parts(users, days)
    bounds = np.linspace(0, users, blocks + 1).astype(int)
    part = 0
    events_rows = duplicates = 0
    carry: pa.Table | None = None  # duplicates that land in the next part file
    chunks = list(range(0, days, chunk_days))
    for ci, day0 in enumerate(chunks):
        ndays = min(chunk_days, days - day0)
        for b in range(blocks):
            blk, draws = _simulate_sessions(w, rng, day0, ndays, int(bounds[b]), int(bounds[b + 1]))
            events = _events_table(w, rng, blk, draws)
            del draws
            # Plant exact duplicate rows: most land in the same part file, some
            # in the next one (as a retried upload would).
            dup = np.nonzero(rng.random(events.num_rows) < DUPLICATE_EVENT_SHARE)[0]
            later = rng.random(len(dup)) < 0.4
            pieces = [events, events.take(pa.array(dup[~later]))]
            if carry is not None:
                pieces.append(carry)
            carry = events.take(pa.array(dup[later]))
            is_last = ci == len(chunks) - 1 and b == blocks - 1
            if is_last:
                pieces.append(carry)
                carry = None
            pieces.append(_refunds_table(w, events))
            part_tbl = pa.concat_tables(pieces)
            L.write_table(out / L.EVENTS_DIR / f"part-{part:05d}.parquet", part_tbl)
            part += 1
            events_rows += part_tbl.num_rows
            duplicates += len(dup)
            sinks["errors"].write(_errors_table(w, rng, blk))
            sinks["support_tickets"].write(_tickets_table(w, rng, blk))
            sinks["feedback"].write(_feedback_table(w, rng, blk))
            sinks["experiment_assignments"].write(_assignments_table(w, rng, blk))
            del events, part_tbl, pieces, blk
        if progress is not None:
            progress(day0 + ndays, days)

    for name, sink in sinks.items():
        sink.close()
        counts[name] = sink.rows
    counts["events"] = events_rows
    users_tbl = _users_table(pop, w.user_ids, w.account_ids)
    accounts_tbl = _accounts_table(rng, accounts, pop, w.account_ids, epoch_us, days)
    L.write_table(out / "users.parquet", users_tbl)
    L.write_table(out / "accounts.parquet", accounts_tbl)
    counts["users"], counts["accounts"] = users_tbl.num_rows, accounts_tbl.num_rows
    ordered = {name: counts[name] for name in L.SCHEMAS}
    return GenerationSummary(
        out=out,
        tables=ordered,
        seed=seed,
        users=users,
        days=days,
        start=start,
        event_parts=part,
        duplicate_events=duplicates,
        seconds=time.perf_counter() - t0,
    )


def main(argv: list[str] | None = None) -> int:
    """Command line entry: ``python -m seeds.generator --out DIR --users N --days D --seed S``."""
    parser = argparse.ArgumentParser(prog="python -m seeds.generator", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="output directory (default: the sample)")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=datetime.date.fromisoformat, default=DEFAULT_START)
    args = parser.parse_args(argv)

    def report(done: int, total: int) -> None:
        print(f"\r  day {done}/{total}", end="", file=sys.stderr, flush=True)

    summary = generate(args.out, users=args.users, days=args.days, seed=args.seed, start=args.start, progress=report)
    print(file=sys.stderr)
    print(
        f"wrote {summary.out} in {summary.seconds:.1f}s "
        f"({summary.event_parts} event parts, {summary.duplicate_events} duplicate event rows, "
        f"{summary.events_per_user_day:.2f} events per user-day)"
    )
    for name, rows in summary.tables.items():
        print(f"  {name:<24}{rows:>12,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
