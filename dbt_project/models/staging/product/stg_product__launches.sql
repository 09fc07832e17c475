with

source as (

    select * from {{ source('product', 'launches') }}

),

renamed as (

    select
        cast(launch_id as {{ string_type() }}) as launch_id,
        cast(feature_key as {{ string_type() }}) as feature_key,
        cast(launch_name as {{ string_type() }}) as launch_name,
        cast(tier as {{ string_type() }}) as tier,
        cast(owner_team as {{ string_type() }}) as owner_team,
        {{ utc_timestamp("launched_at") }} as launched_at
    from source

)

select * from renamed
