"""The SQL BI tools generate over `semantic.*`, sent as they send it (their own text, taken from
their sources) over the wire with psycopg to `northstar serve --sql-port`, each answer held
against `POST /v1/query` for the same metric query, and against hand-written SQL over the
landing files (tests/oracle.py) where the engine is not the reference.

- Metabase's default weeks start on Sunday: its PostgreSQL driver writes the week of a date
  column as `adjust-start-of-week` over `date-trunc :week` (src/metabase/driver/postgres.clj,
  metabase.driver.sql.query-processor): shift one day forward, truncate to the ISO week, shift
  back, every step cast back to date.
- "Show me the table": SQL Lab's and DBeaver's `SELECT *`, Superset's samples (every column of
  the dataset, no metric: superset/common/query_actions.py `_get_samples`) and Metabase's raw
  table view (every field, qualified and aliased).
- Superset's time range over a virtual dataset: `TO_DATE('...', 'YYYY-MM-DD')` for a DATE
  column (PostgresEngineSpec.convert_dttm), the outer bounds intersected with the inner ones.
- Superset's series limit (superset/models/helpers.py `get_sqla_query`: the top-N subquery
  labelled `<column>__` and `mme_inner__`, joined as `series_limit` on `<column> = <column>__`).
"""

from __future__ import annotations

import datetime as dt

import pytest

psycopg = pytest.importorskip("psycopg")

from tests.api.sql_endpoint.sql_servers import sql_server  # noqa: E402,F401
from tests.api.sql_endpoint.test_clients import http_rows  # noqa: E402
from tests.oracle import Oracle  # noqa: E402


@pytest.fixture(scope="module")
def oracle(built_warehouse) -> Oracle:
    return Oracle(built_warehouse.landing_dir)


@pytest.fixture(scope="module")
def conn(sql_server):  # noqa: F811
    notices: list[str] = []
    with psycopg.connect(sql_server.dsn(), autocommit=True) as connection:
        connection.add_notice_handler(lambda d: notices.append(d.message_primary))
        connection.notices = notices
        yield connection


def sql(conn, text: str) -> tuple[list[str], list[tuple]]:
    del conn.notices[:]
    cur = conn.execute(text)
    return [d.name for d in cur.description], cur.fetchall()


