with

source as (

    select * from {{ source('product', 'releases') }}

),

renamed as (

    select
        cast(platform as {{ string_type() }}) as platform,
        cast(app_version as {{ string_type() }}) as app_version,
        {{ utc_timestamp("released_at") }} as released_at
    from source

)

select * from renamed
