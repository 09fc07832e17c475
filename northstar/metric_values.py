"""Engine-computed tables in a build: dbt builds everything but the models that take them,
the engine writes them into the new (unpublished) warehouse with its own SQL, then dbt builds
those models (and what depends on them) with their contracts and tests. The same on every
warehouse: a table of the DuckDB file, a table in the build's own PostgreSQL schema, or (on
Spark) a table the build's second Spark process creates (see northstar/targets.py).

So `fct_metric_values_daily`, which the anomaly check, scorecards and alerts read, holds the
watched metrics exactly as `/v1/query` answers them, from the one definition.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from northstar.errors import BuildFailed

#: Where the engine writes in a DuckDB build (PostgreSQL and Spark: the build's `northstar`
#: schema); the model reads the schema the `metric_values_schema` var names.
SCHEMA = "engine_tables"
TABLE = "metric_values_daily"
VAR = "metric_values_schema"
#: The dbt models that read engine tables; they and their descendants build in phase two.
READERS = "fct_metric_values_daily+"
WAREHOUSE_FILE = "warehouse.duckdb"


def build_in_phases(
    directory: Path, args: list[str], env: dict[str, str], progress, run_dbt, failure_message, write
) -> dict:
    """Phase one: `dbt build` without the readers; then `write()` stages the engine tables;
    phase two: the readers. `run_results.json` ends up holding both phases' results."""
    code, output = run_dbt(["build", *args, "--exclude", READERS], env, progress)
    if code != 0:
        raise BuildFailed(failure_message(directory, output), build_id=directory.name)
    first = json.loads((directory / "run_results.json").read_text())
    written = write()
    code, output = run_dbt(["build", *args, "--select", READERS], env, None)
    if code != 0:
        raise BuildFailed(failure_message(directory, output), build_id=directory.name)
    second = json.loads((directory / "run_results.json").read_text())
    second["results"] = first.get("results", []) + second.get("results", [])
    second["elapsed_time"] = first.get("elapsed_time", 0) + second.get("elapsed_time", 0)
    (directory / "run_results.json").write_text(json.dumps(second))
    return written


def metric_values_statement(warehouse: Path, postgres_dsn: str | None = None):
    """The engine's statement for the table, over the new build (not dry-run: the build
    checks every metric once it is complete)."""
    from metrics.engine import MetricsEngine
    from metrics.sql.metric_values import metric_values_daily_sql

    engine = MetricsEngine.open(warehouse, postgres_dsn=postgres_dsn, check=False)
    try:
        return metric_values_daily_sql(engine)
    finally:
        engine.close()


def write_metric_values(warehouse_file: Path) -> dict:
    """`engine_tables.metric_values_daily` in a DuckDB build from the engine's statement (a
    failure here fails the build: the marts that read it would be empty or stale)."""
    import duckdb

    started = time.perf_counter()
    rendered = metric_values_statement(warehouse_file)
    con = duckdb.connect(str(warehouse_file))
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
        con.execute(f'CREATE OR REPLACE TABLE "{SCHEMA}"."{TABLE}" AS {rendered.sql}', rendered.params)
        rows = con.execute(f'SELECT COUNT(*) FROM "{SCHEMA}"."{TABLE}"').fetchone()[0]
    except duckdb.Error as exc:
        raise BuildFailed(f"writing {SCHEMA}.{TABLE} from the semantic layer failed: {exc}") from exc
    finally:
        con.close()
    return {"table": f"{SCHEMA}.{TABLE}", "rows": rows, "seconds": round(time.perf_counter() - started, 2)}


def write_metric_values_postgres(pointer: Path, dsn: str, schema: str) -> dict:
    """`<schema>.metric_values_daily` in a PostgreSQL build's own schema, by the engine's
    statement run in the warehouse."""
    from northstar import postgres

    started = time.perf_counter()
    rendered = metric_values_statement(pointer, dsn)
    try:
        rows = postgres.create_table_as(dsn, schema, TABLE, rendered.sql, rendered.params)
    except BuildFailed as exc:
        raise BuildFailed(f"writing {schema}.{TABLE} from the semantic layer failed: {exc.message}") from exc
    return {"table": f"{schema}.{TABLE}", "rows": rows, "seconds": round(time.perf_counter() - started, 2)}
