with

source as (

    select * from {{ source('product', 'releases') }}

),

renamed as (

    select
        cast(platform as varchar)      as platform,
        cast(app_version as varchar)   as app_version,
        cast(released_at as timestamp) as released_at
    from source

)

select * from renamed
