"""Compile-time benchmark: MetricFlow against northstar on the same semantic manifest and queries.

What is measured (see README.md beside this file):

* import time of each engine, in a fresh interpreter;
* engine set-up from a semantic manifest (parse the JSON + build the engine);
* per-query compile time (SQL generation, no execution) over the parity query list
  (`mf_harness.parity_cases()`): MetricFlow `MetricFlowEngine.explain(request).sql_statement.sql`,
  northstar `engine.renderer.render(engine.planner.plan(query))`. Each engine caches plans, so every
  distinct query is timed once, after a warm-up on *other* queries; each repetition is a fresh
  subprocess (no cache survives), and a query's time is its median over repetitions;
* one wide query, 80 metrics x 10 dimensions, on a manifest with 80 generated metrics
  (`extra_metrics.py`, a temporary copy of the dbt project with one more YAML file, `dbt parse`d);
* DuckDB execution time of each side's SQL for a 7-day trailing distinct-users cumulative metric.

With `--execute-parity`, instead: DuckDB execution time of each side's SQL for every query the parity
test expects both engines to answer alike (`mf_harness.agreeing_cases()`), on a ~1M-event warehouse
by default, one table row per query.

Usage: .venv/bin/python bench/metricflow/compile_bench.py [--warehouse PATH] [--reps 5]
(without --warehouse the sample is built first with `northstar build`);
.venv/bin/python bench/metricflow/compile_bench.py --execute-parity [--warehouse PATH] [--runs 5]
(without --warehouse: bench/out/data-1m/northstar.duckdb, generated and built if missing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import extra_metrics  # noqa: E402
import mf_harness  # noqa: E402
from mf_harness import Case  # noqa: E402

# Warm-up queries: not in the timed list (different metrics x group-bys), so neither engine has
# seen a timed query before timing it.
WARMUP = [
    Case("w1", ("events",), ("event__platform",)),
    Case("w2", ("sessions", "active_users"), ("metric_time__year", "user__region")),
    Case("w3", ("nps",), ("feedback__feature_key",)),
    Case("w4", ("incidents",), ("incident__severity", "metric_time__quarter")),
    Case("w5", ("errors",), ("error__error_type",), where=("{{ Dimension('error__platform') }} = 'web'",)),
]
WIDE_WARMUP = [
    Case("ww1", ("w_event_count_all", "w_sessions_web"), ("metric_time__day",)),
    Case("ww2", ("w_revenue_usd_per_active_users_us",), ("user__country", "event__platform")),
]
WIDE = Case("wide-80x10", tuple(extra_metrics.wide_metric_names()), extra_metrics.WIDE_DIMENSIONS)

DATA_START, DATA_END = dt.date(2026, 1, 5), dt.date(2026, 4, 5)
CUMULATIVE = [
    Case("active_users_7d-by-day", ("x_active_users_7d",), ("metric_time__day",), start=DATA_START, end=DATA_END),
    Case(
        "active_users_7d-by-day-country",
        ("x_active_users_7d",),
        ("metric_time__day", "user__country"),
        start=DATA_START,
        end=DATA_END,
    ),
]


# -- one repetition, in a fresh interpreter ---------------------------------------------------


class _NoWarehouse:
    dialect = "duckdb"

    def query(self, *args, **kwargs):
        raise RuntimeError("compile only")

    def close(self) -> None:
        pass


def _metricflow_side():
    started = time.perf_counter()
    from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest  # noqa: F401
    from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer  # noqa: F401
    from metricflow_semantics.model.dbt_manifest_parser import parse_manifest_from_dbt_generated_manifest  # noqa: F401
    from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup  # noqa: F401

    imported = time.perf_counter() - started

    def engine(manifest: Path):
        return mf_harness.open_metricflow(manifest, None)

    def compile_sql(eng, case: Case) -> str:
        return eng.explain(mf_harness.mf_request(case)).sql_statement.sql

    return imported, engine, compile_sql


def _northstar_side():
    started = time.perf_counter()
    from metrics.engine import BuildInfo, MetricsEngine
    from metrics.query.request import MetricQuery  # noqa: F401
    from metrics.semantic.manifest import load_semantic_manifest

    imported = time.perf_counter() - started

    def engine(manifest: Path):
        return MetricsEngine(
            load_semantic_manifest(manifest), _NoWarehouse(), BuildInfo("bench", None, None, manifest.parent)
        )

    def compile_sql(eng, case: Case) -> str:
        return eng.renderer.render(eng.planner.plan(mf_harness.northstar_query(case))).sql

    return imported, engine, compile_sql


def worker(side: str, pack_manifest: Path, wide_manifest: Path) -> dict[str, Any]:
    imported, make_engine, compile_sql = (_metricflow_side if side == "metricflow" else _northstar_side)()
    out: dict[str, Any] = {"import_s": imported}

    # The first engine in a process also pays each library's lazy set-up; the second one does not.
    started = time.perf_counter()
    make_engine(pack_manifest)
    out["init_cold_ms"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    eng = make_engine(pack_manifest)
    out["init_ms"] = (time.perf_counter() - started) * 1000
    for case in WARMUP:
        compile_sql(eng, case)
    compile_ms: dict[str, float] = {}
    for case in mf_harness.parity_cases():
        started = time.perf_counter()
        compile_sql(eng, case)
        compile_ms[case.id] = (time.perf_counter() - started) * 1000
    out["compile_ms"] = compile_ms

    started = time.perf_counter()
    wide_engine = make_engine(wide_manifest)
    out["wide_init_ms"] = (time.perf_counter() - started) * 1000
    for case in WIDE_WARMUP:
        compile_sql(wide_engine, case)
    started = time.perf_counter()
    sql = compile_sql(wide_engine, WIDE)
    out["wide_compile_ms"] = (time.perf_counter() - started) * 1000
    out["wide_sql_chars"] = len(sql)
    return out


def run_worker(side: str, pack_manifest: Path, wide_manifest: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            side,
            "--pack-manifest",
            str(pack_manifest),
            "--wide-manifest",
            str(wide_manifest),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{side} worker failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- execution of the cumulative metric -------------------------------------------------------


def cumulative_execution(warehouse: Path, manifest: Path, runs: int) -> list[dict[str, Any]]:
    import duckdb

    from metrics.engine import MetricsEngine
    from metrics.errors import MetricsError

    northstar = MetricsEngine.open(warehouse, manifest_path=manifest)
    metricflow = mf_harness.open_metricflow(manifest, warehouse)
    con = duckdb.connect(os.path.realpath(warehouse), read_only=True)
    results = []
    for case in CUMULATIVE:
        entry: dict[str, Any] = {"id": case.id}
        mf_sql = metricflow.explain(mf_harness.mf_request(case)).sql_statement.sql
        try:
            rendered = northstar.renderer.render(northstar.planner.plan(mf_harness.northstar_query(case)))
            ns_sql, ns_params = rendered.sql, rendered.params
        except MetricsError as exc:
            ns_sql, ns_params = None, None
            entry["northstar_unsupported"] = str(exc)
        sides = {"metricflow": (mf_sql, None)}
        if ns_sql is not None:
            sides["northstar"] = (ns_sql, ns_params)
        answers = {}
        for side, (sql, params) in sides.items():  # also the warm-up run
            cursor = con.execute(sql, params)
            answers[side] = ([d[0] for d in cursor.description], cursor.fetchall())
        rows = {side: answer[1] for side, answer in answers.items()}
        times: dict[str, list[float]] = {side: [] for side in sides}
        for i in range(runs):
            for side in list(sides) if i % 2 == 0 else list(reversed(sides)):
                sql, params = sides[side]
                started = time.perf_counter()
                con.execute(sql, params).fetchall()
                times[side].append((time.perf_counter() - started) * 1000)
        entry["execute_ms"] = {side: statistics.median(t) for side, t in times.items()}
        entry["rows"] = {side: len(r) for side, r in rows.items()}
        if "northstar" in rows:
            entry["same_rows"] = _same_answer(*answers["metricflow"], *answers["northstar"])
        results.append(entry)
    con.close()
    northstar.close()
    return results


def wide_execution(warehouse: Path, manifest: Path) -> dict[str, Any]:
    """Run the wide query once on each side (a check that both compiled the same work)."""
    import duckdb

    from metrics.engine import MetricsEngine

    northstar = MetricsEngine.open(warehouse, manifest_path=manifest)
    metricflow = mf_harness.open_metricflow(manifest, warehouse)
    rendered = northstar.renderer.render(northstar.planner.plan(mf_harness.northstar_query(WIDE)))
    sides = {
        "metricflow": (metricflow.explain(mf_harness.mf_request(WIDE)).sql_statement.sql, None),
        "northstar": (rendered.sql, rendered.params),
    }
    con = duckdb.connect(os.path.realpath(warehouse), read_only=True)
    answers, execute_ms = {}, {}
    for side, (sql, params) in sides.items():
        started = time.perf_counter()
        cursor = con.execute(sql, params)
        answers[side] = ([d[0] for d in cursor.description], cursor.fetchall())
        execute_ms[side] = (time.perf_counter() - started) * 1000
    con.close()
    northstar.close()
    return {
        "id": WIDE.id,
        "execute_ms": execute_ms,
        "rows": {s: len(a[1]) for s, a in answers.items()},
        "same_rows": _same_answer(*answers["metricflow"], *answers["northstar"]),
    }


def _same_answer(columns_a: list[str], rows_a: list[tuple], columns_b: list[str], rows_b: list[tuple]) -> bool:
    """Same rows, columns matched by name, numbers to a relative 1e-9."""
    import math

    if sorted(columns_a) != sorted(columns_b) or len(rows_a) != len(rows_b):
        return False
    names = sorted(columns_a)

    def arranged(columns, rows):
        index = [columns.index(n) for n in names]
        out = [tuple(_plain(r[i]) for i in index) for r in rows]
        return sorted(out, key=lambda r: tuple((v is None, str(v)) for v in r))

    for a, b in zip(arranged(columns_a, rows_a), arranged(columns_b, rows_b)):
        for x, y in zip(a, b):
            if isinstance(x, (int, float)) and isinstance(y, (int, float)):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12):
                    return False
            elif x != y:
                return False
    return True


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date()
    if hasattr(value, "as_tuple"):  # Decimal
        return float(value)
    return value


# -- execution of every parity query --------------------------------------------------------

OUT = REPO / "bench" / "out"
WAREHOUSE_1M = OUT / "data-1m" / "northstar.duckdb"
LANDING_1M = OUT / "landing-1m"
LANDING_1M_SPEC = {"users": 22222, "days": 90, "seed": 7}  # ~1M events, as bench/run.py's "1m"
PARITY_RATIO = 0.95  # MetricFlow / northstar at or above this counts as parity (timer noise)


def warehouse_1m() -> Path:
    """bench/run.py's 1M-event warehouse; generated and built here when it is not there yet."""
    if WAREHOUSE_1M.exists():
        return WAREHOUSE_1M
    marker = LANDING_1M / ".generated.json"
    if not (marker.exists() and json.loads(marker.read_text()) == LANDING_1M_SPEC):
        print(f"generating ~1M events into {LANDING_1M} ...", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "northstar",
                "generate",
                "--out",
                str(LANDING_1M),
                *(f"--{k}={v}" for k, v in LANDING_1M_SPEC.items()),
            ],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        marker.write_text(json.dumps(LANDING_1M_SPEC))  # the marker bench/run.py reuses
    print(f"building {WAREHOUSE_1M} ...", file=sys.stderr)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "northstar",
            "build",
            "--landing",
            str(LANDING_1M),
            "--warehouse",
            str(WAREHOUSE_1M),
            "--no-docs",
        ],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return WAREHOUSE_1M


