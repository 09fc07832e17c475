"""Where a build goes: one `WarehouseTarget` per warehouse type, owning all that differs between
DuckDB, PostgreSQL and Spark, so `northstar.build.build` reads as the same sequence for each.

A target is made for one build (`NewBuild`: its directory under `<data>/builds/` and its id)
and says:

- the dbt target of the build's profile, the environment dbt reads its secrets from, and the
  project vars that point dbt at the build's own schemas;
- how the checked landing tables reach the warehouse (`load_landing`): DuckDB reads the files
  where they are, PostgreSQL copies them into the build's `landing__<b>` schema, Spark writes
  them as Parquet under the build directory;
- how dbt runs and what the engine writes between its phases (`build_models`): the
  engine-computed tables (`fct_metric_values_daily`'s rows), the experiments' per-user values,
  the rollups and the experiment readouts;
- what the served path points at once the build passed (`served_file`: the DuckDB file, or a
  pointer file naming the build's schemas or Parquet tables), and what else a published build
  records (`published`) or a pruned one drops (`prune`);
- how a failed build is cleaned up (`discard`): its file, its schemas or its Parquet data.

See `northstar/postgres.py` and `northstar/spark.py` for the engines' own helpers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb
import yaml

from metrics.dry_run import DryRunReport, dry_run
from metrics.execution.spark import DEFAULT_MASTER as DEFAULT_SPARK_MASTER
from northstar import metric_values, postgres, rollups, spark
from northstar.dbt_run import Dbt, failure_message, run_dbt, tail
from northstar.errors import BuildFailed
from northstar.landing import LandingTable

WAREHOUSE_FILE = "warehouse.duckdb"
WAREHOUSE_TYPES = ("duckdb", "postgres", "spark")
#: The readout models read rows the engine stages after the marts are built; they build on
#: their own target path so the main run's results stay in run_results.json.
READOUTS_TARGET = "readouts"
READOUT_MODELS = ("fct_experiment_results", "fct_experiment_health")


@dataclass(frozen=True)
class NewBuild:
    """A build in progress: its directory (`<builds_dir>/<build_id>`) and id."""

    directory: Path
    build_id: str
    builds_dir: Path


@dataclass
class Built:
    """What `build_models` wrote besides dbt's models, for build.json."""

    readouts: dict
    metric_values: dict | None = None
    #: build.json entries of the tables the engine wrote (rollups, experiment values).
    entries: dict = field(default_factory=dict)


class WarehouseTarget(Protocol):
    """One build into one kind of warehouse (see the module docstring)."""

    warehouse_type: str
    build: NewBuild
    postgres_dsn: str | None

    def dbt_target(self, dbt_project: Path, profile: str) -> tuple[dict, dict[str, str]]:
        """The dbt target of the build's profile and the environment dbt reads secrets from."""
        ...

    def dbt_vars(self) -> dict[str, str]:
        """Project vars that point dbt's sources and schemas at the build's own."""
        ...

    def engine_tables_schema(self) -> str:
        """Where the engine writes the tables dbt models read (`metric_values_schema`)."""
        ...

    def load_landing(self, tables: dict[str, LandingTable] | None) -> None:
        """Prepare the warehouse for the build and put the checked landing tables where dbt
        reads them (None: the project does not read the landing contract)."""
        ...

    def build_models(self, dbt: Dbt, *, engine_tables: bool, docs: bool) -> Built:
        """Run dbt (and the docs) and write what the engine computes between its phases."""
        ...

    def failing_rows(self, directory: Path, compiled_sql: str | None, limit: int = 5) -> tuple[list[str], list[tuple]]:
        """A few rows of a test's own query, from the unpublished build."""
        ...

    def finish(self, built: Built) -> dict:
        """The last tables written into a build whose tests passed; build.json entries."""
        ...

    def build_info(self) -> dict:
        """build.json entries naming the warehouse type and the build's schemas."""
        ...

    def dry_run(self) -> DryRunReport | None:
        """Compile and EXPLAIN every metric of the build (None: left to the server)."""
        ...

    def served_file(self) -> Path:
        """The file the served path is pointed at (written now for a pointer)."""
        ...

    def published(self) -> None:
        """Record elsewhere that the build is the one served."""
        ...

    def prune(self) -> None:
        """Drop the warehouse data of pruned, failed or abandoned builds."""
        ...

    def discard(self) -> None:
        """Delete the data a failed build wrote (its logs stay for diagnosis)."""
        ...


