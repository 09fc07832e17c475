{#- One row per (metric, UTC day) for the pack metrics the daily anomaly check watches.
    `northstar build` computes them with the semantic layer's own SQL (metrics/sql/metric_values.py)
    between its two dbt phases, on every warehouse, and stages them in the table
    `metric_values_daily` of the schema it names in the `metric_values_schema` var; this model
    only publishes that table under the marts' contract and tests, so no metric is defined twice.
    Without the var (a plain `dbt build`) the model is empty, with the same columns. -#}
{% set staged = var('metric_values_schema', none) %}

{% if staged %}

    select
        {{ dbt.cast('metric_name', 'varchar') }} as metric_name,
        {{ dbt.cast('metric_date', 'date') }} as metric_date,
        {{ dbt.cast('metric_value', double_type()) }} as metric_value
    from {{ adapter.quote(staged) }}.metric_values_daily

{% else %}

    select
        {{ dbt.cast('null', 'varchar') }} as metric_name,
        {{ dbt.cast('null', 'date') }} as metric_date,
        {{ dbt.cast('null', double_type()) }} as metric_value
    where 1 = 0

{% endif %}
