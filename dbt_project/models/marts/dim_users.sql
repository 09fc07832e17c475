with

users as (

    select * from {{ ref('stg_product__users') }}

),

accounts as (

    select * from {{ ref('stg_product__accounts') }}

),

events as (

    select * from {{ ref('stg_product__events') }}

),

external_users as (

    -- internal users (employees, test users) count nowhere
    select *
    from users
    where not coalesce(is_internal, false)

),

ranked_events as (

    select
        user_id,
        event_ts,
        platform,
        row_number() over (
            partition by user_id
            order by event_ts, event_id
        ) as event_number
    from events

),

first_events as (

    select
        user_id,
        event_ts as first_event_at,
        platform as first_event_platform
    from ranked_events
    where event_number = 1

),

retention as (

    -- signup UTC day is day 0; retained when there is an event on day 1..7.
    -- Events before signup fall on day < 0 and never count.
    select
        external_users.user_id,
        bool_or(
            {{ dbt.datediff(
                'cast(external_users.signup_at as date)',
                'cast(events.event_ts as date)',
                'day'
            ) }} between 1 and 7
        ) as is_retained_d7
    from external_users
    inner join events
        on external_users.user_id = events.user_id
    group by external_users.user_id

),

final as (

    select
        external_users.user_id,
        external_users.account_id,
        external_users.signup_at,
        cast(external_users.signup_at as date) as signup_date,
        external_users.country,
        accounts.plan,
        accounts.region,
        first_events.first_event_at,
        first_events.first_event_platform,
        coalesce(retention.is_retained_d7, false) as is_retained_d7
    from external_users
    left join accounts
        on external_users.account_id = accounts.account_id
    left join first_events
        on external_users.user_id = first_events.user_id
    left join retention
        on external_users.user_id = retention.user_id

)

select * from final