def target_type(
    warehouse_type: str, *, postgres_dsn: str | None = None, spark_master: str | None = None
) -> Callable[[NewBuild], WarehouseTarget]:
    """The target builds of `warehouse_type` use, checked before anything is built."""
    if warehouse_type not in WAREHOUSE_TYPES:
        raise BuildFailed(f"unknown warehouse type {warehouse_type!r}; choose duckdb, postgres or spark.")
    if warehouse_type == "postgres":
        if not postgres_dsn:
            raise BuildFailed("a PostgreSQL build needs NORTHSTAR_POSTGRES_DSN=postgresql://user:pass@host:port/db.")
        dsn = postgres_dsn
        return lambda build: PostgresTarget(build, dsn)
    if warehouse_type == "spark":
        master = spark_master or DEFAULT_SPARK_MASTER
        return lambda build: SparkTarget(build, master)
    return DuckDBTarget


def _dry_run(warehouse: Path, postgres_dsn: str | None = None) -> DryRunReport:
    """Compile and EXPLAIN every metric of the new build (see metrics.dry_run)."""
    from metrics.engine import MetricsEngine

    engine = MetricsEngine.open(warehouse, postgres_dsn=postgres_dsn, check=False)
    try:
        return dry_run(engine)
    finally:
        engine.close()


def stage_experiment_readouts(target: _InProcessTarget | SparkTarget) -> tuple[dict, str | None]:
    """Compute every experiment's readout and health with the engine over the new (unpublished)
    warehouse and stage the rows in the build's `northstar` schema, where the dbt models
    `fct_experiment_results` and `fct_experiment_health` read them. Returns what happened and
    the staging schema (None when nothing was staged: the models are then built empty)."""
    from metrics.engine import MetricsEngine
    from metrics.errors import MetricsError
    from metrics.experiment_results import HEALTH_COLUMNS, RESULT_COLUMNS, experiment_table_rows

    started = time.perf_counter()
    schema = target.readouts_schema()
    try:
        engine = MetricsEngine.open(target.served_file(), postgres_dsn=target.postgres_dsn)
        try:
            rows = experiment_table_rows(engine.experiments)
        finally:
            engine.close()
    except MetricsError as exc:  # e.g. a project without experiment marts
        return {"status": "skipped", "reason": exc.message}, None
    tables = (("experiment_results", RESULT_COLUMNS, rows.results), ("experiment_health", HEALTH_COLUMNS, rows.health))
    target.write_staged(schema, tables)
    return {
        "status": "staged",
        "results": len(rows.results),
        "health": len(rows.health),
        "problems": rows.problems,
        "seconds": round(time.perf_counter() - started, 2),
    }, schema


class _InProcessTarget:
    """A warehouse dbt and the engine both write directly, one dbt process per command
    (DuckDB, PostgreSQL): dbt builds the models (in two phases around the engine tables),
    the engine writes its extra tables and stages the readouts, dbt builds the readout
    models, then the docs."""

    warehouse_type: str
    build: NewBuild
    postgres_dsn: str | None = None

    def readouts_schema(self) -> str:
        raise NotImplementedError

    def served_file(self) -> Path:
        raise NotImplementedError

    def write_staged(self, schema: str, tables) -> None:
        raise NotImplementedError

    def failing_rows(self, directory: Path, compiled_sql: str | None, limit: int = 5) -> tuple[list[str], list[tuple]]:
        raise NotImplementedError

    def write_metric_values(self) -> dict:
        """The engine tables, between dbt's two phases; build.json's record of them."""
        raise NotImplementedError

    def after_models(self) -> dict:
        """Tables the engine writes once the models are built; build.json entries."""
        raise NotImplementedError

    def build_models(self, dbt: Dbt, *, engine_tables: bool, docs: bool) -> Built:
        directory, build_id = self.build.directory, self.build.build_id

        def describe(where: Path, output: list[str]) -> str:
            return failure_message(where, output, self.failing_rows)

        written = None
        if engine_tables:
            written = metric_values.build_in_phases(
                directory,
                dbt.args(),
                dbt.env,
                dbt.progress,
                run_dbt,
                describe,
                self.write_metric_values,
            )
        else:
            code, output = dbt.run(["build", *dbt.args()], progress=True)
            if code != 0:
                raise BuildFailed(describe(directory, output), build_id=build_id)
        # The engine's tables over the built marts (DuckDB: the experiments' per-user values;
        # PostgreSQL: the rollups), then the experiments' readouts and health, built into
        # fct_experiment_results/_health.
        entries = self.after_models()
        readouts, staged = stage_experiment_readouts(self)
        if staged:
            # The readout models read what was just staged; built (with their tests) on their own
            # target path so the main run's results stay in run_results.json.
            dbt.vars["experiment_readouts_schema"] = staged
            code, output = dbt.run(
                ["build", "--select", *READOUT_MODELS, *dbt.args(target_path=directory / READOUTS_TARGET)]
            )
            if code != 0:
                raise BuildFailed(describe(directory / READOUTS_TARGET, output), build_id=build_id)
        if docs:
            code, output = dbt.run(["docs", "generate", *dbt.args()])
            if code != 0:
                raise BuildFailed("dbt docs generate failed: " + tail(output), build_id=build_id)
        return Built(readouts, written, entries)