def parity_execution(warehouse: Path, runs: int) -> list[dict[str, Any]]:
    """Each agreeing parity query, run in DuckDB as each side compiled it, on one connection.

    northstar: `engine.compile(query)`, executed as `.sql` with `.params`; MetricFlow: the SQL (and bind
    parameters, if any) of `explain` for the same request. Per query: one warm-up run per side (whose
    answers are compared), then `runs` timed runs per side, alternating which side goes first; a
    run includes fetching every row into Python. The reported time is the median of the timed runs.
    """
    import duckdb

    from metrics.engine import MetricsEngine

    warehouse = Path(os.path.realpath(warehouse))
    manifest = warehouse.parent / "semantic_manifest.json"
    northstar = MetricsEngine.open(warehouse)
    metricflow = mf_harness.open_metricflow(manifest, None)  # explain only; DuckDB runs both
    con = duckdb.connect(str(warehouse), read_only=True)
    results = []
    for n, case in enumerate(mf_harness.agreeing_cases()):
        entry: dict[str, Any] = {"id": case.id, "tags": sorted(case.tags)}
        try:
            statement = metricflow.explain(mf_harness.mf_request(case, sorted_like_northstar=True)).sql_statement
            compiled = northstar.compile(mf_harness.northstar_query(case))
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            entry["error"] = f"compile: {type(exc).__name__}: {exc}"
            results.append(entry)
            continue
        sides = {
            "metricflow": (statement.sql, dict(statement.bind_parameter_set.param_dict) or None),
            "northstar": (compiled.sql, compiled.params or None),
        }
        order = ["metricflow", "northstar"] if n % 2 == 0 else ["northstar", "metricflow"]
        answers = {}
        for side in order:  # the warm-up
            cursor = con.execute(*sides[side])
            answers[side] = ([d[0] for d in cursor.description], cursor.fetchall())
        times: dict[str, list[float]] = {side: [] for side in sides}
        for i in range(runs):
            for side in order if i % 2 == 0 else order[::-1]:
                started = time.perf_counter()
                con.execute(*sides[side]).fetchall()
                times[side].append((time.perf_counter() - started) * 1000)
        entry["execute_ms"] = {side: statistics.median(t) for side, t in times.items()}
        entry["runs_ms"] = times
        entry["rows"] = {side: len(a[1]) for side, a in answers.items()}
        entry["same_rows"] = _same_answer(*answers["metricflow"], *answers["northstar"])
        entry["sql_chars"] = {side: len(sql) for side, (sql, _) in sides.items()}
        results.append(entry)
        print(
            f"  {case.id}: MetricFlow {entry['execute_ms']['metricflow']:.1f} ms, "
            f"northstar {entry['execute_ms']['northstar']:.1f} ms",
            file=sys.stderr,
        )
    con.close()
    northstar.close()
    return results


