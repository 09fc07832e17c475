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
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from metrics.dry_run import BUILD_INFO_KEY as UNSERVABLE_KEY
from metrics.dry_run import Unservable, dry_run
from metrics.engine import BuildWarning
from metrics.execution.spark import DEFAULT_MASTER as DEFAULT_SPARK_MASTER
from northstar import metric_values, postgres, rollups, spark
from northstar.errors import BuildFailed
from northstar.landing import check_contract

WAREHOUSE_FILE = "warehouse.duckdb"
BUILD_INFO_FILE = "build.json"
LOCK_FILE = ".building"
_PROGRESS = re.compile(r"^\S*\s*(\d+) of (\d+) (OK|PASS|ERROR|FAIL|WARN|SKIP)\b")

Progress = Callable[[int, int, str], None]


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
    `warehouse` points at the build's `warehouse.spark`.

    Raises:
        LandingContractViolation: a landing file breaks the contract (nothing was built).
        BuildFailed: a model or test failed (the served warehouse is unchanged).
    """
    started = time.perf_counter()
    on_postgres = warehouse_type == "postgres"
    on_spark = warehouse_type == "spark"
    if warehouse_type not in ("duckdb", "postgres", "spark"):
        raise BuildFailed(f"unknown warehouse type {warehouse_type!r}; choose duckdb, postgres or spark.")
    if on_postgres and not postgres_dsn:
        raise BuildFailed("a PostgreSQL build needs NORTHSTAR_POSTGRES_DSN=postgresql://user:pass@host:port/db.")
    landing = Path(landing).resolve()
    warehouse = Path(warehouse).absolute()
    dbt_project = Path(dbt_project).resolve()
    project = _read_project(dbt_project)
    # Projects that read the landing contract (ours: a `landing` var) get the files checked
    # first and located for them; any other dbt project is built as it is.
    reads_landing = "landing" in (project.get("vars") or {})
    tables = check_contract(landing) if reads_landing else {}
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

    env = _dbt_env()
    target = None
    dbt_vars: dict = {}
    engine_written: dict | None = None
    if on_postgres:
        target, secrets_env = postgres.profile_target(postgres_dsn, build_id)
        env.update(secrets_env)
        dbt_vars.update(postgres.dbt_vars(build_id))
    if on_spark:
        target = spark.profile_target(spark_master or DEFAULT_SPARK_MASTER, build_id, directory)
        dbt_vars.update(spark.dbt_vars(build_id))
    profiles_dir = _write_profile(dbt_project, project, directory, target)
    args = [
        "--project-dir",
        str(dbt_project),
        "--profiles-dir",
        str(profiles_dir),
        "--target",
        PROFILE_TARGET,
        "--target-path",
        str(directory),
        "--log-path",
        str(directory / "logs"),
    ]
    if reads_landing:
        dbt_vars["landing"] = {name: t.reader_sql() for name, t in tables.items()}
    # Projects that take engine-computed tables (ours: a `metric_values_schema` var) get them
    # written from the semantic layer between two dbt phases, on every warehouse: into the
    # DuckDB file, the build's own PostgreSQL schema, or by the second Spark process.
    engine_tables = metric_values.VAR in (project.get("vars") or {})
    staging_schema = postgres.build_schema("northstar", build_id)
    if engine_tables:
        dbt_vars[metric_values.VAR] = staging_schema if on_postgres or on_spark else metric_values.SCHEMA
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars)]
    try:
        if on_postgres:
            postgres.register_build(postgres_dsn, build_id, builds_dir)
        if on_postgres and reads_landing:
            postgres.load_landing(postgres_dsn, tables, postgres.build_schema(postgres.LANDING, build_id))
        if on_spark:
            # Each Spark process holds the build's catalog in memory: the build in one, then (after the
            # engine's readouts are staged as Parquet) the readout models and the docs in a second
            # that registers every table of the first.
            landing_folders = spark.write_landing(tables, directory / spark.LANDING_DIR) if reads_landing else {}
            master = spark_master or DEFAULT_SPARK_MASTER
            spec = spark.write_spec(directory, master, build_id, landing_folders)
            # the readout models are built by the second process, once their rows are staged
            # (and so are the engine tables and what reads them, once the second process wrote them)
            later = [*READOUT_MODELS, *([metric_values.READERS] if engine_tables else [])]
            code, output = _run_dbt(
                [], env, progress, command=spark.dbt_command(spec, [["build", "--exclude", *later, *args]])
            )
            if code != 0:
                raise BuildFailed(_failure_message(directory, output), build_id=build_id)
            readouts, staged = _stage_experiment_readouts(directory, build_id, None, spark_build=True)
            if staged:
                dbt_vars["experiment_readouts_schema"] = staged
                args = args[: args.index("--vars")] + ["--vars", json.dumps(dbt_vars)]
            # The engine tables and rollups: the engine's statements, run by the second process
            # (which has every table of the first) as tables of the build before its dbt commands.
            pointer = spark.write_pointer(directory, build_id)
            tables = []
            if engine_tables:
                rendered = metric_values.metric_values_statement(pointer)
                tables.append(
                    {"schema": staging_schema, "table": metric_values.TABLE, "sql": rendered.inline_sql(False)}
                )
            built_rollups = {}
            for rollup, rendered in rollups.statements(pointer).items():
                schema = postgres.build_schema(rollup.schema, build_id)
                tables.append(
                    {
                        "schema": schema,
                        "table": rollup.table,
                        "sql": rendered.inline_sql(False),
                        "rollup": rollup.saved_query,
                        "exported": rollup.exported,
                    }
                )
            commands = [
                [
                    "build",
                    "--select",
                    *later,
                    *[a if a != str(directory) else str(directory / READOUTS_TARGET) for a in args],
                ]
            ]
            if docs:
                commands.append(["docs", "generate", *args])
            spec = spark.write_spec(
                directory,
                master,
                build_id,
                {},
                reregister=True,
                staged=spark.staged_folders(directory) if staged else None,
                create=tables,
            )
            code, output = _run_dbt([], env, None, command=spark.dbt_command(spec, commands))
            if code == 1:
                raise BuildFailed(_failure_message(directory / READOUTS_TARGET, output), build_id=build_id)
            if code == spark.CREATE_FAILED:
                raise BuildFailed("writing the engine tables and rollups failed: " + _tail(output), build_id=build_id)
            if code != 0:
                raise BuildFailed("dbt docs generate failed: " + _tail(output), build_id=build_id)
            created = spark.created_tables(directory)
            if engine_tables:
                engine_written = created.get(f"{staging_schema}.{metric_values.TABLE}")
            for table in tables:
                if "rollup" in table:
                    entry = created[f"{table['schema']}.{table['table']}"]
                    built_rollups[table["rollup"]] = {**entry, "exported": table["exported"], "layout": rollups.LAYOUT}
        else:
            if engine_tables and on_postgres:
                engine_written = metric_values.build_in_phases(
                    directory,
                    args,
                    env,
                    progress,
                    _run_dbt,
                    lambda d, out: _failure_message(d, out, postgres_dsn),
                    lambda: metric_values.write_metric_values_postgres(
                        postgres.write_pointer(directory, build_id), postgres_dsn, staging_schema
                    ),
                )
            elif engine_tables:
                engine_written = metric_values.build_in_phases(
                    directory,
                    args,
                    env,
                    progress,
                    _run_dbt,
                    _failure_message,
                    lambda: metric_values.write_metric_values(directory / WAREHOUSE_FILE),
                )
            else:
                code, output = _run_dbt(["build", *args], env, progress)
                if code != 0:
                    raise BuildFailed(
                        _failure_message(directory, output, postgres_dsn if on_postgres else None), build_id=build_id
                    )
            # The experiments' per-user values, then their readouts and health, computed by the
            # engine over the built marts and built into fct_experiment_results/_health.
            if on_postgres:
                built_rollups = rollups.write_rollups_postgres(
                    postgres.write_pointer(directory, build_id), postgres_dsn, build_id
                )
            else:
                experiment_values = _materialize_experiment_values(directory / WAREHOUSE_FILE)
            readouts, staged = _stage_experiment_readouts(directory, build_id, postgres_dsn if on_postgres else None)
            if staged:
                # The readout models read what was just staged; built (with their tests) on their own
                # target path so the main run's results stay in run_results.json.
                dbt_vars["experiment_readouts_schema"] = staged
                args = args[: args.index("--vars")] if "--vars" in args else args
                args += ["--vars", json.dumps(dbt_vars)]
                readout_args = [a if a != str(directory) else str(directory / READOUTS_TARGET) for a in args]
                code, output = _run_dbt(["build", "--select", *READOUT_MODELS, *readout_args], env, None)
                if code != 0:
                    raise BuildFailed(
                        _failure_message(directory / READOUTS_TARGET, output, postgres_dsn if on_postgres else None),
                        build_id=build_id,
                    )
        if docs and not on_spark:
            code, output = _run_dbt(["docs", "generate", *args], env, None)
            if code != 0:
                raise BuildFailed("dbt docs generate failed: " + _tail(output), build_id=build_id)
    except BaseException:
        if on_postgres:
            postgres.drop_build(postgres_dsn, build_id)
        if on_spark:
            spark.drop_build(directory)
        _retire_failed(directory)
        raise

    run_results = _read_json(directory / "run_results.json") or {}
    readout_results = _read_json(directory / READOUTS_TARGET / "run_results.json") or {}
    run_results.setdefault("results", []).extend(readout_results.get("results", []))
    manifest = _read_json(directory / "manifest.json") or {}
    statuses = [r.get("status") for r in run_results.get("results", [])]
    model_tests = _tests_per_model(run_results, manifest)
    warnings = _warnings(directory, run_results, manifest, postgres_dsn if on_postgres else None)
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
    }
    if on_postgres:
        info["warehouse_type"] = "postgres"
        info["schemas"] = {p: postgres.build_schema(p, build_id) for p in postgres.BUILD_SCHEMA_PREFIXES}
    if on_spark:
        info["warehouse_type"] = "spark"
        info["schemas"] = {p: postgres.build_schema(p, build_id) for p in spark.BUILD_SCHEMA_PREFIXES}
    if engine_written is not None:
        info["metric_values_daily"] = engine_written
    if not on_postgres and not on_spark:
        try:
            info["rollups"] = rollups.write_rollups(directory / WAREHOUSE_FILE)
        except BuildFailed as exc:
            _retire_failed(directory)
            raise BuildFailed(exc.message, build_id=build_id) from exc
        info["experiment_values"] = experiment_values
    else:
        info["rollups"] = built_rollups
    info["experiment_readouts"] = readouts
    # Spark builds are checked by the server that opens them (a Spark session of its own).
    if not on_spark:
        report = (
            _dry_run(postgres.write_pointer(directory, build_id), postgres_dsn)
            if on_postgres
            else _dry_run(directory / WAREHOUSE_FILE)
        )
        info[UNSERVABLE_KEY] = [u.to_json() for u in report.unservable]
        info["dry_run"] = {"statements": report.statements, "seconds": round(report.seconds, 3)}
    # Written last: a directory without build.json is a build that did not finish.
    (directory / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2))
    if on_postgres:
        publish(postgres.write_pointer(directory, build_id), warehouse)
        postgres.record_published(postgres_dsn, build_id, builds_dir)
    elif on_spark:
        publish(spark.write_pointer(directory, build_id), warehouse)
    else:
        publish(directory / WAREHOUSE_FILE, warehouse)
    prune(builds_dir, keep=keep, current=directory)
    if on_postgres:
        postgres.prune_schemas(postgres_dsn, builds_dir)
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


def _dry_run(warehouse_file: Path, postgres_dsn: str | None = None):
    """Compile and EXPLAIN every metric of the new build (see metrics.dry_run)."""
    from metrics.engine import MetricsEngine

    engine = MetricsEngine.open(warehouse_file, postgres_dsn=postgres_dsn, check=False)
    try:
        return dry_run(engine)
    finally:
        engine.close()


READOUTS_TARGET = "readouts"
READOUT_MODELS = ("fct_experiment_results", "fct_experiment_health")


def _stage_experiment_readouts(
    directory: Path, build_id: str, postgres_dsn: str | None, spark_build: bool = False
) -> tuple[dict, str | None]:
    """Compute every experiment's readout and health with the engine over the new (unpublished)
    warehouse and stage the rows in the build's `northstar` schema, where the dbt models
    `fct_experiment_results` and `fct_experiment_health` read them. Returns what happened and
    the staging schema (None when nothing was staged: the models are then built empty)."""
    from metrics.engine import MetricsEngine
    from metrics.errors import MetricsError
    from metrics.experiment_results import HEALTH_COLUMNS, RESULT_COLUMNS, experiment_table_rows

    started = time.perf_counter()
    if postgres_dsn:
        warehouse_path = postgres.write_pointer(directory, build_id)
        schema = postgres.build_schema("northstar", build_id)
    elif spark_build:
        warehouse_path = spark.write_pointer(directory, build_id)
        schema = postgres.build_schema("northstar", build_id)
    else:
        warehouse_path = directory / WAREHOUSE_FILE
        schema = "northstar"
    try:
        engine = MetricsEngine.open(warehouse_path, postgres_dsn=postgres_dsn)
        try:
            rows = experiment_table_rows(engine.experiments)
        finally:
            engine.close()
    except MetricsError as exc:  # e.g. a project without experiment marts
        return {"status": "skipped", "reason": exc.message}, None
    tables = (("experiment_results", RESULT_COLUMNS, rows.results), ("experiment_health", HEALTH_COLUMNS, rows.health))
    if postgres_dsn:
        postgres.write_rows(postgres_dsn, schema, tables)
    elif spark_build:
        spark.write_staged(directory, tables)
    else:
        con = duckdb.connect(str(warehouse_path))
        try:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            for table, columns, values in tables:
                con.execute(
                    f'CREATE OR REPLACE TABLE "{schema}"."{table}" ('
                    + ", ".join(f'"{c}" {t}' for c, t in columns)
                    + ")"
                )
                if values:
                    con.executemany(
                        f'INSERT INTO "{schema}"."{table}" VALUES (' + ", ".join("?" for _ in columns) + ")", values
                    )
        finally:
            con.close()
    return {
        "status": "staged",
        "results": len(rows.results),
        "health": len(rows.health),
        "problems": rows.problems,
        "seconds": round(time.perf_counter() - started, 2),
    }, schema


def _materialize_experiment_values(warehouse_file: Path) -> dict:
    """Store every experiment's per-user values in the new (unpublished) warehouse, computed
    by the engine's own SQL from the semantic layer, so a readout sums one table instead of
    joining every assignment to its user's events. Not fatal: without the table, readouts
    compute the same numbers from the assignments (slower)."""
    import duckdb

    from metrics.engine import MetricsEngine
    from metrics.errors import MetricsError
    from metrics.experiments import PER_USER_TABLE

    started = time.perf_counter()
    try:
        engine = MetricsEngine.open(warehouse_file, check=False)
        try:
            rendered = engine.experiments.per_user_table_sql()
        finally:
            engine.close()
    except MetricsError as exc:
        return {"status": "skipped", "reason": exc.message}
    if rendered is None:
        return {"status": "skipped", "reason": "no metric can be analysed per user"}
    con = duckdb.connect(str(warehouse_file))
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{PER_USER_TABLE.schema}"')
        con.execute(
            f'CREATE TABLE "{PER_USER_TABLE.schema}"."{PER_USER_TABLE.table}" AS {rendered.sql}', rendered.params
        )
        rows = con.execute(f'SELECT COUNT(*) FROM "{PER_USER_TABLE.schema}"."{PER_USER_TABLE.table}"').fetchall()[0][0]
    except duckdb.Error as exc:  # e.g. a project without experiment marts
        return {"status": "skipped", "reason": str(exc).splitlines()[0]}
    finally:
        con.close()
    return {"status": "materialized", "rows": rows, "seconds": round(time.perf_counter() - started, 2)}


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


def _warnings(
    directory: Path, run_results: dict, manifest: dict, postgres_dsn: str | None = None
) -> list[BuildWarning]:
    """Every warn-severity test that found rows, with its model, column, count and samples."""
    nodes = manifest.get("nodes", {})
    out = []
    for result in run_results.get("results", []):
        if result.get("status") != "warn":
            continue
        node = nodes.get(result.get("unique_id"), {})
        table, column = _test_target(node)
        columns, rows = _failing_rows(directory, result.get("compiled_code") or node.get("compiled_code"), postgres_dsn)
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


def _test_target(node: dict) -> tuple[str, str | None]:
    """The model (or source table) and column a test node checks."""
    metadata = node.get("test_metadata") or {}
    column = node.get("column_name") or (metadata.get("kwargs") or {}).get("column_name")
    attached = node.get("attached_node") or ""
    table = attached.split(".")[-1] if attached else "?"
    if not attached and node.get("depends_on", {}).get("nodes"):
        table = node["depends_on"]["nodes"][0].split(".")[-1]
    return table, column


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
        for stray in target.glob(WAREHOUSE_FILE + "*"):
            stray.unlink(missing_ok=True)


PROFILE_TARGET = "northstar_build"


def _read_project(dbt_project: Path) -> dict:
    path = dbt_project / "dbt_project.yml"
    if not path.exists():
        raise BuildFailed(f"{dbt_project} is not a dbt project (no dbt_project.yml).")
    return yaml.safe_load(path.read_text()) or {}


def _write_profile(dbt_project: Path, project: dict, directory: Path, target: dict | None = None) -> Path:
    """A profiles.yml for this build: the project's own DuckDB profile (from the project
    folder or ~/.dbt), with its database file pointed at the new build directory; or the
    given (PostgreSQL) target."""
    name = project.get("profile") or "default"
    if target is not None:
        return _profile_file(directory, name, target)
    base: dict = {}
    for folder in (dbt_project, Path.home() / ".dbt"):
        candidate = folder / "profiles.yml"
        if candidate.exists():
            profiles = yaml.safe_load(candidate.read_text()) or {}
            profile = profiles.get(name) or {}
            outputs = profile.get("outputs") or {}
            base = dict(outputs.get(profile.get("target")) or next(iter(outputs.values()), {}))
            break
    if base.get("type", "duckdb") != "duckdb":
        raise BuildFailed(f"profile {name!r} targets {base.get('type')!r}; northstar builds DuckDB warehouses.")
    settings = dict(base.get("settings") or {})
    settings.setdefault("TimeZone", "UTC")
    target = {**base, "type": "duckdb", "path": str(directory / WAREHOUSE_FILE), "settings": settings}
    target.setdefault("threads", 2)
    return _profile_file(directory, name, target)


def _profile_file(directory: Path, name: str, target: dict) -> Path:
    profiles_dir = directory / "profile"
    profiles_dir.mkdir()
    (profiles_dir / "profiles.yml").write_text(
        yaml.safe_dump({name: {"target": PROFILE_TARGET, "outputs": {PROFILE_TARGET: target}}})
    )
    return profiles_dir


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


def _run_dbt(
    args: list[str], env: dict[str, str], progress: Progress | None, command: list[str] | None = None
) -> tuple[int, list[str]]:
    command = command or [sys.executable, "-c", "from dbt.cli.main import cli; cli()", *args]
    output: list[str] = []
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            output.append(line)
            match = _PROGRESS.search(line)
            if progress and match:
                progress(int(match.group(1)), int(match.group(2)), line)
    return proc.returncode, output


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _tail(output: list[str], lines: int = 15) -> str:
    return "\n".join(line for line in output[-lines:] if line.strip())


def _failure_message(directory: Path, output: list[str], postgres_dsn: str | None = None) -> str:
    """Name what failed: each failing model or test, its table and column, sample rows (from
    the build's DuckDB file, or its PostgreSQL schemas when `postgres_dsn` is given)."""
    results = _read_json(directory / "run_results.json")
    manifest = _read_json(directory / "manifest.json") or {}
    if not results:
        return "dbt build failed before running any node:\n" + _tail(output)
    nodes = manifest.get("nodes", {})
    problems = []
    for result in results.get("results", []):
        if result.get("status") not in ("error", "fail"):
            continue
        node = nodes.get(result.get("unique_id"), {})
        problems.append(_describe_failure(directory, result, node, postgres_dsn))
    if not problems:
        return "dbt build failed:\n" + _tail(output)
    head = f"dbt build failed ({len(problems)} failing node{'s' if len(problems) > 1 else ''}); "
    return head + "the served warehouse is unchanged.\n" + "\n".join(problems[:10])


def _describe_failure(directory: Path, result: dict, node: dict, postgres_dsn: str | None = None) -> str:
    name = node.get("name") or result.get("unique_id", "?")
    message = (result.get("message") or "").strip().splitlines()
    text = message[0] if message else result.get("status", "failed")
    if node.get("resource_type") != "test":
        return f"- model {name}: {text}"
    metadata = node.get("test_metadata") or {}
    table, column = _test_target(node)
    where = f"{table}.{column}" if column else table
    sample = _sample_failures(directory, result.get("compiled_code") or node.get("compiled_code"), postgres_dsn)
    line = f"- test {metadata.get('name') or name} on {where}: {text}"
    return line + (f"; sample rows: {sample}" if sample else "")


def _sample_failures(directory: Path, compiled_sql: str | None, postgres_dsn: str | None = None, limit: int = 5) -> str:
    """Run a failed test's own query against the unpublished warehouse for a few rows."""
    columns, rows = _failing_rows(directory, compiled_sql, postgres_dsn, limit)
    return "; ".join(", ".join(f"{c}={v!r}" for c, v in zip(columns, row)) for row in rows)


def _failing_rows(
    directory: Path, compiled_sql: str | None, postgres_dsn: str | None = None, limit: int = 5
) -> tuple[list[str], list[tuple]]:
    """A few rows of a test's own query, from the build's DuckDB file or PostgreSQL schemas
    (nothing on Spark, or when the query cannot run: the test is reported either way)."""
    if compiled_sql and postgres_dsn:
        return postgres.sample_rows(postgres_dsn, compiled_sql, limit)
    warehouse = directory / WAREHOUSE_FILE
    if not compiled_sql or not warehouse.exists():
        return [], []
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            cursor = con.execute(f"select * from ({compiled_sql}) as failures limit {int(limit)}")
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        finally:
            con.close()
    except duckdb.Error:
        return [], []
    return columns, rows