class _BuildSchemas:
    """PostgreSQL and Spark builds live in schemas of their own (`<prefix>__<build suffix>`),
    which build.json lists; the engine's tables and the staged readouts go into the build's
    `northstar` schema."""

    build: NewBuild
    warehouse_type: str
    schema_prefixes: tuple[str, ...]  # each target's schemas of a build, `<prefix>__<suffix>`

    def engine_tables_schema(self) -> str:
        return postgres.build_schema("northstar", self.build.build_id)

    def readouts_schema(self) -> str:
        return postgres.build_schema("northstar", self.build.build_id)

    def finish(self, built: Built) -> dict:
        return dict(built.entries)

    def build_info(self) -> dict:
        return {
            "warehouse_type": self.warehouse_type,
            "schemas": {p: postgres.build_schema(p, self.build.build_id) for p in self.schema_prefixes},
        }


@dataclass
class DuckDBTarget(_InProcessTarget):
    """A new DuckDB file per build (`<build>/warehouse.duckdb`): DuckDB locks a file while dbt
    writes it, and building into a fresh one lets a server keep answering from the previous."""

    build: NewBuild
    warehouse_type: str = "duckdb"
    postgres_dsn: str | None = None

    @property
    def file(self) -> Path:
        return self.build.directory / WAREHOUSE_FILE

    def dbt_target(self, dbt_project: Path, profile: str) -> tuple[dict, dict[str, str]]:
        """The project's own DuckDB profile (from the project folder or ~/.dbt), with its
        database file pointed at the new build directory."""
        base: dict = {}
        for folder in (dbt_project, Path.home() / ".dbt"):
            candidate = folder / "profiles.yml"
            if candidate.exists():
                profiles = yaml.safe_load(candidate.read_text()) or {}
                found = profiles.get(profile) or {}
                outputs = found.get("outputs") or {}
                base = dict(outputs.get(found.get("target")) or next(iter(outputs.values()), {}))
                break
        if base.get("type", "duckdb") != "duckdb":
            raise BuildFailed(f"profile {profile!r} targets {base.get('type')!r}; northstar builds DuckDB warehouses.")
        settings = dict(base.get("settings") or {})
        settings.setdefault("TimeZone", "UTC")
        target = {**base, "type": "duckdb", "path": str(self.file), "settings": settings}
        target.setdefault("threads", 2)
        return target, {}

    def dbt_vars(self) -> dict[str, str]:
        return {}

    def engine_tables_schema(self) -> str:
        return metric_values.SCHEMA

    def readouts_schema(self) -> str:
        return "northstar"

    def load_landing(self, tables: dict[str, LandingTable] | None) -> None:
        """Nothing to load: dbt-duckdb reads the landing files where they are."""

    def write_metric_values(self) -> dict:
        return metric_values.write_metric_values(self.file)

    def after_models(self) -> dict:
        return {"experiment_values": _materialize_experiment_values(self.file)}

    def write_staged(self, schema: str, tables) -> None:
        con = duckdb.connect(str(self.file))
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

    def failing_rows(self, directory: Path, compiled_sql: str | None, limit: int = 5) -> tuple[list[str], list[tuple]]:
        """From the DuckDB file of `directory` (none in a readouts target path: nothing)."""
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

    def finish(self, built: Built) -> dict:
        """The rollups, written once every test passed (a failure fails the build)."""
        return {"rollups": rollups.write_rollups(self.file), **built.entries}

    def build_info(self) -> dict:
        return {}

    def dry_run(self) -> DryRunReport | None:
        return _dry_run(self.file)

    def served_file(self) -> Path:
        return self.file

    def published(self) -> None:
        pass

    def prune(self) -> None:
        """Nothing beyond the build directories: each build's data is its own file."""

    def discard(self) -> None:
        for stray in self.build.directory.glob(WAREHOUSE_FILE + "*"):
            stray.unlink(missing_ok=True)


