with

assignments as (

    select * from {{ ref('stg_product__experiment_assignments') }}

),

internal_users as (

    {{ internal_user_ids() }}

),

external_assignments as (

    select assignments.*
    from assignments
    left join internal_users
        on assignments.user_id = internal_users.user_id
    where internal_users.user_id is null

),

ranked as (

    -- a user is analysed in the first variant it was assigned
    -- (earliest assigned_at; variant breaks ties)
    select
        experiment_id,
        user_id,
        variant,
        assigned_at,
        count(distinct variant) over (
            partition by experiment_id, user_id
        ) as variant_count,
        row_number() over (
            partition by experiment_id, user_id
            order by assigned_at, variant
        ) as assignment_number
    from external_assignments

),

final as (

    select
        experiment_id || ':' || user_id as assignment_key,
        experiment_id,
        user_id,
        variant,
        assigned_at,
        variant_count
    from ranked
    where assignment_number = 1

)

select * from final
