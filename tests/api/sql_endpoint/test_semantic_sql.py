"""SQL over the semantic layer: each statement's answer is held against the HTTP API's answer
to the same metric query (row for row, from the real server over the same build), and a few
values against hand-written SQL over the landing files (tests/oracle.py)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
import sqlglot

from api.sql_endpoint.semantic_sql import SqlError, answer, reads_data_tables, visible_tables
from metrics.engine import MetricsEngine
from metrics.policy import RestrictedEngine, RowPolicy
from metrics.query.request import Filter, FilterOp
from tests.oracle import Oracle


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def engine(request, built_warehouse):
    """Every test here runs over the DuckDB build and again over the build in PostgreSQL
    (skipped unless NORTHSTAR_TEST_POSTGRES_DSN names a server), held to the same oracle."""
    if request.param == "duckdb":
        engine = MetricsEngine.open(built_warehouse.warehouse)
    else:
        engine = MetricsEngine.open(
            request.getfixturevalue("postgres_api").warehouse, postgres_dsn=request.getfixturevalue("postgres_dsn")
        )
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def oracle(built_warehouse) -> Oracle:
    return Oracle(built_warehouse.landing_dir)


def run(engine: MetricsEngine, text: str):
    return answer(sqlglot.parse_one(text, read="postgres"), engine)


def refused(engine: MetricsEngine, text: str) -> SqlError:
    with pytest.raises(SqlError) as info:
        run(engine, text)
    return info.value


def http(api, **body: Any) -> dict[str, Any]:
    response = api.client.post("/v1/query", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def plain(value: Any) -> Any:
    """A SQL answer's value as the HTTP API writes it in JSON."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _row_order(row: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in row)


def assert_rows(
    sql_rows: list[tuple], http_rows: list[list], context: str = "", ties_on: tuple[int, ...] | None = None
) -> None:
    """Row for row; with `ties_on` (the columns the query orders by), rows that tie on those
    may come in either order, so the same rows with the same sequence of order keys."""
    got = [tuple(plain(v) for v in row) for row in sql_rows]
    want = [tuple(row) for row in http_rows]
    assert len(got) == len(want), f"{context}: {len(got)} rows over SQL, {len(want)} over HTTP"
    if ties_on is not None:
        assert [[r[i] for i in ties_on] for r in got] == [[r[i] for i in ties_on] for r in want], context
        got, want = sorted(got, key=_row_order), sorted(want, key=_row_order)
    for index, (g, w) in enumerate(zip(got, want)):
        assert len(g) == len(w) and all(same(a, b) for a, b in zip(g, w)), f"{context} row {index}: {g} != {w}"


def assert_same_as_http(engine, api, text: str, ties_on: tuple[int, ...] | None = None, **body: Any) -> Any:
    result = run(engine, text)
    expected = http(api, **body)
    assert [c.type for c in result.columns] == [c["type"] for c in expected["columns"]], text
    assert_rows(result.rows, expected["rows"], text, ties_on)
    return result


# -- the contract's example and the plain form ----------------------------------------------


def test_spec_example_answers_what_http_answers(engine, api):
    result = assert_same_as_http(
        engine,
        api,
        "SELECT metric_time__week, platform, active_users FROM semantic.metrics "
        "WHERE country = 'US' AND metric_time__week >= '2026-01-05' ORDER BY 1 LIMIT 100",
        ties_on=(0,),
        metrics=["active_users"],
        group_by=["metric_time__week", "platform"],
        where=[
            {"field": "country", "op": "=", "value": "US"},
            {"field": "metric_time__week", "op": ">=", "value": "2026-01-05"},
        ],
        order_by=["metric_time__week"],
        limit=100,
    )
    assert [c.name for c in result.columns] == ["metric_time__week", "platform", "active_users"]
    assert result.rows and all(isinstance(r[0], dt.date) and r[0] >= dt.date(2026, 1, 5) for r in result.rows)


def test_column_order_as_selected_and_aliases(engine, api):
    result = run(engine, "SELECT arpu, platform AS p, active_users AS au FROM semantic.metrics ORDER BY p")
    assert [c.name for c in result.columns] == ["arpu", "p", "au"]
    expected = http(api, metrics=["arpu", "active_users"], group_by=["platform"], order_by=["platform"])
    assert_rows([(r[1], r[0], r[2]) for r in result.rows], expected["rows"])