def sql_error(conn, text: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(text)
    return info.value


def same_rows(got: list[tuple], want: list[tuple], tie_columns: int | None = None) -> None:
    """Equal row for row; with `tie_columns`, rows tied on their first columns' order may come
    in either order within the tie."""
    assert len(got) == len(want)
    if tie_columns is not None:
        key = lambda r: tuple((v is None, str(v)) for v in r)  # noqa: E731
        got, want = sorted(got, key=key), sorted(want, key=key)
    for g, w in zip(got, want):
        assert len(g) == len(w)
        for a, b in zip(g, w):
            if isinstance(a, float) or isinstance(b, float):
                assert a == pytest.approx(b, rel=1e-9), (g, w)
            else:
                assert a == b, (g, w)


# -- Metabase's Sunday weeks -----------------------------------------------------------------


def metabase_week(column: str) -> str:
    return (
        f"CAST((CAST(DATE_TRUNC('week', CAST(({column} + INTERVAL '1 day') AS date)) AS date) "
        "+ INTERVAL '-1 day') AS date)"
    )


MB_DAY = '"semantic"."metrics"."metric_time__day"'


def metabase_weekly(metric: str, where: str = "") -> str:
    week = metabase_week(MB_DAY)
    return (
        f'SELECT {week} AS "metric_time__day", SUM("semantic"."metrics"."{metric}") AS "sum" '
        f'FROM "semantic"."metrics" {where} GROUP BY {week} ORDER BY {week} ASC'
    )


@pytest.mark.parametrize("metric", ["active_users", "events", "arpu", "crash_free_user_rate", "active_users_7d"])
def test_metabase_sunday_weeks_for_every_metric_type(conn, api, metric):
    where = (
        'WHERE "semantic"."metrics"."metric_time__day" >= DATE \'2026-01-04\' '
        'AND "semantic"."metrics"."metric_time__day" < DATE \'2026-03-01\''
    )
    names, rows = sql(conn, metabase_weekly(metric, where))
    assert names == ["metric_time__day", "sum"]
    want = http_rows(
        api,
        {
            "metrics": [metric],
            "group_by": ["metric_time__week"],
            "week_start": "sunday",
            "start": "2026-01-04",
            "end": "2026-03-01",
            "order_by": ["metric_time__week"],
        },
    )
    same_rows(rows, want)
    assert len(rows) == 8 and all(r[0].isoweekday() == 7 for r in rows)


def test_sunday_weeks_against_hand_written_sql(conn, oracle):
    # Each Sunday-to-Saturday week on its own, computed from the landing files.
    _, rows = sql(
        conn,
        metabase_weekly(
            "active_users",
            'WHERE "semantic"."metrics"."metric_time__day" >= '
            'DATE \'2026-01-04\' AND "semantic"."metrics".'
            "\"metric_time__day\" < DATE '2026-02-01'",
        ),
    )
    assert [r[0] for r in rows] == [dt.date(2026, 1, 4) + dt.timedelta(days=7 * i) for i in range(4)]
    for sunday, active in rows:
        [(expected,)] = oracle.query(["active_users"], [], start=sunday, end=sunday + dt.timedelta(days=7))
        assert active == expected
    # Not the Monday weeks: the answers differ.
    _, monday = sql(
        conn,
        "SELECT metric_time__week, active_users FROM semantic.metrics WHERE metric_time__day "
        ">= '2026-01-05' AND metric_time__day < '2026-02-02' ORDER BY 1",
    )
    assert [r[1] for r in monday] != [r[1] for r in rows]


def test_sunday_weeks_filtered_by_the_same_form_and_nested(conn, api):
    # Metabase's nested question: the outer query groups a plain selection by Sunday weeks.
    week = metabase_week('"source"."metric_time__day"')
    names, rows = sql(
        conn,
        f'SELECT {week} AS "metric_time__day", SUM("source"."active_users") AS "sum" FROM '
        '(SELECT "semantic"."metrics"."metric_time__day" AS "metric_time__day", '
        '"semantic"."metrics"."active_users" AS "active_users" FROM "semantic"."metrics" '
        'WHERE "semantic"."metrics"."platform" = \'ios\') AS "source" '
        f"WHERE {week} >= DATE '2026-01-07' AND {week} < DATE '2026-02-01' "
        f"GROUP BY {week} ORDER BY {week} ASC",
    )
    # Sunday buckets from the one holding 2026-01-07 (2026-01-04 starts before it: not kept).
    want = http_rows(
        api,
        {
            "metrics": ["active_users"],
            "group_by": ["metric_time__week"],
            "week_start": "sunday",
            "start": "2026-01-11",
            "end": "2026-02-01",
            "order_by": ["metric_time__week"],
            "where": [{"field": "platform", "op": "=", "value": "ios"}],
        },
    )
    same_rows(rows, want)
    assert [r[0] for r in rows] == [dt.date(2026, 1, 11), dt.date(2026, 1, 18), dt.date(2026, 1, 25)]


def test_sunday_and_monday_weeks_in_one_query_are_refused(conn):
    error = sql_error(
        conn, f"SELECT {metabase_week('metric_time__day')}, metric_time__week, events FROM semantic.metrics"
    )
    assert error.sqlstate == "0A000" and "Sunday" in str(error)


# -- "show me the table" ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(api) -> dict[str, dict]:
    return {m["name"]: m for m in api.client.get("/v1/metrics").json()["metrics"]}


@pytest.fixture(scope="module")
def metrics_columns(conn) -> list[str]:
    """The columns `SELECT *` answers: every listed column but the `<metric>__complete` flags."""
    listed = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'semantic' "
            "AND table_name = 'metrics' ORDER BY ordinal_position"
        ).fetchall()
    ]
    flags = {c for c in listed if c.endswith("__complete")}
    assert flags and all(f.removesuffix("__complete") in listed for f in flags), "each flag names a listed metric"
    return [c for c in listed if c not in flags]


def check_preview(
    api, catalog, names: list[str], rows: list[tuple], limit: int, where: list[dict] | None = None
) -> None:
    """Metric columns as POST /v1/query answers them by day; metric_time grains of that day;
    other slices null; metrics that cannot be computed so, null."""
    metrics = [n for n in names if n in catalog]
    fields = {"metric_time__day"} | {f["field"] for f in where or []}
    by_day = [
        m
        for m in metrics
        if fields <= set(catalog[m]["dimensions"]) | {f"metric_time__{g}" for g in catalog[m].get("grains", ["day"])}
    ]
    assert by_day, "some metric is computed by day"
    want = http_rows(
        api,
        {
            "metrics": by_day,
            "group_by": ["metric_time__day"],
            "where": where or [],
            "order_by": ["metric_time__day"],
            "limit": limit,
        },
    )
    assert len(rows) == len(want) == limit
    index = {n: i for i, n in enumerate(names)}
    same_rows([tuple(r[index[n]] for n in ["metric_time__day", *by_day]) for r in rows], want)
    for row in rows:
        day = row[index["metric_time__day"]]
        assert row[index["metric_time__month"]] == day.replace(day=1)
        assert row[index["metric_time__week"]] == day - dt.timedelta(days=day.weekday())
        for name, value in zip(names, row):
            if name not in catalog and not name.startswith("metric_time__"):
                assert value is None, name
            if name in catalog and name not in by_day:
                assert value is None, name


