with

source as (

    select * from {{ source('product', 'releases') }}

),

renamed as (

    select
        cast(platform as {{ string_type() }})      as platform,
        cast(app_version as {{ string_type() }})   as app_version,
        cast(released_at as timestamp) as released_at
    from source

)

select * from renamed