@pytest.mark.parametrize(
    "order_clause, order_by, ties_on",
    [
        ("ORDER BY 3 DESC", ["-active_users"], (2,)),
        ("ORDER BY au DESC", ["-active_users"], (2,)),
        ("ORDER BY active_users DESC", ["-active_users"], (2,)),
        ("ORDER BY platform ASC", ["platform"], (1,)),
        ("ORDER BY metric_time__month DESC, 2", ["-metric_time__month", "platform"], None),
    ],
)
def test_order_by_position_alias_name_and_direction(engine, api, order_clause, order_by, ties_on):
    assert_same_as_http(
        engine,
        api,
        f"SELECT metric_time__month, platform, active_users AS au FROM semantic.metrics {order_clause}",
        ties_on=ties_on,
        metrics=["active_users"],
        group_by=["metric_time__month", "platform"],
        order_by=order_by,
    )


def test_limit_and_offset(engine, api):
    result = run(engine, "SELECT metric_time__week, events FROM semantic.metrics ORDER BY 1 LIMIT 3 OFFSET 2")
    expected = http(api, metrics=["events"], group_by=["metric_time__week"], order_by=["metric_time__week"], limit=5)
    assert_rows(result.rows, expected["rows"][2:])


# -- WHERE ---------------------------------------------------------------------------------


def test_time_filter_at_another_grain_is_start_and_end(engine, api, oracle):
    result = assert_same_as_http(
        engine,
        api,
        "SELECT metric_time__week, active_users, arpu FROM semantic.metrics "
        "WHERE metric_time__day >= '2026-01-05' AND metric_time__day < '2026-02-02' ORDER BY 1",
        metrics=["active_users", "arpu"],
        group_by=["metric_time__week"],
        start="2026-01-05",
        end="2026-02-02",
        order_by=["metric_time__week"],
    )
    assert len(result.rows) == 4
    expected = oracle.query(["active_users"], ["metric_time__week"], start="2026-01-05", end="2026-02-02")
    assert [(r[0].isoformat(), r[1]) for r in result.rows] == [tuple(r) for r in expected]


def test_time_filter_with_casts_and_between(engine, api):
    for condition in (
        "metric_time__day BETWEEN DATE '2026-01-05' AND '2026-02-01'::date",
        "metric_time__day >= TIMESTAMP '2026-01-05 00:00:00' AND metric_time__day <= '2026-02-01'",
        "metric_time__day > '2026-01-04' AND '2026-02-02' > metric_time__day",
        # Metabase and Superset spell the same range like this.
        "metric_time__day >= timestamp with time zone '2026-01-05 00:00:00.000Z' AND "
        "metric_time__day < timestamp with time zone '2026-02-02 01:00:00.000+01:00'",
        "metric_time__day >= TO_TIMESTAMP('2026-01-05 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') "
        "AND metric_time__day < CAST('2026-01-26' AS DATE) + INTERVAL '7 days'",
    ):
        assert_same_as_http(
            engine,
            api,
            f"SELECT metric_time__week, sessions FROM semantic.metrics WHERE {condition} ORDER BY 1",
            metrics=["sessions"],
            group_by=["metric_time__week"],
            start="2026-01-05",
            end="2026-02-02",
            order_by=["metric_time__week"],
        )


@pytest.mark.parametrize("op", [">=", ">", "<", "<=", "="])
@pytest.mark.parametrize("value", ["2026-01-05", "2026-01-07"])
def test_bucket_comparisons_keep_the_buckets_http_keeps(engine, api, op, value):
    # A comparison on a week bucket compares bucket starts, whatever day is written.
    assert_same_as_http(
        engine,
        api,
        f"SELECT metric_time__week, events FROM semantic.metrics WHERE metric_time__week {op} '{value}' ORDER BY 1",
        metrics=["events"],
        group_by=["metric_time__week"],
        where=[{"field": "metric_time__week", "op": op, "value": value}],
        order_by=["metric_time__week"],
    )


