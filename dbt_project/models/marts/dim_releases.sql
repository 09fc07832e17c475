with

releases as (

    select * from {{ ref('int_releases_sequenced') }}

),

final as (

    select
        platform || ':' || app_version as release_key,
        platform,
        app_version,
        released_at,
        previous_app_version
    from releases

)

select * from final
