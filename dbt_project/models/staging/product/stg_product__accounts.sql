with

source as (

    select * from {{ source('product', 'accounts') }}

),

renamed as (

    select
        cast(account_id as varchar)   as account_id,
        cast(account_name as varchar) as account_name,
        cast(plan as varchar)         as plan,
        cast(industry as varchar)     as industry,
        cast(region as varchar)       as region,
        cast(created_at as timestamp) as created_at
    from source

)

select * from renamed
