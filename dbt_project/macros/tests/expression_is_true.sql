{#-
    Fails for every row where `expression` is false. Rows where the expression
    evaluates to null (e.g. a nullable column) pass.
    Model level:   data_tests: [{expression_is_true: {arguments: {expression: "a >= b"}}}]
    Column level:  the column name is prefixed, e.g. expression ">= 0".
-#}
{% test expression_is_true(model, expression, column_name=none) %}

with validation as (

    select *
    from {{ model }}

),

validation_errors as (

    select *
    from validation
    {% if column_name is none -%}
    where not ({{ expression }})
    {%- else -%}
    where not ({{ column_name }} {{ expression }})
    {%- endif %}

)

select *
from validation_errors

{% endtest %}
