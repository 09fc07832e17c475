with

errors as (

    select * from {{ ref('stg_product__errors') }}

),

internal_users as (

    {{ internal_user_ids() }}

),

final as (

    select
        errors.error_id,
        errors.user_id,
        errors.session_id,
        errors.occurred_at,
        errors.platform,
        errors.app_version,
        errors.severity,
        errors.error_type
    from errors
    left join internal_users
        on errors.user_id = internal_users.user_id
    -- drop internal users' errors; anonymous errors (no user_id) are kept
    where internal_users.user_id is null

)

select * from final
