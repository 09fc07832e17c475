"""Completeness (metrics/query/completeness.py) and empty answers, on the sample build and on
generated data with planted edge cases; expected values from hand-written SQL (tests/oracle.py
and the queries written out below), never from the engine."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from metrics.engine import MetricsEngine
from metrics.query.completeness import Reason
from metrics.query.request import Filter, FilterOp, MetricQuery
from tests.conftest import northstar
from tests.oracle import Oracle


@pytest.fixture(scope="module")
def engine(built_warehouse):
    engine = MetricsEngine.open(built_warehouse.warehouse)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def oracle(built_warehouse):
    return Oracle(built_warehouse.landing_dir)


def _day(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _rows(result) -> dict:
    return {r[0].isoformat() if r[0] is not None else None: r[1:] for r in result.rows}


def _hand(engine, sql: str) -> list[tuple]:
    return engine.client.query(sql).rows


def test_retention_cohorts_outside_the_events_are_null_with_the_reason(engine, oracle):
    """The issue's case: monthly d7_retention was 0.0 for cohorts before the first event and a
    partial 0.246 for the last month; both are null, with window_not_covered, and the
    covered cohorts keep the hand-written value."""
    result = engine.query(MetricQuery(metrics=("d7_retention", "new_users"), group_by=("metric_time__month",)))
    got = _rows(result)
    expected = {row[0]: row[1:] for row in oracle.query(["d7_retention", "new_users"], ["metric_time__month"])}
    assert set(got) == set(expected)
    for month, (retention, users) in expected.items():
        assert got[month][1] == users
        assert (got[month][0] is None) == (retention is None), month
        if retention is not None:
            assert got[month][0] == pytest.approx(retention, rel=1e-9)
    ((first_event, last_event),) = _hand(
        engine, "select min(event_ts)::date, max(event_ts)::date from marts.fct_events"
    )
    nulled = {
        i.bucket.isoformat()
        for i in result.incomplete
        if i.metric == "d7_retention" and i.reason is Reason.WINDOW_NOT_COVERED
    }
    assert nulled == {m for m, (r, _) in expected.items() if r is None}
    assert "2024-07-01" in nulled and "2026-04-01" in nulled  # before the first event, after the last
    # every covered month lies inside the events' reach, with 7 days to spare at the end
    for month in set(expected) - nulled:
        start = dt.date.fromisoformat(month)
        assert start >= first_event - dt.timedelta(days=1) and start < last_event - dt.timedelta(days=7)
    # the SQL alone (the mask off) answers what the issue saw: 0.0 for a cohort before the events
    raw = engine.query(
        MetricQuery(metrics=("d7_retention",), group_by=("metric_time__month",), null_uncovered_windows=False)
    )
    assert _rows(raw)["2024-07-01"] == (0.0,)


def test_retention_by_week_and_cut_by_range_matches_the_oracle(engine, oracle):
    for grain, start, end in (
        ("week", "2026-01-03", "2026-04-01"),
        ("day", "2026-03-20", None),
        ("week", None, "2026-02-01"),
    ):
        query = MetricQuery(
            metrics=("d7_retention",),
            group_by=(f"metric_time__{grain}",),
            start=_day(start) if start else None,
            end=_day(end) if end else None,
        )
        got = _rows(engine.query(query))
        expected = {
            row[0]: row[1:] for row in oracle.query(["d7_retention"], [f"metric_time__{grain}"], start=start, end=end)
        }
        assert set(got) == set(expected)
        for key, (value,) in expected.items():
            assert got[key][0] == (pytest.approx(value, rel=1e-9) if value is not None else None), (grain, key)


def test_conversion_window_not_in_the_data_is_null(engine):
    """signup_to_purchase_7d reads purchases on the signup day and the 6 after it: a week
    whose last signup day + 6 is after the last event is null, so is any week before the
    first event; the others equal hand-written SQL."""
    result = engine.query(MetricQuery(metrics=("signup_to_purchase_7d",), group_by=("metric_time__week",)))
    got = _rows(result)
    ((first_event, last_event),) = _hand(
        engine, "select min(event_ts)::date, max(event_ts)::date from marts.fct_events"
    )
    ((last_signup,),) = _hand(engine, "select max(signup_at)::date from marts.dim_users")
    hand = dict(
        _hand(
            engine,
            """
        select cast(date_trunc('week', u.signup_at) as date)::varchar,
               cast(count(distinct c.user_id) as double) / count(distinct u.user_id)
        from marts.dim_users u
        left join (select distinct u.user_id from marts.dim_users u join marts.fct_events e
                   on e.user_id = u.user_id and e.revenue_usd > 0
                   and cast(e.event_ts as date) >= cast(u.signup_at as date)
                   and cast(e.event_ts as date) < cast(u.signup_at as date) + interval 7 day) c
          on c.user_id = u.user_id group by 1""",
        )
    )
    assert set(got) == set(hand)
    for week, value in hand.items():
        monday = dt.date.fromisoformat(week)
        last_day = min(monday + dt.timedelta(days=6), last_signup)
        covered = monday >= first_event and last_day + dt.timedelta(days=6) <= last_event
        assert got[week][0] == (pytest.approx(value, rel=1e-9) if covered else None), week
    assert any(v[0] is None for v in got.values()) and any(v[0] is not None for v in got.values())


def test_partial_buckets_are_flagged_not_nulled(engine):
    """April has 4 days of events: arpu keeps its value and is flagged after_data; a week cut
    by start is flagged range_cut; full buckets are complete."""
    result = engine.query(MetricQuery(metrics=("arpu",), group_by=("metric_time__month",)))
    ((last_event,),) = _hand(engine, "select max(event_ts)::date from marts.fct_events")
    flags = {i.bucket.isoformat(): i.reason for i in result.incomplete}
    assert flags[last_event.replace(day=1).isoformat()] is Reason.AFTER_DATA
    assert all(v[0] is not None for v in _rows(result).values())
    by_row = dict(zip((r[0].isoformat() for r in result.rows), result.complete))
    assert by_row["2026-02-01"] == (True,) and by_row[last_event.replace(day=1).isoformat()] == (False,)
    cut = engine.query(
        MetricQuery(
            metrics=("arpu",), group_by=("metric_time__week",), start=_day("2026-01-14"), end=_day("2026-02-02")
        )
    )
    reasons = {i.bucket.isoformat(): i.reason for i in cut.incomplete}
    assert reasons == {"2026-01-12": Reason.RANGE_CUT}
    ((events,),) = _hand(
        engine, "select count(*) from marts.fct_events where event_ts >= '2026-01-14' and event_ts < '2026-01-19'"
    )
    partial = engine.query(
        MetricQuery(
            metrics=("events",), group_by=("metric_time__week",), start=_day("2026-01-14"), end=_day("2026-01-19")
        )
    )
    assert partial.rows == [(dt.date(2026, 1, 12), events)] and partial.complete == [(False,)]


def test_counts_over_no_rows_are_zero_and_ratios_null(engine):
    """A filter that matches nothing: one row, every count and sum 0, every ratio null (events
    was null and active_users 0 before)."""
    metrics = (
        "events",
        "active_users",
        "revenue",
        "new_users",
        "crashes",
        "arpu",
        "d7_retention",
        "crash_free_user_rate",
    )
    result = engine.query(MetricQuery(metrics=metrics, where=(Filter("country", FilterOp.EQ, "ZZ"),)))
    (row,) = result.rows
    values = dict(zip(metrics, row))
    assert [values[m] for m in ("events", "active_users", "revenue", "new_users", "crashes")] == [0] * 5
    assert values["arpu"] is None and values["d7_retention"] is None
    # grouped, no rows means no row (not a row of nulls)
    grouped = engine.query(
        MetricQuery(
            metrics=("events", "active_users"),
            group_by=("metric_time__week",),
            where=(Filter("country", FilterOp.EQ, "ZZ"),),
        )
    )
    assert grouped.rows == []


def test_parity_semantics_kept_for_grouped_rows(engine):
    """Grouped answers keep MetricFlow's rule: a group only one input has is null in the other
    (here errors without events: events null, crashes counted)."""
    result = engine.query(
        dataclasses.replace(
            MetricQuery(metrics=("events", "crashes"), group_by=("metric_time__day", "platform", "app_version"))
        )
    )
    assert any(r[3] is None and r[4] is not None for r in result.rows)


# -- generated data with planted edge cases ----------------------------------------------------


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Generated landing data (a short window) plus users planted before the first event and
    after the last one, built by the real `northstar build`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from seeds import generator

    root = tmp_path_factory.mktemp("completeness")
    landing = root / "landing"
    generator.generate(landing, users=400, days=30, seed=3, start=dt.date(2026, 5, 4))
    users_file = next(landing.glob("users*"))
    table = pq.read_table(users_file) if users_file.suffix == ".parquet" else None
    if table is None:
        pytest.skip("the generator does not write users as one Parquet file")
    account = table.column("account_id")[0].as_py()
    early = [f"planted_early_{i}" for i in range(5)]
    late = [f"planted_late_{i}" for i in range(3)]
    planted_rows = {
        "user_id": early + late,
        "account_id": [account] * 8,
        "signup_at": [dt.datetime(2026, 2, 10, 12)] * 5 + [dt.datetime(2026, 6, 15, 9)] * 3,
        "country": ["ZZ"] * 8,
        "is_internal": [False] * 8,
    }
    assert set(table.column_names) == set(planted_rows), table.column_names
    extra = pa.Table.from_pydict({n: planted_rows[n] for n in table.column_names}, schema=table.schema)
    pq.write_table(pa.concat_tables([table, extra]), users_file)
    warehouse = root / "data" / "northstar.duckdb"
    northstar("build", "--landing", str(landing), "--warehouse", str(warehouse), "--no-docs")
    engine = MetricsEngine.open(warehouse)
    yield engine, Oracle(landing)
    engine.close()


def test_planted_cohorts_before_and_after_the_events(planted):
    engine, oracle = planted
    query = MetricQuery(metrics=("d7_retention", "new_users"), group_by=("metric_time__week",))
    got = _rows(engine.query(query))
    expected = {row[0]: row[1:] for row in oracle.query(["d7_retention", "new_users"], ["metric_time__week"])}
    assert set(got) == set(expected)
    for week, (retention, users) in expected.items():
        assert got[week][1] == users
        assert got[week][0] == (pytest.approx(retention, rel=1e-9) if retention is not None else None), week
    assert got["2026-02-09"][0] is None and got["2026-02-09"][1] >= 5  # before the first event: null, never 0
    assert got["2026-06-15"][0] is None  # after the last event
    assert any(v[0] is not None for v in got.values())
    # the planted cohort alone, by country: no time group-by, still null with the reason
    alone = engine.query(
        MetricQuery(metrics=("d7_retention", "new_users"), where=(Filter("country", FilterOp.EQ, "ZZ"),))
    )
    assert alone.rows == [(None, 8)]
    assert [i.reason for i in alone.incomplete] == [Reason.WINDOW_NOT_COVERED]


def test_planted_empty_filter(planted):
    engine, oracle = planted
    metrics = ("events", "active_users", "revenue", "arpu")
    result = engine.query(MetricQuery(metrics=metrics, where=(Filter("country", FilterOp.EQ, "ZZ"),)))
    ((events,),) = oracle.con.execute("select count(*) from src_events where country = 'ZZ'").fetchall()
    assert events == 0
    assert result.rows == [(0, 0, 0, None)]
