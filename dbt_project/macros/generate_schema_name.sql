{#-
    Use a model's custom schema name as-is (staging, marts) instead of
    dbt's default "<target_schema>_<custom_schema>" concatenation.
    Models without a custom schema land in the target schema.
    A build into a server warehouse (PostgreSQL) writes schemas of its own:
    the var schema_suffix (the build) is appended, e.g. marts__<build>.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set suffix = var('schema_suffix', '') -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif suffix -%}
        {{ custom_schema_name | trim }}__{{ suffix }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
