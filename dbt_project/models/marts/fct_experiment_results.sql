{#- Rows the build computes with northstar's engine after the other models are built
    (metrics/experiment_results.py), staged in the table `experiment_results` of the schema the build
    names in the `experiment_readouts_schema` var. Without it (a plain `dbt build`) the model
    is empty, with the same columns. dbt.cast spells the contract's types for each warehouse. -#}
{% set staged = var('experiment_readouts_schema', none) %}

{% if staged %}

    select
        {{ dbt.cast('experiment_result_key', 'varchar') }} as experiment_result_key,
        {{ dbt.cast('experiment_id', 'varchar') }} as experiment_id,
        {{ dbt.cast('control_variant', 'varchar') }} as control_variant,
        {{ dbt.cast('variant', 'varchar') }} as variant,
        {{ dbt.cast('metric', 'varchar') }} as metric,
        {{ dbt.cast('role', 'varchar') }} as role,
        {{ dbt.cast('slice_key', 'varchar') }} as slice_key,
        {{ dbt.cast('slice_dimension', 'varchar') }} as slice_dimension,
        {{ dbt.cast('slice_value', 'varchar') }} as slice_value,
        {{ dbt.cast('control_users', 'bigint') }} as control_users,
        {{ dbt.cast('variant_users', 'bigint') }} as variant_users,
        {{ dbt.cast('control_mean', 'double precision') }} as control_mean,
        {{ dbt.cast('variant_mean', 'double precision') }} as variant_mean,
        {{ dbt.cast('absolute_lift', 'double precision') }} as absolute_lift,
        {{ dbt.cast('relative_lift', 'double precision') }} as relative_lift,
        {{ dbt.cast('ci_low', 'double precision') }} as ci_low,
        {{ dbt.cast('ci_high', 'double precision') }} as ci_high,
        {{ dbt.cast('p_value', 'double precision') }} as p_value,
        {{ dbt.cast('adjusted_p_value', 'double precision') }} as adjusted_p_value,
        {{ dbt.cast('chance_to_win', 'double precision') }} as chance_to_win,
        {{ dbt.cast('cuped_relative_lift', 'double precision') }} as cuped_relative_lift,
        {{ dbt.cast('cuped_ci_low', 'double precision') }} as cuped_ci_low,
        {{ dbt.cast('cuped_ci_high', 'double precision') }} as cuped_ci_high,
        {{ dbt.cast('cuped_p_value', 'double precision') }} as cuped_p_value,
        {{ dbt.cast('verdict', 'varchar') }} as verdict,
        {{ dbt.cast('flags', 'varchar') }} as flags,
        {{ dbt.cast('decision', 'varchar') }} as decision,
        {{ dbt.cast('build_id', 'varchar') }} as build_id
    from {{ adapter.quote(staged) }}.experiment_results

{% else %}

    select
        {{ dbt.cast('null', 'varchar') }} as experiment_result_key,
        {{ dbt.cast('null', 'varchar') }} as experiment_id,
        {{ dbt.cast('null', 'varchar') }} as control_variant,
        {{ dbt.cast('null', 'varchar') }} as variant,
        {{ dbt.cast('null', 'varchar') }} as metric,
        {{ dbt.cast('null', 'varchar') }} as role,
        {{ dbt.cast('null', 'varchar') }} as slice_key,
        {{ dbt.cast('null', 'varchar') }} as slice_dimension,
        {{ dbt.cast('null', 'varchar') }} as slice_value,
        {{ dbt.cast('null', 'bigint') }} as control_users,
        {{ dbt.cast('null', 'bigint') }} as variant_users,
        {{ dbt.cast('null', 'double precision') }} as control_mean,
        {{ dbt.cast('null', 'double precision') }} as variant_mean,
        {{ dbt.cast('null', 'double precision') }} as absolute_lift,
        {{ dbt.cast('null', 'double precision') }} as relative_lift,
        {{ dbt.cast('null', 'double precision') }} as ci_low,
        {{ dbt.cast('null', 'double precision') }} as ci_high,
        {{ dbt.cast('null', 'double precision') }} as p_value,
        {{ dbt.cast('null', 'double precision') }} as adjusted_p_value,
        {{ dbt.cast('null', 'double precision') }} as chance_to_win,
        {{ dbt.cast('null', 'double precision') }} as cuped_relative_lift,
        {{ dbt.cast('null', 'double precision') }} as cuped_ci_low,
        {{ dbt.cast('null', 'double precision') }} as cuped_ci_high,
        {{ dbt.cast('null', 'double precision') }} as cuped_p_value,
        {{ dbt.cast('null', 'varchar') }} as verdict,
        {{ dbt.cast('null', 'varchar') }} as flags,
        {{ dbt.cast('null', 'varchar') }} as decision,
        {{ dbt.cast('null', 'varchar') }} as build_id
    where 1 = 0

{% endif %}