@pytest.mark.parametrize(
    "metric",
    [
        "active_users_7d",
        "revenue_mtd",
        "revenue_change_vs_prior_week",
        "signup_to_purchase_7d",
        "d7_retention",
        "crash_free_user_rate",
    ],
)
def test_bucket_comparisons_for_every_metric_type(engine, api, metric):
    # Cumulative, time-offset, conversion and two-source metrics: a range of buckets written
    # with days that start no bucket keeps what the HTTP API's bucket filters keep.
    assert_same_as_http(
        engine,
        api,
        f"SELECT metric_time__month, {metric} FROM semantic.metrics "
        "WHERE metric_time__month > '2026-01-15' AND metric_time__month <= '2026-03-18' ORDER BY 1",
        metrics=[metric],
        group_by=["metric_time__month"],
        order_by=["metric_time__month"],
        where=[
            {"field": "metric_time__month", "op": ">", "value": "2026-01-15"},
            {"field": "metric_time__month", "op": "<=", "value": "2026-03-18"},
        ],
    )


@pytest.mark.parametrize(
    "condition, where",
    [
        ("platform IN ('ios', 'web')", [{"field": "platform", "op": "in", "values": ["ios", "web"]}]),
        ("platform NOT IN ('ios')", [{"field": "platform", "op": "not_in", "values": ["ios"]}]),
        ("platform = ANY(ARRAY['ios', 'web'])", [{"field": "platform", "op": "in", "values": ["ios", "web"]}]),
        ("platform <> ALL(ARRAY['ios'])", [{"field": "platform", "op": "not_in", "values": ["ios"]}]),
        ("platform NOT LIKE 'w%'", ["{{ Dimension('platform') }} NOT LIKE 'w%'"]),
        ("platform <> 'ios'", [{"field": "platform", "op": "!=", "value": "ios"}]),
        ("NOT platform = 'ios'", [{"field": "platform", "op": "!=", "value": "ios"}]),
        ("app_version IS NULL", [{"field": "app_version", "op": "is_null"}]),
        ("app_version IS NOT NULL", [{"field": "app_version", "op": "is_not_null"}]),
        ("(country = 'US' OR country = 'DE')", [{"field": "country", "op": "in", "values": ["US", "DE"]}]),
        (
            "country = 'US' OR platform = 'ios'",
            ["{{ Dimension('country') }} = 'US' OR {{ Dimension('platform') }} = 'ios'"],
        ),
    ],
)
def test_slice_filters_match_http_filters(engine, api, condition, where):
    assert_same_as_http(
        engine,
        api,
        f"SELECT platform, events, active_users FROM semantic.metrics WHERE {condition} ORDER BY 1",
        metrics=["events", "active_users"],
        group_by=["platform"],
        where=where,
        order_by=["platform"],
    )


def test_filter_on_a_slice_that_is_not_selected_filters_before_aggregation(engine, api, oracle):
    result = assert_same_as_http(
        engine,
        api,
        "SELECT active_users FROM semantic.metrics WHERE country = 'US'",
        metrics=["active_users"],
        where=[{"field": "country", "op": "=", "value": "US"}],
    )
    [(expected,)] = oracle.query(["active_users"], [], where=[{"field": "country", "op": "=", "value": "US"}])
    assert result.rows == [(expected,)]


def test_values_that_look_like_sql_are_only_values(engine):
    for value in ("US'; DROP TABLE fct_events; --", "x' OR '1'='1", "/* c */ US", "US\\'", "{{ Dimension('x') }}"):
        literal = "'" + value.replace("'", "''") + "'"
        result = run(engine, f"SELECT platform, active_users FROM semantic.metrics WHERE country = {literal}")
        assert result.rows == []
        result = run(engine, f"SELECT platform, active_users FROM semantic.metrics WHERE country IN ({literal}, 'ZZ')")
        assert result.rows == []
    # Inside OR, through the engine's filter strings: still a value.
    result = run(
        engine,
        "SELECT platform, active_users FROM semantic.metrics WHERE country = 'x'' OR 1=1 --' OR platform = 'x;'' drop'",
    )
    assert result.rows == []
    # Outer filters run over the engine's rows; a quoted value is still a value.
    result = run(
        engine, "SELECT * FROM (SELECT platform, events FROM semantic.metrics) t WHERE platform = 'ios''; select 1; --'"
    )
    assert result.rows == []


