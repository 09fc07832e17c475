{#- Rows the build computes with northstar's engine after the other models are built
    (metrics/experiment_results.py), staged in the table `experiment_results` of the schema the build
    names in the `experiment_readouts_schema` var. Without it (a plain `dbt build`) the model
    is empty, with the same columns. -#}
{% set staged = var('experiment_readouts_schema', none) %}

{% if staged %}

    select
        cast(experiment_result_key as varchar) as experiment_result_key,
        cast(experiment_id as varchar) as experiment_id,
        cast(control_variant as varchar) as control_variant,
        cast(variant as varchar) as variant,
        cast(metric as varchar) as metric,
        cast(role as varchar) as role,
        cast(slice_key as varchar) as slice_key,
        cast(slice_dimension as varchar) as slice_dimension,
        cast(slice_value as varchar) as slice_value,
        cast(control_users as bigint) as control_users,
        cast(variant_users as bigint) as variant_users,
        cast(control_mean as double precision) as control_mean,
        cast(variant_mean as double precision) as variant_mean,
        cast(absolute_lift as double precision) as absolute_lift,
        cast(relative_lift as double precision) as relative_lift,
        cast(ci_low as double precision) as ci_low,
        cast(ci_high as double precision) as ci_high,
        cast(p_value as double precision) as p_value,
        cast(adjusted_p_value as double precision) as adjusted_p_value,
        cast(chance_to_win as double precision) as chance_to_win,
        cast(cuped_relative_lift as double precision) as cuped_relative_lift,
        cast(cuped_ci_low as double precision) as cuped_ci_low,
        cast(cuped_ci_high as double precision) as cuped_ci_high,
        cast(cuped_p_value as double precision) as cuped_p_value,
        cast(verdict as varchar) as verdict,
        cast(flags as varchar) as flags,
        cast(decision as varchar) as decision,
        cast(build_id as varchar) as build_id
    from {{ adapter.quote(staged) }}.experiment_results

{% else %}

    select
        cast(null as varchar) as experiment_result_key,
        cast(null as varchar) as experiment_id,
        cast(null as varchar) as control_variant,
        cast(null as varchar) as variant,
        cast(null as varchar) as metric,
        cast(null as varchar) as role,
        cast(null as varchar) as slice_key,
        cast(null as varchar) as slice_dimension,
        cast(null as varchar) as slice_value,
        cast(null as bigint) as control_users,
        cast(null as bigint) as variant_users,
        cast(null as double precision) as control_mean,
        cast(null as double precision) as variant_mean,
        cast(null as double precision) as absolute_lift,
        cast(null as double precision) as relative_lift,
        cast(null as double precision) as ci_low,
        cast(null as double precision) as ci_high,
        cast(null as double precision) as p_value,
        cast(null as double precision) as adjusted_p_value,
        cast(null as double precision) as chance_to_win,
        cast(null as double precision) as cuped_relative_lift,
        cast(null as double precision) as cuped_ci_low,
        cast(null as double precision) as cuped_ci_high,
        cast(null as double precision) as cuped_p_value,
        cast(null as varchar) as verdict,
        cast(null as varchar) as flags,
        cast(null as varchar) as decision,
        cast(null as varchar) as build_id
    where 1 = 0

{% endif %}
