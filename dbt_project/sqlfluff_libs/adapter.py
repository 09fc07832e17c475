"""What sqlfluff's Jinja templater needs of dbt's `adapter` to render the models for linting.

sqlfluff renders the models without dbt (no connection, no compile step); each dispatched macro
of macros/cross_db.sql renders as its DuckDB implementation here. Not used by dbt.
"""

_DUCKDB = {
    "epoch_seconds": lambda expression: f"epoch({expression})",
    "day_series": lambda start, stop: (
        f"select range as day_start from range(timestamp '{start}', timestamp '{stop}', interval 1 day)"),
    "string_type": lambda: "varchar",
    "double_type": lambda: "double precision",
    "utc_timestamp": lambda expression: f"cast(cast({expression} as timestamptz) as timestamp)",
}


def dispatch(name, macro_namespace=None):
    return _DUCKDB[name]


def quote(identifier):
    return f'"{identifier}"'
