"""Building into Spark: the landing tables, the dbt target, per-build databases and publishing.

The catalog. dbt-spark's `session` method runs Spark inside the dbt process, and Spark's
default persistent catalog is an embedded Derby metastore, which only one process may open:
a server reading the warehouse would lock out the next build (and the build the server).
So no process keeps a shared catalog. Every Spark session (the build's, each server's) uses
Spark's in-memory catalog, and what persists is Parquet under the build directory:

1. load: every landing table (located and checked by the landing contract) is read by DuckDB
   with the same readers and casts the DuckDB build uses and written as typed Parquet to
   `<build>/landing/<table>/`; the build's Spark session registers each as an external table
   `landing__<b>.<table>` (`<b>`: the build suffix);
2. `dbt build` (dbt-spark, `method: session`) reads those tables as its sources and writes its
   models into the build's databases (`staging__<b>`, `marts__<b>`, `northstar__<b>`); marts
   are Parquet tables in the build's own warehouse directory `<build>/spark-warehouse/`;
   `dbt docs generate` runs in the same process, so it sees the same catalog;
3. publish: the build directory gets a `warehouse.spark` pointer file naming each table and
   its Parquet directory, and the served path (a symlink) is re-pointed at it, exactly as for
   a DuckDB file. A server (`metrics.execution.spark`) registers those directories as external
   tables of its own in-memory catalog. A failed build's directory is retired with its data,
   and pruning a build directory removes its tables.

On a cluster, the build directory must be on storage every executor reads (HDFS, S3, a shared
mount); see README "Scaling out" for Thrift servers and Databricks.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import duckdb
from sqlglot import exp

from metrics.execution.spark import session_config
from northstar.landing import CONTRACT, LandingTable
from northstar.postgres import build_schema, schema_suffix

POINTER_FILE = "warehouse.spark"
LANDING = "landing"
LANDING_DIR = "landing"
WAREHOUSE_DIR = "spark-warehouse"
SPEC_FILE = "spark-build.json"
TABLES_FILE = "spark-tables.json"
STAGED_DIR = "readouts-staged"
CREATED_FILE = "spark-created.json"
#: The second process's exit code when an engine table or rollup could not be written.
CREATE_FAILED = 10
BUILD_SCHEMA_PREFIXES = ("landing", "northstar", "staging", "marts")


def write_landing(tables: dict[str, LandingTable], directory: Path) -> dict[str, str]:
    """Write every landing table as typed Parquet under `directory/<table>/`; returns each
    table's folder. The rows are the contract's columns, typed as the contract says, with
    timestamps in UTC."""
    folders: dict[str, str] = {}
    reader = duckdb.connect()
    try:
        reader.execute("SET TimeZone = 'UTC'")  # timestamptz landing columns -> naive UTC
        for name, table in tables.items():
            folder = directory / name
            folder.mkdir(parents=True)
            columns = CONTRACT[table.name]
            typed = [
                exp.cast(exp.column(c, quoted=True), exp.DataType.build(t, dialect="duckdb")).as_(c, quoted=True)
                for c, t in columns.items()
            ]
            select = exp.select(*typed).from_(table.reader())
            target = str(folder / "part-0.parquet").replace("'", "''")
            reader.execute(f"COPY ({select.sql('duckdb')}) TO '{target}' (FORMAT parquet)")
            folders[name] = str(folder)
    finally:
        reader.close()
    return folders


def profile_target(master: str, build_id: str, directory: Path, threads: int = 2) -> dict:
    """The dbt-spark target of a build: a session in this process, on `master`."""
    return {
        "type": "spark",
        "method": "session",
        "host": "NA",
        "schema": build_schema("northstar", build_id),
        "threads": threads,
        "server_side_parameters": session_config(master, directory / WAREHOUSE_DIR),
    }


def dbt_vars(build_id: str) -> dict[str, str]:
    """The project vars that point dbt's sources and schemas at a build's databases."""
    return {"landing_schema": build_schema(LANDING, build_id), "schema_suffix": schema_suffix(build_id)}


def write_spec(
    directory: Path,
    master: str,
    build_id: str,
    landing: dict[str, str],
    *,
    reregister: bool = False,
    staged: dict[str, str] | None = None,
    create: list[dict] | None = None,
) -> Path:
    """The Spark process's instructions: session settings, the landing tables to register, and
    for a second process of the same build, the tables the first wrote (`reregister`), the
    staged engine rows (`staged`: table -> Parquet folder, in the build's `northstar` database)
    and the tables to create from the engine's statements before dbt runs (`create`: schema,
    table, sql; engine tables and rollups)."""
    spec = directory / SPEC_FILE
    tables = json.loads((directory / TABLES_FILE).read_text()) if reregister else []
    spec.write_text(
        json.dumps(
            {
                "config": session_config(master, directory / WAREHOUSE_DIR),
                "suffix": schema_suffix(build_id),
                "landing": landing,
                "landing_schema": build_schema(LANDING, build_id),
                "tables": tables,
                "staged": staged or {},
                "staged_schema": build_schema("northstar", build_id),
                "tables_file": str(directory / TABLES_FILE),
                "create": create or [],
                "created_file": str(directory / CREATED_FILE),
            },
            indent=2,
        )
    )
    return spec


def write_staged(directory: Path, tables) -> None:
    """Each `(table, [(column, type)], rows)` as Parquet under `<build>/readouts-staged/<table>/`,
    typed as declared (DuckDB writes it), for the second Spark process to register."""
    con = duckdb.connect()
    try:
        for table, columns, rows in tables:
            folder = directory / STAGED_DIR / table
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            con.execute(
                f"CREATE OR REPLACE TABLE {_duck(table)} (" + ", ".join(f"{_duck(c)} {t}" for c, t in columns) + ")"
            )
            if rows:
                con.executemany(f"INSERT INTO {_duck(table)} VALUES (" + ", ".join("?" for _ in columns) + ")", rows)
            con.execute(f"COPY {_duck(table)} TO '{folder / 'part-00000.parquet'}' (FORMAT parquet)")
    finally:
        con.close()


def staged_folders(directory: Path) -> dict[str, str]:
    root = directory / STAGED_DIR
    return {folder.name: str(folder) for folder in sorted(root.iterdir()) if folder.is_dir()}


def created_tables(directory: Path) -> dict[str, dict]:
    """What the second process created: `schema.table` -> table, rows and seconds."""
    path = directory / CREATED_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _create_tables(spark, tables: list[dict]) -> dict[str, dict]:
    """Each engine statement as a Parquet table of the build (in its warehouse directory)."""
    created = {}
    for table in tables:
        started = time.perf_counter()
        schema, name = _quote(table["schema"]), _quote(table["table"])
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
        spark.sql(f"CREATE TABLE {schema}.{name} USING parquet AS {table['sql']}")
        rows = spark.sql(f"SELECT COUNT(*) FROM {schema}.{name}").collect()[0][0]
        key = f"{table['schema']}.{table['table']}"
        # Integer columns, so a rollup's re-aggregated sum keeps the type (northstar/rollups.py).
        integers = [
            field.name
            for field in spark.table(f"{schema}.{name}").schema.fields
            if field.dataType.typeName() in ("byte", "short", "integer", "long")
        ]
        created[key] = {
            "table": key,
            "rows": rows,
            "integer_columns": integers,
            "seconds": round(time.perf_counter() - started, 3),
        }
    return created


def _duck(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def dbt_command(spec: Path, dbt_args: list[list[str]]) -> list[str]:
    """The command that runs dbt commands in one process with the build's Spark session."""
    return [sys.executable, "-m", "northstar.spark", str(spec), json.dumps(dbt_args)]


