with

source as (

    select * from {{ source('product', 'errors') }}

),

renamed as (

    select
        cast(error_id as varchar)      as error_id,
        cast(user_id as varchar)       as user_id,
        cast(session_id as varchar)    as session_id,
        cast(occurred_at as timestamp) as occurred_at,
        cast(platform as varchar)      as platform,
        cast(app_version as varchar)   as app_version,
        cast(severity as varchar)      as severity,
        cast(error_type as varchar)    as error_type
    from source

)

select * from renamed
