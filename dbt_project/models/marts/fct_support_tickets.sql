with

support_tickets as (

    select * from {{ ref('stg_product__support_tickets') }}

),

internal_users as (

    {{ internal_user_ids() }}

),

final as (

    select
        support_tickets.ticket_id,
        support_tickets.account_id,
        support_tickets.user_id,
        support_tickets.created_at,
        support_tickets.resolved_at,
        support_tickets.category,
        support_tickets.priority,
        support_tickets.feature_key
    from support_tickets
    left join internal_users
        on support_tickets.user_id = internal_users.user_id
    -- drop internal users' tickets; tickets without a user_id are kept
    where internal_users.user_id is null

)

select * from final
