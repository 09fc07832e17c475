with

source as (

    select * from {{ source('product', 'errors') }}

),

renamed as (

    select
        cast(error_id as {{ string_type() }}) as error_id,
        cast(user_id as {{ string_type() }}) as user_id,
        cast(session_id as {{ string_type() }}) as session_id,
        {{ utc_timestamp("occurred_at") }} as occurred_at,
        cast(platform as {{ string_type() }}) as platform,
        cast(app_version as {{ string_type() }}) as app_version,
        cast(severity as {{ string_type() }}) as severity,
        cast(error_type as {{ string_type() }}) as error_type
    from source

)

select * from renamed