# -- BI forms ------------------------------------------------------------------------------


def test_sum_of_a_ratio_grouped_is_the_ratio_at_that_grain(engine, api, oracle):
    result = assert_same_as_http(
        engine,
        api,
        "SELECT platform, SUM(arpu) AS arpu, AVG(crash_free_user_rate) AS cfr FROM semantic.metrics "
        "GROUP BY platform ORDER BY platform",
        metrics=["arpu", "crash_free_user_rate"],
        group_by=["platform"],
        order_by=["platform"],
    )
    expected = {r[0]: r[1] for r in oracle.query(["arpu"], ["platform"])}
    for platform, arpu, _ in result.rows:
        assert math.isclose(arpu, expected[platform], rel_tol=1e-9)


def test_measure_and_min_max_wrappers(engine, api):
    assert_same_as_http(
        engine,
        api,
        "SELECT metric_time__month, MEASURE(active_users), MAX(nps), MIN(revenue) FROM semantic.metrics "
        "GROUP BY 1 ORDER BY 1",
        metrics=["active_users", "nps", "revenue"],
        group_by=["metric_time__month"],
        order_by=["metric_time__month"],
    )


def test_grouped_bare_metric_and_grand_total(engine, api, oracle):
    assert_same_as_http(
        engine,
        api,
        "SELECT platform, arpu FROM semantic.metrics GROUP BY platform ORDER BY 1",
        metrics=["arpu"],
        group_by=["platform"],
        order_by=["platform"],
    )
    result = assert_same_as_http(
        engine, api, "SELECT SUM(active_users), SUM(arpu) FROM semantic.metrics", metrics=["active_users", "arpu"]
    )
    [(active, arpu)] = oracle.query(["active_users", "arpu"])
    assert result.rows[0][0] == active and math.isclose(result.rows[0][1], arpu, rel_tol=1e-9)
    assert [c.name for c in result.columns] == ["sum", "sum"]


def test_date_trunc_of_metric_time_is_the_coarser_grain(engine, api):
    assert_same_as_http(
        engine,
        api,
        "SELECT date_trunc('month', metric_time__day) AS month, SUM(active_users) FROM semantic.metrics "
        "GROUP BY 1 ORDER BY 1",
        metrics=["active_users"],
        group_by=["metric_time__month"],
        order_by=["metric_time__month"],
    )


def test_nested_subquery_with_outer_alias_filter_order_limit(engine, api):
    result = run(
        engine,
        'SELECT "t"."platform" AS "Platform", "t"."au" AS "Users" FROM ('
        "SELECT metric_time__week, platform, active_users AS au FROM semantic.metrics "
        "WHERE metric_time__day >= '2026-01-05' AND metric_time__day < '2026-03-02') \"t\" "
        'WHERE "t"."au" > 100 AND "t"."platform" <> \'web\' ORDER BY "t"."au" DESC LIMIT 5',
    )
    assert [c.name for c in result.columns] == ["Platform", "Users"]
    rows = http(
        api, metrics=["active_users"], group_by=["metric_time__week", "platform"], start="2026-01-05", end="2026-03-02"
    )["rows"]
    expected = sorted(((p, a) for _, p, a in rows if a > 100 and p is not None and p != "web"), key=lambda r: -r[1])[:5]
    assert sorted(result.rows, key=lambda r: (-r[1], r[0])) == sorted(expected, key=lambda r: (-r[1], r[0]))
    assert [r[1] for r in result.rows] == sorted((r[1] for r in result.rows), reverse=True)


