with

source as (

    select * from {{ source('product', 'accounts') }}

),

renamed as (

    select
        cast(account_id as {{ string_type() }}) as account_id,
        cast(account_name as {{ string_type() }}) as account_name,
        cast(plan as {{ string_type() }}) as plan,
        cast(industry as {{ string_type() }}) as industry,
        cast(region as {{ string_type() }}) as region,
        {{ utc_timestamp("created_at") }} as created_at
    from source

)

select * from renamed
