"""Experiment readout benchmark: one A/B test with N assigned users (10 million by default).

1. Landing data of the contract with N users, all assigned to one ended experiment, and their
   events (sessions, purchases with a planted lift for treatment) and crashes, written by
   DuckDB SQL straight to Parquet, deterministic per seed (pseudo-random numbers are hashes of
   (row, stream, seed), so no Python loop touches a row). `northstar build` turns it into a
   warehouse exactly as it would any customer's landing files.
2. Readout latency over HTTP (`northstar serve`), per metric and for all four, with and
   without CUPED: cold (the first request of its kind: the warehouse computes the sufficient
   statistics), with other analysis options (`alpha`; a new readout from the build's cached
   statistics) and cached (the same request again; the build's readout cache). The baseline,
   measured in the same run between the HTTP requests: raw DuckDB on its own connection
   running the very statistics statement the engine generates (a sum over the per-user values
   the build materialized), the direct statement it would run without them (every assignment
   joined to its user's events), and the naive alternative of loading one row per user into
   Python (pyarrow) and summing in numpy.

Usage:
    python bench/experiments.py                    # 10M users
    python bench/experiments.py --users 1000000 --repeat 5

Landing data and warehouses are kept under bench/out/ (gitignored) and reused when present.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
from serving import served  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
EXPERIMENT = "exp_bench_checkout"
START = dt.datetime(2026, 3, 2)
ENROLMENT_DAYS = 14
RUN_DAYS = 28
PRE_DAYS = 14
BASE_PURCHASE_P = 0.08
PURCHASE_LIFT = 1.10  # per-session purchase probability of treatment users after assignment
CRASH_P = 0.02
ACCOUNTS_PER_USER = 0.01
METRICS = ("conversion", "revenue_per_user", "sessions_per_user", "crashed")


# -- landing data ------------------------------------------------------------------------------


def _landing_sql(users: int, seed: int, out: Path) -> list[str]:
    """The statements that write every contract table into `out`.

    `u(i, stream)` is a uniform draw in [0, 1) from a 64-bit hash of (row, stream, seed): the
    same seed gives the same files whatever the thread count or order.
    """
    accounts = max(1, int(users * ACCOUNTS_PER_USER))
    start = START.isoformat(sep=" ")
    width = len(str(users))
    stmts = [
        f"create or replace macro u(i, stream) as (hash(i, stream, {int(seed)}) % 4294967296)::double / 4294967296.0",
        f"create or replace macro uid(i) as 'usr_' || lpad(i::varchar, {width}, '0')",
        # users: id, account, country, platform, assignment time and arm, sessions
        f"""create or replace table bench_users as
            select i,
                   uid(i) as user_id,
                   'acc_' || lpad((i % {accounts})::varchar, 7, '0') as account_id,
                   timestamp '{start}' - interval 60 day + to_microseconds((u(i, 1) * 50 * 86400e6)::bigint) as signup_at,
                   ['US', 'DE', 'GB', 'FR', 'IN', 'BR', 'JP', NULL][1 + (u(i, 2) * 8)::int % 8] as country,
                   ['web', 'ios', 'android'][1 + (u(i, 3) * 3)::int % 3] as platform,
                   timestamp '{start}' + to_microseconds((u(i, 4) * {ENROLMENT_DAYS} * 86400e6)::bigint) as assigned_at,
                   case when u(i, 5) < 0.5 then 'control' else 'treatment' end as variant,
                   1 + (u(i, 6) * 5)::int % 5 as sessions,
                   least(0.5, {BASE_PURCHASE_P} * exp(u(i, 7) * 2 - 1)) as purchase_p
            from range({users}) t(i)""",
        # each session lands uniformly between PRE_DAYS before assignment and the end
        f"""create or replace table bench_sessions as
            select b.i, b.user_id, b.platform, b.variant, b.assigned_at, s.k,
                   b.user_id || '_s' || s.k as session_id,
                   b.assigned_at - interval {PRE_DAYS} day
                     + to_microseconds((u(b.i * 8 + s.k, 10)
                         * epoch_us(timestamp '{start}' + interval {RUN_DAYS} day - interval 1 hour
                                    - (b.assigned_at - interval {PRE_DAYS} day)))::bigint) as started_at,
                   b.purchase_p
            from bench_users b, unnest(range(b.sessions)) s(k)""",
    ]
    lift = f"case when variant = 'treatment' and started_at >= assigned_at then {PURCHASE_LIFT} else 1 end"
    copy = "(format parquet, compression zstd, row_group_size 1000000)"
    stmts += [
        f"copy (select 'acc_' || lpad(i::varchar, 7, '0') as account_id, 'Account ' || i as account_name, "
        f"['free', 'pro', 'enterprise'][1 + i % 3] as plan, NULL::varchar as industry, "
        f"['amer', 'emea', 'apac'][1 + i % 3] as region, timestamp '{start}' - interval 400 day as created_at "
        f"from range({accounts}) t(i)) to '{out}/accounts.parquet' {copy}",
        f"copy (select user_id, account_id, signup_at, country, false as is_internal from bench_users order by i) "
        f"to '{out}/users.parquet' {copy}",
        f"copy (select '{EXPERIMENT}' as experiment_id, 'Checkout (benchmark)' as experiment_name, "
        f"'checkout' as feature_key, NULL::varchar as hypothesis, 'control' as control_variant, "
        f"timestamp '{start}' as started_at, timestamp '{start}' + interval {RUN_DAYS} day as ended_at) "
        f"to '{out}/experiments.parquet' {copy}",
        f"copy (select '{EXPERIMENT}' as experiment_id, user_id, variant, assigned_at from bench_users order by i) "
        f"to '{out}/experiment_assignments.parquet' {copy}",
        # events: a session_start per session, a purchase (with revenue) in some of them
        f"""copy (
              select user_id || '_s' || k || '_0' as event_id, user_id, session_id, 'session_start' as event_name,
                     started_at as event_ts, platform, NULL::varchar as app_version, NULL::varchar as feature_key,
                     NULL::decimal(18, 2) as revenue_usd
              from bench_sessions
              union all
              select user_id || '_s' || k || '_1', user_id, session_id, 'purchase',
                     started_at + interval 3 minute, platform, NULL, 'checkout',
                     round(5 + u(i * 8 + k, 12) * 60, 2)::decimal(18, 2)
              from bench_sessions
              where u(i * 8 + k, 11) < purchase_p * ({lift})
            ) to '{out}/events' (format parquet, compression zstd, per_thread_output true,
                                 row_group_size 1000000, overwrite true)""",
        f"""copy (select 'err_' || user_id || '_s' || k as error_id, user_id, session_id,
                         started_at + interval 1 minute as occurred_at, platform, NULL::varchar as app_version,
                         'crash' as severity, 'ANR' as error_type
                  from bench_sessions where u(i * 8 + k, 13) < {CRASH_P}) to '{out}/errors.parquet' {copy}""",
        f"copy (select 'web' as platform, '1.0.0' as app_version, timestamp '{start}' - interval 90 day as released_at) "
        f"to '{out}/releases.parquet' {copy}",
        f"copy (select 'lch_001' as launch_id, 'checkout' as feature_key, 'Checkout' as launch_name, "
        f"'major' as tier, 'Payments' as owner_team, timestamp '{start}' as launched_at) "
        f"to '{out}/launches.parquet' {copy}",
        f"copy (select NULL::varchar as incident_id, NULL::varchar as severity, NULL::timestamp as opened_at, "
        f"NULL::timestamp as resolved_at, NULL::varchar as feature_key, NULL::varchar as launch_id limit 0) "
        f"to '{out}/incidents.parquet' {copy}",
        f"copy (select NULL::varchar as ticket_id, NULL::varchar as account_id, NULL::varchar as user_id, "
        f"NULL::timestamp as created_at, NULL::timestamp as resolved_at, NULL::varchar as category, "
        f"NULL::varchar as priority, NULL::varchar as feature_key limit 0) to '{out}/support_tickets.parquet' {copy}",
        f"copy (select NULL::varchar as feedback_id, NULL::varchar as user_id, NULL::timestamp as submitted_at, "
        f"NULL::varchar as channel, NULL::integer as nps_score, NULL::integer as csat_score, "
        f"NULL::varchar as comment, NULL::varchar as feature_key limit 0) to '{out}/feedback.parquet' {copy}",
    ]
    return stmts


def make_landing(users: int, seed: int) -> Path:
    """Write (or reuse) the landing files for `users` assigned users."""
    out = OUT / f"exp-landing-{users}-{seed}"
    marker = out / ".generated.json"
    wanted = {"users": users, "seed": seed, "version": 1}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.perf_counter()
    con = duckdb.connect(str(out / "scratch.duckdb"))
    try:
        con.execute("set preserve_insertion_order = false")
        con.execute("set enable_progress_bar = false")
        for sql in _landing_sql(users, seed, out):
            con.execute(sql)
    finally:
        con.close()
    (out / "scratch.duckdb").unlink()
    marker.write_text(json.dumps(wanted))
    print(f"  landing data for {users:,} users in {time.perf_counter() - started:.1f}s", flush=True)
    return out


def build(landing: Path, users: int, seed: int) -> tuple[Path, float | None]:
    data = OUT / f"exp-data-{users}-{seed}"
    warehouse = data / "northstar.duckdb"
    marker = data / ".landing.json"
    if warehouse.exists() and marker.exists() and json.loads(marker.read_text()) == {"landing": str(landing)}:
        return warehouse, None
    shutil.rmtree(data, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "northstar", "build", "--landing", str(landing), "--warehouse", str(warehouse)],
        cwd=REPO,
        check=True,
    )
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"landing": str(landing)}))
    return warehouse, seconds


# -- measurements ------------------------------------------------------------------------------


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


#: Sliced readouts measured cold after the cases (the readout route's `group_by`): the users
#: model's own attributes are columns of the per-user table; the account's industry (null in
#: this data) is joined to it from the users model.
SLICES = ("platform", "country", "plan", "platform,country", "industry")

CASES = [
    ("conversion", ("conversion",), False),
    ("conversion", ("conversion",), True),
    ("revenue_per_user", ("revenue_per_user",), True),
    ("sessions_per_user", ("sessions_per_user",), True),
    ("crashed", ("crashed",), True),
    ("all four", METRICS, False),
    ("all four", METRICS, True),
]


def statements(warehouse: Path) -> list[tuple[str, dict, str, dict]]:
    """Per case, the statistics statement the engine runs (over the build's per-user table
    when it has one) and the direct statement (assignments joined to events), compiled in
    process; the catalog read this needs is not timed."""
    from metrics.engine import MetricsEngine

    engine = MetricsEngine.open(warehouse)
    try:
        experiments = engine.experiments
        experiment = experiments.experiment(EXPERIMENT)
        out = []
        for _, names, cuped in CASES:
            metrics = [experiments.metric(n) for n in names]
            pre_days = PRE_DAYS if cuped else None
            direct = experiments.statistics_sql(experiment, metrics, pre_days=pre_days)
            plan = experiments.plan(metrics, cuped=cuped)
            chosen = experiments._statistics_from_table(experiment, plan, pre_days, ()) or direct
            out.append((chosen.sql, chosen.params, direct.sql, direct.params))
        return out
    finally:
        engine.close()


NAIVE_PER_USER = """
select a.variant, coalesce(x.converted, 0) as converted
from marts.fct_experiment_assignments a
left join (
    select e.user_id, max(case when e.revenue_usd > 0 then 1 else 0 end) as converted
    from marts.fct_events e
    join marts.fct_experiment_assignments a2 on a2.user_id = e.user_id and a2.experiment_id = $experiment
    join marts.dim_experiments d on d.experiment_id = a2.experiment_id
    where e.event_ts >= a2.assigned_at and e.event_ts < d.ended_at
    group by e.user_id) x on x.user_id = a.user_id