def test_select_star_is_a_preview_by_day(conn, api, catalog, metrics_columns):
    names, rows = sql(conn, "SELECT * FROM semantic.metrics LIMIT 200")
    assert names == metrics_columns
    check_preview(api, catalog, names, rows, 200)
    assert any("one row per day" in n for n in conn.notices)


def test_superset_samples_and_metabase_raw_table_view(conn, api, catalog, metrics_columns):
    superset = "SELECT " + ", ".join(f'"{c}" AS "{c}"' for c in metrics_columns) + " \nFROM semantic.metrics\n LIMIT 50"
    metabase = (
        "SELECT "
        + ", ".join(f'"semantic"."metrics"."{c}" AS "{c}"' for c in metrics_columns)
        + ' FROM "semantic"."metrics" LIMIT 50'
    )
    dbeaver = "SELECT x.* FROM semantic.metrics x LIMIT 50"
    for text in (superset, metabase, dbeaver):
        names, rows = sql(conn, text)
        assert names == metrics_columns
        check_preview(api, catalog, names, rows, 50)


def test_preview_with_a_slice_filter_and_per_model_tables(conn, api, catalog):
    names, rows = sql(conn, "SELECT * FROM semantic.metrics WHERE platform = 'ios' LIMIT 30")
    check_preview(api, catalog, names, rows, 30, where=[{"field": "platform", "op": "=", "value": "ios"}])
    assert any("cannot be computed by day with these filters" in n for n in conn.notices)
    names, rows = sql(conn, "SELECT * FROM semantic.events LIMIT 20")
    assert "events" in names and "nps" not in names
    check_preview(api, catalog, names, rows, 20)
    # Counting a preview's rows is counting its days.
    [(count,)] = sql(conn, "SELECT COUNT(*) FROM (SELECT * FROM semantic.events) t")[1]
    assert count > 0


# -- time values written as functions and casts, inner and outer bounds --------------------------


@pytest.mark.parametrize(
    "low, high",
    [
        ("TO_DATE('2026-01-05', 'YYYY-MM-DD')", "TO_DATE('2026-03-02', 'YYYY-MM-DD')"),
        (
            "TO_TIMESTAMP('2026-01-05 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')",
            "TO_TIMESTAMP('2026-03-02 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')",
        ),
        ("'2026-01-05'::date", "'2026-03-02'::date"),
        ("CAST('2026-01-05' AS DATE)", "CAST('2026-03-02 00:00:00' AS TIMESTAMP)"),
        ("DATE '2026-01-05'", "TIMESTAMP '2026-03-02 00:00:00'"),
    ],
)
def test_virtual_dataset_time_range_intersects_inner_bounds(conn, api, low, high):
    # Superset: a saved query (already bounding time) as the dataset, the chart's time range
    # outside. The tighter bound wins on each side: start from the inner, end from the outer.
    text = (
        'SELECT metric_time__week AS metric_time__week, sum(active_users) AS "SUM(active_users)" FROM '
        "(SELECT metric_time__week, platform, active_users FROM semantic.metrics "
        "WHERE metric_time__day >= '2026-01-12' AND metric_time__day < '2026-04-01') AS virtual_table "
        f"WHERE metric_time__week >= {low} AND metric_time__week < {high} "
        'GROUP BY metric_time__week ORDER BY "SUM(active_users)" DESC LIMIT 10000'
    )
    _, rows = sql(conn, text)
    want = http_rows(
        api,
        {
            "metrics": ["active_users"],
            "group_by": ["metric_time__week"],
            "start": "2026-01-12",
            "end": "2026-03-02",
            "order_by": ["-active_users", "metric_time__week"],
        },
    )
    same_rows(rows, want, tie_columns=1)
    assert len(rows) == 7


