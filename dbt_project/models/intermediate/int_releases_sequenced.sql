with

releases as (

    select * from {{ ref('stg_product__releases') }}

),

sequenced as (

    select
        platform,
        app_version,
        released_at,
        -- release order within a platform; app_version breaks ties
        row_number() over (
            partition by platform
            order by released_at, app_version
        ) as release_number,
        lag(app_version) over (
            partition by platform
            order by released_at, app_version
        ) as previous_app_version
    from releases

)

select * from sequenced