def drop_build(directory: Path) -> None:
    """Delete a failed build's data (its landing copy and tables); its logs stay for diagnosis."""
    for data in (LANDING_DIR, WAREHOUSE_DIR, STAGED_DIR):
        shutil.rmtree(directory / data, ignore_errors=True)


def write_pointer(directory: Path, build_id: str) -> Path:
    """The file the served path points at: each table of the build and its Parquet folder
    (relative to the build directory, so a moved data directory still serves)."""
    tables = json.loads((directory / TABLES_FILE).read_text())
    for table in tables:
        location = Path(table["location"])
        if location.is_relative_to(directory):
            table["location"] = str(location.relative_to(directory))
    pointer = directory / POINTER_FILE
    pointer.write_text(
        json.dumps(
            {
                "type": "spark",
                "build_id": build_id,
                "schemas": {p: build_schema(p, build_id) for p in BUILD_SCHEMA_PREFIXES},
                "tables": tables,
            },
            indent=2,
        )
    )
    return pointer


def _quote(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("spark")


def _string(text: str) -> str:
    return exp.Literal.string(text).sql("spark")


def _register_landing(spark, schema: str, landing: dict[str, str]) -> None:
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {_quote(schema)}")
    for name, folder in landing.items():
        spark.sql(f"CREATE TABLE {_quote(schema)}.{_quote(name)} USING parquet LOCATION {_string(folder)}")


def _tables(spark, schemas: list[str]) -> list[dict]:
    """Every table (not view) of `schemas` with its Parquet folder, as the catalog knows it."""
    out = []
    for schema in schemas:
        for table in spark.catalog.listTables(schema):
            if table.tableType == "VIEW" or table.isTemporary:
                continue
            rows = spark.sql(f"DESCRIBE TABLE EXTENDED {_quote(schema)}.{_quote(table.name)}").collect()
            info = {r[0]: r[1] for r in rows}
            location = info.get("Location", "")
            if location.startswith("file:"):
                location = location[len("file:") :]
            out.append(
                {
                    "schema": schema,
                    "table": table.name,
                    "location": location,
                    "format": (info.get("Provider") or "parquet").lower(),
                }
            )
    return out


def main(argv: list[str]) -> int:
    """`python -m northstar.spark SPEC DBT_ARGS`: one Spark session for the landing tables
    and every dbt command of a build (the in-memory catalog lives as long as the process)."""
    spec = json.loads(Path(argv[0]).read_text())
    commands: list[list[str]] = json.loads(argv[1])
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spec["config"].items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if spec.get("landing"):
        _register_landing(spark, spec["landing_schema"], spec["landing"])
    for table in spec.get("tables") or []:  # a second process of the build: what the first wrote
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {_quote(table['schema'])}")
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS {_quote(table['schema'])}.{_quote(table['table'])} "
            f"USING {table.get('format') or 'parquet'} LOCATION {_string(table['location'])}"
        )
    if spec.get("staged"):
        _register_landing(spark, spec["staged_schema"], spec["staged"])
    if spec.get("create"):
        try:
            created = _create_tables(spark, spec["create"])
        except Exception as exc:  # the build reports it and fails
            print(f"creating an engine table failed: {str(exc).strip().splitlines()[0]}", flush=True)
            return CREATE_FAILED
        Path(spec["created_file"]).write_text(json.dumps(created, indent=2))
    from dbt.cli.main import dbtRunner

    runner = dbtRunner()
    for number, command in enumerate(commands, start=1):
        if not runner.invoke(command).success:
            return number  # which command failed: 1 the build, 2 the docs
    suffix = spec["suffix"]
    schemas = [d.name for d in spark.catalog.listDatabases() if d.name.endswith("__" + suffix)]
    Path(spec["tables_file"]).write_text(json.dumps(_tables(spark, sorted(schemas)), indent=2))
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # without waiting on the JVM's non-daemon threads