def test_outer_query_may_add_up_additive_metrics_but_not_ratios(engine, api, oracle):
    result = run(
        engine,
        "SELECT platform, SUM(events) AS events, MAX(active_users) AS peak FROM "
        "(SELECT metric_time__week, platform, events, active_users FROM semantic.metrics) t "
        "GROUP BY platform ORDER BY platform",
    )
    expected = http(api, metrics=["events"], group_by=["platform"], order_by=["platform"])["rows"]
    assert [(r[0], r[1]) for r in result.rows] == [tuple(r) for r in expected]
    weekly = http(api, metrics=["active_users"], group_by=["metric_time__week", "platform"])["rows"]
    for platform, _, peak in result.rows:
        assert peak == max(a for _, p, a in weekly if p == platform)
    for aggregate in ("AVG(arpu)", "SUM(active_users), MAX(arpu)"):
        error = refused(
            engine,
            f"SELECT platform, {aggregate} FROM (SELECT metric_time__week, platform, arpu, "
            "active_users FROM semantic.metrics) t GROUP BY platform",
        )
        assert error.sqlstate == "0A000" and "re-aggregated" in error.message
    # Rows already cut by a metric condition or a limit cannot be recomputed at another grain.
    for inner in ("WHERE arpu > 0", "LIMIT 50"):
        error = refused(
            engine,
            "SELECT platform, SUM(arpu) FROM (SELECT metric_time__week, platform, arpu "
            f"FROM semantic.metrics {inner}) t GROUP BY platform",
        )
        assert error.sqlstate == "0A000" and "re-aggregated" in error.message


def test_outer_sum_over_a_plain_selection_is_the_metric_at_the_outer_grain(engine, api, oracle):
    # Metabase's nested question: the inner rows are daily, the outer groups by month.
    result = assert_same_as_http(
        engine,
        api,
        'SELECT CAST(date_trunc(\'month\', "source"."metric_time__day") AS date) AS "metric_time__day", '
        'SUM("source"."arpu") AS "sum" FROM (SELECT "semantic"."metrics"."metric_time__day" AS "metric_time__day", '
        '"semantic"."metrics"."arpu" AS "arpu" FROM "semantic"."metrics" WHERE country = \'US\') "source" '
        'WHERE "source"."metric_time__day" >= DATE \'2026-02-01\' '
        'GROUP BY CAST(date_trunc(\'month\', "source"."metric_time__day") AS date) ORDER BY 1 ASC',
        metrics=["arpu"],
        group_by=["metric_time__month"],
        start="2026-02-01",
        where=[{"field": "country", "op": "=", "value": "US"}],
        order_by=["metric_time__month"],
    )
    expected = oracle.query(
        ["arpu"], ["metric_time__month"], start="2026-02-01", where=[{"field": "country", "op": "=", "value": "US"}]
    )
    assert len(result.rows) == len(expected)
    for (month, arpu), (want_month, want_arpu) in zip(result.rows, expected):
        assert month.isoformat() == want_month and math.isclose(arpu, want_arpu, rel_tol=1e-9)
    # Superset's virtual dataset: an outer query over SELECT * names the grain itself.
    assert_same_as_http(
        engine,
        api,
        'SELECT platform AS platform, SUM(active_users) AS "SUM(active_users)" FROM '
        "(SELECT * FROM semantic.metrics) AS virtual_table GROUP BY platform ORDER BY platform LIMIT 10000",
        metrics=["active_users"],
        group_by=["platform"],
        order_by=["platform"],
        limit=10000,
    )
    # Rows told apart by a slice the subquery does not output cannot be added up either.
    error = refused(
        engine,
        "SELECT platform, SUM(au) FROM (SELECT platform, active_users AS au "
        "FROM semantic.metrics GROUP BY platform, country) t GROUP BY platform",
    )
    assert error.sqlstate == "0A000"
    # The same inside the metric query: counting distinct slices forces a finer grain.
    error = refused(engine, "SELECT COUNT(DISTINCT platform), SUM(arpu) FROM semantic.metrics")
    assert error.sqlstate == "0A000"


def test_a_cte_read_once_is_a_subquery(engine, api):
    assert_same_as_http(
        engine,
        api,
        "WITH q AS (SELECT metric_time__week, platform, events FROM semantic.metrics WHERE country = 'US') "
        "SELECT platform, SUM(events) AS events FROM q GROUP BY platform ORDER BY platform",
        metrics=["events"],
        group_by=["platform"],
        where=[{"field": "country", "op": "=", "value": "US"}],
        order_by=["platform"],
    )


