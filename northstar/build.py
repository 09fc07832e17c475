"""Build a warehouse from landing files with the real `dbt build`, and publish it atomically.

Every build goes into a new directory `<data>/builds/<build_id>/` (warehouse file, dbt
artifacts, docs site, `build.json`). Only when every model and every `error`-severity test
passed is the served
warehouse path re-pointed at it (an atomic symlink swap), so a failed or killed build never
touches what is being served, and a running server switches over on its next request.
DuckDB locks a file while dbt writes it; building into a fresh file is what lets a server
keep answering from the previous one meanwhile.

Tests of `warn` severity (expectations the landing contract does not enforce: plausible
ranges, event order, timestamps in the future) do not stop a build: each is recorded as a
`BuildWarning` in `build.json` and the build result, and served with every answer that reads
its model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from metrics.dry_run import BUILD_INFO_KEY as UNSERVABLE_KEY
from metrics.dry_run import Unservable
from metrics.engine import BuildWarning
from northstar import metric_values
from northstar.dbt_run import Dbt, Progress, checked_target, read_json, write_profile
from northstar.errors import BuildFailed
from northstar.landing import check_contract

# DEFAULT_SPARK_MASTER and WAREHOUSE_FILE re-exported: callers import them from here.
from northstar.targets import DEFAULT_SPARK_MASTER as DEFAULT_SPARK_MASTER
from northstar.targets import READOUTS_TARGET, NewBuild, WarehouseTarget, target_type
from northstar.targets import WAREHOUSE_FILE as WAREHOUSE_FILE

BUILD_INFO_FILE = "build.json"
LOCK_FILE = ".building"


@dataclass(frozen=True)
class BuildResult:
    build_id: str
    directory: Path
    warehouse: Path
    seconds: float
    nodes: int
    warnings: tuple[BuildWarning, ...] = ()
    unservable: tuple = ()  # metrics the dry run found unservable (metrics.dry_run.Unservable)
    dry_run_seconds: float | None = None


def new_build_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def build(
    landing: Path,
    warehouse: Path,
    dbt_project: Path,
    *,
    builds_dir: Path | None = None,
    docs: bool = True,
    keep: int = 3,
    progress: Progress | None = None,
    warehouse_type: str = "duckdb",
    postgres_dsn: str | None = None,
    spark_master: str | None = None,
) -> BuildResult:
    """Check the landing files, run `dbt build` (+ `dbt docs generate`) into a new build
    directory, and publish it at `warehouse` only if everything passed.

    With `warehouse_type="postgres"` the landing files are first loaded into the PostgreSQL
    database of `postgres_dsn` and dbt builds there, into schemas of this build (see
    `northstar.postgres`); `warehouse` then points at the build's `warehouse.postgres`.
    With `warehouse_type="spark"` dbt-spark builds in a Spark session on `spark_master`
    (default local[2]) into Parquet under the build directory (see `northstar.spark`), and
    `warehouse` points at the build's `warehouse.spark`. What differs between the three is
    the build's `WarehouseTarget` (see `northstar.targets`).

    Raises:
        LandingContractViolation: a landing file breaks the contract (nothing was built).
        BuildFailed: a model or test failed (the served warehouse is unchanged).
    """
    started = time.perf_counter()
    new_target = target_type(warehouse_type, postgres_dsn=postgres_dsn, spark_master=spark_master)
    landing = Path(landing).resolve()
    warehouse = Path(warehouse).absolute()
    dbt_project = Path(dbt_project).resolve()
    project = _read_project(dbt_project)
    # Projects that read the landing contract (ours: a `landing` var) get the files checked
    # first and located for them; any other dbt project is built as it is.
    reads_landing = "landing" in (project.get("vars") or {})
    tables = check_contract(landing) if reads_landing else None
    builds_dir = builds_dir or warehouse.parent / "builds"
    builds_dir.mkdir(parents=True, exist_ok=True)
    build_id = new_build_id()
    directory = builds_dir / build_id
    directory.mkdir()
    # Held until this function returns (the file closes with it) or the process dies: a
    # directory whose lock nobody holds was left by a killed build, and `prune` deletes it.
    lock = open(directory / LOCK_FILE, "w")  # noqa: SIM115
    fcntl.flock(lock, fcntl.LOCK_EX)
    _reuse_parse_cache(warehouse, directory)
    target = new_target(NewBuild(directory, build_id, builds_dir))

    env = _dbt_env()
    profile_name = project.get("profile") or "default"
    profile, secrets_env = target.dbt_target(dbt_project, profile_name)
    env.update(secrets_env)
    profiles_dir = write_profile(directory, profile_name, profile)
    dbt = Dbt(directory, dbt_project, profiles_dir, env, progress, vars=target.dbt_vars())
    if tables is not None:
        dbt.vars["landing"] = {name: t.reader_sql() for name, t in tables.items()}
    # Projects that take engine-computed tables (ours: a `metric_values_schema` var) get them
    # written from the semantic layer between two dbt phases, on every warehouse: into the
    # DuckDB file, the build's own PostgreSQL schema, or by the second Spark process.
    engine_tables = metric_values.VAR in (project.get("vars") or {})
    if engine_tables:
        dbt.vars[metric_values.VAR] = target.engine_tables_schema()
    try:
        target.load_landing(tables)
        built = target.build_models(dbt, engine_tables=engine_tables, docs=docs)
    except BaseException:
        _discard(target)
        raise

    run_results = read_json(directory / "run_results.json") or {}
    readout_results = read_json(directory / READOUTS_TARGET / "run_results.json") or {}
    run_results.setdefault("results", []).extend(readout_results.get("results", []))
    manifest = read_json(directory / "manifest.json") or {}
    statuses = [r.get("status") for r in run_results.get("results", [])]
    model_tests = _tests_per_model(run_results, manifest)
    warnings = _warnings(directory, run_results, manifest, target)
    info = {
        "build_id": build_id,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "landing": str(landing),
        "dbt_project": str(dbt_project),
        "seconds": round(time.perf_counter() - started, 2),
        "nodes": len(statuses),
        # Exposures report "no-op"; a warn-severity test that found rows reports "warn" and is
        # listed under "warnings"; anything else but success/pass means a node did not pass.
        "tests_passed": all(s in ("success", "pass", "no-op", "warn") for s in statuses),
        "model_tests": model_tests,
        "warnings": [dataclasses.asdict(w) for w in warnings],
        **target.build_info(),
    }
    if built.metric_values is not None:
        info["metric_values_daily"] = built.metric_values
    # The target's last tables (DuckDB: the rollups) and its record of what the engine wrote.
    try:
        info.update(target.finish(built))
    except BuildFailed as exc:
        _discard(target)
        raise BuildFailed(exc.message, build_id=build_id) from exc
    info["experiment_readouts"] = built.readouts
    # Spark builds are checked by the server that opens them (a Spark session of its own).
    report = target.dry_run()
    if report is not None:
        info[UNSERVABLE_KEY] = [u.to_json() for u in report.unservable]
        info["dry_run"] = {"statements": report.statements, "seconds": round(report.seconds, 3)}
    # Written last: a directory without build.json is a build that did not finish.
    (directory / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2))
    publish(target.served_file(), warehouse)
    target.published()
    prune(builds_dir, keep=keep, current=directory)
    target.prune()
    return BuildResult(
        build_id,
        directory,
        warehouse,
        info["seconds"],
        len(statuses),
        tuple(warnings),
        tuple(Unservable.from_json(u) for u in info.get(UNSERVABLE_KEY) or ()),
        (info.get("dry_run") or {}).get("seconds"),
    )


def _discard(target: WarehouseTarget) -> None:
    """A failed build: its warehouse data deleted, its directory (with the logs, for
    diagnosis) moved out of the way of finished builds."""
    target.discard()
    _retire_failed(target.build.directory)


def _tests_per_model(run_results: dict, manifest: dict) -> dict[str, dict[str, int]]:
    """For each model, how many data and unit tests ran on it, how many did not pass and
    how many passed with a warning (a warn-severity test that found rows)."""
    nodes = {**manifest.get("nodes", {}), **manifest.get("unit_tests", {})}
    out: dict[str, dict[str, int]] = {}
    for result in run_results.get("results", []):
        node = nodes.get(result.get("unique_id"), {})
        if node.get("resource_type") not in ("test", "unit_test"):
            continue
        targets = [node["attached_node"]] if node.get("attached_node") else node.get("depends_on", {}).get("nodes", [])
        for target in targets:
            if not target.startswith("model."):
                continue
            counts = out.setdefault(target.split(".")[-1], {"tests": 0, "failed": 0, "warned": 0})
            counts["tests"] += 1
            counts["failed"] += result.get("status") not in ("pass", "success", "warn")
            counts["warned"] += result.get("status") == "warn"
    return out


def _warnings(directory: Path, run_results: dict, manifest: dict, target: WarehouseTarget) -> list[BuildWarning]:
    """Every warn-severity test that found rows, with its model, column, count and samples."""
    nodes = manifest.get("nodes", {})
    out = []
    for result in run_results.get("results", []):
        if result.get("status") != "warn":
            continue
        node = nodes.get(result.get("unique_id"), {})
        table, column = checked_target(node)
        columns, rows = target.failing_rows(directory, result.get("compiled_code") or node.get("compiled_code"))
        out.append(
            BuildWarning(
                test=node.get("name") or result.get("unique_id", "?"),
                test_type=(node.get("test_metadata") or {}).get("name") or node.get("name") or "?",
                model=table,
                column=column,
                failing_rows=int(result.get("failures") or 0),
                sample_rows=[{c: _plain(v) for c, v in zip(columns, row)} for row in rows],
                message=((result.get("message") or "").strip().splitlines() or [""])[0],
            )
        )
    return out


def _plain(value):
    """A sample value as JSON can hold it (timestamps and decimals as text)."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def publish(built_file: Path, warehouse: Path) -> None:
    """Atomically point `warehouse` (a symlink) at a finished build's file."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    temporary = warehouse.with_name(f".{warehouse.name}.{secrets.token_hex(4)}")
    os.symlink(os.path.relpath(built_file, warehouse.parent), temporary)
    os.replace(temporary, warehouse)


def prune(builds_dir: Path, *, keep: int, current: Path) -> None:
    """Delete all but the newest `keep` builds (never the current one). A server still
    reading a deleted file keeps its open handle until it switches over."""
    finished = sorted(
        (d for d in builds_dir.iterdir() if d.is_dir() and (d / BUILD_INFO_FILE).exists()),
        key=lambda d: d.name,
        reverse=True,
    )
    for old in finished[keep:]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)
    failed = sorted(
        (d for d in builds_dir.iterdir() if d.is_dir() and d.name.startswith("failed-")),
        key=lambda d: d.name,
        reverse=True,
    )
    for old in failed[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    for abandoned in builds_dir.iterdir():
        if abandoned != current and _abandoned(abandoned):
            shutil.rmtree(abandoned, ignore_errors=True)


def _abandoned(directory: Path) -> bool:
    """A build directory left unfinished by a killed build (no build.json, lock not held)."""
    if not directory.is_dir() or directory.name.startswith("failed-") or (directory / BUILD_INFO_FILE).exists():
        return False
    lock_path = directory / LOCK_FILE
    if not lock_path.exists():
        # Created a moment ago by a build that has not taken its lock yet, or not a build at all.
        return False
    with open(lock_path) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a build is running in it
        return True


def _retire_failed(directory: Path) -> None:
    # Keep the logs of a failed build for diagnosis, out of the way of finished builds.
    if directory.exists():
        target = directory.with_name("failed-" + directory.name)
        directory.rename(target)


def _read_project(dbt_project: Path) -> dict:
    path = dbt_project / "dbt_project.yml"
    if not path.exists():
        raise BuildFailed(f"{dbt_project} is not a dbt project (no dbt_project.yml).")
    return yaml.safe_load(path.read_text()) or {}


def _reuse_parse_cache(warehouse: Path, directory: Path) -> None:
    # dbt's partial-parse cache lives in the target path; seed it from the served build.
    previous = Path(os.path.realpath(warehouse)).parent / "partial_parse.msgpack"
    if previous.exists():
        shutil.copy2(previous, directory / "partial_parse.msgpack")


def _dbt_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    env["DBT_USE_COLORS"] = "false"
    return env
