{#-
    The few warehouse-specific expressions the models need, one macro each, dispatched on
    the adapter (DuckDB, PostgreSQL and Spark), so the same models build on each warehouse.
    Everything else in the models is SQL all three accept.
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

{% macro spark__epoch_seconds(expression) -%}
    cast(unix_micros({{ expression }}) as double) / 1000000
{%- endmacro %}

{% macro spark__day_series(start, stop) -%}
    select explode(sequence(
        timestamp '{{ start }}', timestamp '{{ stop }}' - interval 1 day, interval 1 day
    )) as day_start
{%- endmacro %}

{#- the text type of a cast: Spark has no length-less varchar -#}
{% macro string_type() -%}
    {{ return(adapter.dispatch('string_type')()) }}
{%- endmacro %}

{% macro default__string_type() -%}
    varchar
{%- endmacro %}

{% macro spark__string_type() -%}
    string
{%- endmacro %}

{#- the 8-byte float type of a cast: Spark does not parse `double precision` -#}
{% macro double_type() -%}
    {{ return(adapter.dispatch('double_type')()) }}
{%- endmacro %}

{% macro default__double_type() -%}
    double precision
{%- endmacro %}

{% macro spark__double_type() -%}
    double
{%- endmacro %}

{#-
    Spark names of the types the YAML contracts use (varchar, double precision), so a model's
    contract is checked on Spark as on the other warehouses: dbt casts null to each declared
    type and compares the result with the model's columns.
-#}
{% macro spark__cast(field, type) -%}
    {%- set spark_names = {'varchar': 'string', 'double precision': 'double'} -%}
    cast({{ field }} as {{ spark_names.get(type | trim | lower, type) }})
{%- endmacro %}

{#-
    A landing timestamp as a naive UTC timestamp. Landing files carry naive timestamps (UTC by
    the contract), Parquet timestamps with a time zone, or ISO-8601 text with `Z`, an offset or
    fractional seconds (CSV); on DuckDB the value goes through TIMESTAMPTZ so an offset is
    honoured (the build session's TimeZone is UTC), where a plain cast would drop it.
-#}
{% macro utc_timestamp(expression) -%}
    {{ return(adapter.dispatch('utc_timestamp')(expression)) }}
{%- endmacro %}

{% macro default__utc_timestamp(expression) -%}
    cast({{ expression }} as timestamp)
{%- endmacro %}

{% macro duckdb__utc_timestamp(expression) -%}
    cast(cast({{ expression }} as timestamptz) as timestamp)
{%- endmacro %}