def test_count_star_probes(engine, api):
    assert run(engine, "SELECT COUNT(*) FROM semantic.metrics").rows == [(1,)]
    rows = http(
        api,
        metrics=["active_users"],
        group_by=["metric_time__week", "platform"],
        where=[{"field": "country", "op": "=", "value": "US"}],
    )["rows"]
    result = run(
        engine,
        "SELECT COUNT(*) AS n FROM (SELECT metric_time__week, platform, active_users "
        "FROM semantic.metrics WHERE country = 'US') AS q",
    )
    assert result.rows == [(len(rows),)] and result.columns[0].name == "n" and result.columns[0].type == "integer"
    result = run(
        engine,
        "SELECT count(*) FROM (SELECT metric_time__week, platform, active_users "
        "FROM semantic.metrics WHERE country = 'US' LIMIT 10) AS q",
    )
    assert result.rows == [(min(10, len(rows)),)]


def test_slices_without_metrics_list_the_values_present(engine, oracle):
    result = run(engine, "SELECT DISTINCT platform FROM semantic.metrics WHERE platform IS NOT NULL ORDER BY 1")
    expected = [
        r[0] for r in oracle.sql("select distinct platform from src_events where platform is not null order by 1")
    ]
    assert [r[0] for r in result.rows] == expected
    assert run(engine, "SELECT COUNT(DISTINCT platform) FROM semantic.metrics WHERE platform IS NOT NULL").rows == [
        (len(expected),)
    ]


def test_per_model_tables(engine, api):
    assert_same_as_http(
        engine,
        api,
        "SELECT platform, events FROM semantic.events ORDER BY 1",
        metrics=["events"],
        group_by=["platform"],
        order_by=["platform"],
    )
    error = refused(engine, "SELECT nps FROM semantic.events")
    assert error.sqlstate == "42703" and "semantic.metrics" in (error.hint or "")


def test_always_false_conditions_answer_typed_empty_results(engine):
    for text in (
        "SELECT platform, active_users FROM semantic.metrics WHERE 1 = 0",
        "SELECT * FROM (SELECT platform, arpu FROM semantic.metrics) t WHERE false",
    ):
        result = run(engine, text)
        assert result.rows == [] and [c.type for c in result.columns] == [
            "string",
            "integer" if "active" in text else "number",
        ]


def test_select_star_is_a_column_probe_or_a_preview_by_day(engine, api):
    result = run(engine, "SELECT * FROM semantic.metrics WHERE 1 = 0")
    names = [c.name for c in result.columns]
    assert result.rows == [] and "active_users" in names and "metric_time__week" in names
    # A preview (tests/api/sql_endpoint/test_bi_semantic_forms.py has the clients' forms).
    result = run(engine, "SELECT * FROM semantic.metrics ORDER BY metric_time__day DESC LIMIT 5")
    assert [c.name for c in result.columns] == names and len(result.rows) == 5 and result.notices
    # Every metric by day, as one HTTP query of them all answers.
    by_day = [m["name"] for m in api.client.get("/v1/metrics").json()["metrics"] if "day" in m["grains"]]
    expected = http(api, metrics=by_day, group_by=["metric_time__day"], order_by=["-metric_time__day"], limit=5)
    assert_rows([(r[0], *(r[names.index(m)] for m in by_day)) for r in result.rows], expected["rows"])
    # Grouped or aggregated, `*` is still refused.
    assert refused(engine, "SELECT *, SUM(events) FROM semantic.metrics GROUP BY platform").sqlstate in (
        "0A000",
        "42803",
    )


# -- marts ---------------------------------------------------------------------------------


def test_marts_reads(engine, oracle):
    result = run(
        engine,
        "SELECT platform, COUNT(*) FROM marts.fct_events WHERE platform IS NOT NULL GROUP BY platform ORDER BY 1",
    )
    assert [c.name for c in result.columns] == ["platform", "count"]
    assert result.rows == oracle.sql(
        "select platform, count(*) from src_events where platform is not null group by 1 order by 1"
    )
    result = run(engine, 'SELECT "marts"."dim_users"."country" AS c FROM "marts"."dim_users" LIMIT 1')
    assert len(result.rows) == 1


