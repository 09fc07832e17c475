with

experiments as (

    select * from {{ ref('stg_product__experiments') }}

),

final as (

    select
        experiment_id,
        experiment_name,
        feature_key,
        hypothesis,
        control_variant,
        started_at,
        ended_at
    from experiments

)

select * from final