def test_constant_time_values_inside_or(conn, api):
    _, rows = sql(
        conn,
        "SELECT metric_time__month, events FROM semantic.metrics WHERE "
        "metric_time__month < TO_DATE('2026-02-01', 'YYYY-MM-DD') OR "
        "metric_time__month >= CAST('2026-04-01' AS DATE) ORDER BY 1",
    )
    want = http_rows(
        api, {"metrics": ["events"], "group_by": ["metric_time__month"], "order_by": ["metric_time__month"]}
    )
    same_rows(rows, [r for r in want if r[0] < dt.date(2026, 2, 1) or r[0] >= dt.date(2026, 4, 1)])


# -- Superset's series limit -----------------------------------------------------------------

RANGE = (
    "metric_time__day >= TO_DATE('2026-01-05', 'YYYY-MM-DD') AND metric_time__day < TO_DATE('2026-03-02', 'YYYY-MM-DD')"
)


def superset_series_limit(series: list[str], metric: str, limit_metric: str, limit: int) -> str:
    """The statement Superset's get_sqla_query builds for a timeseries chart with a series
    limit, over a physical table (x-axis metric_time__day at grain P1W)."""
    outer_columns = ", ".join(f"{c} AS {c}" for c in series)
    inner_columns = ", ".join(f"{c} AS {c}__" for c in series)
    on = " AND ".join(f"{c} = {c}__" for c in series)
    group = ", ".join(series)
    return (
        f"SELECT DATE_TRUNC('week', metric_time__day) AS metric_time__day, {outer_columns}, "
        f'sum({metric}) AS "SUM({metric})" \nFROM semantic.metrics '
        f"JOIN (SELECT {inner_columns}, sum({limit_metric}) AS mme_inner__ \nFROM semantic.metrics "
        f"\nWHERE {RANGE} GROUP BY {group} ORDER BY mme_inner__ DESC \n LIMIT {limit}) AS series_limit "
        f"ON {on} \nWHERE {RANGE} GROUP BY DATE_TRUNC('week', metric_time__day), {group} "
        f'ORDER BY "SUM({metric})" DESC \n LIMIT 10000'
    )


@pytest.mark.parametrize("series, limit", [(["platform"], 2), (["platform", "country"], 3)])
def test_superset_series_limit(conn, api, series, limit):
    _, rows = sql(conn, superset_series_limit(series, "active_users", "sessions", limit))
    top = http_rows(
        api,
        {
            "metrics": ["sessions"],
            "group_by": series,
            "start": "2026-01-05",
            "end": "2026-03-02",
            "order_by": ["-sessions", *series],
            "limit": limit,
        },
    )
    assert len(top) == limit
    keys = {tuple(r[: len(series)]) for r in top}
    everything = http_rows(
        api,
        {
            "metrics": ["active_users"],
            "group_by": ["metric_time__week", *series],
            "start": "2026-01-05",
            "end": "2026-03-02",
        },
    )
    want = sorted((r for r in everything if tuple(r[1 : 1 + len(series)]) in keys), key=lambda r: -r[-1])
    assert {tuple(r[1 : 1 + len(series)]) for r in rows} == keys
    assert [r[-1] for r in rows] == [r[-1] for r in want]
    same_rows(rows, want, tie_columns=1)


@pytest.mark.parametrize("join", ["LEFT JOIN", "LEFT OUTER JOIN"])
def test_left_joined_series_limit_keeps_only_the_top_n_when_it_says_so(conn, join):
    """A LEFT JOIN of the top-N filtered on its key being present is the inner join."""
    series = ["platform", "country"]
    inner = superset_series_limit(series, "active_users", "sessions", 3)
    left = (
        inner.replace(") AS series_limit ON", ") AS series_limit_left ON", 1)
        .replace("FROM semantic.metrics JOIN (", f"FROM semantic.metrics {join} (", 1)
        .replace(
            " \nWHERE " + RANGE + " GROUP BY DATE_TRUNC",
            " \nWHERE series_limit_left.platform__ IS NOT NULL AND " + RANGE + " GROUP BY DATE_TRUNC",
            1,
        )
    )
    assert join in left and "IS NOT NULL" in left
    want = sql(conn, inner)[1]
    assert want
    same_rows(sql(conn, left)[1], want, tie_columns=1)


def test_left_joined_series_limit_unread_keeps_every_slice(conn, api):
    """Unread, a LEFT-joined top-N (one row per key) changes nothing: every slice is answered."""
    series = ["platform", "country"]
    text = superset_series_limit(series, "active_users", "sessions", 2).replace(
        "FROM semantic.metrics JOIN (", "FROM semantic.metrics LEFT OUTER JOIN (", 1
    )
    want = http_rows(
        api,
        {
            "metrics": ["active_users"],
            "group_by": ["metric_time__week", *series],
            "start": "2026-01-05",
            "end": "2026-03-02",
        },
    )
    want = sorted(want, key=lambda r: -r[-1])
    rows = sql(conn, text)[1]
    assert len({tuple(r[1:3]) for r in rows}) > 2  # more slices than the top 2
    same_rows(rows, want, tie_columns=1)