@pytest.mark.parametrize(
    "text, state",
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "0A000"),
        ("SELECT * FROM marts.fct_events WHERE event_id IN (SELECT * FROM read_parquet('/tmp/x.parquet'))", "0A000"),
        ("SELECT sniff_csv('/etc/passwd') FROM marts.fct_events", "0A000"),
        ("SELECT * FROM marts.fct_events, read_json('/etc/x.json')", "0A000"),
        ("SELECT * FROM marts.nope", "42P01"),
        ("SELECT * FROM staging.stg_product__events", "42P01"),
        ("SELECT * FROM marts.fct_events JOIN semantic.metrics ON true", "0A000"),
        ("DELETE FROM marts.fct_events", "0A000"),
        ("INSERT INTO marts.fct_events SELECT * FROM marts.fct_events", "0A000"),
        ("CREATE TABLE marts.x AS SELECT 1", "0A000"),
        # Server files on a PostgreSQL warehouse: refused by the function allow-list before it.
        ("SELECT pg_read_file('/etc/passwd') FROM marts.fct_events", "0A000"),
        ("SELECT pg_catalog.pg_read_file('/etc/passwd')::text FROM marts.fct_events", "0A000"),
        ("SELECT lo_import('/etc/passwd') FROM marts.fct_events", "0A000"),
        ("SELECT * FROM marts.fct_events, pg_ls_dir('/') AS d", "0A000"),
        ("SELECT current_setting('data_directory') FROM marts.fct_events", "0A000"),
        # Issue 21: a CTE of an inner query does not make an outer name readable.
        (
            'SELECT * FROM "/etc/passwd" f WHERE EXISTS (WITH "/etc/passwd" AS (SELECT 1) '
            "SELECT 1 FROM marts.fct_events)",
            "42P01",
        ),
        ("SELECT * FROM pg_catalog.pg_authid, marts.fct_events", "42P01"),
        ("SELECT * FROM public.secrets, marts.fct_events", "42P01"),
    ],
)
def test_marts_refusals(engine, text, state):
    assert refused(engine, text).sqlstate == state


@pytest.mark.parametrize(
    "text, state, name",
    [
        ("SELECT platfrom FROM marts.fct_events", "42703", "platfrom"),
        ("SELECT platform, COUNT(*) FROM marts.fct_events", "42803", None),
        ("WITH e AS (SELECT * FROM marts.fct_events) SELECT x.platform FROM e", "42P01", None),
    ],
)
def test_marts_mistakes_answer_about_the_clients_sql(engine, text, state, name):
    error = refused(engine, text)
    assert error.sqlstate == state, error.message
    # The client's own names, never the SQL it was rebuilt into (private CTE names, the
    # marts' physical schema, the policy subquery).
    assert "__northstar" not in error.message and "SELECT" not in error.message
    assert engine.schema("marts") == "marts" or engine.schema("marts") not in error.message
    if name:
        assert name in error.message and text[error.position - 1 :].startswith(name)


# -- errors --------------------------------------------------------------------------------


def test_unknown_column_names_the_nearest(engine):
    error = refused(engine, "SELECT platfrom, activ_users FROM semantic.metrics")
    assert error.sqlstate == "42703" and "platfrom" in error.message and '"platform"' in error.hint


def test_unknown_table_lists_the_tables(engine):
    error = refused(engine, "SELECT active_users FROM semantic.metric")
    assert error.sqlstate == "42P01" and "semantic.metrics" in error.hint and "marts.fct_events" in error.hint


@pytest.mark.parametrize(
    "text",
    [
        "SELECT m.active_users FROM semantic.metrics m JOIN marts.dim_users u ON true",
        "SELECT a.events FROM semantic.metrics a JOIN semantic.metrics b ON true",
        "SELECT platform, events, SUM(events) OVER (ORDER BY platform) FROM semantic.metrics",
        "SELECT events FROM semantic.metrics UNION ALL SELECT events FROM semantic.metrics",
        "WITH q AS (SELECT platform, events FROM semantic.metrics) SELECT a.events FROM q a JOIN q b ON true",
        "UPDATE semantic.metrics SET events = 1",
    ],
)
def test_unsupported_sql_says_what_is_supported(engine, text):
    error = refused(engine, text)
    assert error.sqlstate == "0A000" and "semantic.metrics" in (error.hint or error.message)


