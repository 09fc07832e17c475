"""Building into PostgreSQL: the load step, the dbt target, per-build schemas and publishing.

PostgreSQL cannot swap a file, so each build writes its own schemas, named after the build
(`landing__<b>`, `staging__<b>`, `marts__<b>`, `northstar__<b>` for build suffix `<b>`):

1. load: every landing table (located and checked by the landing contract) is read by DuckDB
   with the same readers and casts the DuckDB build uses, written as CSV and streamed into a
   typed raw table `landing__<b>.<table>` with `COPY ... FROM STDIN`;
2. `dbt build` (dbt-postgres) reads those raw tables as its sources and writes its models
   into the build's schemas (the project's `generate_schema_name` appends the suffix);
3. publish: the build directory gets a `warehouse.postgres` pointer file and the served path
   (a symlink) is re-pointed at it, exactly as for a DuckDB file; the published build is also
   recorded in `northstar_meta.published` for readers outside northstar. Readers switch on
   their next request; a failed build drops its own schemas and never touches served ones.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
from sqlglot import exp

from northstar.errors import BuildFailed
from northstar.landing import CONTRACT, LandingTable

POINTER_FILE = "warehouse.postgres"
LANDING = "landing"
# The schemas a build writes: the raw landing tables, dbt's target schema (models without a
# custom schema) and the project's custom schemas.
BUILD_SCHEMA_PREFIXES = ("landing", "northstar", "staging", "marts")
META_SCHEMA = "northstar_meta"

# Contract types (DuckDB names) -> PostgreSQL column types of the raw landing tables.
_PG_TYPES = {
    "varchar": "text",
    "timestamp": "timestamp",
    "boolean": "boolean",
    "integer": "integer",
    "decimal(18,2)": "numeric(18,2)",
}
_COPY_CHUNK = 1 << 20


def schema_suffix(build_id: str) -> str:
    """The suffix of a build's schemas: the build id as a lower-case identifier."""
    return re.sub(r"[^a-z0-9_]", "_", build_id.lower())


def build_schema(prefix: str, build_id: str) -> str:
    return f"{prefix}__{schema_suffix(build_id)}"


def dsn_parts(dsn: str) -> dict:
    """host, port, user, password and dbname of a `postgresql://user:pass@host:port/db` DSN."""
    url = urlsplit(dsn)
    if url.scheme not in ("postgresql", "postgres"):
        raise BuildFailed(
            f"NORTHSTAR_POSTGRES_DSN must look like postgresql://user:pass@host:port/db (got scheme {url.scheme!r})."
        )
    dbname = unquote(url.path.lstrip("/"))
    if not url.hostname or not dbname:
        raise BuildFailed(
            "NORTHSTAR_POSTGRES_DSN must name a host and a database: postgresql://user:pass@host:port/db."
        )
    return {
        "host": url.hostname,
        "port": url.port or 5432,
        "user": unquote(url.username or ""),
        "password": unquote(url.password or ""),
        "dbname": dbname,
    }


def connect(dsn: str):
    import psycopg

    try:
        return psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        raise BuildFailed(f"cannot connect to PostgreSQL ({_first_line(exc)}); check NORTHSTAR_POSTGRES_DSN.") from exc


def write_rows(dsn: str, schema: str, tables) -> None:
    """Create (or replace) each `(table, [(column, type)], rows)` in `schema` and fill it: the
    rows northstar computes during a build (experiment readouts) for dbt models to read."""
    with connect(dsn) as con, con.transaction():
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
        for table, columns, rows in tables:
            name = f"{_ident(schema)}.{_ident(table)}"
            con.execute(f"DROP TABLE IF EXISTS {name}")
            con.execute(f"CREATE TABLE {name} (" + ", ".join(f"{_ident(c)} {t}" for c, t in columns) + ")")
            if rows:
                with con.cursor() as cur:
                    cur.executemany(f"INSERT INTO {name} VALUES (" + ", ".join("%s" for _ in columns) + ")", rows)