def parity_markdown(results: list[dict[str, Any]], runs: int) -> str:
    timed = [e for e in results if "execute_ms" in e]
    lines = [
        f"DuckDB execution, median of {runs} runs per side after one warm-up, sides alternating, "
        "rows fetched into Python.",
        "",
        "| query id | MetricFlow ms | northstar ms | MF/northstar | fastest run: MF / northstar ms | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    ratios, fastest = {}, {}
    for entry in results:
        if "execute_ms" not in entry:
            lines.append(f"| {entry['id']} | n/a | n/a | n/a | n/a | n/a |")
            continue
        mf, ns = entry["execute_ms"]["metricflow"], entry["execute_ms"]["northstar"]
        # The fastest run is each side's cost with the least interference from whatever else the
        # machine is doing: on a shared machine it separates a real difference from noise.
        mf_min, ns_min = min(entry["runs_ms"]["metricflow"]), min(entry["runs_ms"]["northstar"])
        ratios[entry["id"]], fastest[entry["id"]] = mf / ns, mf_min / ns_min
        lines.append(
            f"| {entry['id']} | {mf:.1f} | {ns:.1f} | {mf / ns:.2f} | {mf_min:.1f} / {ns_min:.1f} | "
            f"{mf_min / ns_min:.2f} |"
        )
    for label, values in (("median", ratios), ("fastest run", fastest)):
        if not values:
            continue
        at_least = sum(r >= PARITY_RATIO for r in values.values())
        geomean = math.exp(statistics.fmean(math.log(r) for r in values.values()))
        worst = min(values, key=values.get)
        lines += [
            "",
            f"By {label}: northstar at least as fast (MF/northstar >= {PARITY_RATIO}) on {at_least} of "
            f"{len(values)} queries; geometric mean MF/northstar {geomean:.2f}; worst {worst} at "
            f"{values[worst]:.2f}.",
        ]
    notes = [f"- {e['id']}: {e['error']}" for e in results if "error" in e]
    notes += [
        f"- {e['id']}: the answers differ ({e['rows']['metricflow']} vs {e['rows']['northstar']} rows)"
        for e in timed
        if not e["same_rows"]
    ]
    if timed and not notes:
        notes = [f"- all {len(timed)} queries: same rows on both sides."]
    return "\n".join(lines + [""] + notes)


def environment() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        **{pkg: version(pkg) for pkg in ("metricflow", "dbt-metricflow", "dbt-core", "duckdb", "sqlglot")},
    }


