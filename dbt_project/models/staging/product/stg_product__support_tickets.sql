with

source as (

    select * from {{ source('product', 'support_tickets') }}

),

renamed as (

    select
        cast(ticket_id as varchar)     as ticket_id,
        cast(account_id as varchar)    as account_id,
        cast(user_id as varchar)       as user_id,
        cast(created_at as timestamp)  as created_at,
        cast(resolved_at as timestamp) as resolved_at,
        cast(category as varchar)      as category,
        cast(priority as varchar)      as priority,
        cast(feature_key as varchar)   as feature_key
    from source

)

select * from renamed
