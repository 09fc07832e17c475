{#-
    Fails for every combination of `combination_of_columns` that occurs more
    than once in the model.
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with validation_errors as (

    select
        {{ combination_of_columns | join(',\n        ') }},
        count(*) as n_rows
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1

)

select *
from validation_errors

{% endtest %}