@dataclass
class PostgresTarget(_BuildSchemas, _InProcessTarget):
    """Schemas of the build in the database of `postgres_dsn` (`<prefix>__<build suffix>`,
    see northstar/postgres.py), named by a pointer file in the build directory."""

    build: NewBuild
    postgres_dsn: str
    warehouse_type: str = "postgres"
    schema_prefixes = postgres.BUILD_SCHEMA_PREFIXES

    def dbt_target(self, dbt_project: Path, profile: str) -> tuple[dict, dict[str, str]]:
        return postgres.profile_target(self.postgres_dsn, self.build.build_id)

    def dbt_vars(self) -> dict[str, str]:
        return postgres.dbt_vars(self.build.build_id)

    def load_landing(self, tables: dict[str, LandingTable] | None) -> None:
        """Note the build's schemas as this data directory's, then COPY the landing tables in."""
        postgres.register_build(self.postgres_dsn, self.build.build_id, self.build.builds_dir)
        if tables is not None:
            postgres.load_landing(
                self.postgres_dsn, tables, postgres.build_schema(postgres.LANDING, self.build.build_id)
            )

    def write_metric_values(self) -> dict:
        return metric_values.write_metric_values_postgres(
            self.served_file(), self.postgres_dsn, self.engine_tables_schema()
        )

    def after_models(self) -> dict:
        return {"rollups": rollups.write_rollups_postgres(self.served_file(), self.postgres_dsn, self.build.build_id)}

    def write_staged(self, schema: str, tables) -> None:
        postgres.write_rows(self.postgres_dsn, schema, tables)

    def failing_rows(self, directory: Path, compiled_sql: str | None, limit: int = 5) -> tuple[list[str], list[tuple]]:
        """From the build's schemas (they still exist while a failure is described)."""
        if not compiled_sql:
            return [], []
        return postgres.sample_rows(self.postgres_dsn, compiled_sql, limit)

    def dry_run(self) -> DryRunReport | None:
        return _dry_run(self.served_file(), self.postgres_dsn)

    def served_file(self) -> Path:
        return postgres.write_pointer(self.build.directory, self.build.build_id)

    def published(self) -> None:
        postgres.record_published(self.postgres_dsn, self.build.build_id, self.build.builds_dir)

    def prune(self) -> None:
        postgres.prune_schemas(self.postgres_dsn, self.build.builds_dir)

    def discard(self) -> None:
        postgres.drop_build(self.postgres_dsn, self.build.build_id)


