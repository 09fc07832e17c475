with

source as (

    select * from {{ source('product', 'feedback') }}

),

renamed as (

    select
        cast(feedback_id as {{ string_type() }}) as feedback_id,
        cast(user_id as {{ string_type() }}) as user_id,
        {{ utc_timestamp("submitted_at") }} as submitted_at,
        cast(channel as {{ string_type() }}) as channel,
        cast(nps_score as integer) as nps_score,
        cast(csat_score as integer) as csat_score,
        cast(comment as {{ string_type() }}) as comment,
        cast(feature_key as {{ string_type() }}) as feature_key
    from source

)

select * from renamed
