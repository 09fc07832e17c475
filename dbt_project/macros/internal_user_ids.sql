{% macro internal_user_ids() %}
    -- employees and test users (is_internal): every product mart leaves their rows out;
    -- rows without a user_id are not theirs and are kept by the marts' anti-joins
    select user_id
    from {{ ref('stg_product__users') }}
    where is_internal
{% endmacro %}
