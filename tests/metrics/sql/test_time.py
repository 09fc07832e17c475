"""Cumulative metrics, time offsets, time-spine series, time zones and week starts, each
checked against hand-written SQL over the shop warehouse."""

from __future__ import annotations

import datetime as dt

import pytest

from metrics.errors import InvalidQuery
from metrics.query.request import MetricQuery, WeekStart

D = dt.date


def rows(engine, **query):
    """The values as the SQL computes them (the completeness step, which nulls a trailing
    window that leaves the data, is tested in tests/metrics/test_completeness.py)."""
    query.setdefault("null_uncovered_windows", False)
    return engine.query(MetricQuery(**query)).rows


def test_trailing_window_outside_the_data_is_null_by_default(shop_engine):
    """The same series with the completeness step: the first 6 days (their window starts
    before the first order) and the days after the last order are null, the rest as computed."""
    raw = rows(shop_engine, metrics=("revenue_7d",), group_by=("metric_time__day",))
    masked = shop_engine.query(MetricQuery(metrics=("revenue_7d",), group_by=("metric_time__day",)))
    first, last = raw[0][0], D(2026, 1, 28)  # the first and last order days
    for (day, value), (same_day, got) in zip(raw, masked.rows):
        assert day == same_day
        inside = day - dt.timedelta(days=6) >= first and day <= last
        assert got == (value if inside else None), day


def test_trailing_7_day_sum_by_day(shop_engine, shop_db):
    expected = shop_db.execute("""
        select s.date_day, sum(o.amount)
        from marts.time_spine s join marts.fct_orders o
          on cast(o.ordered_at as date) <= s.date_day and cast(o.ordered_at as date) > s.date_day - 7
        where s.date_day >= (select min(cast(ordered_at as date)) from marts.fct_orders)
          and s.date_day < (select max(cast(ordered_at as date)) from marts.fct_orders) + 7
        group by 1 order by 1""").fetchall()
    got = rows(shop_engine, metrics=("revenue_7d",), group_by=("metric_time__day",))
    assert got == expected
    # The series runs on while the window still reaches the last order (2026-01-28).
    assert got[-1][0] == D(2026, 2, 3)


def test_trailing_window_distinct_count_pre_aggregated_per_day(shop_engine, shop_db):
    expected = shop_db.execute("""
        select s.date_day, count(distinct o.customer_id)
        from marts.time_spine s join marts.fct_orders o
          on cast(o.ordered_at as date) <= s.date_day and cast(o.ordered_at as date) > s.date_day - 7
        where s.date_day >= date '2026-01-10' and s.date_day < date '2026-01-25'
        group by 1 order by 1""").fetchall()
    got = rows(
        shop_engine,
        metrics=("buyers_7d",),
        group_by=("metric_time__day",),
        start=dt.datetime(2026, 1, 10),
        end=dt.datetime(2026, 1, 25),
    )
    assert got == expected
    # The window reaches back before `start`: 2026-01-10 still sees the orders of 01-05 and 01-06.
    assert got[0] == (D(2026, 1, 10), 1)


def test_month_to_date_takes_the_last_day_of_each_month(shop_engine, shop_db):
    expected = shop_db.execute("""
        select date_trunc('month', ordered_at)::date, sum(amount) from marts.fct_orders group by 1 order by 1
    """).fetchall()
    assert rows(shop_engine, metrics=("revenue_mtd",), group_by=("metric_time__month",)) == expected


def test_all_time_cumulative_with_a_slice(shop_engine, shop_db):
    expected = shop_db.execute("""
        with days as (select date_day from marts.time_spine
                      where date_day between date '2026-01-05' and date '2026-01-28')
        select d.date_day, o.channel, sum(o.amount)
        from days d join marts.fct_orders o on cast(o.ordered_at as date) <= d.date_day
        group by 1, 2 order by 1, 2""").fetchall()
    got = rows(shop_engine, metrics=("revenue_all_time",), group_by=("metric_time__day", "order__channel"))
    assert got == expected


def test_first_value_per_week_is_the_default_period_aggregation(shop_engine):
    daily = dict(rows(shop_engine, metrics=("revenue_7d",), group_by=("metric_time__day",)))
    weekly = rows(shop_engine, metrics=("revenue_7d",), group_by=("metric_time__week",))
    for week, value in weekly:
        first_day = min(d for d in daily if week <= d < week + dt.timedelta(days=7))
        assert value == daily[first_day]


def test_cumulative_needs_metric_time(shop_engine):
    with pytest.raises(InvalidQuery, match="metric_time"):
        rows(shop_engine, metrics=("revenue_7d",), group_by=("country",))


def test_offset_window_compares_with_the_week_before(shop_engine, shop_db):
    expected = shop_db.execute("""
        with w as (select date_trunc('week', ordered_at)::date as wk, sum(amount) as revenue
                   from marts.fct_orders group by 1)
        select w.wk, w.revenue - prev.revenue from w left join w as prev on prev.wk = w.wk - 7
        order by 1""").fetchall()
    assert rows(shop_engine, metrics=("revenue_wow",), group_by=("metric_time__week",)) == expected


