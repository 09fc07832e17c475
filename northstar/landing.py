"""The landing contract: which tables and columns a landing directory must hold, how each
table is read, and a pre-flight check that names the table, column and offending rows.

Each table is `<table>.parquet`, `<table>.csv` or a folder `<table>/` of Parquet files.
Parquet is read with its own types; CSV is read all-varchar and cast by the dbt staging
models, so a bad value is caught here, before dbt starts, with a readable message.

The pre-flight refuses exactly what the contract forbids, and nothing else: a missing table or
column, a value that does not cast, a missing key or required value, a duplicate key (exact
duplicate event rows are allowed), a broken reference the contract names, a category outside a
list it gives, a score outside its range. Whatever else looks odd (event order, plausible
ranges) is a warn-severity dbt test: reported, never refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlglot import exp

from northstar.errors import LandingContractViolation

# table -> column -> type the staging models cast it to (DuckDB type names).
CONTRACT: dict[str, dict[str, str]] = {
    "accounts": {
        "account_id": "varchar",
        "account_name": "varchar",
        "plan": "varchar",
        "industry": "varchar",
        "region": "varchar",
        "created_at": "timestamp",
    },
    "users": {
        "user_id": "varchar",
        "account_id": "varchar",
        "signup_at": "timestamp",
        "country": "varchar",
        "is_internal": "boolean",
    },
    "events": {
        "event_id": "varchar",
        "user_id": "varchar",
        "session_id": "varchar",
        "event_name": "varchar",
        "event_ts": "timestamp",
        "platform": "varchar",
        "app_version": "varchar",
        "feature_key": "varchar",
        "revenue_usd": "decimal(18,2)",
    },
    "releases": {"platform": "varchar", "app_version": "varchar", "released_at": "timestamp"},
    "launches": {
        "launch_id": "varchar",
        "feature_key": "varchar",
        "launch_name": "varchar",
        "tier": "varchar",
        "owner_team": "varchar",
        "launched_at": "timestamp",
    },
    "experiments": {
        "experiment_id": "varchar",
        "experiment_name": "varchar",
        "feature_key": "varchar",
        "hypothesis": "varchar",
        "control_variant": "varchar",
        "started_at": "timestamp",
        "ended_at": "timestamp",
    },
    "experiment_assignments": {
        "experiment_id": "varchar",
        "user_id": "varchar",
        "variant": "varchar",
        "assigned_at": "timestamp",
    },
    "errors": {
        "error_id": "varchar",
        "user_id": "varchar",
        "session_id": "varchar",
        "occurred_at": "timestamp",
        "platform": "varchar",
        "app_version": "varchar",
        "severity": "varchar",
        "error_type": "varchar",
    },
    "incidents": {
        "incident_id": "varchar",
        "severity": "varchar",
        "opened_at": "timestamp",
        "resolved_at": "timestamp",
        "feature_key": "varchar",
        "launch_id": "varchar",
    },
    "support_tickets": {
        "ticket_id": "varchar",
        "account_id": "varchar",
        "user_id": "varchar",
        "created_at": "timestamp",
        "resolved_at": "timestamp",
        "category": "varchar",
        "priority": "varchar",
        "feature_key": "varchar",
    },
    "feedback": {
        "feedback_id": "varchar",
        "user_id": "varchar",
        "submitted_at": "timestamp",
        "channel": "varchar",
        "nps_score": "integer",
        "csat_score": "integer",
        "comment": "varchar",
        "feature_key": "varchar",
    },
}

SAMPLE_ROWS = 5

# table -> its key columns (events: exact duplicate rows are one event; rows that differ are not).
KEYS: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id",),
    "users": ("user_id",),
    "events": ("event_id",),
    "releases": ("platform", "app_version"),
    "launches": ("launch_id",),
    "experiments": ("experiment_id",),
    "errors": ("error_id",),
    "incidents": ("incident_id",),
    "support_tickets": ("ticket_id",),
    "feedback": ("feedback_id",),
}
# Values a row cannot be placed without (the contract does not mark them nullable and a metric,
# a slice or a reference reads them); keys are required too.
REQUIRED: dict[str, tuple[str, ...]] = {
    "accounts": ("plan", "region", "created_at"),
    "users": ("account_id", "signup_at", "is_internal"),
    "events": ("user_id", "event_ts"),
    "releases": ("released_at",),
    "launches": ("launched_at",),
    "experiments": ("control_variant", "started_at"),
    "experiment_assignments": ("experiment_id", "user_id", "variant", "assigned_at"),
    "errors": ("occurred_at", "severity"),
    "incidents": ("severity", "opened_at"),
    "support_tickets": ("account_id", "created_at"),
    "feedback": ("user_id", "submitted_at"),
}
# (table, column) -> (table, column) it references, as the contract names them.
REFERENCES: dict[tuple[str, str], tuple[str, str]] = {
    ("users", "account_id"): ("accounts", "account_id"),
    ("events", "user_id"): ("users", "user_id"),
    ("experiment_assignments", "experiment_id"): ("experiments", "experiment_id"),
}
# (table, column) -> the values the contract lists.
CATEGORIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("accounts", "plan"): ("free", "pro", "enterprise"),
    ("accounts", "region"): ("amer", "emea", "apac"),
    ("events", "platform"): ("web", "ios", "android"),
    ("launches", "tier"): ("major", "minor", "experiment"),
    ("errors", "severity"): ("crash", "error", "warning"),
    ("incidents", "severity"): ("sev1", "sev2", "sev3", "sev4"),
    ("support_tickets", "priority"): ("low", "normal", "high", "urgent"),
    ("feedback", "channel"): ("in_app", "survey", "email"),
}
# (table, column) -> inclusive range of a score.
RANGES: dict[tuple[str, str], tuple[int, int]] = {
    ("feedback", "nps_score"): (0, 10),
    ("feedback", "csat_score"): (1, 5),
}


@dataclass(frozen=True)
class LandingTable:
    name: str
    path: Path
    format: str  # parquet | csv | parquet_folder

    def reader(self) -> exp.Expression:
        """The DuckDB table function that reads this table, as a sqlglot expression."""
        if self.format == "csv":
            return exp.func(
                "read_csv",
                exp.Literal.string(str(self.path)),
                exp.EQ(this=exp.var("header"), expression=exp.true()),
                exp.EQ(this=exp.var("all_varchar"), expression=exp.true()),
            )
        location = str(self.path / "*.parquet") if self.format == "parquet_folder" else str(self.path)
        return exp.func(
            "read_parquet", exp.Literal.string(location), exp.EQ(this=exp.var("union_by_name"), expression=exp.true())
        )

    def reader_sql(self) -> str:
        return self.reader().sql(dialect="duckdb")


def locate(landing_dir: Path) -> dict[str, LandingTable]:
    """Find every contract table in a landing directory.

    Raises:
        LandingContractViolation: the directory or a table is missing, or a table is ambiguous.
    """
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        raise LandingContractViolation(f"landing directory {landing_dir} does not exist.")
    tables: dict[str, LandingTable] = {}
    missing = []
    for name in CONTRACT:
        candidates = []
        if (landing_dir / f"{name}.parquet").is_file():
            candidates.append(LandingTable(name, landing_dir / f"{name}.parquet", "parquet"))
        if (landing_dir / f"{name}.csv").is_file():
            candidates.append(LandingTable(name, landing_dir / f"{name}.csv", "csv"))
        folder = landing_dir / name
        if folder.is_dir():
            if not any(folder.glob("*.parquet")):
                raise LandingContractViolation(f"table {name}: folder {folder} holds no .parquet files.", table=name)
            candidates.append(LandingTable(name, folder, "parquet_folder"))
        if not candidates:
            missing.append(name)
        elif len(candidates) > 1:
            raise LandingContractViolation(
                f"table {name}: found {', '.join(str(c.path) for c in candidates)}; keep exactly one.", table=name
            )
        else:
            tables[name] = candidates[0]
    if missing:
        raise LandingContractViolation(
            f"landing directory {landing_dir} is missing table(s) {', '.join(missing)} "
            f"(expected <table>.parquet, <table>.csv or a folder <table>/ of Parquet files).",
            table=missing[0],
        )
    return tables


def check_contract(landing_dir: Path) -> dict[str, LandingTable]:
    """Check every table's columns and value types; return the located tables.

    Raises:
        LandingContractViolation: naming the table, the column and a sample of offending rows.
    """
    tables = locate(landing_dir)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for table in tables.values():
            _check_table(con, table)
        for table in tables.values():
            con.execute(f'CREATE TEMP VIEW "{table.name}" AS {_typed_select(table)}')
        for table in tables.values():
            _check_values(con, table.name)
    finally:
        con.close()
    return tables


def _typed(column: str, type_name: str) -> str:
    """The cast the staging models apply (timestamps through TIMESTAMPTZ, so offsets count)."""
    quoted = exp.to_identifier(column, quoted=True).sql("duckdb")
    if type_name == "timestamp":
        return f"CAST(CAST({quoted} AS TIMESTAMPTZ) AS TIMESTAMP)"
    return f"CAST({quoted} AS {type_name.upper()})"


def _typed_select(table: LandingTable) -> str:
    columns = ", ".join(
        f"{_typed(c, t)} AS {exp.to_identifier(c, quoted=True).sql('duckdb')}" for c, t in CONTRACT[table.name].items()
    )
    return f"SELECT {columns} FROM {table.reader_sql()}"


def _refuse(con: duckdb.DuckDBPyConnection, table: str, column: str, problem: str, sql: str) -> None:
    """Raise naming table, column and sample values when `sql` (its first column a sample
    value) returns rows."""
    rows = con.execute(f"{sql} LIMIT {SAMPLE_ROWS}").fetchall()
    if rows:
        sample = [r[0] for r in rows]
        raise LandingContractViolation(
            f"table {table}, column {column}: {problem}, e.g. {', '.join(repr(v) for v in sample)}.",
            table=table,
            column=column,
            sample=sample,
        )


def _check_values(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Keys, required values, references, categories and score ranges of one (typed) table."""
    q = lambda c: exp.to_identifier(c, quoted=True).sql("duckdb")  # noqa: E731
    keys = KEYS.get(name, ())
    for column in keys + REQUIRED.get(name, ()):
        if keys and column not in keys:  # name the rows by their key
            sample = f'SELECT {q(keys[0])} FROM "{name}" WHERE {q(column)} IS NULL'
            problem = "missing value (the contract does not allow null here) in the row(s) with key"
        else:  # by their row number in the file
            sample = (
                f'SELECT n FROM (SELECT row_number() OVER () AS n, {q(column)} AS v FROM "{name}") '
                f"WHERE v IS NULL ORDER BY n"
            )
            problem = f"missing {'key' if column in keys else 'value'} in row(s) number"
        _refuse(con, name, column, problem, sample)
    if keys:
        key = " || '|' || ".join(q(k) for k in keys) if len(keys) > 1 else q(keys[0])
        if name == "events":
            # the same event landing twice is one event; two different rows under one id are not
            everything = ", ".join(q(c) for c in CONTRACT[name])
            _refuse(
                con,
                name,
                keys[0],
                "duplicate key (rows that differ under the same key)",
                f'SELECT {key} FROM "{name}" GROUP BY {key} HAVING count(DISTINCT hash({everything})) > 1 ORDER BY 1',
            )
        else:
            _refuse(
                con,
                name,
                ", ".join(keys),
                "duplicate key",
                f'SELECT {key} FROM "{name}" GROUP BY {key} HAVING count(*) > 1 ORDER BY 1',
            )
    for (table, column), (parent, parent_column) in REFERENCES.items():
        if table == name:
            _refuse(
                con,
                name,
                column,
                f"value(s) not in {parent}.{parent_column}",
                f'SELECT DISTINCT c.{q(column)} FROM "{name}" AS c ANTI JOIN "{parent}" AS p '
                f"ON c.{q(column)} = p.{q(parent_column)} WHERE c.{q(column)} IS NOT NULL ORDER BY 1",
            )
    for (table, column), values in CATEGORIES.items():
        if table == name:
            listed = ", ".join(exp.Literal.string(v).sql("duckdb") for v in values)
            _refuse(
                con,
                name,
                column,
                f"value(s) outside {', '.join(values)}",
                f'SELECT DISTINCT {q(column)} FROM "{name}" WHERE {q(column)} NOT IN ({listed}) ORDER BY 1',
            )
    for (table, column), (low, high) in RANGES.items():
        if table == name:
            _refuse(
                con,
                name,
                column,
                f"score(s) outside {low}..{high}",
                f'SELECT DISTINCT {q(column)} FROM "{name}" WHERE {q(column)} NOT BETWEEN {low} AND {high} ORDER BY 1',
            )