def test_engine_errors_carry_sqlstates(engine):
    # A slice the metric cannot be grouped by.
    error = refused(engine, "SELECT priority, active_users FROM semantic.metrics")
    assert error.sqlstate == "42703" and "priority" in error.message
    # A cumulative metric needs metric_time.
    assert refused(engine, "SELECT platform, active_users_7d FROM semantic.metrics").sqlstate == "22023"
    # Not a date.
    assert refused(engine, "SELECT events FROM semantic.metrics WHERE metric_time__day >= 'soon'").sqlstate == "22007"
    # Grouping errors.
    assert (
        refused(engine, "SELECT platform, country, SUM(events) FROM semantic.metrics GROUP BY platform").sqlstate
        == "42803"
    )


def test_a_row_level_policy_restricts_every_answer(engine, api):
    # An engine seen through a token's policy: metric queries get its filter; a mart is read
    # through the filter on its own column, or on its users; a mart with neither is refused.
    restricted = RestrictedEngine(engine, RowPolicy((Filter("country", FilterOp.EQ, "US"),), "country = 'US'"))
    visible_tables(engine)  # the catalog of this build, as the server lists it on connect
    result = answer(
        sqlglot.parse_one("SELECT platform, active_users FROM semantic.metrics ORDER BY 1", read="postgres"), restricted
    )
    expected = http(
        api,
        metrics=["active_users"],
        group_by=["platform"],
        order_by=["platform"],
        where=[{"field": "country", "op": "=", "value": "US"}],
    )
    assert_rows(result.rows, expected["rows"])
    marts = engine.schema("marts")

    def restricted_rows(sql: str) -> list[tuple]:
        return [tuple(r) for r in answer(sqlglot.parse_one(sql, read="postgres"), restricted).rows]

    def hand(sql: str) -> list[tuple]:
        return [tuple(r) for r in engine.client.query(sql.replace("marts.", f'"{marts}".')).rows]

    assert restricted_rows("SELECT country, COUNT(*) FROM marts.dim_users GROUP BY 1") == hand(
        "SELECT country, COUNT(*) FROM marts.dim_users WHERE country = 'US' GROUP BY 1"
    )
    assert restricted_rows("SELECT e.platform, COUNT(*) AS n FROM marts.fct_events AS e GROUP BY 1 ORDER BY 1") == hand(
        "SELECT e.platform, COUNT(*) AS n FROM marts.fct_events AS e JOIN marts.dim_users AS u "
        "ON u.user_id = e.user_id WHERE u.country = 'US' GROUP BY 1 ORDER BY 1"
    )
    with pytest.raises(SqlError) as info:
        answer(sqlglot.parse_one("SELECT COUNT(*) FROM marts.fct_incidents", read="postgres"), restricted)
    assert info.value.sqlstate == "42501"


def test_reads_data_tables():
    def reads(text: str) -> bool:
        return reads_data_tables(sqlglot.parse_one(text, read="postgres"))

    assert reads("SELECT events FROM semantic.metrics")
    assert reads('SELECT * FROM (SELECT "events" FROM "semantic"."metrics") t')
    assert reads("SELECT * FROM marts.fct_events")
    assert not reads("SELECT * FROM pg_catalog.pg_class")
    assert not reads("SELECT 1")


def test_visible_tables_describe_every_metric(engine, api):
    tables = {(t.schema, t.name): t for t in visible_tables(engine)}
    metrics = tables[("semantic", "metrics")]
    columns = {c.name: c for c in metrics.columns}
    catalog = api.client.get("/v1/metrics").json()["metrics"]
    for metric in catalog:
        assert columns[metric["name"]].comment == (metric["description"] or metric["label"])
    for grain in ("day", "week", "month", "quarter", "year"):
        assert columns[f"metric_time__{grain}"].type == "date"
    for name in ("platform", "country", "plan", "region", "user__country"):
        assert columns[name].type == "string" or name == "user__country"
    types = {
        c["name"]: c["type"]
        for c in http(api, metrics=["events", "arpu", "revenue"], group_by=["metric_time__day"])["columns"]
    }
    assert all(columns[n].type == types[n] for n in ("events", "arpu", "revenue"))
    assert ("marts", "fct_events") in tables
    assert {c.name for c in tables[("marts", "fct_events")].columns} >= {"event_id", "user_id", "platform"}