def test_offset_over_a_range_and_a_slice_reads_the_model_once(shop_engine, shop_db):
    start, end = dt.datetime(2026, 1, 12), dt.datetime(2026, 2, 2)
    query = dict(metrics=("revenue_wow",), group_by=("metric_time__week", "customer__country"), start=start, end=end)
    expected = shop_db.execute(
        """
        with w as (select date_trunc('week', o.ordered_at)::date as wk, c.country, sum(o.amount) as revenue
                   from marts.fct_orders o left join marts.dim_customers c using (customer_id) group by 1, 2)
        select w.wk, w.country, w.revenue - prev.revenue from w
        left join w as prev on prev.wk = w.wk - 7 and prev.country is not distinct from w.country
        where w.wk >= ? and w.wk < ? order by 1, 2 nulls last""",
        [start.date(), end.date()],
    ).fetchall()
    assert expected and rows(shop_engine, **query) == expected
    # The week before is aggregated in the same scan as the week itself.
    assert shop_engine.compile(MetricQuery(**query)).sql.count('"fct_orders"') == 1


def test_join_to_timespine_fills_every_day(shop_engine, shop_db):
    got = rows(
        shop_engine,
        metrics=("orders_every_day",),
        group_by=("metric_time__day",),
        start=dt.datetime(2026, 1, 1),
        end=dt.datetime(2026, 2, 1),
    )
    expected = shop_db.execute("""
        select s.date_day, count(o.order_id) from marts.time_spine s
        left join marts.fct_orders o on cast(o.ordered_at as date) = s.date_day
        where s.date_day >= date '2026-01-01' and s.date_day < date '2026-02-01' group by 1 order by 1
    """).fetchall()
    assert got == expected and len(got) == 31


def test_time_zone_moves_events_across_midnight_and_bounds(shop_engine, shop_db):
    # o3 at 2026-01-11 23:59 UTC is 2026-01-12 00:59 in Berlin (UTC+1 in winter).
    berlin = rows(
        shop_engine,
        metrics=("orders",),
        group_by=("metric_time__day",),
        timezone="Europe/Berlin",
        start=dt.datetime(2026, 1, 12),
        end=dt.datetime(2026, 1, 13),
    )
    assert berlin == [(D(2026, 1, 12), 2)]
    utc = rows(
        shop_engine,
        metrics=("orders",),
        group_by=("metric_time__day",),
        start=dt.datetime(2026, 1, 12),
        end=dt.datetime(2026, 1, 13),
    )
    assert utc == [(D(2026, 1, 12), 1)]
    expected = shop_db.execute("""
        select cast(timezone('Europe/Berlin', ordered_at::timestamptz) as date), count(*) from marts.fct_orders
        group by 1 order by 1""").fetchall()
    assert rows(shop_engine, metrics=("orders",), group_by=("metric_time__day",), timezone="Europe/Berlin") == expected


def test_time_zone_is_dst_aware():
    from metrics.query.request import MetricQuery as Q

    query = Q(metrics=("orders",), timezone="Europe/Berlin")
    assert query.utc(dt.datetime(2026, 1, 15)) == dt.datetime(2026, 1, 14, 23)  # CET, UTC+1
    assert query.utc(dt.datetime(2026, 7, 15)) == dt.datetime(2026, 7, 14, 22)  # CEST, UTC+2


def test_sunday_weeks(shop_engine, shop_db):
    expected = shop_db.execute("""
        select (date_trunc('week', ordered_at + interval 1 day) - interval 1 day)::date, count(*)
        from marts.fct_orders group by 1 order by 1""").fetchall()
    got = rows(shop_engine, metrics=("orders",), group_by=("metric_time__week",), week_start=WeekStart.SUNDAY)
    assert got == expected and all(week.weekday() == 6 for week, _ in got)


def test_conversion_rate_within_a_window(shop_engine, shop_db):
    expected = shop_db.execute("""
        with converted as (
            select c.customer_id, c.signed_up_at,
                   exists (select 1 from marts.fct_orders o where o.customer_id = c.customer_id
                           and cast(o.ordered_at as date) >= cast(c.signed_up_at as date)
                           and cast(o.ordered_at as date) < cast(c.signed_up_at as date) + 3) as did
            from marts.dim_customers c)
        select date_trunc('week', signed_up_at)::date, count(*) filter (where did) / count(*)
        from converted group by 1 order by 1""").fetchall()
    got = rows(shop_engine, metrics=("signup_to_order_3d",), group_by=("metric_time__week",))
    assert [w for w, _ in got] == [w for w, _ in expected]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected])
    assert [v for _, v in got] == pytest.approx([1 / 2, 1 / 3])


def test_conversions_count_each_conversion_event_once(shop_engine, shop_db):
    expected = shop_db.execute("""
        select count(*) from marts.fct_orders o join marts.dim_customers c using (customer_id)
        where cast(o.ordered_at as date) >= cast(c.signed_up_at as date)
          and cast(o.ordered_at as date) < cast(c.signed_up_at as date) + 3""").fetchone()[0]
    assert rows(shop_engine, metrics=("signup_orders_3d",)) == [(expected,)]


def test_semi_additive_balance_sums_each_customers_last_snapshot_per_bucket(shop_engine, shop_db):
    expected = shop_db.execute("""
        select month, sum(balance) from (
            select date_trunc('month', snapshot_date)::date as month, balance
            from marts.fct_balances
            qualify snapshot_date = max(snapshot_date) over (
                partition by date_trunc('month', snapshot_date), customer_id))
        group by 1 order by 1""").fetchall()
    assert rows(shop_engine, metrics=("balance",), group_by=("metric_time__month",)) == expected
    assert expected == [(D(2026, 1, 1), 180.0), (D(2026, 2, 1), 165.0)]
    # Without metric_time: each customer's latest balance overall.
    assert rows(shop_engine, metrics=("balance",)) == [(90.0 + 30.0 + 75.0,)]
