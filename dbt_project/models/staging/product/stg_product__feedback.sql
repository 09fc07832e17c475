with

source as (

    select * from {{ source('product', 'feedback') }}

),

renamed as (

    select
        cast(feedback_id as varchar)    as feedback_id,
        cast(user_id as varchar)        as user_id,
        cast(submitted_at as timestamp) as submitted_at,
        cast(channel as varchar)        as channel,
        cast(nps_score as integer)      as nps_score,
        cast(csat_score as integer)     as csat_score,
        cast(comment as varchar)        as comment,
        cast(feature_key as varchar)    as feature_key
    from source

)

select * from renamed
