with

source as (

    select * from {{ source('product', 'support_tickets') }}

),

renamed as (

    select
        cast(ticket_id as {{ string_type() }}) as ticket_id,
        cast(account_id as {{ string_type() }}) as account_id,
        cast(user_id as {{ string_type() }}) as user_id,
        {{ utc_timestamp("created_at") }} as created_at,
        {{ utc_timestamp("resolved_at") }} as resolved_at,
        cast(category as {{ string_type() }}) as category,
        cast(priority as {{ string_type() }}) as priority,
        cast(feature_key as {{ string_type() }}) as feature_key
    from source

)

select * from renamed
