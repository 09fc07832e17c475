with

source as (

    select * from {{ source('product', 'users') }}

),

renamed as (

    select
        cast(user_id as {{ string_type() }}) as user_id,
        cast(account_id as {{ string_type() }}) as account_id,
        {{ utc_timestamp("signup_at") }} as signup_at,
        cast(country as {{ string_type() }}) as country,
        cast(is_internal as boolean) as is_internal
    from source

)

select * from renamed