# -- driver ------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(reps: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for side, runs in reps.items():
        per_query = {qid: statistics.median(run["compile_ms"][qid] for run in runs) for qid in runs[0]["compile_ms"]}
        summary[side] = {
            "import_s": statistics.median(r["import_s"] for r in runs),
            "init_cold_ms": statistics.median(r["init_cold_ms"] for r in runs),
            "init_ms": statistics.median(r["init_ms"] for r in runs),
            "compile_p50_ms": _percentile(list(per_query.values()), 0.5),
            "compile_p90_ms": _percentile(list(per_query.values()), 0.9),
            "compile_max_ms": max(per_query.values()),
            "queries": len(per_query),
            "wide_init_ms": statistics.median(r["wide_init_ms"] for r in runs),
            "wide_compile_ms": statistics.median(r["wide_compile_ms"] for r in runs),
            "wide_sql_chars": statistics.median(r["wide_sql_chars"] for r in runs),
        }
    return summary


def markdown(summary: dict[str, dict[str, float]], cumulative: list[dict[str, Any]], reps: int) -> str:
    mf, ns = summary["metricflow"], summary["northstar"]
    n = int(ns["queries"])

    def row(label: str, a: float | None, b: float | None, fmt: str = "{:.2f}") -> str:
        ratio = f"{a / b:.1f}x" if a is not None and b else "n/a"
        return (
            f"| {label} | {fmt.format(a) if a is not None else 'n/a'} | "
            f"{fmt.format(b) if b is not None else 'n/a'} | {ratio} |"
        )

    lines = [
        f"Medians over {reps} fresh-process repetitions; compile = SQL generation only.",
        "",
        "| measure | MetricFlow | northstar | MetricFlow / northstar |",
        "| --- | ---: | ---: | ---: |",
        row("import (s, fresh interpreter)", mf["import_s"], ns["import_s"]),
        row(
            "engine set-up from the pack manifest, first in the process (ms)",
            mf["init_cold_ms"],
            ns["init_cold_ms"],
            "{:.1f}",
        ),
        row("engine set-up from the pack manifest, second (ms)", mf["init_ms"], ns["init_ms"], "{:.1f}"),
        row(f"compile p50 over {n} distinct queries (ms)", mf["compile_p50_ms"], ns["compile_p50_ms"], "{:.3f}"),
        row(f"compile p90 over {n} distinct queries (ms)", mf["compile_p90_ms"], ns["compile_p90_ms"], "{:.3f}"),
        row(f"compile max over {n} distinct queries (ms)", mf["compile_max_ms"], ns["compile_max_ms"], "{:.3f}"),
        row("engine set-up, manifest with 80 extra metrics (ms)", mf["wide_init_ms"], ns["wide_init_ms"], "{:.1f}"),
        row(
            "compile wide query, 80 metrics x 10 dimensions (ms)",
            mf["wide_compile_ms"],
            ns["wide_compile_ms"],
            "{:.1f}",
        ),
        row("wide query SQL size (characters)", mf["wide_sql_chars"], ns["wide_sql_chars"], "{:.0f}"),
    ]
    for entry in cumulative:
        ms = entry["execute_ms"]
        label = f"DuckDB execution, {entry['id']} (ms{', one run' if entry['id'] == WIDE.id else ''})"
        lines.append(row(label, ms.get("metricflow"), ms.get("northstar"), "{:.1f}"))
    notes = []
    for entry in cumulative:
        if "northstar_unsupported" in entry:
            notes.append(f"- {entry['id']}: northstar cannot compile it yet ({entry['northstar_unsupported']}).")
        else:
            notes.append(
                f"- {entry['id']}: {entry['rows']['metricflow']} rows each; "
                f"same rows: {'yes' if entry.get('same_rows') else 'NO'}."
            )
    return "\n".join(lines + [""] + notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, help="a built warehouse (default: build the sample)")
    parser.add_argument("--reps", type=int, default=5, help="fresh-process repetitions per engine")
    parser.add_argument(
        "--runs",
        type=int,
        help="timed DuckDB executions per query and side "
        "(default: 7 for the cumulative metric, 5 with --execute-parity)",
    )
    parser.add_argument("--workdir", type=Path, help="where to put the generated project (default: a temp dir)")
    parser.add_argument(
        "--execute-wide",
        action="store_true",
        help="also run the wide query once on each side and compare the answers (slow)",
    )
    parser.add_argument(
        "--execute-parity",
        action="store_true",
        help="only: run every agreeing parity query's SQL on each side in DuckDB and compare "
        "times (default warehouse: bench/out/data-1m, ~1M events, built if missing)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="raw numbers (default: bench/out/metricflow_compile.json, "
        "or metricflow_execute.json with --execute-parity)",
    )
    parser.add_argument("--worker", choices=("metricflow", "northstar"), help=argparse.SUPPRESS)
    parser.add_argument("--pack-manifest", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--wide-manifest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, args.pack_manifest, args.wide_manifest)))
        return
    if args.execute_parity:
        execute_parity(args)
        return
    args.runs = args.runs or 7
    args.out = args.out or OUT / "metricflow_compile.json"

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="northstar-mf-bench-"))
    warehouse = args.warehouse
    if warehouse is None:
        warehouse = workdir / "data" / "northstar.duckdb"
        print(f"building the sample warehouse into {warehouse} ...", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "northstar",
                "build",
                "--landing",
                str(REPO / "seeds" / "sample"),
                "--warehouse",
                str(warehouse),
                "--no-docs",
            ],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    pack_manifest = Path(os.path.realpath(warehouse)).parent / "semantic_manifest.json"
    print("writing and parsing the project with 80 extra metrics ...", file=sys.stderr)
    wide_manifest = extra_metrics.extended_manifest(workdir)

    reps: dict[str, list[dict[str, Any]]] = {"metricflow": [], "northstar": []}
    for i in range(args.reps):
        for side in ("metricflow", "northstar") if i % 2 == 0 else ("northstar", "metricflow"):
            print(f"repetition {i + 1}/{args.reps}: {side}", file=sys.stderr)
            reps[side].append(run_worker(side, pack_manifest, wide_manifest))
    summary = summarize(reps)
    print("executing the cumulative metric on both sides ...", file=sys.stderr)
    cumulative = cumulative_execution(warehouse, wide_manifest, args.runs)
    if args.execute_wide:
        print("executing the wide query on both sides ...", file=sys.stderr)
        cumulative.append(wide_execution(warehouse, wide_manifest))

    env = environment()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"environment": env, "summary": summary, "cumulative": cumulative, "repetitions": reps},
            indent=2,
            default=str,
        )
    )
    print(", ".join(f"{k} {v}" for k, v in env.items()))
    print()
    print(markdown(summary, cumulative, args.reps))
    print(f"\n(raw numbers: {args.out})")


def execute_parity(args: argparse.Namespace) -> None:
    runs = args.runs or 5
    warehouse = args.warehouse or warehouse_1m()
    out = args.out or OUT / "metricflow_execute.json"
    print(f"executing every parity query on both sides over {warehouse} ...", file=sys.stderr)
    started = time.perf_counter()
    results = parity_execution(warehouse, runs)
    env = {
        **environment(),
        "warehouse": str(warehouse),
        "runs": runs,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": env, "queries": results}, indent=2, default=str))
    print(", ".join(f"{k} {v}" for k, v in env.items()))
    print()
    print(parity_markdown(results, runs))
    print(f"\n(raw numbers: {out})")


if __name__ == "__main__":
    main()
