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

variant_counts as (

    -- (count(distinct ...) over a window is not SQL every warehouse runs)
    select
        experiment_id,
        user_id,
        count(distinct variant) as variant_count
    from external_assignments
    group by experiment_id, user_id

),

ranked as (

    -- a user is analysed in the first variant it was assigned
    -- (earliest assigned_at; variant breaks ties)
    select
        external_assignments.experiment_id,
        external_assignments.user_id,
        external_assignments.variant,
        external_assignments.assigned_at,
        variant_counts.variant_count,
        row_number() over (
            partition by external_assignments.experiment_id, external_assignments.user_id
            order by external_assignments.assigned_at, external_assignments.variant
        ) as assignment_number
    from external_assignments
    -- plain equality (both keys are never null: tested below) lets every warehouse hash-join;
    -- PostgreSQL runs a null-safe join as a nested loop, quadratic in the assignments
    inner join variant_counts
        on
            external_assignments.experiment_id = variant_counts.experiment_id
            and external_assignments.user_id = variant_counts.user_id

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