def _check_table(con: duckdb.DuckDBPyConnection, table: LandingTable) -> None:
    files = sorted(table.path.glob("*.parquet")) if table.format == "parquet_folder" else [table.path]
    for empty in (f for f in files if f.stat().st_size == 0):
        # DuckDB would read an empty CSV as one unnamed column; say what is actually wrong.
        raise LandingContractViolation(
            f"table {table.name}: {empty} is empty (0 bytes); expected "
            f"{'a header row and data' if table.format == 'csv' else 'a Parquet file'}.",
            table=table.name,
        )
    reader = table.reader()
    try:
        described = con.execute(exp.Describe(this=exp.select("*").from_(reader)).sql("duckdb")).fetchall()
    except duckdb.Error as exc:
        raise LandingContractViolation(
            f"table {table.name}: cannot read {table.path}: {_first_line(exc)}", table=table.name
        ) from None
    present = {row[0].lower(): row[1] for row in described}
    expected = CONTRACT[table.name]
    missing = [c for c in expected if c not in present]
    if missing:
        raise LandingContractViolation(
            f"table {table.name}: column(s) {', '.join(missing)} missing from {table.path} "
            f"(found: {', '.join(present) or 'none'}).",
            table=table.name,
            column=missing[0],
        )
    source = exp.Table(this=reader, alias=exp.TableAlias(this=exp.to_identifier("src")))
    for column, type_name in expected.items():
        if type_name == "varchar":
            continue
        col = exp.column(column, "src", quoted=True)
        bad = exp.and_(
            exp.not_(exp.Is(this=col, expression=exp.null())),
            exp.Is(this=exp.TryCast(this=col.copy(), to=exp.DataType.build(type_name)), expression=exp.null()),
        )
        query = exp.select(col.copy()).from_(source.copy()).where(bad).limit(SAMPLE_ROWS)
        try:
            rows = con.execute(query.sql("duckdb")).fetchall()
        except duckdb.Error as exc:
            raise LandingContractViolation(
                f"table {table.name}, column {column}: cannot read values as {type_name}: {_first_line(exc)}",
                table=table.name,
                column=column,
            ) from None
        if rows:
            sample = ", ".join(repr(r[0]) for r in rows)
            raise LandingContractViolation(
                f"table {table.name}, column {column}: values that are not a valid {type_name}, e.g. {sample}.",
                table=table.name,
                column=column,
                sample=[r[0] for r in rows],
            )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
