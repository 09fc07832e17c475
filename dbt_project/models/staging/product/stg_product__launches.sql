with

source as (

    select * from {{ source('product', 'launches') }}

),

renamed as (

    select
        cast(launch_id as varchar)     as launch_id,
        cast(feature_key as varchar)   as feature_key,
        cast(launch_name as varchar)   as launch_name,
        cast(tier as varchar)          as tier,
        cast(owner_team as varchar)    as owner_team,
        cast(launched_at as timestamp) as launched_at
    from source

)

select * from renamed