where a.experiment_id = $experiment
"""


def naive_conversion(con: duckdb.DuckDBPyConnection) -> None:
    """The naive alternative: every user's conversion into Python (Arrow), the sums in numpy."""
    import numpy as np

    table = con.sql(NAIVE_PER_USER, params={"experiment": EXPERIMENT}).to_arrow_table()
    variant = table.column("variant").to_numpy(zero_copy_only=False)
    x = table.column("converted").to_numpy().astype(np.float64)
    for arm in ("control", "treatment"):
        v = x[variant == arm]
        (len(v), v.sum(), (v * v).sum())


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system, all threads) of a process so far: this one, or `pid` (Linux).
    On a machine shared with other work, wall time depends on the load; CPU time much less."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(warehouse: Path, repeat: int) -> tuple[list[dict], float, float, dict]:
    """Over HTTP, per case: the cold readout (its statistics computed by the warehouse), then
    `repeat` readouts with other analysis options (new readouts, the build's statistics
    cache answers the statement) and `repeat` identical ones (the readout cache answers).
    Between the HTTP cold runs, raw DuckDB runs the same statement on its own connection, so
    both see the same machine."""
    sql = statements(warehouse)
    # a cold readout at 10M on a busy machine can outlast the default timeout
    with served(warehouse, env={"NORTHSTAR_QUERY_TIMEOUT_S": "1800"}, ready_seconds=300) as server:
        return _measure_served(server, warehouse, sql, repeat)


