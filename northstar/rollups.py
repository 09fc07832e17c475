"""`northstar build` materializes the project's rollups (saved queries with table exports or
`meta.rollup: true`, see metrics/rollups.py) into the new, unpublished DuckDB warehouse with
the engine's own SQL for each saved query."""

from __future__ import annotations

import json
import time
from pathlib import Path

from metrics.errors import BuildFailed
from metrics.rollups import LAYOUT, declared_rollups


def write_rollups(warehouse_file: Path) -> dict:
    """Each rollup's table, row count and seconds; a failure fails the build (a declared
    rollup that is missing would be a silent gap)."""
    import duckdb

    from metrics.engine import MetricsEngine
    from metrics.query.request import MetricQuery
    from metrics.sql.rollups import stored

    directory = warehouse_file.parent
    semantic_file = directory / "semantic_manifest.json"
    if not semantic_file.exists():  # a dbt project without a semantic layer declares none
        return {}
    semantic = json.loads(semantic_file.read_text())
    manifest_file = directory / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else None
    try:
        rollups = declared_rollups(semantic, manifest)
    except ValueError as exc:
        raise BuildFailed(str(exc)) from exc
    if not rollups:
        return {}
    engine = MetricsEngine.open(warehouse_file)
    try:
        statements = {}
        for rollup in rollups:
            saved = engine.saved_query(rollup.saved_query)
            query = MetricQuery(metrics=tuple(saved.metrics), group_by=tuple(saved.group_by),
                                where_sql=tuple(saved.where))
            statements[rollup] = stored(engine.renderer, engine.plan(query))
    finally:
        engine.close()
    written = {}
    con = duckdb.connect(str(warehouse_file))
    try:
        con.execute("SET enable_progress_bar = false")
        for rollup, rendered in statements.items():
            started = time.perf_counter()
            table = f'"{rollup.schema}"."{rollup.table}"'
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{rollup.schema}"')
            con.execute(f"CREATE OR REPLACE TABLE {table} AS {rendered.sql}", rendered.params)
            rows = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            written[rollup.saved_query] = {"table": f"{rollup.schema}.{rollup.table}", "rows": rows,
                                           "exported": rollup.exported, "layout": LAYOUT,
                                           "seconds": round(time.perf_counter() - started, 3)}
    except duckdb.Error as exc:
        raise BuildFailed(f"materializing rollups failed: {exc}") from exc
    finally:
        con.close()
    return written
