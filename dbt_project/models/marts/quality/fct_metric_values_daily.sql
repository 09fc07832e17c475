-- one row per (metric, UTC day) for the pack metrics the daily anomaly check watches.
-- `northstar build` on DuckDB computes them with the semantic layer's own SQL
-- (metrics/sql/metric_values.py) into engine_tables.metric_values_daily between its two dbt
-- phases; this model then only publishes that table under the marts' contract and tests.
{% if var('metric_values_from_engine', false) %}

-- depends_on: {{ ref('fct_events') }}
-- depends_on: {{ ref('fct_errors') }}
-- depends_on: {{ ref('fct_support_tickets') }}
-- depends_on: {{ ref('dim_users') }}
-- depends_on: {{ ref('metricflow_time_spine') }}
    select
        cast(metric_name as varchar) as metric_name,
        cast(metric_date as date) as metric_date,
        cast(metric_value as {{ double_type() }}) as metric_value
    from {{ source('engine_tables', 'metric_values_daily') }}

{% else %}
-- Warehouses the build cannot yet write engine tables into (PostgreSQL, Spark) compute
-- them here from the marts with the semantic layer's definitions (see the model's YAML);
-- days without events fall outside the spine's range, days inside it with no rows count 0
    with

    events as (

        select * from {{ ref('fct_events') }}

    ),

    errors as (

        select * from {{ ref('fct_errors') }}

    ),

    tickets as (

        select * from {{ ref('fct_support_tickets') }}

    ),

    users as (

        select * from {{ ref('dim_users') }}

    ),

    spine as (

        select date_day as metric_date
        from {{ ref('metricflow_time_spine') }}
        where
            date_day between (select min(event_date) from events)
            and (select max(event_date) from events)

    ),

    events_daily as (

        select
            event_date as metric_date,
            count(*) as events,
            count(distinct user_id) as active_users,
            count(distinct session_id) as sessions,
            coalesce(sum(revenue_usd), 0) as revenue,
            count(distinct case when feature_key is not null then user_id end) as feature_users
        from events
        group by event_date

    ),

    errors_daily as (

        select
            cast(occurred_at as date) as metric_date,
            sum(case when severity = 'crash' then 1 else 0 end) as crashes,
            count(distinct case when severity = 'crash' then user_id end) as crashed_users,
            sum(case when severity in ('crash', 'error') then 1 else 0 end) as errors
        from errors
        group by cast(occurred_at as date)

    ),

    tickets_daily as (

        select
            cast(created_at as date) as metric_date,
            count(*) as tickets
        from tickets
        group by cast(created_at as date)

    ),

    signups_daily as (

        select
            signup_date as metric_date,
            count(*) as new_users
        from users
        group by signup_date

    ),

    wide as (

        select
            spine.metric_date,
            cast(coalesce(events_daily.active_users, 0) as {{ double_type() }}) as active_users,
            cast(coalesce(events_daily.events, 0) as {{ double_type() }}) as events,
            cast(coalesce(events_daily.sessions, 0) as {{ double_type() }}) as sessions,
            cast(coalesce(events_daily.revenue, 0) as {{ double_type() }}) as revenue,
            cast(coalesce(events_daily.feature_users, 0) as {{ double_type() }}) as feature_users,
            cast(coalesce(signups_daily.new_users, 0) as {{ double_type() }}) as new_users,
            cast(coalesce(errors_daily.crashes, 0) as {{ double_type() }}) as crashes,
            cast(coalesce(errors_daily.errors, 0) as {{ double_type() }}) as errors,
            cast(coalesce(tickets_daily.tickets, 0) as {{ double_type() }}) as tickets,
            -- ratios as the governed metrics define them: null on a zero denominator
            -- (double precision: integer / integer truncates on some warehouses)
            1 - cast(coalesce(errors_daily.crashed_users, 0) as {{ double_type() }})
            / nullif(events_daily.active_users, 0)
                as crash_free_user_rate,
            1000 * cast(coalesce(errors_daily.errors, 0) as {{ double_type() }}) / nullif(events_daily.events, 0)
                as errors_per_1k_events,
            1000 * cast(coalesce(tickets_daily.tickets, 0) as {{ double_type() }})
            / nullif(events_daily.active_users, 0)
                as tickets_per_1k_active_users
        from spine
        left join events_daily
            on spine.metric_date = events_daily.metric_date
        left join errors_daily
            on spine.metric_date = errors_daily.metric_date
        left join tickets_daily
            on spine.metric_date = tickets_daily.metric_date
        left join signups_daily
            on spine.metric_date = signups_daily.metric_date

    ),

    final as (

    -- one row per (metric, day): a union of one select per metric column
    -- (UNPIVOT is not SQL every warehouse runs); a null ratio (zero denominator) has no row
    {%- set metric_columns = [
        'active_users', 'events', 'sessions', 'revenue', 'feature_users', 'new_users', 'crashes',
        'errors', 'tickets', 'crash_free_user_rate', 'errors_per_1k_events',
        'tickets_per_1k_active_users',
    ] %}
        {%- for column in metric_columns %}
            select
                '{{ column }}' as metric_name,
                metric_date,
                cast({{ column }} as {{ double_type() }}) as metric_value
            from wide
            where {{ column }} is not null
                        {{ 'union all' if not loop.last }}
        {%- endfor %}

    )

    select * from final

{% endif %}