def _measure_served(server, warehouse: Path, sql: list, repeat: int) -> tuple[list[dict], float, float, dict]:
    raw = duckdb.connect(str(warehouse), read_only=True)
    try:
        with httpx.Client(base_url=server.base_url, timeout=900) as client:
            url = f"/v1/experiments/{EXPERIMENT}/readout"
            # the first request also reads the build's experiment catalog (once per build)
            first_s = timed(lambda: client.get("/v1/experiments").raise_for_status())
            rows = []
            for (label, names, cuped), (text, params, direct_text, direct_params) in zip(CASES, sql):
                base = {"metrics": ",".join(names), "cuped": str(cuped).lower()}
                response = None

                def cold() -> None:
                    nonlocal response
                    response = client.get(url, params=base)

                before = cpu_seconds(server.process.pid)
                cold_s = timed(cold)
                cold_cpu = cpu_seconds(server.process.pid) - before
                assert response.status_code == 200 and response.json()["cached"] is False, response.text
                before = cpu_seconds()
                raw_s = timed(lambda: raw.execute(text, params).fetchall())
                raw_cpu = cpu_seconds() - before
                before = cpu_seconds()
                direct_s = timed(lambda: raw.execute(direct_text, direct_params).fetchall())
                direct_cpu = cpu_seconds() - before
                options, cached = [], []
                for r in range(repeat):
                    other = {**base, "alpha": 0.05 - (r + 1) * 1e-4}
                    options.append(timed(lambda: client.get(url, params=other).raise_for_status()))
                for _ in range(repeat):
                    cached.append(timed(lambda: client.get(url, params=base).raise_for_status()))
                assert client.get(url, params=base).json()["cached"] is True
                rows.append(
                    {
                        "metrics": label,
                        "cuped": cuped,
                        "cold_ms": cold_s * 1000,
                        "raw_ms": raw_s * 1000,
                        "cold_cpu": cold_cpu,
                        "raw_cpu": raw_cpu,
                        "load": os.getloadavg()[0],
                        "direct_ms": direct_s * 1000,
                        "direct_cpu": direct_cpu,
                        "options_ms": p50(options),
                        "cached_ms": p50(cached),
                    }
                )
                print(
                    f"  {label}, CUPED {cuped}: cold {cold_s:.2f}s ({cold_cpu:.1f} CPU s), "
                    f"raw DuckDB {raw_s:.2f}s ({raw_cpu:.1f} CPU s), "
                    f"direct statement {direct_s:.2f}s ({direct_cpu:.1f} CPU s)",
                    flush=True,
                )
            # Sliced readouts, each cold (its own statistics by slice, from the per-user
            # table's slice columns).
            for slices in SLICES:
                params = {"metrics": ",".join(METRICS), "cuped": "true", "group_by": slices}
                response = None

                def sliced() -> None:
                    nonlocal response
                    response = client.get(url, params=params)

                seconds = timed(sliced)
                if response.status_code != 200:  # reported, not fatal: the table says what failed
                    outcome = f"{response.status_code} {response.json()['error'].get('reason') or response.json()['error']['code']}"
                else:
                    assert response.json()["cached"] is False, response.text
                    outcome = "200"
                rows.append(
                    {"sliced": slices, "cold_ms": seconds * 1000, "load": os.getloadavg()[0], "outcome": outcome}
                )
                print(f"  all four by {slices}, CUPED: cold {seconds:.2f}s ({outcome})", flush=True)
            summary = client.get(url, params={"metrics": ",".join(METRICS)}).json()
        before = cpu_seconds()
        naive_s = timed(lambda: naive_conversion(raw))
        return rows, first_s * 1000, (naive_s * 1000, cpu_seconds() - before), summary
    finally:
        raw.close()