def create_table_as(dsn: str, schema: str, table: str, sql: str, params: dict | None = None) -> int:
    """`schema.table` (schema created if missing, table replaced) as the rows of `sql`, the
    engine's own statement for an engine-computed table or a rollup; returns its row count."""
    import psycopg

    name = f"{_ident(schema)}.{_ident(table)}"
    try:
        with connect(dsn) as con, con.transaction():
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
            con.execute(f"DROP TABLE IF EXISTS {name}")
            # Without parameters the text goes as is (a literal % in generated SQL stays one).
            statement = f"CREATE TABLE {name} AS {sql}"
            con.execute(statement, params) if params else con.execute(statement)
            return con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    except psycopg.Error as exc:
        raise BuildFailed(_first_line(exc)) from exc


def column_names(dsn: str, sql: str, params: tuple) -> list[str]:
    """The first column of a catalog query's rows (e.g. a table's integer columns)."""
    import psycopg

    try:
        with connect(dsn) as con:
            return [row[0] for row in con.execute(sql, params).fetchall()]
    except psycopg.Error as exc:
        raise BuildFailed(_first_line(exc)) from exc


def sample_rows(dsn: str, compiled_sql: str, limit: int = 5) -> tuple[list[str], list[tuple]]:
    """A few rows of a failed dbt test's own query (the build's schemas still exist when it is
    described); nothing when it cannot run, since the failure is reported either way."""
    import psycopg

    try:
        with psycopg.connect(dsn, autocommit=True) as con:
            cursor = con.execute(f"SELECT * FROM ({compiled_sql}) AS failures LIMIT {int(limit)}")
            return [d.name for d in cursor.description or ()], cursor.fetchall()
    except psycopg.Error:
        return [], []


def register_build(dsn: str, build_id: str, builds_dir: Path) -> None:
    """Note a build's schemas as this data directory's (before any is created), so pruning
    only ever drops schemas a build of the same data directory wrote: several data
    directories (or people) may share one database."""
    with connect(dsn) as con, con.transaction():
        _meta_tables(con)
        con.execute(
            f"INSERT INTO {META_SCHEMA}.builds VALUES (%s, %s, %s, now())",
            (build_id, schema_suffix(build_id), str(Path(builds_dir).resolve())),
        )


def _meta_tables(con) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {META_SCHEMA}.builds (build_id text PRIMARY KEY, "
        "schema_suffix text NOT NULL, builds_dir text NOT NULL, created_at timestamptz NOT NULL)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {META_SCHEMA}.published (builds_dir text PRIMARY KEY, "
        "build_id text NOT NULL, schema_suffix text NOT NULL, published_at timestamptz NOT NULL)"
    )


def load_landing(dsn: str, tables: dict[str, LandingTable], schema: str) -> dict[str, int]:
    """Load every landing table into `schema` (created, must not exist) with COPY; returns the
    row count per table. The rows are the contract's columns, typed as the contract says."""
    counts: dict[str, int] = {}
    reader = duckdb.connect()
    try:
        reader.execute("SET TimeZone = 'UTC'")  # timestamptz landing columns -> naive UTC
        with connect(dsn) as con, tempfile.TemporaryDirectory(prefix="northstar-load-") as scratch:
            con.execute(f"CREATE SCHEMA {_ident(schema)}")
            for name, table in tables.items():
                counts[name] = _load_table(reader, con, table, schema, Path(scratch) / f"{name}.csv")
    finally:
        reader.close()
    return counts


def _load_table(reader: duckdb.DuckDBPyConnection, con, table: LandingTable, schema: str, scratch: Path) -> int:
    columns = CONTRACT[table.name]
    typed = [
        exp.cast(exp.column(c, quoted=True), exp.DataType.build(t, dialect="duckdb")).as_(c, quoted=True)
        for c, t in columns.items()
    ]
    select = exp.select(*typed).from_(table.reader())
    reader.execute(f"COPY ({select.sql('duckdb')}) TO '{_duck_string(str(scratch))}' (FORMAT csv, HEADER false)")
    target = f"{_ident(schema)}.{_ident(table.name)}"
    definition = ", ".join(f"{_ident(c)} {_PG_TYPES[t]}" for c, t in columns.items())
    with con.transaction():
        con.execute(f"CREATE TABLE {target} ({definition})")
        # Unquoted empty fields are NULL, quoted ones ("") empty strings: as DuckDB wrote them.
        with con.cursor().copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy, open(scratch, "rb") as f:
            while chunk := f.read(_COPY_CHUNK):
                copy.write(chunk)
    scratch.unlink()
    return con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]


