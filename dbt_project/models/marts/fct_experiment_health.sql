{#- Rows the build computes with northstar's engine after the other models are built
    (metrics/experiment_results.py), staged in the table `experiment_health` of the schema the build
    names in the `experiment_readouts_schema` var. Without it (a plain `dbt build`) the model
    is empty, with the same columns. dbt.cast spells the contract's types for each warehouse. -#}
{% set staged = var('experiment_readouts_schema', none) %}

{% if staged %}

    select
        {{ dbt.cast('experiment_id', 'varchar') }} as experiment_id,
        {{ dbt.cast('status', 'varchar') }} as status,
        {{ dbt.cast('users', 'bigint') }} as users,
        {{ dbt.cast('srm_p_value', 'double precision') }} as srm_p_value,
        {{ dbt.cast('srm_warning', 'boolean') }} as srm_warning,
        {{ dbt.cast('multiple_exposure_users', 'bigint') }} as multiple_exposure_users,
        {{ dbt.cast('multiple_exposure_share', 'double precision') }} as multiple_exposure_share,
        {{ dbt.cast('multiple_exposure_warning', 'boolean') }} as multiple_exposure_warning,
        {{ dbt.cast('assigned_before_start', 'bigint') }} as assigned_before_start,
        {{ dbt.cast('assigned_after_end', 'bigint') }} as assigned_after_end,
        {{ dbt.cast('out_of_window_warning', 'boolean') }} as out_of_window_warning,
        {{ dbt.cast('imbalanced_days', 'bigint') }} as imbalanced_days,
        {{ dbt.cast('planned_users_per_variant', 'bigint') }} as planned_users_per_variant,
        {{ dbt.cast('smallest_variant_users', 'bigint') }} as smallest_variant_users,
        {{ dbt.cast('planned_sample_reached', 'boolean') }} as planned_sample_reached,
        {{ dbt.cast('warnings', 'varchar') }} as warnings,
        {{ dbt.cast('build_id', 'varchar') }} as build_id
    from {{ adapter.quote(staged) }}.experiment_health

{% else %}

    select
        {{ dbt.cast('null', 'varchar') }} as experiment_id,
        {{ dbt.cast('null', 'varchar') }} as status,
        {{ dbt.cast('null', 'bigint') }} as users,
        {{ dbt.cast('null', 'double precision') }} as srm_p_value,
        {{ dbt.cast('null', 'boolean') }} as srm_warning,
        {{ dbt.cast('null', 'bigint') }} as multiple_exposure_users,
        {{ dbt.cast('null', 'double precision') }} as multiple_exposure_share,
        {{ dbt.cast('null', 'boolean') }} as multiple_exposure_warning,
        {{ dbt.cast('null', 'bigint') }} as assigned_before_start,
        {{ dbt.cast('null', 'bigint') }} as assigned_after_end,
        {{ dbt.cast('null', 'boolean') }} as out_of_window_warning,
        {{ dbt.cast('null', 'bigint') }} as imbalanced_days,
        {{ dbt.cast('null', 'bigint') }} as planned_users_per_variant,
        {{ dbt.cast('null', 'bigint') }} as smallest_variant_users,
        {{ dbt.cast('null', 'boolean') }} as planned_sample_reached,
        {{ dbt.cast('null', 'varchar') }} as warnings,
        {{ dbt.cast('null', 'varchar') }} as build_id
    where 1 = 0

{% endif %}