def explain_analyze(warehouse: Path, sql: str, params: dict) -> str:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return "\n".join(r[1] for r in con.execute("explain analyze " + sql, params).fetchall())
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5, help="readouts per case with other options, and cached")
    parser.add_argument("--explain", action="store_true", help="print DuckDB's EXPLAIN ANALYZE of the readout SQL")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    OUT.mkdir(parents=True, exist_ok=True)

    print(f"[{args.users:,} assigned users, seed {args.seed}]", flush=True)
    landing = make_landing(args.users, args.seed)
    warehouse, build_seconds = build(landing, args.users, args.seed)
    if build_seconds is not None:
        print(f"  northstar build {build_seconds:.1f}s", flush=True)
    con = duckdb.connect(str(warehouse), read_only=True)
    assignments, events = (
        con.execute(f"select count(*) from marts.{t}").fetchall()[0][0]
        for t in ("fct_experiment_assignments", "fct_events")
    )
    con.close()

    load_before = os.getloadavg()[0]
    rows, first_ms, naive_ms, summary = measure(warehouse, args.repeat)
    load_after = os.getloadavg()[0]
    if args.explain:
        for text, params in statements(warehouse)[-1:]:
            print(explain_analyze(warehouse, text, params))

    print(f"\n## experiment readout over HTTP, {assignments:,} assignments, {events:,} events (ms)\n")
    print(
        "| metrics | CUPED | cold | cold, server CPU s | raw DuckDB, same SQL | raw, CPU s | cold / raw "
        "| without the per-user table (direct statement) | its CPU s | new options, p50 | cached, p50 | load |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sliced = [r for r in rows if "sliced" in r]
    rows = [r for r in rows if "sliced" not in r]
    for r in rows:
        print(
            f"| {r['metrics']} | {'yes' if r['cuped'] else 'no'} | {r['cold_ms']:.0f} | {r['cold_cpu']:.1f} | "
            f"{r['raw_ms']:.0f} | {r['raw_cpu']:.1f} | {r['cold_ms'] / r['raw_ms']:.2f} | "
            f"{r['direct_ms']:.0f} | {r['direct_cpu']:.1f} | "
            f"{r['options_ms']:.1f} | {r['cached_ms']:.1f} | {r['load']:.1f} |"
        )
    print("\n| sliced readout (all four, CUPED) by | cold ms | answer | load |\n|---|---:|---|---:|")
    for r in sliced:
        print(f"| {r['sliced']} | {r['cold_ms']:.0f} | {r['outcome']} | {r['load']:.1f} |")
    conversion = next(r for r in rows if r["metrics"] == "conversion" and not r["cuped"])
    naive_wall, naive_cpu = naive_ms
    print(f"\nfirst request after start (reads the build's experiment catalog): {first_ms:.0f} ms")
    print(
        f"naive per-user load (conversion; pyarrow + numpy): {naive_wall:.0f} ms, {naive_cpu:.1f} CPU s "
        f"({naive_cpu / conversion['direct_cpu']:.1f}x the CPU of the direct statement)"
    )
    row = next(r for r in summary["results"] if r["metric"] == "conversion")
    print(f"conversion: {row['verdict']}")
    print(
        f"\nmachine: {os.cpu_count()} cores shared with other work (1-min load average {load_before:.1f} before, "
        f"{load_after:.1f} after), python {sys.version.split()[0]}, duckdb {duckdb.__version__}"
    )


if __name__ == "__main__":
    main()
