"""`northstar build` materializes the project's rollups (saved queries with table exports or
`meta.rollup: true`, see metrics/rollups.py) into the new, unpublished warehouse with the
engine's own SQL for each saved query: tables of the DuckDB file; on PostgreSQL, tables in
schemas of the build (`<schema>__<build suffix>`, dropped with it); on Spark, tables the
build's second Spark process creates (see northstar/build.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from metrics.errors import BuildFailed
from metrics.rollups import Rollup, declared_rollups


def declared(directory: Path) -> list[Rollup]:
    """The rollups the build's project declares (none without a semantic layer)."""
    semantic_file = directory / "semantic_manifest.json"
    if not semantic_file.exists():  # a dbt project without a semantic layer declares none
        return []
    semantic = json.loads(semantic_file.read_text())
    manifest_file = directory / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else None
    try:
        return declared_rollups(semantic, manifest)
    except ValueError as exc:
        raise BuildFailed(str(exc)) from exc


def statements(warehouse: Path, postgres_dsn: str | None = None) -> dict:
    """Each declared rollup's statement: its saved query as `/v1/query` would run it, over
    the new build (`warehouse`: its DuckDB file or warehouse pointer)."""
    from metrics.engine import MetricsEngine
    from metrics.query.request import MetricQuery

    rollups = declared(Path(warehouse).parent)
    if not rollups:
        return {}
    engine = MetricsEngine.open(warehouse, postgres_dsn=postgres_dsn, check=False)
    try:
        out = {}
        for rollup in rollups:
            saved = engine.saved_query(rollup.saved_query)
            query = MetricQuery(metrics=tuple(saved.metrics), group_by=tuple(saved.group_by),
                                where_sql=tuple(saved.where))
            out[rollup] = engine.renderer.render(engine.plan(query))
        return out
    finally:
        engine.close()


def _entry(rollup: Rollup, schema: str, rows: int, started: float) -> dict:
    return {"table": f"{schema}.{rollup.table}", "rows": rows, "exported": rollup.exported,
            "seconds": round(time.perf_counter() - started, 3)}


def write_rollups(warehouse_file: Path) -> dict:
    """Each rollup's table, row count and seconds; a failure fails the build (a declared
    rollup that is missing would be a silent gap)."""
    import duckdb

    rendered_by_rollup = statements(warehouse_file)
    written = {}
    con = duckdb.connect(str(warehouse_file))
    try:
        con.execute("SET enable_progress_bar = false")
        for rollup, rendered in rendered_by_rollup.items():
            started = time.perf_counter()
            table = f'"{rollup.schema}"."{rollup.table}"'
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{rollup.schema}"')
            con.execute(f"CREATE OR REPLACE TABLE {table} AS {rendered.sql}", rendered.params)
            rows = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            written[rollup.saved_query] = _entry(rollup, rollup.schema, rows, started)
    except duckdb.Error as exc:
        raise BuildFailed(f"materializing rollups failed: {exc}") from exc
    finally:
        con.close()
    return written


def write_rollups_postgres(pointer: Path, dsn: str, build_id: str) -> dict:
    """The same in a PostgreSQL build: each rollup in the build's `<schema>__<suffix>`."""
    from northstar import postgres

    written = {}
    for rollup, rendered in statements(pointer, dsn).items():
        started = time.perf_counter()
        schema = postgres.build_schema(rollup.schema, build_id)
        try:
            rows = postgres.create_table_as(dsn, schema, rollup.table, rendered.sql, rendered.params)
        except BuildFailed as exc:
            raise BuildFailed(f"materializing rollup {schema}.{rollup.table} failed: {exc.message}") from exc
        written[rollup.saved_query] = _entry(rollup, schema, rows, started)
    return written
