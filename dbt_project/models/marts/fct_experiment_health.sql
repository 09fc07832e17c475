{#- Rows the build computes with northstar's engine after the other models are built
    (metrics/experiment_results.py), staged in the table `experiment_health` of the schema the build
    names in the `experiment_readouts_schema` var. Without it (a plain `dbt build`) the model
    is empty, with the same columns. -#}
{% set staged = var('experiment_readouts_schema', none) %}

{% if staged %}

    select
        cast(experiment_id as varchar) as experiment_id,
        cast(status as varchar) as status,
        cast(users as bigint) as users,
        cast(srm_p_value as double precision) as srm_p_value,
        cast(srm_warning as boolean) as srm_warning,
        cast(multiple_exposure_users as bigint) as multiple_exposure_users,
        cast(multiple_exposure_share as double precision) as multiple_exposure_share,
        cast(multiple_exposure_warning as boolean) as multiple_exposure_warning,
        cast(assigned_before_start as bigint) as assigned_before_start,
        cast(assigned_after_end as bigint) as assigned_after_end,
        cast(out_of_window_warning as boolean) as out_of_window_warning,
        cast(imbalanced_days as bigint) as imbalanced_days,
        cast(planned_users_per_variant as bigint) as planned_users_per_variant,
        cast(smallest_variant_users as bigint) as smallest_variant_users,
        cast(planned_sample_reached as boolean) as planned_sample_reached,
        cast(warnings as varchar) as warnings,
        cast(build_id as varchar) as build_id
    from {{ adapter.quote(staged) }}.experiment_health

{% else %}

    select
        cast(null as varchar) as experiment_id,
        cast(null as varchar) as status,
        cast(null as bigint) as users,
        cast(null as double precision) as srm_p_value,
        cast(null as boolean) as srm_warning,
        cast(null as bigint) as multiple_exposure_users,
        cast(null as double precision) as multiple_exposure_share,
        cast(null as boolean) as multiple_exposure_warning,
        cast(null as bigint) as assigned_before_start,
        cast(null as bigint) as assigned_after_end,
        cast(null as boolean) as out_of_window_warning,
        cast(null as bigint) as imbalanced_days,
        cast(null as bigint) as planned_users_per_variant,
        cast(null as bigint) as smallest_variant_users,
        cast(null as boolean) as planned_sample_reached,
        cast(null as varchar) as warnings,
        cast(null as varchar) as build_id
    where 1 = 0

{% endif %}
