"""Engine-computed tables in a DuckDB build: dbt builds everything but the models that take
them, the engine writes them into the new (unpublished) warehouse with its own SQL, then dbt
builds those models (and what depends on them) with their contracts and tests.

So `fct_metric_values_daily`, which the anomaly check, scorecards and alerts read, holds the
watched metrics exactly as `/v1/query` answers them, from the one definition.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from metrics.errors import BuildFailed

#: Where the engine writes; the dbt project declares it as the source `engine_tables`.
SCHEMA = "engine_tables"
TABLE = "metric_values_daily"
#: The dbt models that read engine tables; they and their descendants build in phase two.
READERS = "fct_metric_values_daily+"
WAREHOUSE_FILE = "warehouse.duckdb"


def build_in_phases(directory: Path, args: list[str], env: dict[str, str], progress, run_dbt,
                    failure_message) -> dict:
    """Phase one: `dbt build` without the readers; then the engine tables; phase two: the
    readers. `run_results.json` ends up holding both phases' results."""
    code, output = run_dbt(["build", *args, "--exclude", READERS], env, progress)
    if code != 0:
        raise BuildFailed(failure_message(directory, output), build_id=directory.name)
    first = json.loads((directory / "run_results.json").read_text())
    written = write_metric_values(directory / WAREHOUSE_FILE)
    code, output = run_dbt(["build", *args, "--select", READERS], env, None)
    if code != 0:
        raise BuildFailed(failure_message(directory, output), build_id=directory.name)
    second = json.loads((directory / "run_results.json").read_text())
    second["results"] = first.get("results", []) + second.get("results", [])
    second["elapsed_time"] = first.get("elapsed_time", 0) + second.get("elapsed_time", 0)
    (directory / "run_results.json").write_text(json.dumps(second))
    return written


def write_metric_values(warehouse_file: Path) -> dict:
    """`engine_tables.metric_values_daily` from the engine's statement (a failure here fails
    the build: the marts that read it would be empty or stale)."""
    import duckdb

    from metrics.engine import MetricsEngine
    from metrics.sql.metric_values import metric_values_daily_sql

    started = time.perf_counter()
    engine = MetricsEngine.open(warehouse_file)
    try:
        rendered = metric_values_daily_sql(engine)
    finally:
        engine.close()
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
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 2)}