def profile_target(dsn: str, build_id: str, threads: int = 2) -> tuple[dict, dict[str, str]]:
    """The dbt-postgres target of a build, and the environment it reads its password from
    (so the password is never written into the build directory)."""
    parts = dsn_parts(dsn)
    target = {
        "type": "postgres",
        "host": parts["host"],
        "port": parts["port"],
        "user": parts["user"],
        "password": "{{ env_var('NORTHSTAR_DBT_POSTGRES_PASSWORD', '') }}",
        "dbname": parts["dbname"],
        "schema": build_schema("northstar", build_id),
        "threads": threads,
    }
    return target, {"NORTHSTAR_DBT_POSTGRES_PASSWORD": parts["password"]}


def dbt_vars(build_id: str) -> dict[str, str]:
    """The project vars that point dbt's sources and schemas at a build's schemas."""
    return {"landing_schema": build_schema(LANDING, build_id), "schema_suffix": schema_suffix(build_id)}


def drop_build(dsn: str, build_id: str) -> None:
    """Drop every schema of one build (a failed one, or one pruned)."""
    with contextlib.suppress(BuildFailed), connect(dsn) as con:
        _drop_suffix(con, schema_suffix(build_id))


def _drop_suffix(con, suffix: str) -> None:
    # Every schema of the build: the fixed ones and its rollups' (named by the project).
    ending = "__" + suffix
    named = [
        row[0]
        for row in con.execute(
            "SELECT nspname FROM pg_namespace WHERE right(nspname, %s) = %s", (len(ending), ending)
        ).fetchall()
    ]
    for schema in sorted({*(f"{prefix}{ending}" for prefix in BUILD_SCHEMA_PREFIXES), *named}):
        con.execute(f"DROP SCHEMA IF EXISTS {_ident(schema)} CASCADE")


def write_pointer(directory: Path, build_id: str) -> Path:
    """The file the served path points at for a PostgreSQL build (no secrets in it)."""
    pointer = directory / POINTER_FILE
    pointer.write_text(
        json.dumps(
            {
                "type": "postgres",
                "build_id": build_id,
                "schemas": {p: build_schema(p, build_id) for p in BUILD_SCHEMA_PREFIXES},
            },
            indent=2,
        )
    )
    return pointer


def record_published(dsn: str, build_id: str, builds_dir: Path) -> None:
    """`northstar_meta.published`: the build each data directory serves, for other readers."""
    with connect(dsn) as con, con.transaction():
        _meta_tables(con)
        con.execute(
            f"INSERT INTO {META_SCHEMA}.published VALUES (%s, %s, %s, now()) "
            "ON CONFLICT (builds_dir) DO UPDATE SET build_id = excluded.build_id, "
            "schema_suffix = excluded.schema_suffix, published_at = excluded.published_at",
            (str(Path(builds_dir).resolve()), build_id, schema_suffix(build_id)),
        )


def prune_schemas(dsn: str, builds_dir: Path) -> list[str]:
    """Drop the schemas of this data directory's builds whose directory is gone (pruned, or
    left by a killed build) or failed; a build directory that exists (finished or still
    running) keeps its schemas, and builds of other data directories are not looked at."""
    builds_dir = Path(builds_dir).resolve()
    alive = {d.name for d in builds_dir.iterdir() if d.is_dir() and not d.name.startswith("failed-")}
    dropped = []
    with connect(dsn) as con:
        _meta_tables(con)
        rows = con.execute(
            f"SELECT build_id FROM {META_SCHEMA}.builds WHERE builds_dir = %s", (str(builds_dir),)
        ).fetchall()
        for (build_id,) in rows:
            if build_id in alive:
                continue
            with con.transaction():
                _drop_suffix(con, schema_suffix(build_id))
                con.execute(f"DELETE FROM {META_SCHEMA}.builds WHERE build_id = %s", (build_id,))
            dropped.append(build_id)
    return dropped


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("postgres")


def _duck_string(text: str) -> str:
    return text.replace("'", "''")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
