"""`northstar build` materializes the project's rollups (saved queries with table exports or
`meta.rollup: true`, see metrics/rollups.py) into the new, unpublished warehouse with the
engine's own SQL for each saved query: tables of the DuckDB file; on PostgreSQL, tables in
schemas of the build (`<schema>__<build suffix>`, dropped with it); on Spark, tables the
build's second Spark process creates (see northstar/targets.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from metrics.errors import MetricsError
from metrics.rollups import LAYOUT, Rollup, declared_rollups
from northstar.errors import BuildFailed


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
    from metrics.sql.rollups import stored

    rollups = declared(Path(warehouse).parent)
    if not rollups:
        return {}
    engine = MetricsEngine.open(warehouse, postgres_dsn=postgres_dsn, check=False)
    try:
        out = {}
        for rollup in rollups:
            saved = engine.saved_query(rollup.saved_query)
            query = MetricQuery(
                metrics=tuple(saved.metrics), group_by=tuple(saved.group_by), where_sql=tuple(saved.where)
            )
            out[rollup] = stored(engine.renderer, engine.plan(query))
        return out
    finally:
        engine.close()


#: Integer column types (DuckDB's and PostgreSQL's names in information_schema).
INTEGER_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
)
INTEGER_COLUMNS_SQL = (
    "SELECT column_name FROM information_schema.columns WHERE table_schema = {schema} "
    "AND table_name = {table} AND upper(data_type) IN ("
    + ", ".join(f"'{t}'" for t in INTEGER_TYPES)
    + ") ORDER BY ordinal_position"
)


def _entry(rollup: Rollup, schema: str, rows: int, started: float, integer_columns: list[str]) -> dict:
    """build.json's record of a rollup: `name` is its public `schema.alias`, `table` where this
    build wrote it (PostgreSQL and Spark builds: the build's own schema). `integer_columns`
    lets a re-aggregated sum keep the integer type of the semantic models' answer
    (PostgreSQL's SUM of a bigint is a numeric)."""
    return {
        "name": rollup.public_name,
        "table": f"{schema}.{rollup.table}",
        "rows": rows,
        "exported": rollup.exported,
        "layout": LAYOUT,
        "integer_columns": integer_columns,
        "seconds": round(time.perf_counter() - started, 3),
    }


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
            integers = [
                r[0]
                for r in con.execute(
                    INTEGER_COLUMNS_SQL.format(schema="?", table="?"), [rollup.schema, rollup.table]
                ).fetchall()
            ]
            written[rollup.saved_query] = _entry(rollup, rollup.schema, rows, started, integers)
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
            integers = postgres.column_names(
                dsn, INTEGER_COLUMNS_SQL.format(schema="%s", table="%s"), (schema, rollup.table)
            )
        except BuildFailed as exc:
            raise BuildFailed(f"materializing rollup {schema}.{rollup.table} failed: {exc.message}") from exc
        written[rollup.saved_query] = _entry(rollup, schema, rows, started, integers)
    return written


def logged_queries(audit_log: Path, engine) -> tuple[list, int]:
    """The metric queries the service answered (`/v1/query`, status 200) from the audit log
    and its rotated files, with their elapsed milliseconds; and how many entries could not be
    read as one."""
    from api.schemas.query import MetricQueryRequest

    files = sorted(audit_log.parent.glob(audit_log.name + ".*"), reverse=True) + [audit_log]
    queries, unreadable = [], 0
    for file in files:
        if not file.is_file():
            continue
        for line in file.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                unreadable += 1
                continue
            if (
                entry.get("path") != "/v1/query"
                or entry.get("status") != 200
                or not isinstance(entry.get("body"), dict)
            ):
                continue
            try:
                body = MetricQueryRequest(**entry["body"])
                if body.saved_query:
                    saved = engine.saved_query(body.saved_query)
                    body = body.model_copy(
                        update={
                            "metrics": body.metrics or list(saved.metrics),
                            "group_by": body.group_by or list(saved.group_by),
                            "where": list(saved.where) + list(body.where),
                            "saved_query": None,
                        }
                    )
                queries.append((body.to_query(), float(entry.get("ms") or 0)))
            except (ValueError, MetricsError):  # a body this build cannot read (a renamed metric, a bad field)
                unreadable += 1
    return queries, unreadable


def suggestions_yaml(suggestions, skipped: dict[str, int], total: int) -> str:
    """The suggestions as saved-query YAML to paste into the dbt project, ranked, each
    preceded by a comment with what it would answer."""
    import yaml

    lines = [f"# {total} logged metric queries; suggested rollups, by the time they would save:"]
    for reason, count in sorted(skipped.items()):
        lines.append(f"#   left out: {count} {reason}")
    if not suggestions:
        lines.append("# no rollup to suggest")
        return "\n".join(lines) + "\n"
    lines.append("saved_queries:")
    for rank, suggestion in enumerate(suggestions, 1):
        lines.append(
            f"  # {rank}. answers {suggestion.queries} queries that took {suggestion.elapsed_ms:.0f} ms; "
            f"about {suggestion.rows} rows"
        )
        text = yaml.safe_dump([suggestion.saved_query()], sort_keys=False, width=100)
        lines += ["  " + line for line in text.splitlines()]
    return "\n".join(lines) + "\n"
