"""`fct_metric_values_daily` from the semantic layer: each watched metric by UTC day, as the
engine answers `/v1/query` for it, so the daily anomaly check reads the governed definition
and not a second, hand-written one.

Contract (kept from the hand-written model, which scorecards and alerts read): one row per
(metric_name, metric_date) over every day from the first to the last day with events; a
simple metric on a day without rows is 0; a ratio or derived metric that is null on a day (no
denominator) has no row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metrics.query.request import MetricQuery
from metrics.semantic.model import MetricType
from metrics.sql.trees import RenderedQuery, table_expr

if TYPE_CHECKING:
    from metrics.engine import MetricsEngine

#: The pack metrics the daily anomaly check watches (the model's accepted values).
WATCHED_METRICS = (
    "active_users",
    "events",
    "sessions",
    "revenue",
    "feature_users",
    "new_users",
    "crashes",
    "errors",
    "tickets",
    "crash_free_user_rate",
    "errors_per_1k_events",
    "tickets_per_1k_active_users",
)
#: The metric whose days bound the table (the first and the last day with events).
SPAN_METRIC = "events"
DAY = "metric_time__day"


def metric_values_daily_sql(engine: MetricsEngine) -> RenderedQuery:
    """The table's SELECT: the engine's own statement for the watched metrics by day, laid
    out one row per (metric, day) over the time spine's days of the events' span."""
    names = [name for name in WATCHED_METRICS if name in engine.manifest.metrics]
    if SPAN_METRIC not in names:
        raise ValueError(f"the project has no {SPAN_METRIC!r} metric to bound fct_metric_values_daily by")
    rendered = engine.renderer.render(engine.plan(MetricQuery(metrics=tuple(names), group_by=(DAY,))))
    dialect = rendered.dialect
    double = "DOUBLE" if dialect != "postgres" else "DOUBLE PRECISION"
    spine = engine.manifest.time_spine
    if spine is None:
        raise ValueError("fct_metric_values_daily needs the project's time spine")

    def q(name: str) -> str:
        return engine.renderer._ident(name)

    day = q(DAY)
    span = f"(SELECT {{}}(v.{day}) FROM v WHERE v.{q(SPAN_METRIC)} IS NOT NULL)"
    selects = []
    for name in names:
        simple = engine.manifest.metrics[name].type is MetricType.SIMPLE
        value = f"COALESCE(w.{q(name)}, 0)" if simple else f"w.{q(name)}"
        selects.append(
            f"SELECT '{name}' AS metric_name, w.metric_date, CAST({value} AS {double}) AS metric_value "
            f"FROM wide AS w" + ("" if simple else f" WHERE NOT w.{q(name)} IS NULL")
        )
    spine_table = table_expr(spine.relation.schema, spine.relation.table).sql(dialect=dialect)
    sql = (
        f"WITH v AS ({rendered.sql}), "
        f"days AS (SELECT s.{spine.column} AS metric_date FROM {spine_table} AS s "
        f"WHERE s.{spine.column} BETWEEN {span.format('MIN')} AND {span.format('MAX')}), "
        f"wide AS (SELECT days.metric_date, v.* FROM days LEFT JOIN v ON v.{day} = days.metric_date) "
        + " UNION ALL ".join(selects)
    )
    return RenderedQuery(sql, rendered.params, dialect)
