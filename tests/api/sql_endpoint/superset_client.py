"""Superset's own code against `northstar serve --sql-port`: run by the Superset tests inside
the Superset venv (tests/api/sql_endpoint/superset_venv.py), never imported by the suite.

    python superset_client.py HOST PORT

Prints one JSON object: what Superset's engine spec lists and describes, the SQL it generates
(select_star, the time-grain expressions, a chart's query with a series limit) and the rows
northstar answers to it. Dates are ISO strings. A Flask app is created (Superset's code reads
its config) over a throwaway SQLite metadata database; nothing is read from it but the tables
`db.create_all()` makes, which the row-level-security lookup of a chart query reads (empty).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile

WORK = tempfile.mkdtemp(prefix="northstar-superset-")
CONFIG = os.path.join(WORK, "superset_config.py")
# Week grains PostgresEngineSpec does not define are added the way Superset's config documents
# (TIME_GRAIN_ADDON_EXPRESSIONS), written as other engine specs write them.
with open(CONFIG, "w") as config:
    config.write(
        "SECRET_KEY = 'northstar-test-only'\n"
        f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{WORK}/superset.db'\n"
        "TIME_GRAIN_ADDON_EXPRESSIONS = {'postgresql': {\n"
        "    '1969-12-28T00:00:00Z/P1W': \"DATE_TRUNC('week', {col} + INTERVAL '1 day') - INTERVAL '1 day'\",\n"
        "    '1969-12-29T00:00:00Z/P1W': \"DATE_TRUNC('week', {col})\",\n"
        "}}\n"
    )
os.environ["SUPERSET_CONFIG_PATH"] = CONFIG

from superset.app import create_app  # noqa: E402

SUNDAY_WEEK, MONDAY_WEEK = "1969-12-28T00:00:00Z/P1W", "1969-12-29T00:00:00Z/P1W"
START, END = dt.datetime(2026, 1, 5), dt.datetime(2026, 3, 2)


def plain(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.date().isoformat() if isinstance(value, dt.datetime) else value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def rows_of(database, sql: str) -> list[list]:
    """Runs `sql` the way SQL Lab does (superset/sql_lab.py): the engine spec's execute and
    fetch_data on a raw DBAPI cursor of the database's engine."""
    with database.get_raw_connection(schema="semantic") as connection:
        cursor = connection.cursor()
        database.db_engine_spec.execute(cursor, sql, database)
        rows = database.db_engine_spec.fetch_data(cursor)
    return [[plain(v) for v in row] for row in rows]


def main(host: str, port: str) -> None:
    app = create_app()
    with app.app_context():
        from sqlalchemy import column, literal_column, select, table
        from superset.connectors.sqla.models import SqlaTable, SqlMetric, TableColumn
        from superset.db_engine_specs.postgres import PostgresEngineSpec
        from superset.extensions import db
        from superset.models.core import Database
        from superset.sql.parse import Table

        db.create_all()
        database = Database(
            database_name="northstar", sqlalchemy_uri=f"postgresql+psycopg2://analyst@{host}:{port}/northstar"
        )
        out: dict = {"engine": database.db_engine_spec.__name__}
        metrics_table = Table("metrics", "semantic")

        # The dataset editor: schemas, tables and their columns, through SQLAlchemy's inspector.
        with database.get_inspector(schema="semantic") as inspector:
            out["schemas"] = sorted(PostgresEngineSpec.get_schema_names(inspector))
            out["tables"] = sorted(PostgresEngineSpec.get_table_names(database, inspector, "semantic"))
            columns = PostgresEngineSpec.get_columns(inspector, metrics_table)
        out["columns"] = {c["column_name"]: str(c["type"]) for c in columns}
        out["table_comment"] = database.get_table_comment(metrics_table)

        # SQL Lab's table preview.
        preview = database.select_star(metrics_table, limit=5, show_cols=False, latest_partition=False)
        out["select_star"] = {"sql": preview, "rows": rows_of(database, preview)}

        # Time grains as Superset writes them, over the day column, bounded the way it bounds a
        # DATE column (PostgresEngineSpec.convert_dttm).
        start, end = (literal_column(PostgresEngineSpec.convert_dttm("DATE", d)) for d in (START, END))
        grains = {}
        for grain in ("P1D", "P1W", "P1M", SUNDAY_WEEK, MONDAY_WEEK):
            expression = PostgresEngineSpec.get_timestamp_expr(column("metric_time__day"), None, grain)
            query = (
                select([expression.label("bucket"), column("active_users")])
                .select_from(table("metrics", schema="semantic"))
                .where(column("metric_time__day") >= start)
                .where(column("metric_time__day") < end)
                .group_by(expression)
                .order_by(expression)
            )
            sql = database.compile_sqla_query(query, schema="semantic")
            sql = sql.replace("active_users", "SUM(active_users) AS active_users", 1)
            grains[grain] = {"sql": sql, "rows": rows_of(database, sql)}
        out["grains"] = grains

        # A timeseries chart with a series limit, generated by SqlaTable.get_sqla_query.
        dataset = SqlaTable(
            table_name="metrics",
            schema="semantic",
            database=database,
            main_dttm_col="metric_time__day",
            columns=[
                TableColumn(
                    column_name=c["column_name"],
                    type=str(c["type"]),
                    is_dttm=c["column_name"] == "metric_time__day",
                    groupby=True,
                    filterable=True,
                )
                for c in columns
            ],
            metrics=[
                SqlMetric(metric_name="sum__active_users", expression="SUM(active_users)"),
                SqlMetric(metric_name="sum__sessions", expression="SUM(sessions)"),
            ],
        )
        charts, query_objs = {}, {}
        for name, series in (("one", ["platform"]), ("two", ["platform", "country"])):
            query_obj = {
                "granularity": "metric_time__day",
                "from_dttm": START,
                "to_dttm": END,
                "is_timeseries": True,
                "extras": {"time_grain_sqla": "P1W"},
                "metrics": ["sum__active_users"],
                "groupby": series,
                "columns": series,
                "series_columns": series,
                "series_limit": 2 if name == "one" else 3,
                "series_limit_metric": "sum__sessions",
                "order_desc": True,
                "row_limit": 10000,
            }
            query_objs[name] = query_obj
            sql = dataset.get_query_str(query_obj)
            charts[name] = {"sql": sql, "rows": rows_of(database, sql)}
        out["charts"] = charts

        # "Group remaining as Others": the top-N LEFT JOINed, the rest relabelled 'Others'.
        others = {}
        for name in charts:
            sql = dataset.get_query_str({**query_objs[name], "group_others_when_limit_reached": True})
            try:
                others[name] = {"sql": sql, "rows": rows_of(database, sql)}
            except Exception as exc:  # noqa: BLE001 - the test reads what the client was told
                others[name] = {"sql": sql, "error": str(getattr(exc, "pgerror", None) or exc)}
        out["group_others"] = others
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
