with

events as (

    -- already deduplicated: one row per event_id
    select * from {{ ref('stg_product__events') }}

),

internal_users as (

    {{ internal_user_ids() }}

),

final as (

    select
        events.event_id,
        events.user_id,
        events.session_id,
        events.event_name,
        events.event_ts,
        cast(events.event_ts as date) as event_date,
        events.platform,
        events.app_version,
        events.feature_key,
        events.revenue_usd
    from events
    left join internal_users
        on events.user_id = internal_users.user_id
    -- drop internal users' events; events without a user_id are kept
    where internal_users.user_id is null

)

select * from final