def test_left_joined_series_limit_is_null_keeps_the_other_slices(conn, api):
    """`WHERE series_limit.platform__ IS NULL`: the slices outside the top-N (an anti-join)."""
    text = (
        superset_series_limit(["platform"], "active_users", "sessions", 2)
        .replace("FROM semantic.metrics JOIN (", "FROM semantic.metrics LEFT JOIN (", 1)
        .replace(
            " \nWHERE " + RANGE + " GROUP BY DATE_TRUNC",
            " \nWHERE series_limit.platform__ IS NULL AND " + RANGE + " GROUP BY DATE_TRUNC",
            1,
        )
    )
    assert "IS NULL AND" in text
    top = http_rows(
        api,
        {
            "metrics": ["sessions"],
            "group_by": ["platform"],
            "start": "2026-01-05",
            "end": "2026-03-02",
            "order_by": ["-sessions", "platform"],
            "limit": 2,
        },
    )
    everything = http_rows(
        api,
        {
            "metrics": ["active_users"],
            "group_by": ["metric_time__week", "platform"],
            "start": "2026-01-05",
            "end": "2026-03-02",
        },
    )
    top_platforms = {r[0] for r in top}
    want = sorted((r for r in everything if r[1] not in top_platforms), key=lambda r: -r[-1])
    rows = sql(conn, text)[1]
    assert want and {r[1] for r in rows}.isdisjoint(top_platforms)
    same_rows(rows, want, tie_columns=1)


def test_left_joined_series_limit_read_outside_the_top_n_is_refused(conn):
    text = (
        superset_series_limit(["platform"], "events", "events", 2)
        .replace("FROM semantic.metrics JOIN (", "FROM semantic.metrics LEFT JOIN (", 1)
        .replace("SELECT DATE_TRUNC", "SELECT series_limit.platform__ AS top_platform, DATE_TRUNC", 1)
    )
    error = sql_error(conn, text)
    assert error.sqlstate == "0A000" and "LEFT JOIN" in error.diag.message_primary
    assert "series_limit.platform__" in error.diag.message_primary


def test_series_limit_that_keeps_nothing_answers_no_rows(conn):
    text = superset_series_limit(["platform"], "events", "events", 2).replace(
        "GROUP BY platform ORDER BY", "AND platform = 'none' GROUP BY platform ORDER BY", 1
    )
    assert sql(conn, text)[1] == []


# -- what errors say -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, sqlstate, says",
    [
        ("SELECT nope FROM (SELECT platform, events FROM semantic.metrics) t", "42703", 'column "nope" does not exist'),
        (
            "SELECT platform, events + 'x' FROM (SELECT platform, events FROM semantic.metrics) t",
            "22P02",
            'invalid input syntax for type bigint: "x"',
        ),
        # Functions outside the allow-list (unknown or DuckDB-only alike) are refused before any
        # database sees them: 0A000, as for file readers.
        (
            "SELECT no_such_fn(events) FROM (SELECT platform, events FROM semantic.metrics) t",
            "0A000",
            "function no_such_fn() is not available here",
        ),
        ("SELECT t2.platform FROM (SELECT platform, events FROM semantic.metrics) t", "42P01", '"t2"'),
        ("SELECT platform, events FROM semantic.metrics WHERE platform ~ 'i'", "0A000", "\"platform\" ~ 'i'"),
        (
            "SELECT platform, events FROM semantic.metrics WHERE metric_time__day > now() - interval '1 day' "
            "OR platform ~ 'x'",
            "0A000",
            "the condition",
        ),
    ],
)
def test_errors_speak_of_the_clients_sql(conn, text, sqlstate, says):
    error = sql_error(conn, text)
    message = f"{error.diag.message_primary} {error.diag.message_hint or ''}"
    assert error.sqlstate == sqlstate and says in message, message
    for internal in (
        "Binder Error",
        "Catalog Error",
        "Conversion Error",
        "Parser Error",
        "{{",
        "TimeDimension",
        "Dimension(",
        "StrToTime",
        "RegexpLike",
        "CurrentTimestamp",
        "INT64",
        "__northstar",
    ):
        assert internal not in message, message
    assert "semantic.metrics" in (error.diag.message_hint or "")