@dataclass
class SparkTarget(_BuildSchemas):
    """Parquet tables under the build directory, built by dbt-spark in Spark sessions of their
    own (see northstar/spark.py), named by a pointer file in the build directory.

    Each Spark process holds the build's catalog in memory: the build in one, then (after the
    engine's readouts are staged as Parquet) the engine tables, the rollups, the readout models
    and the docs in a second that registers every table of the first."""

    build: NewBuild
    master: str
    warehouse_type: str = "spark"
    schema_prefixes = spark.BUILD_SCHEMA_PREFIXES
    postgres_dsn: str | None = None
    landing: dict[str, str] = field(default_factory=dict)

    def dbt_target(self, dbt_project: Path, profile: str) -> tuple[dict, dict[str, str]]:
        return spark.profile_target(self.master, self.build.build_id, self.build.directory), {}

    def dbt_vars(self) -> dict[str, str]:
        return spark.dbt_vars(self.build.build_id)

    def load_landing(self, tables: dict[str, LandingTable] | None) -> None:
        """Typed Parquet under `<build>/landing/`, registered by each Spark process."""
        if tables is not None:
            self.landing = spark.write_landing(tables, self.build.directory / spark.LANDING_DIR)

    def write_staged(self, schema: str, tables) -> None:
        spark.write_staged(self.build.directory, tables)

    def build_models(self, dbt: Dbt, *, engine_tables: bool, docs: bool) -> Built:
        directory, build_id = self.build.directory, self.build.build_id
        spec = spark.write_spec(directory, self.master, build_id, self.landing)
        # the readout models are built by the second process, once their rows are staged
        # (and so are the engine tables and what reads them, once the second process wrote them)
        later = [*READOUT_MODELS, *([metric_values.READERS] if engine_tables else [])]
        code, output = dbt.run_command(
            spark.dbt_command(spec, [["build", "--exclude", *later, *dbt.args()]]), progress=True
        )
        if code != 0:
            raise BuildFailed(failure_message(directory, output, self.failing_rows), build_id=build_id)
        readouts, staged = stage_experiment_readouts(self)
        if staged:
            dbt.vars["experiment_readouts_schema"] = staged
        # The engine tables and rollups: the engine's statements, run by the second process
        # (which has every table of the first) as tables of the build before its dbt commands.
        pointer = spark.write_pointer(directory, build_id)
        schema = self.engine_tables_schema()
        tables = []
        if engine_tables:
            rendered = metric_values.metric_values_statement(pointer)
            tables.append({"schema": schema, "table": metric_values.TABLE, "sql": rendered.inline_sql(False)})
        for rollup, rendered in rollups.statements(pointer).items():
            tables.append(
                {
                    "schema": postgres.build_schema(rollup.schema, build_id),
                    "table": rollup.table,
                    "sql": rendered.inline_sql(False),
                    "rollup": rollup.saved_query,
                    "name": rollup.public_name,
                    "exported": rollup.exported,
                }
            )
        commands = [["build", "--select", *later, *dbt.args(target_path=directory / READOUTS_TARGET)]]
        if docs:
            commands.append(["docs", "generate", *dbt.args()])
        spec = spark.write_spec(
            directory,
            self.master,
            build_id,
            {},
            reregister=True,
            staged=spark.staged_folders(directory) if staged else None,
            create=tables,
        )
        code, output = dbt.run_command(spark.dbt_command(spec, commands))
        if code == 1:
            raise BuildFailed(
                failure_message(directory / READOUTS_TARGET, output, self.failing_rows), build_id=build_id
            )
        if code == spark.CREATE_FAILED:
            raise BuildFailed("writing the engine tables and rollups failed: " + tail(output), build_id=build_id)
        if code != 0:
            raise BuildFailed("dbt docs generate failed: " + tail(output), build_id=build_id)
        created = spark.created_tables(directory)
        written = created.get(f"{schema}.{metric_values.TABLE}") if engine_tables else None
        # With their parts' layout: the router re-aggregates them as on the other engines.
        built_rollups = {
            table["rollup"]: {
                **created[f"{table['schema']}.{table['table']}"],
                "name": table["name"],
                "exported": table["exported"],
                "layout": rollups.LAYOUT,
            }
            for table in tables
            if "rollup" in table
        }
        return Built(readouts, written, {"rollups": built_rollups})

    def failing_rows(self, directory: Path, compiled_sql: str | None, limit: int = 5) -> tuple[list[str], list[tuple]]:
        """Nothing: the build's Spark session is gone once dbt failed (the test is reported)."""
        return [], []

    def dry_run(self) -> DryRunReport | None:
        """Left to the server that opens the build (a Spark session of its own)."""
        return None

    def served_file(self) -> Path:
        return spark.write_pointer(self.build.directory, self.build.build_id)

    def published(self) -> None:
        pass

    def prune(self) -> None:
        """Nothing beyond the build directories: a build's tables are Parquet in its own."""

    def discard(self) -> None:
        spark.drop_build(self.build.directory)


def _materialize_experiment_values(warehouse_file: Path) -> dict:
    """Store every experiment's per-user values in the new (unpublished) warehouse, computed
    by the engine's own SQL from the semantic layer, so a readout sums one table instead of
    joining every assignment to its user's events. Not fatal: without the table, readouts
    compute the same numbers from the assignments (slower)."""
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
