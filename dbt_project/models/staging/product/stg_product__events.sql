with

source as (

    select * from {{ source('product', 'events') }}

),

renamed as (

    -- the same event may land twice as an exact duplicate row: distinct over
    -- the typed columns collapses those, so every event_id counts once.
    -- Non-identical rows sharing an event_id survive and fail the unique test.
    select distinct
        cast(event_id as {{ string_type() }}) as event_id,
        cast(user_id as {{ string_type() }}) as user_id,
        cast(session_id as {{ string_type() }}) as session_id,
        cast(event_name as {{ string_type() }}) as event_name,
        {{ utc_timestamp("event_ts") }} as event_ts,
        cast(platform as {{ string_type() }}) as platform,
        cast(app_version as {{ string_type() }}) as app_version,
        cast(feature_key as {{ string_type() }}) as feature_key,
        cast(revenue_usd as decimal(18, 2)) as revenue_usd
    from source

)

select * from renamed
