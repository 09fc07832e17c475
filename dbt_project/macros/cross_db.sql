{#-
    The few warehouse-specific expressions the models need, one macro each, dispatched on
    the adapter (DuckDB and PostgreSQL), so the same models build on either warehouse.
    Everything else in the models is SQL both accept.
-#}

{#- seconds since 1970-01-01 of a timestamp, as a double -#}
{% macro epoch_seconds(expression) -%}
    {{ return(adapter.dispatch('epoch_seconds')(expression)) }}
{%- endmacro %}

{% macro default__epoch_seconds(expression) -%}
    cast(extract(epoch from {{ expression }}) as double precision)
{%- endmacro %}

{% macro duckdb__epoch_seconds(expression) -%}
    epoch({{ expression }})
{%- endmacro %}

{#- one row per day, column day_start (timestamp), from start (inclusive) to stop (exclusive) -#}
{% macro day_series(start, stop) -%}
    {{ return(adapter.dispatch('day_series')(start, stop)) }}
{%- endmacro %}

{% macro default__day_series(start, stop) -%}
    select day_start
    from generate_series(
        timestamp '{{ start }}', timestamp '{{ stop }}' - interval '1 day', interval '1 day'
    ) as days (day_start)
{%- endmacro %}

{% macro duckdb__day_series(start, stop) -%}
    select range as day_start
    from range(timestamp '{{ start }}', timestamp '{{ stop }}', interval 1 day)
{%- endmacro %}
